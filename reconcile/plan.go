package reconcile

import (
	"fmt"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
)

// Override is an operator's manual decision about a real server; it wins
// over health.
type Override string

// Overrides.
const (
	NoOverride Override = ""
	Drain      Override = "drain"   // weight 0, keep checking, keep connections
	Disable    Override = "disable" // remove from the kernel table
)

// Op is a kind of IPVS write.
type Op string

// Ops, in the order plan emits them for one service.
const (
	OpCreateService Op = "create-service"
	OpUpdateService Op = "update-service"
	OpCreateDest    Op = "create-dest"
	OpUpdateDest    Op = "update-dest"
	OpSetWeight     Op = "set-weight"
	OpDeleteDest    Op = "delete-dest"
)

// Action is one IPVS write and why it is needed.
type Action struct {
	Op      Op
	Service lvs.Service // Key always; the rest for service ops
	Dest    lvs.Dest    // for dest ops
	Reason  string
}

func (a Action) String() string {
	switch a.Op {
	case OpCreateService, OpUpdateService:
		return fmt.Sprintf("%s %s scheduler %s: %s", a.Op, a.Service.Key, a.Service.Scheduler, a.Reason)
	case OpSetWeight:
		return fmt.Sprintf("%s %s -> %s weight %d: %s", a.Op, a.Service.Key, a.Dest.Key, a.Dest.Weight, a.Reason)
	}
	return fmt.Sprintf("%s %s -> %s (%s, weight %d): %s", a.Op, a.Service.Key, a.Dest.Key, a.Dest.Forward, a.Dest.Weight, a.Reason)
}

// State is everything plan decides from besides the config and the
// kernel table. It is plain data so plan stays a pure function.
type State struct {
	// Health by lvs.DestID. A checked server that is missing or Unknown
	// has no result yet: the kernel's table is the memory across
	// restarts, so a server the kernel already has keeps its kernel state
	// until its own first result, and only a server lvsmon adds follows
	// the service's startup policy.
	Health map[string]health.State
	// Weights are the weights the checks set (an external check's
	// dynamic exit status, a file check's value) by lvs.DestID: they
	// replace the configured weight of a server whose checks pass.
	// Overrides still win, and a down server is quiesced or removed
	// whatever its checks said of its weight.
	Weights   map[string]int32
	Overrides map[string]Override // by lvs.DestID
	// SorryActive says, per service id, whether the sorry server was in
	// use after the previous round: quorum hysteresis needs memory. A
	// service missing here (the first round after a start) takes it
	// from the kernel: the sorry server is active while the kernel has
	// it with a positive weight.
	SorryActive map[string]bool
	// Act is false on a node that must not write (a backup director with
	// ha.act_only_on: master); plan then returns no actions.
	Act bool
}

// Result is plan's answer: the actions, in order, and the sorry-server
// state per service before and after them.
type Result struct {
	Actions     []Action
	SorryActive map[string]bool
	// SorryBefore is the state the round started from (State.SorryActive,
	// or the kernel's when that had no memory of the service): a change
	// between the two is a sorry_on or sorry_off.
	SorryBefore map[string]bool
}

// Plan compares the desired state (config, health, overrides) with the
// kernel's table and returns the writes that close the gap, and nothing
// else: a table that matches gives no actions. Services that are not in
// the config, or not managed, are never touched.
func Plan(cfg *config.Config, cur lvs.Table, st State) Result {
	res := Result{SorryActive: map[string]bool{}, SorryBefore: map[string]bool{}}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !vs.IsManaged() {
			continue
		}
		ks := cur.Service(vs.Key)
		// A node that does not act keeps no memory: when it starts to act,
		// the kernel's table is what it inherits.
		was, known := st.SorryActive[vs.Key.ID()]
		if !known || !st.Act {
			was = sorryInKernel(vs, ks)
		}
		res.SorryActive[vs.Key.ID()], res.SorryBefore[vs.Key.ID()] = was, was
		if !st.Act {
			continue
		}
		res.SorryActive[vs.Key.ID()] = planService(vs, ks, was, st, &res.Actions)
	}
	return res
}

