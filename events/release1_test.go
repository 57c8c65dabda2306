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
