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
	"github.com/lvsmon/lvsmon/internal/hblab"
	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/selfcheck"
)

// TestHeartbeatHandOver: on a real heartbeat pair (haresources,
// auto_failback on), the master's self check fails → lvsmon runs
// hb_standby all → b takes the VIP; it passes again → hb_takeover local
// → the VIP comes back to a.
func TestHeartbeatHandOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, heartbeat)")
	}
	ctx, lab := netlab.UpForTest(t, 3*time.Minute, hblab.Up, func(lab *hblab.Lab) {
		for _, n := range hblab.Nodes {
			t.Logf("heartbeat log of %s:\n%s", n, netlab.Tail(lab.LogFile(n), 40))
		}
	})
	for _, n := range []string{"b", "a"} {
		if err := lab.Start(n); err != nil {
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
	wait("a", true, 60*time.Second)
	wait("b", false, 5*time.Second)
	// heartbeat's tools, run inside node a (its mounts, name, network).
	dir := t.TempDir()
	tool := func(name string) string {
		p := filepath.Join(dir, name)
		body := fmt.Sprintf("#!/bin/sh\nexport PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LC_ALL=C\nexec nsenter -t %d -m -u -n -p /usr/share/heartbeat/%s \"$@\"\n",
			lab.HolderPID("a"), name)
		if err := os.WriteFile(p, []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	svc := &port{t: t, ns: lab.NetNS("a"), addr: netip.AddrPortFrom(lab.Addr("a"), 2222)}
	svc.open()
	defer svc.close()
	rec := newRecorder()
	r := selfcheck.New(selfcheck.Options{Checks: []selfcheck.Check{tcpCheck("port 2222", lab.NetNS("a"), svc.addr, nil)},
		Actions: []selfcheck.Action{selfcheck.Heartbeat{Standby: tool("hb_standby"), Takeover: tool("hb_takeover"), Resources: "all",
			Failback: true, Timeout: 30 * time.Second}}, Event: rec.add})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	time.Sleep(2 * interval)

	t0 := time.Now()
	svc.close()
	ev := rec.wait(t, events.HandOver, time.Duration(fall+1)*interval+40*time.Second)
	detect := ev.at.Sub(t0)
	wait("b", true, 30*time.Second)
	wait("a", false, 10*time.Second)
	total := time.Since(t0)
	if v := r.Status(); v.ActionError != "" {
		t.Errorf("action error: %s", v.ActionError)
	}
	t.Logf("MEASURED heartbeat hand-over: port closed → hb_standby done %v, → VIP on b %v later, total %v",
		detect.Round(time.Millisecond), (total - detect).Round(time.Millisecond), total.Round(time.Millisecond))

	t1 := time.Now()
	svc.open()
	ev = rec.wait(t, events.HandBack, time.Duration(rise+1)*interval+40*time.Second)
	back := ev.at.Sub(t1)
	wait("a", true, 30*time.Second)
	wait("b", false, 10*time.Second)
	total = time.Since(t1)
	if v := r.Status(); v.ActionError != "" {
		t.Errorf("action error: %s", v.ActionError)
	}
	t.Logf("MEASURED heartbeat failback: port open → hb_takeover local done %v, → VIP back on a %v later, total %v",
		back.Round(time.Millisecond), (total - back).Round(time.Millisecond), total.Round(time.Millisecond))
}
