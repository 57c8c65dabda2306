package checker

import (
	"slices"
	"sync"
	"time"
)

// runners run checks on goroutines that outlive a check. A check needs
// a deeper stack than a new goroutine starts with, and a goroutine per
// check grew its stack at every check, a copy that cost more CPU than
// the check's own Go code; a runner keeps its grown stack for the next.
// The runner idle last takes the next check, so the others, once more
// than the checks in flight, wait runnerIdle and exit: a burst (the
// first round, a starved moment, a tarpit holding one per hung check)
// leaves no standing crowd of stacks behind.
type runners struct {
	idleFor time.Duration // 0: runnerIdle

	mu   sync.Mutex
	idle []*runner // most recently idle last
}

type runner struct{ next chan func() }

// runnerIdle is how long an idle runner waits for a check.
const runnerIdle = 10 * time.Second

// do runs f on the runner idle last, or on a new one when none is.
func (rs *runners) do(f func()) {
	rs.mu.Lock()
	if n := len(rs.idle); n > 0 {
		r := rs.idle[n-1]
		rs.idle = rs.idle[:n-1]
		rs.mu.Unlock()
		r.next <- f // never blocks: the runner is off the list, its slot empty
		return
	}
	rs.mu.Unlock()
	go rs.run(&runner{next: make(chan func(), 1)}, f)
}

func (rs *runners) run(r *runner, f func()) {
	wait := rs.idleFor
	if wait <= 0 {
		wait = runnerIdle
	}
	idle := time.NewTimer(wait)
	defer idle.Stop()
	for {
		f()
		rs.mu.Lock()
		rs.idle = append(rs.idle, r)
		rs.mu.Unlock()
		idle.Reset(wait)
		select {
		case f = <-r.next:
			continue
		case <-idle.C:
		}
		rs.mu.Lock()
		i := slices.Index(rs.idle, r)
		if i >= 0 {
			rs.idle = slices.Delete(rs.idle, i, i+1)
		}
		rs.mu.Unlock()
		if i >= 0 {
			return
		}
		f = <-r.next // do took it off the list as the timer fired
	}
}
