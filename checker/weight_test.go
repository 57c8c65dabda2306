package checker

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/reconcile"
)

// feedWeight reports a result of server i that says wt of the weight.
func (b *bench) feedWeight(i int, wt probe.Weight, err error) {
	b.c.mu.Lock()
	st := b.c.state[rsID(i)+"#0"]
	out := b.c.result(st, b.now, 10*time.Millisecond, wt, err, func() time.Duration { return 0 })
	b.c.mu.Unlock()
	b.c.emit(out)
}

func set(w int64) probe.Weight { return probe.Weight{Kind: probe.WeightSet, Value: w} }
func add(w int64) probe.Weight { return probe.Weight{Kind: probe.WeightAdd, Value: w} }

// weightRig is a bench with the reconciler on the fake kernel and the
// operators' overrides, as app wires them.
type weightRig struct {
	*bench
	f   *lvs.Fake
	rec *reconcile.Reconciler
	ovr *reconcile.Overrides
}

func newWeightRig(t *testing.T, n int) *weightRig {
	b := newBench(t, n, 1, "")
	ovr, err := reconcile.OpenOverrides(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	f := lvs.NewFake(lvs.Table{})
	rec := reconcile.New(reconcile.Options{Backend: f, Config: func() *config.Config { return b.cfg }, Health: b.c.Health,
		Weights: b.c.Weights, Overrides: ovr, Log: quiet})
	return &weightRig{bench: b, f: f, rec: rec, ovr: ovr}
}

// kernel is server i's weight in the fake kernel (-1: absent).
func (g *weightRig) kernel(i int) int32 {
	g.t.Helper()
	if err := g.rec.Round(g.t.Context()); err != nil {
		g.t.Fatal(err)
	}
	tab, _ := g.f.Table(g.t.Context())
	if s := tab.Service(g.cfg.VirtualServices[0].Key); s != nil {
		if d := s.Dest(g.cfg.VirtualServices[0].Reals[i-1].Key); d != nil {
			return d.Weight
		}
	}
	return -1
}

// TestDynamicWeightReachesTheKernel: a dynamic external check's weight
// flows through the checker's state to the plan and to the kernel's
// table; exit 0 brings the configured weight back; an operator's drain
// beats it; an inconclusive result changes nothing; a failing check
// quiesces the server whatever its weight was.
func TestDynamicWeightReachesTheKernel(t *testing.T) {
	g := newWeightRig(t, 2)
	g.feed(1, nil)
	g.feed(2, nil)
	if w := g.kernel(1); w != 1 {
		t.Fatalf("before any weight: kernel %d, want the configured 1", w)
	}
	steps := []struct {
		what string
		do   func()
		want int32
	}{
		{"exit 12: weight 10", func() { g.feedWeight(1, set(10), nil) }, 10},
		{"exit 2: weight 0, still up", func() { g.feedWeight(1, set(0), nil) }, 0},
		{"exit 255: weight 253", func() { g.feedWeight(1, set(253), nil) }, 253},
		{"inconclusive: unchanged", func() {
			g.feedWeight(1, probe.Weight{}, probe.InconclusiveError{Err: fmt.Errorf("file: gone")})
		}, 253},
		{"drained: 0", func() {
			if err := g.ovr.Set(rsID(1), reconcile.Drain, "test"); err != nil {
				t.Fatal(err)
			}
		}, 0},
		{"drained, new weight: still 0", func() { g.feedWeight(1, set(40), nil) }, 0},
		{"enabled: the check's weight", func() {
			if err := g.ovr.Set(rsID(1), reconcile.NoOverride, "test"); err != nil {
				t.Fatal(err)
			}
		}, 40},
		{"exit 0: the configured weight", func() { g.feedWeight(1, probe.Weight{}, nil) }, 1},
		{"exit 7 again", func() { g.feedWeight(1, set(5), nil) }, 5},
		{"exit 1: quiesced", func() { g.feedWeight(1, probe.Weight{}, errRefused) }, 0},
		{"up again with exit 20", func() { g.feedWeight(1, set(18), nil) }, 18},
	}
	for _, s := range steps {
		s.do()
		if w := g.kernel(1); w != s.want {
			t.Fatalf("%s: kernel weight %d, want %d", s.what, w, s.want)
		}
		if w := g.kernel(2); w != 1 {
			t.Fatalf("%s: the other server's weight %d, want 1", s.what, w)
		}
	}
	st := g.status(1)
	if st.CheckWeight == nil || *st.CheckWeight != 18 {
		t.Errorf("status check_weight = %v, want 18", st.CheckWeight)
	}
	if st := g.status(2); st.CheckWeight != nil {
		t.Errorf("server 2 has check_weight %d, set by no check", *st.CheckWeight)
	}
}

// TestFileWeightAddsToTheConfiguredWeight: a file check's value is added
// to the configured weight, bounded to 0-65535, and several checks'
// words add up as in keepalived.
func TestFileWeightAddsToTheConfiguredWeight(t *testing.T) {
	st := func(conf int32, ws ...probe.Weight) []*serverState {
		var out []*serverState
		for _, w := range ws {
			out = append(out, &serverState{weight: w, configured: conf})
		}
		return out
	}
	tests := []struct {
		name string
		sts  []*serverState
		want int32
		set  bool
	}{
		{"none", st(5, probe.Weight{}), 5, false},
		{"add", st(5, add(3)), 8, true},
		{"add 0", st(5, add(0)), 5, true},
		{"negative", st(5, add(-3)), 2, true},
		{"below 0 is 0", st(5, add(-30)), 0, true},
		{"above the top", st(5, add(1<<31)), config.MaxWeight, true},
		{"set", st(5, set(10)), 10, true},
		{"set and add", st(5, set(10), add(3)), 13, true},
		{"two sets", st(5, set(10), set(20)), 25, true},
		{"set and none", st(5, set(10), probe.Weight{}), 10, true},
	}
	for _, tc := range tests {
		w, ok := weightOf(tc.sts)
		if w != tc.want || ok != tc.set {
			t.Errorf("%s: weightOf = %d, %v; want %d, %v", tc.name, w, ok, tc.want, tc.set)
		}
	}
}

// TestWeightEvents: a weight change of an up server is a weight_change
// event with the weights in From and To, at most one a minute per
// server; changes within the minute are folded into one event that Tick
// writes when the minute is up. A down server's weight says nothing.
func TestWeightEvents(t *testing.T) {
	g := newWeightRig(t, 1)
	g.feed(1, nil)
	weightEvents := func() []events.Event {
		var out []events.Event
		for _, e := range g.ev.Query(events.Filter{}) {
			if e.Kind == events.WeightChange {
				out = append(out, e)
			}
		}
		return out
	}
	g.feedWeight(1, set(10), nil)
	evs := weightEvents()
	if len(evs) != 1 || evs[0].From != "1" || evs[0].To != "10" || evs[0].Server != rsID(1) || evs[0].Actor != events.ActorChecker ||
		!strings.Contains(evs[0].Message, "weight 1 -> 10") {
		t.Fatalf("events = %+v", evs)
	}
	g.feedWeight(1, set(10), nil) // no change
	for _, w := range []int64{20, 30, 40} {
		g.tick(5 * time.Second)
		g.feedWeight(1, set(w), nil)
	}
	if n := len(weightEvents()); n != 1 {
		t.Fatalf("%d events within the minute, want the first only", n)
	}
	if w := g.kernel(1); w != 40 {
		t.Fatalf("the kernel follows every change at once: %d, want 40", w)
	}
	g.tick(time.Minute)
	evs = weightEvents()
	if len(evs) != 2 || evs[1].From != "10" || evs[1].To != "40" {
		t.Fatalf("after the minute: %+v", evs)
	}
	g.tick(time.Minute)
	if n := len(weightEvents()); n != 2 {
		t.Fatalf("%d events with nothing new", n)
	}
	g.feedWeight(1, probe.Weight{}, errRefused)
	g.tick(2 * time.Minute)
	g.feedWeight(1, set(7), nil) // up again, with a new weight: server_up says so
	g.tick(2 * time.Minute)
	if n := len(weightEvents()); n != 2 {
		t.Fatalf("a down and up wrote %d weight events, want none more", n-2)
	}
	g.feedWeight(1, probe.Weight{}, nil)
	evs = weightEvents()
	if len(evs) != 3 || evs[2].From != "7" || evs[2].To != "1" || !strings.Contains(evs[2].Reason, "configured") {
		t.Fatalf("back to configured: %+v", evs)
	}
	if g.health(1) != health.Up {
		t.Fatal("not up")
	}
}

// TestReloadKeepsAndClearsWeights: a reload that keeps the check keeps
// its weight, and a file check's value follows a new configured weight;
// a check replaced by one that sets no weight drops it at once; a server
// that leaves the config takes its weight with it.
func TestReloadKeepsAndClearsWeights(t *testing.T) {
	g := newWeightRig(t, 2)
	g.feedWeight(1, set(10), nil)
	g.feedWeight(2, add(3), nil)
	if w1, w2 := g.kernel(1), g.kernel(2); w1 != 10 || w2 != 4 {
		t.Fatalf("before the reload: %d %d, want 10 4", w1, w2)
	}
	reload := func(check, weights string) {
		t.Helper()
		y := fmt.Sprintf("virtual_services:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    sorry_server: {address: 127.0.0.1, port: 80}\n"+
			"    check: %s\n    real_servers: %s\n", check, weights)
		cfg, err := config.Parse("c.yaml", []byte(y))
		if err != nil {
			t.Fatal(err)
		}
		for _, chk := range cfg.VirtualServices[0].AllChecks() {
			chk.Interval = config.Duration(time.Hour)
		}
		g.cfg = cfg
		g.c.Apply(cfg)
	}
	reload("{type: tcp, interval: 1s, timeout: 1s, rise: 1, fall: 1}", "[{address: 10.0.1.1, weight: 5}, {address: 10.0.1.2, weight: 5}]")
	if w1, w2 := g.kernel(1), g.kernel(2); w1 != 10 || w2 != 8 {
		t.Fatalf("same check, weights 5: %d %d, want 10 (set) 8 (5+3)", w1, w2)
	}
	reload("{type: external, command: /bin/true, interval: 1s, timeout: 1s, rise: 1, fall: 1}", "[{address: 10.0.1.1, weight: 5}, {address: 10.0.1.2, weight: 5}]")
	if w1, w2 := g.kernel(1), g.kernel(2); w1 != 5 || w2 != 5 {
		t.Fatalf("a check that sets no weight: %d %d, want the configured 5 5", w1, w2)
	}
	if len(g.c.Weights()) != 0 {
		t.Errorf("weights left: %v", g.c.Weights())
	}
	reload("{type: external, command: /bin/true, dynamic: true, interval: 1s, timeout: 1s, rise: 1, fall: 1}", "[{address: 10.0.1.1, weight: 5}, {address: 10.0.1.2, weight: 5}]")
	g.feedWeight(1, set(30), nil)
	reload("{type: external, command: /bin/true, dynamic: true, interval: 1s, timeout: 2s, rise: 1, fall: 1}", "[{address: 10.0.1.1, weight: 5}, {address: 10.0.1.2, weight: 5}]")
	if w := g.kernel(1); w != 30 {
		t.Fatalf("a changed dynamic check keeps the weight until its first result: %d, want 30", w)
	}
	reload("{type: external, command: /bin/true, dynamic: true, interval: 1s, timeout: 2s, rise: 1, fall: 1}", "[{address: 10.0.1.2, weight: 5}]")
	if _, ok := g.c.Weights()[rsID(1)]; ok || g.c.told[rsID(1)] != nil {
		t.Errorf("a server gone from the config kept its weight: %v", g.c.Weights())
	}
}
