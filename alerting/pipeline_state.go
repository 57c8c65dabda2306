package alerting

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// This file is the pipeline's decision logic: what to do with one event
// (observe) and what is due at a given time (tick, nextDue). It reads no
// clock and does no I/O: the time is an argument and everything it
// decides is in pipelineState, which the shell (pipeline.go) persists.
// That is what makes it table-testable and what makes a restart resume
// exactly where the last saved state left off.

// Reasons an event (or a reminder) is deliberately not mailed, as
// counted in PipelineStats.Suppressed.
const (
	SuppressedKind        = "kind"         // its kind is not in Kinds
	SuppressedService     = "service"      // its service is not in Services
	SuppressedDaemonState = "daemon_state" // lvsmon was in a daemon state not in DaemonStates
	SuppressedBackup      = "backup"       // a real-server event while this director is not the master
	SuppressedDuplicate   = "duplicate"    // it announces the state already known
	SuppressedFlapping    = "flapping"     // the server is flapping; the change is summed up once it is stable
)

// Daemon states, as ldirectord's emailalertstatus names them. lvsmon
// derives them from its own events: starting for Settle after
// daemon_start, stopping after daemon_stop, reloading for Settle after an
// applied reload, running otherwise.
const (
	DaemonStarting  = "starting"
	DaemonRunning   = "running"
	DaemonStopping  = "stopping"
	DaemonReloading = "reloading"
)

// Kinds of the notes the pipeline adds to mails besides events. They
// share item.Kind with the events' kinds but never reach the event log.
const (
	noteReminder events.Kind = "reminder" // a server is still down (ldirectord's emailalertfreq)
	noteFlapping events.Kind = "flapping" // a server started flapping: its changes are not mailed one by one
	noteStable   events.Kind = "stable"   // a flapping server has been stable for FlapWindow: its final state
)

// item is one line of an alert mail: an event that passed the filters or
// a note the pipeline made.
type item struct {
	Seq      uint64      `json:"seq,omitempty"` // the event's number; 0 for reminders and stable notes
	Time     time.Time   `json:"time"`
	Kind     events.Kind `json:"kind"`
	Service  string      `json:"service,omitempty"`
	Server   string      `json:"server,omitempty"`
	Instance string      `json:"instance,omitempty"`
	// From, To and Reason are the event's (events.Event); Reason is
	// also the failing check's message in reminders and stable notes.
	From    string `json:"from,omitempty"`
	To      string `json:"to,omitempty"`
	Reason  string `json:"reason,omitempty"`
	Message string `json:"message,omitempty"`
	// Actor is who made the change (an override's operator).
	Actor string `json:"actor,omitempty"`
	// Since is when the server went down (up events, reminders, stable
	// notes) or last changed (flapping notes).
	Since time.Time `json:"since,omitzero"`
	// Down is the server's state for flapping and stable notes.
	Down bool `json:"down,omitempty"`
	// Changes is how many transitions made a server flapping.
	Changes int `json:"changes,omitempty"`
}

// serverMem is what the pipeline knows of one real server. A server it
// has no memory of is up (the checker's startup state needs no mail).
type serverMem struct {
	Service string    `json:"service"`
	Down    bool      `json:"down,omitempty"`
	Since   time.Time `json:"since"` // of the current state: the last transition
	// Message is the down event's message and Reason its reason, which
	// reminders give. The message keeps the JSON name "reason" it had
	// before events had fields: an older release reads it back, and a
	// state that release saved has only it (see upgrade).
	Message string `json:"reason,omitempty"`
	Reason  string `json:"why,omitempty"`
	// Notified is when its down state last left the grouping window (in
	// a mail or into the digest backlog), or when a reminder was last
	// considered: reminders are due Reminder after it.
	Notified time.Time   `json:"notified,omitzero"`
	Changes  []time.Time `json:"changes,omitempty"` // transitions within FlapWindow
	Flapping bool        `json:"flapping,omitempty"`
}

// roleMem is the last known role and disagreement of an HA instance.
type roleMem struct {
	Role string `json:"role,omitempty"`
	// Disagree is the last disagreement's message, "" when the sources
	// agree: the same text again is the same disagreement repeated (the
	// message is compared whole, never read).
	Disagree string `json:"disagree,omitempty"`
}

// daemonMem tracks lvsmon's own daemon state from its events.
type daemonMem struct {
	Started  time.Time `json:"started,omitzero"`
	Reloaded time.Time `json:"reloaded,omitzero"`
	Stopping bool      `json:"stopping,omitempty"`
}

