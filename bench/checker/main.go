// Command checker measures lvsmon's health checker against Debian's
// ldirectord in the same run, on the same loopback real servers, and
// prints the figures, the ratios and the targets of issue 5 (make bench
// runs it):
//
//	go run ./bench/checker [-lvsmon 100,500,5000] [-ldirectord 100,500] [-fork no,yes]
//	                       [-window 6s] [-per-service 10] [-floor 500,5000]
//
// The whole run takes about five and a half minutes on 2 CPUs, most of it
// ldirectord at 500 servers: 36 s to its first full round (twice, for
// fork=no and fork=yes), and with tarpits a serial round of about a minute
// that a detection has to wait for.
//
// Three kinds of process, so that each tool's CPU and memory are its own:
//
//   - "checker servers": the real servers, N loopback HTTP servers on
//     distinct 127.20.x.y addresses (GET /.health.html → "OK"), with a
//     control endpoint that makes chosen servers fail (503) or tarpits
//     (accept, never answer), and that counts the checks each server sees
//     (the tool-neutral measure of checks per second, check period and
//     time to the first full round).
//   - "checker lvsmon": lvsmon's checker (checker.New with
//     probe.ProbeServer) and reconciler on lvs.Fake, reporting every
//     weight it writes.
//   - ldirectord (Debian's, /usr/sbin/ldirectord), checktype=negotiate,
//     service=http, with a fake ipvsadm (bench/checker/ipvsadm) keeping
//     its table in a file and logging every run.
//
// Each tool is measured at each size with every server healthy, then
// with 10% of the servers tarpitted: checks per second achieved (counted
// by the servers), the period at which each server is checked, CPU per
// check (user + system of the tool's process tree, reaped children such
// as ipvsadm runs included), memory (PSS of the tree), and detection
// latency: K servers break at a known time, and the latency is until the
// tool's table holds weight 0 for each of them. A bare Go loop on lvsmon's
// schedule gives the floor: what fresh loopback connections cost here
// whatever the checker's code.
package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/probe"
)

func main() {
	if len(os.Args) > 1 {
		var err error
		switch os.Args[1] {
		case "servers":
			err = runServers(os.Args[2:])
		case "lvsmon":
			err = runLvsmon(os.Args[2:])
		case "bare":
			err = runBare(os.Args[2:])
		default:
			err = run()
		}
		if err != nil {
			fmt.Fprintf(os.Stderr, "checker %s: %v\n", os.Args[1], err)
			os.Exit(1)
		}
		return
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "checker:", err)
		os.Exit(1)
	}
}

// opts are the benchmark's settings.
type opts struct {
	interval, timeout time.Duration
	fall              int
	perSvc            int
	port              int
	window            time.Duration
}

func ints(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 10 {
			return nil, fmt.Errorf("bad size %q (at least 10)", f)
		}
		out = append(out, n)
	}
	return out, nil
}

