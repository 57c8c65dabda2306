package web

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

// fakeGrapher records requests and answers like the graphs package: ids
// it knows draw, others have no data.
type fakeGrapher struct{ got []GraphRequest }

func (f *fakeGrapher) Graph(_ context.Context, r GraphRequest) ([]byte, string, error) {
	f.got = append(f.got, r)
	if r.Graph == "pie" {
		return nil, "", fmt.Errorf("%w: no graph %q", ErrBadGraphRequest, r.Graph)
	}
	if r.Service == "tcp_10.9.9.9_80" {
		return nil, "", ErrNoGraphData
	}
	return []byte("\x89PNG..."), "image/png", nil
}
func (f *fakeGrapher) Names(kind string) []string {
	if kind == "server" {
		return []string{"conns", "weight"}
	}
	return []string{"conns", "rate"}
}
func (f *fakeGrapher) Ranges() []string { return []string{"hour", "day"} }
func (f *fakeGrapher) Cached(r GraphRequest) ([]byte, string, bool) {
	if r.Width == 123 { // stands for an image in the cache
		return []byte("\x89PNG cached"), "image/png", true
	}
	return nil, "", false
}

func TestGraphRoutes(t *testing.T) {
	s, c, _ := fixture(t)
	fg := &fakeGrapher{}
	s.src.Graphs = fg
	c.Sample(t.Context())
	tests := []struct {
		path string
		code int
		want string
	}{
		{"/graphs/director/conns.png", 200, ""},
		{"/graphs/service/tcp_198.51.100.10_80/rate.svg?range=hour&width=400&height=100", 200, ""},
		{"/graphs/server/tcp_198.51.100.10_80__10.1.1.2_80/weight.png?start=1800000000&end=2026-01-01T00:00:00Z", 200, ""},
		{"/graphs/service/tcp_10.9.9.9_80/rate.png", 404, "no graph data"},
		{"/graphs/service/tcp_198.51.100.10_80/pie.png", 400, `no graph "pie"`},
		{"/graphs/service/tcp_198.51.100.10_80/rate", 400, "want <graph>.png"},
		{"/graphs/server/nodoubleunderscore/conns.png", 400, "malformed real server id"},
		{"/graphs/service/x/conns.png?range=day&start=1", 400, "not both"},
		{"/graphs/service/x/conns.png?start=1800000000", 400, "end is missing"},
		{"/graphs/service/x/conns.png?start=yesterday&end=1", 400, "neither unix seconds nor RFC 3339"},
		{"/graphs/service/x/conns.png?width=wide", 400, "not a whole number"},
		{"/graphs/service/x/conns.png?colour=red", 400, `unknown query parameter "colour"`},
		{"/graphs/service/..%2F..%2Fetc/conns.png", 404, ""},
		{"/service/tcp_198.51.100.10_80?range=hour", 200, "/graphs/service/tcp_198.51.100.10_80/rate.png?range=hour"},
		{"/service/tcp_198.51.100.10_80?range=decade", 400, "unknown range"},
		{"/service/tcp_10.9.9.9_80", 404, "no virtual service"},
		{"/server/tcp_198.51.100.10_80__10.1.1.2_80", 200, "/graphs/server/tcp_198.51.100.10_80__10.1.1.2_80/weight.png?range=day"},
		{"/server/tcp_198.51.100.10_80__10.9.9.9_80", 404, "no real server"},
		{"/director?range=hour", 200, "/graphs/director/rate.png?range=hour"},
	}
	for _, tc := range tests {
		rec := get(t, s.Handler(), "GET", tc.path)
		text := rec.Body.String()
		var e struct{ Error string }
		if json.Unmarshal(rec.Body.Bytes(), &e) == nil && e.Error != "" {
			text = e.Error
		}
		if rec.Code != tc.code || !strings.Contains(text, tc.want) {
			t.Errorf("GET %s: %d %.300q, want %d containing %q", tc.path, rec.Code, text, tc.code, tc.want)
		}
	}
	// What reached the grapher is parsed correctly.
	r := fg.got[1]
	if r.Kind != "service" || r.Service != "tcp_198.51.100.10_80" || r.Graph != "rate" || r.Format != "svg" || r.Range != "hour" || r.Width != 400 || r.Height != 100 {
		t.Errorf("request = %+v", r)
	}
	r = fg.got[2]
	if r.Server != "10.1.1.2_80" || r.Start.Unix() != 1800000000 || !r.End.Equal(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)) || r.Range != "" {
		t.Errorf("custom range request = %+v", r)
	}
	if fg.got[0].Range != "day" {
		t.Errorf("default range = %q", fg.got[0].Range)
	}
	// The status gives the graph URLs once, as templates, with the graph
	// names and ranges; no object carries URLs of its own.
	rec := get(t, s.Handler(), "GET", "/api/v1/status")
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.GraphTemplates["director"] != "/graphs/director/{graph}.png?range={range}" ||
		st.GraphTemplates["service"] != "/graphs/service/{id}/{graph}.png?range={range}" ||
		st.GraphTemplates["server"] != "/graphs/server/{id}/{graph}.png?range={range}" ||
		strings.Join(st.GraphNames["server"], ",") != "conns,weight" || strings.Join(st.GraphNames["service"], ",") != "conns,rate" ||
		strings.Join(st.GraphRanges, ",") != "hour,day" {
		t.Errorf("graph templates: %+v %+v %+v", st.GraphTemplates, st.GraphNames, st.GraphRanges)
	}
	if strings.Contains(rec.Body.String(), ".png?range=hour") {
		t.Errorf("the status still lists graph URLs per object")
	}
	// A template filled in as the README says is a working graph URL.
	u := strings.NewReplacer("{id}", st.Services[0].RealServers[0].ID, "{graph}", "weight", "{range}", "hour").Replace(st.GraphTemplates["server"])
	if u != "/graphs/server/tcp_198.51.100.10_80__10.1.1.2_80/weight.png?range=hour" {
		t.Errorf("filled template %s", u)
	}
	if rec := get(t, s.Handler(), "GET", u); rec.Code != 200 {
		t.Errorf("GET %s: %d", u, rec.Code)
	}
	// The status page shows the director's graphs and links every
	// service and real server to its graph page.
	page := get(t, s.Handler(), "GET", "/").Body.String()
	for _, want := range []string{`src="/graphs/director/conns.png?range=hour"`, `href="/service/tcp_198.51.100.10_80"`} {
		if !strings.Contains(page, want) {
			t.Errorf("status page lacks %s", want)
		}
	}
	// The service page lists its real servers, each linked to its page.
	page = get(t, s.Handler(), "GET", "/service/tcp_198.51.100.10_80").Body.String()
	for _, want := range []string{`href="/server/tcp_198.51.100.10_80__10.1.1.2_80"`, `alt="Active connections of service tcp_198.51.100.10_80, last day"`} {
		if !strings.Contains(page, want) {
			t.Errorf("service page lacks %s", want)
		}
	}
}

