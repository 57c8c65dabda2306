package sources

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

func vipState(r ha.Report, a netip.Addr) (ha.VIPPresence, bool) {
	for _, v := range r.VIPs {
		if v.Addr == a {
			return v, true
		}
	}
	return ha.VIPPresence{}, false
}

// TestVIPOwnNamespace reads the caller's namespace (read only): loopback
// is there, a TEST-NET-2 address is not. A short Interval keeps reports
// coming without changes.
func TestVIPOwnNamespace(t *testing.T) {
	lo := netip.MustParseAddr("127.0.0.1")
	absent := netip.MustParseAddr("198.51.100.77")
	src := &VIP{Addrs: []netip.Addr{lo, absent}, Interval: 50 * time.Millisecond}
	rec, stop := runSource(t, src.Run)
	rec.waitFor(t, 2, "a third report", func(ha.Report) bool { return true })
	stop()
	for _, r := range rec.all() {
		p, _ := vipState(r.Report, lo)
		q, _ := vipState(r.Report, absent)
		if r.Err != nil || !p.Present || p.Interface != "lo" || q.Present {
			t.Errorf("report %s", describe(r.Report))
		}
	}
}

// TestVIPErrors: bad options fail Run; a namespace that does not exist is
// an Err report, retried until ctx ends.
func TestVIPErrors(t *testing.T) {
	if err := (&VIP{}).Run(context.Background(), func(ha.Report) {}); err == nil {
		t.Error("Run without Addrs returned nil")
	}
	if err := (&VIP{Addrs: []netip.Addr{{}}}).Run(context.Background(), func(ha.Report) {}); err == nil {
		t.Error("Run with a zero address returned nil")
	}
	src := &VIP{Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}, NetNS: "/run/netns/lvsmon-test-does-not-exist", Interval: 50 * time.Millisecond}
	rec, stop := runSource(t, src.Run)
	_, got := rec.waitFor(t, 1, "a second (retried) report", func(ha.Report) bool { return true })
	stop()
	if got.Err == nil || !strings.Contains(got.Err.Error(), "vip: ") || !strings.Contains(got.Err.Error(), "lvsmon-test-does-not-exist") {
		t.Errorf("report %s, want an error naming the namespace", describe(got.Report))
	}
}
