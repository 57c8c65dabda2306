package ha

import (
	"cmp"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// Disagreement kinds: sources that each look fine but cannot all be right.
const (
	// VIPWithoutMaster: a VIP of the instance is on a local interface
	// while the instance is not MASTER here: a stale VIP after a crashed
	// keepalived (SIGKILL leaves it), or a manual `ip addr add`. Traffic
	// for the VIP may land on the wrong director.
	VIPWithoutMaster = "vip_without_master"
	// MasterWithoutVIP: the instance is MASTER but a VIP is missing:
	// clients get no answer for it.
	MasterWithoutVIP = "master_without_vip"
	// TwoMasters: adverts from two masters for one VRID at once (a split
	// brain, a hung master that came back, a VRID clash).
	TwoMasters = "two_masters"
	// WireElsewhere: the instance says MASTER here, but the wire shows
	// another director advertising and none of our own adverts.
	WireElsewhere = "wire_master_elsewhere"
	// SourcesDiffer: two role sources (keepalived and pacemaker, say)
	// report different states for the same instance.
	SourcesDiffer = "sources_differ"
)

// DisagreementKinds lists every kind, for metrics that export all of them.
var DisagreementKinds = []string{VIPWithoutMaster, MasterWithoutVIP, TwoMasters, WireElsewhere, SourcesDiffer}

// MarshalText makes States read as their names in JSON.
func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// Change is a role event the Monitor found, as the event log keeps it:
// Kind events.RoleChange (From and To the instance's states, Actor the
// source that set the new one), events.Disagreement or events.Agreement
// (Reason the disagreement kind, VIPWithoutMaster, ...), with Time,
// Instance and a Message for humans.
type Change = events.Event

// Role is one instance's merged view.
type Role struct {
	Instance string `json:"instance"`
	VRID     int    `json:"vrid,omitempty"`
	State    State  `json:"state"`
	Priority int    `json:"priority,omitempty"`
	// Source is the source whose report set State.
	Source string `json:"source,omitempty"`
	// Since is when State began (as the source says, or when lvsmon first
	// saw it).
	Since time.Time `json:"since,omitzero"`
	// VIPs are the instance's VIPs lvsmon watches, with their presence.
	VIPs        []VIPPresence `json:"vips,omitempty"`
	WireMasters []WireMaster  `json:"wire_masters,omitempty"`
	// Disagreements are the kinds active now (held longer than the grace
	// period), sorted.
	Disagreements []string `json:"disagreements,omitempty"`
	Changes       uint64   `json:"changes"`
}

// SourceStatus is how one source is doing.
type SourceStatus struct {
	Name       string    `json:"name"`
	Up         bool      `json:"up"`      // last report read fine
	Running    bool      `json:"running"` // the HA daemon behind it runs
	LastReport time.Time `json:"last_report,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Status is the director's HA picture for the status API.
type Status struct {
	// Role summarises the instances: MASTER or BACKUP when all agree,
	// FAULT when any is in FAULT, MIXED, or UNKNOWN.
	Role          string         `json:"role"`
	Acting        bool           `json:"acting"`
	Instances     []Role         `json:"instances"`
	Sources       []SourceStatus `json:"sources"`
	Disagreements int            `json:"disagreements"`
}

// MonitorConfig configures a Monitor.
type MonitorConfig struct {
	// VIPs are the watched VIPs. Instances whose source names their own
	// VIPs (keepalived) are tied to those; the others (heartbeat,
	// pacemaker, VIP-only setups) to all of them.
	VIPs []netip.Addr
	// Grace is how long a disagreement must last before it is reported:
	// during a normal failover the state moves a few milliseconds before
	// the VIP does, and the sources are read at different moments.
	// Default 3 s.
	Grace time.Duration
	// Sources are the configured sources. The wire and the VIPs make
	// instances of their own (vrid-N, vip) only when no role source
	// (keepalived, pacemaker, heartbeat, simulated) is configured; empty
	// means "whatever reports".
	Sources []string
	// OnChange receives role changes and disagreements as they are found,
	// in order, from the goroutine calling Update or Tick.
	OnChange func(Change)
}

// sourceRank orders role sources by authority: the daemon that decides
// the role knows it best; the wire and the VIPs are cross-checks.
var sourceRank = map[string]int{
	SourceSimulated: 0, SourceKeepalived: 1, SourcePacemaker: 2, SourceHeartbeat: 3, SourceVRRP: 4, SourceVIP: 5,
}

// Monitor merges the sources' reports into one role per instance, flags
// disagreements and reports changes. It is safe for concurrent use.
type Monitor struct {
	cfg MonitorConfig

	mu      sync.Mutex
	reports map[string]Report // newest per source
	// failing holds the sources whose last read failed (their older
	// report is kept), counted from the first failure in a row.
	failing map[string]failing
	roles   map[string]*roleState
	out     []Change // found under mu, delivered after it

	deliverMu sync.Mutex
}

// failing counts a source's failed reads in a row.
type failing struct {
	since time.Time
	n     int
	err   string // the last one's error
}

// lostAfter is how many failed reads in a row, lasting longer than the
// grace period, make a role source's instances UNKNOWN. One failed read
// keeps the last role (a keepalived dump that timed out says nothing
// about the role, and its next report may be a refresh interval away);
// a polled cluster manager that stops answering (pacemaker after
// corosync died, heartbeat going away) must not keep showing MASTER.
const lostAfter = 3

type roleState struct {
	role Role
	// pending disagreements: kind → first seen.
	pending map[string]time.Time
	active  map[string]bool
	known   bool // State reported at least once
}

// NewMonitor returns a Monitor with no reports yet.
func NewMonitor(cfg MonitorConfig) *Monitor {
	if cfg.Grace <= 0 {
		cfg.Grace = 3 * time.Second
	}
	return &Monitor{cfg: cfg, reports: map[string]Report{}, failing: map[string]failing{}, roles: map[string]*roleState{}}
}

// Reconfigure takes new VIPs, grace and source list (a reload; OnChange
// stays). What the remaining sources reported is kept; reports of sources
// no longer configured are dropped, and so are the instances only they
// knew. Disagreements are judged again at once.
func (m *Monitor) Reconfigure(cfg MonitorConfig) {
	m.mu.Lock()
	defer m.deliver()
	if cfg.Grace <= 0 {
		cfg.Grace = 3 * time.Second
	}
	cfg.OnChange = m.cfg.OnChange
	m.cfg = cfg
	if len(cfg.Sources) > 0 {
		for src := range m.reports {
			if !slices.Contains(cfg.Sources, src) {
				delete(m.reports, src)
				delete(m.failing, src)
			}
		}
		for name, st := range m.roles {
			if !slices.Contains(cfg.Sources, st.role.Source) {
				delete(m.roles, name)
			}
		}
	}
	m.evaluate(time.Now(), "", false)
}

// Update takes one source's report. A report with Err keeps the source's
// previous report (a failed dump does not make the role flap to
// UNKNOWN) but marks the source down; a role source that keeps failing
// (lostAfter reads in a row, for longer than the grace period) turns its
// instances UNKNOWN until it answers again.
func (m *Monitor) Update(r Report) {
	m.mu.Lock()
	defer m.deliver()
	if r.Time.IsZero() {
		r.Time = time.Now()
	}
	if r.Err != nil {
		f := m.failing[r.Source]
		if f.n == 0 {
			f.since = r.Time
		}
		f.n++
		f.err = r.Err.Error()
		m.failing[r.Source] = f
		prev, ok := m.reports[r.Source]
		if !ok {
			prev = Report{Source: r.Source, Running: r.Running}
		}
		prev.Time = r.Time
		m.reports[r.Source] = prev
	} else {
		delete(m.failing, r.Source)
		m.reports[r.Source] = r
	}
	m.evaluate(r.Time, r.Source, r.Transition)
}

// Tick re-evaluates time-dependent findings (disagreements past their
// grace period). Call it about once a second.
func (m *Monitor) Tick(now time.Time) {
	m.mu.Lock()
	defer m.deliver()
	m.evaluate(now, "", false)
}

// view is one source's claim about one instance.
type view struct {
	source string
	inst   InstanceReport
}

// evaluate recomputes every instance's role from the latest reports, in
// name order, emitting role changes and judging disagreements; m.mu is
// held. trigger is the source whose report caused it, transition whether
// that report was a state transition.
func (m *Monitor) evaluate(now time.Time, trigger string, transition bool) {
	in := m.gather(now)
	for _, name := range slices.Sorted(maps.Keys(in.claims)) {
		vs := in.claims[name]
		slices.SortStableFunc(vs, func(a, b view) int { return cmp.Compare(sourceRank[a.source], sourceRank[b.source]) })
		st := m.roles[name]
		if st == nil {
			st = &roleState{role: Role{Instance: name}, pending: map[string]time.Time{}, active: map[string]bool{}}
			m.roles[name] = st
		}
		m.settle(name, st, vs[0], now, trigger, transition)
		st.attach(vs[0], in)
		m.judge(name, st, m.conditions(st, vs, in), now)
	}
	// Instances no source mentions any more keep their last state but
	// lose their disagreements.
	for _, name := range slices.Sorted(maps.Keys(m.roles)) {
		if _, ok := in.claims[name]; !ok {
			m.judge(name, m.roles[name], nil, now)
		}
	}
}

// inputs are the sources' latest reports, arranged for evaluate: the
// state claims per instance, and the VIP and wire views.
type inputs struct {
	claims    map[string][]view
	vips      *Report        // the VIP source's report; nil without one
	vipsKnown bool           // it is there and its read succeeded
	wire      []RouterReport // what the wire shows per VRID
}

// gather collects the claims of every source per instance, including
// the instances only the wire (a VRID) or only the VIPs define, with the
// states of sources that defer to the VIPs or lost their daemon set.
func (m *Monitor) gather(now time.Time) inputs {
	in := inputs{claims: map[string][]view{}}
	for _, src := range m.sourceNames() {
		r := m.reports[src]
		switch src {
		case SourceVIP:
			rr := r
			in.vips = &rr
			continue
		case SourceVRRP:
			in.wire = r.Routers
			continue
		}
		for _, inst := range r.Instances {
			in.claims[inst.Name] = append(in.claims[inst.Name], view{src, inst})
		}
		if !r.Running && r.Err == nil {
			// The daemon is stopped: every instance it reported before
			// is STOP (a SIGKILLed keepalived says nothing at all).
			for name, st := range m.roles {
				if st.role.Source == src && !hasInstance(r.Instances, name) {
					in.claims[name] = append(in.claims[name], view{src, InstanceReport{Name: name, VRID: st.role.VRID, State: StateStop, Priority: st.role.Priority}})
				}
			}
		}
	}
	roleSources := m.hasRoleSource()
	if !roleSources {
		m.wireInstances(&in)
	}
	// A VIP-only setup: one instance named "vip", MASTER while every VIP
	// is here, BACKUP while none is.
	if !roleSources && len(in.claims) == 0 && in.vips != nil && len(in.vips.VIPs) > 0 {
		n := 0
		for _, p := range in.vips.VIPs {
			if p.Present {
				n++
			}
		}
		st := StateUnknown
		switch n {
		case len(in.vips.VIPs):
			st = StateMaster
		case 0:
			st = StateBackup
		}
		in.claims["vip"] = []view{{SourceVIP, InstanceReport{Name: "vip", State: st}}}
	}
	// Sources that leave the role to the VIPs, and sources that lost
	// their daemon.
	in.vipsKnown = in.vips != nil && !m.isFailing(SourceVIP) && in.vips.Err == nil
	for _, vs := range in.claims {
		for i := range vs {
			if vs[i].inst.VIPsDecide {
				vs[i].inst.State = vipState(in.vips, in.vipsKnown, vs[i].inst.VIPs)
			}
			if m.lost(vs[i].source, now) {
				vs[i].inst.State = StateUnknown
			}
		}
	}
	return in
}

// wireInstances makes the VRIDs seen on the wire that no named instance
// claims instances of their own, named after the VRID.
func (m *Monitor) wireInstances(in *inputs) {
	tied := map[int]bool{}
	for _, vs := range in.claims {
		for _, v := range vs {
			if v.inst.VRID != 0 {
				tied[v.inst.VRID] = true
			}
		}
	}
	for _, rt := range in.wire {
		if tied[rt.VRID] {
			continue
		}
		st := StateBackup
		for _, w := range rt.Masters {
			if w.Local {
				st = StateMaster
			}
		}
		name := fmt.Sprintf("vrid-%d", rt.VRID)
		in.claims[name] = append(in.claims[name], view{SourceVRRP, InstanceReport{Name: name, VRID: rt.VRID, State: st}})
	}
}

// settle makes the best-ranked source's claim the instance's role, and
// emits the change (or, the first time, the role at start).
func (m *Monitor) settle(name string, st *roleState, best view, now time.Time, trigger string, transition bool) {
	old := st.role.State
	st.role.VRID = cmp.Or(best.inst.VRID, st.role.VRID)
	st.role.Priority = best.inst.Priority
	st.role.Source = best.source
	if best.inst.State == old && st.known {
		return
	}
	since := best.inst.Since
	if since.IsZero() || best.inst.State != old && st.known {
		since = now
	}
	st.role.State = best.inst.State
	st.role.Since = since
	if !st.known {
		st.known = true
		m.emit(Change{Kind: events.RoleChange, Time: now, Instance: name, To: best.inst.State.String(), Actor: best.source,
			Message: fmt.Sprintf("%s: %s at start (priority %d, %s)", name, best.inst.State, best.inst.Priority, best.source)})
		return
	}
	st.role.Changes++
	how := best.source
	if best.inst.VIPsDecide {
		how += " + VIPs"
	}
	if m.lost(best.source, now) {
		how += " not answering"
	}
	if transition && trigger == best.source {
		how += " (transition)"
	}
	m.emit(Change{Kind: events.RoleChange, Time: now, Instance: name,
		From: old.String(), To: best.inst.State.String(), Actor: best.source,
		Message: fmt.Sprintf("%s: %s → %s (priority %d, %s)", name, old, best.inst.State, best.inst.Priority, how)})
}

// attach ties the VIPs and the wire's masters to the instance.
func (st *roleState) attach(best view, in inputs) {
	st.role.VIPs = st.role.VIPs[:0]
	if in.vips != nil {
		for _, p := range in.vips.VIPs {
			if len(best.inst.VIPs) == 0 || slices.Contains(best.inst.VIPs, p.Addr) {
				st.role.VIPs = append(st.role.VIPs, p)
			}
		}
	}
	st.role.WireMasters = nil
	for _, rt := range in.wire {
		if rt.VRID == st.role.VRID && st.role.VRID != 0 {
			st.role.WireMasters = rt.Masters
		}
	}
}

// conditions are the disagreements the instance shows now; judge turns
// those that hold for Grace into events.
func (m *Monitor) conditions(st *roleState, vs []view, in inputs) map[string]bool {
	best := vs[0]
	cond := map[string]bool{}
	if in.vipsKnown && best.source != SourceVIP {
		anyHere, allHere := false, len(st.role.VIPs) > 0
		for _, p := range st.role.VIPs {
			anyHere = anyHere || p.Present
			allHere = allHere && p.Present
		}
		known := st.role.State != StateUnknown
		cond[VIPWithoutMaster] = known && anyHere && st.role.State != StateMaster
		cond[MasterWithoutVIP] = st.role.State == StateMaster && len(st.role.VIPs) > 0 && !allHere
	}
	if !m.isFailing(SourceVRRP) && m.reports[SourceVRRP].Source != "" {
		cond[TwoMasters] = len(st.role.WireMasters) > 1
		local := false
		for _, w := range st.role.WireMasters {
			local = local || w.Local
		}
		cond[WireElsewhere] = best.source != SourceVRRP && st.role.State == StateMaster && len(st.role.WireMasters) > 0 && !local
	}
	for _, v := range vs[1:] {
		if v.source != SourceVRRP && v.inst.State != best.inst.State {
			cond[SourcesDiffer] = true
		}
	}
	return cond
}

// isFailing says whether src's last read failed.
func (m *Monitor) isFailing(src string) bool {
	_, ok := m.failing[src]
	return ok
}

// lost says whether role source src has failed lostAfter reads in a row
// for longer than the grace period.
func (m *Monitor) lost(src string, now time.Time) bool {
	f, ok := m.failing[src]
	return ok && f.n >= lostAfter && now.Sub(f.since) >= m.cfg.Grace
}

// vipState is the state of an instance whose VIPs decide: MASTER while
// every one of them (every configured VIP when the source names none) is
// here, BACKUP otherwise; UNKNOWN when presence is not known or no VIP is
// configured.
func vipState(rep *Report, known bool, vips []netip.Addr) State {
	if !known {
		return StateUnknown
	}
	n, here := 0, 0
	for _, p := range rep.VIPs {
		if len(vips) == 0 || slices.Contains(vips, p.Addr) {
			n++
			if p.Present {
				here++
			}
		}
	}
	switch {
	case n == 0:
		return StateUnknown
	case here == n:
		return StateMaster
	}
	return StateBackup
}

// hasRoleSource says whether a source that knows the role itself is
// configured (or, without a configured list, has reported).
func (m *Monitor) hasRoleSource() bool {
	isRole := func(n string) bool { return n != SourceVIP && n != SourceVRRP }
	if len(m.cfg.Sources) > 0 {
		return slices.ContainsFunc(m.cfg.Sources, isRole)
	}
	for n := range m.reports {
		if isRole(n) {
			return true
		}
	}
	return false
}

func hasInstance(ins []InstanceReport, name string) bool {
	for _, in := range ins {
		if in.Name == name {
			return true
		}
	}
	return false
}

// judge turns conditions into reported disagreements after the grace
// period, and reports their end.
func (m *Monitor) judge(name string, st *roleState, cond map[string]bool, now time.Time) {
	for _, kind := range DisagreementKinds {
		if cond[kind] {
			first, ok := st.pending[kind]
			if !ok {
				st.pending[kind] = now
				first = now
			}
			if !st.active[kind] && now.Sub(first) >= m.cfg.Grace {
				st.active[kind] = true
				m.emit(Change{Kind: events.Disagreement, Time: now, Instance: name, Reason: kind, Message: describe(kind, &st.role)})
			}
			continue
		}
		delete(st.pending, kind)
		if st.active[kind] {
			delete(st.active, kind)
			m.emit(Change{Kind: events.Agreement, Time: now, Instance: name, Reason: kind, Message: fmt.Sprintf("%s: %s is over", name, kind)})
		}
	}
	st.role.Disagreements = st.role.Disagreements[:0]
	for _, kind := range DisagreementKinds {
		if st.active[kind] {
			st.role.Disagreements = append(st.role.Disagreements, kind)
		}
	}
	slices.Sort(st.role.Disagreements)
}

func describe(kind string, r *Role) string {
	var here, missing []string
	for _, p := range r.VIPs {
		if p.Present {
			here = append(here, p.Addr.String())
		} else {
			missing = append(missing, p.Addr.String())
		}
	}
	var wire []string
	for _, w := range r.WireMasters {
		wire = append(wire, fmt.Sprintf("%s prio %d", w.Addr, w.Priority))
	}
	switch kind {
	case VIPWithoutMaster:
		return fmt.Sprintf("%s: VIP %s on this director while the instance is %s (%s): stale VIP?", r.Instance, strings.Join(here, ", "), r.State, r.Source)
	case MasterWithoutVIP:
		return fmt.Sprintf("%s: MASTER (%s) but VIP %s missing here", r.Instance, r.Source, strings.Join(missing, ", "))
	case TwoMasters:
		return fmt.Sprintf("%s: two masters on the wire for VRID %d: %s", r.Instance, r.VRID, strings.Join(wire, "; "))
	case WireElsewhere:
		return fmt.Sprintf("%s: MASTER (%s) but the wire shows only %s advertising", r.Instance, r.Source, strings.Join(wire, "; "))
	case SourcesDiffer:
		return fmt.Sprintf("%s: role sources disagree (%s says %s)", r.Instance, r.Source, r.State)
	}
	return r.Instance + ": " + kind
}

// emit queues a change; m.mu is held. The changes of one evaluation go
// out in deliver, after the lock is released: OnChange appends to the
// event log (an fsync), and Acting, the reconciler's gate, must not
// wait for a disk; a callback may also read the monitor.
func (m *Monitor) emit(c Change) {
	m.out = append(m.out, c)
}

// deliver releases m.mu and calls OnChange with the queued changes, in
// the order they were found. deliverMu keeps the order across calls
// (the changes of one Update reach OnChange before those of the next)
// without holding m.mu during the calls.
func (m *Monitor) deliver() {
	out := m.out
	m.out = nil
	fn := m.cfg.OnChange
	m.deliverMu.Lock()
	m.mu.Unlock()
	defer m.deliverMu.Unlock()
	if fn == nil {
		return
	}
	for _, c := range out {
		fn(c)
	}
}

func (m *Monitor) sourceNames() []string {
	names := make([]string, 0, len(m.reports))
	for n := range m.reports {
		names = append(names, n)
	}
	slices.SortFunc(names, func(a, b string) int { return cmp.Compare(sourceRank[a], sourceRank[b]) })
	return names
}

// Acting says whether a director gated with act_only_on: master may write
// IPVS: at least one instance is MASTER. An unknown role does not act: a
// freshly started backup must not rewrite the table before it knows.
func (m *Monitor) Acting() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.acting()
}

func (m *Monitor) acting() bool {
	for _, st := range m.roles {
		if st.role.State == StateMaster {
			return true
		}
	}
	return false
}

// Status returns the current picture (copies; safe to keep).
func (m *Monitor) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Status{Acting: m.acting(), Instances: []Role{}, Sources: []SourceStatus{}}
	for _, st := range m.roles {
		r := st.role
		r.VIPs = slices.Clone(r.VIPs)
		r.WireMasters = slices.Clone(r.WireMasters)
		r.Disagreements = slices.Clone(r.Disagreements)
		s.Instances = append(s.Instances, r)
		s.Disagreements += len(r.Disagreements)
	}
	slices.SortFunc(s.Instances, func(a, b Role) int { return strings.Compare(a.Instance, b.Instance) })
	for _, n := range m.sourceNames() {
		r := m.reports[n]
		s.Sources = append(s.Sources, SourceStatus{Name: n, Up: !m.isFailing(n), Running: r.Running, LastReport: r.Time, Error: m.failing[n].err})
	}
	s.Role = summarize(s.Instances)
	return s
}

func summarize(rs []Role) string {
	if len(rs) == 0 {
		return StateUnknown.String()
	}
	first := rs[0].State
	same := true
	for _, r := range rs {
		if r.State == StateFault {
			return StateFault.String()
		}
		same = same && r.State == first
	}
	if same {
		return first.String()
	}
	return "MIXED"
}
