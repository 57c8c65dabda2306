package collector

import (
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// prometheusAccept is the Accept header of Prometheus 2.x scrapes.
const prometheusAccept = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"

func TestNegotiate(t *testing.T) {
	const (
		text  = "text/plain; version=0.0.4; charset=utf-8"
		om1   = "application/openmetrics-text; version=1.0.0; charset=utf-8"
		om001 = "application/openmetrics-text; version=0.0.1; charset=utf-8"
	)
	for _, tc := range []struct {
		accept string
		f      format
		ct     string
	}{
		{"", formatText, text},
		{"*/*", formatText, text}, // curl
		{"text/plain", formatText, text},
		{"text/plain;version=0.0.4", formatText, text},
		{prometheusAccept, formatOpenMetrics, om1},
		{"application/openmetrics-text; version=1.0.0", formatOpenMetrics, om1},
		{"application/openmetrics-text", formatOpenMetrics, om001},
		{"application/openmetrics-text;version=0.0.1;q=0.9,text/plain;q=0.5", formatOpenMetrics, om001},
		{"text/plain;q=0.9,application/openmetrics-text;version=1.0.0;q=0.5", formatText, text},
		{"application/openmetrics-text;version=2.0.0", formatText, text},
		{"application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited", formatText, text},
	} {
		h := http.Header{}
		if tc.accept != "" {
			h.Set("Accept", tc.accept)
		}
		f, ct := negotiate(h)
		if f != tc.f || ct != tc.ct {
			t.Errorf("Accept %q: format %d, %q; want %d, %q", tc.accept, f, ct, tc.f, tc.ct)
		}
	}
}

// omBlocks splits an OpenMetrics exposition into families, each its
// HELP and TYPE lines with its series sorted, in name order: the fast
// writer's order of series is the table's, the registry's is sorted.
func omBlocks(t *testing.T, body string) []string {
	t.Helper()
	var blocks []string
	var cur []string
	flush := func() {
		if len(cur) > 0 {
			series := cur[2:]
			slices.Sort(series)
			blocks = append(blocks, strings.Join(cur, "\n"))
		}
		cur = nil
	}
	for _, l := range strings.Split(strings.TrimSuffix(body, "\n"), "\n") {
		if strings.HasPrefix(l, "# HELP ") {
			flush()
		}
		cur = append(cur, l)
	}
	flush()
	slices.Sort(blocks)
	return blocks
}

// TestOpenMetricsMatchesExpfmt is the contract of the fast OpenMetrics
// path: for a scraper that asks for OpenMetrics (Prometheus does by
// default), the handler writes, family by family, exactly what expfmt's
// OpenMetrics encoder writes for client_golang's gather of the same
// Metrics, plain or gzipped, ending in one # EOF.
func TestOpenMetricsMatchesExpfmt(t *testing.T) {
	tests := []struct {
		name  string
		cfg   string
		empty bool
	}{
		{"configured", metricsConfig, false},
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
			mfs, err := reg.Gather()
			if err != nil {
				t.Fatal(err)
			}
			var want bytes.Buffer
			enc := expfmt.NewEncoder(&want, expfmt.FmtOpenMetrics_1_0_0)
			for _, mf := range mfs {
				if err := enc.Encode(mf); err != nil {
					t.Fatal(err)
				}
			}
			if err := enc.(expfmt.Closer).Close(); err != nil {
				t.Fatal(err)
			}
			h := m.Handler(nil, quiet)
			for _, gz := range []bool{false, true} {
				req := httptest.NewRequest("GET", "/metrics", nil)
				req.Header.Set("Accept", prometheusAccept)
				if gz {
					req.Header.Set("Accept-Encoding", "gzip")
				}
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if ct := rec.Header().Get("Content-Type"); ct != string(expfmt.FmtOpenMetrics_1_0_0) {
					t.Errorf("Content-Type %q", ct)
				}
				body := rec.Body.Bytes()
				if gz {
					zr, err := gzip.NewReader(bytes.NewReader(body))
					if err != nil {
						t.Fatal(err)
					}
					if body, err = io.ReadAll(zr); err != nil {
						t.Fatalf("gunzip: %v", err)
					}
				}
				got := string(body)
				if !strings.HasSuffix(got, "\n# EOF\n") || strings.Count(got, "# EOF") != 1 {
					t.Errorf("gzip %v: not one # EOF at the end:\n%s", gz, got)
				}
				g, w := omBlocks(t, strings.TrimSuffix(got, "# EOF\n")), omBlocks(t, strings.TrimSuffix(want.String(), "# EOF\n"))
				if strings.Join(g, "\n") != strings.Join(w, "\n") {
					t.Errorf("gzip %v: handler differs from expfmt:\n--- handler\n%s\n--- expfmt\n%s", gz, strings.Join(g, "\n"), strings.Join(w, "\n"))
				}
			}
			// The text format is still served to everyone else, from its
			// own cache.
			plain, hdr := scrape(t, h, true)
			if hdr.Get("Content-Type") != "text/plain; version=0.0.4; charset=utf-8" || bytes.Contains(plain, []byte("# EOF")) {
				t.Errorf("text scrape after OpenMetrics: %q", hdr.Get("Content-Type"))
			}
		})
	}
}

