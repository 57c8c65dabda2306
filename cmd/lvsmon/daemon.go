package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/web"
)

// errInvalidConfig: the config did not validate; its problems have been
// printed already.
var errInvalidConfig = errors.New("invalid config")

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprintln(stderr, "usage: lvsmon check-config FILE") }
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, err := config.Load(fs.Arg(0))
	if err != nil {
		printConfigErrors(stderr, err)
		return errInvalidConfig
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	fmt.Fprintf(stdout, "%s: valid (%d virtual services, %d real servers)\n", fs.Arg(0), len(cfg.VirtualServices), countReals(cfg))
	return nil
}

func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, p := range errs {
			fmt.Fprintf(w, "error: %s\n", p)
		}
		fmt.Fprintf(w, "%d error(s)\n", len(errs))
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

func countReals(cfg *config.Config) int {
	n := 0
	for _, vs := range cfg.VirtualServices {
		n += len(vs.Reals)
	}
	return n
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, "")
	path := fs.String("config", "/etc/lvsmon/lvsmon.yaml", "config file")
	dryRun := fs.Bool("dry-run", false, "check and plan, but log the IPVS changes instead of making them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "run: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	load := func() (*config.Config, error) {
		cfg, err := config.Load(*path)
		if err != nil {
			return nil, err
		}
		c.override(cfg)
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		printConfigErrors(stderr, err)
		return errInvalidConfig
	}
	backend, err := openBackend(cfg)
	if err != nil {
		return err
	}
	defer backend.Close()
	return serve(ctx, daemonOpts{cfg: cfg, reader: backend, load: load, log: log, dryRun: *dryRun, cfgPath: *path})
}

