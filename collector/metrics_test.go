package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os/exec"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func ap(s string) netip.Addr { return netip.MustParseAddr(s) }

// metricsTable has what the exporter must get right: IPv4 and IPv6
// services, fwmark services of both families sharing a mark and a
// tunnelled real server (node_exporter's labels coincide there), a
// quiesced real server, a server only the kernel has, counters beyond
// 2^53. The fake sums the director's totals from the services.
func metricsTable() lvs.Table {
	web := lvs.AddrKey(lvs.TCP, ap("198.51.100.10"), 80)
	dns6 := lvs.AddrKey(lvs.UDP, ap("2001:db8::53"), 53)
	return lvs.Table{
		Services: []lvs.Service{
			{Key: web, Scheduler: "wrr", Stats: lvs.Stats{Conns: 1000, InPkts: 5000, OutPkts: 4000, InBytes: 1 << 60, OutBytes: 9000000},
				Dests: []lvs.Dest{
					{Key: lvs.DestKey{Addr: ap("10.0.1.1"), Port: 80}, Weight: 3, ActiveConns: 7, InactiveConns: 30, Stats: lvs.Stats{Conns: 600, InPkts: 3000, OutPkts: 2400, InBytes: 420000, OutBytes: 5400000}},
					{Key: lvs.DestKey{Addr: ap("10.0.1.2"), Port: 80}, Weight: 0, ActiveConns: 1, InactiveConns: 2, Stats: lvs.Stats{Conns: 400, InPkts: 2000, OutPkts: 1600, InBytes: 280000, OutBytes: 3600000}},
					{Key: lvs.DestKey{Addr: ap("10.0.9.9"), Port: 80}, Weight: 1},
				}},
			{Key: dns6, Scheduler: "rr", Persistence: 300 * time.Second, Stats: lvs.Stats{Conns: 200, InPkts: 200, OutPkts: 200, InBytes: 14000, OutBytes: 36000},
				Dests: []lvs.Dest{
					{Key: lvs.DestKey{Addr: ap("2001:db8::1:1"), Port: 53}, Weight: 1, InactiveConns: 4, PersistentConns: 2, Stats: lvs.Stats{Conns: 200, InPkts: 200, OutPkts: 200, InBytes: 14000, OutBytes: 36000}},
				}},
			{Key: lvs.MarkKey(10, lvs.IPv4), Scheduler: "wlc", Dests: []lvs.Dest{
				{Key: lvs.DestKey{Addr: ap("10.0.2.1"), Port: 0}, Forward: lvs.Tunnel, Weight: 2, ActiveConns: 3},
			}},
			{Key: lvs.MarkKey(10, lvs.IPv6), Scheduler: "wlc", Dests: []lvs.Dest{
				{Key: lvs.DestKey{Addr: ap("10.0.2.1"), Port: 0}, Forward: lvs.Tunnel, Weight: 5, ActiveConns: 4},
			}},
		},
	}
}

// metricsConfig names the web service (with a quote, to see escaping),
// configures a real server the kernel lacks and a service the kernel
// lacks.
const metricsConfig = `director: lvs-test
ipvs: {backend: fake}
virtual_services:
  - name: 'web "main"'
    address: 198.51.100.10
    port: 80
    real_servers:
      - {address: 10.0.1.1, weight: 3}
      - {address: 10.0.1.2, weight: 2}
      - {address: 10.0.1.3, weight: 1}
  - name: dns6
    protocol: udp
    address: "2001:db8::53"
    port: 53
    real_servers:
      - {address: "2001:db8::1:1"}
  - name: mail
    address: 198.51.100.25
    port: 25
    real_servers:
      - {address: 10.0.3.1, weight: 4}
`

