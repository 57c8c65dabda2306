package alerting

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"
)

// Clock is the time source of the Dispatcher; tests inject a fake one.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

type realClock struct{}

func (realClock) Now() time.Time                         { return time.Now() }
func (realClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Transport sends one mail; *Sender is one.
type Transport interface {
	Send(ctx context.Context, m Mail) error
}

// Backoff is the retry schedule: Initial after the first failure,
// doubling, at most Max, each delay spread by ±Jitter (a fraction).
type Backoff struct {
	Initial time.Duration
	Max     time.Duration
	Jitter  float64
}

// DefaultBackoff is 10 s, 20 s, 40 s, ... up to an hour, ±20 %.
var DefaultBackoff = Backoff{Initial: 10 * time.Second, Max: time.Hour, Jitter: 0.2}

// Delay is the wait after the attempts-th failed attempt (1 for the
// first). r in [0, 1) picks the point in the jitter band (0.5 is the
// middle, no jitter). It is a pure function.
func (b Backoff) Delay(attempts int, r float64) time.Duration {
	if attempts < 1 {
		attempts = 1
	}
	d := b.Initial
	for i := 1; i < attempts && d < b.Max; i++ {
		d *= 2
	}
	if d > b.Max {
		d = b.Max
	}
	d = time.Duration(float64(d) * (1 + b.Jitter*(2*r-1)))
	if d > b.Max {
		d = b.Max
	}
	if d <= 0 {
		d = time.Second
	}
	return d
}

// Stats is what the dispatcher has done since it started, for the status
// API and metrics.
type Stats struct {
	Queued        int       `json:"queued"`    // in the outbox, permanent failures included
	Permanent     int       `json:"permanent"` // of those, refused for good (5xx)
	Sent          uint64    `json:"sent"`
	Failed        uint64    `json:"failed"` // failed attempts
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	LastSentTime  time.Time `json:"last_sent_time,omitzero"`
}

// DispatcherConfig holds the optional parts of a Dispatcher.
type DispatcherConfig struct {
	Backoff Backoff        // DefaultBackoff when zero
	Clock   Clock          // the real clock when nil
	Rand    func() float64 // jitter source, math/rand when nil
	Log     *slog.Logger
	// SendTimeout bounds one attempt (besides the Sender's own timeout);
	// 2 minutes when zero.
	SendTimeout time.Duration
}

// Dispatcher sends what is in the outbox, oldest first, retrying with
// backoff. Run it once; Kick it after a Put.
//
// Order of operations for one mail: it is in the outbox (Put fsynced it)
// before it is sent; after the server accepted it, Done removes it before
// anything else happens. The one window for a duplicate is a crash (or a
// failing disk) between the server's 250 and Done's unlink reaching the
// disk: the mail is then sent again after the restart, with the same
// Message-ID, which the receiving side can use to drop the copy. Within
// one process a mail whose Done failed is remembered and never sent
// again.
type Dispatcher struct {
	out     *Outbox
	channel string // the entries it delivers (Entry.Channel)
	noun    string // "mail" or "webhook delivery", for logs
	tr      Transport
	hook    *WebhookSender
	backoff Backoff
	clock   Clock
	rand    func() float64
	log     *slog.Logger
	timeout time.Duration
	wake    chan struct{}

	mu       sync.Mutex
	stats    Stats
	accepted map[string]bool // accepted by the server, Done failed
}

// NewDispatcher returns a Dispatcher for the mails in out that sends
// through tr.
func NewDispatcher(out *Outbox, tr Transport, cfg DispatcherConfig) *Dispatcher {
	d := newDispatcher(out, MailChannel, cfg)
	d.tr, d.noun = tr, "mail"
	return d
}

// NewWebhookDispatcher returns a Dispatcher for the deliveries of one
// webhook in out (those whose Hook is its name). Each webhook has its
// own, so a receiver that is down delays neither mail nor other hooks.
func NewWebhookDispatcher(out *Outbox, hook *WebhookSender, cfg DispatcherConfig) *Dispatcher {
	d := newDispatcher(out, WebhookChannel(hook.cfg.Name), cfg)
	d.hook, d.noun = hook, "webhook delivery"
	return d
}

func newDispatcher(out *Outbox, channel string, cfg DispatcherConfig) *Dispatcher {
	d := &Dispatcher{
		out: out, channel: channel, backoff: cfg.Backoff, clock: cfg.Clock, rand: cfg.Rand,
		log: cfg.Log, timeout: cfg.SendTimeout, wake: make(chan struct{}, 1), accepted: map[string]bool{},
	}
	if d.backoff.Initial <= 0 || d.backoff.Max <= 0 {
		d.backoff = DefaultBackoff
	}
	if d.clock == nil {
		d.clock = realClock{}
	}
	if d.rand == nil {
		d.rand = rand.Float64
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.timeout <= 0 {
		d.timeout = 2 * time.Minute
	}
	return d
}

// SetTransport makes the next attempts go through tr (a reload changed
// the SMTP settings). Mail already in the outbox keeps its Message-ID.
func (d *Dispatcher) SetTransport(tr Transport) {
	d.mu.Lock()
	d.tr = tr
	d.mu.Unlock()
	d.Kick()
}

// SetWebhook makes the next attempts of a webhook dispatcher go through
// s (a reload changed the hook's URL, headers or secrets); s must have
// the same name.
func (d *Dispatcher) SetWebhook(s *WebhookSender) {
	d.mu.Lock()
	d.hook = s
	d.mu.Unlock()
	d.Kick()
}

// Channel is the channel whose entries d delivers.
func (d *Dispatcher) Channel() string { return d.channel }

// pending are the outbox's entries of d's channel.
func (d *Dispatcher) pending() []Entry {
	all := d.out.Pending()
	out := all[:0]
	for _, e := range all {
		if e.Channel() == d.channel {
			out = append(out, e)
		}
	}
	return out
}

// send makes one attempt.
func (d *Dispatcher) send(ctx context.Context, e Entry) error {
	d.mu.Lock()
	tr, hook := d.tr, d.hook
	d.mu.Unlock()
	if e.Webhook != nil {
		return hook.Deliver(ctx, *e.Webhook)
	}
	return tr.Send(ctx, e.Mail)
}

// Kick makes Run look at the outbox now (after a Put, or a Requeue).
func (d *Dispatcher) Kick() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Stats returns a snapshot of the counters and the outbox size.
func (d *Dispatcher) Stats() Stats {
	pend := d.pending()
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.stats
	s.Queued, s.Permanent = 0, 0
	for _, e := range pend {
		if d.accepted[e.ID] {
			continue
		}
		s.Queued++
		if e.Permanent {
			s.Permanent++
		}
	}
	return s
}

// Run sends until ctx is done. It starts with whatever the outbox holds,
// so mail queued before a restart goes out (honouring the persisted
// backoff).
func (d *Dispatcher) Run(ctx context.Context) error {
	for {
		wait, ok := d.pass(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var timer <-chan time.Time
		if ok {
			timer = d.clock.After(wait)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-d.wake:
		case <-timer:
		}
	}
}

// pass sends every due mail in order. It stops at the first temporary
// failure (the server is unwell; later mails wait their turn, which keeps
// the order) and returns how long until the next attempt is due, ok false
// when nothing is waiting.
func (d *Dispatcher) pass(ctx context.Context) (time.Duration, bool) {
	d.retryDone()
	for _, e := range d.pending() {
		if ctx.Err() != nil {
			return 0, false
		}
		if e.Permanent || d.isAccepted(e.ID) {
			continue
		}
		now := d.clock.Now()
		if e.NextAttempt.After(now) {
			return e.NextAttempt.Sub(now), true
		}
		sctx, cancel := context.WithTimeout(ctx, d.timeout)
		err := d.send(sctx, e)
		cancel()
		if err == nil {
			d.sent(e)
			continue
		}
		if ctx.Err() != nil && !IsPermanent(err) {
			// Shutting down: not the server's fault, not an attempt.
			return 0, false
		}
		attempts := e.Attempts + 1
		wait := d.backoff.Delay(attempts, d.rand())
		if ra := min(retryAfter(err), d.backoff.Max); ra > wait {
			wait = ra // the receiver asked for it (Retry-After)
		}
		next := now.Add(wait)
		d.mu.Lock()
		d.stats.Failed++
		d.stats.LastError = err.Error()
		d.stats.LastErrorTime = now
		d.mu.Unlock()
		if ferr := d.out.Failed(e.ID, err, next); ferr != nil {
			d.log.Error("alerting: cannot record a failed attempt in the outbox", "id", e.ID, "err", ferr)
		}
		if IsPermanent(err) {
			d.log.Error("alerting: the receiver refused a "+d.noun+" for good; it stays in the outbox, not retried",
				"channel", d.channel, "id", e.ID, "message_id", e.Mail.MessageID, "subject", e.Subject(), "err", err)
			continue
		}
		d.log.Warn("alerting: sending failed, will retry", "channel", d.channel, "id", e.ID, "message_id", e.Mail.MessageID,
			"attempt", attempts, "next", next, "err", err)
		return next.Sub(now), true
	}
	return 0, false
}

func (d *Dispatcher) sent(e Entry) {
	// Done first: nothing may come between the server's yes and the
	// removal from the outbox.
	err := d.out.Done(e.ID)
	d.mu.Lock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		d.accepted[e.ID] = true
	}
	d.stats.Sent++
	d.stats.LastSentTime = d.clock.Now()
	d.mu.Unlock()
	if err != nil && !errors.Is(err, ErrNotFound) {
		d.log.Error("alerting: "+d.noun+" sent but not removed from the outbox; it would be sent again after a restart",
			"channel", d.channel, "id", e.ID, "message_id", e.Mail.MessageID, "err", err)
		return
	}
	d.log.Info("alerting: "+d.noun+" sent", "channel", d.channel, "id", e.ID, "message_id", e.Mail.MessageID, "subject", e.Subject())
}

func (d *Dispatcher) isAccepted(id string) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.accepted[id]
}

// retryDone tries again to remove mails that were accepted but whose
// removal failed.
func (d *Dispatcher) retryDone() {
	d.mu.Lock()
	ids := make([]string, 0, len(d.accepted))
	for id := range d.accepted {
		ids = append(ids, id)
	}
	d.mu.Unlock()
	for _, id := range ids {
		if err := d.out.Done(id); err == nil || errors.Is(err, ErrNotFound) {
			d.mu.Lock()
			delete(d.accepted, id)
			d.mu.Unlock()
		}
	}
}
