// Command scrape measures what a Prometheus scrape of a big director costs
// with node_exporter's ipvs collector and with lvsmon, on the same table in
// the same run, and prints the ratios (make bench runs it).
//
// Both read a fake /proc written by lvs.WriteProcfs: node_exporter through
// --path.procfs, lvsmon through its procfs backend. node_exporter parses
// /proc/net/ip_vs on every scrape; lvsmon reads it once per step and serves
// scrapes from the collector's snapshot, so for lvsmon the figures that
// matter are those of the first scrape after a new snapshot (every scrape,
// when Prometheus scrapes once per step), reported apart from scrapes of a
// snapshot already served.
//
// lvsmon runs here as its collector and exporter in a process of their own
// (this program, re-executed with "serve"): the same procfs backend,
// collector and /metrics handler as lvsmon run, without the RRD graphs,
// whose default archives would need about 5 MB per real server on disk.
//
// The full netlink-level series set (every per-service and per-real-server
// counter, which /proc does not have) is measured in process on the fake
// backend, through the same handler over loopback HTTP.
package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "serve" {
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "scrape serve:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "scrape:", err)
		os.Exit(1)
	}
}

// prometheusHeaders are what Prometheus 2.x sends with a scrape.
var prometheusHeaders = map[string]string{
	"Accept":          "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
	"Accept-Encoding": "gzip",
	"User-Agent":      "Prometheus/2.42.0",
}

