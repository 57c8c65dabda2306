package checker

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
)

// The mass-failure guard. A server whose checks fail without an answer
// (timeouts, unreachable) does not go down at once: its down is pending
// until every other server of its service has passed a check that
// started after the failing check ended (or about one interval more has
// passed). Not from its start: a timeout is known only at its end, and
// a check of another server that began a moment after the failing one,
// before the trouble hit, passes and yet says nothing about that
// moment; with a timeout longer than the interval the others' own
// failing checks may still be running when the first result is in.
// When more than guard.share of a service's servers in service, or of the
// whole director's, fail that way at the same time (each still failing,
// its latest failure within one window: with fall > 1, or servers whose
// checks began one interval apart, a run may have begun longer ago), and
// at least guard.min_servers of them, the cause is more likely the
// director's than theirs: a hold keeps their downs back, so nothing is
// written for them. The hold ends
//   - when the evidence becomes per server: enough of them pass again
//     (the scope's servers failing that way count, members of the hold
//     or not yet). Those still failing must then fail `fall` more times
//     on their own before they go down;
//   - after guard.max_hold: the failures are believed (a real outage of
//     every server still brings the sorry server in);
//   - when an operator releases it: the failures are believed now.
// Failures with an answer (refused, reset, a wrong reply) are evidence
// about each server and are never held.

// pendingDown is a down that waits for the other servers' results.
type pendingDown struct {
	service string
	class   Class
	since   time.Time // when the first failing check started
	// known is when the failing check that made the down ended: the
	// other servers' word counts only from checks started after it.
	known    time.Time
	deadline time.Time // when the failure is believed without their word
}

// DirectorScope is a hold's scope when it counts the whole director.
const DirectorScope = ""

// hold is one tripped guard.
type hold struct {
	scope   string // service id, or DirectorScope
	class   Class
	since   time.Time
	members map[string]bool // server ids whose down is held
	tripped int             // failing servers when it tripped
	atStake int             // servers in service then
}

// HoldStatus is what the status API and metrics show of a hold.
type HoldStatus struct {
	Scope   string    `json:"scope"` // service id; "" for the whole director
	Class   Class     `json:"class"`
	Since   time.Time `json:"since"`
	Servers []string  `json:"servers"` // whose down is held
	Failing int       `json:"failing"` // of them, still failing
	AtStake int       `json:"at_stake"`
	// Until is when the failures will be believed; zero: only an
	// operator ends it.
	Until time.Time `json:"until,omitzero"`
}

// holdOf is the hold a server's down is in, if any; c.mu is held.
func (c *Checker) holdOf(id string) *hold {
	for _, h := range c.holds {
		if h.members[id] {
			return h
		}
	}
	return nil
}

// scopeCount is, for one scope, the servers in service and those failing
// without an answer now (their latest failure within their window), by
// class.
type scopeCount struct {
	atStake int
	failing map[Class][]string
	// quiet counts the servers in service that are not failing, and
	// oldest is the earliest start of their latest checks: a pending down
	// known (its failing check ended) before it has every other server's
	// word. A server without a result yet makes unheard true: its word is
	// not in.
	quiet   int
	oldest  time.Time
	unheard bool
}

// heard says whether every quiet server has a result that started at or
// after known.
func (sc *scopeCount) heard(known time.Time) bool {
	return sc.quiet == 0 || !sc.unheard && !sc.oldest.Before(known)
}

