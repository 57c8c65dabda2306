//go:build lab

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/vrrplab"
	"github.com/lvsmon/lvsmon/web"
)

// TestSelfCheckVRRPScript runs the lvsmon binary with a self check on a
// local TCP port next to a real keepalived pair whose master tracks
// `lvsmon self-check` as a vrrp_script (weight -100): closing the port
// moves the VIP to the backup, with a hand-over event and problem;
// reopening it brings the VIP back (keepalived preempts).
func TestSelfCheckVRRPScript(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, keepalived)")
	}
	ctx, lab := netlab.UpForTest(t, 3*time.Minute, vrrplab.Up, func(lab *vrrplab.Lab) {
		t.Logf("keepalived log of a:\n%s", netlab.Tail(lab.LogFile("a"), 40))
	})
	// keepalived runs no script under a directory others may write to
	// (/tmp): the binary and the state file go to a root-only one.
	safe, err := os.MkdirTemp("/run", "lvsmon-selfcheck-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(safe) })
	if err := os.Chmod(safe, 0o755); err != nil {
		t.Fatal(err)
	}
	// The script's binary is built without the race detector, whatever
	// the test's build: a race binary starts too slowly for keepalived's
	// script timeout (the interval, 1s) on a loaded host.
	bin := filepath.Join(safe, "lvsmon")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	state := filepath.Join(safe, "self-check")
	if err := os.WriteFile(state, []byte("ok\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var slowest, sum time.Duration
	const runs = 20
	for range runs {
		t0 := time.Now()
		if out, err := exec.Command(bin, "self-check", "--state-file", state).CombinedOutput(); err != nil {
			t.Fatalf("self-check: %v: %s", err, out)
		}
		d := time.Since(t0)
		sum += d
		slowest = max(slowest, d)
	}
	t.Logf("MEASURED lvsmon self-check: mean %v, slowest %v over %d runs", (sum / runs).Round(100*time.Microsecond), slowest.Round(100*time.Microsecond), runs)
	os.Remove(state)
	if err := lab.Script("a", bin+" self-check --quiet --state-file "+state, -100); err != nil {
		t.Fatal(err)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	api := startClusterDirector(t, lab.NetNS("a"), lab.VIP(), fmt.Sprintf(`  keepalived: {pid_file: %s, dump_dir: %s, notify_fifo: %s}
  self_checks:
    - {name: sshd, type: tcp, address: 127.0.0.1, port: %d, interval: 500ms, timeout: 300ms, fall: 2, rise: 3}
    - {type: collector}
  handover:
    state_file: %s
`, lab.PIDFile("a"), lab.DumpDir("a"), lab.FIFO("a"), port, state), vrrplab.Instance)
	defer api.d.stop(t)

	for _, n := range []string{"b", "a"} {
		if err := lab.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(node string, want bool, within time.Duration) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		if _, err := lab.WaitVIP(wctx, node, want); err != nil {
			t.Fatalf("%v\nlvsmon log:\n%s", err, api.d.logText())
		}
	}
	wait("a", true, 20*time.Second)
	api.wait("a is MASTER", time.Now(), func(r *web.Role, in *web.RoleInstance) bool { return in.State == "MASTER" })

	t0 := time.Now()
	ln.Close()
	wait("b", true, 15*time.Second)
	wait("a", false, 5*time.Second)
	handover := time.Since(t0)
	api.wait("a is BACKUP", t0, func(r *web.Role, in *web.RoleInstance) bool { return in.State == "BACKUP" })
	var st web.Status
	getJSON(t, api.base+"/api/v1/status", &st)
	found := false
	for _, p := range st.Problems {
		found = found || (p.Kind == "handover" && strings.Contains(p.Message, "sshd: tcp: connect 127.0.0.1:"))
	}
	if !found {
		t.Errorf("no handover problem in %+v", st.Problems)
	}

	t1 := time.Now()
	ln, err = net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	wait("a", true, 20*time.Second)
	wait("b", false, 5*time.Second)
	back := time.Since(t1)
	t.Logf("MEASURED vrrp_script `lvsmon self-check` (interval 1, weight -100; self check interval 500ms fall 2 rise 3): port closed → VIP on b %v; port open → VIP back on a %v",
		handover.Round(time.Millisecond), back.Round(time.Millisecond))

	var ev struct {
		Events []struct{ Kind, Reason string } `json:"events"`
	}
	getJSON(t, api.base+"/api/v1/events?limit=100", &ev)
	var kinds []string
	for _, e := range ev.Events {
		if strings.HasPrefix(e.Kind, "ha_hand") {
			kinds = append(kinds, e.Kind)
		}
	}
	if got := strings.Join(kinds, " "); got != "ha_handover ha_handback" && got != "ha_handback ha_handover" {
		t.Errorf("hand-over events %q", got)
	}
}
