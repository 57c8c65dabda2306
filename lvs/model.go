// Package lvs owns lvsmon's model of the kernel's IPVS table and every way
// of reaching it: the netlink backend (the real kernel, through
// github.com/cloudflare/ipvs), the read-only procfs backend (/proc/net/ip_vs
// and friends, for unprivileged use and synced copies), an in-memory fake
// for tests and dry runs, and the demo director's traffic simulation.
//
// Everything else in lvsmon reads and writes IPVS only through the Reader
// and Writer interfaces defined here, so that tests can run on the fake and
// the real kernel is one implementation among several.
package lvs

import (
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Protocol is the transport protocol of a virtual service. The numeric
// values are the IANA protocol numbers, as the kernel uses them.
type Protocol uint16

// Protocols IPVS balances.
const (
	TCP  Protocol = 6
	UDP  Protocol = 17
	SCTP Protocol = 132
)

// String returns the lower-case name used in config files, ids and labels.
func (p Protocol) String() string {
	switch p {
	case TCP:
		return "tcp"
	case UDP:
		return "udp"
	case SCTP:
		return "sctp"
	}
	return "proto" + strconv.Itoa(int(p))
}

// ParseProtocol reads a protocol name as written in config files.
func ParseProtocol(s string) (Protocol, error) {
	switch strings.ToLower(s) {
	case "tcp":
		return TCP, nil
	case "udp":
		return UDP, nil
	case "sctp":
		return SCTP, nil
	}
	return 0, fmt.Errorf("unknown protocol %q (want tcp, udp or sctp)", s)
}

// Family is an address family, for fwmark services whose family cannot be
// read off an address.
type Family uint8

// Address families.
const (
	IPv4 Family = 4
	IPv6 Family = 6
)

// String returns "inet" or "inet6", as ipvsadm and the kernel name them.
func (f Family) String() string {
	if f == IPv6 {
		return "inet6"
	}
	return "inet"
}

// Forward is the forwarding method of a real server.
type Forward uint8

// Forwarding methods. The zero value is DR because it is what an LVS
// operator means when nothing is said (ldirectord's and keepalived's
// examples default to gatewaying).
const (
	DR Forward = iota
	NAT
	Tunnel
	Local
	Bypass
)

// String returns the config name: dr, nat, tun (and local, bypass, which
// the kernel can report but lvsmon never sets).
func (f Forward) String() string {
	switch f {
	case DR:
		return "dr"
	case NAT:
		return "nat"
	case Tunnel:
		return "tun"
	case Local:
		return "local"
	case Bypass:
		return "bypass"
	}
	return "fwd" + strconv.Itoa(int(f))
}

// ParseForward reads a forwarding method as written in config files. It
// accepts ipvsadm's and ldirectord's names too (gate, masq, ipip), since
// operators bring those habits along.
func ParseForward(s string) (Forward, error) {
	switch strings.ToLower(s) {
	case "dr", "gate", "gatewaying", "route":
		return DR, nil
	case "nat", "masq", "masquerading", "masquerade":
		return NAT, nil
	case "tun", "ipip", "tunnel":
		return Tunnel, nil
	}
	return 0, fmt.Errorf("unknown forwarding method %q (want dr, nat or tun)", s)
}

// Stats are the kernel's 64-bit cumulative counters of a service or real
// server. Rates are deliberately absent: lvsmon derives them from counter
// deltas over the real elapsed time instead of trusting the kernel's
// 2-second estimator.
type Stats struct {
	Conns    uint64 `json:"conns"`
	InPkts   uint64 `json:"in_packets"`
	OutPkts  uint64 `json:"out_packets"`
	InBytes  uint64 `json:"in_bytes"`
	OutBytes uint64 `json:"out_bytes"`
}

// Add returns the field-wise sum of s and o.
func (s Stats) Add(o Stats) Stats {
	return Stats{
		Conns:    s.Conns + o.Conns,
		InPkts:   s.InPkts + o.InPkts,
		OutPkts:  s.OutPkts + o.OutPkts,
		InBytes:  s.InBytes + o.InBytes,
		OutBytes: s.OutBytes + o.OutBytes,
	}
}

// ServiceKey identifies a virtual service the way the kernel does: either
// protocol, address and port, or a firewall mark and an address family.
type ServiceKey struct {
	Protocol Protocol   // zero for fwmark services
	Addr     netip.Addr // invalid for fwmark services
	Port     uint16
	FWMark   uint32
	Family   Family // always set; derived from Addr for address services
}

// AddrKey builds the key of an address service. The address is unmapped
// so that ::ffff:10.0.0.1 and 10.0.0.1 are one service, as in the kernel.
func AddrKey(p Protocol, addr netip.Addr, port uint16) ServiceKey {
	addr = addr.Unmap()
	f := IPv4
	if addr.Is6() {
		f = IPv6
	}
	return ServiceKey{Protocol: p, Addr: addr, Port: port, Family: f}
}

// MarkKey builds the key of a firewall-mark service.
func MarkKey(mark uint32, f Family) ServiceKey {
	return ServiceKey{FWMark: mark, Family: f}
}

// IsFWMark reports whether the service is selected by firewall mark.
func (k ServiceKey) IsFWMark() bool { return k.FWMark != 0 }

// String renders the key as ipvsadm does: "TCP 10.0.0.1:80",
// "UDP [2001:db8::1]:53", "FWM 10 inet".
func (k ServiceKey) String() string {
	if k.IsFWMark() {
		return fmt.Sprintf("FWM %d %s", k.FWMark, k.Family)
	}
	return strings.ToUpper(k.Protocol.String()) + " " + netip.AddrPortFrom(k.Addr, k.Port).String()
}

// ID is a stable identifier made only of [a-z0-9._-], safe in URLs, file
// names and Prometheus labels: tcp_10.0.0.1_80, udp_2001-db8--1_53,
// fwm_10_inet6. Colons of IPv6 addresses become dashes; a dash never
// appears in an IPv4 address or a number, so the mapping is one to one.
func (k ServiceKey) ID() string {
	if k.IsFWMark() {
		return "fwm_" + strconv.FormatUint(uint64(k.FWMark), 10) + "_" + k.Family.String()
	}
	return k.Protocol.String() + "_" + addrID(k.Addr) + "_" + strconv.Itoa(int(k.Port))
}

func addrID(a netip.Addr) string { return strings.ReplaceAll(a.String(), ":", "-") }

// Less orders keys: address services before fwmark ones, then by family,
// address, protocol, port, mark. Tables are kept in this order so that
// output (status, metrics, golden files) is deterministic.
func (k ServiceKey) Less(o ServiceKey) bool {
	if k.IsFWMark() != o.IsFWMark() {
		return !k.IsFWMark()
	}
	if k.IsFWMark() {
		if k.FWMark != o.FWMark {
			return k.FWMark < o.FWMark
		}
		return k.Family < o.Family
	}
	if c := k.Addr.Compare(o.Addr); c != 0 {
		return c < 0
	}
	if k.Protocol != o.Protocol {
		return k.Protocol < o.Protocol
	}
	return k.Port < o.Port
}

// DestKey identifies a real server within its virtual service.
type DestKey struct {
	Addr netip.Addr
	Port uint16
}

// String renders "10.0.1.13:80" or "[2001:db8::13]:80".
func (d DestKey) String() string { return netip.AddrPortFrom(d.Addr, d.Port).String() }

// ID is the real server's id within its service, in the same alphabet as
// ServiceKey.ID.
func (d DestKey) ID() string { return addrID(d.Addr) + "_" + strconv.Itoa(int(d.Port)) }

// Less orders real servers by address, then port.
func (d DestKey) Less(o DestKey) bool {
	if c := d.Addr.Compare(o.Addr); c != 0 {
		return c < 0
	}
	return d.Port < o.Port
}

// DestID is the globally unique id of a real server: its service's id and
// its own, joined by a double underscore (which neither part contains).
func DestID(s ServiceKey, d DestKey) string { return s.ID() + "__" + d.ID() }

// ParseDestID splits a DestID into the service id and the real server id.
func ParseDestID(id string) (svc, dest string, ok bool) {
	return strings.Cut(id, "__")
}

// Service is one virtual service as the kernel holds it, with its real
// servers in DestKey order.
type Service struct {
	Key         ServiceKey    `json:"-"`
	Scheduler   string        `json:"scheduler"`
	Persistence time.Duration `json:"-"`     // zero when not persistent
	Netmask     int           `json:"-"`     // persistence netmask prefix length; 0 = kernel default
	OnePacket   bool          `json:"-"`     // UDP one-packet scheduling (ops)
	Stats       Stats         `json:"stats"` // the service's own counters
	Dests       []Dest        `json:"-"`
}

// Dest is one real server (IPVS destination) of a service.
type Dest struct {
	Key             DestKey
	Forward         Forward
	Weight          int32
	UpperThreshold  uint32
	LowerThreshold  uint32
	ActiveConns     uint32
	InactiveConns   uint32
	PersistentConns uint32
	Stats           Stats
}

// Table is a whole IPVS table at one moment, services in ServiceKey
// order. A Table returned by a Reader belongs to the caller.
type Table struct {
	Services []Service
	// Totals are the kernel's global counters (/proc/net/ip_vs_stats);
	// backends that cannot read them sum the services instead.
	Totals Stats
}

// Sort puts services and their real servers into canonical order.
func (t *Table) Sort() {
	// slices.SortFunc, unlike sort.Slice, allocates nothing per call,
	// which matters at 1000 services.
	slices.SortFunc(t.Services, func(a, b Service) int { return cmpBool(a.Key.Less(b.Key), b.Key.Less(a.Key)) })
	for i := range t.Services {
		slices.SortFunc(t.Services[i].Dests, func(a, b Dest) int { return cmpBool(a.Key.Less(b.Key), b.Key.Less(a.Key)) })
	}
}

// cmpBool turns two Less answers into a three-way comparison.
func cmpBool(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// Service returns the service with key k, or nil.
func (t *Table) Service(k ServiceKey) *Service {
	i := sort.Search(len(t.Services), func(i int) bool { return !t.Services[i].Key.Less(k) })
	if i < len(t.Services) && t.Services[i].Key == k {
		return &t.Services[i]
	}
	return nil
}

// Dest returns the real server with key d, or nil.
func (s *Service) Dest(d DestKey) *Dest {
	i := sort.Search(len(s.Dests), func(i int) bool { return !s.Dests[i].Key.Less(d) })
	if i < len(s.Dests) && s.Dests[i].Key == d {
		return &s.Dests[i]
	}
	return nil
}

// Clone returns a deep copy, so a caller can hand out a table and keep
// changing its own.
func (t Table) Clone() Table {
	out := Table{Totals: t.Totals, Services: make([]Service, len(t.Services))}
	for i, s := range t.Services {
		s.Dests = append([]Dest(nil), s.Dests...)
		out.Services[i] = s
	}
	return out
}

// SumTotals sets Totals to the sum of the services' own counters, for
// backends that have no global counters.
func (t *Table) SumTotals() {
	var tot Stats
	for _, s := range t.Services {
		tot = tot.Add(s.Stats)
	}
	t.Totals = tot
}
