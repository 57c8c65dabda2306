package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
)

// Reconciler is the single goroutine that writes to IPVS. Every round it
// reads the kernel table afresh, plans, and applies only the difference;
// a write that fails ends the round, and the next round starts again from
// the kernel's real state, so nothing is left half-applied unnoticed.
type Reconciler struct {
	b      lvs.Backend
	cfg    func() *config.Config
	health func() map[string]health.State
	wts    func() map[string]int32
	ovr    *Overrides
	ev     *events.Log
	log    *slog.Logger
	dryRun bool
	act    func() bool
	kick   *Trigger
	now    func() time.Time
	procs  func() ([]Process, error)

	mu       sync.Mutex
	sorry    map[string]bool
	lastPlan string // dry run: the plan last logged
	stats    ReconcileStats
	others   others
	lastHeld string // the actions held back, as last logged
}

// Options are what a Reconciler reads and where it reports.
type Options struct {
	Backend lvs.Backend
	Config  func() *config.Config
	// Health gives the checker's current view by real-server id.
	Health func() map[string]health.State
	// Weights gives the weights the checks set by real-server id
	// (checker.Weights); nil: none.
	Weights   func() map[string]int32
	Overrides *Overrides  // nil: no operator overrides
	Events    *events.Log // nil: no events
	Log       *slog.Logger
	DryRun    bool
	// Act gates writes (HA: only the master acts when configured). nil
	// means act on every node, keeping a backup's table warm.
	Act func() bool
	// Trigger is how others ask for a round. It is made before the
	// reconciler so that the checker, built first, can hold it; nil
	// makes a new one.
	Trigger *Trigger
	// Now is the clock of the quiet period before a takeover; nil is
	// time.Now.
	Now func() time.Time
	// Processes looks for other programs that write IPVS (ScanProcesses
	// over ipvs.proc_root); nil looks for none (an in-memory table).
	Processes func() ([]Process, error)
}

// Trigger asks the reconciler for a round. Kicks while a round is
// already asked for merge into it.
type Trigger struct{ c chan struct{} }

// NewTrigger makes a trigger for a reconciler not built yet.
func NewTrigger() *Trigger { return &Trigger{c: make(chan struct{}, 1)} }

// Kick asks for a round as soon as possible (a health transition, an
// override, a reload).
func (t *Trigger) Kick() {
	select {
	case t.c <- struct{}{}:
	default:
	}
}

