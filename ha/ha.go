// Package ha reads which role an LVS director plays in its high
// availability pair: the parsers for keepalived's JSON dump and notify FIFO,
// heartbeat's cl_status, pacemaker's crm_mon XML and VRRP adverts on the
// wire. Everything here is pure: the callers run the commands, send the
// signals and open the sockets, and hand the bytes in.
//
// No single source is enough. keepalived's own view (JSON dump, FIFO) knows
// FAULT and STOP but dies with keepalived; adverts show only the current
// master; a VIP on an interface survives a crashed master. The types here
// keep what each source says so that a collector can cross-check them:
// the Monitor merges the sources' Reports into one Role per instance and
// flags the disagreements (a stale VIP, two masters). Reading the sources
// (signals, FIFOs, netlink, sockets, commands) is package sources.
package ha

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalid is wrapped by every error about input that could not be
	// read: malformed text, out-of-range values, bad checksums.
	ErrInvalid = errors.New("invalid")

	// ErrTruncated is wrapped, together with ErrInvalid, when a VRRP
	// packet ends before its header says it should.
	ErrTruncated = errors.New("truncated")

	// ErrChecksum is wrapped, together with ErrInvalid, when a VRRP
	// packet's checksum does not verify.
	ErrChecksum = errors.New("bad checksum")

	// ErrNotReachable is wrapped when a tool reports that it could not
	// talk to its cluster manager (crm_mon printing a connection error,
	// possibly while exiting 0). The cluster state is then unknown, which
	// is not the same as "stopped".
	ErrNotReachable = errors.New("not reachable")
)

// Error says which input (Source: "keepalived.json", "crm_mon", "vrrp"...)
// and where in it (Where: "line 3", "instance 2 (VI_1)", "offset 8"; may be
// empty) could not be read. Err wraps ErrInvalid or ErrNotReachable.
type Error struct {
	Source string
	Where  string
	Err    error
}

func (e *Error) Error() string {
	if e.Where == "" {
		return fmt.Sprintf("ha: %s: %v", e.Source, e.Err)
	}
	return fmt.Sprintf("ha: %s: %s: %v", e.Source, e.Where, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

// invalidf builds an *Error wrapping ErrInvalid.
func invalidf(source, where, format string, args ...any) error {
	return &Error{Source: source, Where: where, Err: fmt.Errorf("%w: "+format, append([]any{ErrInvalid}, args...)...)}
}

// State is a director's VRRP role as keepalived names it. The zero value is
// StateUnknown, so a State nobody set never reads as MASTER or BACKUP.
//
// keepalived's numeric INIT (0, the few seconds after start before the
// first election) maps to StateUnknown: the director neither holds nor
// has released the VIPs yet. Instance.RawState keeps the number.
type State uint8

const (
	StateUnknown State = iota
	StateBackup
	StateMaster
	StateFault
	StateStop
)

var stateNames = [...]string{
	StateUnknown: "UNKNOWN",
	StateBackup:  "BACKUP",
	StateMaster:  "MASTER",
	StateFault:   "FAULT",
	StateStop:    "STOP",
}

// String returns keepalived's upper-case name, "UNKNOWN" for anything else.
func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// keepalived's numeric states (vrrp.h; the same numbers as the KEEPALIVED-MIB
// enum and the DBus VrrpStatusChange signal).
const (
	kaStateInit    = 0
	kaStateBackup  = 1
	kaStateMaster  = 2
	kaStateFault   = 3
	kaStateDeleted = 97
	kaStateStop    = 98
)

// stateFromKeepalived maps keepalived's number; unknown numbers (a newer
// keepalived) read StateUnknown rather than failing the whole dump.
func stateFromKeepalived(n int) State {
	switch n {
	case kaStateBackup:
		return StateBackup
	case kaStateMaster:
		return StateMaster
	case kaStateFault:
		return StateFault
	case kaStateStop, kaStateDeleted:
		return StateStop
	default:
		return StateUnknown
	}
}