func run() error {
	services := flag.Int("services", 1000, "virtual services")
	reals := flag.Int("reals", 50, "real servers per virtual service")
	scrapes := flag.Int("scrapes", 20, "timed scrapes per exporter and kind")
	nodeExporter := flag.String("node-exporter", "prometheus-node-exporter", "node_exporter binary")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	dir, err := os.MkdirTemp("", "lvsmon-bench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	tab, cfg := table(*services, *reals)
	if err := writeProc(dir, tab); err != nil {
		return err
	}
	fmt.Printf("Scrapes of a director with %d virtual services × %d real servers (%d), fake /proc in %s,\n",
		*services, *reals, *services**reals, dir)
	fmt.Printf("sent as Prometheus sends them (gzip, text format), one at a time; %d timed per row.\n\n", *scrapes)

	// node_exporter.
	nePort, err := freePort()
	if err != nil {
		return err
	}
	ne, err := start(ctx, *nodeExporter, "--path.procfs="+dir, "--collector.disable-defaults", "--collector.ipvs",
		"--web.listen-address="+nePort)
	if err != nil {
		return fmt.Errorf("node_exporter (scripts/deps.sh bench installs it): %w", err)
	}
	defer ne.stop()
	if err := waitHTTP(ctx, "http://"+nePort+"/", 30*time.Second); err != nil {
		return fmt.Errorf("node_exporter: %w\n%s", err, ne.log.String())
	}
	neURL := "http://" + nePort + "/metrics"
	if _, _, err := scrape(ctx, neURL); err != nil { // warm-up, not timed
		return fmt.Errorf("node_exporter: %w", err)
	}
	cpu0 := ne.cpu()
	var neTimes []time.Duration
	var neBody []byte
	for range *scrapes {
		d, body, err := scrape(ctx, neURL)
		if err != nil {
			return fmt.Errorf("node_exporter: %w", err)
		}
		neTimes = append(neTimes, d)
		neBody = body
	}
	neCPU := (ne.cpu() - cpu0) / time.Duration(*scrapes)
	neRSS := ne.peakRSS()
	neSeries, neAll, err := countSeries(neBody, "node_ipvs_")
	if err != nil {
		return fmt.Errorf("node_exporter output: %w", err)
	}
	ne.stop()

	// lvsmon's collector and exporter, in their own process.
	const step = time.Second
	self, err := os.Executable()
	if err != nil {
		return err
	}
	lv, err := start(ctx, self, "serve", "-proc", dir, "-listen", "127.0.0.1:0", "-step", step.String())
	if err != nil {
		return err
	}
	defer lv.stop()
	lvAddr, err := lv.waitLine(ctx, "listening ", 30*time.Second)
	if err != nil {
		return fmt.Errorf("lvsmon exporter: %w", err)
	}
	lvURL := "http://" + lvAddr + "/metrics"
	if err := waitSampled(ctx, lvURL, 30*time.Second); err != nil {
		return fmt.Errorf("lvsmon exporter: %w\n%s", err, lv.log.String())
	}
	var cold, warm []time.Duration
	var lvBody []byte
	lastSeq := -1.0
	cpu0, t0 := lv.cpu(), time.Now()
	for len(cold) < *scrapes || len(warm) < *scrapes {
		// Shortly after a step boundary the collector has a new snapshot
		// that no scrape has seen: scrape it twice.
		next := time.Now().Truncate(step).Add(step + 300*time.Millisecond)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Until(next)):
		}
		for range 2 {
			d, body, err := scrape(ctx, lvURL)
			if err != nil {
				return fmt.Errorf("lvsmon exporter: %w", err)
			}
			seq, err := samples(body)
			if err != nil {
				return err
			}
			if seq != lastSeq {
				cold = append(cold, d)
			} else {
				warm = append(warm, d)
			}
			lastSeq, lvBody = seq, body
		}
	}
	lvCPUPerSec := float64(lv.cpu()-cpu0) / float64(time.Since(t0))
	lvRSS := lv.peakRSS()
	lvSeries, lvAll, err := countSeries(lvBody, "lvsmon_director_", "lvsmon_virtual_service_", "lvsmon_real_server_")
	if err != nil {
		return fmt.Errorf("lvsmon output: %w", err)
	}
	lv.stop()

	// The netlink-level set, in process.
	nlCold, nlWarm, nlSeries, err := netlinkLevel(ctx, tab, cfg, *scrapes)
	if err != nil {
		return err
	}

	neVersion := "node_exporter"
	if out, err := exec.Command(*nodeExporter, "--version").CombinedOutput(); err == nil {
		if f := strings.Fields(string(out)); len(f) >= 3 {
			neVersion += " " + f[2]
		}
	}
	fmt.Printf("%-38s %9s %9s %10s %12s %13s\n", "", "median", "p99", "peak RSS", "IPVS series", "all series")
	row := func(name string, ts []time.Duration, rss int64, series, all int) {
		rs := "-"
		if rss > 0 {
			rs = fmt.Sprintf("%d MB", rss>>20)
		}
		as := "-"
		if all > 0 {
			as = strconv.Itoa(all)
		}
		fmt.Printf("%-38s %9s %9s %10s %12d %13s\n", name, secs(quantile(ts, 0.5)), secs(quantile(ts, 0.99)), rs, series, as)
	}
	row(neVersion+", /proc", neTimes, neRSS, neSeries, neAll)
	row("lvsmon, /proc, new snapshot", cold, lvRSS, lvSeries, lvAll)
	row("lvsmon, /proc, same snapshot", warm, lvRSS, lvSeries, lvAll)
	row("lvsmon, netlink-level set, new snapshot", nlCold, 0, nlSeries, 0)
	row("lvsmon, netlink-level set, same snapshot", nlWarm, 0, nlSeries, 0)
	fmt.Printf("\nCPU: node_exporter %s per scrape; lvsmon %.0f%% of a core while sampling every %s and scraped twice per step.\n",
		secs(neCPU), 100*lvCPUPerSec, step)

	speed := ratio(quantile(neTimes, 0.5), quantile(cold, 0.5))
	speed99 := ratio(quantile(neTimes, 0.99), quantile(cold, 0.99))
	mem := float64(neRSS) / float64(lvRSS)
	more := float64(lvSeries) / float64(neSeries)
	fmt.Printf("\nnode_exporter / lvsmon (new snapshot): %.1f× the median scrape time, %.1f× the p99, %.1f× the peak RSS; lvsmon exports %.2f× the IPVS series.\n",
		speed, speed99, mem, more)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT MET"
	}
	fmt.Printf("Targets: ≥10× faster per scrape: %s; ≥3× less memory: %s; more series: %s; netlink-level set under 1 s: %s.\n",
		verdict(speed >= 10), verdict(mem >= 3), verdict(lvSeries > neSeries), verdict(quantile(nlCold, 0.99) < time.Second))
	return nil
}

