package sources

import (
	"bytes"
	"net/netip"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// FuzzDecodeIP feeds arbitrary frames to the AF_PACKET decoder and, when
// it finds a VRRP payload, to the advert parser and the master tracker:
// nothing may panic, and a payload must lie inside the packet.
func FuzzDecodeIP(f *testing.F) {
	s4 := netip.MustParseAddr("198.51.100.1")
	adv := ha.EncodeVRRP(ha.Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}, s4, mcast4)
	f.Add(ipv4Packet(s4, mcast4, adv))
	adv6 := ha.EncodeVRRP(ha.Advert{Version: 3, VRID: 51, Priority: 100, Interval: time.Second, Addrs: []netip.Addr{netip.MustParseAddr("2001:db8::100")}}, netip.MustParseAddr("fe80::1"), mcast6)
	f.Add(ipv6Packet(netip.MustParseAddr("fe80::1"), mcast6, adv6))
	f.Add([]byte{0x45})
	f.Add([]byte{0x60, 0, 0, 0, 0, 0, 112, 255})
	now := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, pkt []byte) {
		payload, src, dst, err := decodeIP(pkt)
		if err != nil {
			return
		}
		if len(payload) > 0 && !bytes.Contains(pkt, payload) {
			t.Fatalf("payload %x is not inside the packet %x", payload, pkt)
		}
		a, err := ha.ParseVRRP(payload, src, dst)
		if err != nil {
			return
		}
		tr := &tracker{}
		tr.observe(routerKey{vrid: a.VRID, version: a.Version, v6: src.Is6()}, src, a, false, now)
		tr.snapshot(now.Add(time.Hour))
	})
}
