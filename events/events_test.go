package events

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func TestAppendQueryAndReopen(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	in := []Event{
		{Time: t0, Kind: ServerDown, Service: "tcp_10.0.0.1_80", Server: "tcp_10.0.0.1_80__10.1.1.2_80", Message: "http: status 503"},
		{Time: t0.Add(time.Minute), Kind: RoleChange, Message: "VI_1 BACKUP -> MASTER"},
		{Time: t0.Add(2 * time.Minute), Kind: ServerUp, Service: "tcp_10.0.0.1_80", Server: "tcp_10.0.0.1_80__10.1.1.2_80"},
		{Time: t0.Add(3 * time.Minute), Kind: SorryOn, Service: "udp_10.0.0.1_53"},
	}
	for _, e := range in {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		f    Filter
		want []uint64
	}{
		{"all", Filter{}, []uint64{1, 2, 3, 4}},
		{"time window", Filter{From: t0.Add(30 * time.Second), To: t0.Add(2 * time.Minute)}, []uint64{2, 3}},
		{"service", Filter{Service: "tcp_10.0.0.1_80"}, []uint64{1, 3}},
		{"service with director events", Filter{Service: "tcp_10.0.0.1_80", Director: true}, []uint64{1, 2, 3}},
		{"server", Filter{Server: "tcp_10.0.0.1_80__10.1.1.2_80", Director: true}, []uint64{1, 2, 3}},
		{"newest two", Filter{Limit: 2}, []uint64{3, 4}},
	}
	check := func(l *Log) {
		for _, tc := range tests {
			got := l.Query(tc.f)
			if len(got) != len(tc.want) {
				t.Errorf("%s: got %d events %+v, want seqs %v", tc.name, len(got), got, tc.want)
				continue
			}
			for i := range got {
				if got[i].Seq != tc.want[i] {
					t.Errorf("%s: event %d has seq %d, want %d", tc.name, i, got[i].Seq, tc.want[i])
				}
			}
		}
	}
	check(l)
	l.Close()
	l2, err := Open(dir, 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	check(l2)
	e, _ := l2.Append(Event{Kind: Reload, Message: "config reloaded"})
	if e.Seq != 5 || e.Time.IsZero() {
		t.Errorf("seq after reopen = %d", e.Seq)
	}
}

func TestTornLineIsSkipped(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 10, quiet)
	l.Append(Event{Kind: ServerDown, Message: "one"})
	l.Close()
	// A crash in the middle of the next write leaves half a line.
	f, _ := os.OpenFile(filepath.Join(dir, "events.jsonl"), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"seq":2,"time":"2026-11-01T12:00:00Z","kind":"ser`)
	f.Close()
	l2, err := Open(dir, 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Query(Filter{}); len(got) != 1 || got[0].Message != "one" {
		t.Fatalf("events after torn line = %+v", got)
	}
	// The next append starts on a line of its own and survives a reopen.
	l2.Append(Event{Kind: ServerUp, Message: "two"})
	l2.Close()
	l3, _ := Open(dir, 10, quiet)
	if got := l3.Query(Filter{}); len(got) != 2 || got[1].Message != "two" {
		t.Fatalf("events = %+v", got)
	}
}

func TestBoundedAndCompacted(t *testing.T) {
	dir := t.TempDir()
	l, _ := Open(dir, 5, quiet)
	for i := range 23 {
		if _, err := l.Append(Event{Kind: ServerDown, Message: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	got := l.Query(Filter{})
	if len(got) != 5 || got[0].Seq != 19 || got[4].Seq != 23 {
		t.Fatalf("kept %d events, first seq %d", len(got), got[0].Seq)
	}
	l.Close()
	b, _ := os.ReadFile(filepath.Join(dir, "events.jsonl"))
	lines := 0
	for _, c := range b {
		if c == '\n' {
			lines++
		}
	}
	if lines >= 10 {
		t.Errorf("file has %d lines, want it compacted below 2×max", lines)
	}
	l2, _ := Open(dir, 5, quiet)
	if got := l2.Query(Filter{}); len(got) != 5 || got[4].Seq != 23 {
		t.Errorf("after reopen: %+v", got)
	}
}

func TestSubscribe(t *testing.T) {
	l, _ := Open(t.TempDir(), 10, quiet)
	ch := make(chan Event, 1)
	l.Subscribe(ch)
	l.Append(Event{Kind: SorryOn})
	l.Append(Event{Kind: SorryOff}) // channel full: dropped for this subscriber, kept in the log
	if e := <-ch; e.Kind != SorryOn {
		t.Errorf("got %+v", e)
	}
	if n := len(l.Query(Filter{})); n != 2 {
		t.Errorf("log has %d events", n)
	}
	if _, err := l.Append(Event{}); err == nil {
		t.Error("an event without kind was accepted")
	}
}

func TestSince(t *testing.T) {
	l, err := Open(t.TempDir(), 10, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	for i := 0; i < 5; i++ {
		if _, err := l.Append(Event{Kind: Reload}); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		seq   uint64
		limit int
		want  []uint64
	}{{0, 0, []uint64{1, 2, 3, 4, 5}}, {3, 0, []uint64{4, 5}}, {0, 2, []uint64{1, 2}}, {5, 0, nil}, {99, 0, nil}} {
		var got []uint64
		for _, e := range l.Since(tc.seq, tc.limit) {
			got = append(got, e.Seq)
		}
		if !slices.Equal(got, tc.want) {
			t.Errorf("Since(%d, %d) = %v, want %v", tc.seq, tc.limit, got, tc.want)
		}
	}
	if l.LastSeq() != 5 {
		t.Errorf("LastSeq = %d, want 5", l.LastSeq())
	}
}

// A wake channel of capacity 1 collapses a burst into one pending
// wake-up, silently.
func TestWake(t *testing.T) {
	l, err := Open(t.TempDir(), 10, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	wake := make(chan struct{}, 1)
	l.Wake(wake)
	for i := 0; i < 5; i++ {
		l.Append(Event{Kind: Reload})
	}
	if len(wake) != 1 {
		t.Fatalf("%d pending wake-ups, want 1", len(wake))
	}
	<-wake
	l.Append(Event{Kind: Reload})
	select {
	case <-wake:
	default:
		t.Fatal("no wake-up after a drained channel")
	}
}
