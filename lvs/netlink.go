package lvs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/cloudflare/ipvs"
	"github.com/cloudflare/ipvs/netmask"
)

// Netlink reaches the kernel's IPVS through generic netlink, using
// github.com/cloudflare/ipvs, which gives 64-bit counters and needs no
// ipvsadm. The library's calls take no context: each one is a single
// request/response on a local socket, so lvsmon honours its context
// between calls (a table read of thousands of services checks it before
// every service) rather than abandoning a call halfway.
type Netlink struct {
	c ipvs.Client
}

// NewNetlink dials the kernel. It fails when the IPVS generic netlink
// family is missing (module not loaded, or no IPVS in this kernel), with
// an error that says so.
func NewNetlink() (*Netlink, error) {
	c, err := ipvs.New()
	if err != nil {
		return nil, &OpError{Backend: "netlink", Op: "connect", Err: fmt.Errorf("%w (is the ip_vs module loaded? try 'modprobe ip_vs')", err)}
	}
	return &Netlink{c: c}, nil
}

// newNetlinkWith wraps an existing client; tests use it with an in-memory
// ipvs.Client to check conversions without a kernel.
func newNetlinkWith(c ipvs.Client) *Netlink { return &Netlink{c: c} }

func nlErr(op, obj string, err error) error {
	return &OpError{Backend: "netlink", Op: op, Object: obj, Err: err}
}

