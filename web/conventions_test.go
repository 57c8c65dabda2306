package web

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

// byControl records who set each override.
type byControl struct {
	mu sync.Mutex
	by []string
}

func (b *byControl) SetOverride(id, mode, by, comment string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.by = append(b.by, by)
	return nil
}
func (b *byControl) Reload() error              { return nil }
func (b *byControl) ReleaseHolds(by string) int { return 0 }
func (b *byControl) TestAlert(context.Context, string) ([]string, error) {
	return nil, ErrNoMail
}

// proxyFixture is a server whose config has extra web keys, with its
// debug log (the access log) captured.
func proxyFixture(t *testing.T, web string) (*Server, *byControl, *testutil.SyncBuffer) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {api_token: \"0123456789abcdef-token\""+web+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	var logBuf testutil.SyncBuffer
	log := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	c := collector.New(lvs.NewFake(lvs.Table{}), time.Second, log)
	bc := &byControl{}
	s := New(Source{Snapshot: c.Snapshot, Health: c.Health, Config: func() *config.Config { return cfg }, Version: "test", Control: bc}, log)
	return s, bc, &logBuf
}

// A forged X-Forwarded-For is believed only from a configured proxy: by
// default neither the override's "by" nor the access log takes it.
func TestTrustedProxies(t *testing.T) {
	const forged = "203.0.113.66"
	tests := []struct {
		name   string
		web    string
		remote string
		want   string
	}{
		{"no proxy trusted: the connection's address", "", "192.0.2.7:40000", "192.0.2.7"},
		{"another proxy trusted: still the connection's", ", trusted_proxies: ['198.51.100.0/24']", "192.0.2.7:40000", "192.0.2.7"},
		{"the proxy trusted: the forwarded client", ", trusted_proxies: ['192.0.2.7']", "192.0.2.7:40000", forged},
		{"the proxy's network trusted", ", trusted_proxies: ['192.0.2.0/24', '::1']", "192.0.2.7:40000", forged},
		{"IPv6 proxy trusted", ", trusted_proxies: ['2001:db8::/32']", "[2001:db8::5]:40000", forged},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, bc, logBuf := proxyFixture(t, tc.web)
			req := httptest.NewRequest("POST", "/api/v1/servers/tcp_198.51.100.10_80__10.1.1.2_80/drain", nil)
			req.RemoteAddr = tc.remote
			req.Host = "127.0.0.1:9160"
			req.Header.Set("Authorization", "Bearer 0123456789abcdef-token")
			req.Header.Set("X-Forwarded-For", forged)
			req.Header.Set("X-Real-IP", forged)
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != 200 {
				t.Fatalf("drain: %d %s", rec.Code, rec.Body.String())
			}
			if len(bc.by) != 1 || bc.by[0] != tc.want {
				t.Errorf("override set by %q, want %q", bc.by, tc.want)
			}
			log := logBuf.String()
			if !strings.Contains(log, "msg=\"http request\"") || !strings.Contains(log, "remote="+tc.want+"\n") {
				t.Errorf("access log does not say remote=%s:\n%s", tc.want, log)
			}
			if tc.want != forged && strings.Contains(log, forged) {
				t.Errorf("the forged address reached the log:\n%s", log)
			}
		})
	}
}

// /-/healthy answers while the process serves; /-/ready only once the
// collector has a sample and Serve runs, with the reason before.
func TestHealthyAndReady(t *testing.T) {
	s, c, f := fixture(t)
	for _, m := range []string{"GET", "HEAD"} {
		if rec := get(t, s.Handler(), m, "/-/healthy"); rec.Code != 200 {
			t.Errorf("%s /-/healthy: %d", m, rec.Code)
		}
	}
	ready := func() (int, string) {
		rec := get(t, s.Handler(), "GET", "/-/ready")
		return rec.Code, rec.Body.String()
	}
	if code, body := ready(); code != 503 || !strings.Contains(body, "not serving") {
		t.Errorf("ready before Serve: %d %s", code, body)
	}
	s.serving.Store(true)
	f.FailOn(lvs.OpTable, io.ErrUnexpectedEOF)
	c.Sample(t.Context())
	if code, body := ready(); code != 503 || !strings.Contains(body, "no successful IPVS sample yet") || !strings.Contains(body, "unexpected EOF") {
		t.Errorf("ready before a sample: %d %s", code, body)
	}
	f.FailOn(lvs.OpTable, nil)
	c.Sample(t.Context())
	if code, body := ready(); code != 200 || body != "lvsmon is Ready.\n" {
		t.Errorf("ready after a sample: %d %s", code, body)
	}
	if rec := get(t, s.Handler(), "HEAD", "/-/ready"); rec.Code != 200 {
		t.Errorf("HEAD /-/ready: %d", rec.Code)
	}
	if rec := get(t, s.Handler(), "GET", "/healthz"); rec.Code != 200 {
		t.Errorf("/healthz: %d", rec.Code)
	}
}

func TestCheckTelemetryPath(t *testing.T) {
	for _, tc := range []struct {
		path string
		ok   bool
	}{
		{"/metrics", true},
		{"/lvsmon/metrics", true},
		{"/prometheus", true},
		{"", false},
		{"metrics", false},
		{"/", false},
		{"/metrics/", false},
		{"/a/../metrics", false},
		{"/metrics?x=1", false},
		{"/:name", false},
		{"/m/*all", false},
		{"/healthz", false},
		{"/director", false},
		{"/api/v1/metrics", false},
		{"/api", false},
		{"/-/metrics", false},
		{"/graphs/metrics", false},
		{"/service/metrics", false},
		{"/server", false},
	} {
		if err := CheckTelemetryPath(tc.path); (err == nil) != tc.ok {
			t.Errorf("CheckTelemetryPath(%q) = %v, want ok %v", tc.path, err, tc.ok)
		}
	}
}

// Metrics answer at the configured path only, as node_exporter's do.
func TestTelemetryPath(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "up 1\n") })
	for _, tc := range []struct {
		path      string
		at, notAt string
	}{
		{"", "/metrics", "/lvsmon/metrics"},
		{"/lvsmon/metrics", "/lvsmon/metrics", "/metrics"},
	} {
		s, c, _ := fixture(t)
		s = New(Source{Snapshot: c.Snapshot, Health: c.Health, Config: s.src.Config, Metrics: metrics, MetricsPath: tc.path}, quietLog)
		if rec := get(t, s.Handler(), "GET", tc.at); rec.Code != 200 || rec.Body.String() != "up 1\n" {
			t.Errorf("path %q: GET %s: %d %s", tc.path, tc.at, rec.Code, rec.Body.String())
		}
		if rec := get(t, s.Handler(), "GET", tc.notAt); rec.Code != 404 {
			t.Errorf("path %q: GET %s: %d, want 404", tc.path, tc.notAt, rec.Code)
		}
	}
}

// Serve answers on every listener and stops them all with its context.
func TestServeSeveralListeners(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	var lns []net.Listener
	for range 2 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, lns...) }()
	for _, ln := range lns {
		testutil.WaitFor(t, "ready on "+ln.Addr().String(), func() bool {
			resp, err := http.Get("http://" + ln.Addr().String() + "/-/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Serve: %v", err)
	}
	for _, ln := range lns {
		if _, err := http.Get("http://" + ln.Addr().String() + "/-/healthy"); err == nil {
			t.Errorf("%s still answers after Serve returned", ln.Addr())
		}
	}
	if s.serving.Load() {
		t.Error("still serving after Serve returned")
	}
}
