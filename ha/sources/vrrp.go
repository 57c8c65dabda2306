package sources

import (
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/netns"
)

// VRRP watches VRRP adverts (IP protocol 112, v2 and v3, IPv4 and IPv6) on
// the wire and reports who is advertising as master for each router.
//
// This view does not depend on keepalived at all, which makes it the
// check for a split brain: two sources advertising one VRID at once. It
// sees only masters, though, so it cannot tell a BACKUP from a FAULT or a
// stopped node.
//
// It uses an AF_PACKET socket for every protocol (ETH_P_ALL), which needs
// CAP_NET_RAW. A raw IP socket would be simpler, but it never sees the
// host's own adverts. The AF_PACKET socket sees them as PACKET_OUTGOING,
// and that is how a report can say that this director is a master
// (WireMaster.Local). A kernel filter passes only protocol 112, so the
// rest of a busy director's traffic never reaches this process.
//
// A master is kept for its master-down interval after its last advert:
// 3 × its advert interval + (256 − its priority)/256 × that interval. An
// advert with priority 0 (a master resigning on a clean stop) drops it at
// once. A crashed master just falls silent and expires. Masters are keyed
// by source address, so one router seen on several interfaces counts once.
// Routers are keyed by VRID, VRRP version and address family (IPv4 and
// IPv6 VRID 51 are two routers), so Routers may hold the same VRID twice,
// once per family.
type VRRP struct {
	// Interface limits the watch to one interface; "" watches all.
	Interface string
	// NetNS, when set, is the path of a network namespace
	// (/run/netns/NAME) whose interfaces are watched. The socket is
	// created there and stays there.
	NetNS string
	// Log receives the source's own log lines; nil drops them.
	Log *slog.Logger

	now     func() time.Time // for tests; nil means time.Now
	invalid atomic.Uint64
}

// Invalid returns how many protocol-112 packets could not be read: bad IP
// headers, fragments, and adverts that ha.ParseVRRP refused (truncated,
// bad checksum...). They are counted and logged at most once a minute;
// they never stop the source.
func (v *VRRP) Invalid() uint64 { return v.invalid.Load() }

func (v *VRRP) clock() time.Time {
	if v.now != nil {
		return v.now()
	}
	return time.Now()
}

// vrrpRetry is the wait before a failed socket is opened again.
const vrrpRetry = 5 * time.Second

// Run watches until ctx ends. It reports whenever the set of masters
// changes (a new master, one gone, a new priority, interval or
// locality), and once a second in any case. A socket that cannot be
// opened or read gives an Err report, and the socket is opened again
// after a few seconds.
func (v *VRRP) Run(ctx context.Context, report func(ha.Report)) error {
	log := logger(v.Log, ha.SourceVRRP)
	tr := &tracker{}
	for {
		err := v.session(ctx, log, tr, report)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("VRRP capture failed", "err", err)
		report(ha.Report{Source: ha.SourceVRRP, Time: v.clock(), Running: true, Err: err})
		if !sleepCtx(ctx, vrrpRetry) {
			return nil
		}
	}
}

func (v *VRRP) where() string {
	w := "all interfaces"
	if v.Interface != "" {
		w = "interface " + v.Interface
	}
	if v.NetNS != "" {
		w += " in network namespace " + v.NetNS
	}
	return w
}

// session captures on one socket until ctx ends (nil) or the socket fails.
func (v *VRRP) session(ctx context.Context, log *slog.Logger, tr *tracker, report func(ha.Report)) error {
	f, err := v.open()
	if err != nil {
		return fmt.Errorf("vrrp: AF_PACKET socket on %s: %w", v.where(), err)
	}
	defer f.Close()
	stop := context.AfterFunc(ctx, func() { f.Close() })
	defer stop()
	rc, err := f.SyscallConn()
	if err != nil {
		return fmt.Errorf("vrrp: AF_PACKET socket on %s: %w", v.where(), err)
	}
	log.Debug("capturing VRRP adverts", "on", v.where())

	var (
		buf      = make([]byte, 1<<16)
		sent     []ha.RouterReport
		rl       rateLimit
		nextTick = time.Now().Add(time.Second)
	)
	send := func(now time.Time, routers []ha.RouterReport) {
		sent = routers
		report(ha.Report{Source: ha.SourceVRRP, Time: now, Running: true, Routers: routers})
	}
	send(v.clock(), tr.snapshot(v.clock()))
	for {
		if err := f.SetReadDeadline(nextTick); err != nil && ctx.Err() == nil {
			return fmt.Errorf("vrrp: socket on %s: %w", v.where(), err)
		}
		n, sll, err := recvPacket(rc, buf)
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded):
		case err != nil:
			return fmt.Errorf("vrrp: reading from %s: %w", v.where(), err)
		default:
			now := v.clock()
			if v.handle(buf, n, sll, tr, now, log, &rl) {
				if routers := tr.snapshot(now); !sameRouters(routers, sent) {
					send(now, routers)
				}
			}
		}
		if !time.Now().Before(nextTick) {
			now := v.clock()
			send(now, tr.snapshot(now))
			nextTick = time.Now().Add(time.Second)
		}
	}
}

