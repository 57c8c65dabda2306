package main

import (
	"context"
	"net/netip"
	"time"

	"github.com/lvsmon/lvsmon/app"
	"github.com/lvsmon/lvsmon/ha"
)

// The demo director is the MASTER of a simulated keepalived pair. Late in
// each cycle its peer takes over for a while: at demoFailover the local
// keepalived "restarts" and the peer becomes master, but the VIP lingers
// here for demoStaleVIP (as after a crash), which lvsmon flags as a
// disagreement; at demoFailback the demo director preempts again.
const (
	demoFailover = 8*time.Minute + 30*time.Second
	demoStaleVIP = 10 * time.Second
	demoFailback = 9*time.Minute + 15*time.Second
)

var (
	demoVIP      = netip.MustParseAddr("198.51.100.10")
	demoSelf     = netip.MustParseAddr("198.51.100.2")
	demoPeer     = netip.MustParseAddr("198.51.100.3")
	demoInstance = "VI_DEMO"
)

// demoRoleAt is the simulated pair at offset t of the demo.
func demoRoleAt(t time.Duration, now time.Time) []ha.Report {
	t %= demoCycle
	master := t < demoFailover || t >= demoFailback
	vipHere := master || t < demoFailover+demoStaleVIP
	st, prio := ha.StateMaster, 150
	wm := ha.WireMaster{Addr: demoSelf, Priority: 150, Interval: time.Second, LastSeen: now, Local: true}
	if !master {
		st = ha.StateBackup
		wm = ha.WireMaster{Addr: demoPeer, Priority: 100, Interval: time.Second, LastSeen: now}
	}
	return []ha.Report{
		{Source: ha.SourceSimulated, Time: now, Running: true, Instances: []ha.InstanceReport{
			{Name: demoInstance, VRID: 51, State: st, Priority: prio, VIPs: []netip.Addr{demoVIP}}}},
		{Source: ha.SourceVIP, Time: now, Running: true, VIPs: []ha.VIPPresence{{Addr: demoVIP, Present: vipHere, Interface: "eth0"}}},
		{Source: ha.SourceVRRP, Time: now, Running: true, Routers: []ha.RouterReport{{VRID: 51, Version: 2, Masters: []ha.WireMaster{wm}}}},
	}
}

// demoRoleSources play demoRoleAt at the demo's speed.
func demoRoleSources(speed float64) []app.RoleSource {
	run := func(ctx context.Context, report func(ha.Report)) error {
		t := time.NewTicker(demoTick)
		defer t.Stop()
		var sim time.Duration
		for {
			for _, r := range demoRoleAt(sim, time.Now()) {
				report(r)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			sim += time.Duration(float64(demoTick) * speed)
		}
	}
	// One goroutine reports all three views, so they move together.
	return []app.RoleSource{{Name: ha.SourceSimulated, Run: run}, {Name: ha.SourceVIP}, {Name: ha.SourceVRRP}}
}
