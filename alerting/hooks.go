package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// MaxHookEvents is the most events one webhook delivery carries; a
// longer backlog makes several.
const MaxHookEvents = 100

const hookStateFile = "webhooks-state.json"

// HookDeps are the HookFeeder's collaborators.
type HookDeps struct {
	Outbox *Outbox     // required
	Events EventSource // required
	// Kick wakes the named hook's dispatcher after a Put; may be nil.
	Kick  func(hook string)
	Clock Clock
	Log   *slog.Logger
	// Name is the display name of a service id; may be nil.
	Name func(service string) string
	// IsMaster says whether this director is the master of its pair now;
	// nil means always.
	IsMaster func() bool
}

// hookState is what the feeder saves: each hook's cursor in the event
// log.
type hookState struct {
	Cursors map[string]uint64 `json:"cursors"`
}

// HookFeeder turns the event log into webhook deliveries: for each hook,
// the events after its cursor that its Filter takes become one delivery
// (at most MaxHookEvents events) in the outbox, whose body the hook's
// sender renders. There is no grouping window: what one pass finds new
// leaves at once, so a storm the checker writes in one round is one
// delivery, and a receiver gets the news within a second.
//
// A delivery is Put before the cursor moves past its events and the
// cursor is saved after, so a crash between the two queues it again:
// at-least-once, as mail. At start the cursor of each hook is moved past
// the events its queued deliveries carry, which closes that window
// unless the dispatcher had already delivered the first copy. A hook
// seen for the first time starts at the log's end: history is not sent.
type HookFeeder struct {
	deps     HookDeps
	clock    Clock
	log      *slog.Logger
	path     string
	director string

	mu     sync.Mutex
	hooks  map[string]*WebhookSender
	st     hookState
	queued map[string]uint64 // deliveries queued per hook since start
}

// NewHookFeeder loads the cursors from stateDir and takes hooks (by
// name) as the configured webhooks.
func NewHookFeeder(director, stateDir string, hooks []*WebhookSender, deps HookDeps) (*HookFeeder, error) {
	if deps.Outbox == nil || deps.Events == nil {
		return nil, errors.New("alerting: the webhooks need an outbox and an event source")
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	f := &HookFeeder{deps: deps, clock: deps.Clock, log: deps.Log, path: filepath.Join(stateDir, hookStateFile),
		director: director, queued: map[string]uint64{}}
	if f.clock == nil {
		f.clock = realClock{}
	}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	if n, err := atomicfile.CleanTemps(stateDir, hookStateFile); err == nil && n > 0 {
		f.log.Info("alerting: removed the temporary file of an interrupted save", "dir", stateDir, "files", n)
	}
	b, err := os.ReadFile(f.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("alerting: %w", err)
	default:
		if err := json.Unmarshal(b, &f.st); err != nil {
			return nil, fmt.Errorf("alerting: %s: %w", f.path, err)
		}
	}
	if f.st.Cursors == nil {
		f.st.Cursors = map[string]uint64{}
	}
	last := deps.Events.LastSeq()
	for name, c := range f.st.Cursors {
		if c > last {
			f.log.Warn("alerting: the event log is behind a webhook's cursor; it was reset, reading it from the start", "hook", name, "cursor", c, "last_seq", last)
			f.st.Cursors[name] = 0
		}
	}
	// Deliveries queued before a crash that missed the cursor's save.
	for _, e := range deps.Outbox.Pending() {
		if e.Webhook == nil || len(e.Webhook.EventSeqs) == 0 {
			continue
		}
		if m := slices.Max(e.Webhook.EventSeqs); m > f.st.Cursors[e.Webhook.Hook] && m <= last {
			f.st.Cursors[e.Webhook.Hook] = m
		}
	}
	f.setHooks(hooks)
	if err := f.save(); err != nil {
		return nil, err
	}
	return f, nil
}

// setHooks takes hooks as the configured ones: new ones start at the
// log's end, removed ones forget their cursor.
func (f *HookFeeder) setHooks(hooks []*WebhookSender) {
	f.hooks = map[string]*WebhookSender{}
	last := f.deps.Events.LastSeq()
	for _, h := range hooks {
		f.hooks[h.cfg.Name] = h
		if _, ok := f.st.Cursors[h.cfg.Name]; !ok {
			f.st.Cursors[h.cfg.Name] = last
		}
	}
	for name := range f.st.Cursors {
		if f.hooks[name] == nil {
			delete(f.st.Cursors, name)
		}
	}
}

// SetHooks swaps in the webhooks of a reloaded config.
func (f *HookFeeder) SetHooks(hooks []*WebhookSender) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.setHooks(hooks)
	return f.save()
}

