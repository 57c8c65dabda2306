package web

import (
	"fmt"
	"math"
	"net/netip"
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

// TestServerPageHistory: the server page lists the checks' recent runs,
// newest first, each outcome in its own state and words.
func TestServerPageHistory(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.src.History = func(id string) []CheckHistory {
		if id != "tcp_198.51.100.10_80__10.1.1.2_80" {
			return nil
		}
		return []CheckHistory{{Type: "http", Runs: []CheckRun{
			{Outcome: "inconclusive", Message: "too many open files", Count: 1, First: t0.Add(20 * time.Second), Last: t0.Add(20 * time.Second)},
			{Outcome: "failed", Message: "http: status 503, want 200-299", Count: 3, First: t0.Add(5 * time.Second), Last: t0.Add(15 * time.Second), LastDur: 4 * time.Millisecond, MaxDur: 9 * time.Millisecond},
			{Outcome: "passed", Count: 360, First: t0.Add(-time.Hour), Last: t0, LastDur: time.Millisecond, MaxDur: 2 * time.Millisecond},
		}}, {Type: "tcp"}}
	}
	body := get(t, s.Handler(), "GET", "/server/tcp_198.51.100.10_80__10.1.1.2_80").Body.String()
	i := strings.Index(body, `<section id="history"`)
	if i < 0 {
		t.Fatalf("no history section")
	}
	sec := body[i : i+strings.Index(body[i:], "</section>")]
	for _, want := range []string{"? inconclusive", "too many open files", "✗ failed", "http: status 503, want 200-299", "<td>3</td>", "12:00:05", "4ms, 9ms", "✓ passed", "<td>360</td>", "no result yet"} {
		if !strings.Contains(sec, want) {
			t.Errorf("history lacks %q", want)
		}
	}
	if strings.Index(sec, "inconclusive") > strings.Index(sec, "failed") || strings.Index(sec, "failed") > strings.Index(sec, "passed") {
		t.Errorf("not newest first: %s", sec)
	}
	other := get(t, s.Handler(), "GET", "/server/tcp_198.51.100.10_80__10.1.2.2_80").Body.String()
	if strings.Contains(other, `id="history"`) {
		t.Errorf("a server without history shows the section")
	}
}

// TestIDCache: cached names are the ones made afresh, and the cache
// starts again once full.
func TestIDCache(t *testing.T) {
	var c idCache
	k := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("2001:db8::10"), 443)
	d := lvs.DestKey{Addr: netip.MustParseAddr("2001:db8::1:2"), Port: 443}
	id, addr := c.names(k, d)
	wantID, wantAddr := (*idCache)(nil).names(k, d)
	if id != wantID || addr != wantAddr || id != "tcp_2001-db8--10_443__2001-db8--1-2_443" {
		t.Fatalf("names %q %q, want %q %q", id, addr, wantID, wantAddr)
	}
	for i := range maxIDCache {
		c.names(k, lvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Port: 80})
	}
	if n := len(c.m); n > maxIDCache {
		t.Errorf("the cache holds %d names, more than %d", n, maxIDCache)
	}
}