func run() error {
	lvsmonSizes := flag.String("lvsmon", "100,500,5000", "lvsmon sizes (real servers)")
	ldSizes := flag.String("ldirectord", "100,500", "ldirectord sizes (real servers); empty: skip ldirectord")
	forks := flag.String("fork", "no,yes", "ldirectord fork settings to run")
	ldBin := flag.String("ldirectord-bin", "/usr/sbin/ldirectord", "ldirectord")
	window := flag.Duration("window", 6*time.Second, "measuring window per phase")
	perSvc := flag.Int("per-service", 10, "real servers per virtual service")
	port := flag.Int("port", 28080, "port of the real servers (on 127.20.x.y)")
	capacity := flag.Bool("capacity", true, "first measure the machine's fresh-connection check rate")
	floorSizes := flag.String("floor", "500,5000", "sizes at which to measure a bare Go loop on lvsmon's schedule (of those lvsmon runs)")
	flag.Parse()

	o := opts{interval: time.Second, timeout: time.Second, fall: 1, perSvc: *perSvc, port: *port, window: *window}
	lvSizes, err := ints(*lvsmonSizes)
	if err != nil {
		return err
	}
	ldSz, err := ints(*ldSizes)
	if err != nil {
		return err
	}
	flSizes, err := ints(*floorSizes)
	if err != nil {
		return err
	}
	var forkSet []bool
	for f := range strings.SplitSeq(*forks, ",") {
		switch strings.TrimSpace(f) {
		case "no":
			forkSet = append(forkSet, false)
		case "yes":
			forkSet = append(forkSet, true)
		case "":
		default:
			return fmt.Errorf("-fork: %q is not yes or no", f)
		}
	}
	if len(lvSizes) == 0 && len(ldSz) == 0 {
		return errors.New("nothing to measure: -lvsmon and -ldirectord are both empty")
	}
	maxN := slices.Max(append(slices.Clone(lvSizes), ldSz...))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "lvsmon-bench-checker-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	self, err := os.Executable()
	if err != nil {
		return err
	}

	var fakeIpvsadm, ldVersion string
	if len(ldSz) > 0 && len(forkSet) > 0 {
		if _, err := os.Stat(*ldBin); err != nil {
			return fmt.Errorf("ldirectord: %w (scripts/deps.sh bench installs Debian's ldirectord; -ldirectord= skips it)", err)
		}
		fakeIpvsadm = filepath.Join(dir, "fake-ipvsadm")
		if err := buildFakeIpvsadm(ctx, fakeIpvsadm); err != nil {
			return err
		}
		ldVersion = "ldirectord"
		if out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", "ldirectord").Output(); err == nil {
			ldVersion += " " + string(out)
		}
	}

	// The real servers, on the first free port from o.port on.
	var srvProc *proc
	var addr string
	for try := 0; ; try++ {
		srvCmd := exec.Command(self, "servers", "-n", strconv.Itoa(maxN), "-port", strconv.Itoa(o.port))
		var errBuf bytes.Buffer
		srvCmd.Stderr = &errBuf
		srvOut, err := srvCmd.StdoutPipe()
		if err != nil {
			return err
		}
		if srvProc, err = startProc(srvCmd); err != nil {
			return err
		}
		line, err := bufio.NewReader(srvOut).ReadString('\n')
		var ok bool
		if addr, ok = strings.CutPrefix(strings.TrimSpace(line), "control "); err == nil && ok {
			break
		}
		srvProc.stop(time.Second)
		if !strings.Contains(errBuf.String(), "address already in use") || try == 9 {
			return fmt.Errorf("real servers did not start: %v %s", err, errBuf.String())
		}
		o.port++
	}
	defer srvProc.stop(5 * time.Second)
	srv := &serversClient{base: "http://" + addr, hc: &http.Client{Timeout: 10 * time.Second}}

	fmt.Printf("Health checks of loopback HTTP real servers (GET /.health.html, \"OK\"), every %s, timeout %s, fall %d,\n",
		o.interval, o.timeout, o.fall)
	fmt.Printf("%d real servers per virtual service, fake IPVS tables; %d CPUs, %s. Real servers in a process of their own.\n",
		o.perSvc, runtime.NumCPU(), runtime.Version())
	fmt.Printf("lvsmon: checker.New(probe.ProbeServer) + checker.NewReconciler on lvs.Fake, in a child process.\n")
	if ldVersion != "" {
		fmt.Printf("%s: checktype=negotiate service=http, checkinterval=%d negotiatetimeout=%d failurecount=1 quiescent=yes, fake ipvsadm.\n",
			ldVersion, int(o.interval.Seconds()), int(o.timeout.Seconds()))
	}
	fmt.Println()

	if *capacity {
		n := min(1000, maxN)
		pr, raw, err := machineCapacity(ctx, n, o, 3*time.Second)
		if err != nil {
			return err
		}
		fmt.Printf("This machine, %d servers, 64 goroutines back to back for 3 s: lvsmon's HTTP probe (probe.ProbeServer) %.0f checks/s;\n"+
			"a bare fresh-connection GET loop %.0f/s. (Client and servers share the %d CPUs.)\n\n", n, pr, raw, runtime.NumCPU())
	}

	var results []*result
	runTool := func(t tool, n int) {
		fmt.Fprintf(os.Stderr, "checker bench: %s at %d servers...\n", t.Name(), n)
		start := time.Now()
		r := measure(ctx, srv, t, n, o)
		results = append(results, r)
		if r.err != nil {
			fmt.Fprintf(os.Stderr, "checker bench: %s at %d: %v\n", t.Name(), n, r.err)
		}
		fmt.Fprintf(os.Stderr, "checker bench: %s at %d done in %s\n", t.Name(), n, time.Since(start).Round(time.Second))
	}
	newLvsmon := func() tool {
		d, _ := os.MkdirTemp(dir, "lvsmon-")
		return &lvsmonTool{self: self, dir: d, interval: o.interval, timeout: o.timeout, fall: o.fall, perSvc: o.perSvc, port: o.port}
	}
	newLd := func(fork bool) tool {
		d, _ := os.MkdirTemp(dir, "ldirectord-")
		return &ldirectordTool{bin: *ldBin, ipvsadm: fakeIpvsadm, dir: d, fork: fork, perSvc: o.perSvc, port: o.port,
			interval: int(o.interval.Seconds()), timeout: int(o.timeout.Seconds())}
	}
	sizes := slices.Sorted(func(yield func(int) bool) {
		seen := map[int]bool{}
		for _, n := range append(slices.Clone(lvSizes), ldSz...) {
			if !seen[n] {
				seen[n] = true
				if !yield(n) {
					return
				}
			}
		}
	})
	var floors []*result
	for _, n := range sizes {
		if slices.Contains(lvSizes, n) {
			runTool(newLvsmon(), n)
			if slices.Contains(flSizes, n) {
				fmt.Fprintf(os.Stderr, "checker bench: bare Go loop at %d servers...\n", n)
				r := measureFloor(ctx, srv, &bareTool{self: self, port: o.port, interval: o.interval, timeout: o.timeout}, n, o)
				if r.err != nil {
					fmt.Fprintf(os.Stderr, "checker bench: bare Go loop at %d: %v\n", n, r.err)
				}
				floors = append(floors, r)
			}
		}
		if slices.Contains(ldSz, n) {
			for _, f := range forkSet {
				runTool(newLd(f), n)
			}
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	report(os.Stdout, results, floors, o)
	return nil
}

// buildFakeIpvsadm builds bench/checker/ipvsadm.
func buildFakeIpvsadm(ctx context.Context, out string) error {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = "/usr/local/go/bin/go"
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/lvsmon/lvsmon/bench/checker/ipvsadm")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the fake ipvsadm: %v\n%s", err, b)
	}
	return nil
}

