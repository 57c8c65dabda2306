//go:build lab

// Lab tier (README, Tests): a real Prometheus (Debian's prometheus) scrapes
// the demo.

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// prometheusServer is Debian's Prometheus, run on loopback with a config
// and storage of the test's own.
type prometheusServer struct {
	base string
	cmd  *exec.Cmd
	log  testutil.SyncBuffer
	done chan error
}

// startPrometheus scrapes target every second and evaluates lvsmon's rules
// (dashboards/prometheus/rules) every second.
func startPrometheus(t *testing.T, target string) *prometheusServer {
	t.Helper()
	return startPrometheusWith(t, fmt.Sprintf(`  - job_name: lvsmon
    static_configs:
      - targets: [%q]
`, target))
}

// startPrometheusWith is startPrometheus with the scrape_configs list
// given as YAML.
func startPrometheusWith(t *testing.T, scrapes string) *prometheusServer {
	t.Helper()
	rules, err := filepath.Glob(filepath.Join("..", "..", "dashboards", "prometheus", "rules", "*.yml"))
	if err != nil || len(rules) == 0 {
		t.Fatalf("no rule files: %v", err)
	}
	var ruleList strings.Builder
	for _, r := range rules {
		abs, _ := filepath.Abs(r)
		fmt.Fprintf(&ruleList, "  - %q\n", abs)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	os.WriteFile(cfg, []byte(fmt.Sprintf(`global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
%sscrape_configs:
%s`, ruleList.String(), scrapes)), 0o644)

	// A free loopback port: Prometheus does not report the port it got
	// for :0.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()

	p := &prometheusServer{base: "http://" + addr, done: make(chan error, 1)}
	p.cmd = exec.Command("prometheus", "--config.file="+cfg, "--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--storage.tsdb.retention.time=1h")
	p.cmd.Stdout, p.cmd.Stderr = &p.log, &p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("prometheus (scripts/deps.sh test installs it): %v", err)
	}
	go func() { p.done <- p.cmd.Wait() }()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		select {
		case <-p.done:
		case <-time.After(10 * time.Second):
			t.Error("prometheus did not exit after kill")
		}
	})
	p.waitFor(t, "ready", func() (bool, error) {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == 200, nil
	})
	return p
}

// waitFor polls cond for at most 30 s.
func (p *prometheusServer) waitFor(t *testing.T, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-p.done:
			t.Fatalf("prometheus exited (%v) waiting for %s:\n%s", err, what, p.log.String())
		default:
		}
		ok, err := cond()
		if ok {
			return
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("prometheus: no %s after 30s (last: %v); log:\n%s", what, last, p.log.String())
}

type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

func (s promSample) float(t *testing.T) float64 {
	t.Helper()
	str, _ := s.Value[1].(string)
	v, err := strconv.ParseFloat(str, 64)
	if err != nil {
		t.Fatalf("sample %v: %v", s, err)
	}
	return v
}

func (p *prometheusServer) query(t *testing.T, q string) []promSample {
	t.Helper()
	resp, err := http.Get(p.base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Fatalf("query %s: %v %s", q, err, body.Error)
	}
	return body.Data.Result
}

// fullStatus is the part of /api/v1/status this test compares.
type fullStatus struct {
	Director  string `json:"director"`
	Collector struct {
		Samples uint64 `json:"samples"`
	} `json:"collector"`
	Services []struct {
		RealServers []struct {
			ID       string `json:"id"`
			Weight   *int   `json:"weight"`
			InKernel bool   `json:"in_kernel"`
			Stats    struct {
				Conns uint64 `json:"conns"`
			} `json:"stats"`
		} `json:"real_servers"`
	} `json:"virtual_services"`
}

