package alerting

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// The daily digest: what a team reads in the morning instead of a night
// of alert mails. It is scheduled by PipelineConfig.DailyDigest (a cron
// spec) and queued by the pipeline's loop with the same crash-safe
// hand-over as any alert mail; Pipeline.DailyDigest builds it for any
// window.

// ServerAvailability is one real server's availability over a window,
// from its server_down and server_up events.
type ServerAvailability struct {
	Service string
	Server  string
	// Down is the time it spent down within the window; Outages counts
	// the down periods that overlap it (one already running at the start
	// included).
	Down    time.Duration
	Outages int
	// Percent is the share of the watched part of the window it was up,
	// 0 to 100.
	Percent   float64
	DownAtEnd bool
}

// Gap is a time when lvsmon did not run, from a daemon_stop to the next
// daemon_start, cut to the window asked for.
type Gap struct{ From, To time.Time }

// Watch tells which parts of a window lvsmon watched.
type Watch struct {
	// Gaps are the times lvsmon was stopped, in order.
	Gaps []Gap
	// Unwatched is the sum of Gaps.
	Unwatched time.Duration
	// Unclean counts the starts with no stop before them (a crash, a
	// kill -9, a power cut). When such a gap began is not known, so it is
	// counted as watched.
	Unclean int
}

// Watched is what lvsmon saw of [from, to) after w's gaps.
func (w Watch) Watched(from, to time.Time) time.Duration { return to.Sub(from) - w.Unwatched }

