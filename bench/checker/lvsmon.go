package main

// The lvsmon side ("checker lvsmon"), in a process of its own so that its
// CPU and memory are lvsmon's alone: the config lvsmon would load, the
// checker with probe.ProbeServer (wrapped to count the probes) and the
// reconciler writing to lvs.Fake, as lvsmon run wires them. Every write
// that sets a real server's weight is printed on stdout as
// "W <unix ns> <ip:port> <weight>" when the fake table holds it; the
// line "stats" on stdin is answered with "stats <probes> <ns from Apply
// to the first full round, -1 before> <reconciler rounds>".

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"runtime/pprof"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/reconcile"
)

// benchConfig is the YAML of n HTTP real servers, perService to a
// virtual service, checked as the benchmark asks.
func benchConfig(n, perService, port int, interval, timeout time.Duration, fall int, dataDir string) string {
	var sb strings.Builder
	fmt.Fprintf(&sb, "director: bench\ndata_dir: %s\nstep: 10s\nipvs: {backend: fake}\nvirtual_services:\n", dataDir)
	for i := range n {
		if i%perService == 0 {
			j := i / perService
			fmt.Fprintf(&sb, "  - name: vs%d\n    protocol: tcp\n    address: %s\n    port: 80\n    scheduler: wrr\n    on_failure: quiescent\n",
				j, vipAddr(j))
			fmt.Fprintf(&sb, "    check: {type: http, path: /.health.html, expect: \"OK\", interval: %s, timeout: %s, rise: 1, fall: %d}\n",
				interval, timeout, fall)
			sb.WriteString("    real_servers:\n")
		}
		fmt.Fprintf(&sb, "      - {address: %s, port: %d, weight: 1, forward: nat}\n", serverAddr(i), port)
	}
	return sb.String()
}

// vipAddr is virtual service j's address. No traffic goes there: the
// tables are fakes.
func vipAddr(j int) string { return fmt.Sprintf("10.%d.%d.%d", 100+j/62500, j/250%250, j%250+1) }

// recorder is the fake kernel table, telling the bench about every
// weight it holds.
type recorder struct {
	*lvs.Fake
	mu  sync.Mutex
	out *bufio.Writer
}

func (r *recorder) weight(d lvs.DestKey, w int32) {
	now := time.Now().UnixNano()
	r.mu.Lock()
	fmt.Fprintf(r.out, "W %d %s %d\n", now, d, w)
	r.out.Flush()
	r.mu.Unlock()
}

func (r *recorder) CreateDest(ctx context.Context, k lvs.ServiceKey, d lvs.Dest) error {
	err := r.Fake.CreateDest(ctx, k, d)
	if err == nil {
		r.weight(d.Key, d.Weight)
	}
	return err
}

func (r *recorder) UpdateDest(ctx context.Context, k lvs.ServiceKey, d lvs.Dest) error {
	err := r.Fake.UpdateDest(ctx, k, d)
	if err == nil {
		r.weight(d.Key, d.Weight)
	}
	return err
}

func (r *recorder) SetWeight(ctx context.Context, k lvs.ServiceKey, dk lvs.DestKey, w int32) error {
	err := r.Fake.SetWeight(ctx, k, dk, w)
	if err == nil {
		r.weight(dk, w)
	}
	return err
}

func runLvsmon(args []string) error {
	fs := flag.NewFlagSet("lvsmon", flag.ContinueOnError)
	n := fs.Int("n", 100, "real servers")
	perService := fs.Int("per-service", 10, "real servers per virtual service")
	port := fs.Int("port", 28080, "real servers' port")
	interval := fs.Duration("interval", time.Second, "check interval")
	timeout := fs.Duration("timeout", time.Second, "check timeout")
	fall := fs.Int("fall", 1, "failures before down")
	dir := fs.String("dir", os.TempDir(), "data dir")
	logPath := fs.String("log", "", "log file (default: discard)")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}

	cfg, err := config.Parse("bench.yaml", []byte(benchConfig(*n, *perService, *port, *interval, *timeout, *fall, *dir)))
	if err != nil {
		return err
	}
	var logw io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			return err
		}
		defer f.Close()
		logw = f
	}
	log := slog.New(slog.NewTextHandler(logw, &slog.HandlerOptions{Level: slog.LevelInfo}))

	// The probes, counted; the first full round is when every server has
	// had one result.
	index := map[lvs.DestKey]int{}
	for _, vs := range cfg.VirtualServices {
		for _, r := range vs.Reals {
			index[r.Key] = len(index)
		}
	}
	done := make([]atomic.Bool, len(index))
	var probes, distinct atomic.Int64
	var applied time.Time
	firstRound := atomic.Int64{}
	firstRound.Store(-1)
	counted := func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
		err := probe.ProbeServer(ctx, vs, r, c)
		probes.Add(1)
		if i, ok := index[r.Key]; ok && done[i].CompareAndSwap(false, true) {
			if distinct.Add(1) == int64(len(done)) {
				firstRound.Store(int64(time.Since(applied)))
			}
		}
		return err
	}

	out := bufio.NewWriterSize(os.Stdout, 64<<10)
	b := &recorder{Fake: lvs.NewFake(lvs.Table{}), out: out}
	var cur atomic.Pointer[config.Config]
	cur.Store(cfg)
	kick := reconcile.NewTrigger()
	chk := checker.New(counted, nil, log.With("component", "checker"), kick.Kick)
	rec := reconcile.New(reconcile.Options{Backend: b, Config: cur.Load, Health: chk.Health, Log: log.With("component", "reconciler"), Trigger: kick})

	var wg sync.WaitGroup
	wg.Go(func() { rec.Run(ctx, cfg.Step.D()) })
	applied = time.Now()
	chk.Apply(cfg)
	wg.Go(func() { chk.Run(ctx) })

	b.mu.Lock()
	fmt.Fprintln(out, "ready")
	out.Flush()
	b.mu.Unlock()
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if sc.Text() == "stats" {
				b.mu.Lock()
				fmt.Fprintf(out, "stats %d %d %d\n", probes.Load(), firstRound.Load(), rec.Stats().Rounds)
				out.Flush()
				b.mu.Unlock()
			}
		}
		stop() // stdin closed: the bench is gone
	}()
	<-ctx.Done()
	wg.Wait()
	return nil
}
