// Command soak runs the lvsmon binary for a long time at 1000 virtual
// services × 50 real servers on the fake backend, with churn and the load
// of its users, and says whether its memory, goroutines or open files
// grow (make bench runs it for SOAK, default 30 minutes):
//
//	go run ./bench/soak [-duration 30m] [-services 1000] [-reals 50] [-reload 3m]
//	                    [-flip 20s] [-scrape 15s] [-pages 5s] [-sample 30s]
//
// What lvsmon does meanwhile:
//   - churn: a reload every -reload (the config rewritten and SIGHUP) that
//     removes and adds 2% of the services and replaces 10% of the real
//     servers of 1% of them, and adds or removes a checked real server;
//   - health: 4 managed services (3 with http checks, 1 with tcp) of 10
//     real servers each, loopback servers in a helper process, one of
//     which goes down or comes back every -flip;
//   - users: a Prometheus-style scrape of /metrics (gzip) every -scrape;
//     every -pages the status page, a page of /api/v1/status and three
//     graph images.
//
// The other services are configured-only (managed: false, no check): the
// status page, API and /metrics carry all 50,000 real servers while the
// fake kernel, and so the RRD store, holds only the managed ones. Every
// real server in the kernel is an RRD file of about 5 MB (at a 10 s
// step), so the managed real servers are drawn from a fixed pool: the
// disk use is bounded (about 250 MB) and checked against -max-disk.
//
// Every -sample it records lvsmon's RSS (VmRSS), goroutines (go_goroutines
// on /metrics) and open files (/proc/PID/fd), and at the end prints each
// one's start, end, max, end/start and least-squares slope per hour over
// the run after the first tenth (warm-up), with a verdict: a slope that
// would add more than the threshold in an hour is a possible leak.
package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/internal/loadlab"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "servers" {
		if err := loadlab.Serve(os.Stdin, os.Stdout, os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, "soak servers:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "soak:", err)
		os.Exit(1)
	}
}

type opts struct {
	duration, reload, flip, scrape, pages, sample time.Duration
	services, reals                               int
	maxDisk                                       int64
	keep                                          bool
}

// The checked services: managed, in the kernel and in RRD.
const (
	checkedServices = 4  // 3 http, 1 tcp
	checkedConfig   = 10 // real servers configured in each at first
	checkedPool     = 12 // the addresses they are drawn from
)