// ReconcileStats are the reconciler's counters, for status and metrics.
type ReconcileStats struct {
	Rounds    uint64    `json:"rounds"`
	Applied   uint64    `json:"applied_actions"`
	Failed    uint64    `json:"failed_actions"`
	LastRound time.Time `json:"last_round,omitzero"`
	// LastOK is the end of the last round that applied all it planned.
	LastOK        time.Time `json:"last_ok,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	DryRun        bool      `json:"dry_run"`
	Pending       []string  `json:"pending,omitempty"` // dry run: what would be done
}

// New builds a reconciler; Run starts it.
func New(o Options) *Reconciler {
	if o.Trigger == nil {
		o.Trigger = NewTrigger()
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Reconciler{b: o.Backend, cfg: o.Config, health: o.Health, wts: o.Weights, ovr: o.Overrides, ev: o.Events, log: o.Log,
		dryRun: o.DryRun, act: o.Act, kick: o.Trigger, now: o.Now, procs: o.Processes, sorry: map[string]bool{}}
}

// Kick asks for a round as soon as possible.
func (r *Reconciler) Kick() { r.kick.Kick() }

// Stats returns a copy of the counters.
func (r *Reconciler) Stats() ReconcileStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Pending = slices.Clone(s.Pending)
	return s
}

// SorryActive reports whether a service's sorry server is in use.
func (r *Reconciler) SorryActive(serviceID string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sorry[serviceID]
}

// Run does a round at once, then on every kick and at least every
// resync, until ctx ends.
func (r *Reconciler) Run(ctx context.Context, resync time.Duration) {
	t := time.NewTicker(resync)
	defer t.Stop()
	for {
		if err := r.Round(ctx); err != nil && ctx.Err() == nil {
			r.log.Error("reconcile round incomplete; retrying from the kernel's state next round", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-r.kick.c:
		case <-t.C:
		}
	}
}

// Round reads the table, plans and applies (or, in a dry run, logs).
func (r *Reconciler) Round(ctx context.Context) error {
	cfg := r.cfg()
	tab, err := r.b.Table(ctx)
	if err != nil {
		r.fail(err)
		return fmt.Errorf("read the table: %w", err)
	}
	r.mu.Lock()
	prevSorry := r.sorry
	r.mu.Unlock()
	st := State{Health: r.health(), SorryActive: prevSorry, Act: r.act == nil || r.act()}
	if r.ovr != nil {
		st.Overrides = r.ovr.All()
	}
	if r.wts != nil {
		st.Weights = r.wts()
	}
	// Another writer's services are planned (the plan is logged) but
	// not written: two writers would undo each other for ever.
	held := r.observe(cfg, &tab, r.now())
	res := Plan(cfg, tab, st)
	res.Actions = r.hold(res, held)
	r.mu.Lock()
	r.stats.Rounds++
	r.stats.LastRound = r.now()
	r.mu.Unlock()
	if r.dryRun {
		var lines []string
		for _, a := range res.Actions {
			lines = append(lines, a.String())
		}
		plan := fmt.Sprint(lines)
		r.mu.Lock()
		changed := plan != r.lastPlan
		r.lastPlan, r.stats.Pending, r.stats.DryRun = plan, lines, true
		r.mu.Unlock()
		if changed {
			for _, l := range lines {
				r.log.Info("dry run: would apply", "action", l)
			}
		}
		return nil
	}
	for i, a := range res.Actions {
		// Marked before the write: a write that fails may still have
		// been applied, and must not read as someone else's next round.
		r.mu.Lock()
		r.others.touch(a)
		r.mu.Unlock()
		if err := do(ctx, r.b, a); err != nil {
			r.fail(err)
			return fmt.Errorf("%s: %w (%d of %d actions applied, the rest wait for the next round)", a, err, i, len(res.Actions))
		}
		r.log.Info("IPVS changed", "action", string(a.Op), "service", a.Service.Key.String(), "server", destString(a), "reason", a.Reason)
		r.mu.Lock()
		r.stats.Applied++
		r.mu.Unlock()
	}
	r.mu.Lock()
	r.sorry = res.SorryActive
	r.stats.LastOK = r.now()
	r.mu.Unlock()
	for id, on := range res.SorryActive {
		if on != res.SorryBefore[id] {
			r.sorryEvent(cfg, id, on)
		}
	}
	return nil
}

func destString(a Action) string {
	if a.Dest.Key.Addr.IsValid() {
		return a.Dest.Key.String()
	}
	return ""
}

func (r *Reconciler) fail(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Failed++
	r.stats.LastError = err.Error()
	r.stats.LastErrorTime = r.now()
}

func (r *Reconciler) sorryEvent(cfg *config.Config, id string, on bool) {
	kind, why, from, to := events.SorryOff, "real servers are back above the quorum", events.On, events.Off
	msg := why + "; the sorry server is out"
	if on {
		kind, why, from, to = events.SorryOn, "no real server (or too little weight) is up", events.Off, events.On
		msg = why + "; the sorry server takes the traffic"
	}
	for _, vs := range cfg.VirtualServices {
		if vs.Key.ID() == id && vs.Sorry != nil {
			msg = fmt.Sprintf("%s %s: %s (%s)", vs.Name, vs.Key, msg, vs.Sorry.Key)
		}
	}
	if on {
		r.log.Warn("sorry server on", "service", id, "message", msg)
	} else {
		r.log.Info("sorry server off", "service", id)
	}
	if r.ev != nil {
		e := events.Event{Kind: kind, Service: id, From: from, To: to, Reason: why, Actor: events.ActorReconciler, Message: msg}
		if _, err := r.ev.Append(e); err != nil {
			r.log.Error("writing an event failed", "err", err)
		}
	}
}

// do applies one action.
func do(ctx context.Context, w lvs.Writer, a Action) error {
	k := a.Service.Key
	switch a.Op {
	case OpCreateService:
		return w.CreateService(ctx, a.Service)
	case OpUpdateService:
		return w.UpdateService(ctx, a.Service)
	case OpCreateDest:
		return w.CreateDest(ctx, k, a.Dest)
	case OpUpdateDest:
		return w.UpdateDest(ctx, k, a.Dest)
	case OpSetWeight:
		return w.SetWeight(ctx, k, a.Dest.Key, a.Dest.Weight)
	case OpDeleteDest:
		return w.DeleteDest(ctx, k, a.Dest.Key)
	}
	return errors.New("unknown action " + string(a.Op))
}
