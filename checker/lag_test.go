package checker

import (
	"context"
	"testing"
	"time"
)

// maxLag counts only the lag that fell inside the window asked about.
func TestLagWindow(t *testing.T) {
	m := newLagMonitor()
	t0 := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	m.note(t0.Add(time.Second), 300*time.Millisecond)   // due 0.7 s
	m.note(t0.Add(5*time.Second), 2*time.Second)        // due 3 s
	m.note(t0.Add(9*time.Second), 10*time.Millisecond)  // due 8.99 s
	m.note(t0.Add(20*time.Second), 50*time.Millisecond) // outside every window below
	for _, tc := range []struct {
		from, to time.Duration
		want     time.Duration
	}{
		{0, 2 * time.Second, 300 * time.Millisecond},
		{4 * time.Second, 6 * time.Second, time.Second}, // due before the window: only its part inside
		{6 * time.Second, 10 * time.Second, 10 * time.Millisecond},
		{11 * time.Second, 15 * time.Second, 0},
	} {
		if got := m.maxLag(t0.Add(tc.from), t0.Add(tc.to)); got != tc.want {
			t.Errorf("maxLag(%s, %s) = %s, want %s", tc.from, tc.to, got, tc.want)
		}
	}
}

// The monitor samples both the timer and the poller: two samples a tick.
func TestLagMonitorSamplesTimerAndPoller(t *testing.T) {
	m := &lagMonitor{tick: 10 * time.Millisecond}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); m.run(ctx) }()
	count := func() (timer, poller int) {
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, s := range m.samples {
			switch {
			case s.at.IsZero() || s.lag > time.Minute:
			case s.poller:
				poller++
			default:
				timer++
			}
		}
		return timer, poller
	}
	waitFor(t, "five samples of each", func() bool { a, b := count(); return a >= 5 && b >= 5 })
	cancel()
	<-done
}
