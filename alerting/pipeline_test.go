package alerting

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

const (
	svcWeb = "tcp_10.0.0.1_80"
	svcDNS = "udp_10.0.0.1_53"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func web(n int) string { return fmt.Sprintf("%s__10.0.%d.%d_80", svcWeb, 1+n/250, 2+n%250) }

func webAddr(n int) string { return fmt.Sprintf("10.0.%d.%d:80", 1+n/250, 2+n%250) }

var testNames = map[string]string{svcWeb: "web", svcDNS: "dns"}

func testName(id string) string { return testNames[id] }

func baseConfig() PipelineConfig {
	return PipelineConfig{
		Director: "dir1", From: "lvsmon <lvsmon@dir1.example>", To: []string{"ops@example.org"},
		Location: time.UTC,
	}
}

func testPolicy(t *testing.T, mod func(*PipelineConfig)) *policy {
	t.Helper()
	cfg := baseConfig()
	if mod != nil {
		mod(&cfg)
	}
	pol, err := newPolicy(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return pol
}

// evs makes events with consecutive seqs. Their messages are in the
// producers' formats, and they get the structured fields the producers
// write from those messages (events.Upgrade).
type evs struct{ seq uint64 }

func (g *evs) ev(kind events.Kind, svc, srv string, at time.Time, msg string) events.Event {
	g.seq++
	return events.Upgrade(events.Event{Seq: g.seq, Time: at, Kind: kind, Service: svc, Server: srv, Message: msg})
}

func (g *evs) down(n int, at time.Time) events.Event {
	return g.ev(events.ServerDown, svcWeb, web(n), at, fmt.Sprintf("web: %s is down: http check: connection refused", webAddr(n)))
}

func (g *evs) up(n int, at time.Time) events.Event {
	return g.ev(events.ServerUp, svcWeb, web(n), at, fmt.Sprintf("web: %s is up", webAddr(n)))
}

func (g *evs) role(inst, msg string, at time.Time) events.Event {
	g.seq++
	return events.Upgrade(events.Event{Seq: g.seq, Time: at, Kind: events.RoleChange, Instance: inst, Message: msg})
}

// memLog is an in-memory EventSource.
type memLog struct {
	mu  sync.Mutex
	evs []events.Event
}

func (l *memLog) Since(seq uint64, limit int) []events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []events.Event
	for _, e := range l.evs {
		if e.Seq > seq && (limit <= 0 || len(out) < limit) {
			out = append(out, e)
		}
	}
	return out
}

func (l *memLog) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.evs) == 0 {
		return 0
	}
	return l.evs[len(l.evs)-1].Seq
}

// add appends e with the next seq, and the structured fields its
// message gives (as g.ev).
func (l *memLog) add(e events.Event) events.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	e = events.Upgrade(e)
	e.Seq = uint64(len(l.evs) + 1)
	l.evs = append(l.evs, e)
	return e
}

// loopClock is a manual clock for tests of the Run loop. After(d) counts
// d from the last time Now returned (not from the clock's current time):
// the loop reads Now, computes how long to sleep, then calls After, and
// an Advance by the test in between would otherwise push the deadline
// later than the loop meant. The test reads the time with peek, which
// leaves that alone.
type loopClock struct {
	mu      sync.Mutex
	now     time.Time
	seen    time.Time
	waiters []fakeWaiter
}

func newLoopClock() *loopClock {
	t := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	return &loopClock{now: t, seen: t}
}

func (c *loopClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen = c.now
	return c.now
}

func (c *loopClock) peek() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *loopClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	at := c.seen.Add(d)
	if !at.After(c.now) {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: at, ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *loopClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = fireDue(c.waiters, c.now)
}

// waitSleep waits (bounded, in real time) until something sleeps on the
// clock until at.
func (c *loopClock) waitSleep(t *testing.T, at time.Time) {
	t.Helper()
	waitFor(t, "a sleep until "+at.String(), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, w := range c.waiters {
			if w.at.Equal(at) {
				return true
			}
		}
		return false
	})
}