// override applies command-line flags over the config.
func (c *common) override(cfg *config.Config) {
	if c.listen != "" {
		cfg.Listen = c.listen
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	if c.nodeExporterCompat {
		cfg.Metrics.NodeExporterCompatible = true
	}
}

// openBackend opens the IPVS backend the config names. The fake backend
// of a daemon starts empty: it is for dry runs and tests.
func openBackend(cfg *config.Config) (lvs.Reader, error) {
	switch cfg.IPVS.Backend {
	case config.BackendNetlink:
		n, err := lvs.NewNetlink()
		if err != nil {
			return nil, err
		}
		return n, nil
	case config.BackendProcfs:
		p := lvs.NewProcfs(cfg.IPVS.ProcRoot)
		p.HZ = cfg.IPVS.ProcHZ
		return p, nil
	case config.BackendFake:
		return lvs.NewFake(lvs.Table{}), nil
	}
	return nil, fmt.Errorf("unknown backend %q", cfg.IPVS.Backend)
}

// daemonOpts is what serve needs; run and demo fill it differently.
type daemonOpts struct {
	cfg    *config.Config
	reader lvs.Reader
	// load re-reads the config on SIGHUP; nil when there is no file.
	load func() (*config.Config, error)
	log  *slog.Logger
	// ready, if set, is called with the web listener's address once the
	// daemon answers (tests use it to learn the port).
	ready func(addr net.Addr)
	// extra goroutines to run alongside (the demo's simulation).
	extra []func(ctx context.Context, ev *events.Log)
	// probe checks one real server; nil means the real check types.
	probe checker.ProbeFunc
	// dryRun logs the reconciler's plan instead of applying it.
	dryRun bool
	// cfgPath is watched for changes (reload on change); "" for none.
	cfgPath string
	// roleSources are extra HA role sources (the demo's simulated pair),
	// run besides those of the ha section.
	roleSources []roleSource
}

// roleSource is a named HA role source.
type roleSource struct {
	name string
	run  func(ctx context.Context, report func(ha.Report)) error
}

// serve runs the collector and the web server until SIGINT/SIGTERM or
// ctx ends. On SIGHUP it reloads the config: an invalid config is logged
// and the running one kept. Nothing is written to IPVS on the way out.
func serve(ctx context.Context, o daemonOpts) error {
	log := o.log
	for _, w := range o.cfg.Warnings {
		log.Warn("config warning", "problem", w.String())
	}
	if err := os.MkdirAll(o.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}
	var cur atomic.Pointer[config.Config]
	cur.Store(o.cfg)

	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	coll := collector.New(o.reader, o.cfg.Step.D(), log.With("component", "collector"))
	ev, err := events.Open(filepath.Join(o.cfg.DataDir, "events"), events.DefaultMax, log.With("component", "events"))
	if err != nil {
		return err
	}
	defer ev.Close()
	var wg sync.WaitGroup
	goFn := func(fn func()) {
		wg.Add(1)
		go func() { defer wg.Done(); fn() }()
	}
	store, renderer, err := startGraphs(ctx, o.cfg, cur.Load, coll, ev, log.With("component", "graphs"), goFn)
	if err != nil {
		stop()
		wg.Wait()
		return err
	}
	defer store.Close()
	probeFn := o.probe
	if probeFn == nil {
		probeFn = probe.ProbeServer
	}
	var role *haRole
	act := func() bool { return true }
	if o.cfg.HA.Enabled() || len(o.roleSources) > 0 {
		role = newHARole(o.cfg, ev, log.With("component", "ha"), o.roleSources)
		act = role.acting
	}
	// The mail pipeline comes before the checker and daemon_start: its
	// first start begins at the end of the event log.
	var (
		mail *mailer
		dir  *director
	)
	if o.cfg.Alerting != nil {
		deps := alerting.PipelineDeps{Describe: describeService(&cur, coll, &dir), Name: serviceName(&cur), Services: serviceIDs(&cur)}
		if role != nil {
			deps.IsMaster = role.isMaster
		}
		if mail, err = newMailer(o.cfg, ev, deps, log.With("component", "alerting")); err != nil {
			stop()
			wg.Wait()
			return err
		}
	}
	started := time.Now()
	d, err := startChecker(ctx, &cur, o.reader, probeFn, o.dryRun, act, ev, log, goFn)
	if err != nil {
		stop()
		wg.Wait()
		return err
	}
	dir = d
	d.mail = mail
	goFn(func() { d.closeOpenOutages(ctx, started) })
	if mail != nil {
		mail.run(ctx, goFn)
	}
	if role != nil {
		// The sources start once the reconciler they wake exists.
		role.changed = d.kick
		goFn(func() { role.tick(ctx) })
		role.start(ctx, o.cfg)
		goFn(func() { <-ctx.Done(); role.stop() })
		d.role, d.ctx = role, ctx
	}
	d.load, d.coll = o.load, coll
	if o.cfgPath != "" {
		goFn(func() { d.watchConfig(ctx, o.cfgPath, 2*time.Second) })
	}
	// The web port's limits: its connections are capped below what the
	// open file limit leaves after the health checks' reserve.
	webLog := log.With("component", "web")
	limiter := web.NewLimiter(webLimits(o.cfg, raiseNofile(log), webLog), webLog)
	renderer.SetCacheBytes(int64(o.cfg.Web.GraphCacheMB) << 20)
	extra := []prometheus.Collector{newRRDMetrics(store, renderer), newCheckerMetrics(d), limiter}
	src := web.Source{
		Control: d, Servers: d.servers, SorryActive: d.sorryActive, Reconciler: d.reconcilerStats,
		Snapshot: coll.Snapshot, Health: coll.Health, Config: cur.Load, Version: buildVersion(),
		Graphs: grapher{renderer}, Events: ev, RRD: func() any { return store.Health() }, Limiter: limiter,
		Problems: d.problems,
	}
	if mail != nil {
		src.Alerting = mail.status
		src.Mail = mail.summary
		extra = append(extra, newMailMetrics(mail))
	}
	if role != nil {
		src.Role = role.status
		extra = append(extra, newRoleMetrics(role))
	}
	src.Metrics = collector.MetricsHandler(coll, cur.Load, collector.MetricsOptions{Version: buildVersion(), Extra: extra}, log.With("component", "metrics"))
	srv := web.New(src, webLog)

	ln, err := net.Listen("tcp", o.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", o.cfg.Listen, err)
	}
	log.Info("lvsmon started", "version", buildVersion(), "director", o.cfg.Director, "listen", ln.Addr().String(),
		"backend", o.cfg.IPVS.Backend, "step", o.cfg.Step.D(), "services", len(o.cfg.VirtualServices), "data_dir", o.cfg.DataDir)
	if _, err := ev.Append(events.Event{Kind: events.DaemonStart, Message: fmt.Sprintf("lvsmon %s started: %d virtual services, %s backend",
		buildVersion(), len(o.cfg.VirtualServices), o.cfg.IPVS.Backend)}); err != nil {
		log.Error("writing an event failed", "err", err)
	}

	errc := make(chan error, 1)
	wg.Add(2)
	go func() { defer wg.Done(); coll.Run(ctx) }()
	go func() {
		defer wg.Done()
		if err := srv.Serve(ctx, ln); err != nil {
			select {
			case errc <- err:
			default:
			}
			stop()
		}
	}()
	for _, fn := range o.extra {
		goFn(func() { fn(ctx, ev) })
	}
	if o.ready != nil {
		o.ready(ln.Addr())
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case <-hup:
			d.Reload()
		}
	}
	log.Info("lvsmon stopping", "reason", context.Cause(ctx))
	if _, err := ev.Append(events.Event{Kind: events.DaemonStop, Reason: fmt.Sprint(context.Cause(ctx)), Message: fmt.Sprintf("lvsmon stopping: %v", context.Cause(ctx))}); err != nil {
		log.Error("writing an event failed", "err", err)
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
	}
	log.Info("lvsmon stopped; the IPVS table was left as it is")
	return nil
}