func (d *daemonMem) note(e *events.Event) {
	switch e.Kind {
	case events.DaemonStart:
		*d = daemonMem{Started: e.Time}
	case events.DaemonStop:
		d.Stopping = true
	case events.Reload:
		if e.To != events.Rejected {
			d.Reloaded = e.Time
		}
	}
}

func (d *daemonMem) state(at time.Time, settle time.Duration) string {
	within := func(t time.Time) bool { return !t.IsZero() && !at.Before(t) && at.Before(t.Add(settle)) }
	switch {
	case d.Stopping:
		return DaemonStopping
	case within(d.Started):
		return DaemonStarting
	case within(d.Reloaded):
		return DaemonReloading
	}
	return DaemonRunning
}

// backlog holds what the rate limit held back, for one digest mail: the
// first digestLines items in full, counts and event numbers of all.
type backlog struct {
	Items  []item         `json:"items,omitempty"`
	More   int            `json:"more,omitempty"` // items beyond Items
	Counts map[string]int `json:"counts,omitempty"`
	Seqs   seqRanges      `json:"seqs,omitempty"`
	Since  time.Time      `json:"since,omitzero"` // when the first item was held back
}

func (b *backlog) empty() bool { return len(b.Items) == 0 && b.More == 0 }

func (b *backlog) add(it item, keep int) {
	if b.Since.IsZero() {
		b.Since = it.Time
	}
	if b.Counts == nil {
		b.Counts = map[string]int{}
	}
	b.Counts[string(it.Kind)]++
	if it.Seq != 0 {
		b.Seqs = b.Seqs.add(it.Seq)
	}
	if len(b.Items) < keep {
		b.Items = append(b.Items, it)
	} else {
		b.More++
	}
}

// pipelineState is everything the pipeline remembers, saved as one JSON
// file after every step that changed it. Cursor and the rest always
// describe the same moment: the memory is the result of handling exactly
// the events up to Cursor.
type pipelineState struct {
	Version int `json:"version"`
	// Cursor is the last event seq handled: mailed, held in Group or
	// Backlog (which are saved with it), or deliberately suppressed.
	Cursor  uint64                `json:"cursor"`
	Servers map[string]*serverMem `json:"servers,omitempty"`
	Sorry   map[string]bool       `json:"sorry,omitempty"` // services whose sorry server is on
	Roles   map[string]*roleMem   `json:"roles,omitempty"`
	Daemon  daemonMem             `json:"daemon"`
	// Group is the grouping window's content; it is flushed GroupWindow
	// after GroupStart (at once when FlushNow).
	Group      []item    `json:"group,omitempty"`
	GroupStart time.Time `json:"group_start,omitzero"`
	FlushNow   bool      `json:"flush_now,omitempty"`
	// Sent are the times of the mails of the last hour, for the rate
	// limit.
	Sent    []time.Time `json:"sent,omitempty"`
	Backlog backlog     `json:"backlog"`
	// InFlight is a mail decided but maybe not yet in the outbox; see
	// Pipeline for the crash-safety argument.
	InFlight *Mail `json:"in_flight,omitempty"`
	// The daily digest: its spec (a changed spec restarts the schedule),
	// the next run, and where the last one ended.
	DigestSpec string    `json:"digest_spec,omitempty"`
	DigestNext time.Time `json:"digest_next,omitzero"`
	DigestFrom time.Time `json:"digest_from,omitzero"`
}

func newState() *pipelineState {
	return &pipelineState{Version: 1, Servers: map[string]*serverMem{}, Sorry: map[string]bool{}, Roles: map[string]*roleMem{}}
}

// counters are the engine's statistics since the process started.
type counters struct {
	events, mailed, grouped, digested, reminders, daily, lost uint64
	suppressed                                                map[string]uint64
}

// batch is what one mail reports.
type batch struct {
	digest bool // the rate limit's digest: bl holds the held-back items
	items  []item
	bl     backlog
}

// engine applies the policy to the state. It is used by one goroutine.
type engine struct {
	pol  *policy
	st   *pipelineState
	name func(string) string // display name of a service id, for the Services filter
	c    counters
}

func newEngine(pol *policy, st *pipelineState, name func(string) string) *engine {
	return &engine{pol: pol, st: st, name: name, c: counters{suppressed: map[string]uint64{}}}
}

func (e *engine) suppress(reason string) { e.c.suppressed[reason]++ }