func run() error {
	var o opts
	flag.DurationVar(&o.duration, "duration", 30*time.Minute, "how long lvsmon runs")
	flag.IntVar(&o.services, "services", 1000, "virtual services")
	flag.IntVar(&o.reals, "reals", 50, "real servers per virtual service")
	flag.DurationVar(&o.reload, "reload", 3*time.Minute, "a reload with churn this often (runs under 15 min: a quarter of -duration, at most)")
	flag.DurationVar(&o.flip, "flip", 20*time.Second, "a checked real server goes down or comes back this often")
	flag.DurationVar(&o.scrape, "scrape", 15*time.Second, "a /metrics scrape this often")
	flag.DurationVar(&o.pages, "pages", 5*time.Second, "the status page, an API page and 3 graphs this often")
	flag.DurationVar(&o.sample, "sample", 30*time.Second, "RSS, goroutines and open files sampled this often (runs under 10 min: a tenth of -duration, at most)")
	maxDiskMB := flag.Int64("max-disk", 2048, "stop if lvsmon's data dir grows beyond this many MB")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (config, data dir, lvsmon's log)")
	flag.Parse()
	o.maxDisk = *maxDiskMB << 20
	if o.duration < 15*time.Minute {
		o.reload = min(o.reload, o.duration/4)
	}
	if o.duration < 10*time.Minute {
		o.sample = min(o.sample, o.duration/10)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "lvsmon-soak-")
	if err != nil {
		return err
	}
	if o.keep {
		fmt.Printf("temp dir (kept): %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	bin, err := loadlab.Build(ctx, dir)
	if err != nil {
		return err
	}

	// The checked services' real servers.
	var specs []string
	for s := range checkedServices {
		kind := "http"
		if s == checkedServices-1 {
			kind = "tcp"
		}
		for i := range checkedPool {
			specs = append(specs, fmt.Sprintf("%s:127.88.%d.%d", kind, s+1, i+1))
		}
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	srv, err := loadlab.StartServers(ctx, append([]string{self, "servers"}, specs...), nil)
	if err != nil {
		return err
	}
	defer srv.Close()

	w := newWorld(o, srv.Addrs, filepath.Join(dir, "data"))
	cfgPath := filepath.Join(dir, "lvsmon.yaml")
	if err := w.write(cfgPath); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(dir, "lvsmon.log"))
	if err != nil {
		return err
	}
	defer logf.Close()
	lt := newLogTracker()
	d, err := loadlab.StartDaemon(ctx, loadlab.DaemonOptions{Binary: bin, OnLine: lt.add, LogFile: logf,
		Args: []string{"--config", cfgPath, "--listen", "127.0.0.1:0"}})
	if err != nil {
		return err
	}
	defer func() {
		if exited, _ := d.Exited(); !exited {
			d.Kill()
		}
	}()
	fmt.Printf("Soak: lvsmon (pid %d) at %d virtual services × %d real servers (%d), %d of them checked in %d managed services,\n",
		d.PID, o.services, o.reals, o.services*o.reals, checkedServices*checkedConfig, checkedServices)
	fmt.Printf("for %s: a reload with churn every %s, a health flip every %s, a scrape every %s, pages every %s; samples every %s.\n\n",
		o.duration, o.reload, o.flip, o.scrape, o.pages, o.sample)

	s := &soak{o: o, d: d, w: w, srv: srv, lt: lt, cfgPath: cfgPath, dataDir: w.dataDir,
		c:     &http.Client{Timeout: 60 * time.Second},
		stats: map[string]*reqStats{}}
	return s.run(ctx)
}

// soak is one run.
type soak struct {
	o       opts
	d       *loadlab.Daemon
	w       *world
	srv     *loadlab.Servers
	lt      *logTracker
	c       *http.Client
	cfgPath string
	dataDir string

	mu         sync.Mutex
	stats      map[string]*reqStats
	samples    []sample
	reloads    []time.Duration
	reloadErrs int
	flips      []flip
	maxDisk    int64
}

// reqStats are one kind of request's outcomes.
type reqStats struct {
	times      []time.Duration
	codes      map[int]int
	errs       int
	bytes, raw int64
}

type sample struct {
	at         time.Duration // since the start
	rss        int64
	goroutines float64
	fds        int
	threads    int
	cpu        time.Duration
	disk       int64
}

type flip struct {
	addr string
	down bool
	at   time.Time
}

func (s *soak) note(kind string, d time.Duration, code int, err error, n, raw int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats[kind]
	if st == nil {
		st = &reqStats{codes: map[int]int{}}
		s.stats[kind] = st
	}
	if err != nil {
		st.errs++
		return
	}
	st.codes[code]++
	if code == 200 {
		st.times = append(st.times, d)
		st.bytes += n
		st.raw += raw
	}
}

// get fetches path as kind, with the headers given.
func (s *soak) get(ctx context.Context, kind, path string, hdr map[string]string) {
	req, err := http.NewRequestWithContext(ctx, "GET", s.d.URL+path, nil)
	if err != nil {
		s.note(kind, 0, 0, err, 0, 0)
		return
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	t0 := time.Now()
	resp, err := s.c.Do(req)
	if err != nil {
		if ctx.Err() == nil {
			s.note(kind, 0, 0, err, 0, 0)
		}
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	took := time.Since(t0)
	if err != nil {
		if ctx.Err() == nil {
			s.note(kind, 0, 0, err, 0, 0)
		}
		return
	}
	raw := int64(len(body))
	if resp.Header.Get("Content-Encoding") == "gzip" {
		if zr, err := gzip.NewReader(bytes.NewReader(body)); err == nil {
			n, _ := io.Copy(io.Discard, zr)
			raw = n
		}
	}
	s.note(kind, took, resp.StatusCode, nil, int64(len(body)), raw)
}

// prometheusHeaders are what Prometheus 2.x sends with a scrape.
var prometheusHeaders = map[string]string{
	"Accept":          "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1",
	"Accept-Encoding": "gzip",
	"User-Agent":      "Prometheus/2.42.0",
}

// every runs f every period until ctx ends.
func every(ctx context.Context, wg *sync.WaitGroup, period time.Duration, f func(ctx context.Context)) {
	wg.Go(func() {
		t := time.NewTicker(period)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				f(ctx)
			}
		}
	})
}

func (s *soak) run(parent context.Context) error {
	start := time.Now()
	// Wait for the first full picture: every configured checked server
	// up, so that flips start from a known state.
	for {
		mt, err := loadlab.GetMetrics(parent, s.c, s.d.URL+"/metrics", "lvsmon_real_server_up")
		if err == nil && mt.Sum("lvsmon_real_server_up", nil) >= float64(checkedServices*checkedConfig) {
			break
		}
		if time.Since(start) > 2*time.Minute {
			return fmt.Errorf("the checked servers did not come up within 2 minutes (%v)", err)
		}
		select {
		case <-parent.Done():
			return parent.Err()
		case <-time.After(time.Second):
		}
	}
	fmt.Printf("lvsmon up and every checked server passing after %s.\n\n", time.Since(start).Round(100*time.Millisecond))
	fmt.Printf("%8s %9s %11s %6s %8s %10s %9s\n", "time", "RSS", "goroutines", "fds", "threads", "CPU", "data dir")
	start = time.Now()
	ctx, cancel := context.WithDeadline(parent, start.Add(s.o.duration))
	defer cancel()
	var wg sync.WaitGroup
	var fail error
	var failOnce sync.Once
	abort := func(err error) {
		failOnce.Do(func() { fail = err; cancel() })
	}
	s.takeSample(start, abort)
	every(ctx, &wg, s.o.sample, func(context.Context) { s.takeSample(start, abort) })
	every(ctx, &wg, s.o.scrape, func(ctx context.Context) { s.get(ctx, "scrape /metrics", "/metrics", prometheusHeaders) })
	every(ctx, &wg, s.o.pages, func(ctx context.Context) {
		s.get(ctx, "status page /", "/", map[string]string{"Accept-Encoding": "gzip"})
		page := rand.IntN(max(1, s.o.services/100))
		s.get(ctx, "API page (100 services)", fmt.Sprintf("/api/v1/status?limit=100&offset=%d", page*100), map[string]string{"Accept-Encoding": "gzip"})
		for _, g := range s.w.graphs() {
			s.get(ctx, "graph image", g, nil)
		}
	})
	every(ctx, &wg, s.o.flip, func(context.Context) {
		if f, err := s.w.flip(s.srv); err != nil {
			abort(err)
		} else if f != nil {
			s.mu.Lock()
			s.flips = append(s.flips, *f)
			s.mu.Unlock()
		}
	})
	every(ctx, &wg, s.o.reload, func(ctx context.Context) {
		if err := s.reload(ctx); err != nil {
			if ctx.Err() == nil {
				abort(err)
			}
		}
	})
	wg.Go(func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if exited, err := s.d.Exited(); exited {
					abort(fmt.Errorf("lvsmon exited: %v", err))
				}
			}
		}
	})
	<-ctx.Done()
	wg.Wait()
	if fail == nil && parent.Err() == nil {
		s.takeSample(start, abort)
	}
	stopErr := s.d.Stop()
	s.report(time.Since(start))
	if fail != nil {
		return fail
	}
	if stopErr != nil {
		return fmt.Errorf("lvsmon's stop: %v", stopErr)
	}
	return parent.Err()
}

