package checker

import (
	"context"
	"fmt"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
)

// CloseOpenOutages settles outages that an earlier run of lvsmon logged
// but never saw end. With startup "up" (the default) the checker assumes
// every server up at start and writes an event only on a change, so a
// server that failed before a restart and recovered meanwhile would stay
// "down" in the event log, on the graphs and in alerting's memory (which
// would keep sending reminders). Once the first check of such a server
// passes, this writes the missing server_up. It returns when every such
// outage is settled or ctx ends.
func (c *Checker) CloseOpenOutages(ctx context.Context, since time.Time) {
	if c.ev == nil {
		return
	}
	open := map[string]events.Event{} // server → its last down event before this start
	for _, e := range c.ev.Query(events.Filter{To: since}) {
		switch e.Kind {
		case events.ServerDown:
			open[e.Server] = e
		case events.ServerUp:
			delete(open, e.Server)
		}
	}
	if len(open) == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for len(open) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// This run's own events about these servers settle them too.
		for _, e := range c.ev.Query(events.Filter{From: since}) {
			if e.Kind == events.ServerDown || e.Kind == events.ServerUp {
				delete(open, e.Server)
			}
		}
		for _, st := range c.Status() {
			down, ok := open[st.ID]
			if !ok || st.LastTime.IsZero() {
				continue
			}
			delete(open, st.ID)
			if st.Health != health.Up {
				continue
			}
			msg := fmt.Sprintf("up: found up by the first check after lvsmon restarted (down since %s)", down.Time.Local().Format("2006-01-02 15:04:05"))
			e := events.Event{Kind: events.ServerUp, Service: down.Service, Server: st.ID, From: events.Down, To: events.Up,
				Reason: "found up by the first check after lvsmon restarted", Actor: events.ActorChecker, Message: msg}
			if _, err := c.ev.Append(e); err != nil {
				c.log.Error("writing an event failed", "err", err)
			}
		}
		// Servers no longer configured never get a check: forget them.
		known := map[string]bool{}
		for _, st := range c.Status() {
			known[st.ID] = true
		}
		for id := range open {
			if !known[id] {
				delete(open, id)
			}
		}
	}
}
