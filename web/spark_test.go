package web

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

func TestSparkRing(t *testing.T) {
	var r sparkRing
	for i := range sparkLen + 5 {
		r.push(float32(i))
	}
	v := r.values()
	if len(v) != sparkLen || v[0] != 5 || v[sparkLen-1] != sparkLen+4 {
		t.Fatalf("after %d pushes: %d values from %v to %v; want %d from 5 to %d", sparkLen+5, len(v), v[0], v[len(v)-1], sparkLen, sparkLen+4)
	}
	var short sparkRing
	short.push(1)
	short.push(2)
	if v := short.values(); len(v) != 2 || v[0] != 1 || v[1] != 2 {
		t.Fatalf("two pushes: %v", v)
	}
}

func TestSparkSVG(t *testing.T) {
	nan := float32(math.NaN())
	points := regexp.MustCompile(`points="([^"]*)"`)
	for _, tc := range []struct {
		name  string
		vals  []float32
		lines int    // polylines drawn; -1: no svg
		label string // in the aria-label
	}{
		{"none", nil, -1, ""},
		{"one value", []float32{3}, -1, ""},
		{"all without rate", []float32{nan, nan, nan}, -1, ""},
		{"flat zero", []float32{0, 0, 0}, 1, "from 0/s to 0/s, now 0/s"},
		{"rising", []float32{1, 2, 4}, 1, "from 1.0/s to 4.0/s, now 4.0/s"},
		{"a counter reset splits the line", []float32{1, 2, nan, 3, 4}, 2, "now 4.0/s"},
		{"the last sample has no rate", []float32{1, 2, nan}, 1, "now none"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := string(sparkSVG(tc.vals, "10 s"))
			if tc.lines < 0 {
				if got != "" {
					t.Fatalf("drew %s", got)
				}
				return
			}
			if n := strings.Count(got, "<polyline"); n != tc.lines {
				t.Errorf("%d polylines, want %d: %s", n, tc.lines, got)
			}
			if !strings.Contains(got, tc.label) || !strings.Contains(got, `role="img"`) {
				t.Errorf("label lacks %q: %s", tc.label, got)
			}
			// Every point lies inside the box, and the newest value is at
			// the right edge.
			for _, m := range points.FindAllStringSubmatch(got, -1) {
				for p := range strings.FieldsSeq(m[1]) {
					var x, y float64
					if _, err := fmt.Sscanf(p, "%f,%f", &x, &y); err != nil || x < 0 || x > sparkLen-1 || y < 0 || y > sparkH {
						t.Errorf("point %q outside %dx%d", p, sparkLen-1, sparkH)
					}
				}
			}
			if tc.vals[len(tc.vals)-1] == tc.vals[len(tc.vals)-1] && !strings.Contains(got, " 59,") && !strings.Contains(got, `"59,`) {
				t.Errorf("the newest point is not at the right edge: %s", got)
			}
		})
	}
}

// TestSparklinesOnTheOverview feeds snapshots through Observe, as the
// collector does, and finds the line on the page; a service gone from
// the kernel loses its history.
func TestSparklinesOnTheOverview(t *testing.T) {
	s, c, f := fixture(t)
	c.Subscribe(s.Observe)
	for range 3 {
		f.Mutate(func(tb *lvs.Table) { tb.Services[0].Stats.Conns += 50 })
		c.Sample(t.Context())
		time.Sleep(2 * time.Millisecond) // rates need elapsed time between samples
	}
	body := get(t, s.Handler(), "GET", "/").Body.String()
	row := body[strings.Index(body, `id="tcp_198.51.100.10_80"`):]
	row = row[:strings.Index(row, "</tr>")]
	if !strings.Contains(row, `<svg class="spark"`) || !strings.Contains(row, "new connections per second over the last 3 samples") {
		t.Errorf("the service line has no sparkline of 3 samples: %s", row)
	}
	if v := s.spark("tcp_198.51.100.10_80"); len(v) != 3 || v[0] == v[0] {
		t.Errorf("history %v: want 3 values, the first without a rate", v)
	}
	f.Mutate(func(tb *lvs.Table) { tb.Services = tb.Services[:1] })
	c.Sample(t.Context())
	if v := s.spark(extra.ID()); v != nil {
		t.Errorf("a service gone from the kernel keeps its history: %v", v)
	}
}
