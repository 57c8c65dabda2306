package checker

import (
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

func (rs *runners) idleCount() int {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	return len(rs.idle)
}

// Checks one after another take one runner; a burst takes one each,
// and once it is over the runners beyond what the checks need exit.
func TestRunnersFollowTheChecksInFlight(t *testing.T) {
	rs := &runners{idleFor: 100 * time.Millisecond}
	one := func() {
		done := make(chan struct{})
		rs.do(func() { close(done) })
		<-done
	}
	for range 20 {
		one()
	}
	testutil.WaitFor(t, "one idle runner", func() bool { return rs.idleCount() == 1 })

	var wg sync.WaitGroup
	release := make(chan struct{})
	for range 20 {
		wg.Add(1)
		rs.do(func() { defer wg.Done(); <-release })
	}
	close(release)
	wg.Wait()
	testutil.WaitFor(t, "20 idle runners after a burst of 20", func() bool { return rs.idleCount() == 20 })

	// A trickle keeps the runner idle last busy; the other 19 time out.
	testutil.WaitFor(t, "one runner left under a trickle of checks", func() bool {
		one()
		return rs.idleCount() == 1
	})
	testutil.WaitFor(t, "no runner left", func() bool { return rs.idleCount() == 0 })
}