// handle reads one captured packet of n bytes (n may exceed len(buf) when
// the packet was cut) and feeds the tracker. It reports whether the packet
// was an advert.
func (v *VRRP) handle(buf []byte, n int, sll *unix.SockaddrLinklayer, tr *tracker, now time.Time, log *slog.Logger, rl *rateLimit) bool {
	var (
		adv      ha.Advert
		src, dst netip.Addr
		err      error
	)
	if n > len(buf) {
		err = fmt.Errorf("%d-byte packet does not fit the %d-byte buffer", n, len(buf))
	} else {
		var payload []byte
		payload, src, dst, err = decodeIP(buf[:n])
		if errors.Is(err, errNotVRRP) {
			return false
		}
		if err == nil {
			adv, err = ha.ParseVRRP(payload, src, dst)
		}
	}
	if err != nil {
		total := v.invalid.Add(1)
		if suppressed, ok := rl.allow(now); ok {
			ifindex := 0
			if sll != nil {
				ifindex = sll.Ifindex
			}
			log.Warn("invalid VRRP packet (logged at most once a minute)", "src", src, "ifindex", ifindex,
				"err", err, "invalid_total", total, "suppressed", suppressed)
		}
		return false
	}
	local := sll != nil && sll.Pkttype == unix.PACKET_OUTGOING
	tr.observe(routerKey{vrid: adv.VRID, version: adv.Version, v6: src.Is6()}, src, adv, local, now)
	return true
}

// rateLimit lets one log line through per minute and counts the rest.
type rateLimit struct {
	last       time.Time
	suppressed int
}

func (r *rateLimit) allow(now time.Time) (suppressed int, ok bool) {
	if !r.last.IsZero() && now.Sub(r.last) < time.Minute {
		r.suppressed++
		return 0, false
	}
	s := r.suppressed
	r.last, r.suppressed = now, 0
	return s, true
}

// recvPacket reads one packet through the runtime poller, so the read
// deadline and closing the file end it.
func recvPacket(rc syscall.RawConn, buf []byte) (int, *unix.SockaddrLinklayer, error) {
	var (
		n    int
		from *unix.SockaddrLinklayer
		rerr error
	)
	err := rc.Read(func(fd uintptr) bool {
		var sa unix.Sockaddr
		for {
			n, sa, rerr = unix.Recvfrom(int(fd), buf, unix.MSG_TRUNC)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			return false
		}
		from, _ = sa.(*unix.SockaddrLinklayer)
		return true
	})
	if err != nil {
		return 0, nil, err
	}
	return n, from, rerr
}

