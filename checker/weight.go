package checker

import (
	"fmt"
	"strconv"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/probe"
)

// Weights set by checks. A passing external check with dynamic, or a
// file check, may say what the server's weight should be; the checker
// keeps each check's last word and the reconciler writes the sum in
// place of the configured weight while the server is up. As in
// keepalived, every check's word is a change to the configured weight:
// a weight set outright (exit status less 2) changes it to that value,
// a file's value is added, and several checks' changes add up; the sum
// is bounded to 0-config.MaxWeight. A check that fails keeps its last
// word (a down server is at weight 0 anyway, and a down the guard holds
// must not move the weight); a pass without a word (exit 0) undoes it;
// an inconclusive result changes nothing.

// weightOf is the weight a server's checks set, and whether any does;
// c.mu is held.
func weightOf(sts []*serverState) (int32, bool) {
	if len(sts) == 0 {
		return 0, false
	}
	conf := int64(sts[0].configured)
	w, set := conf, false
	for _, st := range sts {
		switch st.weight.Kind {
		case probe.WeightSet:
			w += st.weight.Value - conf
			set = true
		case probe.WeightAdd:
			w += st.weight.Value
			set = true
		}
	}
	return int32(min(max(w, 0), config.MaxWeight)), set
}

// keepsWeight reports whether a check replaced by a reload may keep the
// old one's word on the weight until its own first result: only when it
// can say one too, in the same way.
func keepsWeight(old, cur *config.Check) bool {
	return old.Type == cur.Type && old.Dynamic == cur.Dynamic
}

// Weights returns, by real-server id, the weight the checks set for the
// servers where one does: what the reconciler writes instead of the
// configured weight while the server is up.
func (c *Checker) Weights() map[string]int32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int32{}
	for id, sts := range c.units {
		if w, ok := weightOf(sts); ok {
			out[id] = w
		}
	}
	return out
}

// weightEventEvery bounds the weight_change events of one server: a
// script whose weight moves on every check must not fill the event log.
// Changes within it are folded into the next event, which Tick writes
// once the time is up; the kernel follows every change at once.
const weightEventEvery = time.Minute

// toldWeight is a server's weight as its events have told it.
type toldWeight struct {
	said, cur int32     // the weight last said in an event; the current one
	at        time.Time // when said was said
}

// effective is the weight the server gets while up: the checks' or the
// configured one.
func effective(sts []*serverState) int32 {
	if w, ok := weightOf(sts); ok {
		return w
	}
	return sts[0].configured
}

// reweigh follows a change of the weight the checks set after a result:
// a round for the kernel and, while the server was and stays up, a
// weight_change event (rate-bounded); c.mu is held.
func (c *Checker) reweigh(id string, now time.Time, wasUp bool) []emitFn {
	sts := c.units[id]
	if len(sts) == 0 {
		return nil
	}
	w := effective(sts)
	t := c.told[id]
	if t == nil {
		c.told[id] = &toldWeight{said: w, cur: w}
		return nil
	}
	if t.cur == w {
		return nil
	}
	t.cur = w
	if !wasUp || c.agg[id] != health.Up {
		// Down or not known yet: the weight matters from the server's
		// up on, which says so itself.
		t.said = w
		return nil
	}
	if now.Sub(t.at) < weightEventEvery {
		return []emitFn{kick}
	}
	return []emitFn{c.weightEvent(id, t, now), kick}
}

// flushWeights writes the weight_change events that waited for their
// server's rate bound; c.mu is held.
func (c *Checker) flushWeights(now time.Time) []emitFn {
	var out []emitFn
	for id, t := range c.told {
		if t.cur != t.said && now.Sub(t.at) >= weightEventEvery && c.agg[id] == health.Up {
			out = append(out, c.weightEvent(id, t, now))
		}
	}
	return out
}

// weightEvent says a server's new weight; c.mu is held.
func (c *Checker) weightEvent(id string, t *toldWeight, now time.Time) emitFn {
	sts := c.units[id]
	st := sts[0]
	from, to := t.said, t.cur
	t.said, t.at = to, now
	why := "set by its checks"
	if _, set := weightOf(sts); !set {
		why = "back to the configured weight (its checks set none)"
	}
	e := events.Event{Kind: events.WeightChange, Service: st.service, Server: id, Actor: events.ActorChecker,
		From: strconv.Itoa(int(from)), To: strconv.Itoa(int(to)), Reason: why,
		Message: fmt.Sprintf("%s: %s weight %d -> %d, %s (configured %d)", st.name, st.key, from, to, why, st.configured)}
	return func() {
		c.log.Info("real server weight set by its checks", "service", st.name, "server", st.key.String(), "from", from, "to", to, "configured", st.configured)
		c.append(e)
	}
}