func parseConfig(t testing.TB, text string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// exporter samples tab once through a fake and returns the exporter.
func exporter(t testing.TB, tab lvs.Table, cfg *config.Config) (*Metrics, *Collector) {
	t.Helper()
	c := New(lvs.NewFake(tab), 10*time.Second, quiet)
	if c.Sample(context.Background()) == nil {
		t.Fatal("sample failed")
	}
	return NewMetrics(c, func() *config.Config { return cfg }, MetricsOptions{Build: BuildInfo{Version: "test"}}), c
}

func scrape(t testing.TB, h http.Handler, gz bool) ([]byte, http.Header) {
	t.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	return rec.Body.Bytes(), rec.Header()
}

// normalized renders families as text with the series of each family
// sorted, so two gathers that differ only in order compare equal.
func normalized(t testing.TB, mfs []*dto.MetricFamily) string {
	t.Helper()
	var b strings.Builder
	slices.SortFunc(mfs, func(a, b *dto.MetricFamily) int { return strings.Compare(a.GetName(), b.GetName()) })
	for _, mf := range mfs {
		var one bytes.Buffer
		if _, err := expfmt.MetricFamilyToText(&one, mf); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(one.String(), "\n"), "\n")
		head, series := lines[:2], lines[2:]
		slices.Sort(series)
		b.WriteString(strings.Join(append(head, series...), "\n") + "\n")
	}
	return b.String()
}

func parseText(t testing.TB, body []byte) []*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.LegacyValidation)
	byName, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		t.Fatalf("the handler's output does not parse: %v", err)
	}
	var out []*dto.MetricFamily
	for _, mf := range byName {
		out = append(out, mf)
	}
	return out
}

// TestHandlerMatchesClientGolang is the contract of the fast path: the
// handler's text, plain or gzipped, holds exactly the families and series
// client_golang gathers from the same Metrics as a Collector.
func TestHandlerMatchesClientGolang(t *testing.T) {
	tests := []struct {
		name  string
		cfg   string
		empty bool
	}{
		{"configured", metricsConfig, false},
		{"no config", "ipvs: {backend: fake}\n", false},
		{"procfs backend", strings.Replace(metricsConfig, "backend: fake", "backend: procfs", 1), false},
		{"node_exporter compatible", metricsConfig + "metrics: {node_exporter_compatible: true}\n", false},
		{"before the first sample", metricsConfig, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := parseConfig(t, tc.cfg)
			var m *Metrics
			if tc.empty {
				c := New(lvs.NewFake(metricsTable()), 10*time.Second, quiet)
				m = NewMetrics(c, func() *config.Config { return cfg }, MetricsOptions{Build: BuildInfo{Version: "test"}})
			} else {
				m, _ = exporter(t, metricsTable(), cfg)
			}
			reg := prometheus.NewPedanticRegistry()
			reg.MustRegister(m)
			want, err := reg.Gather()
			if err != nil {
				t.Fatalf("client_golang refuses the collector: %v", err)
			}
			h := m.Handler(nil, quiet)
			plain, hdr := scrape(t, h, false)
			if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
				t.Errorf("Content-Type %q", ct)
			}
			if got, w := normalized(t, parseText(t, plain)), normalized(t, want); got != w {
				t.Errorf("handler output differs from client_golang's gather:\n--- handler\n%s\n--- client_golang\n%s", got, w)
			}
			zipped, hdr := scrape(t, h, true)
			if hdr.Get("Content-Encoding") != "gzip" {
				t.Fatalf("not gzipped: %v", hdr)
			}
			zr, err := gzip.NewReader(bytes.NewReader(zipped))
			if err != nil {
				t.Fatal(err)
			}
			zr.Multistream(false) // one member, as every HTTP client expects
			unzipped, err := io.ReadAll(zr)
			if err != nil {
				t.Fatalf("gunzip: %v", err)
			}
			if rest, _ := io.ReadAll(zr); len(rest) != 0 {
				t.Errorf("%d bytes after the gzip member", len(rest))
			}
			if !bytes.Equal(unzipped, plain) {
				t.Errorf("gzipped body differs from the plain one:\n%s\n---\n%s", unzipped, plain)
			}
		})
	}
}

// TestGzipWithGzipTool checks the spliced gzip stream with an independent
// implementation: gzip(1) verifies the CRC and length in the trailer.
func TestGzipWithGzipTool(t *testing.T) {
	m, _ := exporter(t, metricsTable(), parseConfig(t, metricsConfig))
	h := m.Handler(nil, quiet)
	plain, _ := scrape(t, h, false)
	zipped, _ := scrape(t, h, true)
	cmd := exec.Command("gzip", "-dc")
	cmd.Stdin = bytes.NewReader(zipped)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("gzip -dc: %v", err)
	}
	if !bytes.Equal(out, plain) {
		t.Error("gzip(1) decodes something else than the plain body")
	}
}