// takeSample records and prints one sample.
func (s *soak) takeSample(start time.Time, abort func(error)) {
	pid := s.d.PID
	var sm sample
	sm.at = time.Since(start)
	var err error
	if sm.rss, err = loadlab.RSS(pid); err != nil {
		abort(err)
		return
	}
	sm.fds, _ = loadlab.FDs(pid)
	sm.threads, _ = loadlab.Threads(pid)
	sm.cpu, _ = loadlab.CPU(pid)
	sm.disk = diskUse(s.dataDir)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if mt, err := loadlab.GetMetrics(ctx, s.c, s.d.URL+"/metrics", "go_goroutines"); err == nil {
		sm.goroutines = mt.Sum("go_goroutines", nil)
	} else {
		sm.goroutines = math.NaN()
	}
	s.mu.Lock()
	s.samples = append(s.samples, sm)
	s.maxDisk = max(s.maxDisk, sm.disk)
	s.mu.Unlock()
	fmt.Printf("%8s %9s %11.0f %6d %8d %10s %9s\n", clock(sm.at), mb(sm.rss), sm.goroutines, sm.fds, sm.threads,
		fmt.Sprintf("%.1f s", sm.cpu.Seconds()), mb(sm.disk))
	if sm.disk > s.o.maxDisk {
		abort(fmt.Errorf("lvsmon's data dir uses %s, more than -max-disk %s", mb(sm.disk), mb(s.o.maxDisk)))
	}
}

