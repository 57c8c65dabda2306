package ha

import (
	"fmt"
	"slices"
	"strings"
)

// Resources is what heartbeat's `cl_status rscstatus` prints: which
// haresources groups this node holds.
//
// It is not a role. In the field test a node that had no home resources
// and held nothing still printed "local", and after a failover the
// survivor printed "all". To learn whether this director holds the VIP,
// check the VIP itself (or run the resource agent's status action).
type Resources uint8

const (
	ResourcesUnknown Resources = iota // heartbeat not running, or not asked
	ResourcesNone                     // "none"
	ResourcesLocal                    // "local": its own (home) groups
	ResourcesForeign                  // "foreign": the peer's groups
	ResourcesAll                      // "all": own and peer's groups
	// ResourcesTransition is "transition": heartbeat runs but its
	// resources are being taken over or given up. Seen for about 10 s
	// after every start and around each takeover.
	ResourcesTransition
)

// resourceWords are rscstatus's words, indexed by Resources: one table
// for printing and parsing.
var resourceWords = [...]string{ResourcesUnknown: "unknown", ResourcesNone: "none", ResourcesLocal: "local",
	ResourcesForeign: "foreign", ResourcesAll: "all", ResourcesTransition: "transition"}

func (r Resources) String() string {
	if int(r) < len(resourceWords) {
		return resourceWords[r]
	}
	return "unknown"
}

// Heartbeat is the state of a heartbeat (Linux-HA 3.x, haresources mode)
// node as cl_status reports it.
type Heartbeat struct {
	Running   bool
	Resources Resources // ResourcesUnknown unless Running
}

const sourceClStatus = "cl_status"

// The texts cl_status prints (heartbeat 3.0.6).
const (
	hbRunning  = "Heartbeat is running on this machine"
	hbStopped  = "Heartbeat is stopped on this machine"
	hbNoSignon = "Cannot signon with heartbeat"
	// hbRefuses: heartbeat's process is there but its API does not
	// answer (cl_status prints it with exit 0).
	hbRefuses = "apparently running on this machine, but refuses my connection"
	// rscGone: rscstatus signed on but got no answer (exit 13), as when
	// heartbeat dies during the call.
	rscGone = "Cannot get cluster resource status"
)

// ParseClStatus reads the output of `cl_status hbstatus` (stdout and
// stderr together) with its exit status hbExit, and the output of
// `cl_status rscstatus` (stdout and stderr; pass "" when it was not run).
//
// heartbeat is running when hbstatus says so with exit 0. It is stopped
// when hbstatus says "stopped" or "Cannot signon with heartbeat" with exit
// 1, and also when rscstatus cannot sign on although hbstatus said running
// (heartbeat stopped between the two calls).
//
// A heartbeat that does not answer (hbstatus "apparently running ... but
// refuses my connection", or rscstatus "Cannot get cluster resource
// status", as when it dies during the call) is an *Error wrapping
// ErrNotReachable: its state is unknown for this poll, and the next one
// tells. Anything else, including a known text with the wrong exit
// status, is an *Error wrapping ErrInvalid.
func ParseClStatus(hbstatus, rscstatus string, hbExit int) (Heartbeat, error) {
	switch {
	case strings.Contains(hbstatus, hbRefuses):
		return Heartbeat{}, notAnswering("hbstatus", hbstatus)
	case strings.Contains(hbstatus, hbRunning):
		if hbExit != 0 {
			return Heartbeat{}, invalidf(sourceClStatus, "hbstatus", "says running but exited %d", hbExit)
		}
	case strings.Contains(hbstatus, hbStopped), strings.Contains(hbstatus, hbNoSignon):
		if hbExit != 1 {
			return Heartbeat{}, invalidf(sourceClStatus, "hbstatus", "says stopped but exited %d", hbExit)
		}
		return Heartbeat{}, nil
	default:
		return Heartbeat{}, invalidf(sourceClStatus, "hbstatus", "unexpected output (exit %d): %q", hbExit, firstLine(hbstatus))
	}
	h := Heartbeat{Running: true}
	if strings.Contains(rscstatus, hbNoSignon) {
		return Heartbeat{}, nil
	}
	if strings.Contains(rscstatus, rscGone) {
		return Heartbeat{}, notAnswering("rscstatus", rscstatus)
	}
	w := strings.TrimSpace(rscstatus)
	i := slices.Index(resourceWords[ResourcesNone:], w) // "unknown" is not an answer
	switch {
	case w == "":
	case i >= 0:
		h.Resources = ResourcesNone + Resources(i)
	default:
		return Heartbeat{}, invalidf(sourceClStatus, "rscstatus", "unexpected output %q", firstLine(w))
	}
	return h, nil
}

// notAnswering is the error for a heartbeat that runs (or did a moment
// ago) but did not answer cl_status.
func notAnswering(where, out string) error {
	return &Error{Source: sourceClStatus, Where: where, Err: fmt.Errorf("heartbeat is %w: %s", ErrNotReachable, firstLine(out))}
}

// firstLine returns the first non-blank line of s, trimmed and cut to a
// length fit for an error message.
func firstLine(s string) string {
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			if len(l) > 160 {
				l = l[:160] + "..."
			}
			return l
		}
	}
	return ""
}
