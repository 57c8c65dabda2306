package reconcile

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// This file keeps lvsmon from fighting another IPVS writer. Two kinds
// of evidence: a process known to write IPVS (ScanProcesses), and stray
// writes, changes to a managed service's table between two of the
// reconciler's reads that the reconciler did not make. The reconciler
// is the only writer in lvsmon and reads the table at the start of
// every round, so between two reads its own writes are exactly what the
// round between them tried (failed writes included: one may have been
// applied before its error). Only those objects are excused, and only
// the fields a backend reads are compared, both reads through the same
// backend: what a backend cannot see reads the same twice.

// OtherWriter is another writer lvsmon has seen, and the services it
// keeps lvsmon from writing.
type OtherWriter struct {
	// Kind is "process" or "stray_write".
	Kind string `json:"kind"`
	// Who: "keepalived (pid 812)", or "unknown" for stray writes.
	Who string `json:"who"`
	// What: why the process writes IPVS, or the changes seen.
	What  string    `json:"what"`
	Since time.Time `json:"since"`
	// Last is the last stray write seen (stray_write).
	Last time.Time `json:"last,omitzero"`
	// Services are the managed services' ids it covers.
	Services []string `json:"services"`
	// Held says whether lvsmon leaves them alone (ipvs.takeover:
	// when_gone) or writes them anyway (always).
	Held bool `json:"held"`
	// Until says when lvsmon takes over by itself.
	Until string `json:"until"`
}

// Kinds of OtherWriter.
const (
	WriterProcess = "process"
	WriterStray   = "stray_write"
)

// scanEvery is how often a round looks through /proc at most: rounds
// follow every health transition, and a scan of a director with 2000
// processes takes tens of milliseconds.
const scanEvery = 5 * time.Second

// touch is what lvsmon wrote to one service since the last read.
type touch struct {
	service bool
	dests   map[lvs.DestKey]bool
}

// strayHold is a service whose table changed behind lvsmon's back.
type strayHold struct {
	since, last time.Time
	what        string
}

// others is the reconciler's memory of other writers. The reconciler's
// goroutine changes it with the Reconciler's mu held.
type others struct {
	prev    *lvs.Table
	touched map[string]*touch
	stray   map[string]*strayHold
	procs   map[int]procHold
	scanned time.Time
	scanErr string
	strays  uint64 // stray changes seen, for the metric
}

type procHold struct {
	p     Process
	since time.Time
	// announced: it covered a managed service when seen, and an event
	// said so. A keepalived that writes only services lvsmon watches
	// (managed: false) is an ordinary setup, not news.
	announced bool
}

func (o *others) touch(a Action) {
	if o.touched == nil {
		o.touched = map[string]*touch{}
	}
	id := a.Service.Key.ID()
	t := o.touched[id]
	if t == nil {
		t = &touch{dests: map[lvs.DestKey]bool{}}
		o.touched[id] = t
	}
	switch a.Op {
	case OpCreateService, OpUpdateService:
		t.service = true
	default:
		t.dests[a.Dest.Key] = true
	}
}

// strayChanges lists the changes of service vs between prev and cur
// that t does not excuse.
func strayChanges(k lvs.ServiceKey, prev, cur *lvs.Table, t *touch) []string {
	if t == nil {
		t = &touch{}
	}
	p, c := prev.Service(k), cur.Service(k)
	var out []string
	switch {
	case p == nil && c == nil:
		return nil
	case p == nil && !t.service:
		return []string{"service added"}
	case c == nil:
		// lvsmon never deletes a service.
		return []string{"service deleted"}
	case p == nil:
		p = &lvs.Service{Key: k}
	case !t.service && (p.Scheduler != c.Scheduler || p.Persistence != c.Persistence || p.Netmask != c.Netmask):
		out = append(out, fmt.Sprintf("scheduler %s persistence %s -> %s %s", p.Scheduler, p.Persistence, c.Scheduler, c.Persistence))
	}
	keys := map[lvs.DestKey]bool{}
	for _, d := range p.Dests {
		keys[d.Key] = true
	}
	for _, d := range c.Dests {
		keys[d.Key] = true
	}
	sorted := slices.SortedFunc(maps.Keys(keys), func(a, b lvs.DestKey) int { return cmpBool(a.Less(b), b.Less(a)) })
	for _, dk := range sorted {
		if t.dests[dk] {
			continue
		}
		pd, cd := p.Dest(dk), c.Dest(dk)
		switch {
		case pd == nil:
			out = append(out, fmt.Sprintf("real server %s added (weight %d)", dk, cd.Weight))
		case cd == nil:
			out = append(out, fmt.Sprintf("real server %s removed", dk))
		case pd.Weight != cd.Weight:
			out = append(out, fmt.Sprintf("weight of %s %d -> %d", dk, pd.Weight, cd.Weight))
		case pd.Forward != cd.Forward || pd.UpperThreshold != cd.UpperThreshold || pd.LowerThreshold != cd.LowerThreshold:
			out = append(out, fmt.Sprintf("%s changed to %s thresholds %d/%d", dk, cd.Forward, cd.LowerThreshold, cd.UpperThreshold))
		}
	}
	return out
}

