package web

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

const cfgYAML = `director: test-director
ipvs: {backend: fake}
virtual_services:
  - name: web
    address: 198.51.100.10
    port: 80
    scheduler: wrr
    sorry_server: {address: 127.0.0.1}
    real_servers:
      - {address: 10.1.1.2, weight: 3}
      - {address: 10.1.2.2, weight: 2}
      - {address: 10.1.3.2, weight: 1}
  - name: gone
    address: "2001:db8::10"
    port: 443
    real_servers: [{address: "2001:db8::1:2"}]
`

var (
	webKey = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("198.51.100.10"), 80)
	rs1    = lvs.DestKey{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80}
	rs2    = lvs.DestKey{Addr: netip.MustParseAddr("10.1.2.2"), Port: 80}
	sorry  = lvs.DestKey{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}
	extra  = lvs.MarkKey(7, lvs.IPv4)
)

func fixture(t *testing.T) (*Server, *collector.Collector, *lvs.Fake) {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML))
	if err != nil {
		t.Fatal(err)
	}
	f := lvs.NewFake(lvs.Table{Services: []lvs.Service{
		{Key: webKey, Scheduler: "wrr", Dests: []lvs.Dest{
			{Key: rs1, Forward: lvs.DR, Weight: 3, ActiveConns: 5, InactiveConns: 7, Stats: lvs.Stats{Conns: 100, InBytes: 1000}},
			{Key: rs2, Forward: lvs.DR, Weight: 0, ActiveConns: 1, Stats: lvs.Stats{Conns: 50, InBytes: 500}},
			{Key: sorry, Forward: lvs.DR, Weight: 1},
		}, Stats: lvs.Stats{Conns: 150, InBytes: 1500}},
		{Key: extra, Scheduler: "rr"}, // in the kernel, not in the config
	}})
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	c := collector.New(f, time.Second, log)
	s := New(Source{Snapshot: c.Snapshot, Health: c.Health, Config: func() *config.Config { return cfg }, Version: "test"}, log)
	return s, c, f
}

func get(t testing.TB, h http.Handler, method, path string) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
	return rec
}

func TestStatusJoinsKernelAndConfig(t *testing.T) {
	s, c, f := fixture(t)
	c.Sample(t.Context())
	f.Mutate(func(tb *lvs.Table) { tb.Services[0].Dests[0].Stats.Conns += 10; tb.Services[0].Stats.Conns += 10 })
	c.Sample(t.Context())
	rec := get(t, s.Handler(), "GET", "/api/v1/status")
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
		t.Fatalf("status %d %s", rec.Code, rec.Header().Get("Content-Type"))
	}
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if st.Director != "test-director" || st.SampledAt == nil || st.Totals.Conns != 160 || st.Collector.Samples != 2 {
		t.Errorf("head = %+v", st)
	}
	if len(st.Services) != 3 {
		t.Fatalf("services = %d", len(st.Services))
	}
	w := st.Services[0]
	if w.ID != "tcp_198.51.100.10_80" || w.Name != "web" || !w.InKernel || !w.Configured || *w.Port != 80 || w.ActiveConns != 6 || w.InactiveConns != 7 {
		t.Errorf("web = %+v", w)
	}
	if !w.Stats.Rates.Valid || w.Stats.Rates.Conns <= 0 {
		t.Errorf("web rates = %+v", w.Stats.Rates)
	}
	// kernel order (rs1, rs2, sorry), then configured-but-missing rs3
	if len(w.RealServers) != 4 {
		t.Fatalf("web real servers = %+v", w.RealServers)
	}
	r1, r2, so, r3 := w.RealServers[0], w.RealServers[1], w.RealServers[2], w.RealServers[3]
	if r1.ID != "tcp_198.51.100.10_80__10.1.1.2_80" || *r1.Weight != 3 || *r1.ConfiguredWeight != 3 || r1.Stats.Conns != 110 || r1.Forward != "dr" {
		t.Errorf("rs1 = %+v", r1)
	}
	if *r2.Weight != 0 || *r2.ConfiguredWeight != 2 {
		t.Errorf("rs2 = %+v", r2)
	}
	if !so.Sorry || !so.Configured || so.ConfiguredWeight != nil {
		t.Errorf("sorry = %+v", so)
	}
	if r3.InKernel || r3.Weight != nil || *r3.ConfiguredWeight != 1 || r3.Address != "10.1.3.2" {
		t.Errorf("missing rs3 = %+v", r3)
	}
	fw := st.Services[1]
	if fw.ID != "fwm_7_inet" || fw.FWMark != 7 || fw.Port != nil || fw.Configured || !fw.InKernel {
		t.Errorf("unconfigured fwmark = %+v", fw)
	}
	gone := st.Services[2]
	if gone.Name != "gone" || gone.InKernel || gone.Address != "2001:db8::10" || len(gone.RealServers) != 1 || gone.RealServers[0].ID != "tcp_2001-db8--10_443__2001-db8--1-2_443" {
		t.Errorf("configured but absent = %+v", gone)
	}
}

