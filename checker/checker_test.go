package checker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// scripted is a probe whose answer per server the test sets.
type scripted struct {
	mu    sync.Mutex
	fail  map[string]error // by real server address
	hang  map[string]bool
	calls map[string]int
}

func newScripted() *scripted {
	return &scripted{fail: map[string]error{}, hang: map[string]bool{}, calls: map[string]int{}}
}

func (s *scripted) probe(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
	a := r.Key.Addr.String()
	s.mu.Lock()
	s.calls[a]++
	err, hang := s.fail[a], s.hang[a]
	s.mu.Unlock()
	if hang {
		<-ctx.Done()
		return fmt.Errorf("tcp: %w", ctx.Err())
	}
	return err
}

func (s *scripted) set(addr string, err error) {
	s.mu.Lock()
	s.fail[addr] = err
	s.mu.Unlock()
}

func (s *scripted) count(addr string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[addr]
}

func checkConfig(t *testing.T, n int, rise, fall int) *config.Config {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "virtual_services:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    check: {type: tcp, interval: 100ms, timeout: 300ms, rise: %d, fall: %d}\n    real_servers:\n", rise, fall)
	for i := range n {
		fmt.Fprintf(&b, "      - {address: 10.0.%d.%d}\n", 1+i/250, 1+i%250)
	}
	c, err := config.Parse("c.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// waitFor: the shared poll (testutil.WaitFor).
var waitFor = testutil.WaitFor

func TestRiseFallAndEvents(t *testing.T) {
	p := newScripted()
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	var changes atomic.Int32
	c := New(p.probe, ev, quiet, func() { changes.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.Apply(checkConfig(t, 2, 2, 3))
	id1, id2 := "tcp_10.0.0.100_80__10.0.1.1_80", "tcp_10.0.0.100_80__10.0.1.2_80"
	hl := func(id string) health.State { return c.Health()[id] }
	waitFor(t, "both servers up after rise 2", func() bool { return hl(id1) == health.Up && hl(id2) == health.Up })
	if n := len(ev.Query(events.Filter{})); n != 0 {
		t.Errorf("unknown -> up with startup up wrote %d events", n)
	}
	p.set("10.0.1.1", errors.New("tcp: connect 10.0.1.1:80: connection refused"))
	waitFor(t, "rs1 down after fall 3", func() bool { return hl(id1) == health.Down })
	var st ServerStatus
	for _, s := range c.Status() {
		if s.ID == id1 {
			st = s
		}
	}
	if st.Failures < 3 || st.LastOK || !strings.Contains(st.LastMsg, "connection refused") || st.Health != health.Down || st.CheckType != "tcp" {
		t.Errorf("status = %+v", st)
	}
	p.set("10.0.1.1", nil)
	waitFor(t, "rs1 up again after rise 2", func() bool { return hl(id1) == health.Up })
	// The health flips under the checker's lock; the event and the
	// change callback follow just after it: wait for them too.
	waitFor(t, "rs1's up event and its change callback", func() bool {
		return len(ev.Query(events.Filter{Server: id1})) >= 2 && changes.Load() >= 2
	})
	evs := ev.Query(events.Filter{Server: id1})
	if len(evs) != 2 || evs[0].Kind != events.ServerDown || !strings.Contains(evs[0].Message, "connection refused") || evs[1].Kind != events.ServerUp {
		t.Fatalf("events = %+v", evs)
	}
	// The meaning is in the fields: health before and after, why, who.
	if e := evs[0]; e.From != events.Unknown && e.From != events.Up || e.To != events.Down || !strings.Contains(e.Reason, "connection refused") ||
		strings.Contains(e.Reason, " is down: ") || e.Actor != events.ActorChecker {
		t.Errorf("down event fields: %+v", e)
	}
	if e := evs[1]; e.From != events.Down || e.To != events.Up || e.Reason != "" || e.Actor != events.ActorChecker {
		t.Errorf("up event fields: %+v", e)
	}
	if hl(id2) != health.Up || changes.Load() < 2 {
		t.Errorf("rs2 %v, changes %d", hl(id2), changes.Load())
	}
}

// TestHangingServersDelayNobody: 200 servers that never answer (each
// check runs to its timeout) beside one healthy server, which is still
// checked every interval.
func TestHangingServersDelayNobody(t *testing.T) {
	p := newScripted()
	cfg := checkConfig(t, 201, 1, 1)
	for _, r := range cfg.VirtualServices[0].Reals[1:] {
		p.hang[r.Key.Addr.String()] = true
	}
	c := New(p.probe, nil, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.Apply(cfg)
	healthy := cfg.VirtualServices[0].Reals[0].Key.Addr.String()
	// In the time one hanging check takes (300 ms), the healthy server
	// is checked about three times (every 100 ms).
	waitFor(t, "the healthy server checked 5 times", func() bool { return p.count(healthy) >= 5 })
	if h := c.Health()["tcp_10.0.0.100_80__10.0.1.1_80"]; h != health.Up {
		t.Errorf("healthy server is %v", h)
	}
}

func TestWatchdogFlagsAFrozenCheck(t *testing.T) {
	c := New(func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
		select {} // a probe that ignores its context: a frozen check loop
	}, nil, quiet, nil)
	c.Apply(checkConfig(t, 1, 1, 1))
	id := "tcp_10.0.0.100_80__10.0.1.1_80"
	c.watchdog(time.Now())
	if c.Status()[0].Stalled {
		t.Fatal("stalled at once")
	}
	c.watchdog(time.Now().Add(3 * time.Second)) // > 3 × 100ms + 300ms + 1s
	if st := c.Status()[0]; !st.Stalled || st.ID != id {
		t.Errorf("status = %+v", st)
	}
}

func TestApplyKeepsHealthAcrossReloads(t *testing.T) {
	p := newScripted()
	p.set("10.0.1.1", errors.New("down"))
	c := New(p.probe, nil, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	cfg := checkConfig(t, 2, 1, 1)
	c.Apply(cfg)
	id1, id2 := "tcp_10.0.0.100_80__10.0.1.1_80", "tcp_10.0.0.100_80__10.0.1.2_80"
	waitFor(t, "first results", func() bool { h := c.Health(); return h[id1] == health.Down && h[id2] == health.Up })
	// A reload that changes the check keeps the health: no flap to unknown.
	cfg2 := checkConfig(t, 2, 1, 1)
	cfg2.VirtualServices[0].Check.Interval = config.Duration(200 * time.Millisecond)
	c.Apply(cfg2)
	if h := c.Health(); h[id1] != health.Down || h[id2] != health.Up {
		t.Errorf("health after reload = %v", h)
	}
	// Removing a server stops its checks and forgets it: its loop has
	// ended when Apply returns.
	c.mu.Lock()
	w2 := c.workers[id2+"#0"]
	c.mu.Unlock()
	if w2 == nil {
		t.Fatalf("no check loop for %s", id2)
	}
	c.Apply(checkConfig(t, 1, 1, 1))
	if _, ok := c.Health()[id2]; ok {
		t.Error("a removed server is still checked")
	}
	select {
	case <-w2.done:
	default:
		t.Error("the removed server's check loop still runs after Apply returned")
	}
	// The other server's checks go on; the removed one's do not.
	n, n1 := p.count("10.0.1.2"), p.count("10.0.1.1")
	waitFor(t, "three more checks of the remaining server", func() bool { return p.count("10.0.1.1") >= n1+3 })
	if m := p.count("10.0.1.2"); m != n {
		t.Errorf("checks of a removed server go on: %d more", m-n)
	}
}

// A slow but working check (a server that never answers, checked with a
// timeout longer than the interval, with retries) is not a frozen loop.
func TestWatchdogCountsTimeoutsAndRetries(t *testing.T) {
	c := New(func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
		return nil
	}, nil, quiet, nil)
	cfg := checkConfig(t, 1, 1, 1)
	cfg.VirtualServices[0].Check.Timeout = config.Duration(3 * time.Second)
	cfg.VirtualServices[0].Check.Retries = 2
	c.Apply(cfg)
	id := "tcp_10.0.0.100_80__10.0.1.1_80"
	start := time.Now()
	c.mu.Lock()
	st := c.state[id+"#0"]
	st.LastTime, st.LastDur = start, 9*time.Second // three attempts of 3 s each
	c.mu.Unlock()
	c.watchdog(start.Add(9*time.Second + 8*time.Second)) // ended 8 s ago: within 3×0.1 + 9 + 1
	if c.Status()[0].Stalled {
		t.Error("a check that ran its retries to the timeout was called stalled")
	}
	c.watchdog(start.Add(9*time.Second + 11*time.Second))
	if !c.Status()[0].Stalled {
		t.Error("no report for longer than the limit, yet not stalled")
	}
}

// A reload that keeps the check keeps the loop, but events speak of the
// service by its new name.
func TestReloadRenamesInEvents(t *testing.T) {
	p := newScripted()
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	c := New(p.probe, ev, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.Apply(checkConfig(t, 1, 1, 1))
	id := "tcp_10.0.0.100_80__10.0.1.1_80"
	waitFor(t, "up", func() bool { return c.Health()[id] == health.Up })
	cfg := checkConfig(t, 1, 1, 1)
	cfg.VirtualServices[0].Name = "shop"
	c.Apply(cfg)
	p.set("10.0.1.1", errors.New("tcp: refused"))
	waitFor(t, "down", func() bool { return c.Health()[id] == health.Down })
	evs := ev.Query(events.Filter{Server: id})
	if len(evs) != 1 || !strings.HasPrefix(evs[0].Message, "shop: ") {
		t.Errorf("events = %+v", evs)
	}
}

// With several checks a server is up only while every one passes.
func TestSeveralChecksAllMustPass(t *testing.T) {
	var mu sync.Mutex
	failing := map[string]bool{}
	probe := func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
		mu.Lock()
		defer mu.Unlock()
		if failing[c.Type] {
			return errors.New(c.Type + ": refused")
		}
		return nil
	}
	cfg, err := config.Parse("c.yaml", []byte(`virtual_services:
  - name: web
    address: 10.0.0.100
    port: 80
    checks:
      - {type: tcp, interval: 100ms, timeout: 50ms}
      - {type: http, path: /.health.html, interval: 150ms, timeout: 50ms}
    real_servers: [{address: 10.0.1.1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	c := New(probe, ev, quiet, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.Apply(cfg)
	id := "tcp_10.0.0.100_80__10.0.1.1_80"
	waitFor(t, "up with both checks passing", func() bool { return c.Health()[id] == health.Up })
	mu.Lock()
	failing["http"] = true
	mu.Unlock()
	waitFor(t, "down when one check fails", func() bool { return c.Health()[id] == health.Down })
	st := c.Status()[0]
	if st.CheckType != "tcp+http" || len(st.Checks) != 2 || st.Health != health.Down || !strings.Contains(st.LastMsg, "http check: http: refused") {
		t.Errorf("status = %+v", st)
	}
	mu.Lock()
	failing["http"] = false
	mu.Unlock()
	waitFor(t, "up again, with its event", func() bool { return c.Health()[id] == health.Up && len(ev.Query(events.Filter{Server: id})) == 2 })
	evs := ev.Query(events.Filter{Server: id})
	if len(evs) != 2 || evs[0].Kind != events.ServerDown || !strings.Contains(evs[0].Message, "http check") || evs[1].Kind != events.ServerUp {
		t.Errorf("events = %+v", evs)
	}
}