func TestFilters(t *testing.T) {
	var g evs
	start := g.ev(events.DaemonStart, "", "", t0, "lvsmon started")
	stop := g.ev(events.DaemonStop, "", "", t0, "lvsmon stopping")
	reloaded := g.ev(events.Reload, "", "", t0, "config reloaded: 3 virtual services")
	rejected := g.ev(events.Reload, "", "", t0, "config reload rejected, running config kept: bad port")
	sorryOn := g.ev(events.SorryOn, svcWeb, "", t0.Add(time.Minute), "web: sorry server on")
	dnsDown := g.ev(events.ServerDown, svcDNS, svcDNS+"__10.0.0.5_53", t0.Add(time.Minute), "dns: 10.0.0.5:53 is down: timeout")
	override := g.ev(events.Override, svcWeb, web(0), t0.Add(time.Minute), "weight 0 by admin")
	sim := g.ev(events.SimulatedDown, svcWeb, web(0), t0.Add(time.Minute), "demo breaks it")
	roleEv := g.role("VI_1", "VI_1: BACKUP → MASTER (priority 100, keepalived)", t0.Add(time.Minute))
	roleStart := g.role("VI_1", "VI_1: MASTER at start (priority 100, keepalived)", t0.Add(2*time.Minute))
	disagree := g.ev(events.Disagreement, "", "", t0.Add(time.Minute), "VI_1: two masters on the wire for VRID 51")
	disagree.Instance = "VI_1"
	agree := g.ev(events.Agreement, "", "", t0.Add(2*time.Minute), "VI_1: disagreement is over")
	agree.Instance = "VI_1"
	down := func(after time.Duration) events.Event { return g.down(0, t0.Add(after)) }
	// Events whose message says otherwise than their fields: the fields
	// decide.
	rejectedQuietly := events.Event{Seq: 900, Time: t0, Kind: events.Reload, To: events.Rejected, Reason: "bad port", Message: "config not taken"}
	appliedLoudly := events.Event{Seq: 901, Time: t0, Kind: events.Reload, To: events.Applied, Message: "config reloaded: service rejected-api added"}
	roleQuietly := events.Event{Seq: 902, Time: t0.Add(2 * time.Minute), Kind: events.RoleChange, Instance: "VI_1", To: "MASTER", Message: "VI_1 is in charge"}

	states := func(s ...string) func(*PipelineConfig) { return func(c *PipelineConfig) { c.DaemonStates = s } }
	for _, c := range []struct {
		name   string
		cfg    func(*PipelineConfig)
		slave  bool
		prior  []events.Event
		ev     events.Event
		reason string
	}{
		{name: "server_down by default", ev: down(0)},
		{name: "server_up after a down", prior: []events.Event{down(0)}, ev: g.up(0, t0.Add(time.Minute))},
		{name: "sorry_on by default", ev: sorryOn},
		{name: "role_change by default", ev: roleEv},
		{name: "daemon_start by default", ev: start},
		{name: "daemon_stop by default", ev: stop},
		{name: "applied reload not by default", ev: reloaded, reason: SuppressedKind},
		{name: "rejected reload by default", ev: rejected},
		{name: "rejected by its field", ev: rejectedQuietly},
		{name: "applied by its field", cfg: func(c *PipelineConfig) { c.Kinds = []string{"reload_rejected"} }, ev: appliedLoudly, reason: SuppressedKind},
		{name: "a reload rejected by its field reloads nothing", cfg: states(DaemonRunning), prior: []events.Event{rejectedQuietly}, ev: down(30 * time.Second)},
		{name: "a reload applied by its field reloads", cfg: states(DaemonRunning), prior: []events.Event{appliedLoudly}, ev: down(30 * time.Second), reason: SuppressedDaemonState},
		{name: "dup: the same role by its field", prior: []events.Event{roleEv}, ev: roleQuietly, reason: SuppressedDuplicate},
		{name: "kind reload selects applied ones", cfg: func(c *PipelineConfig) { c.Kinds = []string{string(events.Reload)} }, ev: reloaded},
		{name: "simulated events not by default", ev: sim, reason: SuppressedKind},
		{name: "override by default (the audit trail)", ev: override},
		{name: "applied reloads not by default", ev: reloaded, reason: SuppressedKind},
		{name: "kinds all", cfg: func(c *PipelineConfig) { c.Kinds = []string{"all"} }, ev: override},
		{name: "kinds limit", cfg: func(c *PipelineConfig) { c.Kinds = []string{string(events.ServerDown)} }, ev: sorryOn, reason: SuppressedKind},
		{name: "service by name", cfg: func(c *PipelineConfig) { c.Services = []string{"web"} }, ev: down(0)},
		{name: "service by id", cfg: func(c *PipelineConfig) { c.Services = []string{svcWeb} }, ev: down(0)},
		{name: "other service", cfg: func(c *PipelineConfig) { c.Services = []string{"web"} }, ev: dnsDown, reason: SuppressedService},
		{name: "director-wide passes a service filter", cfg: func(c *PipelineConfig) { c.Services = []string{"web"} }, ev: roleEv},
		{name: "running excludes starting", cfg: states(DaemonRunning), prior: []events.Event{start}, ev: down(10 * time.Second), reason: SuppressedDaemonState},
		{name: "running after the settle time", cfg: states(DaemonRunning), prior: []events.Event{start}, ev: down(2 * time.Minute)},
		{name: "starting", cfg: states(DaemonStarting), prior: []events.Event{start}, ev: down(10 * time.Second)},
		{name: "starting is over", cfg: states(DaemonStarting), prior: []events.Event{start}, ev: down(2 * time.Minute), reason: SuppressedDaemonState},
		{name: "running excludes stopping", cfg: states(DaemonRunning), prior: []events.Event{start, stop}, ev: down(time.Hour), reason: SuppressedDaemonState},
		{name: "stopping", cfg: states(DaemonStopping), prior: []events.Event{stop}, ev: down(time.Hour)},
		{name: "running excludes reloading", cfg: states(DaemonRunning), prior: []events.Event{reloaded}, ev: down(30 * time.Second), reason: SuppressedDaemonState},
		{name: "reloading", cfg: states(DaemonReloading), prior: []events.Event{reloaded}, ev: down(30 * time.Second)},
		{name: "a rejected reload reloads nothing", cfg: states(DaemonRunning), prior: []events.Event{rejected}, ev: down(30 * time.Second)},
		{name: "none: no real-server mail", cfg: states("none"), ev: down(0), reason: SuppressedDaemonState},
		{name: "none: role mail", cfg: states("none"), ev: roleEv},
		{name: "backup: no real-server mail", slave: true, ev: down(0), reason: SuppressedBackup},
		{name: "backup: no sorry mail", slave: true, ev: sorryOn, reason: SuppressedBackup},
		{name: "backup: role mail", slave: true, ev: roleEv},
		{name: "backup: daemon mail", slave: true, ev: start},
		{name: "backup mails on", cfg: func(c *PipelineConfig) { c.BackupMails = true }, slave: true, ev: down(0)},
		{name: "dup: down twice", prior: []events.Event{down(0)}, ev: down(time.Minute), reason: SuppressedDuplicate},
		{name: "dup: up of a server known up", ev: g.up(0, t0), reason: SuppressedDuplicate},
		{name: "dup: sorry on twice", prior: []events.Event{sorryOn}, ev: sorryOn, reason: SuppressedDuplicate},
		{name: "dup: same role at start", prior: []events.Event{roleEv}, ev: roleStart, reason: SuppressedDuplicate},
		{name: "new role at start", ev: roleStart},
		{name: "dup: same disagreement", prior: []events.Event{disagree}, ev: disagree, reason: SuppressedDuplicate},
		{name: "agreement after disagreement", prior: []events.Event{disagree}, ev: agree},
		{name: "dup: agreement without disagreement", ev: agree, reason: SuppressedDuplicate},
		{name: "dedup before filters: a filtered up still updates the state", cfg: func(c *PipelineConfig) { c.Kinds = []string{string(events.ServerDown)} },
			prior: []events.Event{down(0), g.up(0, t0.Add(time.Minute))}, ev: down(2 * time.Minute)},
	} {
		t.Run(c.name, func(t *testing.T) {
			e := newEngine(testPolicy(t, c.cfg), newState(), testName)
			for _, p := range c.prior {
				e.observe(p, p.Time, !c.slave)
			}
			held := len(e.st.Group)
			got := e.observe(c.ev, c.ev.Time, !c.slave)
			if got != c.reason {
				t.Fatalf("reason %q, want %q", got, c.reason)
			}
			if (got == "") != (len(e.st.Group) == held+1) {
				t.Errorf("held %d -> %d with reason %q", held, len(e.st.Group), got)
			}
			if got != "" && e.c.suppressed[got] == 0 {
				t.Errorf("suppression %q not counted: %v", got, e.c.suppressed)
			}
		})
	}
}