func (f *HookFeeder) save() error {
	b, err := json.Marshal(f.st)
	if err == nil {
		err = atomicfile.Write(f.path, append(b, '\n'), 0o640)
	}
	if err != nil {
		return fmt.Errorf("alerting: saving the webhooks' cursors: %w", err)
	}
	return nil
}

// Step queues what is new for every hook. It stops at the first error
// (the outbox is full or the disk fails), which Run retries.
func (f *HookFeeder) Step() error {
	kicks, err := f.step()
	// Kicked outside the lock: the owner of the dispatchers may hold its
	// own lock while it calls SetHooks.
	for _, k := range kicks {
		if f.deps.Kick != nil {
			f.deps.Kick(k)
		}
	}
	return err
}

func (f *HookFeeder) step() (kicks []string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	master := f.deps.IsMaster == nil || f.deps.IsMaster()
	for _, name := range sortedKeys(f.hooks) {
		h := f.hooks[name]
		for {
			cur := f.st.Cursors[name]
			evs := f.deps.Events.Since(cur, sinceBatch)
			if len(evs) == 0 {
				break
			}
			var take []events.Event
			next := cur
			for _, ev := range evs {
				if len(take) == MaxHookEvents {
					break
				}
				next = ev.Seq
				if h.cfg.Filter.Match(&ev, master, f.deps.Name) == "" {
					take = append(take, ev)
				}
			}
			if len(take) > 0 {
				if err := f.put(h, take); err != nil {
					return kicks, err
				}
				kicks = append(kicks, name)
			}
			f.st.Cursors[name] = next
			if err := f.save(); err != nil {
				return kicks, err
			}
		}
	}
	return kicks, nil
}

func (f *HookFeeder) put(h *WebhookSender, evs []events.Event) error {
	b := events.Batch{Version: events.BatchVersion, Director: f.director, Events: evs}
	if f.deps.Name != nil {
		for _, ev := range evs {
			if n := f.deps.Name(ev.Service); ev.Service != "" && n != "" {
				if b.ServiceNames == nil {
					b.ServiceNames = map[string]string{}
				}
				b.ServiceNames[ev.Service] = n
			}
		}
	}
	body, ct, err := h.Render(b)
	if err != nil {
		return err
	}
	d := Delivery{Hook: h.cfg.Name, ContentType: ct, Body: body}
	for _, ev := range evs {
		d.EventSeqs = append(d.EventSeqs, ev.Seq)
	}
	if err := f.deps.Outbox.PutWebhook(d); err != nil {
		return fmt.Errorf("alerting: webhook %s: %w", h.cfg.Name, err)
	}
	f.queued[h.cfg.Name]++
	f.log.Info("alerting: webhook delivery queued", "hook", h.cfg.Name, "events", len(evs))
	return nil
}

// Queued is how many deliveries each hook got queued since start.
func (f *HookFeeder) Queued() map[string]uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make(map[string]uint64, len(f.queued))
	for k, v := range f.queued {
		out[k] = v
	}
	return out
}

// Run steps on every wake and at least every second until ctx ends.
func (f *HookFeeder) Run(ctx context.Context, wake <-chan struct{}) error {
	for {
		if err := f.Step(); err != nil {
			f.log.Error("alerting: webhooks", "err", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-f.clock.After(pollEvery):
		}
	}
}