// reload churns the config, writes it and sends SIGHUP; it returns once
// lvsmon says the config is reloaded.
func (s *soak) reload(ctx context.Context) error {
	if err := s.w.churn(s.srv); err != nil {
		return err
	}
	if err := s.w.write(s.cfgPath); err != nil {
		return err
	}
	n := s.lt.reloadCount()
	t0 := time.Now()
	if err := s.d.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	for s.lt.reloadCount() == n {
		if r := s.lt.rejectedCount(); r > 0 {
			return fmt.Errorf("lvsmon rejected the churned config (see its log)")
		}
		if time.Since(t0) > 2*time.Minute {
			s.mu.Lock()
			s.reloadErrs++
			s.mu.Unlock()
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	s.mu.Lock()
	s.reloads = append(s.reloads, time.Since(t0))
	s.mu.Unlock()
	return nil
}

// diskUse is the space the files under dir take (blocks, not lengths).
func diskUse(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if fi, err := e.Info(); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok {
				n += st.Blocks * 512
			}
		}
		return nil
	})
	return n
}

func clock(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func mb(b int64) string { return fmt.Sprintf("%.0f MB", float64(b)/(1<<20)) }

func secs(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2f s", d.Seconds())
	case d >= 10*time.Millisecond:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.1f ms", float64(d)/1e6)
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

// slope is the least-squares slope of ys over xs (per unit of x) and the
// fitted values at the first and last x.
func slope(xs, ys []float64) (m, first, last float64) {
	n := float64(len(xs))
	if n < 2 {
		return 0, 0, 0
	}
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0, 0, 0
	}
	m = (n*sxy - sx*sy) / den
	b := (sy - m*sx) / n
	return m, b + m*xs[0], b + m*xs[len(xs)-1]
}

// series is one sampled quantity and the growth that counts as a leak.
type series struct {
	name   string
	unit   func(float64) string
	get    func(sample) float64
	perH   func(start float64) float64 // slope threshold per hour
	minAbs float64                     // least fitted growth over the run to flag
}

func (s *soak) report(elapsed time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Printf("\nSoak of %s at %d × %d (%d real servers configured; %d checked; step %s).\n",
		elapsed.Round(time.Second), s.o.services, s.o.reals, s.o.services*s.o.reals, checkedServices*checkedConfig, s.w.step)
	mbf := func(v float64) string { return fmt.Sprintf("%.1f MB", v/(1<<20)) }
	num := func(v float64) string { return fmt.Sprintf("%.1f", v) }
	all := []series{
		{"RSS", mbf, func(sm sample) float64 { return float64(sm.rss) }, func(st float64) float64 { return max(0.10*st, 16<<20) }, 8 << 20},
		{"goroutines", num, func(sm sample) float64 { return sm.goroutines }, func(st float64) float64 { return max(0.05*st, 10) }, 5},
		{"open files", num, func(sm sample) float64 { return float64(sm.fds) }, func(st float64) float64 { return max(0.05*st, 5) }, 3},
	}
	// The slope leaves out the first tenth of the run (at least the
	// first sample): caches and pools fill there.
	warm := max(1, len(s.samples)/10)
	fmt.Printf("\n%-11s %10s %10s %10s %10s %16s %10s  %s\n", "", "start", "end", "max", "end/start", "slope per hour", "threshold", "verdict")
	var leaks []string
	for _, sr := range all {
		var xs, ys []float64
		var startV, endV, maxV float64
		for i, sm := range s.samples {
			v := sr.get(sm)
			if math.IsNaN(v) {
				continue
			}
			if len(xs) == 0 && i == 0 {
				startV = v
			}
			endV = v
			maxV = max(maxV, v)
			if i >= warm {
				xs = append(xs, sm.at.Hours())
				ys = append(ys, v)
			}
		}
		m, f0, f1 := slope(xs, ys)
		thr := sr.perH(startV)
		verdict := "flat"
		if len(xs) < 3 {
			verdict = "too few samples"
		} else if m > thr && f1-f0 > sr.minAbs {
			verdict = "POSSIBLE LEAK"
			leaks = append(leaks, fmt.Sprintf("%s grows %s per hour", sr.name, sr.unit(m)))
		}
		ratio := "-"
		if startV > 0 {
			ratio = fmt.Sprintf("%.2f×", endV/startV)
		}
		fmt.Printf("%-11s %10s %10s %10s %10s %16s %10s  %s\n", sr.name, sr.unit(startV), sr.unit(endV), sr.unit(maxV), ratio,
			signed(m, sr.unit)+"/h", sr.unit(thr), verdict)
	}
	if len(s.samples) > 1 {
		a, b := s.samples[0], s.samples[len(s.samples)-1]
		fmt.Printf("\nCPU: %.1f%% of a core on average (%s over %s); threads %d at the start, %d at the end; data dir at most %s (limit %s).\n",
			100*(b.cpu-a.cpu).Seconds()/(b.at-a.at).Seconds(), secs(b.cpu-a.cpu), (b.at - a.at).Round(time.Second), a.threads, b.threads, mb(s.maxDisk), mb(s.o.maxDisk))
	}

	fmt.Printf("\n%-26s %6s %9s %9s %9s %12s %12s %s\n", "requests", "200s", "median", "p99", "max", "size (wire)", "(unzipped)", "other answers, errors")
	kinds := make([]string, 0, len(s.stats))
	for k := range s.stats {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		st := s.stats[k]
		n := len(st.times)
		var other []string
		for c, m := range st.codes {
			if c != 200 {
				other = append(other, fmt.Sprintf("%d×%d", m, c))
			}
		}
		sort.Strings(other)
		if st.errs > 0 {
			other = append(other, fmt.Sprintf("%d errors", st.errs))
		}
		size, raw := "-", "-"
		if n > 0 {
			size, raw = mb(st.bytes/int64(n)), mb(st.raw/int64(n))
			if st.bytes/int64(n) < 1<<20 {
				size, raw = fmt.Sprintf("%.0f kB", float64(st.bytes)/float64(n)/1024), fmt.Sprintf("%.0f kB", float64(st.raw)/float64(n)/1024)
			}
		}
		fmt.Printf("%-26s %6d %9s %9s %9s %12s %12s %s\n", k, n, secs(quantile(st.times, 0.5)), secs(quantile(st.times, 0.99)),
			secs(quantile(st.times, 1)), size, raw, strings.Join(other, ", "))
	}

	// Churn and health.
	fmt.Printf("\nReloads: %d config rewrites + SIGHUP (to the next \"config reloaded\": median %s, max %s), %d without one within 2 min;\n"+
		"lvsmon reloaded %d times in all (its file watcher reloads a rewritten file too); %d rejected.\n",
		len(s.reloads), secs(quantile(s.reloads, 0.5)), secs(quantile(s.reloads, 1)), s.reloadErrs, s.lt.reloadCount(), s.lt.rejectedCount())
	var lat []time.Duration
	missed := 0
	for _, f := range s.flips {
		if at, ok := s.lt.health(f.addr, f.down, f.at); ok {
			lat = append(lat, at.Sub(f.at))
		} else {
			missed++
		}
	}
	fmt.Printf("Health flips: %d (down or back up), seen by lvsmon %d (from the flip to its log line: median %s, max %s), not seen %d.\n",
		len(s.flips), len(lat), secs(quantile(lat, 0.5)), secs(quantile(lat, 1)), missed)
	warns, errs, top := s.lt.levels()
	fmt.Printf("lvsmon's log: %d warnings, %d errors", warns, errs)
	if len(top) > 0 {
		fmt.Printf(" (most frequent: %s)", strings.Join(top, "; "))
	}
	fmt.Println(".")

	if len(leaks) == 0 {
		fmt.Printf("\nVerdict: no growth in RSS, goroutines or open files over %s: met.\n", elapsed.Round(time.Second))
	} else {
		fmt.Printf("\nVerdict: POSSIBLE LEAK: %s (over %s; a short run extrapolates from little).\n", strings.Join(leaks, "; "), elapsed.Round(time.Second))
	}
}

// signed is v in its unit with its sign.
func signed(v float64, unit func(float64) string) string {
	if v < 0 {
		return "-" + unit(-v)
	}
	return "+" + unit(v)
}

// logTracker follows lvsmon's JSON log.
type logTracker struct {
	mu       sync.Mutex
	reloaded int
	rejected int
	warns    int
	errs     int
	msgs     map[string]int
	seen     map[string][]healthLine // health lines by server host:port
}

type healthLine struct {
	down bool
	at   time.Time
}

func newLogTracker() *logTracker {
	return &logTracker{msgs: map[string]int{}, seen: map[string][]healthLine{}}
}

func (l *logTracker) add(line loadlab.LogLine) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch line.Msg {
	case "config reloaded":
		l.reloaded++
	case "real server down", "real server up":
		srv := line.Str("server")
		l.seen[srv] = append(l.seen[srv], healthLine{down: line.Msg == "real server down", at: line.Time})
	}
	if strings.Contains(line.Msg, "keeping the running config") {
		l.rejected++
	}
	switch line.Level {
	case "WARN":
		l.warns++
		l.msgs["WARN "+line.Msg]++
	case "ERROR":
		l.errs++
		l.msgs["ERROR "+line.Msg]++
	case "":
		l.msgs["(not JSON) "+trim(line.Raw, 80)]++
	}
}

