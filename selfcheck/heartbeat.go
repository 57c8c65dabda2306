package selfcheck

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"time"
)

// Heartbeat hands over with heartbeat's own tools: hb_standby gives this
// node's resources (Resources: all or local) to the peer; when healthy
// again, hb_takeover local takes this node's own group back if Failback
// (ha.cf's auto_failback on: the group's home node holds it). Without
// Failback the resources stay on the peer, as heartbeat itself would
// leave them.
type Heartbeat struct {
	Standby, Takeover string
	Resources         string
	Failback          bool
	Timeout           time.Duration
}

// Name implements Action.
func (h Heartbeat) Name() string { return "heartbeat hb_standby " + h.Resources }

// Set implements Action.
func (h Heartbeat) Set(ctx context.Context, sick bool) error {
	if sick {
		return runTool(ctx, h.Timeout, h.Standby, h.Resources)
	}
	if !h.Failback {
		return nil
	}
	return runTool(ctx, h.Timeout, h.Takeover, "local")
}

// runTool runs an HA stack's tool, its output becoming the error's text.
func runTool(ctx context.Context, timeout time.Duration, tool string, args ...string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tool, args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		msg := strings.TrimSpace(out.String())
		if len(msg) > 300 {
			msg = msg[:300] + "..."
		}
		return fmt.Errorf("%s %s: %w: %s", tool, strings.Join(args, " "), err, msg)
	}
	return nil
}