// Close closes the netlink socket.
func (n *Netlink) Close() error {
	if c, ok := n.c.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Table reads every service and then the real servers of each. A service
// that vanishes between the two reads (deleted by someone else) is left
// out rather than failing the whole sample.
func (n *Netlink) Table(ctx context.Context) (Table, error) {
	if err := ctx.Err(); err != nil {
		return Table{}, nlErr("list services", "", err)
	}
	svcs, err := n.c.Services()
	if errors.Is(err, os.ErrNotExist) {
		// The library answers an empty dump with ErrNotExist.
		return Table{}, nil
	}
	if err != nil {
		return Table{}, nlErr("list services", "", err)
	}
	t := Table{Services: make([]Service, 0, len(svcs))}
	for _, se := range svcs {
		s, err := fromNLService(se)
		if err != nil {
			return Table{}, nlErr("list services", "", err)
		}
		if err := ctx.Err(); err != nil {
			return Table{}, nlErr("list real servers", s.Key.String(), err)
		}
		dests, err := n.c.Destinations(se.Service)
		switch {
		case errors.Is(err, os.ErrNotExist):
			// An empty dump: no real servers, or the service just went.
			dests = nil
		case err != nil:
			return Table{}, nlErr("list real servers", s.Key.String(), err)
		}
		s.Dests = make([]Dest, 0, len(dests))
		for _, de := range dests {
			d, err := fromNLDest(de)
			if err != nil {
				return Table{}, nlErr("list real servers", s.Key.String(), err)
			}
			s.Dests = append(s.Dests, d)
		}
		t.Services = append(t.Services, s)
	}
	t.Sort()
	t.SumTotals()
	return t, nil
}

// fromNLService converts a library service, checking what the kernel
// answered so that a malformed reply is an error, not a zero value.
func fromNLService(se ipvs.ServiceExtended) (Service, error) {
	var s Service
	var fam Family
	switch se.Family {
	case ipvs.INET:
		fam = IPv4
	case ipvs.INET6:
		fam = IPv6
	default:
		return s, fmt.Errorf("%w: service with address family %d", ErrInvalid, se.Family)
	}
	if se.FWMark != 0 {
		s.Key = MarkKey(se.FWMark, fam)
	} else {
		p := Protocol(se.Protocol)
		if p != TCP && p != UDP && p != SCTP {
			return s, fmt.Errorf("%w: service with protocol %d", ErrInvalid, se.Protocol)
		}
		if !se.Address.IsValid() {
			return s, fmt.Errorf("%w: %s service without address", ErrInvalid, p)
		}
		s.Key = AddrKey(p, se.Address, se.Port)
		if s.Key.Family != fam {
			return s, fmt.Errorf("%w: service %s reported with family %s", ErrInvalid, s.Key, fam)
		}
	}
	s.Scheduler = se.Scheduler
	if se.Flags&ipvs.ServicePersistent != 0 {
		s.Persistence = time.Duration(se.Timeout) * time.Second
		if b := se.Netmask.Bits(); b > 0 && !(fam == IPv4 && b == 32) && !(fam == IPv6 && b == 128) {
			s.Netmask = b
		}
	}
	s.OnePacket = se.Flags&ipvs.ServiceOnePacket != 0
	s.Stats = fromNLStats(se.Stats64)
	return s, nil
}

func fromNLDest(de ipvs.DestinationExtended) (Dest, error) {
	if !de.Address.IsValid() {
		return Dest{}, fmt.Errorf("%w: real server without address", ErrInvalid)
	}
	if de.Weight > 1<<31-1 {
		return Dest{}, fmt.Errorf("%w: real server %s with weight %d", ErrInvalid, de.Address, de.Weight)
	}
	d := Dest{
		Key:             DestKey{Addr: de.Address.Unmap(), Port: de.Port},
		Weight:          int32(de.Weight),
		UpperThreshold:  de.UpperThreshold,
		LowerThreshold:  de.LowerThreshold,
		ActiveConns:     de.ActiveConnections,
		InactiveConns:   de.InactiveConnections,
		PersistentConns: de.PersistentConnections,
		Stats:           fromNLStats(de.Stats64),
	}
	switch de.FwdMethod {
	case ipvs.Masquerade:
		d.Forward = NAT
	case ipvs.DirectRoute:
		d.Forward = DR
	case ipvs.Tunnel:
		d.Forward = Tunnel
	case ipvs.Local:
		d.Forward = Local
	case ipvs.Bypass:
		d.Forward = Bypass
	default:
		return Dest{}, fmt.Errorf("%w: real server %s with forwarding method %d", ErrInvalid, de.Address, de.FwdMethod)
	}
	return d, nil
}

func fromNLStats(s ipvs.Stats) Stats {
	return Stats{Conns: s.Connections, InPkts: s.IncomingPackets, OutPkts: s.OutgoingPackets, InBytes: s.IncomingBytes, OutBytes: s.OutgoingBytes}
}

func nlFamily(f Family) ipvs.AddressFamily {
	if f == IPv6 {
		return ipvs.INET6
	}
	return ipvs.INET
}

// nlServiceID is the identity part of a library service, enough to name
// it in a request.
func nlServiceID(k ServiceKey) ipvs.Service {
	s := ipvs.Service{Family: nlFamily(k.Family), FWMark: k.FWMark}
	if !k.IsFWMark() {
		s.Address, s.Port, s.Protocol = k.Addr, k.Port, ipvs.Protocol(k.Protocol)
	}
	return s
}

func toNLService(s Service) ipvs.Service {
	ns := nlServiceID(s.Key)
	ns.Scheduler = s.Scheduler
	// The kernel refuses a full service without a netmask attribute
	// (EINVAL), and the library sends none for a zero Mask: always send
	// one, the host mask unless persistence asks for a wider one.
	bits := 32
	if s.Key.Family == IPv6 {
		bits = 128
	}
	ones := bits
	if s.Persistence > 0 {
		ns.Flags |= ipvs.ServicePersistent
		ns.Timeout = uint32(s.Persistence / time.Second)
		if s.Netmask > 0 && s.Netmask < bits {
			ones = s.Netmask
		}
	}
	ns.Netmask = netmask.MaskFrom(ones, bits)
	if s.OnePacket {
		ns.Flags |= ipvs.ServiceOnePacket
	}
	return ns
}

func toNLDest(k ServiceKey, d Dest) ipvs.Destination {
	nd := ipvs.Destination{
		Address:        d.Key.Addr,
		Port:           d.Key.Port,
		Family:         nlFamily(k.Family),
		Weight:         uint32(d.Weight),
		UpperThreshold: d.UpperThreshold,
		LowerThreshold: d.LowerThreshold,
	}
	if d.Key.Addr.Is4() {
		nd.Family = ipvs.INET
	} else {
		nd.Family = ipvs.INET6
	}
	switch d.Forward {
	case NAT:
		nd.FwdMethod = ipvs.Masquerade
	case Tunnel:
		nd.FwdMethod = ipvs.Tunnel
	default:
		nd.FwdMethod = ipvs.DirectRoute
	}
	return nd
}

// CreateService adds a virtual service.
func (n *Netlink) CreateService(ctx context.Context, s Service) error {
	obj := s.Key.String()
	if err := ctx.Err(); err != nil {
		return nlErr(OpCreateService, obj, err)
	}
	if err := validateService(s); err != nil {
		return nlErr(OpCreateService, obj, err)
	}
	if err := n.c.CreateService(toNLService(s)); err != nil {
		return nlErr(OpCreateService, obj, kernelErr(err))
	}
	return nil
}

// UpdateService sets scheduler and persistence of an existing service.
func (n *Netlink) UpdateService(ctx context.Context, s Service) error {
	obj := s.Key.String()
	if err := ctx.Err(); err != nil {
		return nlErr(OpUpdateService, obj, err)
	}
	if err := validateService(s); err != nil {
		return nlErr(OpUpdateService, obj, err)
	}
	if err := n.c.UpdateService(toNLService(s)); err != nil {
		return nlErr(OpUpdateService, obj, kernelErr(err))
	}
	return nil
}

// DeleteService removes a service and its real servers.
func (n *Netlink) DeleteService(ctx context.Context, k ServiceKey) error {
	obj := k.String()
	if err := ctx.Err(); err != nil {
		return nlErr(OpDeleteService, obj, err)
	}
	if err := n.c.RemoveService(nlServiceID(k)); err != nil {
		return nlErr(OpDeleteService, obj, kernelErr(err))
	}
	return nil
}

// CreateDest adds a real server.
func (n *Netlink) CreateDest(ctx context.Context, k ServiceKey, d Dest) error {
	obj := destObject(k, d.Key)
	if err := ctx.Err(); err != nil {
		return nlErr(OpCreateDest, obj, err)
	}
	if err := validateDest(k, d); err != nil {
		return nlErr(OpCreateDest, obj, err)
	}
	if err := n.c.CreateDestination(nlServiceID(k), toNLDest(k, d)); err != nil {
		return nlErr(OpCreateDest, obj, kernelErr(err))
	}
	return nil
}

// UpdateDest replaces forwarding, weight and thresholds of a real server.
// Tunnel settings the kernel holds are kept: they are read first, since
// the library's update sends every attribute.
func (n *Netlink) UpdateDest(ctx context.Context, k ServiceKey, d Dest) error {
	obj := destObject(k, d.Key)
	if err := validateDest(k, d); err != nil {
		return nlErr(OpUpdateDest, obj, err)
	}
	return n.modifyDest(ctx, OpUpdateDest, k, d.Key, func(nd *ipvs.Destination) {
		want := toNLDest(k, d)
		nd.FwdMethod, nd.Weight, nd.UpperThreshold, nd.LowerThreshold = want.FwdMethod, want.Weight, want.UpperThreshold, want.LowerThreshold
	})
}

// SetWeight changes only the weight: read, modify, write, because the
// library's update replaces every field and a blind write would reset
// thresholds, forwarding method and tunnel settings.
func (n *Netlink) SetWeight(ctx context.Context, k ServiceKey, dk DestKey, w int32) error {
	if w < 0 {
		return nlErr(OpSetWeight, destObject(k, dk), fmt.Errorf("%w: negative weight %d", ErrInvalid, w))
	}
	return n.modifyDest(ctx, OpSetWeight, k, dk, func(nd *ipvs.Destination) { nd.Weight = uint32(w) })
}

func (n *Netlink) modifyDest(ctx context.Context, op string, k ServiceKey, dk DestKey, fn func(*ipvs.Destination)) error {
	obj := destObject(k, dk)
	if err := ctx.Err(); err != nil {
		return nlErr(op, obj, err)
	}
	sid := nlServiceID(k)
	dests, err := n.c.Destinations(sid)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nlErr(op, obj, fmt.Errorf("read current state: %w", kernelErr(err)))
	}
	for _, de := range dests {
		if de.Address.Unmap() != dk.Addr || de.Port != dk.Port {
			continue
		}
		nd := de.Destination
		fn(&nd)
		if err := ctx.Err(); err != nil {
			return nlErr(op, obj, err)
		}
		if err := n.c.UpdateDestination(sid, nd); err != nil {
			return nlErr(op, obj, kernelErr(err))
		}
		return nil
	}
	return nlErr(op, obj, ErrNotFound)
}

// DeleteDest removes a real server.
func (n *Netlink) DeleteDest(ctx context.Context, k ServiceKey, dk DestKey) error {
	obj := destObject(k, dk)
	if err := ctx.Err(); err != nil {
		return nlErr(OpDeleteDest, obj, err)
	}
	if err := n.c.RemoveDestination(nlServiceID(k), toNLDest(k, Dest{Key: dk})); err != nil {
		return nlErr(OpDeleteDest, obj, kernelErr(err))
	}
	return nil
}

// kernelErr maps the kernel's errno answers onto the package's errors, so
// callers can tell "already there" from "gone" without knowing netlink.
func kernelErr(err error) error {
	switch {
	case errors.Is(err, os.ErrExist):
		return fmt.Errorf("%w: %w", ErrExists, err)
	case errors.Is(err, os.ErrNotExist), errors.Is(err, syscall.ESRCH):
		// The kernel answers ESRCH for a missing service, ENOENT for a
		// missing real server.
		return fmt.Errorf("%w: %w", ErrNotFound, err)
	}
	return err
}