// table is a director of services×reals with realistic gauges and every
// counter set (the procfs files keep only what /proc shows).
func table(services, reals int) (lvs.Table, *config.Config) {
	var tab lvs.Table
	cfg := &config.Config{Director: "bench", Step: config.Duration(time.Second), IPVS: config.IPVS{Backend: config.BackendFake}}
	for s := range services {
		k := lvs.AddrKey(lvs.TCP, netip.AddrFrom4([4]byte{10, 0, byte(s >> 8), byte(s)}), 80)
		svc := lvs.Service{Key: k, Scheduler: "wlc"}
		vs := config.VirtualService{Name: "svc" + strconv.Itoa(s), Key: k}
		for r := range reals {
			dk := lvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, byte(100 + s>>8), byte(s), byte(r)}), Port: 8080}
			n := uint64(s*reals + r + 1)
			st := lvs.Stats{Conns: n * 1013, InPkts: n * 10007, OutPkts: n * 9001, InBytes: n * 1400003, OutBytes: n * 48000017}
			w := 1 + r%5
			svc.Dests = append(svc.Dests, lvs.Dest{Key: dk, Forward: lvs.NAT, Weight: int32(w),
				ActiveConns: uint32(r * 37 % 500), InactiveConns: uint32(r * 91 % 2000), PersistentConns: uint32(r % 7), Stats: st})
			svc.Stats = svc.Stats.Add(st)
			vs.Reals = append(vs.Reals, config.RealServer{Key: dk, Weight: &w})
		}
		tab.Services = append(tab.Services, svc)
		cfg.VirtualServices = append(cfg.VirtualServices, vs)
	}
	tab.SumTotals()
	return tab, cfg
}

func writeProc(dir string, tab lvs.Table) error {
	if err := os.MkdirAll(filepath.Join(dir, "net"), 0o755); err != nil {
		return fmt.Errorf("fake /proc: %w", err)
	}
	var ipvs, stats bytes.Buffer
	if err := lvs.WriteProcfs(&ipvs, tab); err != nil {
		return err
	}
	if err := lvs.WriteProcfsStats(&stats, tab.Totals); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "net", "ip_vs"), ipvs.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fake /proc: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "net", "ip_vs_stats"), stats.Bytes(), 0o644); err != nil {
		return fmt.Errorf("fake /proc: %w", err)
	}
	return nil
}

// serve is the lvsmon side of the benchmark: procfs backend, collector
// and /metrics handler, as lvsmon run builds them.
func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	proc := fs.String("proc", "/proc", "procfs root")
	listen := fs.String("listen", "127.0.0.1:0", "address")
	step := fs.Duration("step", time.Second, "collector step")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	cfg := &config.Config{Director: "bench", Step: config.Duration(*step),
		IPVS: config.IPVS{Backend: config.BackendProcfs, ProcRoot: *proc}}
	coll := collector.New(lvs.NewProcfs(*proc), *step, log)
	mux := http.NewServeMux()
	mux.Handle("/metrics", collector.MetricsHandler(coll, func() *config.Config { return cfg }, collector.MetricsOptions{Build: collector.BuildInfo{Version: "bench"}}, log))
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	go coll.Run(ctx)
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	fmt.Println("listening", ln.Addr())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// netlinkLevel scrapes the full series set of table (fake backend, every
// counter, every real server configured) over loopback HTTP: cold after
// each new sample, warm once more.
func netlinkLevel(ctx context.Context, tab lvs.Table, cfg *config.Config, n int) (cold, warm []time.Duration, series int, err error) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	coll := collector.New(lvs.NewFake(tab), time.Minute, log)
	srv := httptest.NewServer(collector.MetricsHandler(coll, func() *config.Config { return cfg }, collector.MetricsOptions{Build: collector.BuildInfo{Version: "bench"}}, log))
	defer srv.Close()
	var body []byte
	for range n {
		if coll.Sample(ctx) == nil {
			return nil, nil, 0, errors.New("sampling the fake table failed")
		}
		d, _, err := scrape(ctx, srv.URL)
		if err != nil {
			return nil, nil, 0, err
		}
		cold = append(cold, d)
		d, body, err = scrape(ctx, srv.URL)
		if err != nil {
			return nil, nil, 0, err
		}
		warm = append(warm, d)
	}
	series, _, err = countSeries(body, "lvsmon_director_", "lvsmon_virtual_service_", "lvsmon_real_server_")
	return cold, warm, series, err
}

