// Package checker is lvsmon's embedded health checker and reconciler:
// what ldirectord and keepalived's checkers do, in process. Every real
// server's checks run on their own schedule in their own goroutine (a
// hanging server delays nobody else), rise and fall thresholds turn
// results into up and down, and a single reconciler goroutine turns the
// config, the health and the operators' overrides into the least set of
// IPVS writes (quiescent or remove, sorry server, restored weights).
package checker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// ProbeFunc runs check c of real server r once (with the check's retries)
// and returns nil when it passes, or why not. It must return by the
// deadline of ctx.
type ProbeFunc func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error

// ServerStatus is what the checker shows of one real server.
type ServerStatus struct {
	ID         string        `json:"id"`
	Health     string        `json:"health"`
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
	// Checks has one entry per check when the service has several; the
	// fields above then sum or combine them (the server is up only while
	// every check passes).
	Checks []ServerStatus `json:"checks,omitempty"`
}

type serverState struct {
	ServerStatus
	health  Health
	okRun   int
	failRun int
	rise    int
	fall    int
	timeout time.Duration // one whole check: the timeout times 1 + retries
	started time.Time
	// name and assumeUp are the service's, from the config in force: a
	// reload that keeps the check keeps the loop (and its copy of the
	// old config), so report reads them here.
	name     string
	assumeUp bool
	server   string // the real server's id (the state's key adds the check's index)
}

// worker is one check loop of one server.
type worker struct {
	cancel context.CancelFunc
	done   chan struct{}
	vs     config.VirtualService // the config it runs with
	r      config.RealServer
	check  config.Check
}

// Checker schedules the checks and keeps the health.
type Checker struct {
	probe    ProbeFunc
	ev       *events.Log
	log      *slog.Logger
	onChange func() // a server changed between up and down

	mu      sync.Mutex
	ctx     context.Context
	state   map[string]*serverState   // by unit: server id + "#" + check index
	workers map[string]*worker        // by unit
	units   map[string][]*serverState // by server id, in check order
	agg     map[string]Health         // by server id: the combined health last reported
}

// New returns a checker; call Run, then Apply with each config.
func New(probe ProbeFunc, ev *events.Log, log *slog.Logger, onChange func()) *Checker {
	if onChange == nil {
		onChange = func() {}
	}
	return &Checker{probe: probe, ev: ev, log: log, onChange: onChange, state: map[string]*serverState{}, workers: map[string]*worker{},
		units: map[string][]*serverState{}, agg: map[string]Health{}}
}

// Run runs the watchdog until ctx ends, then stops every check loop.
// Apply may be called before or after Run starts.
func (c *Checker) Run(ctx context.Context) {
	c.mu.Lock()
	c.ctx = ctx
	c.mu.Unlock()
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			c.mu.Lock()
			ws := c.workers
			c.workers = map[string]*worker{}
			c.mu.Unlock()
			for _, w := range ws {
				w.cancel()
				<-w.done
			}
			return
		case now := <-t.C:
			c.watchdog(now)
		}
	}
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
// health (a reload must not flap weights) and restarts its loop.
func (c *Checker) Apply(cfg *config.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
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
					st = &serverState{ServerStatus: ServerStatus{ID: id, Health: Unknown.String()}, server: id}
					c.state[unit] = st
				}
				units[id] = append(units[id], st)
				st.name, st.assumeUp = vs.Name, vs.AssumeUp()
				if st.name == "" {
					st.name = vs.Key.String()
				}
				if w, ok := c.workers[unit]; ok {
					if reflect.DeepEqual(w.check, *chk) && w.vs.Key == vs.Key && w.r.Key == r.Key {
						continue
					}
					w.cancel()
					delete(c.workers, unit)
				}
				st.CheckType, st.IntervalNS = chk.Type, chk.Interval.D()
				st.timeout = chk.Timeout.D() * time.Duration(1+max(0, chk.Retries))
				st.rise, st.fall, st.started = chk.Rise, chk.Fall, time.Now()
				c.start(unit, vs, r, *chk)
			}
		}
	}
	for unit, w := range c.workers {
		if !want[unit] {
			w.cancel()
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
	c.units = units
}

// combine is a server's health from its checks' healths: down if any
// check is down, up only when every check is up.
func combine(sts []*serverState) Health {
	h := Up
	for _, st := range sts {
		switch st.health {
		case Down:
			return Down
		case Unknown:
			h = Unknown
		}
	}
	return h
}

// start launches one loop; c.mu is held.
func (c *Checker) start(id string, vs config.VirtualService, r config.RealServer, chk config.Check) {
	parent := c.ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, cancel := context.WithCancel(parent)
	w := &worker{cancel: cancel, done: make(chan struct{}), vs: vs, r: r, check: chk}
	c.workers[id] = w
	go func() {
		defer close(w.done)
		c.loop(ctx, id, w)
	}()
}

// loop checks one server every interval. The first check waits a random
// part of the first 80% of the interval, so a thousand servers configured
// at once do not all connect in the same millisecond, and yet every
// server has a result within one interval of the start.
func (c *Checker) loop(ctx context.Context, id string, w *worker) {
	vs, r, chk := &w.vs, &w.r, &w.check
	interval, timeout := chk.Interval.D(), chk.Timeout.D()
	wait := time.Duration(rand.Int64N(int64(interval)*4/5 + 1))
	t := time.NewTimer(wait)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		start := time.Now()
		pctx, cancel := context.WithTimeout(ctx, timeout*time.Duration(1+max(0, chk.Retries)))
		err := c.probe(pctx, vs, r, chk)
		cancel()
		if ctx.Err() != nil {
			return // stopped mid-check: the result means nothing
		}
		c.report(id, w, start, time.Since(start), err)
		next := interval - time.Since(start)
		if next < 0 {
			next = 0 // the check took longer than the interval: go again now
		}
		t.Reset(next)
	}
}

