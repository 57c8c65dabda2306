package alerting

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lvsmon/lvsmon/events"
	_ "time/tzdata" // Europe/Berlin without the system zoneinfo
)

func TestAvailability(t *testing.T) {
	from := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	h := func(x float64) time.Time { return from.Add(time.Duration(x * float64(time.Hour))) }
	down := func(n int, at time.Time) events.Event {
		return events.Event{Time: at, Kind: events.ServerDown, Service: svcWeb, Server: web(n)}
	}
	up := func(n int, at time.Time) events.Event {
		return events.Event{Time: at, Kind: events.ServerUp, Service: svcWeb, Server: web(n)}
	}
	stop := func(at time.Time) events.Event { return events.Event{Time: at, Kind: events.DaemonStop} }
	start := func(at time.Time) events.Event { return events.Event{Time: at, Kind: events.DaemonStart} }
	type want struct {
		pct     string
		down    time.Duration
		outages int
		atEnd   bool
	}
	for _, c := range []struct {
		name string
		evs  []events.Event
		want []want // one per listed server, worst first
	}{
		{"down 6h of 24h", []events.Event{down(0, h(5)), up(0, h(11))}, []want{{"75.00", 6 * time.Hour, 1, false}}},
		{"down since before the window", []events.Event{down(0, h(-11)), up(0, h(2))}, []want{{"91.67", 2 * time.Hour, 1, false}}},
		{"still down at the end", []events.Event{down(0, h(18))}, []want{{"75.00", 6 * time.Hour, 1, true}}},
		{"down the whole window", []events.Event{down(0, h(-1))}, []want{{"0.00", 24 * time.Hour, 1, true}}},
		{"three outages of an hour", []events.Event{down(0, h(1)), up(0, h(2)), down(0, h(3)), up(0, h(4)), down(0, h(5)), up(0, h(6))}, []want{{"87.50", 3 * time.Hour, 3, false}}},
		{"a repeated down counts once", []events.Event{down(0, h(1)), down(0, h(2)), up(0, h(3))}, []want{{"91.67", 2 * time.Hour, 1, false}}},
		{"outage before the window", []events.Event{down(0, h(-5)), up(0, h(-4))}, nil},
		{"only up", []events.Event{up(0, h(1))}, nil},
		{"after the window", []events.Event{down(0, h(25))}, nil},
		{"two servers", []events.Event{down(1, h(0)), down(0, h(12)), up(1, h(12)), up(0, h(18))},
			[]want{{"50.00", 12 * time.Hour, 1, false}, {"75.00", 6 * time.Hour, 1, false}}},
		// lvsmon's own stops: neither up nor down, and not in the base.
		{"down 6h of the 20h watched", []events.Event{stop(h(1)), start(h(5)), down(0, h(10)), up(0, h(16))},
			[]want{{"70.00", 6 * time.Hour, 1, false}}},
		{"an outage across a stop", []events.Event{down(0, h(2)), stop(h(4)), start(h(8)), up(0, h(9))},
			[]want{{"85.00", 3 * time.Hour, 1, false}}},
		{"stopped at the end", []events.Event{down(0, h(12)), stop(h(20))},
			[]want{{"60.00", 8 * time.Hour, 1, true}}},
		{"down only while stopped", []events.Event{stop(h(1)), down(0, h(2)), start(h(5)), up(0, h(5))}, nil},
		{"a crash is watched time", []events.Event{start(h(-2)), down(0, h(0)), start(h(6)), up(0, h(6))},
			[]want{{"75.00", 6 * time.Hour, 1, false}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.evs {
				c.evs[i].Seq = uint64(i + 1)
			}
			got := Availability(c.evs, from, to)
			if len(got) != len(c.want) {
				t.Fatalf("%d servers, want %d: %+v", len(got), len(c.want), got)
			}
			for i, w := range c.want {
				g := got[i]
				if pct := fmt.Sprintf("%.2f", g.Percent); pct != w.pct || g.Down != w.down || g.Outages != w.outages || g.DownAtEnd != w.atEnd {
					t.Errorf("server %s: %s%% down %v outages %d at end %v, want %+v", g.Server, pct, g.Down, g.Outages, g.DownAtEnd, w)
				}
			}
		})
	}
}