// observe handles one event at time now (master: whether this director
// is the master now). It returns the reason the event is not mailed, ""
// when it was added to the grouping window. The memory (known states,
// flap history, daemon state) is updated whatever the filters say: a
// filter decides what is mailed, not what is true.
func (e *engine) observe(ev events.Event, now time.Time, master bool) string {
	e.c.events++
	st, pol := e.st, e.pol
	if ev.Seq > st.Cursor {
		st.Cursor = ev.Seq
	}
	ds := st.Daemon.state(ev.Time, pol.settle)
	st.Daemon.note(&ev)
	it := item{Seq: ev.Seq, Time: ev.Time, Kind: ev.Kind, Service: ev.Service, Server: ev.Server, Instance: ev.Instance,
		From: ev.From, To: ev.To, Reason: ev.Reason, Message: ev.Message, Actor: ev.Actor}

	var sm *serverMem
	switch ev.Kind {
	case events.ServerDown, events.ServerUp:
		if ev.Server == "" {
			break
		}
		down := ev.Kind == events.ServerDown
		sm = st.Servers[ev.Server]
		if sm == nil && !down || sm != nil && sm.Down == down {
			// The state already known: the checker's startup announcement
			// after a restart, or a repeat.
			return e.dup()
		}
		if sm == nil {
			sm = &serverMem{}
			st.Servers[ev.Server] = sm
		}
		if !down {
			it.Since = sm.Since
		}
		sm.Service, sm.Down, sm.Since, sm.Message, sm.Reason = ev.Service, down, ev.Time, "", ""
		if down {
			sm.Message, sm.Reason = ev.Message, ev.Reason
			sm.Notified = time.Time{}
		}
		sm.Changes = append(pruneTimes(sm.Changes, ev.Time.Add(-pol.flapWindow)), ev.Time)
	case events.SorryOn, events.SorryOff:
		on := ev.Kind == events.SorryOn
		if st.Sorry[ev.Service] == on {
			return e.dup()
		}
		if on {
			st.Sorry[ev.Service] = true
		} else {
			delete(st.Sorry, ev.Service)
		}
	case events.RoleChange:
		r := e.role(ev.Instance)
		if ev.To != "" && r.Role == ev.To {
			return e.dup()
		}
		r.Role = ev.To
	case events.Disagreement:
		r := e.role(ev.Instance)
		if r.Disagree == ev.Message {
			return e.dup()
		}
		r.Disagree = ev.Message
	case events.Agreement:
		r := e.role(ev.Instance)
		if r.Disagree == "" {
			return e.dup()
		}
		r.Disagree = ""
	}

	if reason := e.filter(&ev, ds, master); reason != "" {
		e.suppress(reason)
		return reason
	}
	if sm != nil {
		if sm.Flapping {
			e.suppress(SuppressedFlapping)
			return SuppressedFlapping
		}
		if pol.flapCount > 0 && len(sm.Changes) >= pol.flapCount {
			sm.Flapping = true
			it.Kind, it.Down, it.Changes, it.Since = noteFlapping, sm.Down, len(sm.Changes), sm.Since
		}
	}
	e.add(it, now)
	return ""
}

func (e *engine) dup() string {
	e.suppress(SuppressedDuplicate)
	return SuppressedDuplicate
}

func (e *engine) role(inst string) *roleMem {
	r := e.st.Roles[inst]
	if r == nil {
		r = &roleMem{}
		e.st.Roles[inst] = r
	}
	return r
}

// filter applies Kinds, Services, DaemonStates and the master-only rule
// to ev (for reminders and notes: the event they stand for).
func (e *engine) filter(ev *events.Event, daemonState string, master bool) string {
	pol := e.pol
	if !pol.filter.Kind(ev) {
		return SuppressedKind
	}
	if !pol.filter.Service(ev.Service, e.name) {
		return SuppressedService
	}
	if realServerKind(ev.Kind) {
		if pol.states != nil && !pol.states[daemonState] {
			return SuppressedDaemonState
		}
		if !master && !pol.backupMails {
			return SuppressedBackup
		}
	}
	return ""
}

// realServerKind reports the kinds that DaemonStates and the master-only
// rule apply to: what the checker says about real servers.
func realServerKind(kind events.Kind) bool {
	switch kind {
	case events.ServerDown, events.ServerUp, events.SorryOn, events.SorryOff, events.SimulatedDown, events.SimulatedUp, events.WeightChange:
		return true
	}
	return false
}