func TestMetricsLint(t *testing.T) {
	for _, compat := range []string{"", "metrics: {node_exporter_compatible: true}\n"} {
		m, _ := exporter(t, metricsTable(), parseConfig(t, metricsConfig+compat))
		reg := prometheus.NewPedanticRegistry()
		reg.MustRegister(m)
		problems, err := testutil.GatherAndLint(reg)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range problems {
			t.Errorf("lint: %s: %s", p.Metric, p.Text)
		}
	}
}

// series returns the handler's series as "name{labels}" -> value.
func series(t testing.TB, m *Metrics) map[string]float64 {
	t.Helper()
	body, _ := scrape(t, m.Handler(nil, quiet), false)
	out := map[string]float64{}
	for _, mf := range parseText(t, body) {
		for _, mm := range mf.Metric {
			var ls []string
			for _, l := range mm.Label {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			v := mm.GetGauge().GetValue() + mm.GetCounter().GetValue()
			out[mf.GetName()+"{"+strings.Join(ls, ",")+"}"] = v
		}
	}
	return out
}

func TestMetricsSeries(t *testing.T) {
	const (
		webSvc  = `address=198.51.100.10,fwmark=,name=web "main",port=80,protocol=tcp`
		webID   = `service=tcp_198.51.100.10_80`
		dnsSvc  = `address=2001:db8::53,fwmark=,name=dns6,port=53,protocol=udp`
		dnsID   = `service=udp_2001-db8--53_53`
		mailSvc = `address=198.51.100.25,fwmark=,name=mail,port=25,protocol=tcp`
		mailID  = `service=tcp_198.51.100.25_25`
		fwm4    = `address=,fwmark=10,name=,port=,protocol=`
	)
	real := func(svc, addr, port, id string) string {
		return svc + ",real_address=" + addr + ",real_port=" + port + "," + id
	}
	type want struct {
		series string
		value  float64 // -1: must be absent
	}
	tests := []struct {
		name string
		cfg  string
		want []want
	}{
		{"configured real servers", metricsConfig, []want{
			{"lvsmon_real_server_weight{" + real(webSvc, "10.0.1.1", "80", webID) + "}", 3},
			{"lvsmon_real_server_configured_weight{" + real(webSvc, "10.0.1.1", "80", webID) + "}", 3},
			{"lvsmon_real_server_connections_total{" + real(webSvc, "10.0.1.1", "80", webID) + "}", 600},
			{"lvsmon_real_server_out_bytes_total{" + real(webSvc, "10.0.1.2", "80", webID) + "}", 3600000},
		}},
		{"quiesced: weight 0 next to its configured weight", metricsConfig, []want{
			{"lvsmon_real_server_weight{" + real(webSvc, "10.0.1.2", "80", webID) + "}", 0},
			{"lvsmon_real_server_configured_weight{" + real(webSvc, "10.0.1.2", "80", webID) + "}", 2},
		}},
		{"configured, not in the kernel: no weight, no counters", metricsConfig, []want{
			{"lvsmon_real_server_configured_weight{" + real(webSvc, "10.0.1.3", "80", webID) + "}", 1},
			{"lvsmon_real_server_weight{" + real(webSvc, "10.0.1.3", "80", webID) + "}", -1},
			{"lvsmon_real_server_connections_total{" + real(webSvc, "10.0.1.3", "80", webID) + "}", -1},
		}},
		{"in the kernel, not configured: no configured weight", metricsConfig, []want{
			{"lvsmon_real_server_weight{" + real(webSvc, "10.0.9.9", "80", webID) + "}", 1},
			{"lvsmon_real_server_configured_weight{" + real(webSvc, "10.0.9.9", "80", webID) + "}", -1},
		}},
		{"service sums", metricsConfig, []want{
			{"lvsmon_virtual_service_weight{" + webSvc + "," + webID + "}", 4},
			{"lvsmon_virtual_service_configured_weight{" + webSvc + "," + webID + "}", 6},
			{"lvsmon_virtual_service_active_connections{" + webSvc + "," + webID + "}", 8},
			{"lvsmon_virtual_service_inactive_connections{" + webSvc + "," + webID + "}", 32},
			{"lvsmon_virtual_service_connections_total{" + webSvc + "," + webID + "}", 1000},
		}},
		{"IPv6 labels unbracketed", metricsConfig, []want{
			{"lvsmon_real_server_persistent_connections{" + real(dnsSvc, "2001:db8::1:1", "53", dnsID) + "}", 2},
			{"lvsmon_virtual_service_persistent_connections{" + dnsSvc + "," + dnsID + "}", 2},
		}},
		{"configured service the kernel lacks", metricsConfig, []want{
			{"lvsmon_virtual_service_configured_weight{" + mailSvc + "," + mailID + "}", 4},
			{"lvsmon_real_server_configured_weight{" + real(mailSvc, "10.0.3.1", "25", mailID) + "}", 4},
			{"lvsmon_virtual_service_weight{" + mailSvc + "," + mailID + "}", -1},
		}},
		{"fwmark services: one per family", metricsConfig, []want{
			{"lvsmon_real_server_weight{" + real(fwm4, "10.0.2.1", "0", "service=fwm_10_inet") + "}", 2},
			{"lvsmon_real_server_weight{" + real(fwm4, "10.0.2.1", "0", "service=fwm_10_inet6") + "}", 5},
		}},
		{"director totals beyond 2^53", metricsConfig, []want{
			{"lvsmon_director_in_bytes_total{}", float64(uint64(1<<60) + 14000)},
			{"lvsmon_virtual_service_in_bytes_total{" + webSvc + "," + webID + "}", 1 << 60},
			{"lvsmon_director_connections_total{}", 1200},
			{"lvsmon_director_info{backend=fake,director=lvs-test}", 1},
			{"lvsmon_build_info{branch=unknown,builddate=unknown,goarch=" + runtime.GOARCH + ",goos=" + runtime.GOOS + ",goversion=" + runtime.Version() +
				",revision=unknown,tags=,version=test}", 1},
			{"lvsmon_collector_samples_total{}", 1},
			{"lvsmon_collector_step_seconds{}", 10},
		}},
		{"procfs has no per-object counters: left out, not zero", strings.Replace(metricsConfig, "backend: fake", "backend: procfs", 1), []want{
			{"lvsmon_real_server_connections_total{" + real(webSvc, "10.0.1.1", "80", webID) + "}", -1},
			{"lvsmon_virtual_service_connections_total{" + webSvc + "," + webID + "}", -1},
			{"lvsmon_real_server_persistent_connections{" + real(dnsSvc, "2001:db8::1:1", "53", dnsID) + "}", -1},
			{"lvsmon_real_server_active_connections{" + real(webSvc, "10.0.1.1", "80", webID) + "}", 7},
			{"lvsmon_director_connections_total{}", 1200},
		}},
		{"node_exporter names off by default", metricsConfig, []want{
			{"node_ipvs_connections_total{}", -1},
		}},
		{"node_exporter names and labels", metricsConfig + "metrics: {node_exporter_compatible: true}\n", []want{
			{"node_ipvs_connections_total{}", 1200},
			{"node_ipvs_incoming_bytes_total{}", float64(uint64(1<<60) + 14000)},
			{"node_ipvs_backend_weight{local_address=198.51.100.10,local_mark=,local_port=80,proto=TCP,remote_address=10.0.1.1,remote_port=80}", 3},
			{"node_ipvs_backend_connections_active{local_address=2001:db8::53,local_mark=,local_port=53,proto=UDP,remote_address=2001:db8::1:1,remote_port=53}", 0},
			{"node_ipvs_backend_connections_inactive{local_address=2001:db8::53,local_mark=,local_port=53,proto=UDP,remote_address=2001:db8::1:1,remote_port=53}", 4},
			// node_exporter sums rows whose labels coincide: FWM 10 of
			// both families with the same tunnelled server.
			{"node_ipvs_backend_weight{local_address=,local_mark=0000000A,local_port=0,proto=FWM,remote_address=10.0.2.1,remote_port=0}", 7},
			{"node_ipvs_backend_connections_active{local_address=,local_mark=0000000A,local_port=0,proto=FWM,remote_address=10.0.2.1,remote_port=0}", 7},
			// A configured server the kernel lacks is no backend.
			{"node_ipvs_backend_weight{local_address=198.51.100.10,local_mark=,local_port=80,proto=TCP,remote_address=10.0.1.3,remote_port=80}", -1},
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, _ := exporter(t, metricsTable(), parseConfig(t, tc.cfg))
			got := series(t, m)
			for _, w := range tc.want {
				v, ok := got[w.series]
				switch {
				case w.value == -1 && ok:
					t.Errorf("%s = %v, want it absent", w.series, v)
				case w.value != -1 && !ok:
					t.Errorf("%s missing; have:\n%s", w.series, strings.Join(keys(got), "\n"))
				case w.value != -1 && v != w.value:
					t.Errorf("%s = %v, want %v", w.series, v, w.value)
				}
			}
		})
	}
}

func keys(m map[string]float64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// TestViewCache: scrapes of one snapshot under one config share a view;
// a new snapshot or a reloaded config makes a new one.
func TestViewCache(t *testing.T) {
	cfgA := parseConfig(t, metricsConfig)
	var mu sync.Mutex
	cur := cfgA
	c := New(lvs.NewFake(metricsTable()), 10*time.Second, quiet)
	c.Sample(context.Background())
	m := NewMetrics(c, func() *config.Config { mu.Lock(); defer mu.Unlock(); return cur }, MetricsOptions{})
	h := m.Handler(nil, quiet)
	steps := []struct {
		name  string
		do    func()
		gz    bool
		views int
	}{
		{"first scrape builds", func() {}, false, 1},
		{"second scrape reuses", func() {}, true, 1},
		{"gzip scrape reuses", func() {}, true, 1},
		{"new snapshot rebuilds", func() { c.Sample(context.Background()) }, false, 2},
		{"reload rebuilds", func() { mu.Lock(); cur = parseConfig(t, metricsConfig); mu.Unlock() }, true, 3},
		{"and then reuses", func() {}, false, 3},
	}
	for _, s := range steps {
		s.do()
		scrape(t, h, s.gz)
		m.mu.Lock()
		n := m.builds
		m.mu.Unlock()
		if n != s.views {
			t.Errorf("%s: %d views built, want %d", s.name, n, s.views)
		}
	}
}

// TestConcurrentScrapes runs scrapes, samples and reloads at once, for
// the race detector.
func TestConcurrentScrapes(t *testing.T) {
	f := lvs.NewFake(metricsTable())
	c := New(f, 10*time.Second, quiet)
	c.Sample(context.Background())
	var mu sync.Mutex
	cur := parseConfig(t, metricsConfig)
	m := NewMetrics(c, func() *config.Config { mu.Lock(); defer mu.Unlock(); return cur }, MetricsOptions{})
	h := m.Handler(prometheus.NewRegistry(), quiet)
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			for range 20 {
				scrape(t, h, i%2 == 0)
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			f.Mutate(func(t *lvs.Table) { t.Services[0].Dests[0].Stats.Conns++ })
			c.Sample(context.Background())
		}
	})
	wg.Go(func() {
		for range 5 {
			next := parseConfig(t, metricsConfig)
			mu.Lock()
			cur = next
			mu.Unlock()
		}
	})
	wg.Wait()
}

