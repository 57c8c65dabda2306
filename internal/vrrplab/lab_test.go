//go:build lab

// Lab tier (README, Tests): a real keepalived pair in network namespaces;
// needs root and Debian's keepalived.

package vrrplab

import (
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
)

// TestLab brings the pair up, checks the election, a crash (stale VIP on
// the dead master, takeover by the peer) and the cleanup. It fails, and
// does not skip, when the host cannot run it.
func TestLab(t *testing.T) {
	ctx, lab := netlab.UpForTest(t, 60*time.Second, Up, func(lab *Lab) {
		for _, n := range Nodes {
			t.Logf("keepalived log of %s:\n%s", n, netlab.Tail(lab.LogFile(n), 40))
		}
	})

	for _, n := range Nodes {
		if out, err := exec.Command("keepalived", "-t", "-f", lab.Conf(n)).CombinedOutput(); err != nil {
			t.Errorf("keepalived -t -f %s: %v\n%s", lab.Conf(n), err, out)
		}
		if _, err := os.Stat(lab.NetNS(n)); err != nil {
			t.Errorf("namespace of %s: %v", n, err)
		}
		if on, err := lab.VIPOn(n); err != nil || on {
			t.Errorf("VIP on %s before start: %v %v", n, on, err)
		}
	}
	conf, _ := os.ReadFile(lab.Conf("a"))
	for _, want := range []string{"instance node_a", "vrrp_notify_fifo " + lab.FIFO("a"), "priority 150", "virtual_router_id 51", "label eth0:vip", "enable_script_security"} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("config of a lacks %q", want)
		}
	}

	if err := lab.Start("b"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Start("a"); err != nil {
		t.Fatal(err)
	}
	if err := lab.Start("a"); err == nil {
		t.Error("second Start of a running node succeeded")
	}
	d, err := lab.WaitVIP(ctx, "a", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("start -> VIP on a: %v", d)
	if on, _ := lab.VIPOn("b"); on {
		t.Error("VIP on b too")
	}
	if _, err := os.Stat(lab.FIFO("a")); err != nil {
		t.Errorf("keepalived made no FIFO: %v", err)
	}

	// A crash: both processes of a die at once; the VIP stays behind.
	parent := lab.PID("a")
	child := netlab.PIDOf(lab.VRRPPIDFile("a"))
	start := time.Now()
	if err := lab.Stop("a", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if netlab.Alive(parent) || netlab.Alive(child) {
		t.Errorf("after SIGKILL: parent %d alive %v, child %d alive %v", parent, netlab.Alive(parent), child, netlab.Alive(child))
	}
	if lab.Running("a") || lab.PID("a") != 0 {
		t.Error("a still counted as running")
	}
	if on, _ := lab.VIPOn("a"); !on {
		t.Error("VIP gone from a after SIGKILL; want it left behind")
	}
	if _, err := lab.WaitVIP(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	t.Logf("SIGKILL a -> VIP on b: %v", time.Since(start))
	if on, _ := lab.VIPOn("a"); !on {
		t.Error("stale VIP on a is gone")
	}
	if err := lab.Stop("a", syscall.SIGTERM); err == nil {
		t.Error("Stop of a stopped node succeeded")
	}

	nsB := lab.NetNSName("b")
	if err := lab.Down(); err != nil {
		t.Fatal(err)
	}
	if err := lab.Down(); err != nil {
		t.Errorf("second Down: %v", err)
	}
	if _, err := os.Stat("/run/netns/" + nsB); err == nil {
		t.Errorf("namespace %s left after Down", nsB)
	}
	if err := lab.Start("a"); err == nil {
		t.Error("Start after Down succeeded")
	}
}