// sorryInKernel reports whether the kernel has vs's sorry server in use.
func sorryInKernel(vs *config.VirtualService, ks *lvs.Service) bool {
	if vs.Sorry == nil {
		return false
	}
	d := kernelDest(ks, vs.Sorry.Key)
	return d != nil && d.Weight > 0
}

// kernelDest is the kernel's real server k of service ks (nil when the
// kernel has no such service or server).
func kernelDest(ks *lvs.Service, k lvs.DestKey) *lvs.Dest {
	if ks == nil {
		return nil
	}
	return ks.Dest(k)
}

// desired is what one real server should look like in the kernel.
type desired struct {
	present bool
	dest    lvs.Dest
	why     string
}

func planService(vs *config.VirtualService, ks *lvs.Service, wasSorry bool, st State, acts *[]Action) bool {
	want := lvs.Service{Key: vs.Key, Scheduler: vs.Scheduler, Persistence: vs.Persistence.D(), Netmask: vs.PersistenceNetmask}
	switch {
	case ks == nil:
		*acts = append(*acts, Action{Op: OpCreateService, Service: want, Reason: "configured but not in the kernel table"})
	case ks.Scheduler != want.Scheduler || ks.Persistence != want.Persistence || ks.Netmask != want.Netmask:
		*acts = append(*acts, Action{Op: OpUpdateService, Service: want,
			Reason: fmt.Sprintf("kernel has scheduler %s persistence %s, config says %s %s", ks.Scheduler, ks.Persistence, want.Scheduler, want.Persistence)})
	}
	checked := len(vs.AllChecks()) > 0
	// The desired state of every configured real server.
	var live int64
	wants := make([]desired, len(vs.Reals))
	for i := range vs.Reals {
		r := &vs.Reals[i]
		id := lvs.DestID(vs.Key, r.Key)
		d := lvs.Dest{Key: r.Key, Forward: r.Fwd, Weight: r.ConfiguredWeight(), UpperThreshold: r.UpperThreshold, LowerThreshold: r.LowerThreshold}
		cur := kernelDest(ks, r.Key)
		h := st.Health[id]
		pending := h == health.Unknown && checked
		switch {
		case pending:
			// No result yet: decided below, after the overrides.
		case h != health.Unknown:
		case vs.AssumeUp():
			h = health.Up
		default:
			h = health.Down
		}
		switch {
		case st.Overrides[id] == Disable:
			wants[i] = desired{present: false, dest: d, why: "disabled by an operator"}
		case st.Overrides[id] == Drain:
			d.Weight = 0
			wants[i] = desired{present: true, dest: d, why: "drained by an operator"}
		case pending && cur != nil:
			// Found in the kernel: keep what it has until the first result
			// (a restart of lvsmon changes nothing, whatever the startup
			// policy). Only the forwarding and thresholds follow the config.
			d.Weight = cur.Weight
			wants[i] = desired{present: true, dest: d, why: "no check result yet: kernel weight kept"}
			live += int64(max(0, d.Weight))
		case pending && vs.AssumeUp():
			wants[i] = desired{present: true, dest: d, why: "no check result yet (startup: up)"}
			live += int64(d.Weight)
		case pending && vs.OnFailure == "remove":
			wants[i] = desired{present: false, dest: d, why: "no check result yet (startup: down)"}
		case pending:
			d.Weight = 0
			wants[i] = desired{present: true, dest: d, why: "no check result yet (startup: down)"}
		case h == health.Down && vs.OnFailure == "remove":
			wants[i] = desired{present: false, dest: d, why: "health check failing (on_failure: remove)"}
		case h == health.Down:
			d.Weight = 0
			wants[i] = desired{present: true, dest: d, why: "health check failing (quiescent)"}
		case checked:
			wants[i] = desired{present: true, dest: d, why: "health check passing"}
			if w, ok := st.Weights[id]; ok {
				d.Weight = min(max(w, 0), config.MaxWeight)
				wants[i] = desired{present: true, dest: d, why: fmt.Sprintf("health check passing, weight %d set by the check (configured %d)", d.Weight, r.ConfiguredWeight())}
			}
			live += int64(d.Weight)
		default:
			wants[i] = desired{present: true, dest: d, why: "configured (no health check)"}
			live += int64(d.Weight)
		}
	}
	// The sorry server: in when the live weight is below the quorum, out
	// when it is back above quorum plus hysteresis (keepalived's rule;
	// with the defaults, quorum 1 and hysteresis 0: when every real
	// server is out).
	q, hy := int64(vs.QuorumOrDefault()), int64(vs.Hysteresis)
	sorry := false
	switch {
	case vs.Sorry == nil:
	case wasSorry:
		sorry = live < q+hy // stays in until the live weight clears the band
	default:
		sorry = live < q-hy
	}
	for i := range vs.Reals {
		planDest(vs, ks, wants[i], acts)
	}
	if vs.Sorry != nil {
		sd := lvs.Dest{Key: vs.Sorry.Key, Forward: vs.Sorry.Fwd, Weight: 1}
		why := fmt.Sprintf("live weight %d is below the quorum %d", live, q)
		if !sorry {
			why = fmt.Sprintf("live weight %d reached the quorum", live)
		}
		w := desired{present: sorry, dest: sd, why: "sorry server: " + why}
		cur := kernelDest(ks, vs.Sorry.Key)
		if !sorry && cur != nil && vs.Persistence == 0 {
			// Leaving. IPVS silently drops the packets of a connection
			// whose real server was deleted (net.ipv4.vs.expire_nodest_conn
			// is off by default): the requests in flight to the sorry
			// server, and a browser's idle keep-alive connection to it,
			// would hang. So it is quiesced first, and deleted in a later
			// round, once it has no active connection. Not so for a
			// persistent service: its templates would keep sending their
			// clients to a quiesced sorry server.
			switch {
			case cur.Weight > 0:
				sd.Weight = 0
				w = desired{present: true, dest: sd, why: "sorry server: " + why + "; quiesced first so that its connections finish"}
			case cur.ActiveConns > 0:
				sd.Weight = cur.Weight
				w = desired{present: true, dest: sd, why: fmt.Sprintf("sorry server: quiesced, %d active connections to finish", cur.ActiveConns)}
			default:
				w.why = "sorry server: quiesced and without active connections"
			}
		}
		planDest(vs, ks, w, acts)
	}
	// Real servers in the kernel that the config does not list.
	if ks != nil {
		for _, d := range ks.Dests {
			if vs.Real(d.Key) == nil && (vs.Sorry == nil || vs.Sorry.Key != d.Key) {
				*acts = append(*acts, Action{Op: OpDeleteDest, Service: lvs.Service{Key: vs.Key}, Dest: d, Reason: "not in the config"})
			}
		}
	}
	return sorry
}

