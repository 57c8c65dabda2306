//go:build lab

// Lab tier (README, Tests): the lvsmon binary on a real keepalived pair in
// network namespaces; needs root and Debian's keepalived.

package main

import (
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/vrrplab"
	"github.com/lvsmon/lvsmon/web"
)

// TestKeepalivedPair runs the lvsmon binary against a real keepalived
// VRRP pair in network namespaces (internal/vrrplab): lvsmon watches node
// a through its JSON dump and notify FIFO, the VIP on a's interfaces and
// the wire in a's namespace, and the test asserts that the role it
// reports follows keepalived through election, graceful stop, preemption
// and a crash that leaves a stale VIP, which must be flagged. Durations
// are logged, not asserted.
func TestKeepalivedPair(t *testing.T) {
	t.Parallel()
	ctx, lab := netlab.UpForTest(t, 3*time.Minute, vrrplab.Up, nil)

	api := startClusterDirector(t, lab.NetNS("a"), lab.VIP(), fmt.Sprintf(`  keepalived:
    pid_file: %s
    dump_dir: %s
    notify_fifo: %s
  vrrp: {}
`, lab.PIDFile("a"), lab.DumpDir("a"), lab.FIFO("a")), vrrplab.Instance)
	d, base := api.d, api.base
	role, wait := api.role, api.wait
	wire := func(in *web.RoleInstance, local bool) bool {
		return len(in.WireMasters) == 1 && in.WireMasters[0].Local == local
	}

	// Election: b first, then a (priority 150) starts as BACKUP and wins
	// when its master-down timer runs out.
	if err := lab.Start("b"); err != nil {
		t.Fatal(err)
	}
	if _, err := lab.WaitVIP(ctx, "b", true); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := lab.Start("a"); err != nil {
		t.Fatal(err)
	}
	wait("a reported BACKUP at start", start, func(r *web.Role, in *web.RoleInstance) bool { return in.State == "BACKUP" })
	if r := role(); r.Acting {
		t.Errorf("a BACKUP with act_only_on: master acts")
	}
	electedState := wait("a's state MASTER", start, func(r *web.Role, in *web.RoleInstance) bool { return in.State == "MASTER" })
	elected := wait("a elected MASTER, VIP here, only a on the wire", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "MASTER" && vipHere(in) && wire(in, true) && r.Acting && len(in.Disagreements) == 0
	})

	// Graceful stop: keepalived sends priority 0 and drops the VIP; b
	// takes over within about 0.65 s.
	start = time.Now()
	sigterm := start
	if err := lab.Stop("a", syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stoppedState := wait("SIGTERM: a's state STOP", start, func(r *web.Role, in *web.RoleInstance) bool { return in.State == "STOP" })
	stopped := wait("SIGTERM: a STOP, VIP gone, b on the wire", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "STOP" && !vipHere(in) && wire(in, false) && !r.Acting
	})

	// Restart: a preempts b.
	start = time.Now()
	if err := lab.Start("a"); err != nil {
		t.Fatal(err)
	}
	preemptedState := wait("restart: a's state MASTER", start, func(r *web.Role, in *web.RoleInstance) bool { return in.State == "MASTER" })
	preempted := wait("restart: a MASTER again (preemption), only a on the wire", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "MASTER" && vipHere(in) && wire(in, true) && len(in.Disagreements) == 0
	})

	// Crash: no priority-0 advert, the VIP stays on a (stale), b takes
	// over after the master-down interval. lvsmon must say so.
	start = time.Now()
	if err := lab.Stop("a", syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	crashed := wait("SIGKILL: a STOP with the stale VIP flagged", start, func(r *web.Role, in *web.RoleInstance) bool {
		return in.State == "STOP" && vipHere(in) && slices.Contains(in.Disagreements, "vip_without_master") && r.Disagreements > 0
	})
	if on, _ := lab.VIPOn("a"); !on {
		t.Errorf("the lab says the VIP left a after SIGKILL; the scenario did not happen")
	}
	wait("SIGKILL: b master on the wire", start, func(r *web.Role, in *web.RoleInstance) bool { return wire(in, false) })

	// The event log has every transition, and the disagreement.
	var ev struct {
		Events []struct {
			Kind, Message string
			Time          time.Time
		} `json:"events"`
	}
	getJSON(t, base+"/api/v1/events?limit=100", &ev)
	joined := api.expectEvents("BACKUP → MASTER", "MASTER → STOP", "STOP → BACKUP",
		"role_disagreement: VI_LVS: VIP "+lab.VIP().String()+" on this director while the instance is STOP")
	// lab.Stop waits for keepalived to exit (about 1 s after SIGTERM);
	// the event's own time says when lvsmon learnt of the STOP line.
	for _, e := range ev.Events {
		if e.Kind == "role_change" && strings.Contains(e.Message, "MASTER → STOP") && e.Time.After(sigterm) {
			t.Logf("measured: SIGTERM → STOP in lvsmon's event log (via the notify FIFO): %v", e.Time.Sub(sigterm).Round(100*time.Microsecond))
			break
		}
	}
	// A preemption is not a split brain: the preempted master stops
	// advertising at once and must not be reported as a second master.
	if strings.Contains(joined, "two masters") {
		t.Errorf("a normal failover was reported as two masters:\n%s", joined)
	}
	ms := func(d time.Duration) time.Duration { return d.Round(time.Millisecond) }
	t.Logf("measured (state in the status API / whole picture incl. VIP and wire): election %v / %v, SIGTERM %v / %v, preemption %v / %v, SIGKILL → stale VIP flagged %v (grace 3s included)",
		ms(electedState), ms(elected), ms(stoppedState), ms(stopped), ms(preemptedState), ms(preempted), ms(crashed))
	d.stop(t)
}