func trim(s string, n int) string {
	if len(s) > n {
		return s[:n] + "…"
	}
	return s
}

func (l *logTracker) reloadCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reloaded
}

func (l *logTracker) rejectedCount() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rejected
}

// health is when lvsmon first logged server addr down (or up) after from.
func (l *logTracker) health(addr string, down bool, from time.Time) (time.Time, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range l.seen[addr] {
		if h.down == down && !h.at.Before(from) {
			return h.at, true
		}
	}
	return time.Time{}, false
}

// levels are the warning and error counts and the most frequent lines.
func (l *logTracker) levels() (warns, errs int, top []string) {
	type kv struct {
		k string
		n int
	}
	var all []kv
	for k, n := range l.msgs {
		all = append(all, kv{k, n})
	}
	sort.Slice(all, func(i, j int) bool { return all[i].n > all[j].n || all[i].n == all[j].n && all[i].k < all[j].k })
	for i := range min(3, len(all)) {
		top = append(top, fmt.Sprintf("%d× %s", all[i].n, all[i].k))
	}
	return l.warns, l.errs, top
}

// world is the config lvsmon runs with, and its churn.
type world struct {
	mu       sync.Mutex
	rng      *rand.Rand
	step     time.Duration
	dataDir  string
	services []*service // configured-only
	checked  []*checkedService
	nextSvc  int
	nextReal int
}