// report records a result and applies rise and fall.
// A result from a loop that Apply has replaced meanwhile is dropped: it
// was measured with the old check.
func (c *Checker) report(id string, w *worker, at time.Time, d time.Duration, err error) {
	vs, r := &w.vs, &w.r
	c.mu.Lock()
	st := c.state[id]
	if st == nil || c.workers[id] != w {
		c.mu.Unlock()
		return
	}
	st.LastTime, st.LastDur, st.LastOK, st.Stalled = at, d, err == nil, false
	if err == nil {
		st.Successes++
		st.okRun++
		st.failRun = 0
		st.LastMsg = ""
	} else {
		st.Failures++
		st.failRun++
		st.okRun = 0
		st.LastMsg = err.Error()
	}
	switch {
	case st.health != Up && st.okRun >= st.rise:
		st.health, st.Since = Up, at
	case st.health != Down && st.failRun >= st.fall:
		st.health, st.Since = Down, at
	}
	st.Health = st.health.String()
	id = st.server
	prev := c.agg[id]
	now := combine(c.units[id])
	c.agg[id] = now
	changed := now != prev
	msg := st.LastMsg
	if len(c.units[id]) > 1 {
		msg = ""
		for _, u := range c.units[id] {
			if u.health == Down {
				msg = u.CheckType + " check: " + u.LastMsg
				break
			}
		}
	}
	name, assumeUp := st.name, st.assumeUp
	c.mu.Unlock()
	if !changed {
		return
	}
	var e events.Event
	switch {
	case now == Down:
		c.log.Warn("real server down", "service", name, "server", r.Key.String(), "reason", msg)
		e = events.Event{Kind: events.ServerDown, Message: fmt.Sprintf("%s: %s is down: %s", name, r.Key, msg)}
	case prev == Down || !assumeUp:
		c.log.Info("real server up", "service", name, "server", r.Key.String())
		e = events.Event{Kind: events.ServerUp, Message: fmt.Sprintf("%s: %s is up", name, r.Key)}
	default:
		// Unknown -> up with startup: up changes nothing in the kernel,
		// so no reconcile round is asked for.
		return
	}
	e.Service, e.Server = vs.Key.ID(), id
	if c.ev != nil {
		if _, err := c.ev.Append(e); err != nil {
			c.log.Error("writing an event failed", "err", err)
		}
	}
	c.onChange()
}

// Health returns every checked server's health by id.
func (c *Checker) Health() map[string]Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]Health, len(c.units))
	for id, sts := range c.units {
		out[id] = combine(sts)
	}
	return out
}

// Status returns every checked server's status, sorted by id.
func (c *Checker) Status() []ServerStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]ServerStatus, 0, len(c.units))
	for id, sts := range c.units {
		s := sts[0].ServerStatus
		s.Health = combine(sts).String()
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
				s.Stalled = s.Stalled || st.Stalled
				s.LastOK = s.LastOK && st.LastOK
				if st.LastTime.After(s.LastTime) {
					s.LastTime, s.LastDur = st.LastTime, st.LastDur
				}
				if st.health == Down && s.LastMsg == "" {
					s.LastMsg = st.CheckType + " check: " + st.LastMsg
				}
				if st.Since.After(s.Since) {
					s.Since = st.Since
				}
			}
			s.CheckType = strings.Join(types, "+")
		}
		s.ID = id
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
