package sources

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

var (
	mcast4 = netip.MustParseAddr("224.0.0.18")
	mcast6 = netip.MustParseAddr("ff02::12")
)

// ipv4Packet wraps payload in an IPv4 header (TTL 255, protocol 112).
func ipv4Packet(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, 20, 20+len(payload))
	b[0], b[1] = 0x45, 0xc0
	binary.BigEndian.PutUint16(b[2:], uint16(20+len(payload)))
	b[8], b[9] = 255, protoVRRP
	copy(b[12:16], src.AsSlice())
	copy(b[16:20], dst.AsSlice())
	var sum uint32
	for i := 0; i < 20; i += 2 {
		sum += uint32(binary.BigEndian.Uint16(b[i:]))
	}
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(b[10:], ^uint16(sum))
	return append(b, payload...)
}

// ipv6Packet wraps payload in an IPv6 header (hop limit 255, next header
// 112).
func ipv6Packet(src, dst netip.Addr, payload []byte) []byte {
	b := make([]byte, 40, 40+len(payload))
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:], uint16(len(payload)))
	b[6], b[7] = protoVRRP, 255
	copy(b[8:24], src.AsSlice())
	copy(b[24:40], dst.AsSlice())
	return append(b, payload...)
}

// advert builds a complete IP packet carrying a VRRP advert from src.
func advert(t *testing.T, version, vrid, prio uint8, interval time.Duration, src netip.Addr) []byte {
	t.Helper()
	a := ha.Advert{Version: version, VRID: vrid, Priority: prio, Interval: interval}
	dst := mcast4
	if src.Is6() {
		dst = mcast6
		a.Addrs = []netip.Addr{netip.MustParseAddr("2001:db8:51::100")}
	} else {
		a.Addrs = []netip.Addr{netip.MustParseAddr("198.51.100.100")}
	}
	if version == 2 {
		a.AuthType = 1
		a.Auth = ha.AuthData{'p', 'w'}
	}
	p := ha.EncodeVRRP(a, src, dst)
	if p == nil {
		t.Fatalf("cannot encode %+v", a)
	}
	if src.Is6() {
		return ipv6Packet(src, dst, p)
	}
	return ipv4Packet(src, dst, p)
}

// masters renders a router's masters as "addr/prio[/local]".
func masters(rt ha.RouterReport) string {
	var s []string
	for _, m := range rt.Masters {
		x := m.Addr.String() + "/" + strconv.Itoa(m.Priority)
		if m.Local {
			x += "/local"
		}
		s = append(s, x)
	}
	return strings.Join(s, " ")
}

