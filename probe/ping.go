package probe

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"sync/atomic"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "ping", NoPort: true}, probePing)
}

// pingSeq numbers echo requests across all ping probes of the process,
// so that concurrent probes on raw sockets (which all see every reply)
// never take each other's replies.
var pingSeq atomic.Uint32

// probePing is the ping check: one ICMP or ICMPv6 echo request, healthy
// when the matching echo reply comes back. The port is not used.
//
// It prefers a datagram ICMP socket ("ping socket"), which needs no
// privilege when net.ipv4.ping_group_range includes lvsmon's group and
// gets only its own replies from the kernel; otherwise it uses a raw
// socket (root or CAP_NET_RAW), which sees every ICMP message of the
// host and picks out its reply by identifier, sequence and payload.
func probePing(ctx context.Context, t Target, c *config.Check) error {
	conn, raw, err := pingSocket(t.Addr.Is6())
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	defer conn.Close()
	return pingWith(ctx, conn, raw, t.Addr, c)
}

// pingSocket opens the ICMP socket for one probe: a ping socket if the
// host allows this process one, else a raw socket.
func pingSocket(v6 bool) (conn *icmp.PacketConn, raw bool, err error) {
	conn, uerr := listenICMP(v6, false)
	if uerr == nil {
		return conn, false, nil
	}
	conn, rerr := listenICMP(v6, true)
	if rerr == nil {
		return conn, true, nil
	}
	return nil, false, fmt.Errorf("cannot open an ICMP socket (a ping socket needs net.ipv4.ping_group_range to include group %d: %v; a raw socket needs root or CAP_NET_RAW: %w)", os.Getgid(), uerr, rerr)
}

// listenICMP opens a ping socket (raw false) or a raw ICMP socket.
func listenICMP(v6, raw bool) (*icmp.PacketConn, error) {
	var network, any string
	switch {
	case v6 && raw:
		network, any = "ip6:ipv6-icmp", "::"
	case v6:
		network, any = "udp6", "::"
	case raw:
		network, any = "ip4:icmp", "0.0.0.0"
	default:
		network, any = "udp4", "0.0.0.0"
	}
	conn, err := icmp.ListenPacket(network, any)
	if err != nil {
		return nil, err
	}
	if raw {
		// A raw socket would wake for every ICMP message the host gets;
		// let the kernel drop all but replies and errors. Only an
		// optimization, so a failure is no reason to stop.
		if v6 {
			var f ipv6.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv6.ICMPTypeEchoReply)
			f.Accept(ipv6.ICMPTypeDestinationUnreachable)
			f.Accept(ipv6.ICMPTypeTimeExceeded)
			conn.IPv6PacketConn().SetICMPFilter(&f)
		} else {
			var f ipv4.ICMPFilter
			f.SetAll(true)
			f.Accept(ipv4.ICMPTypeEchoReply)
			f.Accept(ipv4.ICMPTypeDestinationUnreachable)
			f.Accept(ipv4.ICMPTypeTimeExceeded)
			conn.IPv4PacketConn().SetICMPFilter(&f)
		}
	}
	return conn, nil
}

// pingWith sends one echo request to dst on conn and waits for its
// reply. On a ping socket the kernel chooses the identifier and
// delivers only this socket's replies; on a raw socket the identifier is
// random and every reply is checked.
func pingWith(ctx context.Context, conn *icmp.PacketConn, raw bool, dst netip.Addr, c *config.Check) error {
	stop := bindDeadline(ctx, conn)
	defer stop()
	v6 := dst.Is6()
	var reqType, replyType icmp.Type = ipv4.ICMPTypeEcho, ipv4.ICMPTypeEchoReply
	proto := 1 // IANA protocol numbers, as icmp.ParseMessage wants them
	if v6 {
		reqType, replyType, proto = ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	id := int(rand.N[uint16](0xffff)) + 1
	seq := int(uint16(pingSeq.Add(1)))
	data := binary.BigEndian.AppendUint64([]byte("lvsmon"), rand.Uint64())
	msg := icmp.Message{Type: reqType, Body: &icmp.Echo{ID: id, Seq: seq, Data: data}}
	wb, err := msg.Marshal(nil) // ICMPv6 checksums are the kernel's
	if err != nil {
		return fmt.Errorf("ping: %w", err)
	}
	var to net.Addr = &net.IPAddr{IP: dst.AsSlice()}
	if !raw {
		to = &net.UDPAddr{IP: dst.AsSlice()}
	}
	if _, err := conn.WriteTo(wb, to); err != nil {
		return fmt.Errorf("ping: send to %s: %w", dst, reason(ctx, err, c))
	}
	buf := make([]byte, 1500)
	for {
		n, peer, err := conn.ReadFrom(buf)
		if err != nil {
			return fmt.Errorf("ping: %s: %w", dst, reason(ctx, err, c))
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil {
			continue
		}
		switch m.Type {
		case replyType:
			e, ok := m.Body.(*icmp.Echo)
			if !ok || e.Seq != seq || !bytes.Equal(e.Data, data) || (raw && e.ID != id) || peerAddr(peer) != dst {
				continue
			}
			return nil
		case ipv4.ICMPTypeDestinationUnreachable, ipv6.ICMPTypeDestinationUnreachable, ipv4.ICMPTypeTimeExceeded, ipv6.ICMPTypeTimeExceeded:
			if raw && quotesEcho(m, v6, id, seq) {
				return fmt.Errorf("ping: %s: %s (from %s)", dst, icmpText(m), peerAddr(peer))
			}
		}
	}
}

// quotesEcho reports whether an ICMP error is about our echo request:
// it quotes the request's IP header and first bytes, identifier and
// sequence among them.
func quotesEcho(m *icmp.Message, v6 bool, id, seq int) bool {
	var quoted []byte
	switch b := m.Body.(type) {
	case *icmp.DstUnreach:
		quoted = b.Data
	case *icmp.TimeExceeded:
		quoted = b.Data
	default:
		return false
	}
	hl := 40 // IPv6 header; an echo request has no extension headers
	if !v6 {
		if len(quoted) < 1 {
			return false
		}
		hl = int(quoted[0]&0x0f) * 4
	}
	if len(quoted) < hl+8 {
		return false
	}
	e := quoted[hl:]
	return int(binary.BigEndian.Uint16(e[4:6])) == id && int(binary.BigEndian.Uint16(e[6:8])) == seq
}

// icmpText names an ICMP error the way ping(8) does.
func icmpText(m *icmp.Message) string {
	switch m.Type {
	case ipv4.ICMPTypeTimeExceeded, ipv6.ICMPTypeTimeExceeded:
		return "time to live exceeded"
	case ipv4.ICMPTypeDestinationUnreachable:
		switch m.Code {
		case 0:
			return "network unreachable"
		case 1:
			return "host unreachable"
		case 13:
			return "communication administratively prohibited"
		}
	case ipv6.ICMPTypeDestinationUnreachable:
		switch m.Code {
		case 0:
			return "no route to host"
		case 1:
			return "communication administratively prohibited"
		case 3:
			return "address unreachable"
		}
	}
	return fmt.Sprintf("destination unreachable (code %d)", m.Code)
}

// peerAddr is the address a reply came from, without zone or 4in6.
func peerAddr(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.IPAddr:
		ip = a.IP
	case *net.UDPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap().WithZone("")
}
