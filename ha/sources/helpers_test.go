package sources

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

func TestMain(m *testing.M) {
	// The test binary doubles as a fake keepalived (see fakeKeepalived).
	if os.Getenv(fakeEnv) != "" {
		fakeKeepalived()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// waitLimit bounds every wait for a report. It is a guard against a hung
// test, not a timing assertion: durations are logged, not checked.
const waitLimit = 20 * time.Second

// stamped is a report with the time the callback got it.
type stamped struct {
	ha.Report
	At time.Time
}

// recorder collects reports from a source's Run.
type recorder struct {
	mu      sync.Mutex
	reports []stamped
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{})} }

func (r *recorder) add(rep ha.Report) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reports = append(r.reports, stamped{rep, time.Now()})
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *recorder) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.reports)
}

func (r *recorder) all() []stamped {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]stamped(nil), r.reports...)
}

func (r *recorder) last() (stamped, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.reports) == 0 {
		return stamped{}, false
	}
	return r.reports[len(r.reports)-1], true
}

// waitFor returns the first report at index from or later that satisfies
// pred, and its index. It fails the test after waitLimit.
func (r *recorder) waitFor(t *testing.T, from int, what string, pred func(ha.Report) bool) (int, stamped) {
	t.Helper()
	deadline := time.NewTimer(waitLimit)
	defer deadline.Stop()
	for {
		r.mu.Lock()
		for i := from; i < len(r.reports); i++ {
			if pred(r.reports[i].Report) {
				s := r.reports[i]
				r.mu.Unlock()
				return i, s
			}
		}
		ch := r.changed
		n := len(r.reports)
		var lastRep string
		if n > 0 {
			lastRep = describe(r.reports[n-1].Report)
		}
		r.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("no report with %s after %v (%d reports, last: %s)", what, waitLimit, n, lastRep)
		}
	}
}

// describe renders a report compactly for failure messages and logs.
func describe(r ha.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s running=%v", r.Source, r.Running)
	if r.Transition {
		b.WriteString(" transition")
	}
	if r.Err != nil {
		fmt.Fprintf(&b, " err=%q", r.Err)
	}
	for _, in := range r.Instances {
		st := in.State.String()
		if in.VIPsDecide {
			st = "by-VIPs"
		}
		fmt.Fprintf(&b, " [%s %s prio=%d vrid=%d vips=%v]", in.Name, st, in.Priority, in.VRID, in.VIPs)
	}
	for _, v := range r.VIPs {
		fmt.Fprintf(&b, " [%s present=%v %s]", v.Addr, v.Present, v.Interface)
	}
	for _, rt := range r.Routers {
		fmt.Fprintf(&b, " [vrid %d v%d:", rt.VRID, rt.Version)
		for _, m := range rt.Masters {
			fmt.Fprintf(&b, " %s/%d/%v", m.Addr, m.Priority, m.Interval)
			if m.Local {
				b.WriteString("/local")
			}
		}
		b.WriteString("]")
	}
	return b.String()
}

// runSource starts run in a goroutine and returns its recorder. The
// returned stop (also registered with t.Cleanup) cancels it and checks
// that Run returned nil promptly.
func runSource(t *testing.T, run func(context.Context, func(ha.Report)) error) (*recorder, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	rec := newRecorder()
	done := make(chan error, 1)
	go func() { done <- run(ctx, rec.add) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			start := time.Now()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run returned %v after cancel, want nil", err)
				}
				t.Logf("Run returned %v after cancel", time.Since(start).Round(time.Millisecond))
			case <-time.After(10 * time.Second):
				t.Errorf("Run did not return within 10s of cancel")
			}
		})
	}
	t.Cleanup(stop)
	return rec, stop
}

// firstReport runs a source until its first report and returns it.
func firstReport(t *testing.T, run func(context.Context, func(ha.Report)) error) ha.Report {
	t.Helper()
	rec, stop := runSource(t, run)
	_, s := rec.waitFor(t, 0, "any content", func(ha.Report) bool { return true })
	stop()
	return s.Report
}

// testLogger logs at debug level into a buffer the test can search, and
// mirrors nothing to the test output (the buffer is logged on failure).
func testLogger(t *testing.T) (*slog.Logger, *testutil.SyncBuffer) {
	buf := &testutil.SyncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("source log:\n%s", buf.String())
		}
	})
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// writeScript writes an executable shell script and returns its path.
func writeScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	path := dir + "/" + name
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return path
}