func TestDecodeIP(t *testing.T) {
	s4, d4 := netip.MustParseAddr("198.51.100.1"), mcast4
	s6 := netip.MustParseAddr("fe80::1")
	payload := []byte{0x21, 1, 2, 3, 4, 5, 6, 7}
	v4 := ipv4Packet(s4, d4, payload)
	padded := append(append([]byte(nil), v4...), 0, 0, 0, 0, 0, 0) // Ethernet padding
	withOpts := func() []byte {
		b := make([]byte, 24)
		copy(b, v4[:20])
		b[0] = 0x46
		binary.BigEndian.PutUint16(b[2:], uint16(24+len(payload)))
		return append(b, payload...)
	}()
	mod := func(b []byte, f func([]byte)) []byte {
		c := append([]byte(nil), b...)
		f(c)
		return c
	}
	v6 := ipv6Packet(s6, mcast6, payload)
	tests := []struct {
		name    string
		pkt     []byte
		want    []byte
		wantErr string // "" ok; "skip" errNotVRRP
	}{
		{"IPv4", v4, payload, ""},
		{"IPv4 with Ethernet padding", padded, payload, ""},
		{"IPv4 with options", withOpts, payload, ""},
		{"empty", nil, nil, "empty"},
		{"IPv4 shorter than a header", v4[:19], nil, "shorter than its header"},
		{"IPv4 header length below 20", mod(v4, func(b []byte) { b[0] = 0x44 }), nil, "header length 16"},
		{"IPv4 header length past the end", mod(v4[:24], func(b []byte) { b[0] = 0x4f }), nil, "header length 60"},
		{"IPv4 total length past the end", mod(v4, func(b []byte) { b[3] += 1 }), nil, "total length"},
		{"IPv4 total length below the header", mod(v4, func(b []byte) { b[2], b[3] = 0, 10 }), nil, "total length"},
		{"IPv4 fragment offset", mod(v4, func(b []byte) { b[7] = 1 }), nil, "fragment"},
		{"IPv4 more fragments", mod(v4, func(b []byte) { b[6] = 0x20 }), nil, "fragment"},
		{"IPv4 don't fragment is fine", mod(v4, func(b []byte) { b[6] = 0x40 }), payload, ""},
		{"IPv4 other protocol", mod(v4, func(b []byte) { b[9] = 6 }), nil, "skip"},
		{"IPv6", v6, payload, ""},
		{"IPv6 with trailing bytes", append(append([]byte(nil), v6...), 0, 0), payload, ""},
		{"IPv6 shorter than a header", v6[:39], nil, "shorter than its header"},
		{"IPv6 payload length past the end", mod(v6, func(b []byte) { b[5] += 1 }), nil, "payload length"},
		{"IPv6 extension header", mod(v6, func(b []byte) { b[6] = 0 }), nil, "skip"},
		{"IP version 5", mod(v4, func(b []byte) { b[0] = 0x55 }), nil, "skip"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, src, dst, err := decodeIP(tt.pkt)
			switch {
			case tt.wantErr == "skip":
				if !errors.Is(err, errNotVRRP) {
					t.Errorf("err %v, want errNotVRRP", err)
				}
			case tt.wantErr != "":
				if err == nil || errors.Is(err, errNotVRRP) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err %v, want one with %q", err, tt.wantErr)
				}
			default:
				if err != nil || string(got) != string(tt.want) {
					t.Errorf("payload %x, err %v; want %x", got, err, tt.want)
				}
				if want := s4; tt.pkt[0]>>4 == 6 {
					if src != s6 || dst != mcast6 {
						t.Errorf("addresses %v > %v", src, dst)
					}
				} else if src != want || dst != d4 {
					t.Errorf("addresses %v > %v", src, dst)
				}
			}
		})
	}
}

func TestMasterDown(t *testing.T) {
	tests := []struct {
		interval time.Duration
		prio     uint8
		want     time.Duration
	}{
		{time.Second, 100, 3*time.Second + 609375*time.Microsecond}, // (256-100)/256 s
		{time.Second, 150, 3*time.Second + 414062500*time.Nanosecond},
		{time.Second, 255, 3*time.Second + 3906250*time.Nanosecond},
		{100 * time.Millisecond, 200, 300*time.Millisecond + 21875*time.Microsecond},
	}
	for _, tt := range tests {
		if got := masterDown(tt.interval, tt.prio); got != tt.want {
			t.Errorf("masterDown(%v, %d) = %v, want %v", tt.interval, tt.prio, got, tt.want)
		}
	}
}