func TestAcceptsGzip(t *testing.T) {
	tests := []struct {
		header string
		want   bool
	}{
		{"", false},
		{"gzip", true},
		{"identity", false},
		{"gzip, deflate, br", true},
		{"br;q=1.0, gzip;q=0.8, *;q=0.1", true},
		{"gzip;q=0", false},
		{"gzip; q=0.000", false},
		{"GZIP;Q=0.5", true},
		{"*", true},
		{"deflate, x-gzip", true},
	}
	for _, tc := range tests {
		if got := acceptsGzip(tc.header); got != tc.want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestAppendValueMatchesExpfmt(t *testing.T) {
	for _, v := range []float64{0, 1, -1, 2, 999999, 1e6, 1234567, 1 << 53, 1 << 60, 0.25, 1e-7, 3.5e22} {
		mf := &dto.MetricFamily{Name: new("x"), Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: new(v)}}}}
		var b bytes.Buffer
		expfmt.MetricFamilyToText(&b, mf)
		want := strings.TrimSpace(strings.Split(b.String(), "\n")[1][2:])
		if got := string(appendValue(nil, v)); got != want {
			t.Errorf("appendValue(%v) = %s, expfmt writes %s", v, got, want)
		}
	}
}

// bigTable is a director with services×reals, every counter non-zero.
func bigTable(services, reals int) (lvs.Table, *config.Config) {
	var tab lvs.Table
	cfg := &config.Config{Director: "big", IPVS: config.IPVS{Backend: config.BackendFake}}
	for s := range services {
		k := lvs.AddrKey(lvs.TCP, netip.AddrFrom4([4]byte{10, 0, byte(s >> 8), byte(s)}), 80)
		svc := lvs.Service{Key: k, Scheduler: "wlc"}
		vs := config.VirtualService{Name: fmt.Sprintf("svc%d", s), Key: k}
		for r := range reals {
			dk := lvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, byte(100 + s>>8), byte(s), byte(r)}), Port: 8080}
			n := uint64(s*reals + r + 1)
			st := lvs.Stats{Conns: n * 1000, InPkts: n * 10000, OutPkts: n * 9000, InBytes: n * 1400000, OutBytes: n * 48000000}
			svc.Dests = append(svc.Dests, lvs.Dest{Key: dk, Forward: lvs.NAT, Weight: int32(1 + r%5),
				ActiveConns: uint32(r * 3), InactiveConns: uint32(r * 7), PersistentConns: uint32(r), Stats: st})
			svc.Stats = svc.Stats.Add(st)
			w := 1 + r%5
			vs.Reals = append(vs.Reals, config.RealServer{Key: dk, Weight: &w})
		}
		tab.Services = append(tab.Services, svc)
		cfg.VirtualServices = append(cfg.VirtualServices, vs)
	}
	tab.SumTotals()
	return tab, cfg
}

