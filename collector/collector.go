// Package collector samples the IPVS table once per step into an
// immutable Snapshot that every consumer (web, RRD files, metrics) shares,
// so the kernel is read once per step however many consumers there are.
//
// Rates come from counter deltas over the real elapsed time between two
// samples, not from the kernel's estimator (which folds per-CPU counters
// only every ~2 s and smooths over ~8 s). A counter that goes backwards
// (ipvsadm -Z, a service deleted and re-created) gives an unknown rate for
// that step, never a spike.
package collector

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// The snapshot types live with the model, so that every consumer (web,
// graphs, alerting) can read snapshots without importing the sampler.
type (
	Snapshot = lvs.Snapshot
	Rates    = lvs.Rates
	Health   = lvs.CollectorHealth
)

// Collector owns the sampling loop.
type Collector struct {
	r    lvs.Reader
	log  *slog.Logger
	step atomic.Int64 // time.Duration
	kick chan struct{}

	cur atomic.Pointer[Snapshot]

	mu     sync.Mutex
	health Health
	subs   []func(*Snapshot)
}

// New returns a collector reading r every step.
func New(r lvs.Reader, step time.Duration, log *slog.Logger) *Collector {
	c := &Collector{r: r, log: log, kick: make(chan struct{}, 1)}
	c.step.Store(int64(step))
	return c
}

// SetStep changes the sampling interval from the next tick on (config
// reload).
func (c *Collector) SetStep(d time.Duration) {
	if time.Duration(c.step.Swap(int64(d))) != d {
		select {
		case c.kick <- struct{}{}:
		default:
		}
	}
}

// Step returns the current sampling interval.
func (c *Collector) Step() time.Duration { return time.Duration(c.step.Load()) }

// Snapshot returns the latest successful sample, or nil before the first.
func (c *Collector) Snapshot() *Snapshot { return c.cur.Load() }

// Health returns a copy of the collector's health.
func (c *Collector) Health() Health {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.health
	h.Step = c.Step()
	return h
}

// Subscribe registers fn to be called, in the collector's goroutine, with
// every new snapshot. A subscriber must return quickly (hand the snapshot
// to its own goroutine if it does slow work), since the next sample waits.
func (c *Collector) Subscribe(fn func(*Snapshot)) {
	c.mu.Lock()
	c.subs = append(c.subs, fn)
	c.mu.Unlock()
}

// Run samples at once, then on every step boundary (wall-clock aligned,
// so that RRD updates land on step boundaries) until ctx ends. A failed
// read is logged, counted and retried on the next step; it never stops
// the loop.
func (c *Collector) Run(ctx context.Context) {
	for {
		c.Sample(ctx)
		step := c.Step()
		next := time.Now().Truncate(step).Add(step)
		if time.Until(next) < step/2 {
			// Too close to the sample just taken: rates over a sliver of
			// a step are noisy, and RRD refuses two updates per second.
			next = next.Add(step)
		}
		t := time.NewTimer(time.Until(next))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-c.kick:
			t.Stop()
		case <-t.C:
		}
	}
}

// Sample reads the table once and publishes the snapshot. It returns the
// new snapshot, or nil when the read failed.
func (c *Collector) Sample(ctx context.Context) *Snapshot {
	start := time.Now()
	// A read must finish within a step, or the next one would pile up.
	rctx, cancel := context.WithTimeout(ctx, c.Step())
	t, err := c.r.Table(rctx)
	cancel()
	dur := time.Since(start)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		c.mu.Lock()
		c.health.Errors++
		c.health.ConsecutiveErr++
		c.health.LastError = err.Error()
		c.health.LastErrorTime = start
		n := c.health.ConsecutiveErr
		c.mu.Unlock()
		// Log the first failure and then every 60th, so a dead backend
		// does not fill the log once per second.
		if n == 1 || n%60 == 0 {
			c.log.Error("reading the IPVS table failed; retrying next step", "err", err, "consecutive_failures", n)
		}
		return nil
	}
	prev := c.cur.Load()
	s := build(prev, t, start, dur)
	c.cur.Store(s)
	c.mu.Lock()
	if c.health.ConsecutiveErr > 0 {
		c.log.Info("reading the IPVS table works again", "after_failures", c.health.ConsecutiveErr)
	}
	c.health.ConsecutiveErr = 0
	c.health.Samples++
	c.health.LastSample = start
	c.health.LastDuration = dur
	subs := c.subs
	c.mu.Unlock()
	for _, fn := range subs {
		fn(s)
	}
	return s
}

// build makes a snapshot from a fresh table and the previous snapshot.
func build(prev *Snapshot, t lvs.Table, at time.Time, dur time.Duration) *Snapshot {
	s := &Snapshot{Seq: 1, Time: at, Duration: dur, Table: t}
	s.ServiceRates = make([]Rates, len(t.Services))
	s.DestRates = make([][]Rates, len(t.Services))
	if prev != nil {
		s.Seq = prev.Seq + 1
		s.Elapsed = at.Sub(prev.Time)
	}
	secs := s.Elapsed.Seconds()
	for i := range t.Services {
		svc := &t.Services[i]
		dr := make([]Rates, len(svc.Dests))
		s.DestRates[i] = dr
		if prev == nil || secs <= 0 {
			continue
		}
		psvc := prev.Table.Service(svc.Key)
		if psvc == nil {
			continue
		}
		s.ServiceRates[i] = rates(psvc.Stats, svc.Stats, secs)
		for j := range svc.Dests {
			if pd := psvc.Dest(svc.Dests[j].Key); pd != nil {
				dr[j] = rates(pd.Stats, svc.Dests[j].Stats, secs)
			}
		}
	}
	if prev != nil && secs > 0 {
		s.TotalRates = rates(prev.Table.Totals, t.Totals, secs)
	}
	return s
}

// rates computes per-second deltas; any counter going backwards means
// the counters were reset, and the step's rates are unknown.
func rates(a, b lvs.Stats, secs float64) Rates {
	if b.Conns < a.Conns || b.InPkts < a.InPkts || b.OutPkts < a.OutPkts || b.InBytes < a.InBytes || b.OutBytes < a.OutBytes {
		return Rates{}
	}
	return Rates{
		Valid:    true,
		Conns:    float64(b.Conns-a.Conns) / secs,
		InPkts:   float64(b.InPkts-a.InPkts) / secs,
		OutPkts:  float64(b.OutPkts-a.OutPkts) / secs,
		InBytes:  float64(b.InBytes-a.InBytes) / secs,
		OutBytes: float64(b.OutBytes-a.OutBytes) / secs,
	}
}
