package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/app"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/lvs"

	"github.com/lvsmon/lvsmon/internal/buildinfo"
	"github.com/lvsmon/lvsmon/internal/demo"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from this run's output")

func addr(s string) netip.Addr { return netip.MustParseAddr(s) }

// metricsFixture is the table of the golden test: every kind of service
// and real server the exporter labels differently.
func metricsFixture() lvs.Table {
	web := lvs.AddrKey(lvs.TCP, addr("192.0.2.10"), 80)
	dns6 := lvs.AddrKey(lvs.UDP, addr("2001:db8::53"), 53)
	t := lvs.Table{Services: []lvs.Service{
		{Key: web, Scheduler: "wrr",
			Dests: []lvs.Dest{
				{Key: lvs.DestKey{Addr: addr("10.0.1.1"), Port: 80}, Forward: lvs.NAT, Weight: 3, ActiveConns: 17, InactiveConns: 120,
					Stats: lvs.Stats{Conns: 61000, InPkts: 732000, OutPkts: 1098000, InBytes: 85400000, OutBytes: 2928000000}},
				// Quiesced by hand: configured 2, weight 0 in the kernel.
				{Key: lvs.DestKey{Addr: addr("10.0.1.2"), Port: 80}, Forward: lvs.NAT, Weight: 0, ActiveConns: 0, InactiveConns: 3,
					Stats: lvs.Stats{Conns: 40000, InPkts: 480000, OutPkts: 720000, InBytes: 56000000, OutBytes: 1920000000}},
				// Added with ipvsadm, not in the config.
				{Key: lvs.DestKey{Addr: addr("10.0.1.9"), Port: 80}, Forward: lvs.NAT, Weight: 1},
			}},
		{Key: lvs.AddrKey(lvs.TCP, addr("192.0.2.10"), 443), Scheduler: "wlc", Persistence: 300 * time.Second,
			Dests: []lvs.Dest{
				{Key: lvs.DestKey{Addr: addr("10.0.2.1"), Port: 443}, Weight: 1, ActiveConns: 40, InactiveConns: 12, PersistentConns: 85,
					Stats: lvs.Stats{Conns: 9000, InPkts: 270000, OutPkts: 0, InBytes: 81000000, OutBytes: 0}},
				{Key: lvs.DestKey{Addr: addr("10.0.2.2"), Port: 443}, Weight: 1, ActiveConns: 38, InactiveConns: 10, PersistentConns: 80,
					Stats: lvs.Stats{Conns: 8800, InPkts: 264000, OutPkts: 0, InBytes: 79200000, OutBytes: 0}},
			}},
		{Key: dns6, Scheduler: "rr",
			Dests: []lvs.Dest{
				{Key: lvs.DestKey{Addr: addr("2001:db8::1:1"), Port: 53}, Forward: lvs.NAT, Weight: 1, InactiveConns: 310,
					Stats: lvs.Stats{Conns: 150000, InPkts: 150000, OutPkts: 150000, InBytes: 10500000, OutBytes: 27000000}},
				{Key: lvs.DestKey{Addr: addr("2001:db8::1:2"), Port: 53}, Forward: lvs.NAT, Weight: 1, InactiveConns: 305,
					Stats: lvs.Stats{Conns: 150000, InPkts: 150000, OutPkts: 150000, InBytes: 10500000, OutBytes: 27000000}},
			}},
		// Not in the config: observed only, no name.
		{Key: lvs.MarkKey(10, lvs.IPv4), Scheduler: "sh",
			Dests: []lvs.Dest{
				{Key: lvs.DestKey{Addr: addr("10.0.3.1")}, Forward: lvs.Tunnel, Weight: 5, ActiveConns: 2,
					Stats: lvs.Stats{Conns: 12, InPkts: 1200, InBytes: 1 << 40}},
			}},
	}}
	for i := range t.Services {
		for _, d := range t.Services[i].Dests {
			t.Services[i].Stats = t.Services[i].Stats.Add(d.Stats)
		}
	}
	t.SumTotals()
	return t
}