func (e *engine) add(it item, now time.Time) {
	st := e.st
	if len(st.Group) == 0 {
		st.GroupStart = now
	}
	st.Group = append(st.Group, it)
	if it.Kind == events.DaemonStop {
		// lvsmon is about to exit: do not keep this in a window that
		// would only be flushed at the next start.
		st.FlushNow = true
	}
}

// tick does what is due at now: reminders and the end of flaps join the
// grouping window, the window is flushed, the rate limit holds back or
// releases. It returns the one mail to send now, if any; call it again
// after the mail is queued, as more may be due.
func (e *engine) tick(now time.Time, master bool) *batch {
	e.remind(now, master)
	e.unflap(now, master)
	e.forget(now)
	return e.flush(now)
}

func (e *engine) remind(now time.Time, master bool) {
	if e.pol.reminder <= 0 {
		return
	}
	ds := e.st.Daemon.state(now, e.pol.settle)
	for _, id := range sortedKeys(e.st.Servers) {
		sm := e.st.Servers[id]
		if !sm.Down || sm.Flapping || e.inGroup(id) {
			continue
		}
		if now.Before(reminderBase(sm).Add(e.pol.reminder)) {
			continue
		}
		sm.Notified = now
		if reason := e.filter(&events.Event{Kind: events.ServerDown, Service: sm.Service}, ds, master); reason != "" {
			e.suppress(reason)
			continue
		}
		e.c.reminders++
		e.add(item{Time: now, Kind: noteReminder, Service: sm.Service, Server: id, Reason: sm.Reason, Message: sm.Message, Since: sm.Since, Down: true}, now)
	}
}

func reminderBase(sm *serverMem) time.Time {
	if sm.Notified.After(sm.Since) {
		return sm.Notified
	}
	return sm.Since
}

func (e *engine) inGroup(server string) bool {
	for i := range e.st.Group {
		if e.st.Group[i].Server == server {
			return true
		}
	}
	return false
}

func (e *engine) unflap(now time.Time, master bool) {
	ds := e.st.Daemon.state(now, e.pol.settle)
	for _, id := range sortedKeys(e.st.Servers) {
		sm := e.st.Servers[id]
		if !sm.Flapping || now.Before(sm.Since.Add(e.pol.flapWindow)) {
			continue
		}
		sm.Flapping, sm.Changes = false, nil
		kind := events.ServerUp
		if sm.Down {
			kind = events.ServerDown
			sm.Notified = now
		}
		if reason := e.filter(&events.Event{Kind: kind, Service: sm.Service}, ds, master); reason != "" {
			e.suppress(reason)
			continue
		}
		e.add(item{Time: now, Kind: noteStable, Service: sm.Service, Server: id, Reason: sm.Reason, Message: sm.Message, Since: sm.Since, Down: sm.Down}, now)
	}
}

// forget drops the memory of servers that are up and quiet: no memory
// means up.
func (e *engine) forget(now time.Time) {
	for id, sm := range e.st.Servers {
		if sm.Flapping {
			continue
		}
		sm.Changes = pruneTimes(sm.Changes, now.Add(-e.pol.flapWindow))
		if !sm.Down && len(sm.Changes) == 0 && !e.inGroup(id) {
			delete(e.st.Servers, id)
		}
	}
}

func (e *engine) flush(now time.Time) *batch {
	st, pol := e.st, e.pol
	due := len(st.Group) > 0 && (st.FlushNow || !now.Before(st.GroupStart.Add(pol.window)))
	release := !st.Backlog.empty()
	if !due && !release {
		return nil
	}
	st.Sent = pruneTimes(st.Sent, now.Add(-time.Hour))
	if pol.rate > 0 && len(st.Sent) >= pol.rate {
		if due {
			for _, it := range st.Group {
				st.Backlog.add(it, pol.digestLines)
				e.c.digested++
			}
			e.notified(st.Group, now)
			e.clearGroup()
		}
		return nil
	}
	b := &batch{items: st.Group}
	if release {
		b = &batch{digest: true, bl: st.Backlog}
		for _, it := range st.Group {
			b.bl.add(it, pol.digestLines)
			e.c.digested++
		}
		st.Backlog = backlog{}
	}
	e.notified(st.Group, now)
	e.clearGroup()
	st.Sent = append(st.Sent, now)
	n := len(b.items)
	if b.digest {
		n = len(b.bl.Items) + b.bl.More
	}
	e.c.mailed += uint64(n)
	if !b.digest && n > 1 {
		e.c.grouped += uint64(n)
	}
	return b
}

