//go:build lab

// Lab tier (README, Tests): a real heartbeat pair in network namespaces
// (internal/hblab); needs root and Debian's heartbeat.

package sources

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/hblab"
	"github.com/lvsmon/lvsmon/internal/netlab"
)

// TestHeartbeatPair runs the Heartbeat source (cl_status through the
// lab's wrapper) and the VIP source on both nodes of a real heartbeat 3
// haresources pair, each pair of sources feeding an ha.Monitor as in the
// daemon, and follows a through the election, a graceful stop, the
// failback after a restart, and a crash. rscstatus describes resource
// groups, not a role (b says "local" while holding nothing), so the
// source leaves the role to the VIPs, and the Monitors must show a and b
// as MASTER and BACKUP as the VIP moves.
//
// Timings are logged, not asserted: they come from heartbeat's timers
// (keepalive 1s, deadtime 3s, initdead 3s, and its fixed wait of about
// 10s while two starting nodes agree who holds what) and from the host.
func TestHeartbeatPair(t *testing.T) {
	requireRoot(t)
	ctx, lab := netlab.UpForTest(t, 120*time.Second, hblab.Up, func(lab *hblab.Lab) {
		for _, n := range hblab.Nodes {
			t.Logf("heartbeat log of %s (%s):\n%s", n, lab.LogFile(n), netlab.Tail(lab.LogFile(n), 40))
		}
	})

	log, logBuf := testLogger(t)
	src := func(node string) *Heartbeat {
		return &Heartbeat{ClStatus: lab.ClStatus(node), Interval: 200 * time.Millisecond, Timeout: 5 * time.Second, Log: log}
	}
	vip := func(node string) *VIP {
		return &VIP{Addrs: []netip.Addr{hblab.VIP}, NetNS: lab.NetNS(node), Log: log}
	}
	// One Monitor per node, fed by that node's sources, as in lvsmon.
	mon := map[string]*roleWatch{}
	for _, n := range hblab.Nodes {
		mon[n] = newRoleWatch(n, []netip.Addr{hblab.VIP}, ha.SourceHeartbeat, ha.SourceVIP)
	}
	hbRec, _ := runSource(t, mon["a"].feed(src("a").Run))
	peerRec, _ := runSource(t, mon["b"].feed(src("b").Run))
	vipRec, _ := runSource(t, mon["a"].feed(vip("a").Run))
	runSource(t, mon["b"].feed(vip("b").Run))
	begin := time.Now()
	role := func(t *testing.T, node string, st ha.State, disagreements ...string) {
		t.Helper()
		mon[node].wait(t, st, disagreements...)
	}

	stopped := func(r ha.Report) bool {
		return r.Err == nil && !r.Running && hasState(r, HeartbeatInstance, ha.StateStop, -1)
	}
	running := func(r ha.Report) bool { return r.Err == nil && r.Running }
	// holds: heartbeat holds some resource group; the VIPs decide.
	holds := func(r ha.Report) bool {
		return r.Err == nil && r.Running && hasState(r, HeartbeatInstance, stateByVIPs, -1)
	}
	vipOn := func(want bool) func(ha.Report) bool {
		return func(r ha.Report) bool {
			p, ok := vipState(r, hblab.VIP)
			return r.Err == nil && ok && p.Present == want
		}
	}
	since := func(t0 time.Time, s stamped) time.Duration { return s.At.Sub(t0).Round(time.Millisecond) }
	// peerSays logs what cl_status rscstatus prints on b, first as it is
	// and then once heartbeat's resource state has settled.
	peerSays := func(t *testing.T, phase string) {
		t.Helper()
		out, rc := hbClStatus(t, lab.ClStatus("b"), "rscstatus")
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		word, d, err := lab.WaitSettled(sctx, "b")
		if err != nil {
			t.Errorf("%s: %v", phase, err)
			return
		}
		t.Logf("%s: rscstatus on b -> exit %d %q; settled at %q %v later", phase, rc, out, word, d.Round(time.Millisecond))
	}
	// settle waits until both nodes' resource state is stable, so that
	// the next step starts from a quiet pair: `heartbeat -k` during a
	// transition waits for the transition to end first.
	settle := func(t *testing.T, phase string) {
		t.Helper()
		sctx, scancel := context.WithTimeout(ctx, 30*time.Second)
		defer scancel()
		for _, n := range hblab.Nodes {
			if _, _, err := lab.WaitSettled(sctx, n); err != nil {
				t.Fatalf("%s: %v", phase, err)
			}
		}
	}

	// phase runs one step as a subtest. Each step starts from where the
	// last one left the pair, so a failed step ends the test.
	phase := func(name string, f func(t *testing.T)) {
		if !t.Run(name, f) {
			t.FailNow()
		}
	}

	// 0. Nothing runs yet.
	hbRec.waitFor(t, 0, "heartbeat stopped", stopped)
	vipRec.waitFor(t, 0, "VIP absent", vipOn(false))

	// 1. Both nodes start together. heartbeat's API answers once the
	// peers have heard each other; the resource state stays
	// "transition" for about 10s, then a takes its group.
	phase("election", func(t *testing.T) {
		h0, v0 := hbRec.len(), vipRec.len()
		t0 := time.Now()
		for _, n := range []string{"b", "a"} {
			if err := lab.Start(n); err != nil {
				t.Fatal(err)
			}
		}
		_, up := hbRec.waitFor(t, h0, "heartbeat running", running)
		_, m := hbRec.waitFor(t, h0, "a holding its group", holds)
		_, vipUp := vipRec.waitFor(t, v0, "VIP on a", vipOn(true))
		t.Logf("start -> Running %v (%s); holding %v; VIP on a %v",
			since(t0, up), describe(up.Report), since(t0, m), since(t0, vipUp))
		role(t, "a", ha.StateMaster)
		role(t, "b", ha.StateBackup)
		t.Logf("start -> a MASTER and b BACKUP in their Monitors %v", time.Since(t0).Round(time.Millisecond))
		if p, _ := vipState(vipUp.Report, hblab.VIP); p.Interface != "eth0" {
			t.Errorf("VIP on %q, want eth0", p.Interface)
		}
		settle(t, "election")
		peerSays(t, "election")
		if on, err := lab.VIPOn("b"); err != nil || on {
			t.Errorf("lab: VIP on b = %v, %v; want only on a", on, err)
		}
	})

	// 2. Graceful stop of a: heartbeat -k releases the group, b takes it
	// at once, and a's heartbeat exits a few seconds later.
	phase("graceful stop", func(t *testing.T) {
		h0, v0 := hbRec.len(), vipRec.len()
		t0 := time.Now()
		onB := hbWaitVIP(ctx, lab, "b", true)
		errc := make(chan error, 1)
		go func() { errc <- lab.Stop("a", hblab.Graceful) }()
		_, vipDown := vipRec.waitFor(t, v0, "VIP gone from a", vipOn(false))
		iStop, stop := hbRec.waitFor(t, h0, "heartbeat stopped", stopped)
		dB := hbWaited(t, onB, "VIP on b")
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		t.Logf("heartbeat -k -> VIP gone from a %v; VIP on b %v; STOP %v; heartbeat -k returned by %v",
			since(t0, vipDown), dB, since(t0, stop), time.Since(t0).Round(time.Millisecond))
		role(t, "a", ha.StateStop)
		role(t, "b", ha.StateMaster)
		t.Logf("a while stopping:%s", hbHistory(hbRec.all()[h0:iStop+1], t0))
		peerSays(t, "after the graceful stop")
	})

	// 3. a comes back and, with auto_failback on, takes its group back.
	phase("restart and failback", func(t *testing.T) {
		h0, v0 := hbRec.len(), vipRec.len()
		t0 := time.Now()
		offB := hbWaitVIP(ctx, lab, "b", false)
		if err := lab.Start("a"); err != nil {
			t.Fatal(err)
		}
		_, up := hbRec.waitFor(t, h0, "heartbeat running", running)
		_, m := hbRec.waitFor(t, h0, "a holding its group", holds)
		_, vipUp := vipRec.waitFor(t, v0, "VIP on a", vipOn(true))
		dB := hbWaited(t, offB, "VIP gone from b")
		t.Logf("restart -> Running %v; VIP gone from b %v; VIP on a %v; holding %v",
			since(t0, up), dB, since(t0, vipUp), since(t0, m))
		role(t, "a", ha.StateMaster)
		role(t, "b", ha.StateBackup)
		settle(t, "failback")
		peerSays(t, "after the failback")
	})

	// 4. Crash of a: all its heartbeat processes die at once. Nothing
	// releases the VIP, so it stays on a, while b declares a dead after
	// deadtime and takes the group too.
	phase("SIGKILL", func(t *testing.T) {
		h0, v0 := hbRec.len(), vipRec.len()
		pids := lab.PIDs("a")
		onB := hbWaitVIP(ctx, lab, "b", true)
		t0 := time.Now()
		if err := lab.Stop("a", hblab.Crash); err != nil {
			t.Fatal(err)
		}
		iStop, stop := hbRec.waitFor(t, h0, "heartbeat stopped", stopped)
		dB := hbWaited(t, onB, "VIP on b")
		t.Logf("SIGKILL of %d processes -> STOP %v; VIP on b %v", len(pids), since(t0, stop), dB)
		// a: stopped with the VIP left behind, flagged after the grace.
		role(t, "a", ha.StateStop, ha.VIPWithoutMaster)
		t.Logf("SIGKILL -> stale VIP flagged in a's Monitor %v", time.Since(t0).Round(time.Millisecond))
		role(t, "b", ha.StateMaster)
		peerSays(t, "after the crash")
		// Let a's source poll a few more times after b took over.
		hbRec.waitFor(t, hbRec.len()+2, "more reports", func(ha.Report) bool { return true })
		for _, r := range hbRec.all()[iStop:] {
			if !stopped(r.Report) {
				t.Errorf("after the crash a reported %s, want only STOP", describe(r.Report))
			}
		}
		// The stale VIP: still on a, and the VIP source never said
		// otherwise.
		for _, r := range vipRec.all()[v0:] {
			if !vipOn(true)(r.Report) {
				t.Errorf("VIP source reported %s after SIGKILL", describe(r.Report))
			}
		}
		if on, err := lab.VIPOn("a"); err != nil || !on {
			t.Errorf("lab: VIP on a = %v, %v; want the stale VIP", on, err)
		}
	})

	t.Logf("source on a:%s", hbHistory(hbRec.all(), begin))
	t.Logf("source on b:%s", hbHistory(peerRec.all(), begin))

	// Whatever real cl_status printed, the source must have understood
	// it. heartbeat 3.0.6 prints two answers that ParseClStatus does not
	// know:
	//   - rscstatus "transition" (exit 0) while the resource state is not
	//     stable (hb_rsc_resource_state), for about 10s after every start
	//     and briefly around each takeover: heartbeat runs, its role is
	//     not known yet (Running true, UNKNOWN).
	//   - rscstatus "ERROR: Cannot get cluster resource status" (exit 13)
	//     when heartbeat dies while cl_status talks to it, as in the
	//     crash: heartbeat is going away, not talking nonsense.
	// Neither is a malformed answer, so neither may be a parse error.
	for _, name := range []string{"a", "b"} {
		rec := map[string]*recorder{"a": hbRec, "b": peerRec}[name]
		if bad := hbParseErrors(rec.all()); bad != "" {
			t.Errorf("source on %s: parse errors on real cl_status output:%s", name, bad)
		}
	}
	if strings.Contains(logBuf.String(), hblab.AuthKey) {
		t.Error("authkeys key in the source log")
	}
}

