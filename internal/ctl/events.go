package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// maxEvents is the most the events API returns at once.
const maxEvents = 10000

type eventsOpts struct {
	follow bool
	since  time.Time
	kinds  []events.Kind
	limit  int
	json   bool
}

// selects reports whether e passes the --kind filter.
func (o *eventsOpts) selects(e *events.Event) bool {
	if len(o.kinds) == 0 {
		return true
	}
	return slices.ContainsFunc(o.kinds, func(k events.Kind) bool { return k.Selects(e) })
}

// ParseSince reads --since: a duration before now (90m, 1h30m, 2d) or a
// time (RFC 3339, or "2006-01-02 15:04[:05]" and "2006-01-02" in loc).
func ParseSince(s string, now time.Time, loc *time.Location) (time.Time, error) {
	s = strings.TrimSpace(s)
	if days, ok := strings.CutSuffix(s, "d"); ok {
		if n, err := strconv.Atoi(days); err == nil && n >= 0 && n <= 36500 {
			return now.AddDate(0, 0, -n), nil
		}
	}
	if d, err := time.ParseDuration(s); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: a duration ago is positive", s)
		}
		return now.Add(-d), nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	for _, layout := range []string{time.DateTime, "2006-01-02 15:04", "2006-01-02T15:04:05", "2006-01-02T15:04", time.DateOnly} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("%q is neither a duration (90m, 2d) nor a time (2026-12-03 14:00, RFC 3339)", s)
}

// printEvents prints the events asked for and, with --follow, the new
// ones until ctx ends (SIGINT), which is a clean end.
func printEvents(ctx context.Context, cl *Client, env *Env, o eventsOpts) error {
	q := EventQuery{Since: o.since, Limit: o.limit}
	if !o.since.IsZero() || len(o.kinds) > 0 {
		// The kind filter is the client's: ask for all there are.
		q.Limit = maxEvents
	}
	evs, err := cl.Events(ctx, q)
	if err != nil {
		return err
	}
	if o.since.IsZero() && len(o.kinds) > 0 {
		evs = slices.DeleteFunc(evs, func(e events.Event) bool { return !o.selects(&e) })
		evs = evs[max(0, len(evs)-o.limit):]
	} else if !o.since.IsZero() && len(evs) == maxEvents {
		fmt.Fprintf(env.Stderr, "lvsmon ctl: only the newest %d events since then are shown\n", maxEvents)
	}
	w := &eventWriter{w: env.Stdout, json: o.json, loc: env.loc()}
	var last events.Event
	for i := range evs {
		if o.selects(&evs[i]) {
			if err := w.write(&evs[i]); err != nil {
				return err
			}
		}
		last = evs[i]
	}
	if !o.follow {
		return nil
	}
	if last.Seq == 0 {
		// Nothing printed: start after the newest event there is.
		newest, err := cl.Events(ctx, EventQuery{Limit: 1})
		if err != nil {
			return err
		}
		if len(newest) > 0 {
			last = newest[0]
		}
	}
	return follow(ctx, cl, env, o, w, last)
}

// follow polls the events API for events after last: those since its
// time (the API's since is inclusive) with a higher sequence number.
// Lost contact (a daemon restarting) is reported and waited out.
func follow(ctx context.Context, cl *Client, env *Env, o eventsOpts, w *eventWriter, last events.Event) error {
	poll := env.Poll
	if poll <= 0 {
		poll = time.Second
	}
	t := time.NewTicker(poll)
	defer t.Stop()
	lost := false
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		q := EventQuery{Limit: maxEvents}
		if last.Seq > 0 {
			q.Since = last.Time
		}
		evs, err := cl.Events(ctx, q)
		var ue *UnreachableError
		switch {
		case ctx.Err() != nil:
			return nil
		case errors.As(err, &ue):
			if !lost {
				fmt.Fprintf(env.Stderr, "lvsmon ctl: lost the daemon (%v); still trying\n", ue.Err)
				lost = true
			}
			continue
		case err != nil:
			return err
		}
		if lost {
			fmt.Fprintln(env.Stderr, "lvsmon ctl: the daemon answers again")
			lost = false
		}
		for i := range evs {
			e := &evs[i]
			if e.Seq <= last.Seq {
				continue
			}
			if o.selects(e) {
				if err := w.write(e); err != nil {
					return err
				}
			}
			last = *e
		}
	}
}

type eventWriter struct {
	w    io.Writer
	json bool
	loc  *time.Location
}

func (w *eventWriter) write(e *events.Event) error {
	if w.json {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		_, err = w.w.Write(append(b, '\n'))
		return err
	}
	line := fmt.Sprintf("%s  %-17s %s", e.Time.In(w.loc).Format(time.DateTime), e.Kind, e.Message)
	if e.Reason != "" && !strings.Contains(e.Message, e.Reason) {
		line += " (" + e.Reason + ")"
	}
	_, err := fmt.Fprintln(w.w, line)
	return err
}
