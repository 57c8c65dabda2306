package ctl

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/web"
)

// pair prints this director and its peers side by side, and the drift
// between them, from the daemon's status API (its peers section).
func pair(ctx context.Context, c *Client, env *Env) error {
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	return RenderPair(env.Stdout, st, env.loc())
}

// RenderPair writes `lvsmon ctl pair`: one column per director (role,
// health, the VIPs it holds, when it sampled its table), then each
// peer's drift with the value here and there. A peer that cannot be
// pulled says so: its drift is unknown, never "none".
func RenderPair(w io.Writer, st *web.Status, loc *time.Location) error {
	if len(st.Peers) == 0 {
		_, err := fmt.Fprintf(w, "director %s has no peers (config peers: the other director's URL)\n", st.Director)
		return err
	}
	ts := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.In(loc).Format("2006-01-02 15:04:05")
	}
	here := []string{"here: " + st.Director, "yes (this director)", roleOf(st.Role), health(len(st.Problems), st.Collector.ConsecutiveErr == 0),
		list(vipsHeld(st.Role)), "-", "-"}
	if st.SampledAt != nil {
		here[5] = ts(*st.SampledAt)
	}
	labels := []string{"reachable", "role", "health", "VIPs held", "sampled", "last pull"}
	cols := [][]string{here}
	for _, p := range st.Peers {
		name := p.Name
		if p.Director != "" && p.Director != p.Name {
			name += " (" + p.Director + ")"
		}
		reach := "yes"
		if !p.Up {
			reach = "NO: " + p.LastError
			if p.LastError == "" {
				reach = "not yet pulled"
			}
		}
		role := p.Role
		if role == "" {
			role = "-"
		}
		h := "-"
		if !p.LastSuccess.IsZero() {
			h = health(p.Problems, true)
		}
		cols = append(cols, []string{"peer: " + name, reach, role, h, list(p.VIPs), ts(p.SampledAt), ts(p.LastSuccess)})
	}
	t := &table{header: []string{""}}
	for _, c := range cols {
		t.header = append(t.header, c[0])
	}
	for i, label := range labels {
		r := []string{label}
		for _, c := range cols {
			if i+1 < len(c) {
				r = append(r, c[i+1])
			} else {
				r = append(r, "")
			}
		}
		t.row(r)
	}
	if _, err := io.WriteString(w, t.String()); err != nil {
		return err
	}
	for _, p := range st.Peers {
		var err error
		switch {
		case !p.DriftKnown:
			_, err = fmt.Fprintf(w, "\ndrift with %s: UNKNOWN (the peer cannot be reached)\n", p.Name)
		case len(p.Drift) == 0:
			_, err = fmt.Fprintf(w, "\ndrift with %s: none (configs and kernel tables match)\n", p.Name)
		default:
			dt := &table{header: []string{"  Table", "Kind", "Object", "Here", "Peer"}}
			for _, d := range p.Drift {
				obj := d.Service
				if d.Server != "" {
					obj = d.Server
				}
				dt.row([]string{"  " + d.Table, d.Kind, obj, d.Local, d.Peer})
			}
			_, err = fmt.Fprintf(w, "\ndrift with %s: %d difference(s)\n%s", p.Name, len(p.Drift), dt.String())
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func roleOf(r *web.Role) string {
	if r == nil {
		return "-"
	}
	return r.Role
}

func vipsHeld(r *web.Role) []string {
	if r == nil {
		return nil
	}
	var out []string
	for _, in := range r.Instances {
		for _, v := range in.VIPs {
			if v.Present {
				out = append(out, v.Address)
			}
		}
	}
	return out
}

func health(problems int, sampling bool) string {
	s := "ok"
	if problems > 0 {
		s = fmt.Sprintf("%d problem(s)", problems)
	}
	if !sampling {
		s += ", IPVS read failing"
	}
	return s
}

func list(s []string) string {
	if len(s) == 0 {
		return "-"
	}
	return strings.Join(s, ",")
}
