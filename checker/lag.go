package checker

import (
	"context"
	"encoding/binary"
	"io"
	"os"
	"sync"
	"time"
)

// lagMonitor measures how late lvsmon's own goroutines run, in the two
// ways a check waits: for a timer (its deadline) and for the network
// poller (its connect or read completing). A goroutine asks to wake every
// tick and notes by how much it overslept; at each tick it also writes a
// byte into a pipe that another goroutine blocks reading, and that one
// notes how long the byte took to wake it. A goroutine woken by the
// poller waits behind every runnable goroutine, so under a flood of work
// the second delay is the larger, and it is what a check's dial suffers.
// On a healthy director both are well under a millisecond; when the
// process is starved (a CPU hog, a flood of web requests, a
// stop-the-world pause) a probe that "timed out" may never have waited
// for the server at all.
type lagMonitor struct {
	tick time.Duration

	mu      sync.Mutex
	samples [lagSlots]lagSample // a ring, newest at next-1
	next    int
}

type lagSample struct {
	at     time.Time // when the late wake-up happened
	lag    time.Duration
	poller bool // woken by the poller (the pipe), not a timer
}

// lagSlots hold a minute of samples, two a tick (the timer's and the
// poller's); older lag is forgotten, which only makes lvsmon believe a
// result it could have doubted.
const (
	lagTick  = 100 * time.Millisecond
	lagSlots = 2 * int(time.Minute/lagTick)
)

func newLagMonitor() *lagMonitor { return &lagMonitor{tick: lagTick} }

// run samples until ctx ends.
func (m *lagMonitor) run(ctx context.Context) {
	ping := m.pollerProbe(ctx)
	t := time.NewTimer(m.tick)
	defer t.Stop()
	want := time.Now().Add(m.tick)
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			m.noteFrom(now, now.Sub(want), false)
			ping(now)
			want = now.Add(m.tick)
			t.Reset(m.tick)
		}
	}
}

// pollerProbe starts the pipe's reader and returns the function that
// sends it a byte stamped with the time. Without a pipe (no descriptor
// left) only the timer is measured.
func (m *lagMonitor) pollerProbe(ctx context.Context) func(time.Time) {
	r, w, err := os.Pipe()
	if err != nil {
		return func(time.Time) {}
	}
	go func() {
		<-ctx.Done()
		w.Close()
		r.Close()
	}()
	go func() {
		var b [8]byte
		for {
			if _, err := io.ReadFull(r, b[:]); err != nil {
				return
			}
			now := time.Now()
			m.noteFrom(now, now.Sub(time.Unix(0, int64(binary.LittleEndian.Uint64(b[:])))), true)
		}
	}()
	return func(now time.Time) {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(now.UnixNano()))
		w.Write(b[:]) // 8 bytes into a pipe: one atomic write
	}
}

// note records one wake-up that came lag after it was due.
func (m *lagMonitor) note(at time.Time, lag time.Duration) { m.noteFrom(at, lag, false) }

func (m *lagMonitor) noteFrom(at time.Time, lag time.Duration, poller bool) {
	if lag < 0 {
		lag = 0
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.samples[m.next] = lagSample{at: at, lag: lag, poller: poller}
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
