// Package selfcheck checks the director itself (its local ports and
// services, the sorry server, a gateway, lvsmon's own collector and
// reconciler) with rise and fall, and while the checks fail makes the HA
// stack move the VIPs to the peer the stack's own way: an Action (a
// keepalived track_file, ...) is set when the verdict turns sick and
// cleared when it turns healthy again. Rise and fall are counted per
// check, so a port that flaps faster than they allow never flaps the
// role. A hand-over is refused while the peer is known not to be healthy
// (never hand the VIPs to a worse node).
//
// The checks' probes are injected (the app runs package probe through
// them), and so is the clock: the package itself runs no probe code.
package selfcheck

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// Check is one self check.
type Check struct {
	Name     string
	Type     string
	Interval time.Duration
	Rise     int
	Fall     int
	// Run runs the check once; nil error is healthy. It returns when ctx
	// ends.
	Run func(ctx context.Context) error
}

// Action is what a hand-over does in one HA stack.
type Action interface {
	// Name says which stack ("keepalived track_file /run/x").
	Name() string
	// Set hands the VIPs over (sick) or lets them come back.
	Set(ctx context.Context, sick bool) error
}

// Resetter is an Action that states the healthy verdict when lvsmon
// starts (a track_file's content, a pacemaker attribute); heartbeat's
// hb_takeover is not run at start: its actions wait for a change.
type Resetter interface {
	Reset(ctx context.Context) error
}

// PeerFunc says whether the peer is healthy enough to take the VIPs;
// known false means lvsmon cannot tell (and then the stack's own
// election decides). It is the hook for lvsmon's peer API.
type PeerFunc func() (healthy, known bool, why string)

// Options configure a Runner.
type Options struct {
	Checks  []Check
	Actions []Action
	// PeerCheck, when set, is run like the self checks (with its own
	// rise and fall): while it is down the hand-over is refused.
	PeerCheck *Check
	// Peer is another view of the peer's health (nil: none).
	Peer PeerFunc
	// StateFile receives the verdict for `lvsmon self-check` ("" none).
	StateFile string
	// Event receives the hand-over events.
	Event func(events.Event)
	// Now is the clock (default time.Now).
	Now func() time.Time
	Log *slog.Logger
}

