package checker

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/reconcile"
)

// A restart in the middle of an outage: every server failing, the sorry
// server in. The new reconciler's rounds before any result write
// nothing and say nothing; the first results (still failing) change
// nothing either; the recovery takes the sorry server out with one
// sorry_off, the only sorry event of the new run.
func TestReconcilerRestartDuringAnOutage(t *testing.T) {
	b := newBench(t, 2, 1, "")
	k := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.100"), 80)
	sorry := lvs.Dest{Key: lvs.DestKey{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}, Weight: 1}
	f := lvs.NewFake(lvs.Table{Services: []lvs.Service{{Key: k, Scheduler: "wlc", Dests: []lvs.Dest{
		{Key: lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}, Weight: 0},
		{Key: lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.2"), Port: 80}, Weight: 0}, sorry}}}})
	r := reconcile.New(reconcile.Options{Backend: f, Config: func() *config.Config { return b.cfg }, Health: b.c.Health, Events: b.ev, Log: quiet})
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
	if s := tab.Service(k); s.Dest(sorry.Key) != nil || s.Dest(lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}).Weight != 1 {
		t.Fatalf("after recovery: %+v", s.Dests)
	}
	var kinds []string
	for _, e := range b.ev.Query(events.Filter{Service: k.ID()}) {
		kinds = append(kinds, string(e.Kind))
	}
	if got := strings.Join(kinds, " "); got != "server_down server_down server_up sorry_off" {
		t.Errorf("events: %s", got)
	}
}
