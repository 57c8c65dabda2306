//go:build lab

// Lab tier (README, Tests): a real corosync + pacemaker pair in network
// namespaces; needs root and Debian's pacemaker.

package pcmklab

import (
	"encoding/xml"
	"errors"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
)

// TestLab brings the cluster up, checks that the VIP lands on pc-a, a
// graceful stop (the VIP moves to pc-b), a crash (the VIP stays behind)
// and that Down leaves no process, namespace or mount behind. It fails,
// and does not skip, when the host cannot run it.
func TestLab(t *testing.T) {
	mountsBefore := labMounts(t)
	ctx, lab := netlab.UpForTest(t, 120*time.Second, Up, func(lab *Lab) {
		for _, n := range Nodes {
			t.Logf("out of %s:\n%s", n, netlab.Tail(lab.OutFile(n), 20))
			t.Logf("corosync log of %s:\n%s", n, netlab.Tail(lab.CorosyncLog(n), 20))
			t.Logf("pacemaker log of %s:\n%s", n, netlab.Tail(lab.LogFile(n), 40))
		}
	})

	// The holders: own host name, own /run, nothing mounted outside.
	for _, n := range Nodes {
		out, err := lab.Exec(ctx, n, "uname", "-n")
		if err != nil || strings.TrimSpace(string(out)) != NodeName(n) {
			t.Errorf("uname -n on %s: %q, %v; want %s", n, out, err, NodeName(n))
		}
		if on, err := lab.VIPOn(n); err != nil || on {
			t.Errorf("VIP on %s before start: %v %v", n, on, err)
		}
		if ps := lab.Procs(n); len(ps) != 0 {
			t.Errorf("cluster processes on %s before start: %v", n, ps)
		}
	}
	if got := labMounts(t); got != mountsBefore {
		t.Errorf("the lab's mounts show in the caller's namespace: %q", got)
	}
	if b, err := os.ReadFile(lab.Dir("a") + "/etc-corosync/corosync.conf"); err != nil ||
		!strings.Contains(string(b), "ring0_addr: 198.51.100.12") || !strings.Contains(string(b), "two_node: 1") {
		t.Errorf("corosync.conf: %v\n%s", err, b)
	}

	// Nothing runs: crm_mon cannot reach pacemakerd.
	out, rc := crmMon(t, lab, "a")
	if rc != 102 || !strings.Contains(out, "Could not connect to launcher") {
		t.Errorf("crm_mon before start: rc %d\n%s", rc, out)
	}

	t0 := time.Now()
	for _, n := range Nodes {
		if err := lab.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	if err := lab.Start(ctx, "a"); err == nil {
		t.Error("second Start of a running node succeeded")
	}
	if c, p := lab.Running("a"); !c || !p {
		t.Errorf("Running(a) = %v, %v after Start", c, p)
	}
	d, err := lab.WaitVIP(ctx, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start -> VIP on a %v (started %v before)", time.Since(t0).Round(time.Millisecond), (time.Since(t0) - d).Round(time.Millisecond))
	if on, _ := lab.VIPOn("b"); on {
		t.Error("VIP on b too")
	}
	// crm_mon through the wrapper sees both nodes and the VIP on pc-a.
	var st struct {
		Nodes []struct {
			Name   string `xml:"name,attr"`
			Online string `xml:"online,attr"`
		} `xml:"nodes>node"`
		Resources []struct {
			ID    string `xml:"id,attr"`
			Nodes []struct {
				Name string `xml:"name,attr"`
			} `xml:"node"`
		} `xml:"resources>resource"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		out, rc = crmMon(t, lab, "b")
		st.Nodes, st.Resources = nil, nil
		err := xml.Unmarshal([]byte(out), &st)
		if err == nil && rc == 0 && len(st.Nodes) == 2 && st.Nodes[0].Online == "true" && st.Nodes[1].Online == "true" &&
			len(st.Resources) == 1 && st.Resources[0].ID == Resource && len(st.Resources[0].Nodes) == 1 && st.Resources[0].Nodes[0].Name == NodeName("a") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crm_mon on b never showed both nodes online and the VIP on pc-a: rc %d, %v\n%s", rc, err, out)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// Graceful stop of a: pacemaker moves the VIP before it exits.
	t1 := time.Now()
	if err := lab.Stop(ctx, "a", Graceful); err != nil {
		t.Fatal(err)
	}
	t.Logf("graceful stop of a took %v", time.Since(t1).Round(time.Millisecond))
	if c, p := lab.Running("a"); c || p {
		t.Errorf("Running(a) = %v, %v after a graceful stop", c, p)
	}
	if ps := lab.Procs("a"); len(ps) != 0 {
		t.Errorf("left on a after a graceful stop: %v", ps)
	}
	if on, _ := lab.VIPOn("a"); on {
		t.Error("VIP still on a after a graceful stop")
	}
	if _, err := lab.WaitVIP(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	t.Logf("graceful stop of a -> VIP on b %v", time.Since(t1).Round(time.Millisecond))
	if err := lab.Stop(ctx, "a", Graceful); err == nil {
		t.Error("Stop of a stopped node succeeded")
	}
	if out, rc := crmMon(t, lab, "a"); rc != 102 {
		t.Errorf("crm_mon on the stopped a: rc %d\n%s", rc, out)
	}

	// Crash of b: everything of its stack dies at once, the VIP stays.
	pids := lab.Procs("b")
	for _, want := range []string{"corosync/", "pacemakerd/", "pacemaker-based/", "pacemaker-fence/", "pacemaker-execd/",
		"pacemaker-attrd/", "pacemaker-sched/", "pacemaker-contr/"} {
		if !slices.ContainsFunc(pids, func(p string) bool { return strings.HasPrefix(p, want) }) {
			t.Errorf("no %s among the cluster processes of b: %v", strings.TrimSuffix(want, "/"), pids)
		}
	}
	if err := lab.Stop(ctx, "b", Crash); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		pid, _ := strconv.Atoi(p[strings.IndexByte(p, '/')+1:])
		if netlab.Alive(pid) {
			t.Errorf("%s alive after the crash", p)
		}
	}
	if ps := lab.Procs("b"); len(ps) != 0 {
		t.Errorf("left on b after the crash: %v", ps)
	}
	if on, _ := lab.VIPOn("b"); !on {
		t.Error("VIP gone from b after the crash; want it left behind")
	}

	// Down: no process in the namespaces, no namespace, no mount, and
	// the wrapper refuses to run.
	holders := []int{lab.HolderPID("a"), lab.HolderPID("b")}
	nsA := lab.NetNSName("a")
	if err := lab.Down(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
	for _, pid := range holders {
		if netlab.Alive(pid) {
			t.Errorf("holder %d alive after Down", pid)
		}
	}
	if _, err := os.Stat("/run/netns/" + nsA); err == nil {
		t.Errorf("namespace %s left after Down", nsA)
	}
	if got := labMounts(t); got != mountsBefore {
		t.Errorf("mounts after Down: %q", got)
	}
	if out, err := exec.Command(lab.CrmMon("a"), "-1").CombinedOutput(); err == nil || !strings.Contains(string(out), "pcmklab") {
		t.Errorf("crm_mon wrapper after Down: %v\n%s", err, out)
	}
	if err := lab.Start(ctx, "a"); err == nil {
		t.Error("Start after Down succeeded")
	}
	if _, err := lab.Exec(ctx, "a", "true"); err == nil {
		t.Error("Exec after Down succeeded")
	}
}

// crmMon runs crm_mon -1 --output-as=xml on node through the wrapper.
func crmMon(t *testing.T, lab *Lab, node string) (string, int) {
	t.Helper()
	out, err := exec.Command(lab.CrmMon(node), "-1", "--output-as=xml").CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("crm_mon on %s: %v", node, err)
	}
	return string(out), 0
}

// labMounts returns the lines of the caller's mount table that name the
// lab's tmpfs mounts or the directories it mounts over (none, unless they
// leaked).
func labMounts(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	var m []string
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.Fields(l)
		if strings.Contains(l, "pcmklab") || len(f) > 1 && slices.ContainsFunc(mounts, func(m struct{ src, dst string }) bool { return f[1] == m.dst }) {
			m = append(m, l)
		}
	}
	return strings.Join(m, "\n")
}
