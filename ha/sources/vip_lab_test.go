//go:build lab

// Lab tier (README, Tests): addresses come and go in a network namespace
// of the test's own; needs root.

package sources

import (
	"net/netip"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// TestVIPNamespace watches a private namespace while addresses come and
// go. Interval is an hour, so every report after the first comes from
// the address subscription, not from polling.
func TestVIPNamespace(t *testing.T) {
	ns, path := newNetNS(t, "vip")
	ipCmd(t, "-n", ns, "link", "add", "v0", "type", "veth", "peer", "name", "v1")
	ipCmd(t, "-n", ns, "link", "set", "v0", "up")
	ipCmd(t, "-n", ns, "link", "set", "v1", "up")

	v4 := netip.MustParseAddr("198.51.100.100")
	v6 := netip.MustParseAddr("2001:db8:51::100")
	log, _ := testLogger(t)
	src := &VIP{Addrs: []netip.Addr{v4, v6}, NetNS: path, Interval: time.Hour, Log: log}
	rec, _ := runSource(t, src.Run)

	_, first := rec.waitFor(t, 0, "the first report", func(ha.Report) bool { return true })
	if first.Err != nil || !first.Running || first.Source != ha.SourceVIP || len(first.VIPs) != 2 ||
		first.VIPs[0].Addr != v4 || first.VIPs[1].Addr != v6 || first.VIPs[0].Present || first.VIPs[1].Present {
		t.Fatalf("first report: %s", describe(first.Report))
	}

	steps := []struct {
		name    string
		ip      []string
		addr    netip.Addr
		present bool
		iface   string
		after   []string // a change the source must not report, made first
	}{
		{name: "add IPv4 VIP", ip: []string{"addr", "add", "198.51.100.100/24", "dev", "v0", "label", "v0:vip"}, addr: v4, present: true, iface: "v0"},
		{name: "add IPv6 VIP", ip: []string{"addr", "add", "2001:db8:51::100/64", "dev", "v1", "nodad"}, addr: v6, present: true, iface: "v1"},
		{name: "delete IPv4 VIP", ip: []string{"addr", "del", "198.51.100.100/24", "dev", "v0"}, addr: v4, present: false,
			after: []string{"addr", "add", "198.51.100.7/24", "dev", "v1"}},
	}
	from := 1
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			if s.after != nil {
				// An address that is not a VIP changes nothing the
				// source reports, so it must not cause a report.
				ipCmd(t, append([]string{"-n", ns}, s.after...)...)
			}
			start := time.Now()
			ipCmd(t, append([]string{"-n", ns}, s.ip...)...)
			i, got := rec.waitFor(t, from, s.name, func(r ha.Report) bool {
				p, ok := vipState(r, s.addr)
				return ok && p.Present == s.present
			})
			if i != from {
				t.Errorf("%d reports before the change, want none (Interval is an hour)", i-from)
			}
			from = i + 1
			t.Logf("%s -> report: %v", s.name, got.At.Sub(start))
			p, _ := vipState(got.Report, s.addr)
			if p.Interface != s.iface || got.Err != nil || !got.Running {
				t.Errorf("report %s, want %s on %q", describe(got.Report), s.addr, s.iface)
			}
		})
	}
}