// phase is one measuring window and one detection test.
type phase struct {
	window    time.Duration
	checks    int64
	rate      float64 // checks/s, as the servers counted them
	wanted    float64 // servers / interval
	periodMed time.Duration
	periodMax time.Duration // the longest any server waited between two checks
	twice     int           // servers checked at least twice in the window
	cpu       time.Duration
	pss       int64
	procs     int
	probes    int64 // lvsmon's own count of probes in the window (-1)
	rounds    int64 // lvsmon's reconciler rounds in the window
	ipvsadm   int   // ipvsadm runs in the window (-1)
	detect    []time.Duration
	missed    int // broken servers not at weight 0 within bound
	bound     time.Duration
	err       error
}

// cpuPerCheck is the CPU used per check at the rate measured.
func (p *phase) cpuPerCheck() time.Duration {
	if p.rate == 0 {
		return 0
	}
	return time.Duration(p.cpu.Seconds() / (p.rate * p.window.Seconds()) * float64(time.Second))
}

func (p *phase) cpuShare() float64 { return p.cpu.Seconds() / p.window.Seconds() }

type result struct {
	tool, how    string
	n            int
	err          error
	firstRound   time.Duration // from start to every server checked once, as the servers saw it
	firstRoundIn time.Duration // lvsmon's own: from Apply to every server with a result (-1)
	startCPU     time.Duration // CPU the tool used until its first full round
	rounds       int64         // lvsmon's reconciler rounds until 1 s after it
	ipvsadmFirst int           // ipvsadm runs by then (-1)
	healthy      phase
	tarpit       phase
	tarpits      int
	k            int
}