type service struct {
	name, addr string
	reals      []string
}

type checkedService struct {
	name, addr, kind string
	pool             []string // host:port of the helper's servers
	in               []bool   // configured now
	down             []bool   // made to fail now
}

func newWorld(o opts, addrs []string, dataDir string) *world {
	w := &world{rng: rand.New(rand.NewPCG(1, 2)), step: 10 * time.Second, dataDir: dataDir}
	for range o.services - checkedServices {
		w.services = append(w.services, w.newService(o.reals))
	}
	for s := range checkedServices {
		kind := "http"
		if s == checkedServices-1 {
			kind = "tcp"
		}
		cs := &checkedService{name: fmt.Sprintf("checked-%s-%d", kind, s), addr: fmt.Sprintf("10.250.0.%d", s+1), kind: kind,
			pool: addrs[s*checkedPool : (s+1)*checkedPool], in: make([]bool, checkedPool), down: make([]bool, checkedPool)}
		for i := range checkedConfig {
			cs.in[i] = true
		}
		w.checked = append(w.checked, cs)
	}
	return w
}

func (w *world) newService(reals int) *service {
	k := w.nextSvc
	w.nextSvc++
	s := &service{name: fmt.Sprintf("svc-%d", k), addr: fmt.Sprintf("10.%d.%d.%d", 1+k/65536, k/256%256, k%256)}
	for range reals {
		s.reals = append(s.reals, w.newReal())
	}
	return s
}

func (w *world) newReal() string {
	r := w.nextReal
	w.nextReal++
	return fmt.Sprintf("172.%d.%d.%d", 16+r/65536, r/256%256, r%256)
}