// TestTracker drives the master table with explicit times.
func TestTracker(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	a1 := netip.MustParseAddr("198.51.100.1")
	a2 := netip.MustParseAddr("198.51.100.2")
	a6 := netip.MustParseAddr("fe80::1")
	adv := func(prio uint8) ha.Advert {
		return ha.Advert{Version: 2, VRID: 7, Priority: prio, Interval: time.Second}
	}
	k4 := routerKey{vrid: 7, version: 2}
	k6 := routerKey{vrid: 7, version: 3, v6: true}
	down := masterDown(time.Second, 100)

	tr := &tracker{}
	tr.observe(k4, a1, adv(0), false, t0) // resigning unknown master: nothing
	if s := tr.snapshot(t0); len(s) != 0 {
		t.Fatalf("snapshot after a lone priority 0: %+v", s)
	}
	tr.observe(k4, a1, adv(100), true, t0)
	// .2 outranks .1 (same priority, higher address), but .1 goes on
	// advertising: a split brain, both stay masters.
	tr.observe(k4, a2, adv(100), false, t0.Add(2*time.Second))
	tr.observe(k4, a1, adv(100), false, t0.Add(2*time.Second)) // same master, seen coming in
	tr.observe(k6, a6, ha.Advert{Version: 3, VRID: 7, Priority: 100, Interval: time.Second}, false, t0)

	s := tr.snapshot(t0.Add(2 * time.Second))
	if len(s) != 2 || s[0].Version != 2 || s[1].Version != 3 {
		t.Fatalf("routers %+v", s)
	}
	if got := masters(s[0]); got != "198.51.100.1/100/local 198.51.100.2/100" {
		t.Errorf("masters %q (same priority: by address; .1 still local)", got)
	}
	if !s[0].Masters[0].LastSeen.Equal(t0.Add(2 * time.Second)) {
		t.Errorf("LastSeen %v", s[0].Masters[0].LastSeen)
	}
	// The IPv6 router expires at t0+down; .1 stops being local then too.
	s = tr.snapshot(t0.Add(down))
	if len(s) != 2 || !s[0].Masters[0].Local {
		t.Errorf("at exactly master-down: %+v", s)
	}
	s = tr.snapshot(t0.Add(down + 1))
	if len(s) != 1 || s[0].Masters[0].Local || len(s[0].Masters) != 2 {
		t.Errorf("just past master-down: %+v", s)
	}
	// Priority 0 drops one master at once.
	tr.observe(k4, a2, adv(0), false, t0.Add(4*time.Second))
	if s = tr.snapshot(t0.Add(4 * time.Second)); len(s) != 1 || masters(s[0]) != "198.51.100.1/100" {
		t.Errorf("after resign: %+v", s)
	}
	// And silence drops the last one.
	if s = tr.snapshot(t0.Add(2*time.Second + down + 1)); len(s) != 0 {
		t.Errorf("after silence: %+v", s)
	}
	if len(tr.routers) != 0 {
		t.Errorf("expired routers still held: %v", tr.routers)
	}
}

// A master that hears a higher-priority advert steps down at once: it is
// believed only until its next advert is due, so a preemption does not
// look like two masters for the whole master-down interval; one that goes
// on advertising stays (a split brain).
func TestTrackerPreemption(t *testing.T) {
	t0 := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)
	a, b := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("198.51.100.12")
	k := routerKey{vrid: 51, version: 2}
	adv := func(prio uint8) ha.Advert {
		return ha.Advert{Version: 2, VRID: 51, Priority: prio, Interval: time.Second}
	}
	for _, tc := range []struct {
		name       string
		bGoesOn    bool
		at         time.Duration
		wantMaster string
	}{
		{"preempted master still believed until its next advert is due", false, 1500 * time.Millisecond, "198.51.100.11/150 198.51.100.12/100"},
		{"preempted master gone after 1.5 intervals", false, 1501 * time.Millisecond, "198.51.100.11/150"},
		{"split brain: both stay", true, 3500 * time.Millisecond, "198.51.100.11/150 198.51.100.12/100"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr := &tracker{}
			tr.observe(k, b, adv(100), false, t0)
			tr.observe(k, a, adv(150), false, t0.Add(100*time.Millisecond))
			for i := time.Duration(1); tc.bGoesOn && i <= 3; i++ {
				tr.observe(k, b, adv(100), false, t0.Add(i*time.Second))
				tr.observe(k, a, adv(150), false, t0.Add(i*time.Second+100*time.Millisecond))
			}
			s := tr.snapshot(t0.Add(tc.at))
			if len(s) != 1 || masters(s[0]) != tc.wantMaster {
				t.Fatalf("masters at %v: %+v, want %s", tc.at, s, tc.wantMaster)
			}
		})
	}
}

func TestSameRouters(t *testing.T) {
	a := []ha.RouterReport{{VRID: 1, Version: 2, Masters: []ha.WireMaster{{Addr: netip.MustParseAddr("198.51.100.1"), Priority: 100, Interval: time.Second, LastSeen: time.Unix(1, 0)}}}}
	b := cloneReport(ha.Report{Routers: a}).Routers
	b[0].Masters[0].LastSeen = time.Unix(2, 0)
	if !sameRouters(a, b) {
		t.Error("a new LastSeen counted as a change")
	}
	b[0].Masters[0].Local = true
	if sameRouters(a, b) {
		t.Error("Local change not seen")
	}
	if sameRouters(a, nil) || !sameRouters(nil, []ha.RouterReport{}) {
		t.Error("empty vs non-empty")
	}
}
