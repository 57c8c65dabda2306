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
	// Percent is the share of the window it was up, 0 to 100.
	Percent   float64
	DownAtEnd bool
}

// Availability computes, for every real server that was down at some
// point of [from, to), how long it was. A server's state at from is its
// last server_down or server_up before from, so an outage that started
// yesterday counts from from. Servers with no down time are left out:
// they were up throughout, as far as the events tell. The result is
// ordered by service, then worst first. lvsmon's own
// downtime is not subtracted: a server is taken to keep the state last
// reported.
func Availability(evs []events.Event, from, to time.Time) []ServerAvailability {
	if !from.Before(to) {
		return nil
	}
	sorted := slices.Clone(evs)
	slices.SortStableFunc(sorted, func(a, b events.Event) int {
		if c := a.Time.Compare(b.Time); c != 0 {
			return c
		}
		return cmp.Compare(a.Seq, b.Seq)
	})
	type acc struct {
		service   string
		down      bool
		downStart time.Time
		total     time.Duration
		outages   int
	}
	// end closes a down period at t, counting the part inside the window.
	end := func(a *acc, t time.Time) {
		a.down = false
		s := a.downStart
		if s.Before(from) {
			s = from
		}
		if t.After(s) {
			a.total += t.Sub(s)
			a.outages++
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
		pct := 100 * (1 - float64(a.total)/float64(to.Sub(from)))
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
