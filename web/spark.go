package web

import (
	"fmt"
	"html/template"
	"math"
	"strconv"
	"strings"
	"sync"

	"github.com/lvsmon/lvsmon/lvs"
)

// Sparklines: each line of the overview carries the service's new
// connections per second over the last sparkLen steps, so a service whose
// traffic just fell to nothing (or doubled) shows it beside its numbers.
// They come from memory, fed by every snapshot, rather than from the RRD
// files: a page of 100 services would otherwise read 100 files on every
// refresh of every open browser. At 1,000 services they cost 240 KB.

// sparkLen is how many steps a sparkline spans: 10 minutes at the
// default 10 s step.
const sparkLen = 60

// sparkRing is one service's last sparkLen rates; NaN where a sample had
// no rate (the first one, a counter reset).
type sparkRing struct {
	v    [sparkLen]float32
	n    int // filled, at most sparkLen
	next int // where the next value goes
	seen uint64
}

func (r *sparkRing) push(v float32) {
	r.v[r.next] = v
	r.next = (r.next + 1) % sparkLen
	r.n = min(r.n+1, sparkLen)
}

// values are the filled values, oldest first.
func (r *sparkRing) values() []float32 {
	out := make([]float32, 0, r.n)
	for i := range r.n {
		out = append(out, r.v[(r.next-r.n+i+sparkLen)%sparkLen])
	}
	return out
}

// sparks keeps the rings by service id.
type sparks struct {
	mu   sync.Mutex
	gen  uint64
	byID map[string]*sparkRing
}

// Observe records a snapshot's service rates for the sparklines. It is
// a collector subscriber: called in the collector's goroutine with every
// new snapshot, so it only copies numbers. A service gone from the
// kernel loses its line.
func (s *Server) Observe(snap *lvs.Snapshot) {
	if snap == nil {
		return
	}
	sp := &s.sparks
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if sp.byID == nil {
		sp.byID = map[string]*sparkRing{}
	}
	sp.gen++
	for i := range snap.Table.Services {
		id := snap.Table.Services[i].Key.ID()
		r := sp.byID[id]
		if r == nil {
			r = &sparkRing{}
			sp.byID[id] = r
		}
		v := float32(math.NaN())
		if i < len(snap.ServiceRates) && snap.ServiceRates[i].Valid {
			v = float32(snap.ServiceRates[i].Conns)
		}
		r.push(v)
		r.seen = sp.gen
	}
	for id, r := range sp.byID {
		if r.seen != sp.gen {
			delete(sp.byID, id)
		}
	}
}

// spark returns a service's recent rates, oldest first; nil when none.
func (s *Server) spark(id string) []float32 {
	sp := &s.sparks
	sp.mu.Lock()
	defer sp.mu.Unlock()
	if r := sp.byID[id]; r != nil {
		return r.values()
	}
	return nil
}

// Sparkline geometry, in CSS pixels.
const sparkW, sparkH = 60, 16

// sparkSVG draws rates as an inline SVG polyline, with gaps where a
// sample had no rate and the label a screen reader reads. Empty when
// there are fewer than two values. Every value is scaled to the line's
// own maximum: a sparkline shows shape, the table beside it the number.
func sparkSVG(vals []float32, step string) template.HTML {
	if len(vals) < 2 {
		return ""
	}
	hi, lo, last := float32(0), float32(math.Inf(1)), vals[len(vals)-1]
	for _, v := range vals {
		if v == v { // not NaN
			hi, lo = max(hi, v), min(lo, v)
		}
	}
	if math.IsInf(float64(lo), 1) {
		return ""
	}
	var b strings.Builder
	// One unit of the view box per sample, so x is an integer; the box
	// is stretched to sparkW pixels.
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %d %d" width="%d" height="%d" preserveAspectRatio="none" role="img" aria-label="new connections per second over the last %d samples of %s: from %s to %s, now %s">`,
		sparkLen-1, sparkH, sparkW, sparkH, len(vals), step, rateText(lo), rateText(hi), rateText(last))
	x0 := sparkLen - len(vals) // right-aligned: now is the right edge
	open := false
	for i, v := range vals {
		if v != v {
			if open {
				b.WriteString(`"/>`)
				open = false
			}
			continue
		}
		y := float64(sparkH) - 1
		if hi > 0 {
			y = 1 + (float64(sparkH)-2)*(1-float64(v/hi))
		}
		if !open {
			b.WriteString(`<polyline points="`)
			open = true
		} else {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.Itoa(x0 + i))
		b.WriteByte(',')
		b.WriteString(strconv.FormatFloat(y, 'f', 1, 64))
	}
	if open {
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String()) // only numbers and fixed text are written
}

// rateText is a rate as the tables print it.
func rateText(v float32) string {
	if v != v {
		return "none"
	}
	return rate(true, float64(v))
}
