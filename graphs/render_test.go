package graphs

import (
	"bytes"
	"errors"
	"fmt"
	"image/png"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// filled writes an hour of 10-second steps ending now.
func filled(t *testing.T) (*Store, *events.Log, time.Time) {
	t.Helper()
	s := newStore(t, 10*time.Second)
	now := time.Now().Truncate(10 * time.Second)
	for i := 360; i >= 0; i-- {
		s.Update(snap(now.Add(-time.Duration(i)*10*time.Second).Unix(), uint64(1000+(360-i)*25)))
	}
	ev, err := events.Open(t.TempDir(), 100, quiet)
	if err != nil {
		t.Fatal(err)
	}
	return s, ev, now
}

func TestRenderSizesAndFormats(t *testing.T) {
	s, ev, _ := filled(t)
	g := NewRenderer(s, ev)
	for _, tc := range []Request{
		{Kind: DirectorFile, Graph: GraphConns, Range: "hour"},
		{Kind: DirectorFile, Graph: GraphTraffic, Range: "day", Width: 400, Height: 150},
		{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "hour", Width: 1000, Height: 300},
		{Kind: ServiceFile, Service: web.ID(), Graph: GraphRate, Range: "week"},
		{Kind: ServiceFile, Service: web6.ID(), Graph: GraphTraffic, Range: "month"},
		{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphWeight, Range: "year"},
		{Kind: ServerFile, Service: web6.ID(), Server: rs6.ID(), Graph: GraphConns, Range: "hour"},
	} {
		img, err := g.Render(tc)
		if err != nil {
			t.Fatalf("%+v: %v", tc, err)
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(img))
		if err != nil {
			t.Fatalf("%+v: not a PNG: %v", tc, err)
		}
		w, h := tc.Width, tc.Height
		if w == 0 {
			w, h = DefaultWidth, DefaultHeight
		}
		if cfg.Width != w || cfg.Height != h {
			t.Errorf("%s %s: %dx%d, want %dx%d", tc.Service, tc.Graph, cfg.Width, cfg.Height, w, h)
		}
	}
	svg, err := g.Render(Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "day", Format: "svg"})
	if err != nil || !bytes.Contains(svg, []byte("<svg")) {
		t.Fatalf("svg: %v %.100s", err, svg)
	}
}

func TestRenderMarksEvents(t *testing.T) {
	s, ev, now := filled(t)
	g := NewRenderer(s, ev)
	req := Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "hour", Format: "svg"}
	before, err := g.Render(req)
	if err != nil {
		t.Fatal(err)
	}
	ev.Append(events.Event{Time: now.Add(-20 * time.Minute), Kind: events.ServerDown, Service: web.ID(), Server: web.ID() + "__" + rs1.ID(), Message: "http: 503"})
	ev.Append(events.Event{Time: now.Add(-10 * time.Minute), Kind: events.ServerUp, Service: web.ID(), Server: web.ID() + "__" + rs1.ID()})
	ev.Append(events.Event{Time: now.Add(-5 * time.Minute), Kind: events.RoleChange, Message: "BACKUP -> MASTER"})
	ev.Append(events.Event{Time: now.Add(-4 * time.Minute), Kind: events.SimulatedDown, Service: web.ID()}) // a legend with a colon
	ev.Append(events.Event{Time: now.Add(-3 * time.Minute), Kind: "custom_kind", Service: web.ID()})
	ev.Append(events.Event{Time: now.Add(-5 * time.Minute), Kind: events.SorryOn, Service: web6.ID()}) // another service
	s.updated.Add(1)                                                                                   // a new step invalidates the cache
	after, err := g.Render(req)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(before, after) {
		t.Fatal("events made no difference to the graph")
	}
	// rrdtool's SVG draws text as paths, so look for the markers' colours.
	for _, kind := range []events.Kind{events.ServerDown, events.ServerUp, events.RoleChange} {
		if !bytes.Contains(after, []byte(cairoRGB(eventStyle[kind].color))) {
			t.Errorf("no %s marker (colour %s)", kind, eventStyle[kind].color)
		}
	}
	if bytes.Contains(after, []byte(cairoRGB(eventStyle[events.SorryOn].color))) {
		t.Error("another service's event is on this graph")
	}
	// PNG too: with and without markers differ.
	p1, _ := NewRenderer(s, nil).Render(Request{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphWeight, Range: "hour"})
	p2, _ := g.Render(Request{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphWeight, Range: "hour"})
	if bytes.Equal(p1, p2) {
		t.Error("PNG with events equals PNG without")
	}
}