func (e *engine) clearGroup() {
	e.st.Group, e.st.GroupStart, e.st.FlushNow = nil, time.Time{}, false
}

// notified marks the servers whose down state left the window, so that
// reminders count from now.
func (e *engine) notified(items []item, now time.Time) {
	for _, it := range items {
		if sm := e.st.Servers[it.Server]; sm != nil && sm.Down && it.Server != "" {
			sm.Notified = now
		}
	}
}

// nextDue is the earliest time tick has something to do; ok is false
// when nothing waits.
func (e *engine) nextDue(now time.Time) (t time.Time, ok bool) {
	st, pol := e.st, e.pol
	at := func(c time.Time) {
		if !ok || c.Before(t) {
			t, ok = c, true
		}
	}
	if len(st.Group) > 0 {
		if st.FlushNow {
			at(now)
		} else {
			at(st.GroupStart.Add(pol.window))
		}
	}
	if !st.Backlog.empty() {
		sent := pruneTimes(st.Sent, now.Add(-time.Hour))
		if pol.rate <= 0 || len(sent) < pol.rate {
			at(now)
		} else {
			at(sent[len(sent)-pol.rate].Add(time.Hour))
		}
	}
	for id, sm := range st.Servers {
		switch {
		case sm.Flapping:
			at(sm.Since.Add(pol.flapWindow))
		case sm.Down && pol.reminder > 0 && !e.inGroup(id):
			at(reminderBase(sm).Add(pol.reminder))
		}
	}
	return t, ok
}

// pruneTimes drops the times up to cut (ts is in time order): a mail
// sent at T counts against the rate limit until T+1h, a transition at T
// against the flap count until T+FlapWindow, both exclusive.
func pruneTimes(ts []time.Time, cut time.Time) []time.Time {
	i := 0
	for i < len(ts) && !ts[i].After(cut) {
		i++
	}
	if i == 0 {
		return ts
	}
	return append(ts[:0:0], ts[i:]...)
}

func sortedKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// upgrade fills what a state saved by an older release lacks: items and
// memory of events from before events had structured fields. The
// fields come from events.Upgrade, the one reader of old message text.
func (st *pipelineState) upgrade() {
	for i := range st.Group {
		st.Group[i].upgrade()
	}
	for i := range st.Backlog.Items {
		st.Backlog.Items[i].upgrade()
	}
	for _, sm := range st.Servers {
		if sm.Down && sm.Reason == "" {
			sm.Reason = events.Upgrade(events.Event{Kind: events.ServerDown, Message: sm.Message}).Reason
		}
	}
}

func (it *item) upgrade() {
	switch it.Kind {
	case noteReminder, noteStable:
		// Their message is the down event's.
		if it.Down && it.Reason == "" {
			it.Reason = events.Upgrade(events.Event{Kind: events.ServerDown, Message: it.Message}).Reason
		}
	case noteFlapping:
	default:
		e := events.Upgrade(events.Event{Kind: it.Kind, Instance: it.Instance, From: it.From, To: it.To, Reason: it.Reason, Message: it.Message})
		it.From, it.To, it.Reason = e.From, e.To, e.Reason
	}
}

// seqRanges is a set of event numbers as sorted, merged [lo, hi] ranges:
// a storm's numbers are mostly consecutive, so this stays small.
type seqRanges [][2]uint64

func (r seqRanges) add(s uint64) seqRanges {
	if n := len(r); n > 0 && r[n-1][1]+1 == s {
		r[n-1][1] = s
		return r
	}
	if n := len(r); n > 0 && s <= r[n-1][1] {
		// Out of order (rare): insert and re-merge.
		all := append(r.list(), s)
		slices.Sort(all)
		var out seqRanges
		for _, x := range slices.Compact(all) {
			out = out.add(x)
		}
		return out
	}
	return append(r, [2]uint64{s, s})
}

func (r seqRanges) list() []uint64 {
	var out []uint64
	for _, x := range r {
		for s := x[0]; s <= x[1]; s++ {
			out = append(out, s)
		}
	}
	return out
}

func (r seqRanges) String() string {
	parts := make([]string, len(r))
	for i, x := range r {
		if x[0] == x[1] {
			parts[i] = fmt.Sprint(x[0])
		} else {
			parts[i] = fmt.Sprintf("%d-%d", x[0], x[1])
		}
	}
	return strings.Join(parts, ", ")
}
