package web

import (
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// ServiceConfig is what a service's config asks for, beside the kernel's
// values the status shows: a peer director compares it with its own
// config, so that both directors of a pair are found to check and serve
// the same way before a failover. Configured weights are the real
// servers' configured_weight.
type ServiceConfig struct {
	Scheduler          string  `json:"scheduler"`
	PersistenceSeconds float64 `json:"persistence_seconds"`
	// SorryServer is "address:port forward"; empty without one.
	SorryServer string `json:"sorry_server,omitempty"`
	// Check is config.CheckSettings: every check key that changes what
	// the check does, in a fixed order (secrets left out).
	Check string `json:"check,omitempty"`
}

// serviceConfig is vs's ServiceConfig.
func serviceConfig(vs *config.VirtualService) *ServiceConfig {
	sc := &ServiceConfig{Scheduler: vs.Scheduler, PersistenceSeconds: vs.Persistence.D().Seconds(), Check: config.CheckSettings(vs)}
	if vs.Sorry != nil {
		sc.SorryServer = SorryServerString(vs.Sorry)
	}
	return sc
}

// SorryServerString writes a sorry server as ServiceConfig has it.
func SorryServerString(r *config.RealServer) string {
	return r.Key.String() + " " + r.Fwd.String()
}

// PeerStatus is the status API's view of one peer director (config
// peers): whether its status could be pulled, what it says about itself,
// and the drift between it and this director. Drift is only known while
// the peer is up: an unreachable peer has DriftKnown false, never an
// empty drift list that would read as "in sync".
type PeerStatus struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Up   bool   `json:"up"`
	// Director, Version, Role, VIPs and Problems are the peer's own, from
	// its last good status.
	Director string   `json:"director,omitempty"`
	Version  string   `json:"version,omitempty"`
	Role     string   `json:"role,omitempty"`
	VIPs     []string `json:"vips,omitempty"` // the VIPs on the peer's interfaces
	Problems int      `json:"problems"`
	// SampledAt is when the peer last read its kernel table.
	SampledAt     time.Time `json:"sampled_at,omitzero"`
	LastSuccess   time.Time `json:"last_success,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
	DriftKnown    bool      `json:"drift_known"`
	Drift         []Drift   `json:"drift"`
}

// Drift is one difference between this director and a peer.
type Drift struct {
	// Table is "config" or "kernel".
	Table string `json:"table"`
	// Kind is service, real_server, weight, scheduler, persistence,
	// sorry_server or check.
	Kind    string `json:"kind"`
	Service string `json:"service"`
	Server  string `json:"server,omitempty"`
	// Local and Peer are the values here and there ("absent" when one
	// side lacks the object).
	Local string `json:"local"`
	Peer  string `json:"peer"`
}
