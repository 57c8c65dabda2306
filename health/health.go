// Package health names what lvsmon believes of one real server: the
// checker produces these states and the reconciler plans from them, so the
// two meet on a type instead of on each other.
package health

// State is what the checker knows of one real server.
type State int

// States. Unknown is the state before the first result; what it means for
// traffic is the service's startup policy.
const (
	Unknown State = iota
	Up
	Down
)

func (s State) String() string {
	switch s {
	case Up:
		return "up"
	case Down:
		return "down"
	}
	return "unknown"
}

// MarshalText writes the state as String does, so JSON says "up".
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }
