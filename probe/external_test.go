package probe

import (
	"bytes"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/config"
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

// TestProbeExternalEnvironment: the command runs with PATH, LANG and
// what its check names, never with lvsmon's own environment, where an
// SMTP password may sit (password_env).
func TestProbeExternalEnvironment(t *testing.T) {
	dir := t.TempDir()
	t.Setenv("LVSMON_SMTP_PASSWORD", "hunter2")
	t.Setenv("LVSMON_PASSED", "yes")
	t.Setenv("LANG", "de_DE.UTF-8")
	t.Setenv("HOME", "/root/of/lvsmon")
	out := filepath.Join(dir, "env.out")
	cmd := script(t, dir, "dumpenv", "env > \"$OUT\"\n")
	c := parseCheck(t, "tcp", "{type: external, timeout: 5s, command: '"+cmd+"', env: {OUT: '"+out+"', DB_ROLE: replica}, pass_env: [LVSMON_PASSED, NOT_SET_ANYWHERE]}")
	wantErr(t, runBounded(t, probeExternal, targetAt(t, "127.0.0.1:8080"), c), "")
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		k, v, _ := strings.Cut(l, "=")
		env[k] = v
	}
	for k, want := range map[string]string{"DB_ROLE": "replica", "LVSMON_PASSED": "yes", "LANG": "de_DE.UTF-8", "PATH": DefaultExternalPath, "OUT": out} {
		if env[k] != want {
			t.Errorf("the command saw %s=%q, want %q", k, env[k], want)
		}
	}
	for _, k := range []string{"LVSMON_SMTP_PASSWORD", "HOME", "NOT_SET_ANYWHERE"} {
		if v, ok := env[k]; ok {
			t.Errorf("the command saw lvsmon's %s=%q", k, v)
		}
	}
}

// A bare command name is looked up in the PATH the command runs with.
func TestProbeExternalPath(t *testing.T) {
	dir := t.TempDir()
	script(t, dir, "only-here", "exit 0\n")
	c := parseCheck(t, "tcp", "{type: external, timeout: 5s, command: only-here, env: {PATH: '"+dir+":/usr/bin:/bin'}}")
	wantErr(t, runBounded(t, probeExternal, targetAt(t, "127.0.0.1:8080"), c), "")
	c = parseCheck(t, "tcp", "{type: external, timeout: 5s, command: only-here}")
	wantErr(t, runBounded(t, probeExternal, targetAt(t, "127.0.0.1:8080"), c), "external: only-here: not found in the check's PATH "+DefaultExternalPath)
}

func TestExternalEnv(t *testing.T) {
	daemon := map[string]string{"LANG": "fr_FR.UTF-8", "LC_ALL": "C", "SECRET": "s", "TZ": "Europe/Paris", "PATH": "/home/op/bin:/usr/bin"}
	getenv := func(k string) (string, bool) { v, ok := daemon[k]; return v, ok }
	none := func(string) (string, bool) { return "", false }
	tests := []struct {
		name   string
		check  config.Check
		getenv func(string) (string, bool)
		want   []string
	}{
		{"nothing configured, nothing in lvsmon's environment", config.Check{}, none,
			[]string{"LANG=C.UTF-8", "PATH=" + DefaultExternalPath}},
		{"lvsmon's locale, not its PATH or secrets", config.Check{}, getenv,
			[]string{"LANG=fr_FR.UTF-8", "LC_ALL=C", "PATH=" + DefaultExternalPath}},
		{"env sets, pass_env copies, env wins", config.Check{Env: map[string]string{"PATH": "/opt/bin", "A": "1", "LANG": "C"}, PassEnv: []string{"TZ", "MISSING"}}, getenv,
			[]string{"A=1", "LANG=C", "LC_ALL=C", "PATH=/opt/bin", "TZ=Europe/Paris"}},
		{"lvsmon's PATH when asked for", config.Check{PassEnv: []string{"PATH"}}, getenv,
			[]string{"LANG=fr_FR.UTF-8", "LC_ALL=C", "PATH=/home/op/bin:/usr/bin"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := externalEnv(&tc.check, tc.getenv); !slices.Equal(got, tc.want) {
				t.Errorf("env = %q, want %q", got, tc.want)
			}
		})
	}
}