func TestPolicyValidation(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(*PipelineConfig)
		want string
	}{
		{"bad from", func(c *PipelineConfig) { c.From = "nope" }, "from"},
		{"no to", func(c *PipelineConfig) { c.To = nil }, "recipients"},
		{"unknown kind", func(c *PipelineConfig) { c.Kinds = []string{"server_dwon"} }, "unknown event kind"},
		{"unknown state", func(c *PipelineConfig) { c.DaemonStates = []string{"sleeping"} }, "unknown daemon state"},
		{"none and more", func(c *PipelineConfig) { c.DaemonStates = []string{"none", "running"} }, "cannot be combined"},
		{"negative reminder", func(c *PipelineConfig) { c.Reminder = -time.Second }, "negative"},
	} {
		cfg := baseConfig()
		c.mod(&cfg)
		if _, err := newPolicy(cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err %v, want %q", c.name, err, c.want)
		}
	}
	pol := testPolicy(t, nil)
	if pol.prefix != "[lvsmon dir1]" || pol.window != DefaultGroupWindow || pol.rate != DefaultRateLimit ||
		pol.flapCount != DefaultFlapCount || pol.flapWindow != DefaultFlapWindow || pol.reminder != 0 || pol.settle != DefaultSettle {
		t.Errorf("defaults: %+v", pol)
	}
}

// composeAll writes the mails of the batches.
func composeAll(e *engine, bs []*batch, now time.Time) []Mail {
	c := &composer{pol: e.pol, name: testName, describe: func(s string) string { return "state of " + s }}
	var out []Mail
	for _, b := range bs {
		out = append(out, c.batchMail(b, now))
	}
	return out
}

// tickAll ticks until nothing more is due now.
func tickAll(e *engine, now time.Time, master bool) []*batch {
	var out []*batch
	for b := e.tick(now, master); b != nil; b = e.tick(now, master) {
		out = append(out, b)
	}
	return out
}

func TestGroupWindow200ServersOneMail(t *testing.T) {
	e := newEngine(testPolicy(t, nil), newState(), testName)
	var g evs
	for i := range 200 {
		if r := e.observe(g.down(i, t0.Add(time.Duration(i)*4*time.Millisecond)), t0, true); r != "" {
			t.Fatalf("event %d suppressed: %s", i, r)
		}
	}
	if next, ok := e.nextDue(t0); !ok || !next.Equal(t0.Add(10*time.Second)) {
		t.Fatalf("next due %v %v, want the window's end", next, ok)
	}
	if bs := tickAll(e, t0.Add(9*time.Second), true); len(bs) != 0 {
		t.Fatalf("flushed before the window ended")
	}
	bs := tickAll(e, t0.Add(10*time.Second), true)
	if len(bs) != 1 || len(bs[0].items) != 200 {
		t.Fatalf("%d mails, want 1 with 200 events", len(bs))
	}
	m := composeAll(e, bs, t0.Add(10*time.Second))[0]
	if want := "[lvsmon dir1] 200 real servers down on web (tcp_10.0.0.1_80)"; m.Subject != want {
		t.Errorf("subject %q, want %q", m.Subject, want)
	}
	for i := range 200 {
		if !strings.Contains(m.Body, webAddr(i)+"  connection refused") && !strings.Contains(m.Body, webAddr(i)+"  http check: connection refused") {
			t.Fatalf("server %s missing from the body:\n%s", webAddr(i), m.Body)
		}
	}
	if !strings.Contains(m.Body, "State of the service now:\n    state of "+svcWeb) {
		t.Errorf("no service state in the body")
	}
	if len(m.EventSeqs) == 0 || len(m.EventSeqs) > 200 || !strings.Contains(m.Body, "Event log numbers: 1-200.") {
		t.Errorf("event numbers: header %d, body %q", len(m.EventSeqs), m.Body[len(m.Body)-120:])
	}
	if _, err := m.Render(); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.nextDue(t0.Add(10 * time.Second)); ok {
		t.Errorf("something still due after the flush")
	}
	if e.c.grouped != 200 || e.c.mailed != 200 {
		t.Errorf("counters %+v", e.c)
	}
}

