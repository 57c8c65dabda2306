package alerting

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// composer writes the mails: plain text that says what happened, when,
// where and why, and the whole service's state, for a human reading it
// on a phone at night. The subject says the most important thing first.
type composer struct {
	pol      *policy
	name     func(string) string
	describe func(string) string
}

// maxSubject bounds a subject (in runes) before the prefix.
const maxSubject = 160

// maxSeqHeader bounds the characters of the X-Lvsmon-Events header's
// value: Render writes it on one line, and RFC 5322 allows 998. The body
// lists every event number (as ranges).
const maxSeqHeader = 900

func (c *composer) batchMail(b *batch, now time.Time) Mail {
	if b.digest {
		return c.digestMail(&b.bl, now)
	}
	return c.groupMail(b.items, now)
}

func (c *composer) groupMail(items []item, now time.Time) Mail {
	sum := c.summary(items)
	var w strings.Builder
	fmt.Fprintf(&w, "On director %s: %s.\n", c.pol.director, sum)
	c.sections(&w, items, 0, c.pol.groupLines)
	var seqs seqRanges
	for _, it := range items {
		if it.Seq != 0 {
			seqs = seqs.add(it.Seq)
		}
	}
	c.footer(&w, seqs)
	return NewMail(c.pol.from, c.pol.to, c.subject(sum), w.String(), now, headerSeqs(seqs)...)
}

func (c *composer) digestMail(bl *backlog, now time.Time) Mail {
	n := len(bl.Items) + bl.More
	sum := c.summary(bl.Items)
	if bl.More > 0 {
		sum = countsText(bl.Counts)
	}
	var w strings.Builder
	fmt.Fprintf(&w, "Director %s reached its limit of %d alert mails per hour at %s.\n", c.pol.director, c.pol.rate, c.ts(bl.Since))
	fmt.Fprintf(&w, "The %d events and notes held back since then are summed up here.\n\n", n)
	fmt.Fprintf(&w, "In all: %s.\n", countsText(bl.Counts))
	c.sections(&w, bl.Items, bl.More, c.pol.digestLines)
	c.footer(&w, bl.Seqs)
	return NewMail(c.pol.from, c.pol.to, c.subject(fmt.Sprintf("digest of %d held-back events: %s", n, sum)), w.String(), now, headerSeqs(bl.Seqs)...)
}

func (c *composer) subject(s string) string {
	if utf8.RuneCountInString(s) > maxSubject {
		r := []rune(s)
		s = string(r[:maxSubject-1]) + "…"
	}
	return c.pol.prefix + " " + s
}

func (c *composer) footer(w *strings.Builder, seqs seqRanges) {
	// time.Local is named "Local": name the zone and its offset instead.
	name := c.pol.loc.String()
	zone, off := time.Now().In(c.pol.loc).Zone()
	if name == "Local" {
		name = zone
	}
	sign := "+"
	if off < 0 {
		sign, off = "-", -off
	}
	fmt.Fprintf(w, "\nTimes are %s (UTC%s%02d:%02d).", name, sign, off/3600, off%3600/60)
	if len(seqs) > 0 {
		fmt.Fprintf(w, " Event log numbers: %s.", seqs)
	}
	fmt.Fprintf(w, "\n\n-- \nlvsmon on %s\n", c.pol.director)
}

// headerSeqs is the leading part of seqs that fits the header.
func headerSeqs(r seqRanges) []uint64 {
	var out []uint64
	n := 0
	for _, x := range r {
		for s := x[0]; s <= x[1]; s++ {
			n += len(strconv.FormatUint(s, 10)) + 1
			if n > maxSeqHeader {
				return out
			}
			out = append(out, s)
		}
	}
	return out
}

