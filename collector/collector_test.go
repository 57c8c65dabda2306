package collector

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/netip"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

var (
	svcKey = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("198.51.100.10"), 80)
	rs1    = lvs.DestKey{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80}
	rs2    = lvs.DestKey{Addr: netip.MustParseAddr("10.1.2.2"), Port: 80}
)

func table(c1, c2 uint64) lvs.Table {
	return lvs.Table{Services: []lvs.Service{{
		Key: svcKey, Scheduler: "rr",
		Stats: lvs.Stats{Conns: c1 + c2, InBytes: 100 * (c1 + c2)},
		Dests: []lvs.Dest{
			{Key: rs1, Weight: 1, Stats: lvs.Stats{Conns: c1, InBytes: 100 * c1}},
			{Key: rs2, Weight: 1, Stats: lvs.Stats{Conns: c2, InBytes: 100 * c2}},
		},
	}}}
}

func TestBuildRates(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	tests := []struct {
		name      string
		prev, cur lvs.Table
		elapsed   time.Duration
		wantValid bool
		wantSvc   float64 // conns/s of the service
		wantRS2   float64
	}{
		{"steady traffic", table(10, 20), table(30, 60), 10 * time.Second, true, 6, 4},
		{"no traffic", table(10, 20), table(10, 20), 10 * time.Second, true, 0, 0},
		{"counter reset gives unknown, not a spike", table(1000, 1000), table(1, 1), 10 * time.Second, false, 0, 0},
		{"uneven elapsed time", table(0, 0), table(5, 5), 2500 * time.Millisecond, true, 4, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			prev := build(nil, tc.prev, t0, 0)
			if prev.ServiceRates[0].Valid || prev.Seq != 1 {
				t.Fatalf("first sample has rates or seq %d", prev.Seq)
			}
			s := build(prev, tc.cur, t0.Add(tc.elapsed), 0)
			r := s.ServiceRates[0]
			if r.Valid != tc.wantValid || r.Conns != tc.wantSvc {
				t.Errorf("service rates = %+v, want valid=%v conns=%v", r, tc.wantValid, tc.wantSvc)
			}
			if got := s.DestRates[0][1].Conns; got != tc.wantRS2 {
				t.Errorf("rs2 conns/s = %v, want %v", got, tc.wantRS2)
			}
			if tc.wantValid && s.ServiceRates[0].InBytes != 100*tc.wantSvc {
				t.Errorf("in bytes/s = %v", s.ServiceRates[0].InBytes)
			}
			if s.Seq != 2 || s.Elapsed != tc.elapsed {
				t.Errorf("seq %d elapsed %v", s.Seq, s.Elapsed)
			}
		})
	}
}

func TestNewServerHasNoRateYet(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	prev := table(10, 20)
	prev.Services[0].Dests = prev.Services[0].Dests[:1] // rs2 appears later
	s := build(build(nil, prev, t0, 0), table(20, 5), t0.Add(time.Second), 0)
	if !s.DestRates[0][0].Valid || s.DestRates[0][1].Valid {
		t.Errorf("rates = %+v", s.DestRates[0])
	}
}

func TestSampleAndHealth(t *testing.T) {
	f := lvs.NewFake(table(1, 2))
	c := New(f, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	var got []*Snapshot
	c.Subscribe(func(s *Snapshot) { got = append(got, s) })
	ctx := context.Background()
	if c.Snapshot() != nil {
		t.Fatal("snapshot before first sample")
	}
	s1 := c.Sample(ctx)
	if s1 == nil || c.Snapshot() != s1 || len(got) != 1 {
		t.Fatal("first sample not published")
	}
	if s1.Table.Totals.Conns != 3 {
		t.Errorf("totals = %+v", s1.Table.Totals)
	}
	f.FailOn(lvs.OpTable, errors.New("netlink receive: no such device"))
	if c.Sample(ctx) != nil {
		t.Fatal("failed sample published")
	}
	h := c.Health()
	if h.Errors != 1 || h.ConsecutiveErr != 1 || h.Samples != 1 || h.LastError == "" || c.Snapshot() != s1 {
		t.Errorf("health after failure = %+v", h)
	}
	f.FailOn(lvs.OpTable, nil)
	f.Mutate(func(t *lvs.Table) { t.Services[0].Dests[0].Stats.Conns += 10 })
	s2 := c.Sample(ctx)
	if s2 == nil || s2.Seq != 2 || !s2.DestRates[0][0].Valid || s2.DestRates[0][0].Conns <= 0 {
		t.Fatalf("second sample = %+v", s2)
	}
	if h := c.Health(); h.ConsecutiveErr != 0 || h.Samples != 2 {
		t.Errorf("health after recovery = %+v", h)
	}
}

func TestSampleHonoursStepDeadline(t *testing.T) {
	f := lvs.NewFake(table(1, 2))
	f.SetLatency(time.Hour)
	c := New(f, 50*time.Millisecond, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if c.Sample(context.Background()) != nil {
		t.Fatal("sample succeeded despite a hanging backend")
	}
	if h := c.Health(); h.Errors != 1 {
		t.Errorf("health = %+v", h)
	}
}

func TestRunStopsAndSamples(t *testing.T) {
	f := lvs.NewFake(table(1, 2))
	c := New(f, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	seen := make(chan struct{}, 10)
	c.Subscribe(func(*Snapshot) { seen <- struct{}{} })
	go func() { c.Run(ctx); close(done) }()
	<-seen // the immediate first sample
	cancel()
	<-done
}
