package checker

import (
	"errors"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

func TestReconcilerAppliesAndRecoversFromErrors(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	f := lvs.NewFake(lvs.Table{})
	health := map[string]Health{}
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	ovr, err := OpenOverrides(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := NewReconciler(f, func() *config.Config { return cfg }, func() map[string]Health { return health }, ovr, ev, quiet, false)
	ctx := t.Context()

	// The kernel refuses the second real server once: the round stops
	// there, says so, and the next round finishes from the real state.
	f.FailOn(lvs.OpCreateDest, errors.New("netlink receive: cannot allocate memory"))
	err = r.Round(ctx)
	if err == nil || !strings.Contains(err.Error(), "1 of 3 actions applied") || !strings.Contains(err.Error(), "cannot allocate memory") {
		t.Fatalf("round with a failing write: %v", err)
	}
	f.FailOn(lvs.OpCreateDest, nil)
	if err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	tab, _ := f.Table(ctx)
	k := lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80)
	if s := tab.Service(k); s == nil || len(s.Dests) != 2 {
		t.Fatalf("after recovery: %+v", s)
	}
	st := r.Stats()
	if st.Failed != 1 || st.Applied != 3 || st.Rounds != 2 || st.LastError == "" {
		t.Errorf("stats = %+v", st)
	}

	// Both servers fail: quiescent, sorry server in, one event.
	health[rs1], health[rs2] = Down, Down
	if err := r.Round(ctx); err != nil {
		t.Fatal(err)
	}
	tab, _ = f.Table(ctx)
	s := tab.Service(k)
	if len(s.Dests) != 3 || s.Dest(lvs.DestKey{Addr: mustAddr("127.0.0.1"), Port: 80}) == nil || s.Dest(lvs.DestKey{Addr: mustAddr("10.0.1.13"), Port: 80}).Weight != 0 {
		t.Fatalf("all down: %+v", s.Dests)
	}
	if !r.SorryActive(k.ID()) {
		t.Error("sorry not reported active")
	}
	// An operator drains rs2 while it is down; it comes back drained.
	if err := ovr.Set(rs2, Drain, "test"); err != nil {
		t.Fatal(err)
	}
	health[rs1], health[rs2] = Up, Up
	r.Round(ctx)
	r.Round(ctx) // the sorry server, quiesced by the first, goes
	tab, _ = f.Table(ctx)
	s = tab.Service(k)
	if s.Dest(lvs.DestKey{Addr: mustAddr("10.0.1.13"), Port: 80}).Weight != 3 || s.Dest(lvs.DestKey{Addr: mustAddr("10.0.1.14"), Port: 80}).Weight != 0 || len(s.Dests) != 2 {
		t.Errorf("after recovery with a drain: %+v", s.Dests)
	}
	evs := ev.Query(events.Filter{Service: k.ID()})
	if len(evs) != 2 || evs[0].Kind != events.SorryOn || evs[1].Kind != events.SorryOff {
		t.Errorf("events = %+v", evs)
	}
	// The override survives a restart.
	ovr2, err := OpenOverrides(ovr.path[:len(ovr.path)-len("/overrides.json")])
	if err != nil || ovr2.All()[rs2] != Drain {
		t.Errorf("reopened overrides = %v, %v", ovr2.All(), err)
	}
}

func TestReconcilerDryRunWritesNothing(t *testing.T) {
	cfg := planConfig(t, "remove")
	f := lvs.NewFake(lvs.Table{})
	r := NewReconciler(f, func() *config.Config { return cfg }, func() map[string]Health { return nil }, nil, nil, quiet, true)
	if err := r.Round(t.Context()); err != nil {
		t.Fatal(err)
	}
	tab, _ := f.Table(t.Context())
	if len(tab.Services) != 0 || f.Calls(lvs.OpCreateService) != 0 {
		t.Fatal("a dry run wrote to the table")
	}
	st := r.Stats()
	if !st.DryRun || len(st.Pending) != 3 || !strings.HasPrefix(st.Pending[0], "create-service TCP 10.0.0.100:80") {
		t.Errorf("dry-run stats = %+v", st)
	}
}

func TestReconcilerRespectsRoleGate(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	f := lvs.NewFake(lvs.Table{})
	r := NewReconciler(f, func() *config.Config { return cfg }, func() map[string]Health { return nil }, nil, nil, quiet, false)
	r.Act = func() bool { return false }
	r.Round(t.Context())
	if tab, _ := f.Table(t.Context()); len(tab.Services) != 0 {
		t.Error("a node that must not act wrote")
	}
}

// A restart in the middle of an outage: every server failing, the sorry
// server in. The new reconciler's rounds before any result write
// nothing and say nothing; the first results (still failing) change
// nothing either; the recovery takes the sorry server out with one
// sorry_off, the only sorry event of the new run.
func TestReconcilerRestartDuringAnOutage(t *testing.T) {
	b := newBench(t, 2, 1, "")
	k := lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80)
	sorry := lvs.Dest{Key: lvs.DestKey{Addr: mustAddr("127.0.0.1"), Port: 80}, Weight: 1}
	f := lvs.NewFake(lvs.Table{Services: []lvs.Service{{Key: k, Scheduler: "wlc", Dests: []lvs.Dest{
		{Key: lvs.DestKey{Addr: mustAddr("10.0.1.1"), Port: 80}, Weight: 0},
		{Key: lvs.DestKey{Addr: mustAddr("10.0.1.2"), Port: 80}, Weight: 0}, sorry}}}})
	r := NewReconciler(f, func() *config.Config { return b.cfg }, b.c.Health, nil, b.ev, quiet, false)
	for range 3 {
		if err := r.Round(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	if st := r.Stats(); st.Applied != 0 || !r.SorryActive(k.ID()) {
		t.Fatalf("before any result: %+v, sorry %v", st, r.SorryActive(k.ID()))
	}
	b.feed(1, errRefused)
	b.feed(2, errRefused)
	r.Round(t.Context())
	if st := r.Stats(); st.Applied != 0 {
		t.Fatalf("first results, still failing: %d writes", st.Applied)
	}
	b.feed(1, nil)
	r.Round(t.Context()) // the sorry server leaves quiesced...
	r.Round(t.Context()) // ...and is deleted once it has no active connection
	tab, _ := f.Table(t.Context())
	if s := tab.Service(k); s.Dest(sorry.Key) != nil || s.Dest(lvs.DestKey{Addr: mustAddr("10.0.1.1"), Port: 80}).Weight != 1 {
		t.Fatalf("after recovery: %+v", s.Dests)
	}
	var kinds []string
	for _, e := range b.ev.Query(events.Filter{Service: k.ID()}) {
		kinds = append(kinds, e.Kind)
	}
	if got := strings.Join(kinds, " "); got != "server_down server_down server_up sorry_off" {
		t.Errorf("events: %s", got)
	}
}