// Watching finds the times lvsmon did not run within [from, to) from its
// daemon_stop and daemon_start events. Availability must not count them
// as up, nor as down: nobody looked. A stop with no start after it (yet)
// runs to the end of the window.
func Watching(evs []events.Event, from, to time.Time) Watch {
	var w Watch
	if !from.Before(to) {
		return w
	}
	var stopped *time.Time
	started := false
	add := func(a, b time.Time) {
		a, b = maxTime(a, from), minTime(b, to)
		if a.Before(b) {
			w.Gaps = append(w.Gaps, Gap{a, b})
			w.Unwatched += b.Sub(a)
		}
	}
	for _, e := range byTime(evs) {
		if !e.Time.Before(to) {
			break
		}
		switch e.Kind {
		case events.DaemonStop:
			if stopped == nil {
				t := e.Time
				stopped = &t
			}
		case events.DaemonStart:
			switch {
			case stopped != nil:
				add(*stopped, e.Time)
			case started && !e.Time.Before(from):
				w.Unclean++
			}
			stopped, started = nil, true
		}
	}
	if stopped != nil {
		add(*stopped, to)
	}
	return w
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// byTime is evs in log order: by time, then sequence number.
func byTime(evs []events.Event) []events.Event {
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b events.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	return sorted
}

// Availability computes, for every real server that was down at some
// point of [from, to), how long it was. A server's state at from is its
// last server_down or server_up before from, so an outage that started
// yesterday counts from from. Servers with no down time are left out:
// they were up throughout, as far as the events tell. The result is
// ordered by service, then worst first.
//
// The times lvsmon was stopped (see Watching) count neither way: a down
// period is cut by them, and Percent is over the watched time. A server
// down before a stop and still down after the start stays one outage;
// the checker's first result after the start ends it if it came back.
func Availability(evs []events.Event, from, to time.Time) []ServerAvailability {
	if !from.Before(to) {
		return nil
	}
	watch := Watching(evs, from, to)
	watched := watch.Watched(from, to)
	sorted := byTime(evs)
	type acc struct {
		service   string
		down      bool
		downStart time.Time
		total     time.Duration
		outages   int
	}
	// end closes a down period at t, counting the part inside the window
	// that lvsmon watched.
	end := func(a *acc, t time.Time) {
		a.down = false
		s := maxTime(a.downStart, from)
		if t.After(s) {
			d := t.Sub(s)
			for _, g := range watch.Gaps {
				if lo, hi := maxTime(g.From, s), minTime(g.To, t); lo.Before(hi) {
					d -= hi.Sub(lo)
				}
			}
			if d > 0 {
				a.total += d
				a.outages++
			}
		}
	}
	m := map[string]*acc{}
	for _, e := range sorted {
		if e.Kind != events.ServerDown && e.Kind != events.ServerUp || e.Server == "" || !e.Time.Before(to) {
			continue
		}
		a := m[e.Server]
		if a == nil {
			a = &acc{}
			m[e.Server] = a
		}
		a.service = e.Service
		switch down := e.Kind == events.ServerDown; {
		case down && !a.down:
			a.down, a.downStart = true, e.Time
		case !down && a.down:
			end(a, e.Time)
		}
	}
	var out []ServerAvailability
	for srv, a := range m {
		still := a.down
		if a.down {
			end(a, to)
		}
		if a.outages == 0 {
			continue
		}
		pct := 0.0
		if watched > 0 {
			pct = 100 * (1 - float64(a.total)/float64(watched))
		}
		out = append(out, ServerAvailability{Service: a.service, Server: srv, Down: a.total, Outages: a.outages, Percent: pct, DownAtEnd: still})
	}
	slices.SortFunc(out, func(a, b ServerAvailability) int {
		return cmp.Or(cmp.Compare(a.Service, b.Service), cmp.Compare(a.Percent, b.Percent), cmp.Compare(a.Server, b.Server))
	})
	return out
}

// dailyMail builds the digest for [from, to) from the log's events and
// the configured services.
func (c *composer) dailyMail(evs []events.Event, services []string, from, to, now time.Time) Mail {
	avail := Availability(evs, from, to)
	watch := Watching(evs, from, to)
	var window []events.Event
	for _, e := range evs {
		if !e.Time.Before(from) && e.Time.Before(to) {
			window = append(window, e)
		}
	}
	svcs := map[string]bool{}
	for _, s := range services {
		svcs[s] = true
	}
	for _, e := range window {
		if e.Service != "" {
			svcs[e.Service] = true
		}
	}
	var w strings.Builder
	fmt.Fprintf(&w, "Daily digest of director %s for %s to %s (%s).\n", c.pol.director,
		from.In(c.pol.loc).Format("2006-01-02 15:04"), to.In(c.pol.loc).Format("2006-01-02 15:04"), c.pol.loc)

	w.WriteString("\nAvailability of real servers (from server_down and server_up events; every real server not listed was up throughout):\n")
	if watch.Unwatched > 0 {
		fmt.Fprintf(&w, "  lvsmon was stopped for %s of the window (%d %s); the percentages are over the %s it watched.\n",
			human(watch.Unwatched), len(watch.Gaps), plural(len(watch.Gaps), "time", "times"), human(watch.Watched(from, to)))
	}
	if watch.Unclean > 0 {
		fmt.Fprintf(&w, "  lvsmon started %d %s without a clean stop before (a crash or a kill); the time before is counted as watched.\n",
			watch.Unclean, plural(watch.Unclean, "time", "times"))
	}
	if len(avail) == 0 {
		w.WriteString("  all real servers were up throughout.\n")
	}
	last := "\x00"
	for _, a := range avail {
		if a.Service != last {
			w.WriteString("  " + c.svcLabel(a.Service) + "\n")
			last = a.Service
		}
		note := ""
		if a.DownAtEnd {
			note = ", still down"
		}
		fmt.Fprintf(&w, "    %-24s %6.2f%%  down %s in %d %s%s\n", serverAddr(a.Server), a.Percent, human(a.Down), a.Outages, plural(a.Outages, "outage", "outages"), note)
	}

	if len(svcs) > 0 {
		w.WriteString("\nServices now:\n")
		for _, s := range sortedKeys(svcs) {
			w.WriteString("  " + c.svcLabel(s) + "\n")
			if c.describe != nil {
				if d := strings.TrimRight(c.describe(s), "\n"); d != "" {
					for _, l := range strings.Split(d, "\n") {
						w.WriteString("    " + l + "\n")
					}
				}
			}
		}
	}

	fmt.Fprintf(&w, "\nEvents (%d):\n", len(window))
	for i, e := range window {
		if i == c.pol.digestLines {
			fmt.Fprintf(&w, "  ... and %d more.\n", len(window)-i)
			break
		}
		where := ""
		switch {
		case e.Server != "":
			where = "  " + c.svcLabel(e.Service) + " " + serverAddr(e.Server)
		case e.Service != "":
			where = "  " + c.svcLabel(e.Service)
		case e.Instance != "":
			where = "  " + e.Instance
		}
		fmt.Fprintf(&w, "  %s  %s%s  %s\n", c.ts(e.Time), e.Kind, where, e.Message)
	}
	fmt.Fprintf(&w, "\n-- \nlvsmon on %s\n", c.pol.director)

	downs := 0
	for _, e := range window {
		if e.Kind == events.ServerDown {
			downs++
		}
	}
	// Named after the day most of the window lies in.
	sum := fmt.Sprintf("daily digest %s: %d %s", from.Add(to.Sub(from)/2).In(c.pol.loc).Format("2006-01-02"), len(window), plural(len(window), "event", "events"))
	if len(avail) > 0 {
		sum += fmt.Sprintf(", %d real %s with down time", len(avail), plural(len(avail), "server", "servers"))
	}
	return NewMail(c.pol.from, c.pol.to, c.subject(sum), w.String(), now)
}
