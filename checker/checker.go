// Package checker turns check results into IPVS weights: the scheduler,
// rise and fall, the mass-failure guard and the single-writer
// reconciler — what ldirectord and keepalived's checkers do, in process
// (the probes themselves, one per check type, are package probe's).
// Every real server's checks run on their own schedule, each in a
// goroutine of its own (a hanging server delays nobody else), rise and
// fall turn results into up and down, and a single reconciler goroutine
// turns the config, the health and the operators' overrides into the
// least set of IPVS writes (quiescent or remove, sorry server, restored
// weights).
//
// A verdict needs evidence about the server. A check that fails for a
// reason of the director's own (no file descriptors, no memory, no
// process, lvsmon starved of CPU while it waited) is inconclusive and
// changes nothing; many servers failing at once without an answer trip
// the mass-failure guard (guard.go), which holds their downs until the
// evidence is per server.
package checker

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/probe"
)

// ProbeFunc runs check c of real server r once (with the check's retries)
// and returns nil when it passes, or why not. It must return by the
// deadline of ctx.
type ProbeFunc func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error

// WeightProbeFunc is a ProbeFunc that also says, when the check passes,
// what the server's weight should be (probe.ProbeServerWeight): an
// external check's dynamic exit status, a file check's value.
type WeightProbeFunc func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) (probe.Weight, error)

// ServerStatus is what the checker shows of one real server.
type ServerStatus struct {
	ID         string        `json:"id"`
	Health     health.State  `json:"health"`
	Since      time.Time     `json:"since,omitzero"`
	LastTime   time.Time     `json:"last_check,omitzero"`
	LastOK     bool          `json:"last_ok"`
	LastMsg    string        `json:"last_message,omitempty"`
	LastDur    time.Duration `json:"last_duration_ns"`
	Successes  uint64        `json:"successes"`
	Failures   uint64        `json:"failures"`
	Stalled    bool          `json:"stalled"`
	CheckType  string        `json:"check_type"`
	IntervalNS time.Duration `json:"interval_ns"`
	// Inconclusive counts results that said nothing about the server
	// (the director's own trouble); LastInconclusive is the latest's why.
	Inconclusive     uint64 `json:"inconclusive"`
	LastInconclusive string `json:"last_inconclusive,omitempty"`
	// Pending: the checks fail without an answer and the down waits for
	// the other servers' results (a mass failure or not?). Held: the
	// mass-failure guard holds the down. Either way Health is still the
	// last committed one, which is what the kernel follows.
	Pending bool `json:"pending_down,omitempty"`
	Held    bool `json:"held,omitempty"`
	// CheckWeight is the weight the checks set (an external check's
	// dynamic exit status, a file check's value), which the reconciler
	// writes in place of the configured weight while the server is up;
	// absent when no check sets one.
	CheckWeight *int32 `json:"check_weight,omitempty"`
	// Checks has one entry per check when the service has several; the
	// fields above then sum or combine them (the server is up only while
	// every check passes).
	Checks []ServerStatus `json:"checks,omitempty"`
}

type serverState struct {
	ServerStatus
	health  health.State
	okRun   int
	failRun int
	rise    int
	fall    int
	timeout time.Duration // one whole check: the timeout times 1 + retries
	started time.Time
	// class and failSince describe the current run of failures: its
	// latest class and when its first failing check started.
	class     Class
	failSince time.Time
	// name and assumeUp are the service's, from the config in force: a
	// reload that keeps the check keeps the loop (and its copy of the
	// old config), so report reads them here.
	name     string
	assumeUp bool
	server   string // the real server's id (the state's key adds the check's index)
	service  string // the service's id
	key      lvs.DestKey
	hist     history // the recent results, for the server page
	// weight is what the check's last passing result said of the weight;
	// configured is the server's configured weight in the config in
	// force, which a file check's value adds to.
	weight     probe.Weight
	configured int32
}

// window is how long a failing result counts as "now" for the guard:
// one interval plus the check's whole budget, the time in which every
// server on the same schedule has had a check finish.
func (st *serverState) window() time.Duration { return st.IntervalNS + st.timeout }

