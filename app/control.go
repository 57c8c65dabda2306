package app

import (
	"fmt"
	"strings"

	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/reconcile"
	"github.com/lvsmon/lvsmon/web"
)

// SetOverride implements web.Control.
func (a *App) SetOverride(id, mode, by, comment string) error {
	cfg := a.cur.Load()
	var found *config.VirtualService
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		for _, r := range vs.Reals {
			if lvs.DestID(vs.Key, r.Key) == id {
				found = vs
			}
		}
	}
	if found == nil {
		return fmt.Errorf("%w: %q", web.ErrUnknownServer, id)
	}
	if err := a.ovr.SetWithComment(id, reconcile.Override(mode), by, comment); err != nil {
		return err
	}
	to, msg := mode, fmt.Sprintf("%s: %s set by %s", found.Name, mode, by)
	if mode == "" {
		to, msg = events.Enabled, fmt.Sprintf("%s: override cleared (enabled) by %s", found.Name, by)
	}
	if comment != "" {
		msg += ": " + comment
	}
	if _, err := a.ev.Append(events.Event{Kind: events.Override, Service: found.Key.ID(), Server: id, To: to, Reason: comment, Actor: by, Message: msg}); err != nil {
		a.log.Error("writing an event failed", "err", err)
	}
	if a.rec != nil {
		a.rec.Kick()
	}
	return nil
}

// ReleaseHolds implements web.Control: an operator believes the failures
// the mass-failure guard holds.
func (a *App) ReleaseHolds(by string) int {
	n := a.chk.ReleaseHolds(by)
	if n > 0 && a.rec != nil {
		a.rec.Kick()
	}
	return n
}

// problems are the director's own troubles for the status page and API:
// inconclusive checks, mass-failure holds, a damaged overrides file, IPVS
// writes the kernel refuses, another program writing the table.
func (a *App) problems() []web.Problem {
	out := a.selfCheckProblems()
	if s := a.chk.Local().Summary(); s != "" {
		out = append(out, web.Problem{Source: "checker", Kind: "local_trouble", Severity: "critical", Message: s})
	}
	for _, h := range a.chk.Holds() {
		where := "service " + h.Scope
		if h.Scope == checker.DirectorScope {
			where = "the whole director"
		}
		until := "until an operator releases it (POST /api/v1/guard/release)"
		if !h.Until.IsZero() {
			until = "until " + h.Until.Local().Format("15:04:05") + " at the latest, or POST /api/v1/guard/release"
		}
		out = append(out, web.Problem{Source: "guard", Kind: "mass_failure_hold", Severity: "critical", Since: h.Since,
			Message: fmt.Sprintf("mass failure on %s (%s): the downs of %d real servers are held, %d of them still failing; nothing is written for them %s",
				where, h.Class, len(h.Servers), h.Failing, until)})
	}
	if p := a.ovr.Problem(); p != "" {
		out = append(out, web.Problem{Source: "overrides", Kind: "damaged_file", Severity: "warning", Message: p})
	}
	if a.rec != nil {
		if st := a.rec.Stats(); st.LastError != "" && st.LastErrorTime.After(st.LastOK) {
			out = append(out, web.Problem{Source: "reconciler", Kind: "ipvs_write_failed", Severity: "critical", Since: st.LastErrorTime,
				Message: "the kernel refused the last IPVS change: " + st.LastError})
		}
		out = append(out, otherWriterProblems(a.rec, a.cur.Load())...)
	}
	if p, ok := originProblem(a.cur.Load()); ok {
		out = append(out, p)
	}
	return append(out, a.peerProblems()...)
}

// history is a real server's recent check results for its page.
func (a *App) history(id string) []web.CheckHistory {
	hs := a.chk.History(id)
	if hs == nil {
		return nil
	}
	out := make([]web.CheckHistory, len(hs))
	for i, h := range hs {
		out[i] = web.CheckHistory{Type: h.Type, Runs: make([]web.CheckRun, len(h.Runs))}
		for j, r := range h.Runs {
			out[i].Runs[j] = web.CheckRun{Outcome: string(r.Outcome), Message: r.Message, Count: r.Count, First: r.First, Last: r.Last, LastDur: r.LastDur, MaxDur: r.MaxDur}
		}
	}
	return out
}

// server merges a real server's health, last check and override, for
// the status pages and API (one server at a time: a page of 100 services
// asks for 5,000 of 50,000).
func (a *App) server(id string, check bool) (web.ServerInfo, bool) {
	var in web.ServerInfo
	st, checked := a.chk.StatusOf(id)
	if checked {
		in = web.ServerInfo{Health: st.Health.String(), Message: st.LastMsg, Since: st.Since, CheckWeight: st.CheckWeight}
		if check {
			in.Check = st
		}
	}
	e, overridden := a.ovr.Get(id)
	if overridden {
		o := map[string]any{"mode": string(e.Mode), "since": e.Since, "by": e.By}
		if e.Comment != "" {
			o["comment"] = e.Comment
		}
		in.Override = o
		in.Mode, in.OverrideBy, in.OverrideSince = string(e.Mode), e.By, e.Since
	}
	return in, checked || overridden
}

func (a *App) sorryActive(id string) bool { return a.rec != nil && a.rec.SorryActive(id) }

// reconcilerStatus is the status API's reconciler section.
func (a *App) reconcilerStatus() *web.ReconcilerStatus {
	if a.rec == nil {
		return nil
	}
	st := web.ReconcilerStatus(a.rec.Stats())
	return &st
}

