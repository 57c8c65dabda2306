//go:build lab

// Lab tier (README, Tests): a real keepalived pair in network namespaces
// (internal/vrrplab); needs root and Debian's keepalived.

package sources

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/vrrplab"
)

// TestKeepalivedPair runs the keepalived (dump + FIFO), VIP and VRRP
// sources on node a of a real keepalived pair and follows a through
// election, a clean stop, preemption after a restart, and a crash.
// Timings are logged, not asserted: they depend on keepalived's timers
// (advert 1s, master-down 3 × 1s + skew) and on the host.
func TestKeepalivedPair(t *testing.T) {
	requireRoot(t)
	_, lab := netlab.UpForTest(t, 90*time.Second, vrrplab.Up, func(lab *vrrplab.Lab) {
		for _, n := range vrrplab.Nodes {
			t.Logf("keepalived log of %s: %s", n, lab.LogFile(n))
		}
	})

	log, logBuf := testLogger(t)
	ka := &Keepalived{PIDFile: lab.PIDFile("a"), DumpDir: lab.DumpDir("a"), FIFO: lab.FIFO("a"), Log: log}
	vip := &VIP{Addrs: []netip.Addr{vrrplab.VIP}, NetNS: lab.NetNS("a"), Log: log}
	wire := &VRRP{NetNS: lab.NetNS("a"), Log: log}
	kaRec, _ := runSource(t, ka.Run)
	vipRec, _ := runSource(t, vip.Run)
	wireRec, _ := runSource(t, wire.Run)

	state := func(st ha.State) func(ha.Report) bool {
		return func(r ha.Report) bool { return r.Running && r.Err == nil && hasState(r, vrrplab.Instance, st, -1) }
	}
	vipOn := func(want bool) func(ha.Report) bool {
		return func(r ha.Report) bool {
			p, ok := vipState(r, vrrplab.VIP)
			return r.Err == nil && ok && p.Present == want
		}
	}
	// onWire is the masters of the lab's router as "addr/prio[/local]".
	onWire := func(want string) func(ha.Report) bool {
		return func(r ha.Report) bool {
			if r.Err != nil {
				return false
			}
			rt, ok := router(r, vrrplab.VRID, 2, false)
			if want == "" {
				return !ok
			}
			return ok && masters(rt) == want
		}
	}
	aMaster := fmt.Sprintf("%s/%d/local", lab.Addr("a"), lab.Priority("a"))
	bMaster := fmt.Sprintf("%s/%d", lab.Addr("b"), lab.Priority("b"))
	since := func(t0 time.Time, s stamped) time.Duration { return s.At.Sub(t0).Round(time.Millisecond) }

	// 0. Nothing runs yet.
	kaRec.waitFor(t, 0, "keepalived stopped", func(r ha.Report) bool { return !r.Running && r.Err == nil })
	vipRec.waitFor(t, 0, "VIP absent", vipOn(false))
	wireRec.waitFor(t, 0, "an empty wire", onWire(""))

	// 1. Election: a starts BACKUP and becomes MASTER when its
	// master-down timer runs out (b is BACKUP with a lower priority).
	t.Run("election", func(t *testing.T) {
		k0, v0, w0 := kaRec.len(), vipRec.len(), wireRec.len()
		t0 := time.Now()
		if err := lab.Start("b"); err != nil {
			t.Fatal(err)
		}
		if err := lab.Start("a"); err != nil {
			t.Fatal(err)
		}
		iB, backup := kaRec.waitFor(t, k0, "a BACKUP", state(ha.StateBackup))
		_, master := kaRec.waitFor(t, iB+1, "a MASTER", state(ha.StateMaster))
		_, vipUp := vipRec.waitFor(t, v0, "VIP on a", vipOn(true))
		_, w := wireRec.waitFor(t, w0, "a master on the wire", onWire(aMaster))
		t.Logf("start -> keepalived BACKUP %v (transition %v), MASTER %v (transition %v)",
			since(t0, backup), backup.Transition, since(t0, master), master.Transition)
		t.Logf("start -> VIP on a %v; -> a's own adverts on the wire %v", since(t0, vipUp), since(t0, w))
		t.Logf("VIP added (netlink) -> FIFO MASTER line reported: %v", master.At.Sub(vipUp.At))
		if !master.Transition {
			t.Errorf("MASTER came from a dump, not from the FIFO: %s", describe(master.Report))
		}
		if in, _ := instance(master.Report, vrrplab.Instance); in.VRID != vrrplab.VRID || in.Priority != lab.Priority("a") ||
			len(in.VIPs) != 1 || in.VIPs[0] != vrrplab.VIP {
			t.Errorf("MASTER report lacks the dump's details: %+v", in)
		}
		if p, _ := vipState(vipUp.Report, vrrplab.VIP); p.Interface != "eth0" {
			t.Errorf("VIP on %q, want eth0", p.Interface)
		}
	})

	// 1b. Reload of a (SIGHUP): keepalived closes and reopens the FIFO
	// (EOF for us) and announces no state afterwards, so the source must
	// dump again and keep a MASTER; later lines must still arrive (the
	// SIGTERM step checks that STOP comes from the FIFO).
	t.Run("SIGHUP", func(t *testing.T) {
		k0 := kaRec.len()
		eof0 := strings.Count(logBuf.String(), "notify FIFO closed")
		t0 := time.Now()
		if err := lab.Reload("a"); err != nil {
			t.Fatal(err)
		}
		_, redump := kaRec.waitFor(t, k0, "a dump after the reload", func(r ha.Report) bool {
			return !r.Transition && r.Running && r.Err == nil && len(r.Instances) > 0
		})
		t.Logf("SIGHUP -> fresh dump %v: %s", since(t0, redump), describe(redump.Report))
		if !hasState(redump.Report, vrrplab.Instance, ha.StateMaster, -1) {
			t.Errorf("after the reload: %s, want a still MASTER", describe(redump.Report))
		}
		// Let keepalived settle, then the VIP must still be on a and no
		// report since the signal may have said otherwise.
		time.Sleep(1500 * time.Millisecond)
		for _, r := range kaRec.all()[k0:] {
			if !r.Running || r.Err != nil || (len(r.Instances) > 0 && !hasState(r.Report, vrrplab.Instance, ha.StateMaster, -1)) {
				t.Errorf("a report during the reload: %s", describe(r.Report))
			}
		}
		if on, err := lab.VIPOn("a"); err != nil || !on {
			t.Errorf("lab: VIP on a after the reload = %v, %v", on, err)
		}
		if strings.Count(logBuf.String(), "notify FIFO closed") == eof0 {
			t.Errorf("the source saw no EOF on the FIFO after SIGHUP")
		}
	})

	// 2. Clean stop of a: STOP on the FIFO, then keepalived gone; a sends
	// priority 0, so b takes over after its skew time only.
	t.Run("SIGTERM", func(t *testing.T) {
		k0, v0, w0 := kaRec.len(), vipRec.len(), wireRec.len()
		t0 := time.Now()
		errc := make(chan error, 1)
		go func() { errc <- lab.Stop("a", syscall.SIGTERM) }()
		iStop, stop := kaRec.waitFor(t, k0, "a STOP", func(r ha.Report) bool { return hasState(r, vrrplab.Instance, ha.StateStop, -1) })
		_, gone := kaRec.waitFor(t, iStop, "keepalived stopped", func(r ha.Report) bool { return !r.Running && r.Err == nil })
		_, vipDown := vipRec.waitFor(t, v0, "VIP gone from a", vipOn(false))
		_, w := wireRec.waitFor(t, w0, "b master on the wire", onWire(bMaster))
		if err := <-errc; err != nil {
			t.Fatal(err)
		}
		t.Logf("SIGTERM -> FIFO STOP %v (transition %v), Running false %v", since(t0, stop), stop.Transition, since(t0, gone))
		t.Logf("SIGTERM -> VIP gone from a %v; -> only b on the wire %v", since(t0, vipDown), since(t0, w))
		if !stop.Transition {
			t.Errorf("STOP did not come from the FIFO: %s", describe(stop.Report))
		}
	})

	// 3. a comes back and preempts b.
	t.Run("restart and preemption", func(t *testing.T) {
		k0, v0, w0 := kaRec.len(), vipRec.len(), wireRec.len()
		t0 := time.Now()
		if err := lab.Start("a"); err != nil {
			t.Fatal(err)
		}
		_, running := kaRec.waitFor(t, k0, "keepalived running", func(r ha.Report) bool { return r.Running })
		_, master := kaRec.waitFor(t, k0, "a MASTER", state(ha.StateMaster))
		_, vipUp := vipRec.waitFor(t, v0, "VIP on a", vipOn(true))
		iTop, top := wireRec.waitFor(t, w0, "a first on the wire", func(r ha.Report) bool {
			rt, ok := router(r, vrrplab.VRID, 2, false)
			return ok && masters(rt) != "" && strings.HasPrefix(masters(rt), aMaster)
		})
		_, alone := wireRec.waitFor(t, iTop, "only a on the wire", onWire(aMaster))
		t.Logf("restart -> keepalived Running %v, MASTER %v (transition %v)", since(t0, running), since(t0, master), master.Transition)
		t.Logf("restart -> VIP on a %v; a on the wire %v (%s); b's entry expired %v",
			since(t0, vipUp), since(t0, top), describe(top.Report), since(t0, alone))
	})

	// 4. Crash of a: no STOP line, no priority 0. keepalived's view goes
	// (Running false), the VIP stays behind on a, and the wire shows b
	// once a's adverts have been missing for its master-down interval.
	t.Run("SIGKILL", func(t *testing.T) {
		k0, v0, w0 := kaRec.len(), vipRec.len(), wireRec.len()
		t0 := time.Now()
		if err := lab.Stop("a", syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_, gone := kaRec.waitFor(t, k0, "keepalived stopped", func(r ha.Report) bool { return !r.Running })
		_, w := wireRec.waitFor(t, w0, "b master on the wire", onWire(bMaster))
		t.Logf("SIGKILL -> Running false %v; -> only b on the wire %v", since(t0, gone), since(t0, w))
		if gone.Err != nil || len(gone.Instances) != 0 {
			t.Errorf("after the crash: %s", describe(gone.Report))
		}
		for _, r := range kaRec.all()[k0:] {
			if r.Transition {
				t.Errorf("a FIFO line after SIGKILL: %s", describe(r.Report))
			}
		}
		// The stale VIP: still on a, and the VIP source never said
		// otherwise, now that b is master on the wire.
		last, _ := vipRec.last()
		if p, _ := vipState(last.Report, vrrplab.VIP); !p.Present || last.Err != nil {
			t.Errorf("VIP source after the crash: %s, want the VIP still present", describe(last.Report))
		}
		for _, r := range vipRec.all()[v0:] {
			if !vipOn(true)(r.Report) {
				t.Errorf("VIP source reported %s after SIGKILL", describe(r.Report))
			}
		}
		if on, err := lab.VIPOn("a"); err != nil || !on {
			t.Errorf("lab: VIP on a = %v, %v; want the stale VIP", on, err)
		}
		// keepalived sends its first advert as master before it adds the
		// VIP, so the wire can show b a moment before b holds the VIP.
		vctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if d, err := lab.WaitVIP(vctx, "b", true); err != nil {
			t.Errorf("lab: VIP on b: %v", err)
		} else {
			t.Logf("SIGKILL -> VIP on b %v after b was seen on the wire", d)
		}
	})

	var b strings.Builder
	for _, r := range kaRec.all() {
		fmt.Fprintf(&b, "\n  %s %s", r.At.Format("15:04:05.000"), describe(r.Report))
	}
	t.Logf("keepalived source reports:%s", b.String())
	for _, rec := range []*recorder{kaRec, vipRec, wireRec} {
		for _, r := range rec.all() {
			if strings.Contains(fmt.Sprintf("%+v %v", r.Report, r.Err), vrrplab.AuthPass) {
				t.Errorf("password in a report: %s", describe(r.Report))
			}
		}
	}
	if strings.Contains(logBuf.String(), vrrplab.AuthPass) {
		t.Error("password in the log")
	}
}