func TestSummaryAndLines(t *testing.T) {
	var g evs
	c := &composer{pol: testPolicy(t, nil), name: testName}
	it := func(e events.Event) item {
		return item{Seq: e.Seq, Time: e.Time, Kind: e.Kind, Service: e.Service, Server: e.Server, Instance: e.Instance,
			From: e.From, To: e.To, Reason: e.Reason, Message: e.Message}
	}
	dns := it(g.ev(events.ServerDown, svcDNS, svcDNS+"__10.0.0.5_53", t0, "dns: 10.0.0.5:53 is down: timeout"))
	role := it(g.role("VI_1", "VI_1: BACKUP → MASTER (priority 100, keepalived)", t0))
	for _, tc := range []struct {
		items []item
		want  string
	}{
		{[]item{it(g.down(0, t0))}, "real server 10.0.1.2:80 down on web (tcp_10.0.0.1_80)"},
		{[]item{it(g.down(0, t0)), it(g.down(1, t0)), it(g.down(2, t0)), it(g.up(3, t0))}, "3 real servers down on web (tcp_10.0.0.1_80), 1 up"},
		{[]item{it(g.down(0, t0)), dns}, "2 real servers down on 2 services"},
		{[]item{it(g.up(0, t0))}, "real server 10.0.1.2:80 up again on web (tcp_10.0.0.1_80)"},
		{[]item{it(g.down(0, t0)), role}, "role change: VI_1 BACKUP → MASTER; real server 10.0.1.2:80 down on web (tcp_10.0.0.1_80)"},
		{[]item{{Kind: noteReminder, Service: svcWeb, Server: web(0)}, {Kind: noteReminder, Service: svcWeb, Server: web(1)}}, "2 real servers still down on web (tcp_10.0.0.1_80)"},
		{[]item{{Kind: noteFlapping, Service: svcWeb, Server: web(0)}}, "real server 10.0.1.2:80 flapping on web (tcp_10.0.0.1_80)"},
		{[]item{it(g.ev(events.SorryOn, svcWeb, "", t0, "sorry on"))}, "sorry server on for web (tcp_10.0.0.1_80)"},
		{[]item{it(g.ev(events.Reload, "", "", t0, "config reload rejected, running config kept: x"))}, "config reload rejected"},
		{[]item{it(g.ev(events.DaemonStart, "", "", t0, "started")), it(g.ev(events.Override, svcWeb, web(0), t0, "w=0"))}, "1 override; lvsmon started"},
		{[]item{{Kind: events.Override, Service: svcWeb, Server: web(0), To: "drain", Actor: "alice (web, 10.9.0.1)", Reason: "kernel update"}}, "real server 10.0.1.2:80 drained by alice (web, 10.9.0.1)"},
		{[]item{{Kind: events.Override, Service: svcWeb, Server: web(0), To: "disable", Actor: "alice (web, 10.9.0.1)"}, {Kind: events.Override, Service: svcWeb, Server: web(1), To: events.Enabled, Actor: "bob (api, 10.9.0.2)"}, {Kind: events.Override, Service: svcWeb, Server: web(2), To: "drain", Actor: "alice (web, 10.9.0.1)"}}, "3 overrides by alice, bob"},
		{[]item{{Kind: events.Disagreement, Instance: "VI_1"}}, "role disagreement: VI_1"},
		{[]item{it(g.down(0, t0)), it(g.ev(events.GuardHold, svcWeb, "", t0, "mass failure"))}, "mass failure, downs held: web (tcp_10.0.0.1_80); real server 10.0.1.2:80 down on web (tcp_10.0.0.1_80)"},
		{[]item{it(g.ev(events.GuardHold, "", "", t0, "mass failure")), it(g.ev(events.GuardRelease, "", "", t0, "ended"))}, "mass failure, downs held: the whole director; mass-failure hold ended: the whole director"},
	} {
		if got := c.summary(tc.items); got != tc.want {
			t.Errorf("summary %q, want %q", got, tc.want)
		}
	}
	for _, tc := range []struct {
		it   item
		want string
	}{
		{it(g.down(0, t0)), "2026-03-01 12:00:00  DOWN        10.0.1.2:80  http check: connection refused"},
		{item{Time: t0, Kind: events.Override, Server: web(0), To: "drain", Actor: "alice (web, 10.9.0.1)", Reason: "kernel update"}, "2026-03-01 12:00:00  DRAINED     10.0.1.2:80  by alice (web, 10.9.0.1): kernel update"},
		{item{Time: t0, Kind: events.Override, Server: web(0), To: events.Enabled, Actor: "bob (api, 10.9.0.2)"}, "2026-03-01 12:00:00  ENABLED     10.0.1.2:80  by bob (api, 10.9.0.2)"},
		{item{Time: t0, Kind: events.Override, Server: web(0), Message: "web: drain set by 127.0.0.1"}, "2026-03-01 12:00:00  override  10.0.1.2:80  web: drain set by 127.0.0.1"},
		{item{Time: t0.Add(150 * time.Minute), Kind: events.ServerUp, Server: web(0), Since: t0}, "2026-03-01 14:30:00  UP          10.0.1.2:80  after 2h30m down (since 2026-03-01 12:00:00)"},
		{item{Time: t0.Add(time.Hour), Kind: noteReminder, Server: web(0), Since: t0, Reason: "timeout", Message: "web: x is down: timeout"}, "2026-03-01 13:00:00  STILL DOWN  10.0.1.2:80  for 1h (since 2026-03-01 12:00:00): timeout"},
		{role, "2026-03-01 12:00:00  role change  VI_1: BACKUP → MASTER (priority 100, keepalived)"},
		{item{Time: t0, Kind: events.GuardHold, Message: "mass failure on the whole director: ..."}, "2026-03-01 12:00:00  HELD        mass failure on the whole director: ..."},
		{item{Time: t0, Kind: events.ServerDown, Server: "tcp_2001-db8--1_80__2001-db8--2_8080"}, "2026-03-01 12:00:00  DOWN        [2001:db8::2]:8080  (no reason given)"},
	} {
		if got := c.line(tc.it); got != tc.want {
			t.Errorf("line %q\n want %q", got, tc.want)
		}
	}
	long := make([]item, 0, 40)
	for i := range 40 {
		long = append(long, item{Kind: events.RoleChange, Instance: fmt.Sprintf("VI_%d", i), Message: fmt.Sprintf("VI_%d: BACKUP → MASTER", i)})
	}
	if s := c.subject(c.summary(long)); len([]rune(s)) > maxSubject+len(c.pol.prefix)+1 || !strings.HasSuffix(s, "…") {
		t.Errorf("long subject not cut: %q", s)
	}
}

func TestFlapDamping(t *testing.T) {
	e := newEngine(testPolicy(t, nil), newState(), testName)
	var g evs
	at := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	var mails []Mail
	flushAt := func(now time.Time) {
		mails = append(mails, composeAll(e, tickAll(e, now, true), now)...)
	}
	// Three transitions are mailed; the fourth within 10m makes it
	// flapping: one note.
	for i, ev := range []events.Event{g.down(0, at(0)), g.up(0, at(1)), g.down(0, at(2)), g.up(0, at(3))} {
		if r := e.observe(ev, ev.Time, true); r != "" {
			t.Fatalf("transition %d suppressed: %s", i, r)
		}
		flushAt(ev.Time.Add(10 * time.Second))
	}
	if len(mails) != 4 || !strings.Contains(mails[3].Subject, "real server 10.0.1.2:80 flapping on web") ||
		!strings.Contains(mails[3].Body, "FLAPPING    10.0.1.2:80  changed state 4 times within 10m, now UP") {
		t.Fatalf("mails: %d, last %q\n%s", len(mails), mails[len(mails)-1].Subject, mails[len(mails)-1].Body)
	}
	// Quiet while it flaps.
	for _, ev := range []events.Event{g.down(0, at(4)), g.up(0, at(5)), g.down(0, at(6))} {
		if r := e.observe(ev, ev.Time, true); r != SuppressedFlapping {
			t.Fatalf("reason %q, want flapping", r)
		}
		flushAt(ev.Time.Add(10 * time.Second))
	}
	if len(mails) != 4 {
		t.Fatalf("%d mails while flapping", len(mails))
	}
	if next, _ := e.nextDue(at(7)); !next.Equal(at(16)) {
		t.Errorf("next due %v, want 10m after the last change", next)
	}
	flushAt(at(16).Add(-time.Second))
	if len(mails) != 4 {
		t.Fatalf("stable note before FlapWindow")
	}
	// Stable for 10m: one note with the final state, then the window.
	flushAt(at(16))
	flushAt(at(16).Add(10 * time.Second))
	if len(mails) != 5 || !strings.Contains(mails[4].Subject, "real server 10.0.1.2:80 stable again on web") ||
		!strings.Contains(mails[4].Body, "STABLE      10.0.1.2:80  no change for 10m: DOWN since 2026-03-01 12:06:00: http check: connection refused") {
		t.Fatalf("stable mail %q\n%s", mails[len(mails)-1].Subject, mails[len(mails)-1].Body)
	}
	// After that, changes are mailed again.
	if r := e.observe(g.up(0, at(30)), at(30), true); r != "" {
		t.Errorf("up after the flap: %q", r)
	}
	if e.c.suppressed[SuppressedFlapping] != 3 {
		t.Errorf("suppressed %v", e.c.suppressed)
	}
}