// vrrpFilter is a classic BPF program for an AF_PACKET SOCK_DGRAM socket,
// where a packet starts at its network header. It accepts IPv4 with
// protocol 112 and IPv6 with next header 112 (no extension headers, as
// VRRP never uses them), and drops the rest in the kernel.
var vrrpFilter = []bpf.Instruction{
	bpf.LoadAbsolute{Off: 0, Size: 1},                                    // 0: A = first byte
	bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: 4},                   // 1: A = IP version
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 4, SkipFalse: 2},                // 2: IPv4? else 5
	bpf.LoadAbsolute{Off: 9, Size: 1},                                    // 3: A = protocol
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 112, SkipTrue: 3, SkipFalse: 4}, // 4: 8 or 9
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 3},                // 5: IPv6? else 9
	bpf.LoadAbsolute{Off: 6, Size: 1},                                    // 6: A = next header
	bpf.JumpIf{Cond: bpf.JumpEqual, Val: 112, SkipFalse: 1},              // 7: 8 or 9
	bpf.RetConstant{Val: 1 << 16},                                        // 8: accept
	bpf.RetConstant{Val: 0},                                              // 9: drop
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// open creates the capture socket, in v.NetNS when set. The filter is
// attached before the socket is bound to a protocol: an AF_PACKET socket
// with protocol 0 receives nothing, so no unfiltered packet can be queued
// in between.
func (v *VRRP) open() (*os.File, error) {
	raw, err := bpf.Assemble(vrrpFilter)
	if err != nil {
		return nil, fmt.Errorf("assembling the packet filter: %w", err)
	}
	prog := make([]unix.SockFilter, len(raw))
	for i, ins := range raw {
		prog[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	var f *os.File
	err = netns.Do(v.NetNS, func() error {
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("socket: %w", err)
		}
		ok := false
		defer func() {
			if !ok {
				unix.Close(fd)
			}
		}()
		fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
		if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &fprog); err != nil {
			return fmt.Errorf("attaching the packet filter: %w", err)
		}
		ifindex := 0
		if v.Interface != "" {
			// Looked up here, on the thread that is in the namespace.
			ifi, err := net.InterfaceByName(v.Interface)
			if err != nil {
				return err
			}
			ifindex = ifi.Index
		}
		if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
			return fmt.Errorf("bind: %w", err)
		}
		f = os.NewFile(uintptr(fd), "vrrp-capture")
		if f == nil {
			return errors.New("bad socket descriptor")
		}
		ok = true
		return nil
	})
	return f, err
}

// errNotVRRP marks a packet the kernel filter should have dropped. It is
// skipped without being counted as invalid.
var errNotVRRP = errors.New("not a VRRP packet")

const protoVRRP = 112

// decodeIP checks the IP header at the start of pkt and returns the VRRP
// payload with the header's addresses. Trailing bytes past the IP length
// (Ethernet pads short frames to 60 bytes) are cut off.
func decodeIP(pkt []byte) (payload []byte, src, dst netip.Addr, err error) {
	if len(pkt) < 1 {
		return nil, src, dst, errors.New("empty packet")
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return nil, src, dst, fmt.Errorf("IPv4 packet of %d bytes, shorter than its header", len(pkt))
		}
		src, dst = netip.AddrFrom4([4]byte(pkt[12:16])), netip.AddrFrom4([4]byte(pkt[16:20]))
		if pkt[9] != protoVRRP {
			return nil, src, dst, errNotVRRP
		}
		ihl := int(pkt[0]&0x0f) * 4
		total := int(binary.BigEndian.Uint16(pkt[2:4]))
		switch {
		case ihl < 20 || ihl > len(pkt):
			return nil, src, dst, fmt.Errorf("IPv4 header length %d in a %d-byte packet", ihl, len(pkt))
		case total < ihl || total > len(pkt):
			return nil, src, dst, fmt.Errorf("IPv4 total length %d, header %d, captured %d", total, ihl, len(pkt))
		case binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0:
			return nil, src, dst, errors.New("IPv4 fragment (VRRP adverts are never fragmented)")
		}
		return pkt[ihl:total], src, dst, nil
	case 6:
		if len(pkt) < 40 {
			return nil, src, dst, fmt.Errorf("IPv6 packet of %d bytes, shorter than its header", len(pkt))
		}
		src, dst = netip.AddrFrom16([16]byte(pkt[8:24])), netip.AddrFrom16([16]byte(pkt[24:40]))
		if pkt[6] != protoVRRP {
			return nil, src, dst, errNotVRRP
		}
		plen := int(binary.BigEndian.Uint16(pkt[4:6]))
		if 40+plen > len(pkt) {
			return nil, src, dst, fmt.Errorf("IPv6 payload length %d, captured %d", plen, len(pkt)-40)
		}
		return pkt[40 : 40+plen], src, dst, nil
	default:
		return nil, src, dst, errNotVRRP
	}
}

// routerKey names one virtual router as the wire sees it.
type routerKey struct {
	vrid, version uint8
	v6            bool
}

// wireEntry is one master of one router.
type wireEntry struct {
	prio      uint8
	interval  time.Duration
	lastSeen  time.Time
	lastLocal time.Time // zero if never sent by this host
	// superseded: a higher-priority master advertised after this one's
	// last advert. A VRRP master hearing that steps down at once, so it
	// is believed only until its next advert is due (1.5 intervals), not
	// for the full master-down interval: otherwise every preemption would
	// look like two masters for 3.6 s. A master that keeps advertising
	// (a real split brain) stays.
	superseded bool
}

