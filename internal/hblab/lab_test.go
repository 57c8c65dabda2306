//go:build lab

// Lab tier (README, Tests): a real heartbeat pair in network namespaces;
// needs root and Debian's heartbeat.

package hblab

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
)

// TestLab brings the pair up, checks what each node sees (host name,
// configuration, cl_status through the wrapper), the election, a graceful
// stop, a crash and the cleanup: no process, namespace or wrapper that
// still works after Down. It fails, and does not skip, when the host
// cannot run it.
func TestLab(t *testing.T) {
	_, hostConfErr := os.Stat("/etc/ha.d/ha.cf")
	ctx, lab := netlab.UpForTest(t, 60*time.Second, Up, func(lab *Lab) {
		for _, n := range Nodes {
			t.Logf("heartbeat log of %s:\n%s", n, netlab.Tail(lab.LogFile(n), 40))
			t.Logf("lab commands on %s:\n%s", n, netlab.Tail(lab.OutFile(n), 20))
		}
	})

	// Each node has its own name and configuration; the host's
	// /etc/ha.d is untouched.
	for _, n := range Nodes {
		if out, err := lab.Command(ctx, n, "uname", "-n").Output(); err != nil || strings.TrimSpace(string(out)) != NodeName(n) {
			t.Errorf("uname -n on %s = %q, %v; want %s", n, out, err, NodeName(n))
		}
		out, err := lab.Command(ctx, n, "cat", "/etc/ha.d/ha.cf").Output()
		if err != nil {
			t.Fatalf("ha.cf inside %s: %v", n, err)
		}
		peer := map[string]string{"a": "b", "b": "a"}[n]
		for _, want := range []string{"ucast eth0 " + lab.Addr(peer).String() + "\n", "node hb-a\n", "node hb-b\n", "deadtime 3\n", "initdead 3\n", "auto_failback on\n", "crm no\n", "logfile " + lab.LogFile(n) + "\n"} {
			if !strings.Contains(string(out), want) {
				t.Errorf("ha.cf inside %s lacks %q", n, want)
			}
		}
		if st, err := os.Stat(lab.ConfDir(n) + "/authkeys"); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("authkeys of %s: %v, %v; want mode 0600", n, st, err)
		}
		if on, err := lab.VIPOn(n); err != nil || on {
			t.Errorf("VIP on %s before start: %v %v", n, on, err)
		}
		// cl_status through the wrapper, heartbeat not running yet.
		hb, rc := clStatus(t, lab, n, "hbstatus")
		t.Logf("%s before start: cl_status hbstatus -> exit %d %q", n, rc, hb)
		if rc != 1 || !strings.Contains(hb, "Heartbeat is stopped on this machine") {
			t.Errorf("cl_status hbstatus on %s before start: exit %d %q", n, rc, hb)
		}
	}
	// The node's mounts are its own: inside, /run is the lab's tmpfs and
	// /etc/ha.d the node's copy; outside, neither shows.
	if out, err := lab.Command(ctx, "a", "cat", "/proc/self/mounts").Output(); err != nil ||
		!strings.Contains(string(out), "hblab-run /run tmpfs") || !strings.Contains(string(out), " /etc/ha.d ") {
		t.Errorf("mounts inside a (%v):\n%s", err, out)
	}
	checkHostMounts(t, lab.dir)
	if _, err := os.Stat("/etc/ha.d/ha.cf"); (err == nil) != (hostConfErr == nil) {
		t.Errorf("the host's /etc/ha.d/ha.cf changed: before %v, now %v", hostConfErr, err)
	}

	// Election: both start together; after InitDead and heartbeat's
	// resource negotiation a holds its group.
	start := time.Now()
	for _, n := range []string{"b", "a"} {
		if err := lab.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("start b, a -> both running %v", time.Since(start).Round(time.Millisecond))
	if err := lab.Start("a"); err == nil {
		t.Error("second Start of a running node succeeded")
	}
	if _, err := lab.WaitVIP(ctx, "a", true); err != nil {
		t.Fatal(err)
	}
	t.Logf("start -> VIP on a %v", time.Since(start).Round(time.Millisecond))
	for _, n := range Nodes {
		w, d, err := lab.WaitSettled(ctx, n)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("start -> rscstatus on %s settled at %q (%v later)", n, w, d.Round(time.Millisecond))
	}
	if on, _ := lab.VIPOn("b"); on {
		t.Error("VIP on b too")
	}
	if out, rc := clStatus(t, lab, "a", "hbstatus"); rc != 0 || !strings.Contains(out, "Heartbeat is running on this machine") {
		t.Errorf("cl_status hbstatus on a: exit %d %q", rc, out)
	}
	pidsA := lab.PIDs("a")
	var names []string
	for _, pid := range pidsA {
		cmdline, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		names = append(names, fmt.Sprintf("%d %q", pid, strings.TrimRight(strings.ReplaceAll(string(cmdline), "\x00", " "), " ")))
	}
	t.Logf("heartbeat processes of a (daemon %d):\n  %s", lab.DaemonPID("a"), strings.Join(names, "\n  "))
	if !slices.Contains(pidsA, lab.DaemonPID("a")) {
		t.Errorf("the daemon %d is not among a's processes %v", lab.DaemonPID("a"), pidsA)
	}
	if len(pidsA) < 2 { // master control process, FIFO reader, read and write children
		t.Errorf("a has %d heartbeat processes, want several: %v", len(pidsA), pidsA)
	}

	// Graceful stop of a: the group goes to b at once.
	procs := track(append(pidsA, lab.HolderPID("a"), lab.HolderPID("b")))
	start = time.Now()
	if err := lab.Stop("a", Graceful); err != nil {
		t.Fatal(err)
	}
	t.Logf("heartbeat -k on a returned after %v", time.Since(start).Round(time.Millisecond))
	if _, err := lab.WaitVIP(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	t.Logf("graceful stop of a -> VIP on b %v", time.Since(start).Round(time.Millisecond))
	if on, _ := lab.VIPOn("a"); on {
		t.Error("VIP still on a after heartbeat -k")
	}
	if left := lab.PIDs("a"); len(left) != 0 || lab.Running("a") {
		t.Errorf("after heartbeat -k: a has processes %v, running %v", left, lab.Running("a"))
	}
	for _, pid := range pidsA {
		if procs.alive(pid) {
			t.Errorf("heartbeat process %d of a outlived heartbeat -k", pid)
		}
	}
	if err := lab.Stop("a", Graceful); err == nil {
		t.Error("Stop of a stopped node succeeded")
	}
	if out, rc := clStatus(t, lab, "a", "hbstatus"); rc != 1 {
		t.Errorf("cl_status hbstatus on stopped a: exit %d %q", rc, out)
	}

	// A crash of b, which now holds the VIP: every process goes at once,
	// nothing is released.
	pidsB := lab.PIDs("b")
	procs.add(pidsB)
	if err := lab.Stop("b", Crash); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pidsB {
		if procs.alive(pid) {
			t.Errorf("heartbeat process %d of b survived the crash", pid)
		}
	}
	if left := lab.PIDs("b"); len(left) != 0 {
		t.Errorf("after the crash b has processes %v", left)
	}
	if on, _ := lab.VIPOn("b"); !on {
		t.Error("VIP gone from b after the crash; want it left behind")
	}
	if !procs.alive(lab.HolderPID("b")) {
		t.Error("the crash killed b's holder")
	}

	// A restart after the crash must cope with the stale pid file.
	if err := lab.Start("b"); err != nil {
		t.Fatal(err)
	}
	procs.add(lab.PIDs("b"))

	nsB := lab.NetNSName("b")
	wrapper := lab.ClStatus("a")
	if err := lab.Down(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
	for pid := range procs {
		if procs.alive(pid) {
			t.Errorf("process %d survived Down", pid)
		}
	}
	if _, err := os.Stat("/run/netns/" + nsB); err == nil {
		t.Errorf("namespace %s left after Down", nsB)
	}
	checkHostMounts(t, lab.dir)
	if out, err := execOut(wrapper, "hbstatus"); err == nil || !strings.Contains(out, "no holder") {
		t.Errorf("the wrapper after Down: %q, %v; want a failure naming the missing holder", out, err)
	}
	if err := lab.Start("a"); err == nil {
		t.Error("Start after Down succeeded")
	}
}

// checkHostMounts fails the test if the test's own mount table shows one
// of the lab's mounts.
func checkHostMounts(t *testing.T, dir string) {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(string(b)) {
		if strings.Contains(line, "hblab-run") || strings.Contains(line, dir) || strings.Contains(line, " /etc/ha.d ") {
			t.Errorf("a lab mount outside the nodes: %s", strings.TrimSpace(line))
		}
	}
}

// clStatus runs the lab's cl_status wrapper for node and returns its
// combined output and exit status.
func clStatus(t *testing.T, lab *Lab, node string, args ...string) (string, int) {
	t.Helper()
	out, err := execOut(lab.ClStatus(node), args...)
	rc, err := exitStatus(err)
	if err != nil {
		t.Fatalf("%s %v: %v", lab.ClStatus(node), args, err)
	}
	return out, rc
}

func execOut(name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	return string(out), err
}

// procSet remembers processes by pid and start time, so a pid that was
// reused after the process died does not count as the same process.
type procSet map[int]string

func track(pids []int) procSet {
	s := procSet{}
	s.add(pids)
	return s
}

func (s procSet) add(pids []int) {
	for _, pid := range pids {
		if st := startTime(pid); st != "" {
			s[pid] = st
		}
	}
}

func (s procSet) alive(pid int) bool {
	st, ok := s[pid]
	return ok && netlab.Alive(pid) && startTime(pid) == st
}

// startTime is field 22 of /proc/PID/stat, "" when pid does not exist.
func startTime(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ""
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ""
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 20 {
		return ""
	}
	return f[19] // fields start at 3 (state)
}