// goldenProbe stands in for the check types in the golden test: no
// traffic leaves the test, and one server fails, so both values of the
// checker's families appear.
func goldenProbe(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
	if r.Key.Addr == addr("10.0.1.2") {
		return errors.New("http: status 503, want 200-299")
	}
	return nil
}

// goldenRoleSources report, once, a pair in the middle of a failover with
// a stale VIP: every role family has samples, disagreements included.
func goldenRoleSources() []app.RoleSource {
	run := func(ctx context.Context, report func(ha.Report)) error {
		// Twice, the second time past the grace period, so the
		// disagreement is reported before the first scrape.
		now := time.Now()
		for _, at := range []time.Time{now, now.Add(cfgGrace + time.Second)} {
			for _, r := range demo.RoleAt(demo.Failover+time.Second, at) {
				report(r)
			}
		}
		<-ctx.Done()
		return nil
	}
	return []app.RoleSource{{Name: ha.SourceSimulated, Run: run}, {Name: ha.SourceVIP}, {Name: ha.SourceVRRP}}
}

// cfgGrace is the default ha.grace.
const cfgGrace = 3 * time.Second

// checked counts the real servers with a check.
func checked(cfg *config.Config) int {
	n := 0
	for _, vs := range cfg.VirtualServices {
		if len(vs.AllChecks()) > 0 {
			n += len(vs.Reals)
		}
	}
	return n
}