func TestWatching(t *testing.T) {
	from := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	h := func(x float64) time.Time { return from.Add(time.Duration(x * float64(time.Hour))) }
	ev := func(kind events.Kind, at time.Time) events.Event { return events.Event{Time: at, Kind: kind} }
	stop := func(x float64) events.Event { return ev(events.DaemonStop, h(x)) }
	start := func(x float64) events.Event { return ev(events.DaemonStart, h(x)) }
	for _, c := range []struct {
		name      string
		evs       []events.Event
		unwatched time.Duration
		gaps      int
		unclean   int
	}{
		{"always running", []events.Event{start(-30)}, 0, 0, 0},
		{"one stop", []events.Event{start(-30), stop(2), start(3)}, time.Hour, 1, 0},
		{"a stop across the start of the window", []events.Event{stop(-2), start(1)}, time.Hour, 1, 0},
		{"stopped at the end", []events.Event{start(-1), stop(23)}, time.Hour, 1, 0},
		{"stopped all day", []events.Event{stop(-1)}, 24 * time.Hour, 1, 0},
		{"two stops", []events.Event{start(-1), stop(1), start(2), stop(10), start(12.5)}, 3*time.Hour + 30*time.Minute, 2, 0},
		{"a repeated stop counts from the first", []events.Event{stop(1), stop(2), start(3)}, 2 * time.Hour, 1, 0},
		{"a crash", []events.Event{start(-1), start(4)}, 0, 0, 1},
		{"a crash before the window", []events.Event{start(-3), start(-1)}, 0, 0, 0},
		{"gaps after the window", []events.Event{stop(25), start(26)}, 0, 0, 0},
		{"out of order in the slice", []events.Event{start(3), stop(1)}, 2 * time.Hour, 1, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			for i := range c.evs {
				c.evs[i].Seq = uint64(i + 1)
			}
			w := Watching(c.evs, from, to)
			if w.Unwatched != c.unwatched || len(w.Gaps) != c.gaps || w.Unclean != c.unclean {
				t.Errorf("got %+v, want unwatched %v in %d gaps, %d unclean", w, c.unwatched, c.gaps, c.unclean)
			}
			if w.Watched(from, to) != 24*time.Hour-c.unwatched {
				t.Errorf("watched %v", w.Watched(from, to))
			}
		})
	}
}

