package lvs

import (
	"context"
	"math"
	"testing"
	"time"
)

func simTable(sched string, w1, w2 int32) Table {
	return Table{Services: []Service{{Key: web, Scheduler: sched, Dests: []Dest{{Key: rip1, Weight: w1}, {Key: rip2, Weight: w2}}}}}
}

func TestSimSpreadsByScheduler(t *testing.T) {
	start := time.Date(2026, 1, 1, 16, 0, 0, 0, time.UTC) // the daily peak
	tests := []struct {
		name       string
		sched      string
		w1, w2     int32
		wantShare1 float64 // rip1's fraction of new connections
	}{
		{"rr ignores weights", "rr", 3, 1, 0.5},
		{"wrr follows weights", "wrr", 3, 1, 0.75},
		{"weight 0 gets nothing", "wlc", 0, 1, 0},
		{"all weight 0: dropped", "wrr", 0, 0, math.NaN()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFake(simTable(tc.sched, tc.w1, tc.w2))
			s := NewSim(f, 1, start)
			s.SetProfile(web, Profile{ConnsPerSec: 100, ConnDuration: 2 * time.Second, InPkts: 10, OutPkts: 12, InBytes: 800, OutBytes: 20000})
			for range 60 {
				s.Advance(time.Second)
			}
			tab, _ := f.Table(context.Background())
			svc := tab.Services[0]
			c1, c2 := float64(svc.Dests[0].Stats.Conns), float64(svc.Dests[1].Stats.Conns)
			if math.IsNaN(tc.wantShare1) {
				if svc.Stats.Conns != 0 {
					t.Fatalf("conns with no usable server: %d", svc.Stats.Conns)
				}
				return
			}
			if got := c1 / (c1 + c2); math.Abs(got-tc.wantShare1) > 0.05 {
				t.Errorf("rip1 share = %.3f, want %.2f (c1=%v c2=%v)", got, tc.wantShare1, c1, c2)
			}
			if total := c1 + c2; total < 5000 || total > 7000 {
				t.Errorf("total conns over 60 s at 100/s = %v", total)
			}
			if svc.Stats.Conns != uint64(c1+c2) || svc.Stats.OutBytes != svc.Dests[0].Stats.OutBytes+svc.Dests[1].Stats.OutBytes {
				t.Errorf("service counters are not the sum of its servers: %+v", svc.Stats)
			}
			if svc.Dests[1].ActiveConns == 0 {
				t.Errorf("no active connections on a loaded server")
			}
		})
	}
}

func TestSimUnreachableServer(t *testing.T) {
	f := NewFake(simTable("rr", 1, 1))
	s := NewSim(f, 7, time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC))
	s.SetProfile(web, Profile{ConnsPerSec: 50, ConnDuration: time.Second, InPkts: 5, OutPkts: 5, InBytes: 500, OutBytes: 5000})
	s.SetReachable(web, rip1, false)
	for range 10 {
		s.Advance(time.Second)
	}
	tab, _ := f.Table(context.Background())
	d1, d2 := tab.Services[0].Dests[0], tab.Services[0].Dests[1]
	if d1.Stats.Conns == 0 || d1.Stats.OutBytes != 0 || d1.ActiveConns != 0 {
		t.Errorf("unreachable server: %+v", d1)
	}
	if d2.Stats.OutBytes == 0 {
		t.Errorf("reachable server has no replies: %+v", d2)
	}
}

func TestSimDeterministic(t *testing.T) {
	run := func() Stats {
		f := NewFake(simTable("wrr", 2, 1))
		s := NewSim(f, 42, time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC))
		s.SetProfile(web, Profile{ConnsPerSec: 20, ConnDuration: time.Second, InPkts: 1, OutPkts: 1, InBytes: 1, OutBytes: 1})
		for range 100 {
			s.Advance(time.Second)
		}
		tab, _ := f.Table(context.Background())
		return tab.Totals
	}
	if a, b := run(), run(); a != b {
		t.Errorf("two runs differ: %+v vs %+v", a, b)
	}
}