// hbWaitVIP starts waiting (up to 30s) for the VIP's presence on node to
// be want, so that the wait runs alongside the test's others and measures
// from now.
func hbWaitVIP(ctx context.Context, lab *hblab.Lab, node string, want bool) <-chan hbVIPWait {
	ch := make(chan hbVIPWait, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		d, err := lab.WaitVIP(ctx, node, want)
		ch <- hbVIPWait{d, err}
	}()
	return ch
}

type hbVIPWait struct {
	d   time.Duration
	err error
}

// hbWaited returns the result of a hbWaitVIP, failing the test on error.
func hbWaited(t *testing.T, ch <-chan hbVIPWait, what string) time.Duration {
	t.Helper()
	w := <-ch
	if w.err != nil {
		t.Fatalf("%s: %v", what, w.err)
	}
	return w.d.Round(time.Millisecond)
}

// hbClStatus runs a cl_status (wrapper) and returns its combined output
// and exit status.
func hbClStatus(t *testing.T, bin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return strings.TrimSpace(string(out)), 0
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return strings.TrimSpace(string(out)), ee.ExitCode()
	}
	t.Fatalf("%s %v: %v: %s", bin, args, err, out)
	return "", 0
}

// hbParseErrors lists the distinct ErrInvalid errors among rs with their
// counts, one per line; "" when there are none. cl_status's pid and time
// stamp are cut out so that repeats fold.
func hbParseErrors(rs []stamped) string {
	counts := map[string]int{}
	var order []string
	for _, r := range rs {
		if !errors.Is(r.Err, ha.ErrInvalid) {
			continue
		}
		msg := hbVolatile.ReplaceAllString(r.Err.Error(), "")
		if i := strings.Index(msg, "ha: cl_status: "); i >= 0 {
			msg = msg[i:] // without the wrapper's path
		}
		if counts[msg] == 0 {
			order = append(order, msg)
		}
		counts[msg]++
	}
	var b strings.Builder
	for _, m := range order {
		fmt.Fprintf(&b, "\n  %dx %s", counts[m], m)
	}
	return b.String()
}

// hbVolatile matches what changes between two identical cl_status errors:
// the syslog-style time stamp, host name and pid it prefixes its lines
// with ("Nov 22 05:15:32 hb-a cl_status: [870]: ").
var hbVolatile = regexp.MustCompile(`[A-Z][a-z]{2} [ 0-9]\d \d\d:\d\d:\d\d \S+ |\[\d+\]: `)

// hbHistory renders reports as one line per change (repeats folded into
// a count), with times from t0.
func hbHistory(rs []stamped, t0 time.Time) string {
	var b strings.Builder
	last, n := "", 0
	flush := func() {
		if n > 1 {
			fmt.Fprintf(&b, " (x%d)", n)
		}
	}
	for _, r := range rs {
		d := describe(r.Report)
		if d == last {
			n++
			continue
		}
		flush()
		fmt.Fprintf(&b, "\n  %8v %s", r.At.Sub(t0).Round(time.Millisecond), d)
		last, n = d, 1
	}
	flush()
	return b.String()
}
