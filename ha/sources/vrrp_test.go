package sources

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

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

// sender puts raw IP packets on an interface of a namespace, as a VRRP
// router would, with any source address (several routers from one place).
type sender struct {
	fd      int
	ifindex int
}

func newSender(t *testing.T, nsPath, ifname string) *sender {
	t.Helper()
	s := &sender{fd: -1}
	err := inNetNS(nsPath, func() error {
		ifi, err := net.InterfaceByName(ifname)
		if err != nil {
			return err
		}
		s.ifindex = ifi.Index
		s.fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		return err
	})
	if err != nil {
		t.Fatalf("sender on %s in %s: %v", ifname, nsPath, err)
	}
	t.Cleanup(func() { unix.Close(s.fd) })
	return s
}

// send sends pkt to the VRRP multicast MAC of its IP version.
func (s *sender) send(t *testing.T, pkt []byte) {
	t.Helper()
	sa := &unix.SockaddrLinklayer{Ifindex: s.ifindex, Halen: 6, Protocol: htons(unix.ETH_P_IP)}
	copy(sa.Addr[:], []byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0x12})
	if pkt[0]>>4 == 6 {
		sa.Protocol = htons(unix.ETH_P_IPV6)
		copy(sa.Addr[:], []byte{0x33, 0x33, 0x00, 0x00, 0x00, 0x12})
	}
	if err := unix.Sendto(s.fd, pkt, 0, sa); err != nil {
		t.Fatalf("send: %v", err)
	}
}