// count tallies every scope at now; c.mu is held.
func (c *Checker) count(now time.Time) map[string]*scopeCount {
	out := map[string]*scopeCount{DirectorScope: {failing: map[Class][]string{}}}
	for id, sts := range c.units {
		if c.agg[id] == health.Down {
			continue
		}
		svc := sts[0].service
		sc := out[svc]
		if sc == nil {
			sc = &scopeCount{failing: map[Class][]string{}}
			out[svc] = sc
		}
		// Failing now: the latest failure is recent, however long ago
		// the run began.
		var class Class
		for _, st := range sts {
			if st.failRun > 0 && st.class.guarded() && !st.LastTime.Add(st.LastDur).Before(now.Add(-st.window())) {
				class = st.class
				break
			}
		}
		for _, s := range []*scopeCount{sc, out[DirectorScope]} {
			s.atStake++
			if class != "" {
				s.failing[class] = append(s.failing[class], id)
			}
		}
		if class == "" && c.pending[id] == nil && c.holdOf(id) == nil {
			sc.quiet++
			for _, st := range sts {
				switch {
				case st.LastTime.IsZero():
					sc.unheard = true
				case sc.oldest.IsZero() || st.LastTime.Before(sc.oldest):
					sc.oldest = st.LastTime
				}
			}
		}
	}
	return out
}

// trips says whether failing of atStake servers is a mass failure.
func (c *Checker) trips(failing, atStake int) bool {
	g := c.guard
	return g.Share < 1 && failing >= g.MinServers && float64(failing) > g.Share*float64(atStake)
}

// evaluate decides pending downs and holds at now; c.mu is held.
func (c *Checker) evaluate(now time.Time) []emitFn {
	if len(c.pending) == 0 && len(c.holds) == 0 {
		return nil
	}
	var out []emitFn
	counts := c.count(now)
	ids := slices.Sorted(maps.Keys(c.pending))
	// Trip holds, or join the pending downs to those that exist.
	for _, id := range ids {
		p := c.pending[id]
		if p == nil {
			continue // taken into a hold tripped by another
		}
		if hd := c.findHold(p.service, p.class); hd != nil {
			hd.members[id] = true
			delete(c.pending, id)
			continue
		}
		for _, scope := range []string{p.service, DirectorScope} {
			sc := counts[scope]
			if sc == nil || !c.trips(len(sc.failing[p.class]), sc.atStake) {
				continue
			}
			hd := &hold{scope: scope, class: p.class, since: now, members: map[string]bool{},
				tripped: len(sc.failing[p.class]), atStake: sc.atStake}
			for _, m := range sc.failing[p.class] {
				if c.pending[m] != nil && c.pending[m].class == p.class {
					hd.members[m] = true
					delete(c.pending, m)
				}
			}
			c.holds = append(c.holds, hd)
			out = append(out, c.holdEvent(hd, now))
			break
		}
	}
	// Pending downs whose window passed, or that have every other
	// server's word, are believed.
	for _, id := range ids {
		p := c.pending[id]
		if p == nil {
			continue
		}
		sc := counts[p.service]
		if !now.Before(p.deadline) || sc == nil || sc.heard(p.known) {
			if failing(c.units[id]) {
				out = append(out, c.commit(id, health.Down)...)
			}
			// else: passing again while rising; settle decides later.
		}
	}
	// Holds end by evidence, by time or (ReleaseHolds) by an operator.
	kept := c.holds[:0]
	for _, hd := range c.holds {
		still := c.stillFailing(hd)
		sc := counts[hd.scope]
		atStake, failingNow := hd.atStake, len(still)
		if sc != nil {
			// The scope's servers failing that way count too, members or
			// not yet: with fall > 1 the others' downs come later, and
			// the hold must not end before they join it.
			atStake = sc.atStake
			for _, id := range sc.failing[hd.class] {
				if !slices.Contains(still, id) {
					failingNow++
				}
			}
		}
		switch max := c.guard.Hold(); {
		case max > 0 && now.Sub(hd.since) >= max:
			out = append(out, c.release(hd, still, now, fmt.Sprintf("held for %s (guard.max_hold): the failures are believed", max), events.ActorChecker)...)
		case !c.trips(failingNow, atStake):
			out = append(out, c.recover(hd, still, now)...)
		default:
			kept = append(kept, hd)
			continue
		}
	}
	c.holds = kept
	return out
}

