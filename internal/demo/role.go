package demo

import (
	"context"
	"net/netip"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// The demo director is the MASTER of a simulated keepalived pair. Late in
// each cycle its peer takes over for a while: at Failover the local
// keepalived "restarts" and the peer becomes master, but the VIP lingers
// here for staleVIP (as after a crash), which lvsmon flags as a
// disagreement; at failback the demo director preempts again.
const (
	Failover = 8*time.Minute + 30*time.Second
	staleVIP = 10 * time.Second
	failback = 9*time.Minute + 15*time.Second
)

var (
	vip      = netip.MustParseAddr("198.51.100.10")
	self     = netip.MustParseAddr("198.51.100.2")
	peer     = netip.MustParseAddr("198.51.100.3")
	instance = "VI_DEMO"
)

// RoleAt is the simulated pair at offset t of the demo.
func RoleAt(t time.Duration, now time.Time) []ha.Report {
	t %= Cycle
	master := t < Failover || t >= failback
	vipHere := master || t < Failover+staleVIP
	st, prio := ha.StateMaster, 150
	wm := ha.WireMaster{Addr: self, Priority: 150, Interval: time.Second, LastSeen: now, Local: true}
	if !master {
		st = ha.StateBackup
		wm = ha.WireMaster{Addr: peer, Priority: 100, Interval: time.Second, LastSeen: now}
	}
	return []ha.Report{
		{Source: ha.SourceSimulated, Time: now, Running: true, Instances: []ha.InstanceReport{
			{Name: instance, VRID: 51, State: st, Priority: prio, VIPs: []netip.Addr{vip}}}},
		{Source: ha.SourceVIP, Time: now, Running: true, VIPs: []ha.VIPPresence{{Addr: vip, Present: vipHere, Interface: "eth0"}}},
		{Source: ha.SourceVRRP, Time: now, Running: true, Routers: []ha.RouterReport{{VRID: 51, Version: 2, Masters: []ha.WireMaster{wm}}}},
	}
}

// RoleSource plays RoleAt at the demo's speed. It reports all three views
// (ha.SourceSimulated, ha.SourceVIP, ha.SourceVRRP) from one goroutine,
// so they move together.
func RoleSource(speed float64) func(ctx context.Context, report func(ha.Report)) error {
	return func(ctx context.Context, report func(ha.Report)) error {
		t := time.NewTicker(tick)
		defer t.Stop()
		var sim time.Duration
		for {
			for _, r := range RoleAt(sim, time.Now()) {
				report(r)
			}
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			sim += time.Duration(float64(tick) * speed)
		}
	}
}
