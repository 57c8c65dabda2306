package config

import "time"

// Guard is the mass-failure guard: when many real servers fail at once
// without an answer (timeouts, unreachable), the director's own network
// is the likelier culprit, and lvsmon holds its writes for them rather
// than empty a whole site on one bad moment.
type Guard struct {
	// Share: more than this share of a service's (or the director's)
	// servers in service failing within one check interval, for the same
	// reason, holds the writes for them. 1 turns the guard off.
	Share float64 `yaml:"share"`
	// MinServers is the least number of failing servers that can trip
	// the guard: with fewer, one server's failure is a share.
	MinServers int `yaml:"min_servers"`
	// MaxHold ends a hold that the evidence has not ended: the failures
	// are then believed (a real outage of every server brings the sorry
	// server in after this long). 0: only an operator ends a hold.
	MaxHold *Duration `yaml:"max_hold"`
}

// Hold is MaxHold, its default when unset.
func (g Guard) Hold() time.Duration {
	if g.MaxHold == nil {
		return DefaultGuardMaxHold
	}
	return g.MaxHold.D()
}

// Guard defaults.
const (
	DefaultGuardShare      = 0.5
	DefaultGuardMinServers = 3
	DefaultGuardMaxHold    = time.Minute
)

// guardDefaults: share and min_servers have no meaningful zero; an unset
// max_hold (nil) is the default, while 0 is "only an operator".
func (c *Config) guardDefaults() {
	if c.Guard.Share == 0 {
		c.Guard.Share = DefaultGuardShare
	}
	if c.Guard.MinServers == 0 {
		c.Guard.MinServers = DefaultGuardMinServers
	}
}

func (v *validator) guard(g *Guard) {
	if g.Share < 0 || g.Share > 1 {
		v.errf("guard.share", "%g is not a share: want more than 0 and at most 1 (1 turns the guard off)", g.Share)
	}
	if g.MinServers < 2 {
		v.errf("guard.min_servers", "%d: at least 2 (one failing server is never a mass failure)", g.MinServers)
	}
	if g.Hold() < 0 {
		v.errf("guard.max_hold", "%s is negative (0: only an operator ends a hold)", g.Hold())
	}
}
