package selfcheck

import (
	"context"
	"time"
)

// Pacemaker hands over through a transient node attribute: crm_attribute
// sets Attribute to 1 on Node while the self checks fail and to 0 when
// they pass. A location rule in the CIB gives the VIP's resource a
// negative score on a node where it is 1; pacemaker then moves the
// resource to the peer unless the peer scores as badly (sick too, or
// offline), and moves it back as the constraints and stickiness say.
// The attribute lives until the node reboots (--lifetime reboot).
type Pacemaker struct {
	CrmAttribute, Attribute, Node string
	Timeout                       time.Duration
}

// Name implements Action.
func (p Pacemaker) Name() string { return "pacemaker node attribute " + p.Attribute }

// Set implements Action.
func (p Pacemaker) Set(ctx context.Context, sick bool) error {
	v := "0"
	if sick {
		v = "1"
	}
	return runTool(ctx, p.Timeout, p.CrmAttribute, "--node", p.Node, "--name", p.Attribute, "--update", v, "--lifetime", "reboot")
}

// Reset implements Resetter: a restarted lvsmon sets the attribute to 0,
// so one that stopped while handing over does not keep the VIPs away for
// good (the attribute lives until the node reboots).
func (p Pacemaker) Reset(ctx context.Context) error { return p.Set(ctx, false) }