func TestStatusBeforeFirstSample(t *testing.T) {
	s, _, _ := fixture(t)
	rec := get(t, s.Handler(), "GET", "/api/v1/status")
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil || rec.Code != 200 {
		t.Fatalf("%d %v", rec.Code, err)
	}
	if st.SampledAt != nil || len(st.Services) != 2 || st.Services[0].InKernel {
		t.Errorf("status = %+v", st)
	}
	if rec := get(t, s.Handler(), "GET", "/"); rec.Code != 200 || !strings.Contains(rec.Body.String(), "configured but not in the kernel") {
		t.Errorf("page before first sample: %d", rec.Code)
	}
}

func TestPage(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	rec := get(t, s.Handler(), "GET", "/")
	body := rec.Body.String()
	if rec.Code != 200 || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/html") {
		t.Fatalf("status %d", rec.Code)
	}
	for _, want := range []string{"test-director", "web", "TCP 198.51.100.10:80", "10.1.3.2:80 (web)</a>: configured but not in the kernel",
		"FWM 7 inet", "not configured", `http-equiv="refresh" content="1"`, "<title>(4) lvsmon – test-director</title>", "1/3 up"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	svc := get(t, s.Handler(), "GET", "/service/tcp_198.51.100.10_80").Body.String()
	for _, want := range []string{"10.1.1.2:80", "10.1.3.2:80", "not in the kernel", "sorry server", "· unchecked", "○ quiesced", "↪ sorry", "✗ missing"} {
		if !strings.Contains(svc, want) {
			t.Errorf("service page lacks %q", want)
		}
	}
}

func TestErrorsAreJSON(t *testing.T) {
	s, _, _ := fixture(t)
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/api/v1/../../etc/passwd", 404},
		{"POST", "/api/v1/status", 405},
		{"DELETE", "/healthz", 405},
	} {
		rec := get(t, s.Handler(), tc.method, tc.path)
		var body map[string]any
		if rec.Code != tc.code || json.Unmarshal(rec.Body.Bytes(), &body) != nil || body["error"] == "" {
			t.Errorf("%s %s: %d %q", tc.method, tc.path, rec.Code, rec.Body.String())
		}
	}
}

func TestHealthz(t *testing.T) {
	s, c, f := fixture(t)
	c.Sample(t.Context())
	if rec := get(t, s.Handler(), "GET", "/healthz"); rec.Code != 200 {
		t.Fatalf("healthz after a sample: %d", rec.Code)
	}
	// No successful sample for longer than three steps: unhealthy.
	f.FailOn(lvs.OpTable, io.ErrUnexpectedEOF)
	s.start = time.Now().Add(-time.Hour)
	c2 := collector.New(f, time.Second, slog.New(slog.NewTextHandler(io.Discard, nil)))
	c2.Sample(t.Context())
	s.src.Health = c2.Health
	rec := get(t, s.Handler(), "GET", "/healthz")
	if rec.Code != 503 || !strings.Contains(rec.Body.String(), "unexpected EOF") {
		t.Errorf("healthz with failing reads: %d %s", rec.Code, rec.Body.String())
	}
}

var quietLog = slog.New(slog.NewTextHandler(io.Discard, nil))