// worker is one check loop of one server.
type worker struct {
	cancel context.CancelFunc
	done   chan struct{}         // closed when the loop has stopped
	vs     config.VirtualService // the config it runs with
	r      config.RealServer
	check  config.Check
	// st is the unit's state, gone is set (c.mu held) once Apply or Run
	// has taken the worker out of c.workers: its results are dropped.
	st   *serverState
	gone bool
}

// Checker schedules the checks and keeps the health.
type Checker struct {
	probe    WeightProbeFunc
	ev       *events.Log
	log      *slog.Logger
	onChange func() // a server changed between up and down
	now      func() time.Time
	lag      *lagMonitor
	runners  *runners

	mu sync.Mutex
	// stopped is set when Run has ended: Apply then starts no loop.
	stopped bool
	state   map[string]*serverState   // by unit: server id + "#" + check index
	workers map[string]*worker        // by unit
	units   map[string][]*serverState // by server id, in check order
	// agg is the committed health by server id: what the reconciler
	// follows and events tell. It lags the checks' own health while a
	// down is pending or held.
	agg     map[string]health.State
	guard   config.Guard
	pending map[string]*pendingDown // by server id
	holds   []*hold
	local   localTrouble
	// told is, by server id, the check-set weight last said in an event.
	told map[string]*toldWeight
}

// New returns a checker; call Run, then Apply with each config.
func New(p ProbeFunc, ev *events.Log, log *slog.Logger, onChange func()) *Checker {
	return NewWeight(func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) (probe.Weight, error) {
		return probe.Weight{}, p(ctx, vs, r, c)
	}, ev, log, onChange)
}

// NewWeight returns a checker whose checks may set weights.
func NewWeight(probe WeightProbeFunc, ev *events.Log, log *slog.Logger, onChange func()) *Checker {
	if onChange == nil {
		onChange = func() {}
	}
	return &Checker{probe: probe, ev: ev, log: log, onChange: onChange, now: time.Now, lag: newLagMonitor(), runners: &runners{},
		state: map[string]*serverState{}, workers: map[string]*worker{},
		units: map[string][]*serverState{}, agg: map[string]health.State{}, pending: map[string]*pendingDown{},
		guard: config.Guard{Share: config.DefaultGuardShare, MinServers: config.DefaultGuardMinServers},
		local: newLocalTrouble(), told: map[string]*toldWeight{}}
}

// Run runs the watchdog, the guard's clock and the lag monitor until ctx
// ends, then stops every check loop and waits for them. Apply may be
// called before Run starts (its loops start at once); after Run has
// ended it starts none.
func (c *Checker) Run(ctx context.Context) {
	lagDone := make(chan struct{})
	go func() { defer close(lagDone); c.lag.run(ctx) }()
	t := time.NewTicker(guardTick)
	defer t.Stop()
	var ticks int
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			ws := c.workers
			for _, w := range ws {
				w.gone = true
			}
			c.workers = map[string]*worker{}
			c.stopped = true
			c.mu.Unlock()
			// Stop every loop, then wait: one at a time, each wait would
			// queue behind every other server's report.
			for _, w := range ws {
				w.cancel()
			}
			for _, w := range ws {
				<-w.done
			}
			<-lagDone
			return
		case <-t.C:
		}
		now := c.now()
		c.Tick(now)
		if ticks++; ticks%int(time.Second/guardTick) == 0 {
			c.watchdog(now)
		}
	}
}

// guardTick is how often pending downs and holds are looked at.
const guardTick = 100 * time.Millisecond

// Tick decides pending downs and holds at now. Run calls it every
// guardTick; tests call it with their own clock.
func (c *Checker) Tick(now time.Time) {
	c.mu.Lock()
	out := c.evaluate(now)
	out = append(out, c.flushWeights(now)...)
	c.mu.Unlock()
	c.emit(out)
}

