//go:build lab

package selfcheck_test

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/pcmklab"
	"github.com/lvsmon/lvsmon/selfcheck"
)

// avoidSick is the location rule README shows: a node whose lvsmon-sick
// attribute is 1 scores -200 for the VIP, more than the +100 that
// prefers pc-a, so the VIP goes to a healthy peer (a peer as sick, or
// offline, does not take it: the score is finite).
var avoidSick = fmt.Sprintf(`<rsc_location id="%[1]s-avoid-sick" rsc="%[1]s">
  <rule id="%[1]s-avoid-sick-rule" score="-200">
    <expression id="%[1]s-avoid-sick-expr" attribute="lvsmon-sick" operation="eq" value="1"/>
  </rule>
</rsc_location>`, pcmklab.Resource)

// TestPacemakerHandOver: on a real corosync + pacemaker cluster with the
// location rule, the master's self check fails → lvsmon sets
// lvsmon-sick=1 on pc-a → pacemaker moves the VIP to pc-b; it passes
// again → lvsmon-sick=0 → the VIP goes back to pc-a (its preference,
// no stickiness).
func TestPacemakerHandOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, corosync, pacemaker)")
	}
	ctx, lab := netlab.UpForTest(t, 4*time.Minute, pcmklab.Up, func(lab *pcmklab.Lab) {
		for _, n := range pcmklab.Nodes {
			t.Logf("pacemaker log of %s:\n%s", n, netlab.Tail(lab.LogFile(n), 30))
		}
	})
	for _, n := range pcmklab.Nodes {
		if err := lab.Start(ctx, n); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(node string, want bool, within time.Duration) {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		if _, err := lab.WaitVIP(wctx, node, want); err != nil {
			t.Fatal(err)
		}
	}
	wait("a", true, 90*time.Second)
	if out, err := lab.Exec(ctx, "a", "cibadmin", "--create", "-o", "constraints", "-X", avoidSick); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	wrapper := filepath.Join(t.TempDir(), "crm_attribute")
	body := fmt.Sprintf("#!/bin/sh\nexport LC_ALL=C PCMK_logfile=/var/log/pacemaker/pacemaker.log PCMK_logfacility=none\nexec nsenter -t %d -m -u -n -p crm_attribute \"$@\"\n", lab.HolderPID("a"))
	if err := os.WriteFile(wrapper, []byte(body), 0o755); err != nil {
		t.Fatal(err)
	}
	svc := &port{t: t, ns: lab.NetNS("a"), addr: netip.AddrPortFrom(lab.Addr("a"), 2222)}
	svc.open()
	defer svc.close()
	rec := newRecorder()
	r := selfcheck.New(selfcheck.Options{Checks: []selfcheck.Check{tcpCheck("port 2222", lab.NetNS("a"), svc.addr, nil)},
		Actions: []selfcheck.Action{selfcheck.Pacemaker{CrmAttribute: wrapper, Attribute: "lvsmon-sick", Node: pcmklab.NodeName("a"), Timeout: 30 * time.Second}},
		Event:   rec.add})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	time.Sleep(2 * interval)
	wait("a", true, 5*time.Second)

	t0 := time.Now()
	svc.close()
	ev := rec.wait(t, events.HandOver, time.Duration(fall+1)*interval+40*time.Second)
	detect := ev.at.Sub(t0)
	if v := r.Status(); v.ActionError != "" {
		t.Fatalf("action error: %s", v.ActionError)
	}
	wait("b", true, 30*time.Second)
	wait("a", false, 10*time.Second)
	total := time.Since(t0)
	t.Logf("MEASURED pacemaker hand-over: port closed → crm_attribute done %v, → VIP on pc-b %v later, total %v",
		detect.Round(time.Millisecond), (total - detect).Round(time.Millisecond), total.Round(time.Millisecond))

	t1 := time.Now()
	svc.open()
	ev = rec.wait(t, events.HandBack, time.Duration(rise+1)*interval+40*time.Second)
	back := ev.at.Sub(t1)
	if v := r.Status(); v.ActionError != "" {
		t.Fatalf("action error: %s", v.ActionError)
	}
	wait("a", true, 30*time.Second)
	wait("b", false, 10*time.Second)
	total = time.Since(t1)
	t.Logf("MEASURED pacemaker failback: port open → crm_attribute done %v, → VIP back on pc-a %v later, total %v",
		back.Round(time.Millisecond), (total - back).Round(time.Millisecond), total.Round(time.Millisecond))
}