// outranks says whether an advert (prio, addr) beats a master (prio2,
// addr2) in VRRP's election: higher priority, then higher address.
func outranks(prio uint8, addr netip.Addr, prio2 uint8, addr2 netip.Addr) bool {
	if prio != prio2 {
		return prio > prio2
	}
	return addr.Compare(addr2) > 0
}

// masterDown is how long a master is believed after its last advert.
func masterDown(interval time.Duration, prio uint8) time.Duration {
	return 3*interval + interval*time.Duration(256-int(prio))/256
}

// tracker keeps the masters of every router seen.
type tracker struct {
	routers map[routerKey]map[netip.Addr]*wireEntry
}

// observe records one advert from src.
func (t *tracker) observe(k routerKey, src netip.Addr, a ha.Advert, local bool, now time.Time) {
	if a.Priority == 0 {
		// A master resigning: it is gone now, not after its timeout.
		if ms := t.routers[k]; ms != nil {
			delete(ms, src)
			if len(ms) == 0 {
				delete(t.routers, k)
			}
		}
		return
	}
	if t.routers == nil {
		t.routers = map[routerKey]map[netip.Addr]*wireEntry{}
	}
	ms := t.routers[k]
	if ms == nil {
		ms = map[netip.Addr]*wireEntry{}
		t.routers[k] = ms
	}
	e := ms[src]
	if e == nil {
		e = &wireEntry{}
		ms[src] = e
	}
	e.prio, e.interval, e.lastSeen, e.superseded = a.Priority, a.Interval, now, false
	if local {
		e.lastLocal = now
	}
	for o, oe := range ms {
		if o != src && outranks(a.Priority, src, oe.prio, o) {
			oe.superseded = true
		}
	}
}

// believed is how long a master counts after its last advert.
func (e *wireEntry) believed() time.Duration {
	if e.superseded {
		return e.interval + e.interval/2
	}
	return masterDown(e.interval, e.prio)
}

// snapshot drops the masters that expired by now and returns the rest:
// routers by VRID, version and family (IPv4 first), masters by priority,
// highest first, then by address.
func (t *tracker) snapshot(now time.Time) []ha.RouterReport {
	keys := make([]routerKey, 0, len(t.routers))
	for k, ms := range t.routers {
		for a, e := range ms {
			if now.Sub(e.lastSeen) > e.believed() {
				delete(ms, a)
			}
		}
		if len(ms) == 0 {
			delete(t.routers, k)
			continue
		}
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b routerKey) int {
		if c := cmp.Compare(a.vrid, b.vrid); c != 0 {
			return c
		}
		if c := cmp.Compare(a.version, b.version); c != 0 {
			return c
		}
		switch {
		case a.v6 == b.v6:
			return 0
		case b.v6:
			return -1
		default:
			return 1
		}
	})
	out := make([]ha.RouterReport, 0, len(keys))
	for _, k := range keys {
		r := ha.RouterReport{VRID: int(k.vrid), Version: int(k.version)}
		for a, e := range t.routers[k] {
			r.Masters = append(r.Masters, ha.WireMaster{
				Addr:     a,
				Priority: int(e.prio),
				Interval: e.interval,
				LastSeen: e.lastSeen,
				Local:    !e.lastLocal.IsZero() && now.Sub(e.lastLocal) <= masterDown(e.interval, e.prio),
			})
		}
		slices.SortFunc(r.Masters, func(a, b ha.WireMaster) int {
			if c := cmp.Compare(b.Priority, a.Priority); c != 0 {
				return c
			}
			return a.Addr.Compare(b.Addr)
		})
		out = append(out, r)
	}
	return out
}

// sameRouters compares two snapshots, ignoring when each master was last
// seen: a new advert from a known master is not news.
func sameRouters(a, b []ha.RouterReport) bool {
	return slices.EqualFunc(a, b, func(x, y ha.RouterReport) bool {
		return x.VRID == y.VRID && x.Version == y.Version &&
			slices.EqualFunc(x.Masters, y.Masters, func(m, n ha.WireMaster) bool {
				return m.Addr == n.Addr && m.Priority == n.Priority && m.Interval == n.Interval && m.Local == n.Local
			})
	})
}