// sections writes the items grouped by service (director-wide ones
// first), each service followed by its state now. At most limit lines;
// more (beyond the items) is added to the "and N more" count.
func (c *composer) sections(w *strings.Builder, items []item, more, limit int) {
	by := map[string][]item{}
	for _, it := range items {
		by[it.Service] = append(by[it.Service], it)
	}
	shown := 0
	for _, svc := range sortedKeys(by) {
		its := by[svc]
		slices.SortStableFunc(its, func(a, b item) int {
			if c := a.Time.Compare(b.Time); c != 0 {
				return c
			}
			return compareUint(a.Seq, b.Seq)
		})
		if svc == "" {
			w.WriteString("\nDirector-wide:\n")
		} else {
			w.WriteString("\n" + c.svcLabel(svc) + ":\n")
		}
		for _, it := range its {
			if shown >= limit {
				more++
				continue
			}
			w.WriteString("  " + c.line(it) + "\n")
			shown++
		}
		if svc != "" && c.describe != nil {
			if d := strings.TrimRight(c.describe(svc), "\n"); d != "" {
				w.WriteString("  State of the service now:\n")
				for _, l := range strings.Split(d, "\n") {
					w.WriteString("    " + l + "\n")
				}
			}
		}
	}
	if more > 0 {
		fmt.Fprintf(w, "\n... and %d more.\n", more)
	}
}

func compareUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func (c *composer) ts(t time.Time) string { return t.In(c.pol.loc).Format("2006-01-02 15:04:05") }

// line is one item as text: time, what, which server, why.
func (c *composer) line(it item) string {
	ts := c.ts(it.Time)
	addr := serverAddr(it.Server)
	switch it.Kind {
	case events.ServerDown:
		return fmt.Sprintf("%s  DOWN        %s  %s", ts, addr, reason(it))
	case events.ServerUp:
		s := fmt.Sprintf("%s  UP          %s", ts, addr)
		if !it.Since.IsZero() && !it.Since.After(it.Time) {
			s += fmt.Sprintf("  after %s down (since %s)", human(it.Time.Sub(it.Since)), c.ts(it.Since))
		}
		return s
	case noteReminder:
		return fmt.Sprintf("%s  STILL DOWN  %s  for %s (since %s): %s", ts, addr, human(it.Time.Sub(it.Since)), c.ts(it.Since), reason(it))
	case noteFlapping:
		return fmt.Sprintf("%s  FLAPPING    %s  changed state %d times within %s, now %s; no more mail about it until it is stable for %s",
			ts, addr, it.Changes, human(c.pol.flapWindow), upDown(it.Down), human(c.pol.flapWindow))
	case noteStable:
		s := fmt.Sprintf("%s  STABLE      %s  no change for %s: %s since %s", ts, addr, human(it.Time.Sub(it.Since)), upDown(it.Down), c.ts(it.Since))
		if it.Down {
			s += ": " + reason(it)
		}
		return s
	case events.SorryOn:
		return fmt.Sprintf("%s  SORRY ON    %s", ts, it.Message)
	case events.SorryOff:
		return fmt.Sprintf("%s  SORRY OFF   %s", ts, it.Message)
	case events.GuardHold:
		return fmt.Sprintf("%s  HELD        %s", ts, it.Message)
	case events.GuardRelease:
		return fmt.Sprintf("%s  HOLD ENDED  %s", ts, it.Message)
	case events.Override:
		if it.To == "" { // an event from before overrides had typed fields
			break
		}
		s := fmt.Sprintf("%s  %-10s  %s  by %s", ts, strings.ToUpper(overrideVerb(it.To)), addr, actor(it))
		if it.Reason != "" {
			s += ": " + it.Reason
		}
		return s
	}
	s := ts + "  " + strings.ReplaceAll(string(it.Kind), "_", " ")
	if it.Server != "" {
		s += "  " + addr
	}
	return s + "  " + it.Message
}

func upDown(down bool) string {
	if down {
		return "DOWN"
	}
	return "UP"
}

// overrideVerb is what an override did to a server: "drained",
// "disabled", "enabled"; the mode itself when unknown.
func overrideVerb(to string) string {
	switch to {
	case "drain":
		return "drained"
	case "disable":
		return "disabled"
	case events.Enabled:
		return "enabled"
	case "":
		return "override"
	}
	return to
}

// actor is who made an override; events older than the actor field name
// the operator only in their message.
func actor(it item) string {
	if it.Actor == "" {
		return "(unknown)"
	}
	return it.Actor
}

// reason is why a server is down: the failing check's message (the
// line already says which server).
func reason(it item) string {
	if it.Reason == "" {
		return "(no reason given)"
	}
	return it.Reason
}