// The OpenMetrics families of the Go and process collectors go through
// expfmt; the handler's whole answer must still be one exposition.
func TestOpenMetricsWithRuntimeFamilies(t *testing.T) {
	m, c := exporter(t, metricsTable(), parseConfig(t, metricsConfig))
	h := MetricsHandler(c, m.cfg, MetricsOptions{}, quiet)
	req := httptest.NewRequest("GET", "/metrics", nil)
	req.Header.Set("Accept", prometheusAccept)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	body := rec.Body.String()
	for _, w := range []string{"# TYPE go_goroutines gauge\n", "# TYPE lvsmon_director_connections counter\n",
		"\nlvsmon_director_connections_total 1200.0\n", "# TYPE process_cpu_seconds counter\n"} {
		if !strings.Contains(body, w) {
			t.Errorf("OpenMetrics answer lacks %q", w)
		}
	}
	if !strings.HasSuffix(body, "\n# EOF\n") || strings.Count(body, "# EOF") != 1 {
		t.Errorf("not one # EOF at the end")
	}
}

func TestAppendOMValueMatchesExpfmt(t *testing.T) {
	for _, v := range []float64{0, 1, -1, 2, 7, 999999, 1e6, 1 << 53, 1 << 60, 0.5, -3, 1.25e-9, 123456.789, math.NaN(), math.Inf(1), math.Inf(-1), math.MaxFloat64} {
		name, help := "x", "x"
		mf := &dto.MetricFamily{Name: &name, Help: &help, Type: dto.MetricType_GAUGE.Enum(),
			Metric: []*dto.Metric{{Gauge: &dto.Gauge{Value: &v}}}}
		var b bytes.Buffer
		if _, err := expfmt.MetricFamilyToOpenMetrics(&b, mf); err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSpace(b.String()), "\n")
		want := strings.TrimPrefix(lines[len(lines)-1], "x ")
		if got := string(appendOMValue(nil, v)); got != want {
			t.Errorf("appendOMValue(%v) = %s, expfmt writes %s", v, got, want)
		}
	}
}

// BenchmarkOpenMetrics1000x50 is a cold OpenMetrics scrape of 510,000
// series by the fast writer, against client_golang's gather and expfmt's
// OpenMetrics encoder of the same series: why Prometheus' default
// request does not go through expfmt for the table.
func BenchmarkOpenMetrics1000x50(b *testing.B) {
	tab, cfg := bigTable(1000, 50)
	c := New(lvs.NewFake(tab), time.Minute, quiet)
	c.Sample(context.Background())
	m := NewMetrics(c, func() *config.Config { return cfg }, MetricsOptions{})
	h := m.Handler(prometheus.NewRegistry(), quiet)
	b.Run("fast/gzip", func(b *testing.B) {
		for b.Loop() {
			b.StopTimer()
			c.Sample(context.Background())
			b.StartTimer()
			req := httptest.NewRequest("GET", "/metrics", nil)
			req.Header.Set("Accept", prometheusAccept)
			req.Header.Set("Accept-Encoding", "gzip")
			h.ServeHTTP(&discardWriter{h: http.Header{}}, req)
		}
	})
	b.Run("expfmt/plain", func(b *testing.B) {
		reg := prometheus.NewRegistry()
		reg.MustRegister(m)
		for b.Loop() {
			mfs, err := reg.Gather()
			if err != nil {
				b.Fatal(err)
			}
			enc := expfmt.NewEncoder(io.Discard, expfmt.FmtOpenMetrics_1_0_0)
			for _, mf := range mfs {
				enc.Encode(mf)
			}
		}
	})
}
