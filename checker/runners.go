package checker

import "time"

// runners run checks on goroutines that outlive a check. A check needs
// a deeper stack than a new goroutine starts with, and a goroutine per
// check grew its stack at every check, a copy that cost more CPU than
// the check's own Go code; a runner keeps its grown stack for the next.
// A runner waits runnerIdle for its next check, then exits, so there
// are about as many as checks in flight (a tarpit holds one for its
// timeout), and none when nothing is checked.
type runners struct{ jobs chan func() }

// runnerIdle is how long an idle runner waits for a check.
const runnerIdle = 10 * time.Second

func newRunners() *runners { return &runners{jobs: make(chan func())} }

// do runs f on an idle runner, or on a new one when none is idle.
func (r *runners) do(f func()) {
	select {
	case r.jobs <- f:
	default:
		go r.run(f)
	}
}

func (r *runners) run(f func()) {
	idle := time.NewTimer(runnerIdle)
	defer idle.Stop()
	for {
		f()
		idle.Reset(runnerIdle)
		select {
		case f = <-r.jobs:
		case <-idle.C:
			return
		}
	}
}