func (c *Checker) findHold(service string, class Class) *hold {
	for _, hd := range c.holds {
		if hd.class == class && (hd.scope == service || hd.scope == DirectorScope) {
			return hd
		}
	}
	return nil
}

// stillFailing lists a hold's members whose checks still fail.
func (c *Checker) stillFailing(hd *hold) []string {
	var out []string
	for id := range hd.members {
		if failing(c.units[id]) {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

// release ends a hold believing its failures: the members still failing
// go down now; c.mu is held. actor is who ended it: an operator or the
// checker (max_hold).
func (c *Checker) release(hd *hold, still []string, now time.Time, why, actor string) []emitFn {
	out := []emitFn{c.releaseEvent(hd, now, len(still), why, actor)}
	for _, id := range still {
		out = append(out, c.commit(id, health.Down)...)
	}
	hd.members = nil
	return out
}

// recover ends a hold whose servers pass again: the evidence is per
// server now. Those still failing start their count of failures afresh,
// so each goes down only on its own `fall` failures; c.mu is held.
func (c *Checker) recover(hd *hold, still []string, now time.Time) []emitFn {
	for _, id := range still {
		for _, st := range c.units[id] {
			if st.health == health.Down {
				st.health, st.failRun = c.agg[id], 0
				st.Health = st.health
			}
		}
	}
	hd.members = nil
	why := "enough of its servers pass again: the failure was not theirs"
	if len(still) > 0 {
		why = fmt.Sprintf("enough of its servers pass again; the %d still failing are judged one by one from now on", len(still))
	}
	return []emitFn{c.releaseEvent(hd, now, 0, why, events.ActorChecker)}
}

// ReleaseHolds ends every hold at once on an operator's word: the
// failures are believed and the servers still failing go down. It
// returns how many holds ended.
func (c *Checker) ReleaseHolds(by string) int {
	c.mu.Lock()
	now := c.now()
	var out []emitFn
	n := len(c.holds)
	for _, hd := range c.holds {
		out = append(out, c.release(hd, c.stillFailing(hd), now, "released by "+by, by)...)
	}
	c.holds = nil
	c.mu.Unlock()
	c.emit(out)
	return n
}

// Holds lists the holds in force.
func (c *Checker) Holds() []HoldStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]HoldStatus, 0, len(c.holds))
	for _, hd := range c.holds {
		hs := HoldStatus{Scope: hd.scope, Class: hd.class, Since: hd.since, Failing: len(c.stillFailing(hd)), AtStake: hd.atStake}
		for id := range hd.members {
			hs.Servers = append(hs.Servers, id)
		}
		sort.Strings(hs.Servers)
		if m := c.guard.Hold(); m > 0 {
			hs.Until = hd.since.Add(m)
		}
		out = append(out, hs)
	}
	return out
}

// forgetGone drops pending downs and hold members of servers no longer
// configured; c.mu is held.
func (c *Checker) forgetGone() {
	for id := range c.pending {
		if _, ok := c.units[id]; !ok {
			delete(c.pending, id)
		}
	}
	for _, hd := range c.holds {
		for id := range hd.members {
			if _, ok := c.units[id]; !ok {
				delete(hd.members, id)
			}
		}
	}
}

func scopeName(scope string) string {
	if scope == DirectorScope {
		return "the whole director"
	}
	return "service " + scope
}

func (c *Checker) holdEvent(hd *hold, now time.Time) emitFn {
	until := "until an operator releases it (guard.max_hold 0)"
	if m := c.guard.Hold(); m > 0 {
		until = "for at most " + m.String()
	}
	msg := fmt.Sprintf("mass failure on %s: %d of %d servers in service fail with %s at once; their downs are held %s, nothing is written for them",
		scopeName(hd.scope), hd.tripped, hd.atStake, hd.class, until)
	return func() {
		c.log.Error("health checks: mass failure, writes held", "scope", scopeName(hd.scope), "class", string(hd.class),
			"failing", hd.tripped, "in_service", hd.atStake)
		c.append(events.Event{Kind: events.GuardHold, Service: hd.scope, Reason: string(hd.class), Actor: events.ActorChecker, Message: msg})
	}
}