// BenchmarkScrape1000x50 scrapes a director of 1000 services with 50 real
// servers each, every counter present (the netlink backend's full set).
// cold: the first scrape of a new snapshot (labels, text and gzip built),
// as every scrape is when Prometheus scrapes once per step; warm: another
// scrape of the same snapshot.
func BenchmarkScrape1000x50(b *testing.B) {
	tab, cfg := bigTable(1000, 50)
	f := lvs.NewFake(tab)
	c := New(f, time.Minute, quiet)
	c.Sample(context.Background())
	m := NewMetrics(c, func() *config.Config { return cfg }, MetricsOptions{})
	h := m.Handler(prometheus.NewRegistry(), quiet)
	body, _ := scrape(b, h, false)
	b.Logf("%d series, %d MB of text", bytes.Count(body, []byte("\n"))-2*bytes.Count(body, []byte("# TYPE")), len(body)>>20)
	for _, gz := range []bool{true, false} {
		enc := map[bool]string{true: "gzip", false: "plain"}[gz]
		b.Run("cold/"+enc, func(b *testing.B) {
			for b.Loop() {
				b.StopTimer()
				c.Sample(context.Background())
				b.StartTimer()
				scrapeDiscard(h, gz)
			}
		})
		b.Run("warm/"+enc, func(b *testing.B) {
			scrapeDiscard(h, gz)
			for b.Loop() {
				scrapeDiscard(h, gz)
			}
		})
	}
}

// discardWriter is a ResponseWriter that only counts, so the benchmark
// measures the exporter and not a buffer's growth.
type discardWriter struct {
	h http.Header
	n int
}

func (d *discardWriter) Header() http.Header         { return d.h }
func (d *discardWriter) WriteHeader(int)             {}
func (d *discardWriter) Write(p []byte) (int, error) { d.n += len(p); return len(p), nil }

func scrapeDiscard(h http.Handler, gz bool) int {
	req := httptest.NewRequest("GET", "/metrics", nil)
	if gz {
		req.Header.Set("Accept-Encoding", "gzip")
	}
	w := &discardWriter{h: http.Header{}}
	h.ServeHTTP(w, req)
	return w.n
}
