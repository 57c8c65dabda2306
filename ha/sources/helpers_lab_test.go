//go:build lab

// Lab tier (README, Tests): helpers of the tests that need root, network
// namespaces and the real HA daemons.

package sources

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// newNetNS creates a network namespace with a random name and deletes it
// at cleanup. It returns the name and the path.
func newNetNS(t *testing.T, tag string) (string, string) {
	t.Helper()
	requireRoot(t)
	name := fmt.Sprintf("lvsmon-%s-%06x", tag, rand.Uint32()&0xffffff)
	ipCmd(t, "netns", "add", name)
	t.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return name, "/run/netns/" + name
}

// ipCmd runs ip(8) and fails the test on error.
func ipCmd(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// requireRoot fails (not skips) the test when not root: these tests are
// part of the suite and must not pass silently on a host that cannot run
// them.
func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, AF_PACKET, signals to keepalived)")
	}
}

// roleWatch is an ha.Monitor fed by some of a test's sources, as in the
// daemon: the role lvsmon would show for one node.
type roleWatch struct {
	node string
	m    *ha.Monitor
}

func newRoleWatch(node string, vips []netip.Addr, sources ...string) *roleWatch {
	return &roleWatch{node: node, m: ha.NewMonitor(ha.MonitorConfig{VIPs: vips, Sources: sources, Grace: 3 * time.Second})}
}

// feed wraps a source's Run so that its reports reach the Monitor too.
func (w *roleWatch) feed(run func(context.Context, func(ha.Report)) error) func(context.Context, func(ha.Report)) error {
	return func(ctx context.Context, report func(ha.Report)) error {
		return run(ctx, func(r ha.Report) { w.m.Update(r); report(r) })
	}
}

// wait polls (ticking the Monitor) until its one instance is in state st
// with exactly the disagreements given, and fails the test after 30s.
func (w *roleWatch) wait(t *testing.T, st ha.State, disagreements ...string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		w.m.Tick(time.Now())
		got := w.m.Status()
		if len(got.Instances) == 1 && got.Instances[0].State == st &&
			strings.Join(got.Instances[0].Disagreements, ",") == strings.Join(disagreements, ",") {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's role never became %v %v: %+v", w.node, st, disagreements, got)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