// runForMetrics runs the daemon's own serve on a config and a reader, and
// returns /metrics once the first sample is in.
func runForMetrics(t *testing.T, cfg *config.Config, reader lvs.Reader, settled func([]byte) bool, roles ...app.RoleSource) []byte {
	t.Helper()
	cfg.DataDir = t.TempDir()
	cfg.Listen = config.Addresses{"127.0.0.1:0"}
	ctx, cancel := context.WithCancel(context.Background())
	addr := make(chan []net.Addr, 1)
	done := make(chan error, 1)
	var logBuf testutil.SyncBuffer
	go func() {
		// A dry run: the reconciler must not "fix" the fixture table
		// (the golden file is what lvsmon sees, not what it would make).
		done <- runApp(ctx, app.Options{Config: cfg, Reader: reader, Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Version: buildinfo.Read().Version,
			DryRun: true, Probe: goldenProbe, RoleSources: roles, Ready: func(a []net.Addr) { addr <- a }})
	}()
	defer func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("serve: %v", err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("serve did not stop; log:\n%s", logBuf.String())
		}
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a[0].String()
	case err := <-done:
		t.Fatalf("serve: %v; log:\n%s", err, logBuf.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not start; log:\n%s", logBuf.String())
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(base + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET /metrics: %v %d %s", err, resp.StatusCode, body)
		}
		if bytes.Contains(body, []byte("\nlvsmon_director_connections_total ")) && bytes.Count(body, []byte("\nlvsmon_real_server_up{")) == checked(cfg) &&
			(settled == nil || settled(body)) {
			return body
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sample in /metrics after 20s:\n%s\nlog:\n%s", body, logBuf.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// volatileFamilies change from run to run or with the Go version: their
// sample lines are dropped from golden files (their HELP and TYPE stay, so
// the golden file still lists every lvsmon family).
var volatileFamilies = []string{
	// Alerting reads the event log in its own goroutine, and the role
	// sources' events race with the scrape.
	"lvsmon_alert_events_total", "lvsmon_alert_events_held", "lvsmon_alert_events_suppressed_total",
	"lvsmon_alert_mails_queued_total", "lvsmon_alert_mails_sent_total", "lvsmon_alert_send_failures_total",
	"lvsmon_alert_outbox_mails", "lvsmon_alert_last_sent_timestamp_seconds", "lvsmon_alert_last_error_timestamp_seconds",
	"lvsmon_build_info",
	"lvsmon_peer_last_success_timestamp_seconds",
	"lvsmon_collector_last_sample_timestamp_seconds",
	"lvsmon_collector_last_sample_duration_seconds",
	"lvsmon_collector_samples_total",
	// The RRD store writes in its own goroutine: how far it got when the
	// scrape came is a race.
	"lvsmon_rrd_files",
	"lvsmon_rrd_updates_total",
	// How long a check took, and how many failed so far, depend on timing.
	"lvsmon_real_server_check_duration_seconds",
	"lvsmon_real_server_check_failures_total",
	// The scheduling lag is measured on the machine running the test.
	"lvsmon_checker_scheduling_lag_seconds",
	// The connection cap follows the machine's open file limit; the
	// connections open are the scrapes' own, however the client reused
	// them.
	"lvsmon_web_connections_max",
	"lvsmon_web_connections_open",
}

// foreignPrefixes are families that are not lvsmon's own (the Go runtime's
// and the process's): dropped whole.
var foreignPrefixes = []string{"go_", "process_", "promhttp_"}

func stable(body []byte) []byte {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		name := line
		if rest, ok := strings.CutPrefix(line, "# HELP "); ok {
			name = rest
		} else if rest, ok := strings.CutPrefix(line, "# TYPE "); ok {
			name = rest
		}
		name, _, _ = strings.Cut(name, " ")
		name, _, _ = strings.Cut(name, "{")
		if hasAnyPrefix(name, foreignPrefixes) {
			continue
		}
		if !strings.HasPrefix(line, "#") && contains(volatileFamilies, name) {
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes()
}

func hasAnyPrefix(s string, ps []string) bool {
	for _, p := range ps {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// metricsCase is one golden file of /metrics and how lvsmon runs for it.
type metricsCase struct {
	golden string
	setup  func(t *testing.T, cfg *config.Config) lvs.Reader
	roles  []app.RoleSource
	// settled, when set, must hold of /metrics too before it is taken:
	// the role sources report in their own goroutine, and a loaded
	// machine can scrape before the monitor has judged their reports.
	settled func(body []byte) bool
}

func (tc metricsCase) name() string { return strings.TrimSuffix(tc.golden, ".prom") }

// metrics runs lvsmon for the case and returns its whole /metrics.
func (tc metricsCase) metrics(t *testing.T) []byte {
	t.Helper()
	cfg, err := config.Load(filepath.Join("testdata", "metrics", "lvsmon.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return runForMetrics(t, cfg, tc.setup(t, cfg), tc.settled, tc.roles...)
}

// metricsCases are the golden files' cases, for TestMetricsGolden and
// TestMetricsPromtool (lab tier).
func metricsCases() []metricsCase {
	return []metricsCase{
		{"fake.prom", func(t *testing.T, cfg *config.Config) lvs.Reader { return lvs.NewFake(metricsFixture()) }, nil, nil},
		{"node-exporter-compatible.prom", func(t *testing.T, cfg *config.Config) lvs.Reader {
			// As --metrics.node-exporter-compatible does it.
			(&common{nodeExporterCompat: true}).override(cfg)
			return lvs.NewFake(metricsFixture())
		}, nil, nil},
		{"ha-mail.prom", func(t *testing.T, cfg *config.Config) lvs.Reader {
			// A director whose keepalived crashed: the VIP stayed, the
			// peer took over on the wire (the demo's simulated pair at
			// the moment of its failover); and alert mail configured
			// (to a port nobody listens on: nothing is sent before the
			// scrape anyway, the grouping window is 10 s).
			b, err := os.ReadFile(filepath.Join("testdata", "metrics", "lvsmon.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			b = append(b, "alerting:\n  smtp: {host: 127.0.0.1, port: 9, tls: none}\n  from: lvsmon@golden.test\n  to: [ops@golden.test]\n"...)
			c, err := config.Parse("lvsmon.yaml + alerting", b)
			if err != nil {
				t.Fatal(err)
			}
			cfg.Alerting = c.Alerting
			return lvs.NewFake(metricsFixture())
		}, goldenRoleSources(), func(body []byte) bool {
			// past the grace: the disagreement is judged
			return bytes.Contains(body, []byte(`lvsmon_ha_disagreement{ha_instance="VI_DEMO",kind="vip_without_master"} 1`))
		}},
		{"peers.prom", func(t *testing.T, cfg *config.Config) lvs.Reader {
			// A peer director that has sampled an empty table and
			// configures nothing: every service here is drift in both
			// tables. (A stand-in answers its status API.)
			peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.WriteString(w, `{"director":"lvs2","sampled_at":"2026-12-03T14:00:00Z","problems":[],"virtual_services":[],"page":{"offset":0,"limit":1000,"returned":0}}`)
			}))
			t.Cleanup(peer.Close)
			cfg.Peers = []config.Peer{{Name: "lvs2", URL: peer.URL, Timeout: config.Duration(time.Second), Interval: config.Duration(time.Second)}}
			return lvs.NewFake(metricsFixture())
		}, nil, func(body []byte) bool {
			// compared with a sampled table (the first pull may come
			// before the first sample, when the kernel is not compared)
			k := []byte(`lvsmon_peer_drift{kind="service",peer="lvs2",table="kernel"} `)
			return bytes.Contains(body, k) && !bytes.Contains(body, append(k, '0', '\n'))
		}},
		{"procfs.prom", func(t *testing.T, cfg *config.Config) lvs.Reader {
			// The same table as the kernel prints it under /proc: no
			// per-object counters there.
			root := t.TempDir()
			os.Mkdir(filepath.Join(root, "net"), 0o755)
			tab := metricsFixture()
			var ipvs, stats bytes.Buffer
			if err := lvs.WriteProcfs(&ipvs, tab); err != nil {
				t.Fatal(err)
			}
			if err := lvs.WriteProcfsStats(&stats, tab.Totals); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(root, "net", "ip_vs"), ipvs.Bytes(), 0o644)
			os.WriteFile(filepath.Join(root, "net", "ip_vs_stats"), stats.Bytes(), 0o644)
			cfg.IPVS.Backend, cfg.IPVS.ProcRoot = config.BackendProcfs, root
			r, err := app.OpenBackend(cfg)
			if err != nil {
				t.Fatal(err)
			}
			return r
		}, nil, nil},
	}
}

// TestMetricsGolden runs lvsmon on a fixture table, fetches /metrics and
// compares it, volatile lines dropped, with testdata/metrics/*.prom (go
// test -run TestMetricsGolden -update rewrites them). TestMetricsPromtool
// (lab tier) has promtool check the full output.
func TestMetricsGolden(t *testing.T) {
	for _, tc := range metricsCases() {
		t.Run(tc.name(), func(t *testing.T) {
			got := stable(tc.metrics(t))
			path := filepath.Join("testdata", "metrics", tc.golden)
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("/metrics differs from %s (run go test -run TestMetricsGolden -update to accept):\n%s", path, lineDiff(string(want), string(got)))
			}
		})
	}
}

// lineDiff lists the lines only in want (-) and only in got (+).
func lineDiff(want, got string) string {
	count := map[string]int{}
	for _, l := range strings.Split(want, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(got, "\n") {
		count[l]--
	}
	var b strings.Builder
	for _, l := range strings.Split(want, "\n") {
		if count[l] > 0 {
			b.WriteString("- " + l + "\n")
			count[l]--
		}
	}
	for _, l := range strings.Split(got, "\n") {
		if count[l] < 0 {
			b.WriteString("+ " + l + "\n")
			count[l]++
		}
	}
	return b.String()
}

// runApp is the daemon without runDaemon's signal handling.
func runApp(ctx context.Context, o app.Options) error {
	a, err := app.New(o)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Run(ctx)
}
