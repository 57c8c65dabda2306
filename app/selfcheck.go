package app

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/selfcheck"
	"github.com/lvsmon/lvsmon/web"
)

// newSelfCheck builds the runner of ha.self_checks and ha.handover; nil
// without self checks. The probe types run through probeFn, as real
// servers' checks do; the built-ins read lvsmon's own parts.
func (a *App) newSelfCheck(cfg *config.Config, probeFn checker.ProbeFunc) *selfcheck.Runner {
	h := &cfg.HA
	if len(h.SelfChecks) == 0 {
		return nil
	}
	o := selfcheck.Options{Log: a.component("selfcheck"), Event: a.event}
	for _, sc := range h.SelfChecks {
		o.Checks = append(o.Checks, selfcheck.Check{Name: sc.Name, Type: sc.Type, Interval: sc.Interval.D(), Rise: sc.Rise, Fall: sc.Fall,
			Run: a.selfCheckRun(sc.Type, &sc.Check, probeFn)})
	}
	if ho := h.Handover; ho != nil {
		o.StateFile = ho.StateFile
		if k := ho.Keepalived; k != nil {
			o.Actions = append(o.Actions, selfcheck.TrackFile{Path: k.TrackFile, Weight: k.Weight})
		}
		if hb := ho.Heartbeat; hb != nil {
			o.Actions = append(o.Actions, selfcheck.Heartbeat{Standby: hb.HBStandby, Takeover: hb.HBTakeover, Resources: hb.Resources,
				Failback: *hb.Failback, Timeout: hb.Timeout.D()})
		}
		if p := ho.Pacemaker; p != nil {
			o.Actions = append(o.Actions, selfcheck.Pacemaker{CrmAttribute: p.CrmAttribute, Attribute: p.Attribute, Node: p.Node, Timeout: p.Timeout.D()})
		}
		if pc := ho.PeerCheck; pc != nil {
			o.PeerCheck = &selfcheck.Check{Name: fmt.Sprintf("peer %s %s:%d", pc.Type, pc.Address, pc.Port), Type: pc.Type,
				Interval: pc.Interval.D(), Rise: pc.Rise, Fall: pc.Fall, Run: a.selfCheckRun(pc.Type, pc, probeFn)}
		}
	}
	// PeerHealth is the hook for lvsmon's peer API (another part of
	// lvsmon reads the peer's own status); nil until it is wired.
	o.Peer = a.peerHealth
	return selfcheck.New(o)
}

// selfCheckRun is one self check's probe.
func (a *App) selfCheckRun(typ string, c *config.Check, probeFn checker.ProbeFunc) func(context.Context) error {
	switch typ {
	case config.SelfCheckCollector:
		return func(context.Context) error { return a.collectorHealth() }
	case config.SelfCheckReconciler:
		return func(context.Context) error { return a.reconcilerHealth() }
	}
	// The check's address and port are the target; the service is
	// none.
	vs := &config.VirtualService{}
	rs := &config.RealServer{}
	if addr, err := netip.ParseAddr(c.Address); err == nil {
		rs.Key = lvs.DestKey{Addr: addr.Unmap(), Port: uint16(c.Port)}
	}
	return func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(1+c.Retries)*c.Timeout.D()+time.Second)
		defer cancel()
		return probeFn(ctx, vs, rs, c)
	}
}

// collectorHealth fails while the collector's IPVS reads fail or have
// stopped (not before the first read: a starting lvsmon is not sick).
func (a *App) collectorHealth() error {
	last := a.reads.last.Load()
	if last == 0 {
		return nil
	}
	if e := a.reads.err.Load(); e != nil {
		return fmt.Errorf("the collector's IPVS reads fail: %s", *e)
	}
	step := a.coll.Step()
	if age := a.now().Sub(time.Unix(0, last)); age > 3*step+10*time.Second {
		return fmt.Errorf("the collector's last IPVS read returned %s ago (step %s)", age.Round(time.Second), step)
	}
	return nil
}

// reconcilerHealth fails while the kernel refuses the reconciler's
// writes.
func (a *App) reconcilerHealth() error {
	if a.rec == nil {
		return nil
	}
	if st := a.rec.Stats(); st.LastError != "" && st.LastErrorTime.After(st.LastOK) {
		return errors.New("the kernel refused the last IPVS change: " + st.LastError)
	}
	return nil
}

// selfCheckProblems are the status API's problems of the self checks.
func (a *App) selfCheckProblems() []web.Problem {
	if a.self == nil {
		return nil
	}
	v := a.self.Status()
	var out []web.Problem
	switch {
	case v.HandedOver:
		out = append(out, web.Problem{Source: "selfcheck", Kind: "handover", Severity: "critical", Since: v.Since,
			Message: "this director's self checks fail; its VIPs are handed to the peer: " + v.Reason})
	case v.Refused != "":
		out = append(out, web.Problem{Source: "selfcheck", Kind: "handover_refused", Severity: "critical",
			Message: "this director's self checks fail (" + v.Reason + ") but it keeps its VIPs: " + v.Refused})
	}
	if v.ActionError != "" {
		out = append(out, web.Problem{Source: "selfcheck", Kind: "handover_action_failed", Severity: "critical",
			Message: "the hand-over action failed: " + v.ActionError})
	}
	return out
}

// peerHealth is the self checks' view of the peers section's directors,
// beyond ha.handover's peer_check: without peers it is unknown (the
// stack's own election decides); a peer that cannot be reached is not
// known to be healthy, so no VIP is handed to it; a reachable peer that
// is itself handing over (its own self checks fail) is not healthy.
func (a *App) peerHealth() (healthy, known bool, why string) {
	sts := a.peers.Status()
	if len(sts) == 0 {
		return false, false, ""
	}
	for _, st := range sts {
		switch {
		case !st.Pulled:
			return false, true, "peer " + st.Name + " not pulled yet"
		case !st.Up:
			return false, true, "peer " + st.Name + " cannot be reached: " + st.LastError
		case st.Last != nil && slices.ContainsFunc(st.Last.ProblemKinds, func(k string) bool { return strings.HasPrefix(k, "selfcheck/") }):
			return false, true, "peer " + st.Name + " fails its own self checks"
		}
	}
	return true, true, ""
}
