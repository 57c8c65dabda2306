//go:build lab

// Lab tier (README, Tests): VRRP adverts on the wire between two network
// namespaces (AF_PACKET); needs root.

package sources

import (
	"encoding/binary"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/netns"
)

// sender puts raw IP packets on an interface of a namespace, as a VRRP
// router would, with any source address (several routers from one place).
type sender struct {
	fd      int
	ifindex int
}

func newSender(t *testing.T, nsPath, ifname string) *sender {
	t.Helper()
	s := &sender{fd: -1}
	err := netns.Do(nsPath, func() error {
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

func (c *fakeClock) now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

func (c *fakeClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func router(r ha.Report, vrid, version int, v6 bool) (ha.RouterReport, bool) {
	for _, rt := range r.Routers {
		if rt.VRID == vrid && rt.Version == version && len(rt.Masters) > 0 && rt.Masters[0].Addr.Is6() == v6 {
			return rt, true
		}
	}
	return ha.RouterReport{}, false
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