// spread picks k of n servers, evenly, at offset within each stride.
func spread(n, k, offset int) []int {
	var ids []int
	stride := n / k
	for j := range k {
		ids = append(ids, j*stride+offset%stride)
	}
	return ids
}

// measure runs one tool at n servers through its phases.
func measure(ctx context.Context, srv *serversClient, t tool, n int, o opts) *result {
	r := &result{tool: t.Name(), n: n, firstRoundIn: -1, ipvsadmFirst: -1}
	r.k = max(10, n/100)
	fail := func(err error) *result {
		if r.err == nil {
			r.err = err
		}
		return r
	}
	if err := srv.allOK(ctx); err != nil {
		return fail(err)
	}
	if err := srv.reset(ctx); err != nil {
		return fail(err)
	}
	t0 := time.Now()
	err := t.Start(ctx, n)
	defer t.Stop() // also a child that started but failed to get ready
	if err != nil {
		return fail(err)
	}
	if ld, ok := t.(*ldirectordTool); ok {
		r.how = ld.how
	}

	// The first full round: every server checked once.
	limit := 60*time.Second + time.Duration(n)*200*time.Millisecond
	for {
		seen, latest, err := srv.seen(ctx, n)
		if err != nil {
			return fail(err)
		}
		if seen == n {
			r.startCPU = treeCPU(t.Pid())
			r.firstRound = latest.Sub(t0)
			if runs := t.IpvsadmRuns(latest); runs >= 0 {
				r.ipvsadmFirst = runs
			}
			break
		}
		if time.Since(t0) > limit {
			return fail(fmt.Errorf("only %d of %d servers checked within %s\n%s", seen, n, limit, t.Log()))
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return fail(err)
		}
	}
	if err := sleep(ctx, time.Second); err != nil { // let the first round's writes end
		return fail(err)
	}
	if own := t.Own(ctx); own.firstRound >= 0 {
		r.firstRoundIn, r.rounds = own.firstRound, own.rounds
	}

	// All healthy.
	r.healthy = window(ctx, srv, t, n, o)
	if r.healthy.err != nil {
		return fail(r.healthy.err)
	}
	r.healthy.bound = detectBound(t, n, &r.healthy, o)
	broken := spread(n, r.k, 2)
	modes := make([]string, len(broken))
	for i := range modes {
		modes[i] = "fail"
	}
	if err := detection(ctx, srv, t, broken, modes, &r.healthy); err != nil {
		return fail(err)
	}
	if err := restore(ctx, srv, t, broken, r.healthy.bound); err != nil {
		return fail(err)
	}

	// 10% tarpitted: servers 5, 15, 25, ... (one in each virtual service
	// of ten).
	var tarpits []int
	for i := 5; i < n; i += 10 {
		tarpits = append(tarpits, i)
	}
	r.tarpits = len(tarpits)
	if err := srv.setMode(ctx, "tarpit", tarpits); err != nil {
		return fail(err)
	}
	if err := sleep(ctx, o.interval*time.Duration(o.fall)+o.timeout); err != nil {
		return fail(err)
	}
	r.tarpit = window(ctx, srv, t, n, o)
	if r.tarpit.err != nil {
		return fail(r.tarpit.err)
	}
	r.tarpit.bound = detectBound(t, n, &r.tarpit, o)
	broken = spread(n, r.k, 7)
	for i := range modes {
		modes[i] = "fail"
		if i%2 == 1 {
			modes[i] = "tarpit"
		}
	}
	if err := detection(ctx, srv, t, broken, modes, &r.tarpit); err != nil {
		return fail(err)
	}
	return r
}