// watchdog flags checks that have not reported for three intervals plus
// their timeout (with every retry): a check loop that froze is said, not
// silent.
func (c *Checker) watchdog(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, st := range c.state {
		if _, running := c.workers[id]; !running {
			continue
		}
		// A result is reported when its check ends (LastTime is when it
		// started); a loop (re)started by Apply counts from its start.
		last := st.LastTime.Add(st.LastDur)
		if st.started.After(last) {
			last = st.started
		}
		limit := 3*st.IntervalNS + st.timeout + time.Second
		stalled := now.Sub(last) > limit
		if stalled && !st.Stalled {
			c.log.Error("a health check has stopped reporting", "server", st.server, "check", st.CheckType, "last_report", last, "limit", limit)
		}
		st.Stalled = stalled
	}
}

// Apply starts, stops and restarts check loops to match cfg. A check that
// did not change keeps its loop and its health; one that changed keeps its
// health (a reload must not flap weights) and restarts its loop. Loops it
// stops have ended when Apply returns.
func (c *Checker) Apply(cfg *config.Config) {
	c.mu.Lock()
	c.guard = cfg.Guard
	if c.guard.Share == 0 {
		c.guard.Share, c.guard.MinServers = config.DefaultGuardShare, config.DefaultGuardMinServers
	}
	var stopped []*worker
	want := map[string]bool{}
	units := map[string][]*serverState{}
	for i := range cfg.VirtualServices {
		vs := cfg.VirtualServices[i]
		checks := vs.AllChecks()
		for _, r := range vs.Reals {
			id := lvs.DestID(vs.Key, r.Key)
			for ci, chk := range checks {
				unit := id + "#" + strconv.Itoa(ci)
				want[unit] = true
				st := c.state[unit]
				if st == nil {
					st = &serverState{ServerStatus: ServerStatus{ID: id, Health: health.Unknown}, server: id}
					c.state[unit] = st
				}
				units[id] = append(units[id], st)
				st.name, st.assumeUp, st.service, st.key = vs.Name, vs.AssumeUp(), vs.Key.ID(), r.Key
				st.configured = r.ConfiguredWeight()
				if st.name == "" {
					st.name = vs.Key.String()
				}
				if w, ok := c.workers[unit]; ok {
					if reflect.DeepEqual(w.check, *chk) && w.vs.Key == vs.Key && w.r.Key == r.Key {
						continue
					}
					w.cancel()
					w.gone = true
					stopped = append(stopped, w)
					delete(c.workers, unit)
					if !keepsWeight(&w.check, chk) {
						st.weight = probe.Weight{} // the new check sets none
					}
				}
				st.CheckType, st.IntervalNS = chk.Type, chk.Interval.D()
				st.timeout = chk.Timeout.D() * time.Duration(1+max(0, chk.Retries))
				st.rise, st.fall, st.started = chk.Rise, chk.Fall, c.now()
				c.start(unit, vs, r, *chk)
			}
		}
	}
	for unit, w := range c.workers {
		if !want[unit] {
			w.cancel()
			w.gone = true
			stopped = append(stopped, w)
			delete(c.workers, unit)
		}
	}
	for unit := range c.state {
		if !want[unit] {
			delete(c.state, unit)
		}
	}
	for id := range c.agg {
		if _, ok := units[id]; !ok {
			delete(c.agg, id)
		}
	}
	for id := range c.told {
		if _, ok := units[id]; !ok {
			delete(c.told, id)
		}
	}
	c.units = units
	c.forgetGone()
	c.mu.Unlock()
	// Wait for the loops stopped (their probes end with their context),
	// but not forever: a frozen loop must not hang a reload; the
	// watchdog has already said it froze.
	limit := time.NewTimer(stopWait)
	defer limit.Stop()
	for _, w := range stopped {
		select {
		case <-w.done:
		case <-limit.C:
			c.log.Error("a replaced health check loop did not stop; going on without it", "check", w.check.Type, "server", w.r.Key.String())
			return
		}
	}
}

// stopWait bounds how long Apply waits for the loops it stopped.
const stopWait = 5 * time.Second

// combine is a server's health from its checks' healths: down if any
// check is down, up only when every check is up.
func combine(sts []*serverState) health.State {
	h := health.Up
	for _, st := range sts {
		switch st.health {
		case health.Down:
			return health.Down
		case health.Unknown:
			h = health.Unknown
		}
	}
	return h
}