func TestRemindersAndRecovery(t *testing.T) {
	e := newEngine(testPolicy(t, func(c *PipelineConfig) { c.Reminder = time.Hour }), newState(), testName)
	var g evs
	var mails []Mail
	tickAt := func(now time.Time) {
		mails = append(mails, composeAll(e, tickAll(e, now, true), now)...)
	}
	e.observe(g.down(0, t0), t0, true)
	e.observe(g.down(1, t0), t0, true)
	tickAt(t0.Add(10 * time.Second))
	if len(mails) != 1 {
		t.Fatalf("%d mails for the down", len(mails))
	}
	notified := t0.Add(10 * time.Second)
	for i := 1; i <= 2; i++ {
		due := notified.Add(time.Hour)
		if next, _ := e.nextDue(due.Add(-time.Minute)); !next.Equal(due) {
			t.Fatalf("reminder %d due %v, want %v", i, next, due)
		}
		tickAt(due.Add(-time.Second))
		if len(mails) != i {
			t.Fatalf("reminder before its time")
		}
		tickAt(due)                       // reminders join the window
		tickAt(due.Add(10 * time.Second)) // one mail for both servers
		if len(mails) != i+1 {
			t.Fatalf("%d mails after reminder %d", len(mails), i)
		}
		m := mails[i]
		if !strings.Contains(m.Subject, "2 real servers still down on web") ||
			!strings.Contains(m.Body, "STILL DOWN  10.0.1.2:80  for "+human(due.Sub(t0))+" (since 2026-03-01 12:00:00): http check: connection refused") {
			t.Fatalf("reminder %d: %q\n%s", i, m.Subject, m.Body)
		}
		notified = due.Add(10 * time.Second)
	}
	// Server 0 recovers: a recovery mail; reminders go on for server 1
	// only.
	upAt := notified.Add(20 * time.Minute)
	e.observe(g.up(0, upAt), upAt, true)
	tickAt(upAt.Add(10 * time.Second))
	m := mails[len(mails)-1]
	if len(mails) != 4 || m.Subject != "[lvsmon dir1] real server 10.0.1.2:80 up again on web (tcp_10.0.0.1_80)" ||
		!strings.Contains(m.Body, "UP          10.0.1.2:80  after "+human(upAt.Sub(t0))+" down") {
		t.Fatalf("recovery %q\n%s", m.Subject, m.Body)
	}
	due := notified.Add(time.Hour)
	tickAt(due)
	tickAt(due.Add(10 * time.Second))
	if len(mails) != 5 || !strings.Contains(mails[4].Subject, "real server 10.0.1.3:80 still down on web") {
		t.Fatalf("third reminder: %q", mails[len(mails)-1].Subject)
	}
	e.observe(g.up(1, due.Add(time.Minute)), due.Add(time.Minute), true)
	tickAt(due.Add(2 * time.Minute))
	if _, ok := e.nextDue(due.Add(2 * time.Minute)); ok {
		t.Errorf("still something due after both recovered")
	}
	tickAt(due.Add(5 * time.Hour))
	if len(mails) != 6 {
		t.Errorf("%d mails; reminders after the recovery?", len(mails))
	}
	if e.c.reminders != 5 {
		t.Errorf("%d reminders, want 5", e.c.reminders)
	}
}

func TestRateLimitDigest(t *testing.T) {
	e := newEngine(testPolicy(t, func(c *PipelineConfig) { c.RateLimit = 2 }), newState(), testName)
	e.pol.digestLines = 3
	var g evs
	var mails []Mail
	for i := range 6 {
		at := t0.Add(time.Duration(i) * time.Minute)
		e.observe(g.down(i, at), at, true)
		now := at.Add(10 * time.Second)
		mails = append(mails, composeAll(e, tickAll(e, now, true), now)...)
	}
	if len(mails) != 2 || e.c.digested != 4 || len(e.st.Backlog.Items) != 3 || e.st.Backlog.More != 1 {
		t.Fatalf("%d mails, %d digested, backlog %+v", len(mails), e.c.digested, e.st.Backlog)
	}
	slot := t0.Add(10 * time.Second).Add(time.Hour)
	if next, _ := e.nextDue(t0.Add(time.Hour)); !next.Equal(slot) {
		t.Fatalf("next due %v, want %v (an hour after the first mail)", next, slot)
	}
	if bs := tickAll(e, slot.Add(-time.Second), true); len(bs) != 0 {
		t.Fatalf("digest before the hour allowed")
	}
	bs := tickAll(e, slot, true)
	if len(bs) != 1 || !bs[0].digest {
		t.Fatalf("%d batches at the slot", len(bs))
	}
	m := composeAll(e, bs, slot)[0]
	if m.Subject != "[lvsmon dir1] digest of 4 held-back events: 4 server_down" ||
		!strings.Contains(m.Body, "reached its limit of 2 alert mails per hour at 2026-03-01 12:02:00") ||
		!strings.Contains(m.Body, "... and 1 more.") || !strings.Contains(m.Body, "Event log numbers: 3-6.") ||
		!slices.Equal(m.EventSeqs, []uint64{3, 4, 5, 6}) {
		t.Fatalf("digest %q %v\n%s", m.Subject, m.EventSeqs, m.Body)
	}
	if !e.st.Backlog.empty() || len(e.st.Sent) != 2 {
		t.Errorf("after the digest: backlog %+v, sent %v", e.st.Backlog, e.st.Sent)
	}
	// A digest of a few events says what they are.
	e2 := newEngine(testPolicy(t, func(c *PipelineConfig) { c.RateLimit = 1 }), newState(), testName)
	e2.observe(g.down(0, t0), t0, true)
	tickAll(e2, t0.Add(10*time.Second), true)
	e2.observe(g.down(1, t0.Add(time.Minute)), t0.Add(time.Minute), true)
	tickAll(e2, t0.Add(2*time.Minute), true)
	bs = tickAll(e2, t0.Add(time.Hour+10*time.Second), true)
	if m := composeAll(e2, bs, t0)[0]; m.Subject != "[lvsmon dir1] digest of 1 held-back events: real server 10.0.1.3:80 down on web (tcp_10.0.0.1_80)" {
		t.Errorf("subject %q", m.Subject)
	}
	// No limit.
	e3 := newEngine(testPolicy(t, func(c *PipelineConfig) { c.RateLimit = -1 }), newState(), testName)
	for i := range 50 {
		at := t0.Add(time.Duration(i) * time.Minute)
		e3.observe(g.down(i, at), at, true)
		if len(tickAll(e3, at.Add(10*time.Second), true)) != 1 {
			t.Fatalf("mail %d held back without a limit", i)
		}
	}
}