func TestEventsAPI(t *testing.T) {
	s, _, _ := fixture(t)
	ev, err := events.Open(t.TempDir(), 100, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	s.src.Events = ev
	ev.Append(events.Event{Kind: events.ServerDown, Service: "tcp_198.51.100.10_80", Server: "tcp_198.51.100.10_80__10.1.1.2_80", Message: "http: 503"})
	ev.Append(events.Event{Kind: events.RoleChange, Message: "BACKUP -> MASTER"})
	for _, tc := range []struct {
		q    string
		code int
		n    int
	}{
		{"", 200, 2}, {"?service=tcp_198.51.100.10_80&director=false", 200, 1}, {"?limit=1", 200, 1},
		{"?limit=0", 400, 0}, {"?since=soon", 400, 0}, {"?kind=x", 400, 0},
	} {
		rec := get(t, s.Handler(), "GET", "/api/v1/events"+tc.q)
		var body struct{ Events []events.Event }
		json.Unmarshal(rec.Body.Bytes(), &body)
		if rec.Code != tc.code || len(body.Events) != tc.n {
			t.Errorf("events%s: %d, %d events: %s", tc.q, rec.Code, len(body.Events), rec.Body.String())
		}
	}
}

// TestGraphTimeValidation: start and end that librrd would misread (small
// or negative unix seconds) or that lie outside any data are refused with
// a 400 naming the parameter, before the grapher is asked, and no bad
// request leaves an ERROR line in the log.
func TestGraphTimeValidation(t *testing.T) {
	s, c, _ := fixture(t)
	var logBuf testutil.SyncBuffer
	s.log = slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	fg := &fakeGrapher{}
	s.src.Graphs = fg
	c.Sample(t.Context())
	const base = "/graphs/service/tcp_198.51.100.10_80/conns.png?"
	for _, tc := range []struct {
		query string
		code  int
		want  string
	}{
		{"start=1&end=61", 400, `start "1" is out of range`},
		{"start=0&end=86400", 400, `start "0" is out of range`},
		{"start=-100&end=100", 400, `start "-100" is out of range`},
		{"start=1800000000&end=61", 400, `end "61" is out of range`},
		{"start=1800000000&end=99999999999", 400, `end "99999999999" is out of range`},
		{"start=1969-12-31T23:00:00Z&end=1800000000", 400, `start "1969-12-31T23:00:00Z" is out of range`},
		{"start=2026-01-01T00:00:00Z&end=2200-01-01T00:00:00Z", 400, `end "2200-01-01T00:00:00Z" is out of range`},
		{"start=1e9&end=2e9", 400, `start "1e9" is neither unix seconds nor RFC 3339`},
		{"start=1800000000&end=1800003600", 200, ""},
		{"start=2000-01-01T00:00:00Z&end=2100-01-01T00:00:00Z", 200, ""},
	} {
		rec := get(t, s.Handler(), "GET", base+tc.query)
		var e struct{ Error string }
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %q, want %d with %q", tc.query, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
	if len(fg.got) != 2 {
		t.Errorf("the grapher was asked %d times, want 2 (the valid requests only): %+v", len(fg.got), fg.got)
	}
	if strings.Contains(logBuf.String(), "level=ERROR") {
		t.Errorf("a bad request logged an ERROR:\n%s", logBuf.String())
	}
}

// A page over a time range of the operator's: the form's local times,
// the graphs asked for that span; a reversed or malformed span is a 400.
func TestPageCustomSpan(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	s.src.Graphs = &fakeGrapher{}
	s = New(s.src, s.log)
	start := time.Date(2026, 11, 30, 8, 0, 0, 0, time.Local)
	end := start.Add(3 * time.Hour)
	page := get(t, s.Handler(), "GET", "/service/tcp_198.51.100.10_80?start=2026-11-30T08:00&end=2026-11-30T11:00").Body.String()
	want := fmt.Sprintf(`src="/graphs/service/tcp_198.51.100.10_80/conns.png?start=%d&amp;end=%d"`, start.Unix(), end.Unix())
	if !strings.Contains(page, want) || !strings.Contains(page, `value="2026-11-30T08:00"`) || !strings.Contains(page, "2026-11-30 08:00 to 2026-11-30 11:00") {
		t.Errorf("custom span page lacks %s, the form's values or the alt text", want)
	}
	for _, q := range []string{"start=2026-11-30T11:00&end=2026-11-30T08:00", "start=2026-11-30T08:00", "start=yesterday&end=today", "start=1&end=2"} {
		if rec := get(t, s.Handler(), "GET", "/service/tcp_198.51.100.10_80?"+q); rec.Code != 400 {
			t.Errorf("%s: %d, want 400", q, rec.Code)
		}
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
