package graphs

import (
	"bytes"
	"fmt"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// A series' colour follows its id, never its position, and no series
// colour is an event marker's.
func TestSeriesColors(t *testing.T) {
	marker := map[string]bool{othersColor: true}
	for _, st := range eventStyle {
		marker[st.color] = true
	}
	for _, c := range palette {
		if marker[c] {
			t.Errorf("palette colour %s is also a marker's", c)
		}
	}
	if seriesColor("10.1.1.2_80") != seriesColor("10.1.1.2_80") {
		t.Error("a colour that changes between calls")
	}
	seen := map[string]bool{}
	for i := range 40 {
		seen[seriesColor(fmt.Sprintf("10.0.0.%d_80", i))] = true
	}
	if len(seen) < len(palette)/2 {
		t.Errorf("40 servers share %d colours", len(seen))
	}
}

// A service of 30 real servers draws the 9 busiest one by one and the
// rest as "others": its legend has 10 lines and the plot keeps its room.
func TestManyServersKeepThePlot(t *testing.T) {
	s := newStore(t, 10*time.Second)
	now := time.Now().Truncate(10 * time.Second)
	key := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("198.51.100.20"), 80)
	for i := 60; i >= 0; i-- {
		svc := lvs.Service{Key: key, Scheduler: "wlc"}
		for j := range 30 {
			// server j has j*10 active connections: 29..21 are the busiest
			svc.Dests = append(svc.Dests, lvs.Dest{Key: lvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, 2, 0, byte(j + 1)}), Port: 80},
				Weight: 1, ActiveConns: uint32(j * 10), Stats: lvs.Stats{Conns: uint64((60 - i) * j)}})
		}
		tab := lvs.Table{Services: []lvs.Service{svc}}
		tab.SumTotals()
		s.Update(&lvs.Snapshot{Time: now.Add(-time.Duration(i) * 10 * time.Second), Table: tab})
	}
	g := NewRenderer(s, nil)
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	parts, err := g.serverFiles(key.ID())
	if err != nil || len(parts) != 30 {
		t.Fatalf("%d server files: %v", len(parts), err)
	}
	top := g.top(parts, "active", now.Add(-time.Hour), now)
	got := map[string]bool{}
	for _, p := range top[:len(top)-1] {
		got[p.label] = true
	}
	others := top[len(top)-1]
	if len(top) != maxSeries || len(got) != maxSeries-1 || !got["10.2.0.30:80"] || !got["10.2.0.22:80"] || got["10.2.0.21:80"] {
		t.Errorf("drawn one by one: %v; want the 9 busiest (10.2.0.22-30)", got)
	}
	if others.label != "others (21)" || len(others.sum) != 21 || others.color() != othersColor {
		t.Errorf("the rest: %+v", others)
	}
	// And the graph draws, with the others summed.
	for _, graph := range []string{GraphConns, GraphRate} {
		if _, err := g.Render(Request{Kind: ServiceFile, Service: key.ID(), Graph: graph, Range: "hour"}); err != nil {
			t.Errorf("%s: %v", graph, err)
		}
	}
}

// A range before the first data says so instead of printing "-nan".
func TestHasData(t *testing.T) {
	s, _, now := filled(t)
	file := filepath.Join(s.Dir(), web.ID(), rs1.ID()+".rrd")
	if err := s.Flush(); err != nil {
		t.Fatal(err)
	}
	if !hasData(file, "active", now.Add(-time.Hour), now) {
		t.Error("the last hour: no data")
	}
	// Two days before the file's first row, within its week of
	// one-minute rows.
	old := now.Add(-3 * 24 * time.Hour)
	if hasData(file, "active", old, old.Add(24*time.Hour)) {
		t.Error("a day before the first data: data")
	}
	g := NewRenderer(s, nil)
	if _, err := g.Render(Request{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphConns, Start: old, End: old.Add(24 * time.Hour)}); err != nil {
		t.Errorf("a graph of a range without data: %v", err)
	}
}

// The weight graph draws the configured weight as a line beside the
// weight the server has; without one it draws as before.
func TestWeightGraphConfiguredLine(t *testing.T) {
	s, _, _ := filled(t)
	g := NewRenderer(s, nil)
	var asked string
	g.ConfiguredWeight = func(id string) (int, bool) { asked = id; return 5, true }
	req := Request{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphWeight, Range: "hour", Format: "svg"}
	with, err := g.Render(req)
	if err != nil {
		t.Fatal(err)
	}
	if asked != web.ID()+"__"+rs1.ID() {
		t.Errorf("asked for %q", asked)
	}
	g2 := NewRenderer(s, nil)
	without, err := g2.Render(req)
	if err != nil {
		t.Fatal(err)
	}
	// The line is a dashed stroke in its own colour.
	if !bytes.Contains(with, []byte("rgb(9.019608%,39.607843%,16.862745%)")) || bytes.Contains(without, []byte("rgb(9.019608%,39.607843%,16.862745%)")) {
		t.Error("the configured weight line is missing, or drawn without a configured weight")
	}
}