func TestMasterOnly(t *testing.T) {
	e := newEngine(testPolicy(t, func(c *PipelineConfig) { c.Reminder = time.Hour }), newState(), testName)
	var g evs
	if r := e.observe(g.down(0, t0), t0, false); r != SuppressedBackup {
		t.Fatalf("reason %q", r)
	}
	if r := e.observe(g.role("VI_1", "VI_1: MASTER → BACKUP (priority 50, keepalived)", t0), t0, false); r != "" {
		t.Fatalf("role change suppressed: %q", r)
	}
	bs := tickAll(e, t0.Add(10*time.Second), false)
	if len(bs) != 1 || len(bs[0].items) != 1 || bs[0].items[0].Kind != events.RoleChange {
		t.Fatalf("batches %+v", bs)
	}
	// Reminders are not sent by a backup either; once master, they are:
	// the new master reminds of what the old one mailed.
	tickAll(e, t0.Add(time.Hour), false)
	if e.c.suppressed[SuppressedBackup] != 2 || len(e.st.Group) != 0 {
		t.Fatalf("suppressed %v, group %d", e.c.suppressed, len(e.st.Group))
	}
	tickAll(e, t0.Add(2*time.Hour), true)
	bs = tickAll(e, t0.Add(2*time.Hour+10*time.Second), true)
	if len(bs) != 1 || bs[0].items[0].Kind != noteReminder {
		t.Fatalf("no reminder from the new master: %+v", bs)
	}
}

func TestSeqRanges(t *testing.T) {
	var r seqRanges
	for _, s := range []uint64{1, 2, 3, 7, 8, 5, 10} {
		r = r.add(s)
	}
	if got := r.String(); got != "1-3, 5, 7-8, 10" {
		t.Errorf("ranges %q", got)
	}
	big := seqRanges{{1_000_000, 1_000_500}}
	h := headerSeqs(big)
	if len(h) < 100 || len(h) > 113 {
		t.Errorf("%d seqs in the header", len(h))
	}
	m := NewMail("a@b.example", []string{"c@d.example"}, "s", "b", t0, h...)
	raw, err := m.Render()
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(raw), "\r\n") {
		if len(l) > 998 {
			t.Errorf("line of %d characters", len(l))
		}
	}
}

// --- The shell: persistence, crashes, restarts. ---

type rig struct {
	t        *testing.T
	log      *memLog
	clk      *loopClock
	outDir   string
	stateDir string
	cfg      PipelineConfig
	master   bool
	g        evs
}

func newRig(t *testing.T, mod func(*PipelineConfig)) *rig {
	r := &rig{t: t, log: &memLog{}, clk: newLoopClock(), outDir: t.TempDir(), stateDir: t.TempDir(), master: true}
	r.cfg = baseConfig()
	r.cfg.StateDir = r.stateDir
	if mod != nil {
		mod(&r.cfg)
	}
	return r
}