// rrdStatus is the status API's rrd section.
func (a *App) rrdStatus() *web.RRDStatus {
	h := a.store.Health()
	st := web.RRDStatus{Files: h.Files, LastUpdate: h.LastUpdate, LastDuration: h.LastDuration, Updates: h.Updates,
		Errors: h.Errors, Skipped: h.Skipped, Damaged: h.Damaged}
	for _, f := range h.FailingFiles {
		st.FailingFiles = append(st.FailingFiles, web.RRDFileError(f))
	}
	for _, f := range h.DamagedFiles {
		st.DamagedFiles = append(st.DamagedFiles, web.RRDDamagedFile(f))
	}
	return &st
}

// describeService renders a service's state now for a mail: every real
// server with weight (live/configured), health, override and the last
// check's message, and the sorry server.
func (a *App) describeService(id string) string {
	cfg := a.cur.Load()
	var vs *config.VirtualService
	for i := range cfg.VirtualServices {
		if cfg.VirtualServices[i].Key.ID() == id {
			vs = &cfg.VirtualServices[i]
		}
	}
	if vs == nil {
		return ""
	}
	live := map[string]int32{}
	if snap := a.coll.Snapshot(); snap != nil {
		for _, s := range snap.Table.Services {
			if s.Key.ID() != id {
				continue
			}
			for _, dst := range s.Dests {
				live[lvs.DestID(s.Key, dst.Key)] = dst.Weight
			}
		}
	}
	status := map[string]checker.ServerStatus{}
	for _, st := range a.chk.Status() {
		status[st.ID] = st
	}
	ovr := a.ovr.Entries()
	var b strings.Builder
	up := 0
	line := func(r *config.RealServer, sorry bool) {
		sid := lvs.DestID(vs.Key, r.Key)
		w, in := live[sid]
		weight := "not in the kernel"
		if sorry {
			weight = "out"
		}
		if in {
			weight = fmt.Sprintf("weight %d/%d", w, r.ConfiguredWeight())
			if w > 0 && !sorry {
				up++
			}
		}
		role := ""
		if sorry {
			role = " (sorry server)"
		}
		st, checked := status[sid]
		h := st.Health.String()
		switch {
		case sorry && in:
			h = "in use"
		case sorry:
			h = "standby"
		case !checked:
			h = "unchecked"
		}
		fmt.Fprintf(&b, "  %-28s %-9s %s%s", r.Key.String(), h, weight, role)
		if o, ok := ovr[sid]; ok {
			fmt.Fprintf(&b, ", override %s", o.Mode)
		}
		if st.LastMsg != "" && h != health.Up.String() {
			fmt.Fprintf(&b, ": %s", st.LastMsg)
		}
		b.WriteByte('\n')
	}
	for i := range vs.Reals {
		line(&vs.Reals[i], false)
	}
	if vs.Sorry != nil {
		line(vs.Sorry, true)
	}
	return fmt.Sprintf("%d of %d real servers take connections:\n%s", up, len(vs.Reals), b.String())
}

// serviceName maps a service id to its configured name.
func (a *App) serviceName(id string) string {
	for _, vs := range a.cur.Load().VirtualServices {
		if vs.Key.ID() == id {
			return vs.Name
		}
	}
	return ""
}

// configuredWeight is a configured real server's weight, for its weight
// graph.
func (a *App) configuredWeight(id string) (int, bool) {
	for _, vs := range a.cur.Load().VirtualServices {
		for _, r := range vs.Reals {
			if lvs.DestID(vs.Key, r.Key) == id {
				return int(r.ConfiguredWeight()), true
			}
		}
	}
	return 0, false
}

// serviceIDs lists the configured services, for the daily digest.
func (a *App) serviceIDs() []string {
	var ids []string
	for _, vs := range a.cur.Load().VirtualServices {
		ids = append(ids, vs.Key.ID())
	}
	return ids
}

// otherWriterProblems are the other IPVS writers the reconciler sees:
// critical while lvsmon leaves their services alone (nobody acts on its
// health checks there), a warning when it writes anyway.
func otherWriterProblems(rec *reconcile.Reconciler, cfg *config.Config) []web.Problem {
	var out []web.Problem
	for _, w := range rec.OtherWriters(cfg) {
		who := w.Who
		if w.Kind == reconcile.WriterStray {
			who = "a program or person lvsmon cannot name"
		}
		msg := fmt.Sprintf("%s writes the IPVS table of %s: %s. ", who, strings.Join(w.Services, ", "), w.What)
		sev := "warning"
		if w.Held {
			sev = "critical"
			msg += "lvsmon does not write these services (health is checked, nothing is applied) until " + w.Until + "; stop the other writer or set ipvs.takeover: always"
		} else {
			msg += "lvsmon writes them anyway (ipvs.takeover: always): the two undo each other's changes"
		}
		if len(w.Services) == 0 {
			continue // keepalived writing services lvsmon only watches
		}
		out = append(out, web.Problem{Source: "reconciler", Kind: "other_writer", Severity: sev, Since: w.Since, Message: msg})
	}
	if e := rec.ScanError(); e != "" {
		out = append(out, web.Problem{Source: "reconciler", Kind: "writer_scan_failed", Severity: "warning",
			Message: "looking for other IPVS writers in " + cfg.IPVS.ProcRoot + " failed: " + e})
	}
	return out
}