// start launches one loop; c.mu is held.
func (c *Checker) start(id string, vs config.VirtualService, r config.RealServer, chk config.Check) {
	if c.stopped {
		return
	}
	// A loop lives until Apply replaces it or Run ends (which cancels
	// every loop), not with any caller's context.
	ctx, cancel := context.WithCancel(context.Background())
	w := &worker{cancel: cancel, done: make(chan struct{}), vs: vs, r: r, check: chk, st: c.state[id]}
	c.workers[id] = w
	c.loop(ctx, w)
}

// loop checks one server every interval until ctx ends, then closes
// w.done once no check of it runs. Between checks a server has a timer
// and no goroutine: each check runs on a runner its timer hands it to,
// so thousands of idle servers hold no stacks for the garbage collector
// to scan, shrink and grow again, and a hanging server still delays
// nobody. The first check waits a random part of the first 80% of the
// interval, so a thousand servers configured at once do not all connect
// in the same millisecond, and yet every server has a result within
// one interval of the start.
func (c *Checker) loop(ctx context.Context, w *worker) {
	chk := &w.check
	interval, timeout := chk.Interval.D(), chk.Timeout.D()
	budget := timeout * time.Duration(1+max(0, chk.Retries))
	finish := sync.OnceFunc(func() { close(w.done) })
	wait := time.Duration(rand.Int64N(int64(interval)*4/5 + 1))
	due := time.Now().Add(wait)
	var t *time.Timer
	check := func() {
		if ctx.Err() != nil {
			finish()
			return
		}
		start := time.Now()
		late := start.Sub(due) // how late this check starts: the process's own lag
		pctx, cancel := context.WithTimeout(ctx, budget)
		wt, err := c.probe(pctx, &w.vs, &w.r, chk)
		cancel()
		if ctx.Err() != nil {
			finish() // stopped mid-check: the result means nothing
			return
		}
		end := time.Now()
		c.report(w, start, end.Sub(start), wt, err, func() time.Duration {
			return max(late, c.lag.maxLag(start, end))
		})
		// A check that took longer than the interval goes again now.
		next := max(0, interval-time.Since(start))
		due = time.Now().Add(next)
		t.Reset(next)
		if ctx.Err() != nil && t.Stop() {
			finish() // stopped while rescheduling
		}
	}
	// Armed only once t is set: check reads it.
	t = time.AfterFunc(time.Duration(math.MaxInt64), func() { c.runners.do(check) })
	t.Reset(wait)
	context.AfterFunc(ctx, func() {
		if t.Stop() {
			finish() // stopped between checks
		}
	})
}

// report records a result and applies rise and fall. lag tells how late
// lvsmon itself was while the check ran (asked only for failures).
// A result from a loop that Apply has replaced meanwhile is dropped: it
// was measured with the old check.
func (c *Checker) report(w *worker, at time.Time, d time.Duration, wt probe.Weight, err error, lag func() time.Duration) {
	c.mu.Lock()
	if w.gone {
		c.mu.Unlock()
		return
	}
	out := c.result(w.st, at, d, wt, err, lag)
	c.mu.Unlock()
	c.emit(out)
}

// result takes one check result: an inconclusive one is counted and
// changes nothing; a conclusive one goes through rise, fall and the
// guard; c.mu is held. wt is what a passing check said of the weight.
func (c *Checker) result(st *serverState, at time.Time, d time.Duration, wt probe.Weight, err error, lag func() time.Duration) []emitFn {
	if err != nil {
		var l time.Duration
		if lag != nil {
			l = lag()
		}
		class, why := classify(err, l, st.timeout)
		if class == ClassLocal {
			msg := err.Error()
			if why == LocalLag {
				msg = fmt.Sprintf("%s (lvsmon itself was %s late: the director is starved, not the server)", msg, l.Round(time.Millisecond))
			}
			st.LastTime, st.LastDur, st.Stalled = at, d, false
			st.Inconclusive++
			st.LastInconclusive = msg
			st.hist.note(at, d, Inconclusive, msg)
			return c.local.note(why, msg, c.now(), st.name, st.key.String(), c.log)
		}
		if st.failRun == 0 || st.class != class {
			st.failSince = at
		}
		st.class = class
	}
	if err == nil {
		st.weight = wt
	}
	c.record(st, at, d, err)
	if err == nil {
		st.hist.note(at, d, Passed, "")
	} else {
		st.hist.note(at, d, Failed, st.LastMsg)
	}
	now := c.now()
	wasUp := c.agg[st.server] == health.Up
	out := c.settle(st.server, now)
	return append(out, c.reweigh(st.server, now, wasUp)...)
}

