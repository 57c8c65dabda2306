package app

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
)

// TestSelfCheckHandsOver runs the daemon with a self check on a local
// TCP port and a keepalived track_file: closing the port writes the
// track file's weight, a hand-over event and a problem; reopening it
// writes 0 and a hand-back event.
func TestSelfCheckHandsOver(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	dir := t.TempDir()
	track, state := filepath.Join(dir, "track"), filepath.Join(dir, "state")
	cfg, err := config.Parse("t.yaml", fmt.Appendf(nil, `ipvs: {backend: fake}
listen: 127.0.0.1:0
data_dir: %s
ha:
  self_checks:
    - {name: sshd, type: tcp, port: %d, interval: 100ms, timeout: 500ms, fall: 2, rise: 2}
    - {type: collector}
    - {type: reconciler}
  handover:
    state_file: %s
    keepalived: {track_file: %s, weight: -60}
`, dir, port, state, track))
	if err != nil {
		t.Fatal(err)
	}
	a, _, _ := newTestApp(t, cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	waitFile := func(path, want string) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			b, _ := os.ReadFile(path)
			if string(b) == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s holds %q, want %q", path, b, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFile(track, "0\n")
	waitFile(state, "ok\n")
	ln.Close()
	waitFile(track, "-60\n")
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, _ := os.ReadFile(state)
		if strings.HasPrefix(string(st), "handover sshd: tcp: connect 127.0.0.1:") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("state file %q", st)
		}
	}
	ps := a.problems()
	if len(ps) == 0 || ps[0].Kind != "handover" || !strings.Contains(ps[0].Message, "sshd") {
		t.Errorf("problems %+v", ps)
	}
	ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	waitFile(track, "0\n")
	// The event follows the action.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		var kinds []events.Kind
		for _, e := range a.ev.Query(events.Filter{}) {
			if e.Actor == "self-check" {
				kinds = append(kinds, e.Kind)
			}
		}
		if fmt.Sprint(kinds) == "[ha_handover ha_handback]" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("events %v", kinds)
		}
	}
}
