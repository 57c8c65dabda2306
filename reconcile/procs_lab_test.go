//go:build lab

// Lab tier (README, Tests): Debian's keepalived binary and ldirectord
// script as other IPVS writers, found by the real /proc scan. Needs root (ptrace of a child is
// not, but network namespaces are).
//
// This kernel has no IPVS, and keepalived exits at once when it cannot
// initialise it; on a director with IPVS it would write the table. So
// each keepalived is started traced and stays stopped at its execve: a
// real keepalived process, with its command line, namespaces and config,
// that never runs an instruction of its own and writes nothing.

package reconcile

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"
)

// stopped is a process held stopped at its last execve under ptrace.
type stopped struct{ pid int }

// startStopped starts argv traced and lets it run through execs-1
// execve calls (ip netns exec's own), so that it stops at the last.
// The caller's goroutine must stay locked to its thread until kill: a
// tracer thread that exits lets its tracees run.
func startStopped(t *testing.T, execs int, want string, argv ...string) *stopped {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Ptrace: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &stopped{pid: cmd.Process.Pid}
	for i := range execs {
		var ws syscall.WaitStatus
		if _, err := syscall.Wait4(p.pid, &ws, 0, nil); err != nil {
			t.Fatal(err)
		}
		if !ws.Stopped() || ws.StopSignal() != syscall.SIGTRAP {
			t.Fatalf("%q: exec %d: wait status %v, not stopped at an execve", argv, i+1, ws)
		}
		if i < execs-1 {
			if err := syscall.PtraceCont(p.pid, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p.pid)); !strings.Contains(string(b), want) {
		p.kill()
		t.Fatalf("%q stopped at %q, not at %s", argv, b, want)
	}
	return p
}

func (p *stopped) kill() {
	if p.pid == 0 {
		return
	}
	syscall.Kill(p.pid, syscall.SIGKILL)
	var ws syscall.WaitStatus
	syscall.Wait4(p.pid, &ws, 0, nil)
	p.pid = 0
}

func TestRealKeepalivedIsFound(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (a network namespace)")
	}
	ka, err := exec.LookPath("keepalived")
	if err != nil {
		t.Fatalf("keepalived is not installed (scripts/deps.sh installs it): %v", err)
	}
	runtime.LockOSThread() // never unlocked: the thread ends with the test
	start := time.Now()

	dir := t.TempDir()
	vsConf := filepath.Join(dir, "vs.conf")
	vrrpConf := filepath.Join(dir, "vrrp.conf")
	os.WriteFile(vsConf, []byte("include "+filepath.Join(dir, "conf.d", "*.conf")+"\nglobal_defs { router_id lab }\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "conf.d"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf.d", "web.conf"), []byte(`virtual_server 10.0.0.100 80 {
    lb_algo wrr
    lb_kind DR
    protocol TCP
    real_server 10.0.1.13 80 { weight 3 }
}
`), 0o644)
	if err := os.WriteFile(vrrpConf, []byte(kaVRRPOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	pidFiles := func(name string) []string {
		var out []string
		for _, f := range []string{"-p", "-c", "-r", "-b"} {
			out = append(out, f, filepath.Join(dir, name+f+".pid"))
		}
		return out
	}
	ns := fmt.Sprintf("lvsmonwr%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", ns).Run()

	writer := startStopped(t, 1, "keepalived", append([]string{ka, "--dont-fork", "-f", vsConf}, pidFiles("writer")...)...)
	defer writer.kill()
	vrrpFlag := startStopped(t, 1, "keepalived", append([]string{ka, "--dont-fork", "-P", "-f", vsConf}, pidFiles("vrrpflag")...)...)
	defer vrrpFlag.kill()
	vrrpConfig := startStopped(t, 1, "keepalived", append([]string{ka, "--dont-fork", "--use-file=" + vrrpConf}, pidFiles("vrrpconf")...)...)
	defer vrrpConfig.kill()
	ldConf := filepath.Join(dir, "ldirectord.cf")
	if err := os.WriteFile(ldConf, []byte("checktimeout=3\nvirtual=10.0.0.102:443\n\treal=10.0.1.30:443 gate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ld := startStopped(t, 1, "/usr/sbin/ldirectord", "/usr/sbin/ldirectord", ldConf, "start")
	defer ld.kill()
	inNS := startStopped(t, 2, "keepalived", append([]string{"ip", "netns", "exec", ns, ka, "--dont-fork", "-f", vsConf}, pidFiles("ns")...)...)
	defer inNS.kill()

	// Other tests may run keepalived at the same time: only this test's
	// configs count.
	ours := func() []Process {
		ps, err := ScanProcesses("/proc")
		if err != nil {
			t.Fatal(err)
		}
		return slices.DeleteFunc(ps, func(p Process) bool { return !strings.HasPrefix(p.Config, dir) })
	}
	got := ours()
	i := slices.IndexFunc(got, func(p Process) bool { return p.Name == "ldirectord" })
	if len(got) != 2 || i < 0 || got[i].PID != ld.pid || got[i].Config != ldConf || got[i].All ||
		!slices.Equal(got[i].Services, []ServiceRef{{Addr: apiKey.Addr, Port: 443}}) {
		t.Fatalf("ldirectord (pid %d) not found right: %+v", ld.pid, got)
	}
	ld.kill()
	got = ours()
	if len(got) != 1 || got[0].PID != writer.pid || got[0].Config != vsConf || got[0].All ||
		!slices.Equal(got[0].Services, []ServiceRef{{Addr: webKey.Addr, Port: 80}}) || !strings.Contains(got[0].Why, "1 included files") {
		t.Fatalf("found %+v; want only pid %d (the -P one is %d, the VRRP-only config %d, the other namespace %d)",
			got, writer.pid, vrrpFlag.pid, vrrpConfig.pid, inNS.pid)
	}

	// The reconciler with the real scan: web is keepalived's, api is not.
	g := newOtherRig(t, "when_gone")
	g.r.procs = func() ([]Process, error) { return ours(), nil }
	g.round(0)
	if w := g.b.written(webKey); len(w) != 0 {
		t.Errorf("web written while keepalived has it: %q", w)
	}
	if w := g.b.written(apiKey); len(w) != 3 {
		t.Errorf("api not written: %q", w)
	}
	writer.kill()
	g.round(scanEvery)
	if w := g.b.written(webKey); len(w) != 3 {
		t.Errorf("web not taken over once keepalived exited: %q", w)
	}
	if k := g.kinds(); !slices.Equal(k, []string{"other_writer ", "other_writer_gone "}) {
		t.Errorf("events %q", k)
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %s, more than 20s", d)
	}
}