func cmpBool(less, greater bool) int {
	switch {
	case less:
		return -1
	case greater:
		return 1
	}
	return 0
}

// summary shortens a list of changes for a log line or a problem.
func summary(ch []string) string {
	if len(ch) > 3 {
		return strings.Join(ch[:3], "; ") + fmt.Sprintf("; and %d more", len(ch)-3)
	}
	return strings.Join(ch, "; ")
}

// observe runs at the start of a round, with the table just read: it
// finds stray writes since the last read, scans for processes when one
// is due, and lets go of what is over. It returns the ids of the
// services this round must not write.
func (r *Reconciler) observe(cfg *config.Config, tab *lvs.Table, now time.Time) map[string]bool {
	r.mu.Lock()
	o := &r.others
	prev, touched := o.prev, o.touched
	o.prev, o.touched = tab, nil
	r.mu.Unlock()
	quiet := cfg.IPVS.TakeoverAfter.D()
	always := cfg.IPVS.Takeover == config.TakeoverAlways

	type change struct {
		id, name string
		what     []string
	}
	var found []change
	if prev != nil {
		for i := range cfg.VirtualServices {
			vs := &cfg.VirtualServices[i]
			if !vs.IsManaged() {
				continue
			}
			if ch := strayChanges(vs.Key, prev, tab, touched[vs.Key.ID()]); len(ch) > 0 {
				found = append(found, change{vs.Key.ID(), vs.Name, ch})
			}
		}
	}
	var procs []Process
	var scanErr error
	scan := r.procs != nil && (o.scanned.IsZero() || now.Sub(o.scanned) >= scanEvery)
	if scan {
		procs, scanErr = r.procs()
	}

	var started, ended []events.Event
	r.mu.Lock()
	// A change to a service a writer process covers, before this scan
	// or after it, is that process's (keepalived removes its services
	// as it exits): no stray hold of its own.
	explained := map[string]bool{}
	cover := func() {
		for _, h := range o.procs {
			for _, id := range h.p.Covered(cfg) {
				explained[id] = true
			}
		}
	}
	cover()
	if scan {
		o.scanned = now
		o.scanErr = ""
		if scanErr != nil {
			// Keep what was seen: a failing scan is no proof of absence.
			o.scanErr = scanErr.Error()
		} else {
			next := map[int]procHold{}
			for _, p := range procs {
				h, ok := o.procs[p.PID]
				if !ok {
					h.since = now
				}
				if !h.announced && len(p.Covered(cfg)) > 0 {
					h.announced = true
					started = append(started, events.Event{Kind: events.OtherWriter, Reason: WriterProcess,
						Message: fmt.Sprintf("%s writes IPVS: %s; %s", p.Who(), p.Why, coverage(p, cfg))})
				}
				h.p = p
				next[p.PID] = h
			}
			for pid, h := range o.procs {
				if _, ok := next[pid]; !ok && h.announced {
					ended = append(ended, events.Event{Kind: events.OtherWriterGone, Reason: WriterProcess,
						Message: fmt.Sprintf("%s is gone; lvsmon writes its services again", h.p.Who())})
				}
			}
			o.procs = next
		}
	}
	cover()
	for _, c := range found {
		o.strays += uint64(len(c.what))
		if explained[c.id] {
			continue
		}
		h := o.stray[c.id]
		if h == nil {
			if o.stray == nil {
				o.stray = map[string]*strayHold{}
			}
			h = &strayHold{since: now}
			o.stray[c.id] = h
			started = append(started, events.Event{Kind: events.OtherWriter, Service: c.id, Reason: WriterStray,
				Message: fmt.Sprintf("%s %s: the IPVS table changed behind lvsmon's back: %s", c.name, c.id, summary(c.what))})
		}
		h.last, h.what = now, summary(c.what)
	}
	for id, h := range o.stray {
		if now.Sub(h.last) >= quiet {
			delete(o.stray, id)
			ended = append(ended, events.Event{Kind: events.OtherWriterGone, Service: id, Reason: WriterStray,
				Message: fmt.Sprintf("%s: no change lvsmon did not make for %s; lvsmon writes it again", id, quiet)})
		}
	}
	held := map[string]bool{}
	if !always {
		for id := range o.stray {
			held[id] = true
		}
		for _, h := range o.procs {
			for _, id := range h.p.Covered(cfg) {
				held[id] = true
			}
		}
	}
	r.mu.Unlock()

	if scanErr != nil {
		r.log.Error("looking for other IPVS writers failed; the last scan's findings stand", "err", scanErr)
	}
	for _, e := range started {
		what := "lvsmon does not write these services until it is gone (ipvs.takeover: when_gone)"
		if e.Reason == WriterStray {
			what = fmt.Sprintf("lvsmon does not write this service until it has gone %s without a change lvsmon did not make (ipvs.takeover: when_gone)", quiet)
		}
		if always {
			what = "lvsmon writes them anyway (ipvs.takeover: always): the two undo each other's changes"
		}
		r.log.Warn("another program writes IPVS", "kind", e.Reason, "service", e.Service, "message", e.Message, "effect", what)
		r.event(e)
	}
	for _, e := range ended {
		r.log.Info("the other IPVS writer is gone", "kind", e.Reason, "service", e.Service, "message", e.Message)
		r.event(e)
	}
	return held
}