func getFullStatus(t *testing.T, base string) fullStatus {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st fullStatus
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

// statusID is the status API's id of the real server a series is about.
func statusID(m map[string]string) string {
	return m["service"] + "__" + strings.ReplaceAll(m["real_address"], ":", "-") + "_" + m["real_port"]
}

// TestPrometheusScrapesDemo runs a real Prometheus against the demo
// director: per-real-server series reach Prometheus with the values the
// status API shows, node_exporter's names match lvsmon's, and lvsmon's
// rules load and evaluate on the real data.
func TestPrometheusScrapesDemo(t *testing.T) {
	// A step of two scrape intervals: every snapshot is scraped at least
	// once, so Prometheus and the status API agree for about a second of
	// every step, whatever the scrape offset.
	d := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "2s", "--speed", "60", "--metrics.node-exporter-compatible")
	base := d.url(t)
	// Prometheus scrapes through a proxy that notes the format lvsmon
	// answered in: Prometheus 2 asks for OpenMetrics first.
	target, _ := url.Parse(base)
	proxy := httputil.NewSingleHostReverseProxy(target)
	var scrapedAs sync.Map // Content-Type → true
	proxy.ModifyResponse = func(r *http.Response) error {
		scrapedAs.Store(r.Header.Get("Content-Type"), true)
		return nil
	}
	front := httptest.NewServer(proxy)
	defer front.Close()
	p := startPrometheus(t, strings.TrimPrefix(front.URL, "http://"))

	const reals = 7 // the demo's web 3, api 2, dns 2
	p.waitFor(t, "real server weights", func() (bool, error) {
		n := len(p.query(t, `lvsmon_real_server_weight{job="lvsmon"}`))
		return n >= reals, fmt.Errorf("%d series", n) // 8 while the sorry server is in
	})

	// The demo's checker changes weights as its timeline breaks servers
	// (and brings the sorry server in), so values are compared only when
	// Prometheus and the status API saw the same snapshot.
	t.Run("weights and counters match the status API at the same sample", func(t *testing.T) {
		// Prometheus and the status API saw the same snapshot when the
		// scraped sample count equals the status API's before and after.
		p.waitFor(t, "a scrape of the snapshot the status API shows", func() (bool, error) {
			before := getFullStatus(t, base)
			samples := p.query(t, `lvsmon_collector_samples_total`)
			conns := p.query(t, `lvsmon_real_server_connections_total`)
			weights := p.query(t, `lvsmon_real_server_weight`)
			after := getFullStatus(t, base)
			if len(samples) != 1 || uint64(samples[0].float(t)) != before.Collector.Samples || before.Collector.Samples != after.Collector.Samples {
				return false, fmt.Errorf("samples: status %d/%d, prometheus %v", before.Collector.Samples, after.Collector.Samples, samples)
			}
			want := map[string]uint64{}
			wantW := map[string]int{}
			for _, s := range before.Services {
				for _, r := range s.RealServers {
					if r.InKernel {
						want[r.ID] = r.Stats.Conns
						wantW[r.ID] = *r.Weight
					}
				}
			}
			if len(conns) != len(want) || len(weights) != len(wantW) {
				return false, fmt.Errorf("%d connection and %d weight series, %d real servers in the kernel", len(conns), len(weights), len(want))
			}
			for _, s := range weights {
				if w, ok := wantW[statusID(s.Metric)]; !ok || float64(w) != s.float(t) {
					t.Errorf("%s: Prometheus has weight %v, the status API %d (listed: %v) at sample %d", statusID(s.Metric), s.float(t), w, ok, before.Collector.Samples)
				}
			}
			var moved bool
			for _, c := range conns {
				if w := want[statusID(c.Metric)]; float64(w) != c.float(t) {
					t.Errorf("%s: Prometheus has %v connections, the status API %d at sample %d", statusID(c.Metric), c.float(t), w, before.Collector.Samples)
				}
				moved = moved || c.float(t) > 0
			}
			if !moved {
				return false, fmt.Errorf("no traffic yet")
			}
			return true, nil
		})
	})

	t.Run("node_exporter names carry the same values", func(t *testing.T) {
		lv := map[string]float64{}
		for _, s := range p.query(t, "lvsmon_real_server_weight") {
			lv[s.Metric["real_address"]+":"+s.Metric["real_port"]] = s.float(t)
		}
		ne := p.query(t, "node_ipvs_backend_weight")
		if len(ne) != len(lv) {
			t.Errorf("%d node_ipvs_backend_weight series, %d lvsmon_real_server_weight", len(ne), len(lv))
		}
		for _, s := range ne {
			k := s.Metric["remote_address"] + ":" + s.Metric["remote_port"]
			if v, ok := lv[k]; !ok || v != s.float(t) {
				t.Errorf("node_ipvs_backend_weight of %s = %v, lvsmon_real_server_weight = %v (%v)", k, s.float(t), v, ok)
			}
		}
	})

	t.Run("scraped as OpenMetrics", func(t *testing.T) {
		var types []string
		scrapedAs.Range(func(k, _ any) bool { types = append(types, k.(string)); return true })
		if len(types) != 1 || types[0] != "application/openmetrics-text; version=1.0.0; charset=utf-8" {
			t.Errorf("lvsmon answered Prometheus' scrapes as %q, want OpenMetrics 1.0.0 only", types)
		}
	})

	t.Run("the director is named for joins", func(t *testing.T) {
		info := p.query(t, `lvsmon_director_info`)
		if len(info) != 1 || info[0].Metric["director"] != "demo-director" || info[0].Metric["backend"] != "fake" {
			t.Errorf("lvsmon_director_info = %v", info)
		}
	})

	t.Run("rules load and evaluate", func(t *testing.T) {
		p.waitFor(t, "evaluated rules", func() (bool, error) {
			resp, err := http.Get(p.base + "/api/v1/rules")
			if err != nil {
				return false, err
			}
			defer resp.Body.Close()
			var body struct {
				Data struct {
					Groups []struct {
						Name  string `json:"name"`
						Rules []struct {
							Name           string `json:"name"`
							Health         string `json:"health"`
							LastError      string `json:"lastError"`
							LastEvaluation string `json:"lastEvaluation"`
						} `json:"rules"`
					} `json:"groups"`
				} `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
				return false, err
			}
			n := 0
			for _, g := range body.Data.Groups {
				for _, r := range g.Rules {
					if r.Health == "err" {
						t.Fatalf("rule %s/%s fails on real data: %s", g.Name, r.Name, r.LastError)
					}
					if r.Health != "ok" {
						return false, fmt.Errorf("rule %s/%s: health %q", g.Name, r.Name, r.Health)
					}
					n++
				}
			}
			if len(body.Data.Groups) != 2 || n == 0 {
				return false, fmt.Errorf("%d groups, %d rules", len(body.Data.Groups), n)
			}
			return true, nil
		})
		p.waitFor(t, "a recorded connection rate", func() (bool, error) {
			r := p.query(t, `instance:lvsmon_director_connections:rate1m`)
			return len(r) == 1 && r[0].float(t) > 0, fmt.Errorf("%v", r)
		})
		// The demo's checker takes servers out as its timeline breaks
		// them: each service's count is between none and all of its
		// servers (web 3, api 2, dns 2).
		size := map[string]float64{"web": 3, "api": 2, "dns": 2}
		if r := p.query(t, `service:lvsmon_real_servers_not_serving:count`); len(r) != 3 {
			t.Errorf("not-serving counts for %d services, want the demo's 3: %v", len(r), r)
		} else {
			for _, s := range r {
				if v := s.float(t); v < 0 || v > size[s.Metric["name"]] {
					t.Errorf("%v", s)
				}
			}
		}
	})
	d.stop(t)
}
