package reconcile

import (
	"errors"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
)

func TestReconcilerAppliesAndRecoversFromErrors(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	f := lvs.NewFake(lvs.Table{})
	hs := map[string]health.State{}
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	ovr, err := OpenOverrides(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := New(Options{Backend: f, Config: func() *config.Config { return cfg }, Health: func() map[string]health.State { return hs }, Overrides: ovr, Events: ev, Log: quiet})
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
	hs[rs1], hs[rs2] = health.Down, health.Down
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
	hs[rs1], hs[rs2] = health.Up, health.Up
	r.Round(ctx)
	r.Round(ctx) // the sorry server, quiesced by the first, goes
	tab, _ = f.Table(ctx)
	s = tab.Service(k)
	if s.Dest(lvs.DestKey{Addr: mustAddr("10.0.1.13"), Port: 80}).Weight != 3 || s.Dest(lvs.DestKey{Addr: mustAddr("10.0.1.14"), Port: 80}).Weight != 0 || len(s.Dests) != 2 {
		t.Errorf("after recovery with a drain: %+v", s.Dests)
	}
	evs := ev.Query(events.Filter{Service: k.ID()})
	if len(evs) == 2 && (evs[0].From != events.Off || evs[0].To != events.On || evs[1].From != events.On || evs[1].To != events.Off ||
		evs[0].Actor != events.ActorReconciler || evs[0].Reason == "" || evs[1].Reason == "") {
		t.Errorf("sorry event fields: %+v", evs)
	}
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
	r := New(Options{Backend: f, Config: func() *config.Config { return cfg }, Health: func() map[string]health.State { return nil }, Log: quiet, DryRun: true})
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
	r := New(Options{Backend: f, Config: func() *config.Config { return cfg }, Health: func() map[string]health.State { return nil }, Log: quiet, Act: func() bool { return false }})
	r.Round(t.Context())
	if tab, _ := f.Table(t.Context()); len(tab.Services) != 0 {
		t.Error("a node that must not act wrote")
	}
}