// fakeClock is real time plus an offset the test can move forward.
type fakeClock struct{ off atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func router(r ha.Report, vrid, version int, v6 bool) (ha.RouterReport, bool) {
	for _, rt := range r.Routers {
		if rt.VRID == vrid && rt.Version == version && len(rt.Masters) > 0 && rt.Masters[0].Addr.Is6() == v6 {
			return rt, true
		}
	}
	return ha.RouterReport{}, false
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

// TestVRRPWire sends adverts over veth pairs between two namespaces and
// checks what a source in the observing namespace reports.
func TestVRRPWire(t *testing.T) {
	obs, obsPath := newNetNS(t, "vrrp-o")
	peer, peerPath := newNetNS(t, "vrrp-p")
	for _, dev := range []string{"eth0", "eth1"} {
		ipCmd(t, "-n", obs, "link", "add", dev, "type", "veth", "peer", "name", dev, "netns", peer)
		ipCmd(t, "-n", obs, "link", "set", dev, "up")
		ipCmd(t, "-n", peer, "link", "set", dev, "up")
	}
	ipCmd(t, "-n", obs, "link", "set", "lo", "up")
	peer0 := newSender(t, peerPath, "eth0")
	peer1 := newSender(t, peerPath, "eth1")
	self0 := newSender(t, obsPath, "eth0")

	clk := &fakeClock{}
	log, logBuf := testLogger(t)
	src := &VRRP{NetNS: obsPath, Log: log, now: clk.now}
	rec, _ := runSource(t, src.Run)
	only1 := &VRRP{NetNS: obsPath, Interface: "eth1"}
	rec1, _ := runSource(t, only1.Run)
	// Adverts sent before the sockets exist would be lost.
	rec.waitFor(t, 0, "the first report", func(ha.Report) bool { return true })
	rec1.waitFor(t, 0, "the first report", func(ha.Report) bool { return true })

	a1 := netip.MustParseAddr("198.51.100.1")
	a2 := netip.MustParseAddr("198.51.100.2")
	a3 := netip.MustParseAddr("198.51.100.3")
	a4 := netip.MustParseAddr("198.51.100.4")
	a5 := netip.MustParseAddr("198.51.100.5")
	ll := netip.MustParseAddr("fe80::1")

	// Broken variants of a valid advert.
	good := advert(t, 2, 60, 100, time.Second, a1)
	trunc := ipv4Packet(a1, mcast4, good[20:len(good)-4])
	badSum := append([]byte(nil), good...)
	badSum[len(badSum)-1] ^= 0xff
	longTotal := append([]byte(nil), good...)
	binary.BigEndian.PutUint16(longTotal[2:], uint16(len(good)+10))
	frag := append([]byte(nil), good...)
	frag[6] = 0x20 // more fragments
	v6good := advert(t, 3, 61, 100, time.Second, ll)
	v6long := append([]byte(nil), v6good...)
	binary.BigEndian.PutUint16(v6long[4:], uint16(len(v6good)))

	steps := []struct {
		name string
		send func()
		want func(ha.Report) bool
	}{
		{"VRRPv2 master", func() { peer0.send(t, advert(t, 2, 10, 100, time.Second, a1)) }, func(r ha.Report) bool {
			rt, ok := router(r, 10, 2, false)
			return ok && masters(rt) == "198.51.100.1/100" && rt.Masters[0].Interval == time.Second
		}},
		{"a second master (split brain), listed first", func() { peer0.send(t, advert(t, 2, 10, 120, time.Second, a3)) }, func(r ha.Report) bool {
			rt, ok := router(r, 10, 2, false)
			return ok && masters(rt) == "198.51.100.3/120 198.51.100.1/100"
		}},
		{"priority 0 resigns at once", func() { peer0.send(t, advert(t, 2, 10, 0, time.Second, a3)) }, func(r ha.Report) bool {
			rt, ok := router(r, 10, 2, false)
			return ok && masters(rt) == "198.51.100.1/100"
		}},
		{"VRRPv3 over IPv6 and IPv4, same VRID", func() {
			peer0.send(t, advert(t, 3, 20, 200, 500*time.Millisecond, ll))
			peer0.send(t, advert(t, 3, 20, 90, 500*time.Millisecond, a4))
		}, func(r ha.Report) bool {
			r6, ok6 := router(r, 20, 3, true)
			r4, ok4 := router(r, 20, 3, false)
			return ok6 && ok4 && masters(r6) == "fe80::1/200" && masters(r4) == "198.51.100.4/90" &&
				r6.Masters[0].Interval == 500*time.Millisecond
		}},
		{"one master seen on two interfaces", func() {
			peer0.send(t, advert(t, 2, 50, 100, time.Second, a5))
			peer1.send(t, advert(t, 2, 50, 100, time.Second, a5))
			peer1.send(t, advert(t, 2, 51, 100, time.Second, a5)) // marker: both were read
		}, func(r ha.Report) bool {
			rt, ok := router(r, 50, 2, false)
			_, marker := router(r, 51, 2, false)
			return ok && marker && masters(rt) == "198.51.100.5/100"
		}},
		{"invalid packets are counted, not fatal", func() {
			for _, p := range [][]byte{trunc, badSum, longTotal, frag, v6long, good[:10]} {
				peer0.send(t, p)
			}
			peer0.send(t, advert(t, 2, 30, 100, time.Second, a1)) // then a valid one
		}, func(r ha.Report) bool {
			_, ok := router(r, 30, 2, false)
			return ok
		}},
		{"this host's own adverts are Local", func() { self0.send(t, advert(t, 2, 40, 150, time.Second, a2)) }, func(r ha.Report) bool {
			rt, ok := router(r, 40, 2, false)
			return ok && masters(rt) == "198.51.100.2/150/local"
		}},
	}
	from := 1
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			start := time.Now()
			s.send()
			i, got := rec.waitFor(t, from, s.name, s.want)
			from = i + 1
			t.Logf("sent -> reported: %v: %s", got.At.Sub(start), describe(got.Report))
			if got.Err != nil || !got.Running || got.Source != ha.SourceVRRP {
				t.Errorf("report %s", describe(got.Report))
			}
		})
	}
	if n := src.Invalid(); n != 6 {
		t.Errorf("Invalid() = %d, want 6", n)
	}
	if c := strings.Count(logBuf.String(), "invalid VRRP packet"); c != 1 {
		t.Errorf("%d log lines for invalid packets, want 1 (once a minute)", c)
	}
	if !strings.Contains(logBuf.String(), "src=198.51.100.1") {
		t.Errorf("invalid-packet log does not name the source:\n%s", logBuf.String())
	}

	// Silence: a minute later (on the source's clock) every master has
	// expired, and the once-a-second report says so.
	t.Run("masters expire", func(t *testing.T) {
		clk.advance(time.Minute)
		start := time.Now()
		_, got := rec.waitFor(t, from, "no routers", func(r ha.Report) bool { return len(r.Routers) == 0 })
		t.Logf("clock moved -> empty report: %v", got.At.Sub(start))
	})

	// The source bound to eth1 saw what came on eth1 only.
	t.Run("Interface", func(t *testing.T) {
		rec1.waitFor(t, 0, "router 51 from eth1", func(r ha.Report) bool { _, ok := router(r, 51, 2, false); return ok })
		for _, r := range rec1.all() {
			for _, rt := range r.Routers {
				if rt.VRID != 50 && rt.VRID != 51 {
					t.Errorf("eth1-only source saw VRID %d: %s", rt.VRID, describe(r.Report))
				}
			}
		}
		if only1.Invalid() != 0 {
			t.Errorf("eth1-only source counted %d invalid packets", only1.Invalid())
		}
	})
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