// coverage says which services a process covers, for a message.
func coverage(p Process, cfg *config.Config) string {
	ids := p.Covered(cfg)
	switch {
	case p.All:
		return fmt.Sprintf("it may write any service (%d managed)", len(ids))
	case len(ids) == 0:
		return "none of them is managed by lvsmon"
	}
	return "managed services it names: " + strings.Join(ids, ", ")
}

func (r *Reconciler) event(e events.Event) {
	if r.ev == nil {
		return
	}
	e.Actor = events.ActorReconciler
	if _, err := r.ev.Append(e); err != nil {
		r.log.Error("writing an event failed", "err", err)
	}
}

// OtherWriters returns the other writers seen now, processes first, for
// the status page, the API and the metrics. cfg names the services.
func (r *Reconciler) OtherWriters(cfg *config.Config) []OtherWriter {
	always := cfg.IPVS.Takeover == config.TakeoverAlways
	r.mu.Lock()
	defer r.mu.Unlock()
	o := &r.others
	var out []OtherWriter
	pids := slices.Sorted(maps.Keys(o.procs))
	for _, pid := range pids {
		h := o.procs[pid]
		out = append(out, OtherWriter{Kind: WriterProcess, Who: h.p.Who(), What: h.p.Why + "; " + coverage(h.p, cfg), Since: h.since,
			Services: h.p.Covered(cfg), Held: !always, Until: "it exits"})
	}
	ids := slices.Sorted(maps.Keys(o.stray))
	for _, id := range ids {
		h := o.stray[id]
		out = append(out, OtherWriter{Kind: WriterStray, Who: "unknown", What: h.what, Since: h.since, Last: h.last,
			Services: []string{id}, Held: !always,
			Until: fmt.Sprintf("no change lvsmon did not make for %s (after %s)", cfg.IPVS.TakeoverAfter.D(), h.last.Add(cfg.IPVS.TakeoverAfter.D()).Format(time.TimeOnly))})
	}
	return out
}

// StrayChanges is how many changes lvsmon did not make it has seen in
// the tables of managed services.
func (r *Reconciler) StrayChanges() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.others.strays
}

// ScanError is the last failed process scan's error ("" when it worked).
func (r *Reconciler) ScanError() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.others.scanErr
}

// hold drops the actions on held services from res (and keeps their
// sorry-server memory as it was: nothing was written), logging what is
// left undone whenever that changes.
func (r *Reconciler) hold(res Result, held map[string]bool) []Action {
	if len(held) == 0 {
		r.lastHeld = ""
		return res.Actions
	}
	var keep []Action
	var undone []string
	for _, a := range res.Actions {
		if held[a.Service.Key.ID()] {
			undone = append(undone, a.String())
			continue
		}
		keep = append(keep, a)
	}
	for id := range held {
		if was, ok := res.SorryBefore[id]; ok {
			res.SorryActive[id] = was
		}
	}
	if s := strings.Join(undone, "\n"); s != r.lastHeld {
		// One line, however many services wait: the first actions, the
		// rest at debug level.
		r.lastHeld = s
		if len(undone) > 0 {
			r.log.Warn("not written: another program writes these services", "actions", len(undone), "services", len(held),
				"first", summary(undone))
		}
		for _, l := range undone {
			r.log.Debug("not written: another program writes this service", "action", l)
		}
	}
	return keep
}