// start opens the outbox and builds a pipeline, as lvsmon does when it
// starts.
func (r *rig) start() (*Pipeline, *Outbox) {
	r.t.Helper()
	o, err := OpenOutbox(r.outDir, 0, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	p, err := NewPipeline(r.cfg, PipelineDeps{
		Outbox: o, Events: r.log, Clock: r.clk, Name: testName,
		Describe: func(s string) string { return "5 real servers, 3 up" },
		IsMaster: func() bool { return r.master },
	})
	if err != nil {
		r.t.Fatal(err)
	}
	return p, o
}

func (r *rig) down(n int) events.Event {
	return r.log.add(r.g.down(n, r.clk.peek()))
}

func (r *rig) up(n int) events.Event {
	return r.log.add(r.g.up(n, r.clk.peek()))
}

func mustStep(t *testing.T, p *Pipeline) {
	t.Helper()
	if err := p.step(); err != nil {
		t.Fatal(err)
	}
}

func TestPipelineFirstStartSkipsHistory(t *testing.T) {
	r := newRig(t, nil)
	r.down(0)
	r.down(1)
	p, o := r.start()
	mustStep(t, p)
	r.clk.Advance(time.Minute)
	mustStep(t, p)
	if o.Len() != 0 || p.Stats().Cursor != 2 {
		t.Fatalf("history mailed: %d mails, stats %+v", o.Len(), p.Stats())
	}
	r.down(2)
	mustStep(t, p)
	r.clk.Advance(10 * time.Second)
	mustStep(t, p)
	if o.Len() != 1 {
		t.Fatalf("%d mails, want 1", o.Len())
	}
}

// TestPipelineCrashSafety crashes the pipeline at each stage of a step
// that queues a mail, then starts a second one on the same directories
// (as a restart does; the first one's memory is gone) and checks that
// exactly one mail reports the events.
func TestPipelineCrashSafety(t *testing.T) {
	for _, stage := range []string{"state", "before-save", "after-save", "after-put"} {
		t.Run(stage, func(t *testing.T) {
			r := newRig(t, nil)
			p1, _ := r.start()
			var seqs []uint64
			for i := range 3 {
				seqs = append(seqs, r.down(i).Seq)
			}
			if stage == "state" {
				// Crash before the step that read the events saved them:
				// they are replayed from the log.
				p1.crash = func(s string) bool { return s == stage }
				if err := p1.step(); !errors.Is(err, errCrash) {
					t.Fatalf("step: %v", err)
				}
			} else {
				mustStep(t, p1) // the events wait in the window, saved
				r.clk.Advance(10 * time.Second)
				p1.crash = func(s string) bool { return s == stage }
				if err := p1.step(); !errors.Is(err, errCrash) {
					t.Fatalf("step: %v", err)
				}
			}
			p2, o2 := r.start()
			for range 3 {
				mustStep(t, p2)
				r.clk.Advance(10 * time.Second)
			}
			pend := o2.Pending()
			if len(pend) != 1 {
				t.Fatalf("%d mails after the restart, want 1", len(pend))
			}
			if !slices.Equal(pend[0].Mail.EventSeqs, seqs) {
				t.Errorf("mail reports %v, want %v", pend[0].Mail.EventSeqs, seqs)
			}
			for i := range 3 {
				if !strings.Contains(pend[0].Mail.Body, webAddr(i)) {
					t.Errorf("server %d missing", i)
				}
			}
			if st := p2.eng.st; st.InFlight != nil || st.Cursor != 3 || len(st.Group) != 0 {
				t.Errorf("state after: inflight %v, cursor %d, group %d", st.InFlight != nil, st.Cursor, len(st.Group))
			}
			// And a third start changes nothing.
			p3, o3 := r.start()
			mustStep(t, p3)
			r.clk.Advance(time.Hour)
			mustStep(t, p3)
			if o3.Len() != 1 {
				t.Errorf("%d mails after another restart", o3.Len())
			}
		})
	}
}

// TestPipelineCrashAfterSentIsAtLeastOnce documents the one duplicate:
// the dispatcher sent (and removed) the mail between the Put and the
// clearing of the marker, then lvsmon crashed. The restart queues the
// same mail again, with the same Message-ID.
func TestPipelineCrashAfterSentIsAtLeastOnce(t *testing.T) {
	r := newRig(t, nil)
	p1, o1 := r.start()
	r.down(0)
	mustStep(t, p1)
	r.clk.Advance(10 * time.Second)
	p1.crash = func(s string) bool { return s == "after-put" }
	if err := p1.step(); !errors.Is(err, errCrash) {
		t.Fatal(err)
	}
	sent := o1.Pending()[0]
	if err := o1.Done(sent.ID); err != nil {
		t.Fatal(err)
	}
	_, o2 := r.start()
	pend := o2.Pending()
	if len(pend) != 1 || pend[0].Mail.MessageID != sent.Mail.MessageID || !pend[0].Mail.Date.Equal(sent.Mail.Date) {
		t.Fatalf("re-queued %+v, want the same Message-ID %s", pend, sent.Mail.MessageID)
	}
}

// TestPipelineReplayAfterRestart: events held in the window when lvsmon
// stopped, and events appended while no pipeline ran, are mailed after
// the restart.
func TestPipelineReplayAfterRestart(t *testing.T) {
	r := newRig(t, nil)
	p1, _ := r.start()
	r.down(0)
	mustStep(t, p1)
	r.clk.Advance(5 * time.Second)
	mustStep(t, p1) // stopped inside the window
	r.down(1)       // appended, never read by p1
	r.clk.Advance(time.Hour)
	r.down(2)
	p2, o2 := r.start()
	mustStep(t, p2) // window of the first is over: flushed with what the log adds
	if o2.Len() != 1 {
		t.Fatalf("%d mails, want the held window at once", o2.Len())
	}
	m := o2.Pending()[0].Mail
	if !slices.Equal(m.EventSeqs, []uint64{1, 2, 3}) || !strings.Contains(m.Subject, "3 real servers down") {
		t.Fatalf("mail %q %v", m.Subject, m.EventSeqs)
	}
}

// TestPipelineDedupAfterRestart: the checker announces a down server
// again after lvsmon restarts; it was mailed before, so no new mail; its
// recovery is mailed.
func TestPipelineDedupAfterRestart(t *testing.T) {
	r := newRig(t, func(c *PipelineConfig) { c.Reminder = 6 * time.Hour })
	p1, o1 := r.start()
	r.down(0)
	mustStep(t, p1)
	r.clk.Advance(10 * time.Second)
	mustStep(t, p1)
	if o1.Len() != 1 {
		t.Fatal("no first mail")
	}
	r.clk.Advance(time.Minute)
	r.log.add(r.g.ev(events.DaemonStart, "", "", r.clk.peek(), "lvsmon started"))
	r.down(0) // the checker's first verdict after the restart
	r.cfg.Kinds = []string{string(events.ServerDown), string(events.ServerUp)}
	p2, o2 := r.start()
	for range 3 {
		mustStep(t, p2)
		r.clk.Advance(10 * time.Second)
	}
	if o2.Len() != 1 || p2.Stats().Suppressed[SuppressedDuplicate] != 1 {
		t.Fatalf("%d mails, stats %+v", o2.Len(), p2.Stats())
	}
	r.up(0)
	mustStep(t, p2)
	r.clk.Advance(10 * time.Second)
	mustStep(t, p2)
	pend := o2.Pending()
	if len(pend) != 2 || !strings.Contains(pend[1].Mail.Subject, "up again") {
		t.Fatalf("recovery: %d mails", len(pend))
	}
}

func TestPipelineMasterOnly(t *testing.T) {
	r := newRig(t, nil)
	r.master = false
	p, o := r.start()
	r.down(0)
	r.log.add(r.g.role("VI_1", "VI_1: MASTER → BACKUP (priority 50, keepalived)", r.clk.peek()))
	mustStep(t, p)
	r.clk.Advance(10 * time.Second)
	mustStep(t, p)
	pend := o.Pending()
	if len(pend) != 1 || pend[0].Mail.Subject != "[lvsmon dir1] role change: VI_1 MASTER → BACKUP" {
		t.Fatalf("mails %+v", pend)
	}
	if s := p.Stats(); s.Suppressed[SuppressedBackup] != 1 || s.Mails != 1 || s.Events != 2 {
		t.Errorf("stats %+v", s)
	}
}

// TestPipelineOutboxFull: a refused Put keeps the mail (in the state
// file) and retries; nothing is lost.
func TestPipelineOutboxFull(t *testing.T) {
	r := newRig(t, nil)
	o, err := OpenOutbox(r.outDir, 1, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Put(testMail(r.clk.peek())); err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(r.cfg, PipelineDeps{Outbox: o, Events: r.log, Clock: r.clk})
	if err != nil {
		t.Fatal(err)
	}
	r.down(0)
	mustStep(t, p)
	r.clk.Advance(10 * time.Second)
	mustStep(t, p)
	if s := p.Stats(); !strings.Contains(s.LastError, "outbox full") || p.eng.st.InFlight == nil {
		t.Fatalf("stats %+v", s)
	}
	if next, _ := p.nextWake(r.clk.peek()); !next.Equal(r.clk.peek().Add(retryDelay)) {
		t.Errorf("retry at %v", next)
	}
	r.down(1) // read meanwhile, mailed with the next window
	mustStep(t, p)
	if err := o.Done(o.Pending()[0].ID); err != nil {
		t.Fatal(err)
	}
	r.clk.Advance(retryDelay)
	mustStep(t, p)
	pend := o.Pending()
	if len(pend) != 1 || !slices.Equal(pend[0].Mail.EventSeqs, []uint64{1}) {
		t.Fatalf("after the retry: %+v", pend)
	}
	if err := o.Done(pend[0].ID); err != nil {
		t.Fatal(err)
	}
	// The second window was due too, but the outbox (of one) was full
	// again: it waits for the next retry.
	r.clk.Advance(retryDelay)
	mustStep(t, p)
	if pend := o.Pending(); len(pend) != 1 || !slices.Equal(pend[0].Mail.EventSeqs, []uint64{2}) {
		t.Fatalf("second window: %+v", pend)
	}
}

func TestPipelineCorruptStateMovedAside(t *testing.T) {
	r := newRig(t, nil)
	if err := os.WriteFile(filepath.Join(r.stateDir, stateFile), []byte("{torn"), 0o640); err != nil {
		t.Fatal(err)
	}
	r.down(0)
	p, _ := r.start()
	if p.eng.st.Cursor != 1 {
		t.Errorf("cursor %d", p.eng.st.Cursor)
	}
	m, _ := filepath.Glob(filepath.Join(r.stateDir, "corrupt", stateFile+".*"))
	if len(m) != 1 {
		t.Errorf("corrupt file not kept: %v", m)
	}
}

// A save that a crash interrupted leaves a temporary file: the next start
// removes it and reads the state that was saved.
func TestPipelineRemovesSaveLeftovers(t *testing.T) {
	r := newRig(t, nil)
	r.down(0)
	p, _ := r.start()
	cursor := p.eng.st.Cursor
	leftover := filepath.Join(r.stateDir, "."+stateFile+".tmp-123")
	if err := os.WriteFile(leftover, []byte(`{"version":1,"cur`), 0o640); err != nil {
		t.Fatal(err)
	}
	p2, _ := r.start()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover still there: %v", err)
	}
	if p2.eng.st.Cursor != cursor {
		t.Errorf("cursor %d after restart, want %d", p2.eng.st.Cursor, cursor)
	}
}

// TestPipelineRun drives Run with the fake clock: a wake-up per event,
// the window's timer, and the last pass at shutdown that mails
// daemon_stop at once.
func TestPipelineRun(t *testing.T) {
	r := newRig(t, nil)
	p, o := r.start()
	wake := make(chan struct{}, 1) // small: most wake-ups are dropped
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, wake) }()
	for i := range 200 {
		r.down(i)
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	select {
	case wake <- struct{}{}:
	default:
	}
	waitFor(t, "the pipeline to read 200 events", func() bool { return p.Stats().Events == 200 })
	r.clk.waitSleep(t, t0.Add(10*time.Second)) // the window
	r.clk.Advance(10 * time.Second)
	waitFor(t, "one mail", func() bool { return o.Len() == 1 })
	r.log.add(r.g.ev(events.DaemonStop, "", "", r.clk.peek(), "lvsmon stopping"))
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	pend := o.Pending()
	if len(pend) != 2 || !strings.Contains(pend[1].Mail.Subject, "lvsmon stopping") {
		t.Fatalf("mails %d, last %q", len(pend), pend[len(pend)-1].Mail.Subject)
	}
	if s := p.Stats(); s.Mails != 2 || s.Events != 201 || s.Grouped != 200 || s.Held != 0 || s.LastMail.IsZero() {
		t.Errorf("stats %+v", s)
	}
}