func TestRenderCache(t *testing.T) {
	s, ev, now := filled(t)
	g := NewRenderer(s, ev)
	req := Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphRate, Range: "hour"}
	a, _ := g.Render(req)
	g.now = func() time.Time { return now.Add(time.Hour) } // would draw differently
	b, _ := g.Render(req)
	if !bytes.Equal(a, b) {
		t.Error("same step, different image: the cache was not used")
	}
	s.Update(snap(now.Add(10*time.Second).Unix(), 99999))
	c, _ := g.Render(req)
	if bytes.Equal(a, c) {
		t.Error("a new step did not invalidate the cache")
	}
}

func TestRenderBadRequests(t *testing.T) {
	s, ev, now := filled(t)
	g := NewRenderer(s, ev)
	tests := []struct {
		req  Request
		want error
		msg  string
	}{
		{Request{Kind: ServiceFile, Service: "../../etc", Graph: GraphConns, Range: "day"}, ErrBadRequest, "malformed service id"},
		{Request{Kind: ServerFile, Service: web.ID(), Server: "a/b", Graph: GraphConns, Range: "day"}, ErrBadRequest, "malformed real server id"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: "pie", Range: "day"}, ErrBadRequest, `no graph "pie"`},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphWeight, Range: "day"}, ErrBadRequest, `no graph "weight"`},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "decade"}, ErrBadRequest, "unknown range"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Start: now, End: now.Add(-time.Hour)}, ErrBadRequest, "is not after start"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns}, ErrBadRequest, "give a range"},
		// librrd reads small numbers as dates and negative ones as offsets.
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Start: time.Unix(1, 0), End: time.Unix(61, 0)}, ErrBadRequest, "start 1 (1970-01-01T00:00:01Z) is out of range"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Start: time.Unix(-100, 0), End: time.Unix(100, 0)}, ErrBadRequest, "start -100"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Start: now, End: time.Unix(1<<40, 0)}, ErrBadRequest, "end 1099511627776"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "day", Width: 10}, ErrBadRequest, "width 10"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "day", Height: 99999}, ErrBadRequest, "height 99999"},
		{Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "day", Format: "gif"}, ErrBadRequest, `format "gif"`},
		{Request{Kind: ServiceFile, Service: "tcp_10.9.9.9_80", Graph: GraphConns, Range: "day"}, ErrNoData, ""},
		{Request{Kind: ServerFile, Service: web.ID(), Server: "10.9.9.9_80", Graph: GraphConns, Range: "day"}, ErrNoData, ""},
	}
	for _, tc := range tests {
		_, err := g.Render(tc.req)
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%+v: err %v, want %v %q", tc.req, err, tc.want, tc.msg)
		}
	}
	// A custom range works.
	if _, err := g.Render(Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Start: now.Add(-30 * time.Minute), End: now}); err != nil {
		t.Errorf("custom range: %v", err)
	}
}

func TestLabels(t *testing.T) {
	for id, want := range map[string]string{
		"10.1.1.2_80": "10.1.1.2:80", "2001-db8--1-2_443": "[2001:db8::1:2]:443",
	} {
		if got := labelFromDestID(id); got != want {
			t.Errorf("%s -> %s", id, got)
		}
	}
	for id, want := range map[string]string{
		"tcp_10.0.0.1_80": "TCP 10.0.0.1:80", "udp_2001-db8--1_53": "UDP [2001:db8::1]:53", "fwm_7_inet6": "FWM 7 inet6",
	} {
		if got := labelFromServiceID(id); got != want {
			t.Errorf("%s -> %s", id, got)
		}
	}
}

// cairoRGB renders a hex colour as cairo writes it in SVG: rgb(100%,0%,0%).
func cairoRGB(hex string) string {
	var parts []string
	for i := 0; i < 6; i += 2 {
		v, _ := strconv.ParseUint(hex[i:i+2], 16, 8)
		s := strings.TrimRight(strings.TrimRight(fmt.Sprintf("%f", float64(v)*100/255), "0"), ".")
		parts = append(parts, s+"%")
	}
	return "rgb(" + strings.Join(parts, ",") + ")"
}