// serverAddr turns a server id (service id "__" dest id) into
// "10.0.0.2:80" or "[2001:db8::2]:80"; the id itself when it does not
// parse.
func serverAddr(id string) string {
	_, d, ok := lvs.ParseDestID(id)
	if !ok {
		d = id
	}
	i := strings.LastIndexByte(d, '_')
	if i < 0 {
		return id
	}
	a, err := netip.ParseAddr(strings.ReplaceAll(d[:i], "-", ":"))
	port, perr := strconv.ParseUint(d[i+1:], 10, 16)
	if err != nil || perr != nil {
		return id
	}
	return netip.AddrPortFrom(a, uint16(port)).String()
}

// svcLabel is "name (id)", or the id when there is no other name.
func (c *composer) svcLabel(id string) string {
	n := ""
	if c.name != nil {
		n = c.name(id)
	}
	if n == "" || n == id {
		return id
	}
	return n + " (" + id + ")"
}

// summary says in one line what the items are about, the most important
// first: role changes, servers down, sorry servers on, disagreements,
// flapping, still down, servers up, sorry off, agreement, stable,
// operators' overrides,
// lvsmon's own life, reloads, the rest.
func (c *composer) summary(items []item) string {
	servers := map[events.Kind]map[string]string{} // kind -> server -> service
	services := map[events.Kind]map[string]bool{}  // kind -> services (sorry)
	var roles, disagree, agree, held, unheld []string
	var overrides []item
	other := map[string]int{}
	scope := func(svc string) string {
		if svc == "" {
			return "the whole director"
		}
		return c.svcLabel(svc)
	}
	for _, it := range items {
		switch it.Kind {
		case events.ServerDown, events.ServerUp, noteReminder, noteFlapping, noteStable:
			if servers[it.Kind] == nil {
				servers[it.Kind] = map[string]string{}
			}
			servers[it.Kind][it.Server] = it.Service
		case events.SorryOn, events.SorryOff:
			if services[it.Kind] == nil {
				services[it.Kind] = map[string]bool{}
			}
			services[it.Kind][it.Service] = true
		case events.RoleChange:
			roles = append(roles, "role change: "+roleText(it))
		case events.Disagreement:
			disagree = appendNew(disagree, it.Instance)
		case events.Agreement:
			agree = appendNew(agree, it.Instance)
		case events.Reload:
			if it.To == events.Rejected {
				other["config reload rejected"]++
			} else {
				other["config reloaded"]++
			}
		case events.GuardHold:
			held = appendNew(held, scope(it.Service))
		case events.GuardRelease:
			unheld = appendNew(unheld, scope(it.Service))
		case events.Override:
			overrides = append(overrides, it)
		case events.DaemonStart:
			other["lvsmon started"]++
		case events.DaemonStop:
			other["lvsmon stopping"]++
		default:
			other[strings.ReplaceAll(string(it.Kind), "_", " ")]++
		}
	}
	parts := roles
	if len(held) > 0 {
		parts = append(parts, "mass failure, downs held: "+strings.Join(held, ", "))
	}
	upDone := false
	if s := servers[events.ServerDown]; len(s) > 0 {
		p := c.servers(s, "down")
		if u := servers[events.ServerUp]; len(u) > 0 {
			p += fmt.Sprintf(", %d up", len(u))
			upDone = true
		}
		parts = append(parts, p)
	}
	if s := services[events.SorryOn]; len(s) > 0 {
		parts = append(parts, "sorry server on for "+c.where(s))
	}
	if len(disagree) > 0 {
		parts = append(parts, "role disagreement: "+strings.Join(disagree, ", "))
	}
	if s := servers[noteFlapping]; len(s) > 0 {
		parts = append(parts, c.servers(s, "flapping"))
	}
	if s := servers[noteReminder]; len(s) > 0 {
		parts = append(parts, c.servers(s, "still down"))
	}
	if s := servers[events.ServerUp]; len(s) > 0 && !upDone {
		parts = append(parts, c.servers(s, "up again"))
	}
	if s := services[events.SorryOff]; len(s) > 0 {
		parts = append(parts, "sorry server off for "+c.where(s))
	}
	if len(agree) > 0 {
		parts = append(parts, "roles agree again: "+strings.Join(agree, ", "))
	}
	if len(unheld) > 0 {
		parts = append(parts, "mass-failure hold ended: "+strings.Join(unheld, ", "))
	}
	if s := servers[noteStable]; len(s) > 0 {
		parts = append(parts, c.servers(s, "stable again"))
	}
	if p := overridesText(overrides); p != "" {
		parts = append(parts, p)
	}
	for _, k := range []string{"lvsmon started", "lvsmon stopping", "config reload rejected", "config reloaded"} {
		if other[k] > 0 {
			parts = append(parts, k)
			delete(other, k)
		}
	}
	for _, k := range sortedKeys(other) {
		parts = append(parts, fmt.Sprintf("%d %s", other[k], plural(other[k], "event", "events"))+" of kind "+k)
	}
	if len(parts) == 0 {
		return "no events"
	}
	return strings.Join(parts, "; ")
}

