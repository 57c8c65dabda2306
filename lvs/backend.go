package lvs

import (
	"context"
	"errors"
	"fmt"
)

// Reader reads the whole IPVS table. One call is one consistent-enough
// sample: the collector calls it once per step and shares the result.
type Reader interface {
	// Table returns every virtual service with its real servers and stats.
	// An empty table is not an error.
	Table(ctx context.Context) (Table, error)
	// Close releases the backend's resources.
	Close() error
}

// Writer changes the IPVS table. Every write names the service by key and
// takes the full desired state of the object; SetWeight is the one
// read-modify-write, because the checker changes weights far more often
// than anything else and must not clobber thresholds or tunnel settings
// it does not own.
type Writer interface {
	CreateService(ctx context.Context, s Service) error
	UpdateService(ctx context.Context, s Service) error
	DeleteService(ctx context.Context, k ServiceKey) error
	CreateDest(ctx context.Context, k ServiceKey, d Dest) error
	UpdateDest(ctx context.Context, k ServiceKey, d Dest) error
	DeleteDest(ctx context.Context, k ServiceKey, d DestKey) error
	// SetWeight changes only the weight of an existing real server.
	SetWeight(ctx context.Context, k ServiceKey, d DestKey, weight int32) error
}

// Backend is a Reader that can also write.
type Backend interface {
	Reader
	Writer
}

// Errors a backend returns, wrapped with context; test them with errors.Is.
var (
	// ErrNotFound: the service or real server named does not exist.
	ErrNotFound = errors.New("not found")
	// ErrExists: the service or real server to create exists already.
	ErrExists = errors.New("already exists")
	// ErrReadOnly: the backend cannot write (procfs).
	ErrReadOnly = errors.New("backend is read-only")
	// ErrInvalid: the object asked for is not valid (bad weight, family
	// mismatch, unknown scheduler...).
	ErrInvalid = errors.New("invalid")
)

// OpError says which backend operation failed on which object.
type OpError struct {
	Backend string // "netlink", "procfs", "fake"
	Op      string // "list services", "set weight"...
	Object  string // "TCP 10.0.0.1:80", "TCP 10.0.0.1:80 -> 10.0.1.13:80"
	Err     error
}

func (e *OpError) Error() string {
	if e.Object == "" {
		return fmt.Sprintf("%s: %s: %v", e.Backend, e.Op, e.Err)
	}
	return fmt.Sprintf("%s: %s %s: %v", e.Backend, e.Op, e.Object, e.Err)
}

func (e *OpError) Unwrap() error { return e.Err }

func destObject(k ServiceKey, d DestKey) string { return k.String() + " -> " + d.String() }

// validateService checks what every backend requires of a service before
// writing it.
func validateService(s Service) error {
	k := s.Key
	switch {
	case k.IsFWMark():
		if k.Family != IPv4 && k.Family != IPv6 {
			return fmt.Errorf("%w: fwmark service without address family", ErrInvalid)
		}
	case !k.Addr.IsValid():
		return fmt.Errorf("%w: service has no address", ErrInvalid)
	case k.Protocol != TCP && k.Protocol != UDP && k.Protocol != SCTP:
		return fmt.Errorf("%w: protocol %d", ErrInvalid, k.Protocol)
	case (k.Family == IPv6) != k.Addr.Is6():
		return fmt.Errorf("%w: family %s does not match address %s", ErrInvalid, k.Family, k.Addr)
	}
	if s.Scheduler == "" {
		return fmt.Errorf("%w: empty scheduler", ErrInvalid)
	}
	if s.Persistence < 0 {
		return fmt.Errorf("%w: negative persistence", ErrInvalid)
	}
	return nil
}

// validateDest checks what every backend requires of a real server.
func validateDest(k ServiceKey, d Dest) error {
	if !d.Key.Addr.IsValid() {
		return fmt.Errorf("%w: real server has no address", ErrInvalid)
	}
	if d.Weight < 0 {
		return fmt.Errorf("%w: negative weight %d", ErrInvalid, d.Weight)
	}
	// The kernel lets an IPv6 service have IPv4 real servers only for
	// tunnelling; lvsmon keeps families equal, as ipvsadm does by default.
	if d.Key.Addr.Is6() != (k.Family == IPv6) {
		return fmt.Errorf("%w: real server %s is not in the service's family %s", ErrInvalid, d.Key.Addr, k.Family)
	}
	switch d.Forward {
	case DR, NAT, Tunnel:
	default:
		return fmt.Errorf("%w: forwarding method %s cannot be set", ErrInvalid, d.Forward)
	}
	return nil
}
