package web

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

func TestEventsPage(t *testing.T) {
	s, _, _ := fixture(t)
	ev, err := events.Open(t.TempDir(), 1000, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	s.src.Events = ev
	s = New(s.src, s.log) // the page's route needs the log at New
	for i := range 150 {
		ev.Append(events.Event{Kind: events.ServerDown, Service: "tcp_198.51.100.10_80", Server: "tcp_198.51.100.10_80__10.1.1.2_80", Message: fmt.Sprintf("down #%d", i), Reason: "http: 503"})
	}
	ev.Append(events.Event{Kind: events.Override, Service: "tcp_198.51.100.10_80", Server: "tcp_198.51.100.10_80__10.1.2.2_80", Message: "drained", Actor: "alice (web, 10.0.0.5)"})
	ev.Append(events.Event{Kind: events.RoleChange, Message: "BACKUP -> MASTER", Time: time.Now().Add(-48 * time.Hour)})

	page := get(t, s.Handler(), "GET", "/events").Body.String()
	for _, want := range []string{"151 events", "page 1 of 2, newest first", "alice (web, 10.0.0.5)", "down #149", `href="/server/tcp_198.51.100.10_80__10.1.2.2_80"`} {
		if !strings.Contains(page, want) {
			t.Errorf("events page lacks %q", want)
		}
	}
	if strings.Index(page, "drained") > strings.Index(page, "down #149") {
		t.Error("not newest first")
	}
	if strings.Contains(page, ">down #50 ") || strings.Contains(page, "BACKUP -&gt; MASTER") {
		t.Error("page 1 shows an event of page 2, or one older than a day")
	}
	for _, tc := range []struct {
		q, want, not string
		code         int
	}{
		{"?page=2", ">down #0 ", ">down #51 ", 200},
		{"?range=all&kind=role_change", "BACKUP -&gt; MASTER", "down #", 200},
		{"?server=tcp_198.51.100.10_80__10.1.2.2_80", "1 event<", "down #", 200},
		{"?kind=override", "drained", "down #", 200},
		{"?kind=nonsense", "unknown event kind", "", 400},
		{"?range=fortnight", "unknown range", "", 400},
	} {
		rec := get(t, s.Handler(), "GET", "/events"+tc.q)
		body := rec.Body.String()
		if rec.Code != tc.code || !strings.Contains(body, tc.want) || (tc.not != "" && strings.Contains(body, tc.not)) {
			t.Errorf("/events%s: %d; want %d with %q and without %q", tc.q, rec.Code, tc.code, tc.want, tc.not)
		}
	}
}

// The pages update themselves with their own script, which CSP allows,
// and refresh without it.
func TestLiveUpdateAssets(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	rec := get(t, s.Handler(), "GET", "/static/live.js")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/javascript") || !strings.Contains(rec.Body.String(), "data-live") {
		t.Fatalf("live.js: %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	if rec := get(t, s.Handler(), "GET", "/static/nothing.js"); rec.Code != 404 {
		t.Errorf("an unknown static file: %d", rec.Code)
	}
	page := get(t, s.Handler(), "GET", "/")
	body := page.Body.String()
	for _, want := range []string{`<script src="/static/live.js" defer></script>`, `<noscript><meta http-equiv="refresh"`, `data-live`, `id="live-status"`} {
		if !strings.Contains(body, want) {
			t.Errorf("status page lacks %s", want)
		}
	}
	if strings.Contains(body, "<script>") || strings.Contains(body, " onclick=") {
		t.Error("inline script in the page: CSP forbids it")
	}
	if csp := page.Header().Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "blob:") {
		t.Errorf("CSP %q", csp)
	}
}

// Pages and JSON are gzipped for clients that take it; small answers
// and clients that do not are answered plain.
func TestGzip(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	ev, err := events.Open(t.TempDir(), 100, quietLog)
	if err != nil {
		t.Fatal(err)
	}
	s.src.Events = ev
	s = New(s.src, s.log)
	plain := map[string]string{}
	for _, p := range []string{"/", "/api/v1/status", "/events"} {
		plain[p] = get(t, s.Handler(), "GET", p).Body.String()
	}
	for _, tc := range []struct {
		path, accept string
		gzipped      bool
	}{
		{"/", "gzip, deflate, br", true},
		{"/api/v1/status", "gzip", true},
		{"/", "", false},
		{"/events", "gzip", true},
	} {
		req := httptest.NewRequest("GET", tc.path, nil)
		if tc.accept != "" {
			req.Header.Set("Accept-Encoding", tc.accept)
		}
		rec := httptest.NewRecorder()
		s.Handler().ServeHTTP(rec, req)
		got := rec.Header().Get("Content-Encoding") == "gzip"
		if rec.Code != 200 || got != tc.gzipped {
			t.Errorf("%s (Accept-Encoding %q): %d, gzipped %v", tc.path, tc.accept, rec.Code, got)
			continue
		}
		if got {
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			b, err := io.ReadAll(zr)
			if err != nil || !sameButTimes(string(b), plain[tc.path]) {
				t.Errorf("%s: the gzipped body is not the page (%v):\n%.300s", tc.path, err, b)
			}
		}
	}
}

// sameButTimes compares two answers of the same page taken a moment
// apart: same length give or take a few bytes, same start and end.
func sameButTimes(a, b string) bool {
	n := min(len(a), len(b), 200)
	return n > 0 && a[:n] == b[:n] && a[len(a)-n/2:] == b[len(b)-n/2:] && max(len(a), len(b))-min(len(a), len(b)) < 64
}