// detectBound is how long to wait for a detection: three times lvsmon's
// worst case; for ldirectord, what its measured round needs.
func detectBound(t tool, n int, p *phase, o opts) time.Duration {
	worst := o.interval*time.Duration(o.fall) + o.timeout
	if _, ok := t.(*lvsmonTool); ok {
		return 3*worst + 2*time.Second
	}
	period := o.interval + o.timeout
	if p.rate > 0 {
		period = max(period, time.Duration(float64(n)/p.rate*float64(time.Second))+o.interval)
	}
	return min(150*time.Second, 10*time.Second+2*period)
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// window measures the tool for o.window: checks as the servers count
// them, the check period per server, CPU and memory.
func window(ctx context.Context, srv *serversClient, t tool, n int, o opts) phase {
	p := phase{window: o.window, wanted: float64(n) / o.interval.Seconds(), probes: -1, ipvsadm: -1}
	if err := srv.reset(ctx); err != nil {
		p.err = err
		return p
	}
	pid := t.Pid()
	own0 := t.Own(ctx)
	cpu0, t0 := treeCPU(pid), time.Now()
	runs0 := t.IpvsadmRuns(time.Time{})
	if err := sleep(ctx, o.window); err != nil {
		p.err = err
		return p
	}
	p.cpu, p.window = treeCPU(pid)-cpu0, time.Since(t0)
	if runs := t.IpvsadmRuns(time.Time{}); runs >= 0 {
		p.ipvsadm = runs - runs0
	}
	p.pss, p.procs = treePSS(pid), treeSize(pid)
	if own1 := t.Own(ctx); own0.probes >= 0 && own1.probes >= 0 {
		p.probes, p.rounds = own1.probes-own0.probes, own1.rounds-own0.rounds
	}
	st, err := srv.stats(ctx, n)
	if err != nil {
		p.err = err
		return p
	}
	var periods []time.Duration
	var perServer float64 // the sum of each server's own check rate
	for i := range n {
		p.checks += st.Checks[i]
		if st.Checks[i] >= 2 && st.Last[i] > st.First[i] {
			p.twice++
			period := time.Duration((st.Last[i] - st.First[i]) / (st.Checks[i] - 1))
			periods = append(periods, period)
			perServer += 1 / period.Seconds()
			p.periodMax = max(p.periodMax, time.Duration(st.MaxGap[i]))
		}
	}
	// A serial checker checks every server once per round, all within a
	// fraction of it: a window holds a whole number of rounds, give or
	// take one, and counting checks in it would be off by up to a round.
	// When every server was checked at least twice, the rate is the sum
	// of each server's measured rate; otherwise the count in the window.
	p.rate = float64(p.checks) / p.window.Seconds()
	if p.twice == n {
		p.rate = perServer
	}
	if len(periods) > 0 {
		p.periodMed = quantile(periods, 0.5)
	}
	return p
}

// detection breaks servers ids (modes[i]: fail or tarpit) at once and
// waits until the tool's table has weight 0 for each, or p.bound.
func detection(ctx context.Context, srv *serversClient, t tool, ids []int, modes []string, p *phase) error {
	byMode := map[string][]int{}
	for i, id := range ids {
		byMode[modes[i]] = append(byMode[modes[i]], id)
	}
	at := time.Now()
	for m, ids := range byMode {
		if err := srv.setMode(ctx, m, ids); err != nil {
			return err
		}
	}
	found := make([]bool, len(ids))
	p.detect = p.detect[:0]
	for {
		for i, id := range ids {
			if found[i] {
				continue
			}
			if w0, ok := t.Weights().first(netip.AddrPortFrom(serverAddr(id), uint16(portOf(t))).String(), at, true); ok {
				found[i] = true
				p.detect = append(p.detect, w0.Sub(at))
			}
		}
		if len(p.detect) == len(ids) || time.Since(at) > p.bound {
			break
		}
		if err := sleep(ctx, 10*time.Millisecond); err != nil {
			return err
		}
	}
	p.missed = len(ids) - len(p.detect)
	return nil
}

// restore heals servers ids and waits until the tool has given each its
// weight back (or bound).
func restore(ctx context.Context, srv *serversClient, t tool, ids []int, bound time.Duration) error {
	at := time.Now()
	if err := srv.setMode(ctx, "ok", ids); err != nil {
		return err
	}
	for time.Since(at) < bound {
		back := 0
		for _, id := range ids {
			if _, ok := t.Weights().first(netip.AddrPortFrom(serverAddr(id), uint16(portOf(t))).String(), at, false); ok {
				back++
			}
		}
		if back == len(ids) {
			return nil
		}
		if err := sleep(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
	return nil
}

func portOf(t tool) int {
	switch t := t.(type) {
	case *lvsmonTool:
		return t.port
	case *ldirectordTool:
		return t.port
	}
	return 0
}

// machineCapacity is what this machine does flat out against n of the
// servers: lvsmon's probe, and a bare loop of fresh-connection GETs.
func machineCapacity(ctx context.Context, n int, o opts, d time.Duration) (probeRate, raw float64, err error) {
	cfg, err := config.Parse("capacity.yaml", []byte(benchConfig(n, o.perSvc, o.port, o.interval, o.timeout, o.fall, os.TempDir())))
	if err != nil {
		return 0, 0, err
	}
	type target struct {
		vs *config.VirtualService
		r  *config.RealServer
	}
	var targets []target
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		for j := range vs.Reals {
			targets = append(targets, target{vs, &vs.Reals[j]})
		}
	}
	loop := func(check func(i int) error) (float64, error) {
		var next, okN, bad atomic.Int64
		var firstErr atomic.Value
		stop := time.Now().Add(d)
		var wg sync.WaitGroup
		for range 64 {
			wg.Go(func() {
				for time.Now().Before(stop) && ctx.Err() == nil {
					i := int(next.Add(1)) % len(targets)
					if err := check(i); err != nil {
						bad.Add(1)
						firstErr.CompareAndSwap(nil, err)
					} else {
						okN.Add(1)
					}
				}
			})
		}
		wg.Wait()
		if bad.Load() > okN.Load()/100 {
			return 0, fmt.Errorf("capacity loop: %d of %d checks failed: %v", bad.Load(), bad.Load()+okN.Load(), firstErr.Load())
		}
		return float64(okN.Load()) / d.Seconds(), nil
	}
	probeRate, err = loop(func(i int) error {
		c, cancel := context.WithTimeout(ctx, o.timeout)
		defer cancel()
		return probe.ProbeServer(c, targets[i].vs, targets[i].r, targets[i].vs.Check)
	})
	if err != nil {
		return 0, 0, err
	}
	time.Sleep(time.Second)
	raw, err = loop(func(i int) error {
		conn, err := net.DialTimeout("tcp", targets[i].r.Key.String(), o.timeout)
		if err != nil {
			return err
		}
		defer conn.Close()
		conn.SetDeadline(time.Now().Add(o.timeout))
		if _, err := io.WriteString(conn, "GET /.health.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"); err != nil {
			return err
		}
		b, err := io.ReadAll(conn)
		if err != nil {
			return err
		}
		if !bytes.HasPrefix(b, []byte("HTTP/1.1 200")) || !bytes.HasSuffix(b, []byte("OK")) {
			return errors.New("not OK")
		}
		return nil
	})
	time.Sleep(time.Second)
	return probeRate, raw, err
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