// record applies one conclusive result to a check's counters, rise and
// fall; c.mu is held.
func (c *Checker) record(st *serverState, at time.Time, d time.Duration, err error) {
	st.LastTime, st.LastDur, st.LastOK, st.Stalled = at, d, err == nil, false
	if err == nil {
		st.Successes++
		st.okRun++
		st.failRun = 0
		st.LastMsg = ""
		st.class, st.failSince = "", time.Time{}
	} else {
		st.Failures++
		st.failRun++
		st.okRun = 0
		st.LastMsg = err.Error()
	}
	switch {
	case st.health != health.Up && st.okRun >= st.rise:
		st.health, st.Since = health.Up, at
	case st.health != health.Down && st.failRun >= st.fall:
		st.health, st.Since = health.Down, at
	}
	st.Health = st.health
}

// settle moves a server's committed health towards what its checks say,
// unless the down must wait (pending) or is held; c.mu is held.
func (c *Checker) settle(id string, now time.Time) []emitFn {
	sts := c.units[id]
	if len(sts) == 0 {
		return nil
	}
	h, prev := combine(sts), c.agg[id]
	hd := c.holdOf(id)
	switch {
	case h != health.Down:
		delete(c.pending, id)
		if hd != nil {
			delete(hd.members, id)
		}
		if h == prev {
			return nil
		}
		return c.commit(id, h)
	case prev == health.Down, hd != nil:
		return nil
	case c.pending[id] != nil:
		return nil
	}
	st := downState(sts)
	if st == nil || !st.class.guarded() || c.guard.Share >= 1 {
		return c.commit(id, health.Down)
	}
	// The others' word must come from checks that started once the
	// failure was known (its check's end), and the wait lasts until each
	// had the time for one: an interval after that end.
	window, known := st.window(), st.LastTime.Add(st.LastDur)
	deadline := st.failSince.Add(window + pendingSlack(window))
	if d := known.Add(st.IntervalNS + pendingSlack(window)); d.After(deadline) {
		deadline = d
	}
	c.pending[id] = &pendingDown{service: st.service, class: st.class, since: st.failSince, known: known, deadline: deadline}
	return nil
}

// pendingSlack is added to a pending down's window: a server whose check
// started just before the failing one will report the same moment at
// the very end of the window, and the guard must have heard it by then.
// Usually the wait ends far sooner, once every other server was heard.
func pendingSlack(window time.Duration) time.Duration {
	return max(window/2, 500*time.Millisecond)
}

// downState is the check of a down server whose failing run decides
// the down: the first failing check's, for several; nil if none is down.
func downState(sts []*serverState) *serverState {
	for _, st := range sts {
		if st.health == health.Down && st.failRun > 0 {
			return st
		}
	}
	for _, st := range sts {
		if st.health == health.Down {
			return st
		}
	}
	return nil
}

// failing reports whether some check of the server fails now.
func failing(sts []*serverState) bool {
	for _, st := range sts {
		if st.failRun > 0 && st.health == health.Down {
			return true
		}
	}
	return false
}

// emitFn is work done after c.mu is released: events (which fsync) and
// logs. A nil emitFn asks for the change callback (a reconcile round).
type emitFn func()

// kick is the emitFn that asks for a reconcile round.
var kick emitFn

// emit writes the events of one decision, in order, and only then calls
// the change callback once: the reconciler's round (and its sorry_on)
// comes after every server_down that caused it.
func (c *Checker) emit(out []emitFn) {
	changed := false
	for _, f := range out {
		if f == nil {
			changed = true
			continue
		}
		f()
	}
	if changed {
		c.onChange()
	}
}