// CheckStatus is one check's state.
type CheckStatus struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// Up is the verdict after rise and fall (a check with no result yet
	// is up: nothing has failed).
	Up bool `json:"up"`
	// Message is the last failure's text (empty after a success).
	Message string    `json:"message,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	LastRun time.Time `json:"last_run,omitzero"`
	// Successes and Failures are the current run of equal results.
	Successes int `json:"successes"`
	Failures  int `json:"failures"`
}

// Verdict is the runner's whole state.
type Verdict struct {
	// Healthy: every self check is up.
	Healthy bool `json:"healthy"`
	// Reason names the checks that are down and why.
	Reason string `json:"reason,omitempty"`
	// HandedOver: the actions are set (the VIPs are meant to be on the
	// peer).
	HandedOver bool `json:"handed_over"`
	// Refused says why a hand-over the checks call for is not done.
	Refused string    `json:"refused,omitempty"`
	Since   time.Time `json:"since,omitzero"`
	// ActionError is the last action that failed (retried with each
	// result).
	ActionError string        `json:"action_error,omitempty"`
	Checks      []CheckStatus `json:"checks"`
	Peer        *CheckStatus  `json:"peer,omitempty"`
}

type checkState struct {
	Check
	st CheckStatus
}

// Runner runs the checks and acts on their verdict.
type Runner struct {
	o      Options
	log    *slog.Logger
	now    func() time.Time
	checks []*checkState
	peer   *checkState

	// act serializes the evaluations and their actions; mu guards the
	// state below and is never held while an action runs.
	act     sync.Mutex
	mu      sync.Mutex
	handed  bool
	refused string
	since   time.Time
	pending bool // an action failed: set again at the next result
	actErr  string
	written string // the state file's content
}

// New builds a Runner; nothing runs before Run.
func New(o Options) *Runner {
	r := &Runner{o: o, log: o.Log, now: o.Now}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if r.now == nil {
		r.now = time.Now
	}
	for _, c := range o.Checks {
		r.checks = append(r.checks, &checkState{Check: c, st: CheckStatus{Name: c.Name, Type: c.Type, Up: true}})
	}
	if o.PeerCheck != nil {
		r.peer = &checkState{Check: *o.PeerCheck, st: CheckStatus{Name: o.PeerCheck.Name, Type: o.PeerCheck.Type, Up: true}}
	}
	r.since = r.now()
	return r
}

// Start writes the healthy verdict (a restarted lvsmon does not keep a
// hand-over it no longer knows the reason of): the Resetters are reset.
func (r *Runner) Start(ctx context.Context) {
	r.act.Lock()
	defer r.act.Unlock()
	var errs []error
	for _, a := range r.o.Actions {
		if rs, ok := a.(Resetter); ok {
			if err := rs.Reset(ctx); err != nil {
				errs = append(errs, fmt.Errorf("%s: %w", a.Name(), err))
			}
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := errors.Join(errs...); err != nil {
		r.actErr, r.pending = err.Error(), true
		r.log.Error("resetting the hand-over failed", "err", err)
	}
	r.writeState()
}

// Run schedules every check at its interval until ctx ends.
func (r *Runner) Run(ctx context.Context) {
	r.Start(ctx)
	var wg sync.WaitGroup
	all := slices.Clone(r.checks)
	if r.peer != nil {
		all = append(all, r.peer)
	}
	for _, c := range all {
		wg.Go(func() {
			t := time.NewTicker(c.Interval)
			defer t.Stop()
			for {
				err := c.Run(ctx)
				if ctx.Err() != nil {
					return
				}
				r.Result(ctx, c.Name, err)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		})
	}
	wg.Wait()
}

// Result records one result of the check (or peer check) named name and
// acts on the new verdict. The actions run outside the state's lock (an
// hb_standby may take seconds; Status must not wait for it), one
// evaluation at a time.
func (r *Runner) Result(ctx context.Context, name string, err error) {
	r.act.Lock()
	defer r.act.Unlock()
	r.mu.Lock()
	c := r.find(name)
	if c == nil {
		r.mu.Unlock()
		return
	}
	now := r.now()
	c.st.LastRun = now
	if err == nil {
		c.st.Successes++
		c.st.Failures = 0
		if !c.st.Up && c.st.Successes >= c.Rise {
			c.st.Up, c.st.Since, c.st.Message = true, now, ""
			r.log.Info("self check up", "check", c.Name)
		}
	} else {
		c.st.Failures++
		c.st.Successes = 0
		c.st.Message = err.Error()
		if c.st.Up && c.st.Failures >= c.Fall {
			c.st.Up, c.st.Since = false, now
			r.log.Warn("self check down", "check", c.Name, "err", err)
		}
	}
	d := r.evaluate(now)
	r.mu.Unlock()
	if d.act {
		aerr := r.runActions(ctx, d.sick)
		r.mu.Lock()
		r.record(aerr, d.sick)
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.writeState()
	r.mu.Unlock()
	if d.event != nil {
		r.event(*d.event)
	}
}

func (r *Runner) find(name string) *checkState {
	for _, c := range r.checks {
		if c.Name == name {
			return c
		}
	}
	if r.peer != nil && r.peer.Name == name {
		return r.peer
	}
	return nil
}

// reason lists the checks that are down; "" when all are up.
func (r *Runner) reason() string {
	var down []string
	for _, c := range r.checks {
		if !c.st.Up {
			down = append(down, fmt.Sprintf("%s: %s", c.Name, c.st.Message))
		}
	}
	return strings.Join(down, "; ")
}

// peerState says whether the peer may take the VIPs and, if not, why.
func (r *Runner) peerState() (ok bool, why string) {
	if r.peer != nil && !r.peer.st.Up {
		return false, fmt.Sprintf("peer check %s fails: %s", r.peer.Name, r.peer.st.Message)
	}
	if r.o.Peer != nil {
		if healthy, known, why := r.o.Peer(); known && !healthy {
			return false, "the peer is not healthy: " + why
		}
	}
	return true, ""
}

// decision is what an evaluation calls for.
type decision struct {
	act   bool // set the actions to sick
	sick  bool
	event *events.Event
}

// evaluate turns the checks' states into the hand-over; r.mu is held.
func (r *Runner) evaluate(now time.Time) decision {
	reason := r.reason()
	sick := reason != ""
	switch {
	case sick && !r.handed:
		if ok, why := r.peerState(); !ok {
			if r.refused != "" {
				return decision{}
			}
			r.refused = why
			r.log.Warn("hand-over refused", "reason", reason, "peer", why)
			return decision{event: &events.Event{Kind: events.HandOverRefused, From: "healthy", To: "sick", Reason: reason,
				Message: fmt.Sprintf("self checks fail (%s) but the VIPs stay here: %s", reason, why)}}
		}
		r.refused = ""
		r.handed, r.since = true, now
		r.log.Warn("handing over", "reason", reason)
		return decision{act: true, sick: true, event: &events.Event{Kind: events.HandOver, From: "healthy", To: "sick", Reason: reason,
			Message: fmt.Sprintf("self checks fail, handing the VIPs to the peer (%s): %s", r.actionNames(), reason)}}
	case !sick && r.handed:
		r.handed, r.since = false, now
		r.log.Info("hand-over undone")
		return decision{act: true, event: &events.Event{Kind: events.HandBack, From: "sick", To: "healthy", Reason: "self checks pass",
			Message: fmt.Sprintf("self checks pass again, the hand-over is undone (%s)", r.actionNames())}}
	case !sick && r.refused != "":
		r.refused = ""
	case r.pending:
		return decision{act: true, sick: r.handed}
	}
	return decision{}
}

func (r *Runner) actionNames() string {
	var n []string
	for _, a := range r.o.Actions {
		n = append(n, a.Name())
	}
	if len(n) == 0 {
		return "lvsmon self-check exits 1"
	}
	return strings.Join(n, ", ")
}

// runActions sets every action.
func (r *Runner) runActions(ctx context.Context, sick bool) error {
	var errs []error
	for _, a := range r.o.Actions {
		if err := a.Set(ctx, sick); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", a.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// record keeps an action's failure for the status and the retry at the
// next result; r.mu is held.
func (r *Runner) record(err error, sick bool) {
	r.pending = err != nil
	r.actErr = ""
	if err != nil {
		r.actErr = err.Error()
		r.log.Error("hand-over action failed", "sick", sick, "err", err)
	}
}

func (r *Runner) event(e events.Event) {
	e.Actor = Actor
	if r.o.Event != nil {
		r.o.Event(e)
	}
}

// Actor is the events' actor.
const Actor = "self-check"

// State file verdicts (the first word of its first line).
const (
	StateOK       = "ok"
	StateHandover = "handover"
)

// writeState writes the verdict for `lvsmon self-check` when it changed.
func (r *Runner) writeState() {
	if r.o.StateFile == "" {
		return
	}
	s := StateOK + "\n"
	if r.handed {
		s = StateHandover + " " + r.reason() + "\n"
	} else if r.refused != "" {
		s = StateOK + " hand-over refused: " + r.refused + "\n"
	}
	if s == r.written {
		return
	}
	if err := atomicfile.Write(r.o.StateFile, []byte(s), 0o644); err != nil {
		r.log.Error("writing the self-check state failed", "file", r.o.StateFile, "err", err)
		return
	}
	r.written = s
}

// Status returns the verdict and every check's state.
func (r *Runner) Status() Verdict {
	r.mu.Lock()
	defer r.mu.Unlock()
	reason := r.reason()
	v := Verdict{Healthy: reason == "", Reason: reason, HandedOver: r.handed, Refused: r.refused, Since: r.since,
		ActionError: r.actErr, Checks: []CheckStatus{}}
	for _, c := range r.checks {
		v.Checks = append(v.Checks, c.st)
	}
	if r.peer != nil {
		p := r.peer.st
		v.Peer = &p
	}
	return v
}

// ReadState reads a state file: handover says whether the daemon has
// handed over, line is the whole verdict.
func ReadState(data []byte) (handover bool, line string, err error) {
	line = strings.TrimSpace(string(data))
	word, _, _ := strings.Cut(line, " ")
	switch word {
	case StateOK:
		return false, line, nil
	case StateHandover:
		return true, line, nil
	}
	return false, line, fmt.Errorf("not a self-check state: %q", line)
}
