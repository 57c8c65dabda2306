package checker

import "time"

// The check history a server page shows: the last historyLen runs of
// like results per check, newest first. A run is consecutive results with
// the same outcome and message ("passed 360 times since 09:00", "failed 3
// times: connection refused"), so a few entries cover hours of a steady
// server and every change of a flapping one, at a fixed cost per server
// (50,000 servers hold at most 8 runs each, messages shared within a run).

// historyLen is how many runs a check keeps.
const historyLen = 8

// Outcome is what one check result said.
type Outcome string

const (
	Passed       Outcome = "passed"
	Failed       Outcome = "failed"
	Inconclusive Outcome = "inconclusive" // the director's own trouble: it said nothing about the server
)

// CheckRun is a run of like results of one check.
type CheckRun struct {
	Outcome Outcome
	Message string    // the failure's or the inconclusive result's message
	Count   int       // results in the run
	First   time.Time // when the run's first check started
	Last    time.Time // when its latest check started
	LastDur time.Duration
	MaxDur  time.Duration
}

type history struct {
	runs [historyLen]CheckRun
	n    int // filled
	head int // index of the newest
}

func (h *history) note(at time.Time, d time.Duration, o Outcome, msg string) {
	if h.n > 0 {
		if r := &h.runs[h.head]; r.Outcome == o && r.Message == msg {
			r.Count++
			r.Last, r.LastDur, r.MaxDur = at, d, max(r.MaxDur, d)
			return
		}
	}
	h.head = (h.head + 1) % historyLen
	h.n = min(h.n+1, historyLen)
	h.runs[h.head] = CheckRun{Outcome: o, Message: msg, Count: 1, First: at, Last: at, LastDur: d, MaxDur: d}
}

// list is the runs, newest first.
func (h *history) list() []CheckRun {
	out := make([]CheckRun, h.n)
	for i := range h.n {
		out[i] = h.runs[(h.head-i+historyLen)%historyLen]
	}
	return out
}

// CheckHistory is one check's recent runs, for a server page.
type CheckHistory struct {
	Type string
	Runs []CheckRun // newest first
}

// History returns the recent runs of each check of real server id (one
// entry per check, in the config's order); nil for a server not checked.
func (c *Checker) History(id string) []CheckHistory {
	c.mu.Lock()
	defer c.mu.Unlock()
	sts := c.units[id]
	if len(sts) == 0 {
		return nil
	}
	out := make([]CheckHistory, len(sts))
	for i, st := range sts {
		out[i] = CheckHistory{Type: st.CheckType, Runs: st.hist.list()}
	}
	return out
}
