package events

import (
	"encoding/json"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// hookFile stands for the log's file: it can fail writes and syncs, and
// it checks at each sync that nothing of the line being synced has
// reached a reader yet.
type hookFile struct {
	file
	failWrite, failSync bool
	partial             bool // a failing write writes half the line first
	onSync              func()
}

func (h *hookFile) Write(b []byte) (int, error) {
	if h.failWrite {
		if h.partial {
			h.file.Write(b[:len(b)/2])
		}
		return 0, errors.New("no space left on device")
	}
	return h.file.Write(b)
}

func (h *hookFile) Sync() error {
	if h.onSync != nil {
		h.onSync()
	}
	if h.failSync {
		return errors.New("input/output error")
	}
	return h.file.Sync()
}

// A subscriber, a wake channel and Since see an event only after its
// line is synced.
func TestAppendDeliversOnlyAfterSync(t *testing.T) {
	l, err := Open(t.TempDir(), 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	sub := make(chan Event, 10)
	wake := make(chan struct{}, 1)
	l.Subscribe(sub)
	l.Wake(wake)
	syncs := 0
	h := &hookFile{file: l.f, onSync: func() {
		syncs++
		// Append holds the lock while it syncs: look without it.
		if len(sub) != 0 || len(wake) != 0 || len(l.events()) != syncs-1 {
			t.Errorf("sync %d: the event reached a reader before its line was synced (subscriber %d, wake %d, held %d)",
				syncs, len(sub), len(wake), len(l.events()))
		}
	}}
	l.f = h
	if _, err := l.Append(Event{Kind: ServerDown}); err != nil {
		t.Fatal(err)
	}
	if syncs != 1 || len(sub) != 1 || len(wake) != 1 || len(l.Since(0, 0)) != 1 {
		t.Fatalf("after the sync: %d syncs, subscriber %d, wake %d", syncs, len(sub), len(wake))
	}
	<-sub
	<-wake
	// A failed sync or write is not durable: never delivered, not kept.
	for _, fail := range []struct {
		name             string
		write, sync, cut bool
	}{{"sync", false, true, false}, {"write", true, false, false}, {"half a write", true, false, true}} {
		h.failWrite, h.failSync, h.partial = fail.write, fail.sync, fail.cut
		if _, err := l.Append(Event{Kind: ServerUp, Message: "lost: " + fail.name}); err == nil {
			t.Fatalf("failed %s: no error", fail.name)
		}
		syncs = len(l.events()) + 1 // the check in onSync counts held events
		if len(sub) != 0 || len(wake) != 0 || len(l.Since(0, 0)) != 1 {
			t.Fatalf("failed %s: delivered (subscriber %d, wake %d, held %d)", fail.name, len(sub), len(wake), len(l.Since(0, 0)))
		}
	}
	h.failWrite, h.failSync, h.onSync = false, false, nil
	e, err := l.Append(Event{Kind: SorryOn})
	if err != nil {
		t.Fatal(err)
	}
	if e.Seq != 5 || (<-sub).Seq != 5 || len(wake) != 1 {
		t.Fatalf("the next event: seq %d", e.Seq)
	}
	if got := l.Since(1, 0); len(got) != 1 || got[0].Seq != 5 {
		t.Fatalf("Since(1) = %+v, want only seq 5", got)
	}
	// Reopened, the log holds what was synced: the failed sync's line
	// is in the file (the disk took it after all), the half line is cut
	// off by the newline the next append wrote first.
	l.Close()
	l2, err := Open(filepath.Dir(l.path), 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	var seqs []uint64
	for _, e := range l2.Query(Filter{}) {
		seqs = append(seqs, e.Seq)
	}
	if !slices.Equal(seqs, []uint64{1, 2, 5}) {
		t.Errorf("after reopening: seqs %v, want 1, 2 (written, sync failed) and 5", seqs)
	}
}

// At capacity, Append forgets the oldest event without copying the
// ones it keeps each time: the array holding them stays the same.
func TestAppendAtCapacityKeepsItsArray(t *testing.T) {
	const max = 1000
	l, err := Open(t.TempDir(), max, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	l.f = discard{}
	// l.lines = 0: no compaction, which would put a real file back.
	for range 2 * max {
		l.Append(Event{Kind: Reload})
		l.lines = 0
	}
	base := &l.buf[:1][0]
	for i := range 3 * max {
		e, _ := l.Append(Event{Kind: Reload})
		l.lines = 0
		evs := l.events()
		if len(evs) != max || evs[0].Seq != e.Seq-max+1 || evs[max-1].Seq != e.Seq {
			t.Fatalf("append %d: holds %d events, %d to %d", i, len(evs), evs[0].Seq, evs[len(evs)-1].Seq)
		}
		if &l.buf[:1][0] != base {
			t.Fatalf("append %d: the events moved to a new array", i)
		}
	}
	if cap(l.buf) > 2*max {
		t.Errorf("array of %d events for %d", cap(l.buf), max)
	}
	if got := l.Since(uint64(5*max-2), 0); len(got) != 2 {
		t.Errorf("Since near the end = %d events", len(got))
	}
}

// discard is a file that takes everything at once.
type discard struct{}

func (discard) Write(b []byte) (int, error) { return len(b), nil }
func (discard) Sync() error                 { return nil }
func (discard) Close() error                { return nil }

// BenchmarkAppendFull appends to a log holding DefaultMax events, the
// file replaced by one that costs nothing: what is left is Append's own
// work, a few small allocations per event (its JSON line), and no copy
// of the 100,000 events held.
func BenchmarkAppendFull(b *testing.B) {
	l, err := Open(b.TempDir(), DefaultMax, quiet)
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	l.f = discard{}
	e := Event{Kind: ServerDown, Service: "tcp_10.0.0.1_80", Server: "tcp_10.0.0.1_80__10.0.1.2_80", To: Down,
		Reason: "http: status 503", Message: "web: 10.0.1.2:80 is down: http: status 503"}
	for range DefaultMax {
		l.Append(e)
	}
	l.lines = 0 // no compaction of the (discarded) file during the run
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := l.Append(e); err != nil {
			b.Fatal(err)
		}
		l.lines = 0
	}
}

// An event without the structured fields is the same JSON line as
// before they existed; with them, each is one short key.
func TestEventJSON(t *testing.T) {
	at := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	b, _ := json.Marshal(Event{Seq: 1, Time: at, Kind: Reload, Message: "config reloaded: 1 virtual services"})
	if want := `{"seq":1,"time":"2026-11-01T12:00:00Z","kind":"reload","message":"config reloaded: 1 virtual services"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
	b, _ = json.Marshal(Event{Seq: 2, Time: at, Kind: RoleChange, Instance: "VI_1", From: "BACKUP", To: "MASTER", Actor: "keepalived", Message: "m"})
	if want := `{"seq":2,"time":"2026-11-01T12:00:00Z","kind":"role_change","instance":"VI_1","from":"BACKUP","to":"MASTER","actor":"keepalived","message":"m"}`; string(b) != want {
		t.Errorf("JSON %s, want %s", b, want)
	}
}

// The structured fields are bounded like the others.
func TestStructuredFieldsBounded(t *testing.T) {
	l, err := Open(t.TempDir(), 10, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	long := strings.Repeat("x", 100_000)
	e, err := l.Append(Event{Kind: Reload, From: long, To: long, Actor: long, Reason: long, Message: long})
	if err != nil {
		t.Fatal(err)
	}
	for name, v := range map[string]string{"from": e.From, "to": e.To, "actor": e.Actor} {
		if len(v) > MaxField {
			t.Errorf("%s of %d bytes", name, len(v))
		}
	}
	if len(e.Reason) > MaxMessage {
		t.Errorf("reason of %d bytes", len(e.Reason))
	}
	// The longest line Append writes, all escaping, is one load reads.
	worst := strings.Repeat("\x01", 100_000)
	w := Event{Kind: Kind(worst), Service: worst, Server: worst, Instance: worst, From: worst, To: worst, Actor: worst, Reason: worst, Message: worst}
	bound(&w)
	b, _ := json.Marshal(w)
	if len(b) >= maxLine {
		t.Errorf("a bounded event makes a line of %d bytes, load reads %d", len(b), maxLine)
	}
}

func TestKinds(t *testing.T) {
	for _, k := range Kinds() {
		if !k.Valid() {
			t.Errorf("%s is not valid", k)
		}
	}
	for _, k := range []Kind{ReloadRejected, All, "", "server_dwon"} {
		if k.Valid() {
			t.Errorf("%q is valid", k)
		}
	}
	for _, k := range DefaultAlerts() {
		if !slices.Contains(Selectors(), k) {
			t.Errorf("default %s is no selector", k)
		}
	}
	rejected := Event{Kind: Reload, To: Rejected}
	applied := Event{Kind: Reload, To: Applied}
	for _, tc := range []struct {
		k    Kind
		e    Event
		want bool
	}{
		{Reload, rejected, true}, {Reload, applied, true},
		{ReloadRejected, rejected, true}, {ReloadRejected, applied, false},
		{ReloadRejected, Event{Kind: RoleChange, To: Rejected}, false},
		{All, Event{Kind: "anything"}, true}, {ServerDown, Event{Kind: ServerUp}, false},
	} {
		if got := tc.k.Selects(&tc.e); got != tc.want {
			t.Errorf("%s selects %+v = %v", tc.k, tc.e, got)
		}
	}
}
