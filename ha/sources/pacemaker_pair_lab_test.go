//go:build lab

// Lab tier (README, Tests): a real corosync + pacemaker pair in network
// namespaces (internal/pcmklab); needs root and Debian's pacemaker.

package sources

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/pcmklab"
)

// TestPacemakerPair runs the pacemaker source (crm_mon through the lab's
// wrapper) on both nodes of a real corosync + pacemaker cluster, and the
// VIP source on node a, and follows a through the cluster's start, a
// graceful stop, the failback after a restart, and a crash of its
// corosync. a's sources also feed an ha.Monitor, whose role must follow.
//
// Timings are logged, not asserted: they depend on corosync's token, on
// pacemaker's dc-deadtime and transitions, and on the host. Waits for the
// cluster itself (formation, failover) go through the lab with a generous
// deadline first, so that the source's reports are then expected within
// the usual waitLimit.
func TestPacemakerPair(t *testing.T) {
	requireRoot(t)
	ctx, lab := netlab.UpForTest(t, 180*time.Second, pcmklab.Up, func(lab *pcmklab.Lab) {
		for _, n := range pcmklab.Nodes {
			t.Logf("lab output of %s:\n%s", n, netlab.Tail(lab.OutFile(n), 20))
			t.Logf("pacemaker log of %s (%s):\n%s", n, lab.LogFile(n), netlab.Tail(lab.LogFile(n), 30))
		}
	})
	// cluster bounds each wait for the cluster to act.
	cluster := func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 60*time.Second) }

	log, logBuf := testLogger(t)
	source := func(node string) *Pacemaker {
		return &Pacemaker{CrmMon: lab.CrmMon(node), Resource: pcmklab.Resource, Node: pcmklab.NodeName(node),
			Interval: 300 * time.Millisecond, Timeout: 5 * time.Second, Log: log}
	}
	vip := &VIP{Addrs: []netip.Addr{pcmklab.VIP}, NetNS: lab.NetNS("a"), Log: log}
	role := newRoleWatch("a", []netip.Addr{pcmklab.VIP}, ha.SourcePacemaker, ha.SourceVIP)
	aRec, _ := runSource(t, role.feed(source("a").Run))
	bRec, _ := runSource(t, source("b").Run)
	vipRec, _ := runSource(t, role.feed(vip.Run))

	// These hold for every report, whichever phase fails: checked at
	// the end, also after a FailNow.
	defer func() {
		// crm_mon that reaches pacemakerd but not the CIB (while the
		// cluster starts, during a graceful stop, after corosync died)
		// says so in XML: <status code="0" message="OK"><errors><error>
		// Could not connect to the CIB: Transport endpoint is not
		// connected</error>, with no <summary>, and exits 0. That is a
		// cluster that cannot be reached, not unreadable output: every
		// error about crm_mon's output (an *ha.Error; a timeout is not
		// one) must say ErrNotReachable.
		for _, rec := range []struct {
			node string
			r    *recorder
		}{{"a", aRec}, {"b", bRec}} {
			bad := map[string][]string{} // error -> times seen
			var order []string
			for _, r := range rec.r.all() {
				var he *ha.Error
				if r.Err == nil || !errors.As(r.Err, &he) || errors.Is(r.Err, ha.ErrNotReachable) && !errors.Is(r.Err, ha.ErrInvalid) {
					continue
				}
				e := r.Err.Error()
				if bad[e] == nil {
					order = append(order, e)
				}
				bad[e] = append(bad[e], r.At.Format("15:04:05.000"))
			}
			for _, e := range order {
				t.Errorf("%s: error %q (%d reports, at %v), want one wrapping only ha.ErrNotReachable", rec.node, e, len(bad[e]), bad[e])
			}
		}
		// Node is right, so the source must not claim otherwise. While
		// the cluster starts, crm_mon shows a CIB without nodes
		// (<nodes/>, nodes_configured 0) for about a second; that says
		// nothing about the node's name.
		if strings.Contains(logBuf.String(), "not among the cluster's nodes") {
			t.Errorf("the source warned that %s or %s is not a cluster node:\n%s", pcmklab.NodeName("a"), pcmklab.NodeName("b"),
				grepLines(logBuf.String(), "not among the cluster's nodes"))
		}
	}()

	state := func(st ha.State) func(ha.Report) bool {
		return func(r ha.Report) bool {
			return r.Running && r.Err == nil && len(r.Instances) == 1 && hasState(r, pcmklab.Resource, st, -1)
		}
	}
	// stopped is what a crm_mon that cannot reach pacemakerd gives.
	stopped := func(r ha.Report) bool {
		return !r.Running && r.Err == nil && len(r.Instances) == 1 && hasState(r, pcmklab.Resource, ha.StateStop, -1)
	}
	vipOn := func(want bool) func(ha.Report) bool {
		return func(r ha.Report) bool {
			p, ok := vipState(r, pcmklab.VIP)
			return r.Err == nil && ok && p.Present == want
		}
	}
	since := func(t0 time.Time, s stamped) time.Duration { return s.At.Sub(t0).Round(time.Millisecond) }
	waitLab := func(t *testing.T, node string, want bool) time.Time {
		t.Helper()
		c, cancel := cluster()
		defer cancel()
		if _, err := lab.WaitVIP(c, node, want); err != nil {
			t.Fatal(err)
		}
		return time.Now()
	}

	// 0. Nothing runs: pacemakerd cannot be reached, which is STOP.
	aRec.waitFor(t, 0, "a stopped", stopped)
	bRec.waitFor(t, 0, "b stopped", stopped)
	vipRec.waitFor(t, 0, "VIP absent", vipOn(false))

	// 1. Both start; the VIP goes to its preferred node, pc-a.
	t.Run("start", func(t *testing.T) {
		a0, b0, v0 := aRec.len(), bRec.len(), vipRec.len()
		t0 := time.Now()
		for _, n := range pcmklab.Nodes {
			if err := lab.Start(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		started := time.Now()
		vipAt := waitLab(t, "a", true)
		_, running := aRec.waitFor(t, a0, "a running", func(r ha.Report) bool { return r.Running })
		_, master := aRec.waitFor(t, a0, "a MASTER", state(ha.StateMaster))
		_, vipUp := vipRec.waitFor(t, v0, "VIP on a", vipOn(true))
		bRec.waitFor(t, b0, "b running", func(r ha.Report) bool { return r.Running })
		iB := bRec.len()
		bRec.waitFor(t, iB, "b BACKUP", state(ha.StateBackup))
		t.Logf("start -> both started %v; a's source Running %v, MASTER %v; VIP on a %v (lab %v)",
			started.Sub(t0).Round(time.Millisecond), since(t0, running), since(t0, master), since(t0, vipUp), vipAt.Sub(t0).Round(time.Millisecond))
		t.Logf("a's reports:%s", history(aRec.all()[a0:], t0))
		if on, _ := lab.VIPOn("b"); on {
			t.Error("VIP on b too")
		}
		role.wait(t, ha.StateMaster)
	})
	if t.Failed() {
		t.FailNow()
	}

	// 2. Graceful stop of a: pacemaker moves the VIP to b before it
	// exits, and then crm_mon on a cannot reach pacemakerd.
	t.Run("graceful stop", func(t *testing.T) {
		a0, b0, v0 := aRec.len(), bRec.len(), vipRec.len()
		t0 := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- lab.Stop(ctx, "a", pcmklab.Graceful) }()
		_, stop := aRec.waitFor(t, a0, "a stopped", stopped)
		_, vipDown := vipRec.waitFor(t, v0, "VIP gone from a", vipOn(false))
		_, bMaster := bRec.waitFor(t, b0, "b MASTER", state(ha.StateMaster))
		vipB := waitLab(t, "b", true)
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		t.Logf("graceful stop -> VIP gone from a %v, on b %v (lab); a's source STOP %v; b's source MASTER %v",
			since(t0, vipDown), vipB.Sub(t0).Round(time.Millisecond), since(t0, stop), since(t0, bMaster))
		role.wait(t, ha.StateStop)
		t.Logf("a's reports:%s", history(aRec.all()[a0:], t0))
	})
	if t.Failed() {
		t.FailNow()
	}

	// 3. a comes back and takes the VIP back (location preference, no
	// stickiness).
	t.Run("restart and failback", func(t *testing.T) {
		a0, b0, v0 := aRec.len(), bRec.len(), vipRec.len()
		t0 := time.Now()
		if err := lab.Start(ctx, "a"); err != nil {
			t.Fatal(err)
		}
		started := time.Now()
		vipAt := waitLab(t, "a", true)
		_, running := aRec.waitFor(t, a0, "a running", func(r ha.Report) bool { return r.Running })
		_, master := aRec.waitFor(t, a0, "a MASTER", state(ha.StateMaster))
		_, vipUp := vipRec.waitFor(t, v0, "VIP on a", vipOn(true))
		_, bBackup := bRec.waitFor(t, b0, "b BACKUP", state(ha.StateBackup))
		waitLab(t, "b", false)
		t.Logf("restart -> started %v; a's source Running %v, MASTER %v; VIP on a %v (lab %v); b's source BACKUP %v",
			started.Sub(t0).Round(time.Millisecond), since(t0, running), since(t0, master), since(t0, vipUp), vipAt.Sub(t0).Round(time.Millisecond), since(t0, bBackup))
		t.Logf("a's reports:%s", history(aRec.all()[a0:], t0))
		role.wait(t, ha.StateMaster)
	})
	if t.Failed() {
		t.FailNow()
	}

	// 4. corosync on a dies (SIGKILL). pacemaker's daemons on a lose
	// their cluster layer and exit, except pacemakerd (which waits for
	// corosync to come back), the executor and the scheduler. Nothing
	// stops the VIP on a; b takes it too once the token is lost (no
	// fencing). crm_mon on a still reaches pacemakerd but not the CIB,
	// and exits 0: the source must say that it does not know, which is
	// neither a role nor STOP.
	t.Run("corosync killed", func(t *testing.T) {
		a0, b0, v0 := aRec.len(), bRec.len(), vipRec.len()
		t0 := time.Now()
		if err := lab.Stop(ctx, "a", pcmklab.KillCorosync); err != nil {
			t.Fatal(err)
		}
		_, lost := aRec.waitFor(t, a0, "a without a role", func(r ha.Report) bool { return r.Err != nil || !r.Running })
		vipB := waitLab(t, "b", true)
		_, bMaster := bRec.waitFor(t, b0, "b MASTER", state(ha.StateMaster))
		// Let a's source poll a few more times.
		n := aRec.len()
		aRec.waitFor(t, n+2, "more reports from a", func(ha.Report) bool { return true })
		t.Logf("SIGKILL corosync -> a's source %s after %v; VIP on b %v (lab); b's source MASTER %v",
			describe(lost.Report), since(t0, lost), vipB.Sub(t0).Round(time.Millisecond), since(t0, bMaster))
		t.Logf("a's reports:%s", history(aRec.all()[a0:], t0))
		t.Logf("a's cluster processes left: %v", lab.Procs("a"))

		if lost.Err == nil {
			t.Errorf("after corosync died: %s, want an error (pacemakerd still runs, the cluster cannot be reached)", describe(lost.Report))
		} else if !strings.Contains(lost.Err.Error(), "Could not connect to the CIB") {
			t.Errorf("after corosync died: error %q does not pass on crm_mon's message (Could not connect to the CIB...)", lost.Err)
		}
		for _, r := range aRec.all()[a0:] {
			if r.At.After(lost.At) && (r.Err == nil || r.Running || len(r.Instances) != 0) {
				t.Errorf("a report after corosync died: %s, want an error and no role", describe(r.Report))
			}
		}
		// The stale VIP: still on a, and the VIP source never said
		// otherwise.
		for _, r := range vipRec.all()[v0:] {
			if !vipOn(true)(r.Report) {
				t.Errorf("VIP source reported %s after corosync died", describe(r.Report))
			}
		}
		if on, err := lab.VIPOn("a"); err != nil || !on {
			t.Errorf("lab: VIP on a = %v, %v; want the stale VIP", on, err)
		}
		if _, p := lab.Running("a"); !p {
			t.Log("pacemakerd on a exited after corosync died")
		}
		// The Monitor keeps MASTER over one failed read, and gives it up
		// once crm_mon keeps failing: a node that lost its cluster does
		// not know its role.
		role.wait(t, ha.StateUnknown)
		t.Logf("SIGKILL corosync -> a's role UNKNOWN in its Monitor %v", time.Since(t0).Round(time.Millisecond))
	})

	// 5. The rest of a's stack dies too: now pacemakerd cannot be
	// reached, which is STOP, while the stale VIP stays.
	t.Run("crash", func(t *testing.T) {
		a0 := aRec.len()
		t0 := time.Now()
		if err := lab.Stop(ctx, "a", pcmklab.Crash); err != nil {
			t.Fatal(err)
		}
		_, stop := aRec.waitFor(t, a0, "a stopped", stopped)
		t.Logf("crash -> a's source STOP %v", since(t0, stop))
		role.wait(t, ha.StateStop, ha.VIPWithoutMaster)
		t.Logf("crash -> stale VIP flagged in a's Monitor %v", time.Since(t0).Round(time.Millisecond))
		if on, err := lab.VIPOn("a"); err != nil || !on {
			t.Errorf("lab: VIP on a = %v, %v; want the stale VIP", on, err)
		}
		last, _ := vipRec.last()
		if !vipOn(true)(last.Report) {
			t.Errorf("VIP source after the crash: %s, want the VIP present", describe(last.Report))
		}
	})
}

// grepLines returns the lines of s that contain sub.
func grepLines(s, sub string) string {
	var m []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			m = append(m, l)
		}
	}
	return strings.Join(m, "\n")
}

// history renders reports compactly, one line per change of what they
// say, with the time since t0.
func history(rs []stamped, t0 time.Time) string {
	var b strings.Builder
	prev := ""
	for _, r := range rs {
		d := describe(r.Report)
		if d == prev {
			continue
		}
		prev = d
		fmt.Fprintf(&b, "\n  +%v %s", r.At.Sub(t0).Round(time.Millisecond), d)
	}
	return b.String()
}