func planDest(vs *config.VirtualService, ks *lvs.Service, w desired, acts *[]Action) {
	cur := kernelDest(ks, w.dest.Key)
	svc := lvs.Service{Key: vs.Key}
	switch {
	case cur == nil && w.present:
		*acts = append(*acts, Action{Op: OpCreateDest, Service: svc, Dest: w.dest, Reason: w.why})
	case cur != nil && !w.present:
		*acts = append(*acts, Action{Op: OpDeleteDest, Service: svc, Dest: *cur, Reason: w.why})
	case cur == nil || !w.present:
	case cur.Forward != w.dest.Forward || cur.UpperThreshold != w.dest.UpperThreshold || cur.LowerThreshold != w.dest.LowerThreshold:
		*acts = append(*acts, Action{Op: OpUpdateDest, Service: svc, Dest: w.dest,
			Reason: fmt.Sprintf("kernel has %s thresholds %d/%d, want %s %d/%d (%s)", cur.Forward, cur.LowerThreshold, cur.UpperThreshold, w.dest.Forward, w.dest.LowerThreshold, w.dest.UpperThreshold, w.why)})
	case cur.Weight != w.dest.Weight:
		*acts = append(*acts, Action{Op: OpSetWeight, Service: svc, Dest: w.dest,
			Reason: fmt.Sprintf("weight %d -> %d: %s", cur.Weight, w.dest.Weight, w.why)})
	}
}