// commit makes h the server's committed health and says so; c.mu is held.
func (c *Checker) commit(id string, h health.State) []emitFn {
	sts := c.units[id]
	prev := c.agg[id]
	c.agg[id] = h
	delete(c.pending, id)
	st := sts[0]
	name, assumeUp, service, key := st.name, st.assumeUp, st.service, st.key
	msg := st.LastMsg
	if len(sts) > 1 {
		msg = ""
		for _, u := range sts {
			if u.health == health.Down {
				msg = u.CheckType + " check: " + u.LastMsg
				break
			}
		}
	}
	var e events.Event
	switch {
	case h == health.Down:
		e = events.Event{Kind: events.ServerDown, Reason: msg, Message: fmt.Sprintf("%s: %s is down: %s", name, key, msg)}
	case h == health.Up && (prev == health.Down || !assumeUp):
		e = events.Event{Kind: events.ServerUp, Message: fmt.Sprintf("%s: %s is up", name, key)}
	case h == health.Up:
		// Unknown -> up with startup: up writes no event; the kernel
		// weight kept across a restart may still need restoring, so the
		// reconciler is asked for a round.
		return []emitFn{kick}
	default:
		return nil
	}
	e.Service, e.Server = service, id
	e.From, e.To, e.Actor = prev.String(), h.String(), events.ActorChecker
	return []emitFn{func() {
		if h == health.Down {
			c.log.Warn("real server down", "service", name, "server", key.String(), "reason", msg)
		} else {
			c.log.Info("real server up", "service", name, "server", key.String())
		}
		c.append(e)
	}, kick}
}

func (c *Checker) append(e events.Event) {
	if c.ev == nil {
		return
	}
	if _, err := c.ev.Append(e); err != nil {
		c.log.Error("writing an event failed", "err", err)
	}
}

// Health returns every checked server's committed health by id: what
// the kernel should follow.
func (c *Checker) Health() map[string]health.State {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]health.State, len(c.units))
	for id := range c.units {
		out[id] = c.agg[id]
	}
	return out
}

// Status returns every checked server's status, sorted by id.
func (c *Checker) Status() []ServerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServerStatus, 0, len(c.units))
	for id, sts := range c.units {
		out = append(out, c.statusOf(id, sts))
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// StatusOf returns one checked server's status: what a page of the
// status API needs, without the whole director's (Status).
func (c *Checker) StatusOf(id string) (ServerStatus, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sts := c.units[id]
	if len(sts) == 0 {
		return ServerStatus{}, false
	}
	return c.statusOf(id, sts), true
}

// statusOf combines a server's checks into its status; c.mu is held.
func (c *Checker) statusOf(id string, sts []*serverState) ServerStatus {
	s := sts[0].ServerStatus
	s.Health = c.agg[id]
	if len(sts) > 1 {
		s.Checks = make([]ServerStatus, len(sts))
		types := make([]string, len(sts))
		for i, st := range sts {
			s.Checks[i], types[i] = st.ServerStatus, st.CheckType
			if i == 0 {
				continue
			}
			s.Successes += st.Successes
			s.Failures += st.Failures
			s.Inconclusive += st.Inconclusive
			if s.LastInconclusive == "" {
				s.LastInconclusive = st.LastInconclusive
			}
			s.Stalled = s.Stalled || st.Stalled
			s.LastOK = s.LastOK && st.LastOK
			if st.LastTime.After(s.LastTime) {
				s.LastTime, s.LastDur = st.LastTime, st.LastDur
			}
			if st.health == health.Down && s.LastMsg == "" {
				s.LastMsg = st.CheckType + " check: " + st.LastMsg
			}
			if st.Since.After(s.Since) {
				s.Since = st.Since
			}
		}
		s.CheckType = strings.Join(types, "+")
	}
	s.Pending = c.pending[id] != nil
	s.Held = c.holdOf(id) != nil
	if w, ok := weightOf(sts); ok {
		s.CheckWeight = &w
	}
	s.ID = id
	return s
}
