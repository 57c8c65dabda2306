package sources

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// HeartbeatInstance is the instance name of the Heartbeat source's
// reports. haresources has no instance names, and a director runs one
// heartbeat.
const HeartbeatInstance = "heartbeat"

// Heartbeat polls a heartbeat 3 (haresources mode) node with cl_status.
//
// Its reports have one instance, "heartbeat": STOP with Running false
// when heartbeat is stopped, BACKUP when `cl_status rscstatus` says the
// node holds no resource group ("none"), and otherwise left to the VIPs
// (InstanceReport.VIPsDecide): MASTER while they are here.
//
// rscstatus describes resource groups, not a role. With the usual one
// group (the VIP, at home on the preferred node), the other node prints
// "local" the whole time it holds nothing, and "all" once it took the
// group over; for about 10 s after a start and around each takeover it
// prints "transition". None of those tells who holds the VIP, so the VIP
// presence does. Measured on a real heartbeat 3.0.6 pair
// (TestHeartbeatPair).
type Heartbeat struct {
	// ClStatus is the cl_status command; default "cl_status" from PATH.
	ClStatus string
	// Interval is the time between polls; default 5s.
	Interval time.Duration
	// Timeout bounds each cl_status run; default 5s.
	Timeout time.Duration
	// Log receives the source's own log lines; nil drops them.
	Log *slog.Logger
}

// Run polls until ctx ends, reporting after every poll.
func (h *Heartbeat) Run(ctx context.Context, report func(ha.Report)) error {
	log := logger(h.Log, ha.SourceHeartbeat)
	interval := positive(h.Interval, 5*time.Second)
	for {
		r := h.poll(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if r.Err != nil {
			log.Warn("heartbeat poll failed", "err", r.Err)
		}
		report(r)
		if !sleepCtx(ctx, interval) {
			return nil
		}
	}
}

func (h *Heartbeat) poll(ctx context.Context) ha.Report {
	bin := h.ClStatus
	if bin == "" {
		bin = "cl_status"
	}
	timeout := positive(h.Timeout, 5*time.Second)
	r := ha.Report{Source: ha.SourceHeartbeat, Time: time.Now()}

	hb, err := runTool(ctx, timeout, bin, "hbstatus")
	if err != nil {
		r.Err = fmt.Errorf("heartbeat: %s hbstatus: %w", bin, err)
		return r
	}
	// rscstatus only means something when heartbeat runs; when it does
	// not, cl_status would only fail to sign on.
	rsc := ""
	if hb.Exit == 0 {
		res, err := runTool(ctx, timeout, bin, "rscstatus")
		if err != nil {
			r.Err = fmt.Errorf("heartbeat: %s rscstatus: %w", bin, err)
			return r
		}
		rsc = res.Stdout + res.Stderr
	}
	st, err := ha.ParseClStatus(hb.Stdout+hb.Stderr, rsc, hb.Exit)
	r.Time = time.Now()
	if err != nil {
		r.Err = fmt.Errorf("heartbeat: %s: %w", bin, err)
		return r
	}
	in := ha.InstanceReport{Name: HeartbeatInstance}
	switch {
	case !st.Running:
		in.State = ha.StateStop
	case st.Resources == ha.ResourcesNone:
		in.State = ha.StateBackup // it holds nothing
	case st.Resources == ha.ResourcesUnknown:
		in.State = ha.StateUnknown // running, rscstatus not asked
	default:
		// local, foreign, all or transition: it holds (or is taking or
		// giving up) some resource group, and only the VIPs say whether
		// that makes it the active director.
		in.VIPsDecide = true
	}
	r.Running = st.Running
	r.Instances = []ha.InstanceReport{in}
	return r
}
