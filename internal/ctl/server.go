package ctl

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// ServerArg is a real server as the operator names it: by id
// (tcp_10.0.0.1_80__10.0.1.1_80, as the API and the status name it) or
// by address:port (10.0.1.1:80, [2001:db8::1]:80).
type ServerArg struct {
	ID   string
	Addr netip.AddrPort // valid when ID is ""
}

func (a ServerArg) String() string {
	if a.ID != "" {
		return a.ID
	}
	return a.Addr.String()
}

// ParseServerArg reads a SERVER argument.
func ParseServerArg(s string) (ServerArg, error) {
	if s == "" {
		return ServerArg{}, fmt.Errorf("no real server given: want its id or address:port: %w", ErrUsage)
	}
	if svc, dest, ok := lvs.ParseDestID(s); ok {
		if !idChars(svc) || !idChars(dest) {
			return ServerArg{}, fmt.Errorf("real server %q: an id is made of a-z, 0-9, '.', '_' and '-' (as tcp_10.0.0.1_80__10.0.1.1_80): %w", s, ErrUsage)
		}
		return ServerArg{ID: s}, nil
	}
	ap, err := netip.ParseAddrPort(s)
	if err != nil {
		return ServerArg{}, fmt.Errorf("real server %q: want its id (as the status shows it) or address:port, such as 10.0.1.1:80 or [2001:db8::1]:80: %w", s, ErrUsage)
	}
	if ap.Addr().Zone() != "" {
		return ServerArg{}, fmt.Errorf("real server %q: a real server's address has no zone: %w", s, ErrUsage)
	}
	return ServerArg{Addr: netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())}, nil
}

// idChars reports whether s is a non-empty run of the characters ids are
// made of (lvs.ServiceKey.ID).
func idChars(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-') {
			return false
		}
	}
	return true
}

// Match is a real server the argument names, with its service.
type Match struct {
	Service *web.ServiceStatus
	Server  *web.RealServerStatus
}

// Describe names the match for humans: its id, its service and address.
func (m Match) Describe() string {
	return fmt.Sprintf("%s (service %s, %s)", m.Server.ID, serviceLabel(m.Service), hostPort(m.Server.Address, m.Server.Port))
}

// serviceLabel is the service's name and key, "web (TCP 10.0.0.1:80)".
func serviceLabel(s *web.ServiceStatus) string {
	k := serviceKey(s)
	if s.Name != "" {
		return s.Name + " " + k
	}
	return k
}

// serviceKey is how ipvsadm names the service: "TCP 10.0.0.1:80",
// "FWM 10 inet6".
func serviceKey(s *web.ServiceStatus) string {
	if s.FWMark != 0 || s.Port == nil {
		return fmt.Sprintf("FWM %d %s", s.FWMark, s.Family)
	}
	return strings.ToUpper(s.Protocol) + " " + hostPort(s.Address, *s.Port)
}

// hostPort writes address and port as 10.0.0.1:80 or [::1]:80.
func hostPort(addr string, port uint16) string {
	if a, err := netip.ParseAddr(addr); err == nil {
		return netip.AddrPortFrom(a, port).String()
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// Resolve finds the configured real server the argument names among the
// services. service (an id or a name; "" for any) narrows the search.
// An address:port in several services is an error that lists them,
// unless service picks one. The sorry server and real servers that are
// only in the kernel (not configured) cannot be overridden, and are not
// matched.
func Resolve(services []web.ServiceStatus, arg ServerArg, service string) (Match, error) {
	var found []Match
	svcSeen := service == ""
	for i := range services {
		s := &services[i]
		if service != "" && s.ID != service && s.Name != service {
			continue
		}
		svcSeen = true
		for j := range s.RealServers {
			r := &s.RealServers[j]
			if r.Sorry {
				continue
			}
			if arg.ID != "" && r.ID == arg.ID || arg.ID == "" && sameAddrPort(r, arg.Addr) {
				found = append(found, Match{Service: s, Server: r})
			}
		}
	}
	if !svcSeen {
		var names []string
		for i := range services {
			names = append(names, serviceChoice(&services[i]))
		}
		return Match{}, fmt.Errorf("no virtual service %q; there are:\n  %s", service, strings.Join(names, "\n  "))
	}
	configured := slices.DeleteFunc(slices.Clone(found), func(m Match) bool { return !m.Server.Configured })
	switch {
	case len(configured) == 1:
		return configured[0], nil
	case len(configured) > 1:
		var b strings.Builder
		fmt.Fprintf(&b, "%s is a real server of %d services; pick one with --service (or give the id):", arg, len(configured))
		for _, m := range configured {
			fmt.Fprintf(&b, "\n  %s  --service %s", m.Server.ID, serviceChoice(m.Service))
		}
		return Match{}, &ResolveError{msg: b.String()}
	case len(found) > 0:
		return Match{}, &ResolveError{msg: fmt.Sprintf("%s is in the kernel but not in the config: lvsmon overrides configured real servers only", found[0].Describe())}
	}
	msg := fmt.Sprintf("no configured real server %s", arg)
	if service != "" {
		msg += " in service " + service
	}
	if near := nearMatches(services, arg); len(near) > 0 {
		msg += "; did you mean:\n  " + strings.Join(near, "\n  ")
	}
	return Match{}, &ResolveError{msg: msg}
}

// ResolveError: the argument names no real server, or several.
type ResolveError struct{ msg string }

func (e *ResolveError) Error() string { return e.msg }

// serviceChoice is what --service takes for s: its name, else its id.
func serviceChoice(s *web.ServiceStatus) string {
	if s.Name != "" {
		return s.Name + " (" + s.ID + ")"
	}
	return s.ID
}

func sameAddrPort(r *web.RealServerStatus, ap netip.AddrPort) bool {
	a, err := netip.ParseAddr(r.Address)
	return err == nil && a.Unmap() == ap.Addr() && r.Port == ap.Port()
}

// nearMatches lists configured real servers like the argument: the same
// address on another port; for an id, the same real server in another
// service or the real servers of the same service. At most five.
func nearMatches(services []web.ServiceStatus, arg ServerArg) []string {
	var out []string
	svcPart, destPart, _ := lvs.ParseDestID(arg.ID)
	for i := range services {
		s := &services[i]
		for j := range s.RealServers {
			r := &s.RealServers[j]
			if !r.Configured || r.Sorry {
				continue
			}
			rs, rd, _ := lvs.ParseDestID(r.ID)
			near := false
			if arg.ID == "" {
				a, err := netip.ParseAddr(r.Address)
				near = err == nil && a.Unmap() == arg.Addr.Addr()
			} else {
				near = rd == destPart || rs == svcPart
			}
			if near && len(out) < 5 {
				out = append(out, Match{Service: s, Server: r}.Describe())
			}
		}
	}
	return out
}
