package probe

import (
	"context"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "none", NoPort: true}, probeNone)
}

// probeNone is the "none" check: no probe at all, the servers are always
// up. It exists for services whose health is someone else's business
// (a firewall cluster's members, say) but that lvsmon should still manage
// and graph.
func probeNone(context.Context, Target, *config.Check) error { return nil }
