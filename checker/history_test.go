package checker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

func TestHistoryRuns(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var h history
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	h.note(at(0), 2*time.Millisecond, Passed, "")
	h.note(at(5), 7*time.Millisecond, Passed, "")
	h.note(at(10), 3*time.Millisecond, Failed, "connection refused")
	h.note(at(15), 3*time.Millisecond, Failed, "connection refused")
	h.note(at(20), time.Second, Failed, "no answer within 1s")
	h.note(at(25), 0, Inconclusive, "too many open files")
	got := h.list()
	want := []CheckRun{
		{Outcome: Inconclusive, Message: "too many open files", Count: 1, First: at(25), Last: at(25)},
		{Outcome: Failed, Message: "no answer within 1s", Count: 1, First: at(20), Last: at(20), LastDur: time.Second, MaxDur: time.Second},
		{Outcome: Failed, Message: "connection refused", Count: 2, First: at(10), Last: at(15), LastDur: 3 * time.Millisecond, MaxDur: 3 * time.Millisecond},
		{Outcome: Passed, Count: 2, First: at(0), Last: at(5), LastDur: 7 * time.Millisecond, MaxDur: 7 * time.Millisecond},
	}
	if len(got) != len(want) {
		t.Fatalf("%d runs, want %d: %+v", len(got), len(want), got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("run %d = %+v, want %+v", i, got[i], want[i])
		}
	}
	// A flapping server keeps its last historyLen changes.
	for i := range 3 * historyLen {
		o := Passed
		if i%2 == 1 {
			o = Failed
		}
		h.note(at(100+i), 0, o, "")
	}
	got = h.list()
	if len(got) != historyLen || got[0].First != at(100+3*historyLen-1) || got[historyLen-1].First != at(100+2*historyLen) {
		t.Errorf("after flapping: %d runs from %v to %v", len(got), got[len(got)-1].First, got[0].First)
	}
}

// TestHistoryThroughTheChecker: the results the checker takes show in
// History, per server, and an unknown server has none.
func TestHistoryThroughTheChecker(t *testing.T) {
	p := newScripted()
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	c := New(p.probe, ev, quiet, func() {})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx)
	c.Apply(checkConfig(t, 1, 1, 2))
	id := "tcp_10.0.0.100_80__10.0.1.1_80"
	waitFor(t, "a passed run", func() bool {
		h := c.History(id)
		return len(h) == 1 && len(h[0].Runs) > 0 && h[0].Runs[0].Outcome == Passed
	})
	p.set("10.0.1.1", errors.New("tcp: connect 10.0.1.1:80: connection refused"))
	waitFor(t, "a failed run of 2", func() bool {
		r := c.History(id)[0].Runs
		return r[0].Outcome == Failed && r[0].Count >= 2 && r[1].Outcome == Passed
	})
	if h := c.History(id); h[0].Type != "tcp" || h[0].Runs[0].Message != "tcp: connect 10.0.1.1:80: connection refused" {
		t.Errorf("history = %+v", h)
	}
	if h := c.History("tcp_10.0.0.100_80__10.9.9.9_80"); h != nil {
		t.Errorf("an unknown server has a history: %+v", h)
	}
}