// TestPipelineLogGapAndReset: events the log dropped before the pipeline
// read them are counted as lost; a log that starts over (deleted) is read
// from its start.
func TestPipelineLogGapAndReset(t *testing.T) {
	r := newRig(t, nil)
	p1, _ := r.start()
	r.down(0)
	mustStep(t, p1)
	// The log loses seqs 2-4 (compacted away before they were read).
	for i := 1; i <= 4; i++ {
		r.down(i)
	}
	r.log.mu.Lock()
	r.log.evs = append(r.log.evs[:1], r.log.evs[4])
	r.log.mu.Unlock()
	mustStep(t, p1)
	if s := p1.Stats(); s.Lost != 3 || s.Cursor != 5 || s.Held != 2 {
		t.Fatalf("stats %+v", s)
	}
	// The log is deleted: seqs start over at 1, below the cursor.
	r.log.mu.Lock()
	r.log.evs = nil
	r.log.mu.Unlock()
	r.down(7)
	p2, o2 := r.start()
	mustStep(t, p2)
	r.clk.Advance(10 * time.Second)
	mustStep(t, p2)
	pend := o2.Pending()
	if len(pend) != 1 || !strings.Contains(pend[0].Mail.Body, webAddr(7)) || !strings.Contains(pend[0].Mail.Subject, "3 real servers down") {
		t.Fatalf("mails %+v", pend)
	}
}

// TestPipelineReconfigure: a reload changes recipients, prefix and the
// window of a running pipeline; what it held and knew stays; an invalid
// config changes nothing.
func TestPipelineReconfigure(t *testing.T) {
	r := newRig(t, nil)
	p, o := r.start()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	wake := make(chan struct{}, 1)
	go func() { done <- p.Run(ctx, wake) }()

	r.down(0) // held in the 10 s window
	wake <- struct{}{}
	waitFor(t, "the pipeline to read the event", func() bool { return p.Stats().Events == 1 })
	bad := r.cfg
	bad.Kinds = []string{"server_exploded"}
	if err := p.Reconfigure(ctx, bad); err == nil {
		t.Fatal("an unknown kind was accepted")
	}
	next := r.cfg
	next.To, next.SubjectPrefix, next.GroupWindow = []string{"night-shift@example.test"}, "[LVS]", time.Minute
	if err := p.Reconfigure(ctx, next); err != nil {
		t.Fatal(err)
	}
	if s := p.Stats(); s.Held != 1 {
		t.Fatalf("the held event was lost: %+v", s)
	}
	// The held group now waits a minute from its first event.
	r.clk.waitSleep(t, t0.Add(time.Minute))
	r.clk.Advance(time.Minute)
	waitFor(t, "one mail", func() bool { return o.Len() == 1 })
	m := o.Pending()[0].Mail
	if !slices.Equal(m.To, next.To) || !strings.HasPrefix(m.Subject, "[LVS] ") {
		t.Errorf("mail to %v, subject %q", m.To, m.Subject)
	}
	cancel()
	<-done
}

// A checker's word on a real server's weight is a real-server kind:
// master_only and daemon_states apply to it as to its ups and downs.
func TestWeightChangeIsARealServerKind(t *testing.T) {
	for _, k := range []events.Kind{events.ServerDown, events.WeightChange} {
		if !realServerKind(k) {
			t.Errorf("%s is not a real-server kind", k)
		}
	}
	if realServerKind(events.RoleChange) {
		t.Error("role_change is a real-server kind")
	}
}
