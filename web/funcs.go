package web

import (
	"fmt"
	"html/template"
	"math"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// funcs are the status page's formatting helpers: human units, because
// the page is read by a person at a glance, while the API keeps raw
// numbers.
var funcs = template.FuncMap{
	"actions":      actions,
	"si":           si,
	"bytes":        bytesHuman,
	"rate":         rate,
	"brate":        brate,
	"ago":          ago,
	"since":        since,
	"refresh":      refresh,
	"deref":        func(p *int32) int32 { return *p },
	"isNilW":       func(p *int32) bool { return p == nil },
	"portText":     func(p *uint16) string { return fmt.Sprint(*p) },
	"graphURL":     graphURL,
	"hostport":     hostport,
	"stateSym":     stateSym,
	"outcomeState": outcomeState,
	"dur":          func(d time.Duration) string { return d.Round(time.Millisecond).String() },
	"seq": func(n int) []int {
		out := make([]int, n)
		for i := range out {
			out[i] = i + 1
		}
		return out
	},
	"sub": func(a, b int) int { return a - b },
}

// hostport writes an address and port as ipvsadm does ([v6]:port).
func hostport(addr string, port uint16) string {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return addr + ":" + fmt.Sprint(port)
	}
	return netip.AddrPortFrom(a, port).String()
}

// stateSym is the symbol that goes with a state's text, so a state never
// rests on its colour alone.
func stateSym(state string) string {
	switch state {
	case "up", "ok":
		return "✓"
	case "down", "missing":
		return "✗"
	case "degraded":
		return "◐"
	case "sorry":
		return "↪"
	case "drained":
		return "⏸"
	case "disabled":
		return "⊘"
	case "unknown":
		return "?"
	case "quiesced":
		return "○"
	}
	return "·"
}

// outcomeState is the state a check result is drawn as: a pass as up, a
// failure as down, an inconclusive result (which said nothing about the
// server) as unknown.
func outcomeState(outcome string) string {
	switch outcome {
	case "passed":
		return "up"
	case "failed":
		return "down"
	}
	return "unknown"
}

// graphURL fills a graph URL template of the status (graph_templates).
func graphURL(tmpl, id, graph, rng string) string {
	return strings.NewReplacer("{id}", url.PathEscape(id), "{graph}", graph, "{range}", url.QueryEscape(rng)).Replace(tmpl)
}

// si formats a count with k/M/G/T suffixes.
func si(v uint64) string {
	f := float64(v)
	for _, u := range []string{"", "k", "M", "G", "T", "P"} {
		if f < 1000 {
			if u == "" {
				return fmt.Sprintf("%d", uint64(f))
			}
			return fmt.Sprintf("%.1f%s", f, u)
		}
		f /= 1000
	}
	return fmt.Sprintf("%.1fE", f)
}

// bytesHuman formats a byte count in binary units.
func bytesHuman(v uint64) string {
	f := float64(v)
	for _, u := range []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"} {
		if f < 1024 {
			if u == "B" {
				return fmt.Sprintf("%d B", v)
			}
			return fmt.Sprintf("%.1f %s", f, u)
		}
		f /= 1024
	}
	return fmt.Sprintf("%.1f EiB", f)
}

// rate formats a per-second rate; unknown rates (first sample, counter
// reset) show as a dash rather than a misleading zero.
func rate(valid bool, v float64) string {
	if !valid || math.IsNaN(v) {
		return "–"
	}
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.1fM/s", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk/s", v/1e3)
	case v >= 10 || v == 0:
		return fmt.Sprintf("%.0f/s", v)
	}
	return fmt.Sprintf("%.1f/s", v)
}

func ago(t *time.Time) string {
	if t == nil {
		return "never"
	}
	return time.Since(*t).Round(time.Second).String() + " ago"
}

// since formats a start time as "15:04:05 (3m ago)"; "–" when unknown.
func since(t time.Time) string {
	if t.IsZero() {
		return "–"
	}
	l, layout := t.Local(), "15:04:05"
	if y, m, d := l.Date(); time.Now().Local().Format("2006-01-02") != fmt.Sprintf("%04d-%02d-%02d", y, m, d) {
		layout = "2006-01-02 15:04"
	}
	return l.Format(layout) + " (" + time.Since(t).Round(time.Second).String() + " ago)"
}

// refresh is the page's reload interval in seconds: one step, at least 1.
func refresh(step float64) int { return max(1, int(math.Ceil(step))) }

// brate formats a byte rate in binary units per second.
func brate(valid bool, v float64) string {
	if !valid || math.IsNaN(v) {
		return "–"
	}
	return bytesHuman(uint64(v+0.5)) + "/s"
}

// actions are the overrides a server page offers in its mode: the two
// it is not in, and enable when it has one.
func actions(mode string) []string {
	switch mode {
	case "drain":
		return []string{"enable", "disable"}
	case "disable":
		return []string{"enable", "drain"}
	}
	return []string{"drain", "disable"}
}