func TestDailyDigestMail(t *testing.T) {
	r := newRig(t, nil)
	from := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	r.log.add(events.Event{Time: from.Add(-time.Hour), Kind: events.ServerDown, Service: svcWeb, Server: web(9), Message: "web: 10.0.1.11:80 is down: timeout"})
	r.log.add(events.Event{Time: from.Add(5 * time.Hour), Kind: events.ServerDown, Service: svcWeb, Server: web(0), Message: "web: 10.0.1.2:80 is down: connection refused"})
	r.log.add(events.Event{Time: from.Add(11 * time.Hour), Kind: events.ServerUp, Service: svcWeb, Server: web(0), Message: "web: 10.0.1.2:80 is up"})
	r.log.add(events.Event{Time: from.Add(12 * time.Hour), Kind: events.RoleChange, Instance: "VI_1", Message: "VI_1: BACKUP → MASTER (priority 100, keepalived)"})
	r.log.add(events.Event{Time: to.Add(time.Hour), Kind: events.ServerDown, Service: svcWeb, Server: web(1), Message: "tomorrow"})
	o, err := OpenOutbox(r.outDir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(r.cfg, PipelineDeps{Outbox: o, Events: r.log, Clock: r.clk, Name: testName,
		Services: func() []string { return []string{svcWeb, svcDNS} },
		Describe: func(s string) string { return "state of " + s + "\nsecond line" }})
	if err != nil {
		t.Fatal(err)
	}
	m := p.DailyDigest(from, to)
	if m.Subject != "[lvsmon dir1] daily digest 2026-03-01: 3 events, 2 real servers with down time" {
		t.Errorf("subject %q", m.Subject)
	}
	for _, want := range []string{
		"Daily digest of director dir1 for 2026-03-01 07:00 to 2026-03-02 07:00 (UTC).",
		"  web (tcp_10.0.0.1_80)\n    10.0.1.11:80               0.00%  down 24h in 1 outage, still down\n    10.0.1.2:80               75.00%  down 6h in 1 outage\n",
		"Services now:\n  web (tcp_10.0.0.1_80)\n    state of tcp_10.0.0.1_80\n    second line\n  dns (udp_10.0.0.1_53)\n    state of udp_10.0.0.1_53\n",
		"Events (3):\n  2026-03-01 12:00:00  server_down  web (tcp_10.0.0.1_80) 10.0.1.2:80  web: 10.0.1.2:80 is down: connection refused\n",
		"2026-03-01 19:00:00  role_change  VI_1  VI_1: BACKUP → MASTER",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
	if strings.Contains(m.Body, "tomorrow") {
		t.Errorf("an event after the window is listed")
	}
	if err := m.Validate(); err != nil {
		t.Error(err)
	}
}

// TestDailyDigestUnwatched: lvsmon stopped for 2 hours and crashed once;
// the digest says so and the percentage is over the 22 hours watched.
func TestDailyDigestUnwatched(t *testing.T) {
	r := newRig(t, nil)
	from := time.Date(2026, 3, 1, 7, 0, 0, 0, time.UTC)
	to := from.Add(24 * time.Hour)
	h := func(x float64) time.Time { return from.Add(time.Duration(x * float64(time.Hour))) }
	r.log.add(events.Event{Time: h(-5), Kind: events.DaemonStart, Message: "lvsmon started"})
	r.log.add(events.Event{Time: h(5), Kind: events.ServerDown, Service: svcWeb, Server: web(0), Message: "web: 10.0.1.2:80 is down: connection refused"})
	r.log.add(events.Event{Time: h(11), Kind: events.ServerUp, Service: svcWeb, Server: web(0), Message: "web: 10.0.1.2:80 is up"})
	r.log.add(events.Event{Time: h(13), Kind: events.DaemonStop, Message: "lvsmon stopping"})
	r.log.add(events.Event{Time: h(15), Kind: events.DaemonStart, Message: "lvsmon started"})
	r.log.add(events.Event{Time: h(20), Kind: events.DaemonStart, Message: "lvsmon started"})
	o, err := OpenOutbox(r.outDir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := NewPipeline(r.cfg, PipelineDeps{Outbox: o, Events: r.log, Clock: r.clk, Name: testName,
		Services: func() []string { return []string{svcWeb} }})
	if err != nil {
		t.Fatal(err)
	}
	m := p.DailyDigest(from, to)
	for _, want := range []string{
		"  lvsmon was stopped for 2h of the window (1 time); the percentages are over the 22h it watched.\n",
		"  lvsmon started 1 time without a clean stop before (a crash or a kill); the time before is counted as watched.\n",
		"    10.0.1.2:80               72.73%  down 6h in 1 outage\n",
	} {
		if !strings.Contains(m.Body, want) {
			t.Errorf("body lacks %q:\n%s", want, m.Body)
		}
	}
}

func TestDigestScheduleParsing(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err) // time/tzdata is embedded below
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		spec string
		loc  *time.Location
		want time.Time
	}{
		{"0 7 * * *", time.UTC, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)},
		{"30 13 * * *", time.UTC, time.Date(2026, 3, 1, 13, 30, 0, 0, time.UTC)},
		{"@daily", time.UTC, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)},
		{"0 7 * * *", berlin, time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)},
		{"CRON_TZ=Europe/Berlin 0 7 * * 1", time.UTC, time.Date(2026, 3, 2, 6, 0, 0, 0, time.UTC)},
	} {
		s, err := cron.ParseStandard(c.spec)
		if err != nil {
			t.Fatal(err)
		}
		if got := s.Next(now.In(c.loc)); !got.Equal(c.want) {
			t.Errorf("%q in %v: next %v, want %v", c.spec, c.loc, got, c.want)
		}
	}
	r := newRig(t, func(c *PipelineConfig) { c.DailyDigest = "0 7 * *" })
	o, _ := OpenOutbox(r.outDir, 0, nil)
	if _, err := NewPipeline(r.cfg, PipelineDeps{Outbox: o, Events: r.log}); err == nil || !strings.Contains(err.Error(), "daily digest schedule") {
		t.Errorf("bad spec accepted: %v", err)
	}
}