// overridesText is "real server 10.0.0.2:80 drained by alice (web,
// 10.1.1.1)", or "3 overrides by alice, bob" for several.
func overridesText(ovs []item) string {
	switch len(ovs) {
	case 0:
		return ""
	case 1:
		if it := ovs[0]; it.To != "" {
			return fmt.Sprintf("real server %s %s by %s", serverAddr(it.Server), overrideVerb(it.To), actor(it))
		}
	}
	var who []string
	for _, it := range ovs {
		if it.Actor != "" {
			who = appendNew(who, actorName(it.Actor))
		}
	}
	s := fmt.Sprintf("%d %s", len(ovs), plural(len(ovs), "override", "overrides"))
	if len(who) > 0 {
		s += " by " + strings.Join(who, ", ")
	}
	return s
}

// actorName is the operator without the where: "alice" of "alice (web,
// 10.1.1.1)".
func actorName(a string) string {
	if name, _, ok := strings.Cut(a, " ("); ok && name != "" {
		return name
	}
	return a
}

// servers is "real server 10.0.0.2:80 down on web (tcp_...)", "3 real
// servers down on web (tcp_...)" or "3 real servers down on 2 services".
func (c *composer) servers(s map[string]string, verb string) string {
	svcs := map[string]bool{}
	var one string
	for srv, svc := range s {
		svcs[svc] = true
		one = srv
	}
	if len(s) == 1 {
		return fmt.Sprintf("real server %s %s on %s", serverAddr(one), verb, c.where(svcs))
	}
	return fmt.Sprintf("%d real servers %s on %s", len(s), verb, c.where(svcs))
}

func (c *composer) where(svcs map[string]bool) string {
	if len(svcs) == 1 {
		for s := range svcs {
			return c.svcLabel(s)
		}
	}
	return fmt.Sprintf("%d services", len(svcs))
}

// roleText is "VI_1 BACKUP → MASTER", or "VI_1 MASTER at start" for
// the first role seen; the message when the event has no states.
func roleText(it item) string {
	switch {
	case it.To == "":
		return it.Message
	case it.From == "":
		return strings.TrimLeft(it.Instance+" "+it.To+" at start", " ")
	}
	return strings.TrimLeft(it.Instance+" "+it.From+" → "+it.To, " ")
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

func countsText(counts map[string]int) string {
	parts := make([]string, 0, len(counts))
	for _, k := range sortedKeys(counts) {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], k))
	}
	return strings.Join(parts, ", ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// human prints a duration for people: "45s", "12m", "2h13m", "3d4h".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d/time.Second))
	case d < time.Hour:
		m, s := int(d/time.Minute), int(d%time.Minute/time.Second)
		if s == 0 {
			return fmt.Sprintf("%dm", m)
		}
		return fmt.Sprintf("%dm%ds", m, s)
	case d < 48*time.Hour:
		h, m := int(d/time.Hour), int(d%time.Hour/time.Minute)
		if m == 0 {
			return fmt.Sprintf("%dh", h)
		}
		return fmt.Sprintf("%dh%dm", h, m)
	}
	days, h := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour)
	if h == 0 {
		return fmt.Sprintf("%dd", days)
	}
	return fmt.Sprintf("%dd%dh", days, h)
}
