//go:build lab

package loadlab

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// The chaos test's settings. Checks are as tight as operators make them:
// one failure takes a server out.
const (
	chaosNoFile    = 1024             // lvsmon's soft and hard RLIMIT_NOFILE
	chaosIdle      = 3000             // idle connections in phase 1 (> chaosNoFile)
	chaosHold      = 15 * time.Second // how long they are held
	chaosFlooders  = 150              // concurrent HTTP clients in phases 2 and 3
	chaosFloodFor  = 15 * time.Second // phase 2
	chaosInterval  = time.Second
	chaosTimeout   = time.Second
	chaosFall      = 1
	chaosHTTPSvcs  = 3
	chaosHTTPReals = 25
	chaosTCPReals  = 20
	chaosToken     = "chaos-write-token-0123456789"
)

// TestChaos runs the lvsmon binary with a low open file limit and takes
// the director, not the real servers, to its limits: first thousands of
// idle connections to its web port (more than its file limit), then two
// CPU hogs and a flood of page and API requests. Throughout, no real
// server may be reported down and no weight may change: a check that
// failed for lvsmon's own trouble must be inconclusive. Then, still under
// the flood and the hogs, three real servers really fail (two refuse,
// one hangs), and each must go down within its detection bound.
//
// With the web port's connection cap (web.max_connections, lowered to 16
// at this file limit) lvsmon never runs out of descriptors in phase 1: it
// closes the idle connections instead, and the checks go on. Without the
// cap every check fails with EMFILE, which must then count inconclusive
// (lvsmon_checks_inconclusive_total{reason="fd_exhausted"}). Either way
// the test asserts that no check failed conclusively in phases 1 and 2,
// and logs what happened.
//
// The real servers run in a helper process (this test binary again, at a
// higher CPU priority), not limited by lvsmon's file limit: they stand for
// other machines.
func TestChaos(t *testing.T) {
	if testing.Short() {
		t.Skip("chaos test: not in -short")
	}
	ctx := t.Context()
	raiseOwnNoFile(t, chaosIdle+2000)
	// LVSMON_CHAOS_WEB adds to the web section, e.g. "max_connections:
	// 1000, max_concurrent_requests: 200" (and LVSMON_CHAOS_NOFILE=8192
	// to leave the cap room): the flood then reaches the checker.
	nofile, webExtra := chaosNoFile, ""
	if w := os.Getenv("LVSMON_CHAOS_WEB"); w != "" {
		webExtra = ", " + w
	}
	if n := os.Getenv("LVSMON_CHAOS_NOFILE"); n != "" {
		if _, err := fmt.Sscan(n, &nofile); err != nil {
			t.Fatalf("LVSMON_CHAOS_NOFILE=%q: %v", n, err)
		}
	}

	// The real servers.
	var specs []string
	for s := 1; s <= chaosHTTPSvcs; s++ {
		for i := 1; i <= chaosHTTPReals; i++ {
			specs = append(specs, fmt.Sprintf("http:127.77.%d.%d", s, i))
		}
	}
	for i := 1; i <= chaosTCPReals; i++ {
		specs = append(specs, fmt.Sprintf("tcp:127.77.%d.%d", chaosHTTPSvcs+1, i))
	}
	srv, err := StartServers(ctx, []string{os.Args[0]}, []string{serversEnv + "=" + strings.Join(specs, " ")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	// lvsmon.
	logs := &chaosLog{}
	d, dataDir := startLab(t, chaosConfig(srv.Addrs, webExtra), nofile, logs.add)
	soft, hard := d.Limits()
	t.Logf("lvsmon pid %d at %s, open files soft %s hard %s, %d real servers (%d http in %d services, %d tcp)",
		d.PID, d.URL, soft, hard, len(specs), chaosHTTPSvcs*chaosHTTPReals, chaosHTTPSvcs, chaosTCPReals)
	if soft != fmt.Sprint(nofile) || hard != fmt.Sprint(nofile) {
		t.Fatalf("lvsmon runs with open files %s/%s, want %d/%d", soft, hard, nofile, nofile)
	}
	m := &monitor{t: t, url: d.URL, c: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}

	// Warm-up: every server checked and passing, every weight 1.
	eventually(t, 60*time.Second, func() bool {
		mt, err := m.metrics()
		return err == nil && len(mt["lvsmon_real_server_up"]) == len(specs) && mt.Sum("lvsmon_real_server_up", nil) == float64(len(specs)) &&
			allWeights(mt, 1, len(specs))
	}, func() string { return "not every real server came up with weight 1:\n" + tail(d.LogText(), 40) })
	base, err := m.metrics()
	if err != nil {
		t.Fatal(err)
	}
	logs.mark() // IPVS writes from here on are changes
	srv.Stats() // reset the servers' gap measure
	t.Logf("warm-up done: %d servers up; conclusive check failures so far %.0f", len(specs), base.Sum("lvsmon_real_server_check_failures_total", nil))

	// Phase 1: idle connections, more than lvsmon's file limit.
	p1 := idlePhase(t, d.URL, chaosIdle, chaosHold)
	hits1, gap1, _ := srv.Stats()
	m1 := m.waitFresh(time.Now())
	p1.log(t)
	t.Logf("phase 1: the real servers saw %d checks so far; longest time a server went without a check: %s", hits1, gap1.Round(time.Millisecond))
	m.quiet(t, "phase 1 (idle connections)", logs, base, m1, len(specs))

	// Phases 2 and 3: two CPU hogs and the flood, until the end.
	t.Logf("phase 2 starts at %s", time.Now().Format("15:04:05.000"))
	stopHogs := startHogs(t, 2, 90*time.Second)
	defer stopHogs()
	fl := startFlood(d.URL, chaosFlooders, 60*time.Second)
	defer fl.stop()
	watch := m.watch(500 * time.Millisecond)
	time.Sleep(chaosFloodFor)
	_, gap2, _ := srv.Stats()
	m2 := m.waitFresh(time.Now())
	lat2 := watch.stop(nil)
	t.Logf("phase 2: flood %s; longest time a server went without a check: %s; max check duration seen %s, scheduling lag up to %s",
		fl.summary(), gap2.Round(time.Millisecond), lat2.maxCheck.Round(time.Millisecond), lat2.maxLag.Round(time.Millisecond))
	m.quiet(t, "phase 2 (CPU hogs and flood)", logs, m1, m2, len(specs))

	// Phase 3: real failures, still under the flood and the hogs.
	watch = m.watch(500 * time.Millisecond)
	type broken struct {
		idx   int
		how   string
		at    time.Time
		bound time.Duration
	}
	// A refused check is evidence at once: the next check (within one
	// interval) fails, fall failures take interval × fall, each as long as
	// the timeout at most, and 1 s for the event and the write. A hang
	// fails as a timeout, which the mass-failure guard treats as pending
	// until the other servers' results are in, one window (interval +
	// timeout) at most: that much more.
	refusedBound := chaosInterval*chaosFall + chaosTimeout + time.Second
	hangBound := refusedBound + chaosInterval + chaosTimeout
	breaks := []broken{{idx: 0, how: "refuses"}, {idx: 1, how: "refuses"}, {idx: chaosHTTPReals, how: "hangs"}}
	for i := range breaks {
		b := &breaks[i]
		var err error
		if b.how == "hangs" {
			b.at, err = srv.Hang(b.idx)
			b.bound = hangBound
		} else {
			b.at, err = srv.Down(b.idx)
			b.bound = refusedBound
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	brokenAddr := map[string]bool{}
	for _, b := range breaks {
		brokenAddr[srv.Addrs[b.idx]] = true
	}
	eventually(t, 30*time.Second, func() bool {
		evs := readEvents(t, dataDir)
		n := 0
		for _, b := range breaks {
			if _, ok := downEvent(evs, srv.Addrs[b.idx], b.at); ok {
				if _, ok := logs.zeroWeight(srv.Addrs[b.idx], b.at); ok {
					n++
				}
			}
		}
		return n == len(breaks)
	}, func() string {
		return fmt.Sprintf("not every broken server went down with weight 0 within 30 s; events: %v", readEvents(t, dataDir))
	})
	lat3 := watch.stop(brokenAddr)
	fl.stop()
	stopHogs()
	evs := readEvents(t, dataDir)
	for _, b := range breaks {
		addr := srv.Addrs[b.idx]
		ev, _ := downEvent(evs, addr, b.at)
		w, _ := logs.zeroWeight(addr, b.at)
		downIn, weightIn := ev.Time.Sub(b.at), w.Sub(b.at)
		t.Logf("phase 3: %s %s at %s: server_down after %s, weight 0 after %s (bound %s): %s",
			addr, b.how, b.at.Format("15:04:05.000"), downIn.Round(time.Millisecond), weightIn.Round(time.Millisecond), b.bound, ev.Message)
		if downIn > b.bound || weightIn > b.bound {
			t.Errorf("%s %s: detected after %s (event) and %s (weight), bound %s", addr, b.how, downIn, weightIn, b.bound)
		}
	}
	t.Logf("phase 3: flood %s; max check duration of the healthy servers %s, scheduling lag up to %s",
		fl.summary(), lat3.maxCheck.Round(time.Millisecond), lat3.maxLag.Round(time.Millisecond))

	// Nothing else went down or changed weight, over the whole test.
	for _, e := range evs {
		if e.Kind == "server_down" && !brokenAddrOfID(e.Server, brokenAddr) {
			t.Errorf("false server_down: %s %s", e.Time.Format(time.RFC3339Nano), e.Message)
		}
		if e.Kind == "guard_hold" || e.Kind == "guard_release" {
			t.Logf("guard event: %s %s", e.Kind, e.Message)
		}
	}
	for _, c := range logs.changes() {
		if !brokenAddr[c.Str("server")] {
			t.Errorf("weight change of a healthy server: %s", c.Raw)
		}
	}
	end, err := m.metrics()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("the whole run: inconclusive checks %s; conclusive failures %.0f (the broken servers' included); lvsmon: %d fds at the end",
		reasons(end), end.Sum("lvsmon_real_server_check_failures_total", nil)-base.Sum("lvsmon_real_server_check_failures_total", nil), fdsOf(d.PID))
	if err := d.Stop(); err != nil {
		t.Errorf("lvsmon: %v", err)
	}
}

// chaosConfig is lvsmon's config for the helper's servers: three http
// services and one tcp service, checked every second with fall 1.
func chaosConfig(addrs []string, webExtra string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "director: chaos\nstep: 5s\nipvs: {backend: fake}\nweb: {api_token: %q%s}\nvirtual_services:\n", chaosToken, webExtra)
	i := 0
	for s := 1; s <= chaosHTTPSvcs+1; s++ {
		n, typ := chaosHTTPReals, "http, path: /"
		if s > chaosHTTPSvcs {
			n, typ = chaosTCPReals, "tcp"
		}
		fmt.Fprintf(&sb, "  - name: svc%d\n    address: 10.77.0.%d\n    port: 80\n    check: {type: %s, interval: %s, timeout: %s, rise: 1, fall: %d}\n    real_servers:\n",
			s, s, typ, chaosInterval, chaosTimeout, chaosFall)
		for range n {
			host, port, _ := net.SplitHostPort(addrs[i])
			fmt.Fprintf(&sb, "      - {address: %s, port: %s, weight: 1, forward: nat}\n", host, port)
			i++
		}
	}
	return sb.String()
}

// startLab builds lvsmon and runs it with config cfg, the open file limit
// nofile and a data dir from chaosDataDir; onLine (may be nil) sees its
// log lines. lvsmon is killed, and its log shown on failure, at cleanup.
func startLab(t *testing.T, cfg string, nofile int, onLine func(LogLine)) (*Daemon, string) {
	t.Helper()
	bin, err := Build(t.Context(), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dataDir := chaosDataDir(t)
	cfgPath := filepath.Join(t.TempDir(), "lvsmon.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	d, err := StartDaemon(t.Context(), DaemonOptions{Binary: bin, NoFile: nofile, KeepLog: true, OnLine: onLine,
		Args: []string{"--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", dataDir}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if exited, _ := d.Exited(); !exited {
			d.Kill()
		}
		if t.Failed() {
			t.Logf("lvsmon's log (last 100 lines):\n%s", tail(d.LogText(), 100))
		}
	})
	return d, dataDir
}

// chaosDataDir is lvsmon's data dir: on /dev/shm when it is there, since
// each real server's RRD file is 5 MB of writes the test does not need
// on a disk (about 500 MB here, for the length of the test).
func chaosDataDir(t *testing.T) string {
	dir, err := os.MkdirTemp("/dev/shm", "lvsmon-chaos-")
	if err != nil {
		return t.TempDir()
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// raiseOwnNoFile makes sure this process can hold n descriptors.
func raiseOwnNoFile(t *testing.T, n uint64) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Cur >= n {
		return
	}
	lim.Cur = min(max(n, lim.Cur), lim.Max)
	if lim.Cur < n {
		lim.Cur, lim.Max = n, n // root may raise the hard limit
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("the test needs %d open files: %v", n, err)
	}
}

// chaosLog follows lvsmon's log: its IPVS writes after the warm-up.
type chaosLog struct {
	mu     sync.Mutex
	marked bool
	writes []LogLine
}

func (l *chaosLog) add(line LogLine) {
	if line.Msg != "IPVS changed" {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.marked {
		l.writes = append(l.writes, line)
	}
}

func (l *chaosLog) mark() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.marked = true
}

// changes are the IPVS writes since mark.
func (l *chaosLog) changes() []LogLine {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.writes)
}

// zeroWeight is when a write first set server addr's weight to 0 after
// from.
func (l *chaosLog) zeroWeight(addr string, from time.Time) (time.Time, bool) {
	for _, c := range l.changes() {
		if c.Str("server") == addr && !c.Time.Before(from) && strings.Contains(c.Str("reason"), "-> 0") {
			return c.Time, true
		}
	}
	return time.Time{}, false
}

// monitor reads lvsmon's metrics.
type monitor struct {
	t   *testing.T
	url string
	c   *http.Client
}

var chaosFamilies = []string{"lvsmon_real_server_up", "lvsmon_real_server_weight", "lvsmon_real_server_check_failures_total",
	"lvsmon_checks_inconclusive_total", "lvsmon_real_server_check_duration_seconds", "lvsmon_checker_scheduling_lag_seconds",
	"lvsmon_collector_last_sample_timestamp_seconds", "lvsmon_guard_holds", "lvsmon_real_server_down_held"}

func (m *monitor) metrics() (Metrics, error) {
	return GetMetrics(m.t.Context(), m.c, m.url+"/metrics", chaosFamilies...)
}

// problems are the status API's problems (the director's own trouble),
// one line each.
func (m *monitor) problems() ([]string, error) {
	req, _ := http.NewRequestWithContext(m.t.Context(), "GET", m.url+"/api/v1/status?limit=1", nil)
	resp, err := m.c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st struct {
		Problems []struct{ Kind, Severity, Message string } `json:"problems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, fmt.Errorf("status API (%s): %v", resp.Status, err)
	}
	var out []string
	for _, p := range st.Problems {
		out = append(out, fmt.Sprintf("%s %s: %s", p.Severity, p.Kind, p.Message))
	}
	return out, nil
}

// waitFresh returns the metrics of a snapshot sampled after since.
func (m *monitor) waitFresh(since time.Time) Metrics {
	var mt Metrics
	var err error
	eventually(m.t, 60*time.Second, func() bool {
		mt, err = m.metrics()
		return err == nil && mt.Max("lvsmon_collector_last_sample_timestamp_seconds") >= float64(since.UnixNano())/1e9
	}, func() string { return fmt.Sprintf("no fresh metrics from lvsmon: %v", err) })
	return mt
}

// quiet checks that nothing went down or changed between two scrapes:
// no server_down event, no IPVS write, every weight still 1, and every
// failed check counted inconclusive (the conclusive failure count has
// not moved).
func (m *monitor) quiet(t *testing.T, phase string, logs *chaosLog, before, after Metrics, n int) {
	t.Helper()
	failed := after.Sum("lvsmon_real_server_check_failures_total", nil) - before.Sum("lvsmon_real_server_check_failures_total", nil)
	incon := after.Sum("lvsmon_checks_inconclusive_total", nil) - before.Sum("lvsmon_checks_inconclusive_total", nil)
	t.Logf("%s: %.0f checks inconclusive (%s in all so far), %.0f conclusive failures; scheduling lag up to %s (last minute)",
		phase, incon, reasons(after), failed, secs(after.Max("lvsmon_checker_scheduling_lag_seconds")))
	if ps, err := m.problems(); err != nil {
		t.Logf("%s: status API: %v", phase, err)
	} else {
		t.Logf("%s: status API problems now: %d %q", phase, len(ps), ps)
	}
	if failed != 0 {
		t.Errorf("%s: %.0f checks failed conclusively: lvsmon's own trouble was taken for the servers'", phase, failed)
	}
	for _, c := range logs.changes() {
		t.Errorf("%s: weight change: %s", phase, c.Raw)
	}
	if !allWeights(after, 1, n) {
		t.Errorf("%s: not every weight is 1: %v", phase, after["lvsmon_real_server_weight"])
	}
	if up := after.Sum("lvsmon_real_server_up", nil); up != float64(n) {
		t.Errorf("%s: %.0f of %d servers up", phase, up, n)
	}
}

func allWeights(mt Metrics, w float64, n int) bool {
	ws := mt["lvsmon_real_server_weight"]
	if len(ws) != n {
		return false
	}
	for _, s := range ws {
		if s.Value != w {
			return false
		}
	}
	return true
}

func reasons(mt Metrics) string {
	var parts []string
	for _, s := range mt["lvsmon_checks_inconclusive_total"] {
		if s.Value > 0 {
			parts = append(parts, fmt.Sprintf("%s %.0f", s.Labels["reason"], s.Value))
		}
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func secs(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

// watcher scrapes lvsmon every so often for the longest check duration
// and scheduling lag.
type watcher struct {
	m       *monitor
	done    chan struct{}
	wg      sync.WaitGroup
	mu      sync.Mutex
	samples []Metrics
	fails   int
}

type latencies struct{ maxCheck, maxLag time.Duration }

func (m *monitor) watch(every time.Duration) *watcher {
	w := &watcher{m: m, done: make(chan struct{})}
	w.wg.Go(func() {
		tk := time.NewTicker(every)
		defer tk.Stop()
		for {
			select {
			case <-w.done:
				return
			case <-tk.C:
			}
			mt, err := m.metrics()
			w.mu.Lock()
			if err != nil {
				w.fails++
			} else {
				w.samples = append(w.samples, mt)
			}
			w.mu.Unlock()
		}
	})
	return w
}

// stop ends the watch and returns the longest check duration of the
// servers not in skip, and the largest lag.
func (w *watcher) stop(skip map[string]bool) latencies {
	close(w.done)
	w.wg.Wait()
	var l latencies
	for _, mt := range w.samples {
		for _, s := range mt["lvsmon_real_server_check_duration_seconds"] {
			if skip[net.JoinHostPort(s.Labels["real_address"], s.Labels["real_port"])] {
				continue
			}
			l.maxCheck = max(l.maxCheck, secs(s.Value))
		}
		l.maxLag = max(l.maxLag, secs(mt.Max("lvsmon_checker_scheduling_lag_seconds")))
	}
	return l
}

// idleResult is what became of phase 1's connections.
type idleResult struct {
	opened, dialFailed           int
	answered, closedAnswered     int
	unanswered, closedUnanswered int
	answeredLate                 int
	probesOK, probesFailed       int
	firstDialErr                 string
	maxAnswer                    time.Duration
	openFor                      time.Duration
}

func (r idleResult) log(t *testing.T) {
	t.Logf("phase 1: %d idle connections opened in %s (%d dials failed: %s); %d answered (%d of them within the hold only after a wait, longest %s), of which lvsmon closed %d; %d never answered, of which lvsmon closed %d",
		r.opened, r.openFor.Round(time.Millisecond), r.dialFailed, r.firstDialErr, r.answered, r.answeredLate, r.maxAnswer.Round(time.Millisecond),
		r.closedAnswered, r.unanswered, r.closedUnanswered)
	t.Logf("phase 1: fresh GET /healthz during the hold (2 s timeout): %d answered, %d not", r.probesOK, r.probesFailed)
}

// idlePhase opens n connections to lvsmon's web port, sends one request
// on each and holds them idle (keep-alive) for hold, then closes them.
func idlePhase(t *testing.T, url string, n int, hold time.Duration) idleResult {
	host := strings.TrimPrefix(url, "http://")
	var (
		mu  sync.Mutex
		r   idleResult
		wg  sync.WaitGroup
		sem = make(chan struct{}, 200) // dials in flight
	)
	start := time.Now()
	holdEnd := start.Add(hold)
	var opened atomic.Int64
	allOpen := make(chan struct{})
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.DialTimeout("tcp", host, 3*time.Second)
			<-sem
			if opened.Add(1) == int64(n) {
				close(allOpen)
			}
			if err != nil {
				mu.Lock()
				r.dialFailed++
				if r.firstDialErr == "" {
					r.firstDialErr = err.Error()
				}
				mu.Unlock()
				return
			}
			defer conn.Close()
			sent := time.Now()
			fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: lvsmon\r\nUser-Agent: chaos-idle-%d\r\n\r\n", i)
			conn.SetReadDeadline(holdEnd)
			br := bufio.NewReader(conn)
			resp, err := http.ReadResponse(br, nil)
			answered := err == nil
			var took time.Duration
			if answered {
				took = time.Since(sent)
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				// Idle from now on: a read returns only when lvsmon
				// closes the connection, or at the end of the hold.
				_, err = br.ReadByte()
			}
			var ne net.Error
			closed := err != nil && !(errors.As(err, &ne) && ne.Timeout())
			mu.Lock()
			defer mu.Unlock()
			r.opened++
			switch {
			case answered:
				r.answered++
				r.maxAnswer = max(r.maxAnswer, took)
				if took > time.Second {
					r.answeredLate++
				}
				if closed {
					r.closedAnswered++
				}
			default:
				r.unanswered++
				if closed {
					r.closedUnanswered++
				}
			}
		}()
	}
	<-allOpen
	r.openFor = time.Since(start)
	// While the connections are held: can a new client get an answer?
	probe := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	for time.Now().Before(holdEnd.Add(-2 * time.Second)) {
		resp, err := probe.Get(url + "/healthz")
		mu.Lock()
		if err == nil {
			r.probesOK++
		} else {
			r.probesFailed++
		}
		mu.Unlock()
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		time.Sleep(time.Second)
	}
	wg.Wait()
	return r
}

// flood is many clients asking for the status page and API at once.
type flood struct {
	stopOnce sync.Once
	done     chan struct{}
	wg       sync.WaitGroup

	mu     sync.Mutex
	codes  map[int]int
	errs   int
	lat    []time.Duration
	errMsg string
}

// startFlood starts n clients, each with its own connection, asking in
// turn for / and /api/v1/status until stop or limit.
func startFlood(url string, n int, limit time.Duration) *flood {
	f := &flood{done: make(chan struct{}), codes: map[int]int{}}
	deadline := time.Now().Add(limit)
	for i := range n {
		f.wg.Go(func() {
			c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer c.CloseIdleConnections()
			paths := []string{"/", "/api/v1/status"}
			for j := i; time.Now().Before(deadline); j++ {
				select {
				case <-f.done:
					return
				default:
				}
				t0 := time.Now()
				resp, err := c.Get(url + paths[j%2])
				if err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				d := time.Since(t0)
				f.mu.Lock()
				if err != nil {
					f.errs++
					if f.errMsg == "" {
						f.errMsg = err.Error()
					}
				} else {
					f.codes[resp.StatusCode]++
					f.lat = append(f.lat, d)
				}
				f.mu.Unlock()
				if err != nil || resp.StatusCode != 200 {
					time.Sleep(100 * time.Millisecond) // as a browser or script would, not a tight loop
				}
			}
		})
	}
	return f
}

func (f *flood) stop() {
	f.stopOnce.Do(func() { close(f.done) })
	f.wg.Wait()
}

// summary says what the flood got so far (and resets its counts).
func (f *flood) summary() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	codes := make([]string, 0, len(f.codes))
	for c, n := range f.codes {
		codes = append(codes, fmt.Sprintf("%d×%d", n, c))
	}
	sort.Strings(codes)
	slices.Sort(f.lat)
	q := func(p float64) time.Duration {
		if len(f.lat) == 0 {
			return 0
		}
		return f.lat[int(math.Min(float64(len(f.lat)-1), p*float64(len(f.lat))))].Round(time.Millisecond)
	}
	s := fmt.Sprintf("%d clients: answers %s, median %s, p99 %s, max %s; %d errors", chaosFlooders, strings.Join(codes, " "), q(0.5), q(0.99), q(1), f.errs)
	if f.errMsg != "" {
		s += " (first: " + f.errMsg + ")"
	}
	f.codes, f.lat, f.errs, f.errMsg = map[int]int{}, nil, 0, ""
	return s
}

// startHogs runs n busy loops (each ends by itself after limit) and
// returns their stop.
func startHogs(t *testing.T, n int, limit time.Duration) func() {
	var cmds []*exec.Cmd
	for range n {
		cmd := exec.Command("timeout", fmt.Sprint(int(limit.Seconds())), "sh", "-c", "while :; do :; done")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		cmds = append(cmds, cmd)
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			for _, c := range cmds {
				c.Process.Signal(syscall.SIGTERM) // timeout passes it on to its loop
				c.Wait()
			}
		})
	}
}

type chaosEvent struct {
	Time    time.Time `json:"time"`
	Kind    string    `json:"kind"`
	Server  string    `json:"server"`
	Message string    `json:"message"`
}

// readEvents reads lvsmon's event log from its data dir.
func readEvents(t *testing.T, dataDir string) []chaosEvent {
	b, err := os.ReadFile(filepath.Join(dataDir, "events", "events.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	var out []chaosEvent
	for line := range strings.SplitSeq(string(b), "\n") {
		var e chaosEvent
		if json.Unmarshal([]byte(line), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// downEvent is the first server_down event of the server at addr after
// from.
func downEvent(evs []chaosEvent, addr string, from time.Time) (chaosEvent, bool) {
	for _, e := range evs {
		if e.Kind == "server_down" && !e.Time.Before(from) && brokenAddrOfID(e.Server, map[string]bool{addr: true}) {
			return e, true
		}
	}
	return chaosEvent{}, false
}

// brokenAddrOfID: whether a real server id (…__127.77.1.1_8080) is one
// of addrs (host:port).
func brokenAddrOfID(id string, addrs map[string]bool) bool {
	_, dest, ok := strings.Cut(id, "__")
	if !ok {
		return false
	}
	i := strings.LastIndexByte(dest, '_')
	if i < 0 {
		return false
	}
	return addrs[net.JoinHostPort(dest[:i], dest[i+1:])]
}

func fdsOf(pid int) int {
	n, _ := FDs(pid)
	return n
}

// eventually: the shared poll (testutil.Eventually).
var eventually = testutil.Eventually

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