// TestDailyDigestScheduled runs the pipeline's loop with the fake clock:
// it sleeps until the cron time, queues the digest for the day then, and
// a restart does not send it again.
func TestDailyDigestScheduled(t *testing.T) {
	r := newRig(t, func(c *PipelineConfig) { c.DailyDigest = "0 7 * * *" })
	// The fake clock starts 2026-03-01 12:00 UTC.
	r.down(0)
	r.clk.Advance(time.Hour)
	r.up(0)
	p, o := r.start()
	if want := time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC); !p.eng.st.DigestNext.Equal(want) {
		t.Fatalf("next digest %v, want %v", p.eng.st.DigestNext, want)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, make(chan struct{})) }()
	r.clk.waitSleep(t, time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)) // 07:00
	r.clk.Advance(18 * time.Hour)
	waitFor(t, "the digest", func() bool { return o.Len() == 1 })
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	m := o.Pending()[0].Mail
	if !strings.Contains(m.Subject, "daily digest 2026-03-01") || !strings.Contains(m.Body, "2026-03-01 07:00 to 2026-03-02 07:00") ||
		!strings.Contains(m.Body, "10.0.1.2:80               95.83%  down 1h in 1 outage") {
		t.Fatalf("digest %q\n%s", m.Subject, m.Body)
	}
	if p.Stats().DailyDigests != 1 {
		t.Errorf("stats %+v", p.Stats())
	}
	p2, o2 := r.start()
	mustStep(t, p2)
	if o2.Len() != 1 || !p2.eng.st.DigestNext.Equal(time.Date(2026, 3, 3, 7, 0, 0, 0, time.UTC)) ||
		!p2.eng.st.DigestFrom.Equal(time.Date(2026, 3, 2, 7, 0, 0, 0, time.UTC)) {
		t.Fatalf("after restart: %d mails, next %v from %v", o2.Len(), p2.eng.st.DigestNext, p2.eng.st.DigestFrom)
	}
	// A digest missed while lvsmon was down is sent at the start, for the
	// window since the last one.
	r.clk.Advance(50 * time.Hour) // 2026-03-04 09:00
	p3, o3 := r.start()
	mustStep(t, p3)
	if o3.Len() != 2 || !strings.Contains(o3.Pending()[1].Mail.Body, "2026-03-02 07:00 to 2026-03-03 07:00") {
		t.Fatalf("catch-up: %d mails", o3.Len())
	}
	if !p3.eng.st.DigestNext.Equal(time.Date(2026, 3, 5, 7, 0, 0, 0, time.UTC)) {
		t.Errorf("next %v", p3.eng.st.DigestNext)
	}
	// Only the master sends it.
	r.master = false
	r.clk.Advance(24 * time.Hour)
	mustStep(t, p3)
	if o3.Len() != 2 {
		t.Errorf("a backup sent the digest")
	}
}
