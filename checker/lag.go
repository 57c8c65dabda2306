package checker

import (
	"context"
	"sync"
	"time"
)

// lagMonitor measures how late lvsmon's own timers fire: a goroutine that
// asks to wake every tick and notes by how much it overslept. On a
// healthy director that is well under a millisecond; when the process is
// starved (a CPU hog, a flood of web requests, a stop-the-world pause)
// every check's timers are as late, and a probe that "timed out" may
// never have waited for the server at all.
type lagMonitor struct {
	tick time.Duration

	mu      sync.Mutex
	samples [lagSlots]lagSample // a ring, newest at next-1
	next    int
}

type lagSample struct {
	at  time.Time // when the late wake-up happened
	lag time.Duration
}

// lagSlots at lagTick cover the longest check budget we look back over
// (a minute at 100 ms; older lag is forgotten, which only makes lvsmon
// believe a result it could have doubted).
const (
	lagTick  = 100 * time.Millisecond
	lagSlots = 600
)

func newLagMonitor() *lagMonitor { return &lagMonitor{tick: lagTick} }

// run samples until ctx ends.
func (m *lagMonitor) run(ctx context.Context) {
	t := time.NewTimer(m.tick)
	defer t.Stop()
	want := time.Now().Add(m.tick)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.note(now, now.Sub(want))
			want = now.Add(m.tick)
			t.Reset(m.tick)
		}
	}
}

// note records one wake-up that came lag after it was due.
func (m *lagMonitor) note(at time.Time, lag time.Duration) {
	if lag < 0 {
		lag = 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples[m.next] = lagSample{at: at, lag: lag}
	m.next = (m.next + 1) % lagSlots
}

// maxLag is the worst lag noted between from and to (a wake-up noted up
// to one tick after to still tells about the window: it was due in it).
func (m *lagMonitor) maxLag(from, to time.Time) time.Duration {
	if m == nil {
		return 0
	}
	to = to.Add(m.tick)
	m.mu.Lock()
	defer m.mu.Unlock()
	var worst time.Duration
	for _, s := range m.samples {
		if s.at.IsZero() || s.at.Before(from) || s.at.After(to) {
			continue
		}
		// The wake-up at s.at was due at s.at-s.lag: only lag inside the
		// window counts.
		l := s.lag
		if due := s.at.Add(-l); due.Before(from) {
			l = s.at.Sub(from)
		}
		worst = max(worst, l)
	}
	return worst
}

// recent is the largest lag noted over the last minute (status).
func (m *lagMonitor) recent(now time.Time) time.Duration {
	return m.maxLag(now.Add(-time.Minute), now)
}