// write writes the config atomically (lvsmon also watches the file).
func (w *world) write(path string) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	var sb strings.Builder
	fmt.Fprintf(&sb, "director: soak\ndata_dir: %s\nstep: %s\nipvs: {backend: fake}\nvirtual_services:\n", w.dataDir, w.step)
	for _, cs := range w.checked {
		check := "{type: http, path: /, interval: 1s, timeout: 1s, rise: 1, fall: 1}"
		if cs.kind == "tcp" {
			check = "{type: tcp, interval: 1s, timeout: 1s, rise: 1, fall: 1}"
		}
		fmt.Fprintf(&sb, "  - name: %s\n    address: %s\n    port: 80\n    check: %s\n    real_servers:\n", cs.name, cs.addr, check)
		for i, a := range cs.pool {
			if cs.in[i] {
				host, port, _ := net.SplitHostPort(a)
				fmt.Fprintf(&sb, "      - {address: %s, port: %s, forward: nat}\n", host, port)
			}
		}
	}
	// Configured-only: in the status, API and metrics, never in the
	// (fake) kernel, so no RRD files.
	for _, s := range w.services {
		fmt.Fprintf(&sb, "  - {name: %s, address: %s, port: 80, managed: false, real_servers: [", s.name, s.addr)
		for i, r := range s.reals {
			if i > 0 {
				sb.WriteString(", ")
			}
			fmt.Fprintf(&sb, "{address: %s}", r)
		}
		sb.WriteString("]}\n")
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(sb.String()), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// churn replaces 2% of the configured-only services, 10% of the real
// servers of 1% of them, and adds or removes one checked real server.
func (w *world) churn(srv *loadlab.Servers) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := len(w.services)
	reals := 0
	if n > 0 {
		reals = len(w.services[0].reals)
	}
	for range max(1, n/50) {
		i := w.rng.IntN(len(w.services))
		w.services = slices.Delete(w.services, i, i+1)
	}
	for len(w.services) < n {
		w.services = append(w.services, w.newService(reals))
	}
	for range max(1, n/100) {
		s := w.services[w.rng.IntN(len(w.services))]
		for range max(1, len(s.reals)/10) {
			s.reals[w.rng.IntN(len(s.reals))] = w.newReal()
		}
	}
	cs := w.checked[w.rng.IntN(len(w.checked))]
	i := w.rng.IntN(len(cs.pool))
	configured := 0
	for _, in := range cs.in {
		if in {
			configured++
		}
	}
	switch {
	case !cs.in[i]:
		if cs.down[i] { // comes back answering
			if _, err := srv.Up(i + w.poolBase(cs)); err != nil {
				return err
			}
			cs.down[i] = false
		}
		cs.in[i] = true
	case configured > checkedConfig/2 && !cs.down[i]:
		cs.in[i] = false
	}
	return nil
}

func (w *world) poolBase(cs *checkedService) int {
	return slices.Index(w.checked, cs) * checkedPool
}

// flip makes one configured checked server fail, or answer again (at
// most 3 down per service).
func (w *world) flip(srv *loadlab.Servers) (*flip, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := w.checked[w.rng.IntN(len(w.checked))]
	var cand []int
	for i, in := range cs.in {
		if in {
			cand = append(cand, i)
		}
	}
	if len(cand) == 0 {
		return nil, nil
	}
	i := cand[w.rng.IntN(len(cand))]
	downNow := 0
	for _, d := range cs.down {
		if d {
			downNow++
		}
	}
	idx := w.poolBase(cs) + i
	var at time.Time
	var err error
	switch {
	case cs.down[i]:
		at, err = srv.Up(idx)
	case downNow < 3:
		at, err = srv.Down(idx)
	default:
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	cs.down[i] = !cs.down[i]
	return &flip{addr: cs.pool[i], down: cs.down[i], at: at}, nil
}

// graphs are the images a user looks at: the director's, a checked
// service's and one of its servers'.
func (w *world) graphs() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	cs := w.checked[w.rng.IntN(len(w.checked))]
	svc := "tcp_" + cs.addr + "_80"
	var server string
	for i, a := range cs.pool {
		if cs.in[i] {
			host, port, _ := net.SplitHostPort(a)
			server = svc + "__" + host + "_" + port
			break
		}
	}
	ranges := []string{"hour", "day", "week"}
	r := ranges[w.rng.IntN(len(ranges))]
	out := []string{"/graphs/director/conns.png?range=" + r, "/graphs/service/" + svc + "/rate.png?range=" + r}
	if server != "" {
		out = append(out, "/graphs/server/"+server+"/weight.png?range="+r)
	}
	return out
}
