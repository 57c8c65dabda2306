package events

import (
	"os"
	"path/filepath"
	"testing"
)

// release1 is an event log written by release 1 (before typed events),
// by its own code: lvsmon run on the fake backend with loopback real
// servers (a rejected and an applied reload, overrides, downs refused
// and timed out, two mass-failure holds, the sorry server, a restart
// in an outage), the demo (simulated downs, a simulated HA pair with a
// stale VIP) and ha.Monitor on a keepalived, VIP and wire scenario,
// appended through release 1's Log. Its lines carry no structured
// fields: all meaning is in Kind and Message.
const release1 = "testdata/release-1.jsonl"

// openRelease1 opens a copy of the release-1 log.
func openRelease1(t *testing.T) *Log {
	t.Helper()
	b, err := os.ReadFile(release1)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	log, buf := logTo(t)
	l, err := Open(dir, 0, log)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	if buf.Len() != 0 {
		t.Errorf("opening the release-1 log logged:\n%s", buf)
	}
	return l
}

func TestRelease1LogOpens(t *testing.T) {
	l := openRelease1(t)
	got := map[string]int{}
	for _, e := range l.Query(Filter{}) {
		got[string(e.Kind)]++
	}
	want := map[string]int{
		"daemon_start": 3, "daemon_stop": 3, "reload": 2, "override": 2, "guard_hold": 2, "guard_release": 2,
		"server_down": 11, "server_up": 11, "sorry_on": 2, "sorry_off": 2, "simulated_down": 5, "simulated_up": 5,
		"role_change": 9, "role_disagreement": 3, "role_agreement": 3,
	}
	for k, n := range want {
		if got[k] != n {
			t.Errorf("%d events of kind %s, want %d", got[k], k, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("kinds %v, want %v", got, want)
	}
	if l.LastSeq() != 65 {
		t.Errorf("last seq %d, want 65", l.LastSeq())
	}
}

// Open fills the structured fields of release-1 lines from their
// messages (Upgrade): the meaning consumers decided from message text
// is in the fields.
func TestRelease1LogUpgraded(t *testing.T) {
	l := openRelease1(t)
	evs := l.Since(0, 0)
	type fields struct{ From, To, Reason, Actor string }
	for _, tc := range []struct {
		seq  uint64
		kind Kind
		want fields
	}{
		{2, Reload, fields{To: Rejected, Reason: `cfg.yaml:13: virtual_services[0].scheduler: unknown scheduler "nosuch" (want one of rr, wrr, lc, wlc, lblc, lblcr, dh, sh, sed, nq, fo, ovf, mh, twos)`}},
		{3, Reload, fields{To: Applied}},
		{4, Override, fields{}},
		{6, ServerDown, fields{To: Down, Reason: "http: connect 127.0.0.1:18004: connection refused"}},
		{7, ServerUp, fields{To: Up}},
		{10, ServerDown, fields{To: Down, Reason: "http: read answer from 127.0.0.1:18001: no answer within 1s"}},
		{14, SorryOn, fields{To: On}},
		{17, SorryOff, fields{To: Off}},
		{25, ServerUp, fields{To: Up}},
		{27, RoleChange, fields{To: "MASTER"}},
		{29, SimulatedDown, fields{To: Down}},
		{51, RoleChange, fields{From: "MASTER", To: "BACKUP"}},
		{52, Disagreement, fields{}},
		{55, RoleChange, fields{To: "BACKUP"}},
		{56, RoleChange, fields{From: "BACKUP", To: "MASTER"}},
		{58, RoleChange, fields{From: "MASTER", To: "BACKUP"}},
		{61, RoleChange, fields{From: "MASTER", To: "STOP"}},
		{64, RoleChange, fields{From: "STOP", To: "BACKUP"}},
	} {
		e := evs[tc.seq-1]
		got := fields{e.From, e.To, e.Reason, e.Actor}
		if e.Seq != tc.seq || e.Kind != tc.kind || got != tc.want {
			t.Errorf("event %d (%s %q): %+v, want %s %+v", e.Seq, e.Kind, e.Message, got, tc.kind, tc.want)
		}
	}
	// Every event whose meaning a consumer needs has it.
	for _, e := range evs {
		switch e.Kind {
		case ServerDown, ServerUp, SorryOn, SorryOff, RoleChange, Reload, SimulatedDown, SimulatedUp:
			if e.To == "" {
				t.Errorf("event %d (%s %q) has no To", e.Seq, e.Kind, e.Message)
			}
		}
	}
	// The file is left as release 1 wrote it.
	b, _ := os.ReadFile(filepath.Join(l.path))
	want, _ := os.ReadFile(release1)
	if string(b) != string(want) {
		t.Error("opening rewrote the release-1 log")
	}
}