var client = &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: 60 * time.Second}

// scrape fetches url as Prometheus does and returns how long it took
// until the last byte, and the (gzipped) body.
func scrape(ctx context.Context, url string) (time.Duration, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return 0, nil, err
	}
	for k, v := range prometheusHeaders {
		req.Header.Set(k, v)
	}
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return 0, nil, err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	d := time.Since(start)
	if err != nil {
		return 0, nil, err
	}
	if resp.StatusCode != 200 {
		return 0, nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	if resp.Header.Get("Content-Encoding") != "gzip" {
		return 0, nil, fmt.Errorf("GET %s: not gzipped", url)
	}
	return d, body, nil
}

func gunzip(body []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	return io.ReadAll(zr)
}

// countSeries counts the sample lines of families with the prefixes, and
// all sample lines.
func countSeries(gz []byte, prefixes ...string) (ipvs, all int, err error) {
	body, err := gunzip(gz)
	if err != nil {
		return 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] == '#' {
			continue
		}
		all++
		for _, p := range prefixes {
			if bytes.HasPrefix(line, []byte(p)) && !bytes.HasPrefix(line, []byte("lvsmon_director_info")) {
				ipvs++
				break
			}
		}
	}
	return ipvs, all, sc.Err()
}

// samples reads lvsmon_collector_samples_total: it changes with each new
// snapshot.
func samples(gz []byte) (float64, error) {
	body, err := gunzip(gz)
	if err != nil {
		return 0, err
	}
	const name = "\nlvsmon_collector_samples_total "
	i := bytes.Index(body, []byte(name))
	if i < 0 {
		return 0, errors.New("no lvsmon_collector_samples_total in the output")
	}
	rest := body[i+len(name):]
	end := bytes.IndexByte(rest, '\n')
	if end < 0 {
		end = len(rest)
	}
	return strconv.ParseFloat(string(rest[:end]), 64)
}

func waitSampled(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, body, err := scrape(ctx, url); err == nil {
			if n, err := samples(body); err == nil && n > 0 {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("no sample within %s", limit)
}

func waitHTTP(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
	return fmt.Errorf("%s does not answer within %s", url, limit)
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// child is a process under measurement.
type child struct {
	cmd   *exec.Cmd
	log   bytes.Buffer // stderr
	lines chan string  // stdout
	done  chan struct{}
}

func start(ctx context.Context, name string, args ...string) (*child, error) {
	c := &child{cmd: exec.CommandContext(ctx, name, args...), lines: make(chan string, 16), done: make(chan struct{})}
	c.cmd.Stderr = &c.log
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
		c.cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

func (c *child) waitLine(ctx context.Context, prefix string, limit time.Duration) (string, error) {
	t := time.NewTimer(limit)
	defer t.Stop()
	for {
		select {
		case l := <-c.lines:
			if rest, ok := strings.CutPrefix(l, prefix); ok {
				return rest, nil
			}
		case <-c.done:
			return "", fmt.Errorf("exited: %s", c.log.String())
		case <-t.C:
			return "", fmt.Errorf("no %q line within %s", prefix, limit)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (c *child) stop() {
	select {
	case <-c.done:
		return
	default:
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
}

// peakRSS is the process's VmHWM.
func (c *child) peakRSS() int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			f := strings.Fields(rest)
			kb, _ := strconv.ParseInt(f[0], 10, 64)
			return kb << 10
		}
	}
	return 0
}

// cpu is the process's user and system time so far.
func (c *child) cpu() time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", c.cmd.Process.Pid))
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	utime, _ := strconv.ParseInt(f[11], 10, 64)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	const hz = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / hz
}

func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[max(0, min(i, len(s)-1))]
}

func ratio(a, b time.Duration) float64 { return float64(a) / float64(b) }

func secs(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f ms", float64(d)/1e6)
}