func (c *Checker) releaseEvent(hd *hold, now time.Time, down int, why, actor string) emitFn {
	msg := fmt.Sprintf("mass-failure hold on %s ended after %s: %s", scopeName(hd.scope), now.Sub(hd.since).Round(time.Second), why)
	if down > 0 {
		msg += fmt.Sprintf(" (%d servers go down)", down)
	}
	return func() {
		c.log.Warn("health checks: mass-failure hold ended", "scope", scopeName(hd.scope), "reason", why, "servers_down", down)
		c.append(events.Event{Kind: events.GuardRelease, Service: hd.scope, Reason: why, Actor: actor, Message: msg})
	}
}

// localTrouble counts inconclusive results by local reason.
type localTrouble struct {
	counts  map[string]uint64
	last    map[string]time.Time
	lastMsg map[string]string
	logged  map[string]time.Time
}

func newLocalTrouble() localTrouble {
	return localTrouble{counts: map[string]uint64{}, last: map[string]time.Time{}, lastMsg: map[string]string{}, logged: map[string]time.Time{}}
}

// localLogEvery bounds the log lines per local reason: under fd
// exhaustion every check fails the same way, and a line per check would
// add to the trouble.
const localLogEvery = 10 * time.Second

// note counts one inconclusive result; c.mu is held.
func (l *localTrouble) note(why, msg string, now time.Time, service, server string, log *slog.Logger) []emitFn {
	l.counts[why]++
	l.last[why], l.lastMsg[why] = now, msg
	if now.Sub(l.logged[why]) < localLogEvery {
		return nil
	}
	l.logged[why] = now
	n := l.counts[why]
	return []emitFn{func() {
		log.Error("health check inconclusive: the director's own trouble, not the server's; health and weights are left as they are",
			"reason", why, "service", service, "server", server, "err", msg, "inconclusive_total", n)
	}}
}

// LocalStatus is the director's own trouble as the checker saw it.
type LocalStatus struct {
	// Inconclusive counts results by local reason since the start.
	Inconclusive map[string]uint64 `json:"inconclusive"`
	// Recent lists the reasons seen within LocalRecent, with the last
	// message of each.
	Recent map[string]string `json:"recent,omitempty"`
	// Lag is the largest lateness of lvsmon's own timers over the last
	// minute: a starved director.
	Lag time.Duration `json:"scheduling_lag_ns"`
}

// LocalRecent is how long a local reason stays a current problem.
const LocalRecent = 30 * time.Second

// Local reports the director's own trouble.
func (c *Checker) Local() LocalStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	s := LocalStatus{Inconclusive: map[string]uint64{}, Lag: c.lag.recent(now)}
	for _, r := range LocalReasons {
		s.Inconclusive[r] = c.local.counts[r]
		if t, ok := c.local.last[r]; ok && now.Sub(t) < LocalRecent {
			if s.Recent == nil {
				s.Recent = map[string]string{}
			}
			s.Recent[r] = c.local.lastMsg[r]
		}
	}
	return s
}

// Summary says the local trouble in one line ("" when none is recent).
func (s LocalStatus) Summary() string {
	if len(s.Recent) == 0 {
		return ""
	}
	reasons := make([]string, 0, len(s.Recent))
	for r := range s.Recent {
		reasons = append(reasons, r)
	}
	slices.Sort(reasons)
	parts := make([]string, len(reasons))
	for i, r := range reasons {
		parts[i] = fmt.Sprintf("%s (%d so far; last: %s)", r, s.Inconclusive[r], s.Recent[r])
	}
	return "health checks are inconclusive because of the director's own trouble, so no health or weight changes: " + strings.Join(parts, "; ")
}
