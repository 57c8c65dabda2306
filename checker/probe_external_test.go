package checker

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/lvs"
)

// script writes an executable shell script into dir.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// processGone waits (a correctness bound, not a speed test) until pid
// has exited; a zombie counts, it runs no more. It reports whether it
// did.
func processGone(pid int) bool {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		// pid (comm) S ...: the state follows the last ')'.
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && len(stat) > i+2 && stat[i+2] == 'Z' {
			return true
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// readPid reads a pid a script wrote, waiting for it to appear.
func readPid(t *testing.T, path string) int {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		b, err := os.ReadFile(path)
		if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && perr == nil {
			return pid
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("%s was never written", path)
	return 0
}

func TestProbeExternal(t *testing.T) {
	dir := t.TempDir()
	// checkargs wants ldirectord's four arguments, after the check's own.
	checkargs := script(t, dir, "checkargs", `
want="$1"; shift
[ "$*" = "$want" ] && exit 0
echo "got: $*" >&2
exit 3
`)
	tests := []struct {
		name    string
		command string
		args    string // YAML list
		target  Target
		want    string
	}{
		{"healthy, four arguments", checkargs, "['-v 10.0.0.100 80 10.0.1.13 80', '-v']", targetAt(t, "127.0.0.1:8080"), ""},
		{"fwmark service", checkargs, "['7 0 10.0.1.13 80']", func() Target {
			tg := targetAt(t, "127.0.0.1:8080")
			tg.Service = lvs.MarkKey(7, lvs.IPv4)
			return tg
		}(), ""},
		{"IPv6", checkargs, "['2001:db8::100 443 2001:db8::13 443']", Target{
			Service: lvs.AddrKey(lvs.TCP, netip.MustParseAddr("2001:db8::100"), 443),
			Addr:    netip.MustParseAddr("::1"), Port: 8443,
			Server: lvs.DestKey{Addr: netip.MustParseAddr("2001:db8::13"), Port: 443},
		}, ""},
		{"wrong arguments", checkargs, "['x']", targetAt(t, "127.0.0.1:8080"), `external: ` + checkargs + ` exited 3: "got: 10.0.0.100 80 10.0.1.13 80"`},
		{"exit 1 with a message", script(t, dir, "sad", "echo 'backend sad: db down'\necho second line\nexit 1\n"), "[]", targetAt(t, "127.0.0.1:8080"), `external: ` + dir + `/sad exited 1: "backend sad: db down"`},
		{"long output is cut", script(t, dir, "chatty", "head -c 100000 /dev/zero | tr '\\0' x; exit 2\n"), "[]", targetAt(t, "127.0.0.1:8080"), `exited 2: "` + strings.Repeat("x", maxExternalOutput) + `"`},
		{"killed by a signal", script(t, dir, "suicide", "kill -TERM $$\n"), "[]", targetAt(t, "127.0.0.1:8080"), "killed by signal terminated"},
		{"not there", filepath.Join(dir, "missing"), "[]", targetAt(t, "127.0.0.1:8080"), "external: fork/exec " + dir + "/missing: no such file or directory"},
		{"found in PATH", "true", "[]", targetAt(t, "127.0.0.1:8080"), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "tcp", "{type: external, timeout: 5s, command: '"+tc.command+"', args: "+tc.args+"}")
			wantErr(t, runBounded(t, probeExternal, tc.target, c), tc.want)
		})
	}
}

// TestProbeExternalKillsTheProcessGroup: a command that hangs is killed
// at the timeout with everything it started, and a command that exits
// leaves nothing running behind it either.
func TestProbeExternalKillsTheProcessGroup(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		id, name, body, check, want string
	}{
		// The child holds the output pipe open too: the probe must not
		// wait for it.
		{"hangs", "hangs with a child", "sleep 1000 &\necho $! > " + dir + "/hangs.pid\necho working\nwait\n", "timeout: 300ms", `external: ` + dir + `/hangs killed with its process group: no answer within 300ms: "working"`},
		{"subshell", "a subshell's child", "(sleep 1000; echo never) &\n(sleep 1000 & echo $! > " + dir + "/subshell.pid; wait)\n", "timeout: 300ms", "killed with its process group: no answer within 300ms"},
		{"leaves", "exits, leaving a child", "sleep 1000 &\necho $! > " + dir + "/leaves.pid\nexit 0\n", "timeout: 5s", ""},
		{"fails", "fails, leaving a child", "sleep 1000 &\necho $! > " + dir + "/fails.pid\nexit 1\n", "timeout: 5s", "exited 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := script(t, dir, tc.id, tc.body)
			c := parseCheck(t, "tcp", "{type: external, command: '"+cmd+"', "+tc.check+"}")
			wantErr(t, runBounded(t, probeExternal, targetAt(t, "127.0.0.1:8080"), c), tc.want)
			pid := readPid(t, filepath.Join(dir, tc.id+".pid"))
			if !processGone(pid) {
				unix.Kill(pid, unix.SIGKILL)
				t.Fatalf("the command's child %d is still running", pid)
			}
		})
	}
}
