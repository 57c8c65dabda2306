package events

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
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
	if b, _ := os.ReadFile(filepath.Join(dir, "events.jsonl")); bytes.Contains(b, []byte(`"seq":2`)) || !bytes.HasSuffix(b, []byte("\n")) {
		t.Errorf("the torn line is still in the file: %q", b)
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

// logTo is a logger into a buffer, for tests that count warnings.
func logTo(t *testing.T) (*slog.Logger, *bytes.Buffer) {
	t.Helper()
	var buf bytes.Buffer
	return slog.New(slog.NewTextHandler(&buf, nil)), &buf
}

func TestCut(t *testing.T) {
	tests := []struct {
		name string
		in   string
		max  int
		want string
	}{
		{"fits", "hello", 5, "hello"},
		{"empty", "", 5, ""},
		{"ascii", strings.Repeat("a", 100), 30, strings.Repeat("a", 11) + "… [cut 89 bytes]"},
		// "é" is two bytes: the cut never splits it.
		{"utf-8 boundary", strings.Repeat("é", 50), 30, strings.Repeat("é", 5) + "… [cut 90 bytes]"},
		{"bound smaller than the mark", strings.Repeat("a", 100), 5, "… [cut 100 bytes]"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := Cut(tc.in, tc.max)
			if got != tc.want {
				t.Errorf("Cut = %q, want %q", got, tc.want)
			}
			if !utf8.ValidString(got) {
				t.Errorf("Cut = %q is not valid UTF-8", got)
			}
			if tc.max >= 20 && len(got) > tc.max {
				t.Errorf("Cut = %d bytes, more than %d", len(got), tc.max)
			}
		})
	}
}

// A rejected reload quoted a 1.1 MB value into an event: the event is
// cut at Append, the line stays small, and the log reopens.
func TestHugeAppendIsBounded(t *testing.T) {
	dir := t.TempDir()
	l, err := Open(dir, 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	huge := "reload rejected: x: " + strings.Repeat("ü", 550_000) // 1.1 MB
	e, err := l.Append(Event{Kind: Reload, Message: huge, Service: strings.Repeat("s", 10_000)})
	if err != nil {
		t.Fatal(err)
	}
	i := strings.LastIndex(e.Message, "… [cut ")
	if i < 0 || len(e.Message) > MaxMessage {
		t.Fatalf("message of %d bytes, want at most %d with a cut mark", len(e.Message), MaxMessage)
	}
	if want := fmt.Sprintf("… [cut %d bytes]", len(huge)-i); e.Message[i:] != want || e.Message[:i] != huge[:i] {
		t.Errorf("message ends %q, want the beginning and %q", e.Message[max(0, i-10):], want)
	}
	if len(e.Service) > MaxField {
		t.Errorf("service of %d bytes", len(e.Service))
	}
	if got := l.Query(Filter{}); got[0].Message != e.Message {
		t.Error("the event kept in memory is not the one returned")
	}
	l.Close()
	fi, _ := os.Stat(filepath.Join(dir, "events.jsonl"))
	if fi.Size() > 2*MaxMessage {
		t.Errorf("the file holds %d bytes for one event", fi.Size())
	}
	l2, err := Open(dir, 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Query(Filter{}); len(got) != 1 || got[0].Message != e.Message {
		t.Errorf("after reopen: %d events", len(got))
	}
}

// A log written before fields were bounded holds a 1.1 MB line (and
// damage): the start skips what is not an event, says so once, keeps the
// damaged file in corrupt/ and rewrites the log without it.
func TestOversizedAndDamagedLinesAreSkipped(t *testing.T) {
	dir := t.TempDir()
	line := func(seq int, msg string) string {
		b, _ := json.Marshal(Event{Seq: uint64(seq), Time: time.Date(2026, 11, 1, 12, 0, seq, 0, time.UTC), Kind: Reload, Message: msg})
		return string(b) + "\n"
	}
	fixture := line(1, "one") +
		line(2, "reload rejected: "+strings.Repeat("v", 1_100_000)) + // 1.1 MB, from an older lvsmon
		"{this is not json\n" +
		`{"seq":4,"message":"no time, no kind"}` + "\n" +
		"\n" +
		line(5, "five") +
		line(6, strings.Repeat("w", maxLine)) + // just too long once quoted
		line(7, "seven")
	p := filepath.Join(dir, "events.jsonl")
	if err := os.WriteFile(p, []byte(fixture), 0o640); err != nil {
		t.Fatal(err)
	}
	log, buf := logTo(t)
	l, err := Open(dir, 10, log)
	if err != nil {
		t.Fatalf("Open failed on a damaged log: %v", err)
	}
	var msgs []string
	for _, e := range l.Query(Filter{}) {
		msgs = append(msgs, e.Message)
	}
	if !slices.Equal(msgs, []string{"one", "five", "seven"}) {
		t.Errorf("events = %q", msgs)
	}
	if e, _ := l.Append(Event{Kind: Reload, Message: "eight"}); e.Seq != 8 {
		t.Errorf("next seq = %d, want 8 (after the highest readable)", e.Seq)
	}
	if n := strings.Count(buf.String(), "skipped lines"); n != 1 {
		t.Errorf("%d skip warnings, want one:\n%s", n, buf)
	}
	for _, want := range []string{"skipped=4", "too_long=2", "first_line=2"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("the warning lacks %s:\n%s", want, buf)
		}
	}
	l.Close()
	kept, _ := filepath.Glob(filepath.Join(dir, "corrupt", "events.jsonl.*"))
	if len(kept) != 1 {
		t.Fatalf("copies of the damaged file: %v", kept)
	}
	if b, _ := os.ReadFile(kept[0]); string(b) != fixture {
		t.Error("the copy is not the damaged file")
	}
	// Rewritten: the next start reads it without a word.
	log2, buf2 := logTo(t)
	l2, err := Open(dir, 10, log2)
	if err != nil {
		t.Fatal(err)
	}
	if got := l2.Query(Filter{}); len(got) != 4 || buf2.Len() != 0 {
		t.Errorf("after the rewrite: %d events, log %q", len(got), buf2)
	}
}

func TestCompactionLeftoverIsRemoved(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, ".events.jsonl.tmp-12345")
	os.WriteFile(leftover, []byte("half a compaction"), 0o640)
	other := filepath.Join(dir, ".other.tmp-1")
	os.WriteFile(other, []byte("not ours"), 0o640)
	l, err := Open(dir, 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover temporary still there: %v", err)
	}
	if _, err := os.Stat(other); err != nil {
		t.Errorf("another file's temporary was removed: %v", err)
	}
}
