// Package app builds and runs the lvsmon daemon. New constructs every
// component in dependency order, each given what it needs through its
// constructor, and undoes what it built when a later step fails; Run
// starts the goroutines and blocks until its context ends; Reload swaps
// in a new config whole. cmd/lvsmon only parses flags, handles signals
// and calls these.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/graphs"
	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/buildinfo"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/peers"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/reconcile"
	"github.com/lvsmon/lvsmon/selfcheck"
	"github.com/lvsmon/lvsmon/web"
)

// Options are what New needs; `lvsmon run` and `lvsmon demo` fill them
// differently.
type Options struct {
	Config *config.Config
	// Reader is the IPVS backend. When it is also an lvs.Backend (and
	// the config does not name procfs) the reconciler writes through it.
	// The caller closes it after Close.
	Reader lvs.Reader
	// Load re-reads the config for a reload; nil when there is no file.
	Load func() (*config.Config, error)
	// ConfigPath is watched for changes (a reload on change); "" for none.
	ConfigPath string
	Log        *slog.Logger
	Version    string
	// Build is the binary's build, lvsmon_build_info's labels; its
	// Version defaults to Version.
	Build buildinfo.Info
	// WebConfigFile is the web port's TLS and basic auth config
	// (--web.config.file, the Prometheus exporter toolkit's format); ""
	// for plain HTTP without users. It is read again on reload.
	WebConfigFile string
	// TelemetryPath is where Prometheus metrics are served
	// (--web.telemetry-path); "" is /metrics.
	TelemetryPath string
	// Probe checks one real server; nil means the real check types.
	Probe checker.ProbeFunc
	// DryRun logs the reconciler's plan instead of applying it.
	DryRun bool
	// RoleSources are HA role sources besides the ha section's (the
	// demo's simulated pair).
	RoleSources []RoleSource
	// Extra run alongside the daemon until it stops (the demo's
	// simulation).
	Extra []func(ctx context.Context, ev *events.Log)
	// Ready, when set, is called with the web listeners' addresses, in
	// the config's order, once the daemon answers (tests learn the ports
	// from it).
	Ready func(addrs []net.Addr)
	// Notify, when set, hears readiness, reloads and the stop (systemd's
	// sd_notify in `lvsmon run`).
	Notify Notifier
}

// RoleSource is a named HA role source. A source without Run is reported
// by another one's goroutine (its name is still expected by the Monitor).
type RoleSource struct {
	Name string
	Run  func(ctx context.Context, report func(ha.Report)) error
}

// App is the running daemon. It implements web.Control.
type App struct {
	log     *slog.Logger
	build   buildinfo.Info // Version defaults to Options.Version
	metrics string         // the telemetry path
	cur     atomic.Pointer[config.Config]
	load    func() (*config.Config, error)
	cfgPath string
	webFile string
	access  atomic.Pointer[web.Access] // nil: no web config file
	extra   []func(context.Context, *events.Log)
	ready   func([]net.Addr)
	notify  Notifier
	// reads tracks the collector's IPVS reads (readiness, liveness).
	reads *readTracker
	// now is Alive's clock (tests move it).
	now func() time.Time

	coll     *collector.Collector
	ev       *events.Log
	store    *graphs.Store
	renderer *graphs.Renderer
	ovr      *reconcile.Overrides
	chk      *checker.Checker
	rec      *reconcile.Reconciler // nil when the backend cannot write
	role     *haRole               // nil without an ha section
	self     *selfcheck.Runner     // nil without ha.self_checks
	alerts   *alerts               // nil without an alerting section
	peers    *peers.Monitor        // the peer directors (none: no series, no section)
	srv      *web.Server
	lns      []net.Listener // the config's listen addresses, in order

	// cleanup undoes New's steps, newest first (Close).
	cleanup []func()

	reloadMu sync.Mutex
	// judged is the hash of the config file content the last Reload read
	// (applied or rejected): the file watcher does not reload it again
	// after a SIGHUP or an API reload already did.
	judged atomic.Pointer[[32]byte]
}

// New builds the daemon without starting anything: no goroutine runs and
// no event is written until Run. A failure undoes the steps before it.
func New(o Options) (_ *App, err error) {
	cfg := o.Config
	a := &App{log: o.Log, build: o.Build, metrics: o.TelemetryPath, load: o.Load, cfgPath: o.ConfigPath, webFile: o.WebConfigFile, extra: o.Extra, ready: o.Ready,
		notify: o.Notify, now: time.Now}
	if a.build.Version == "" {
		a.build.Version = o.Version
	}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	for _, w := range cfg.Warnings {
		a.log.Warn("config warning", "problem", w.String())
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	a.cur.Store(cfg)
	a.reads = newReadTracker(o.Reader, time.Now)
	a.coll = collector.New(a.reads, cfg.Step.D(), a.component("collector"))
	if a.ev, err = events.Open(filepath.Join(cfg.DataDir, "events"), events.DefaultMax, a.component("events")); err != nil {
		return nil, err
	}
	a.onClose(func() { a.ev.Close() })
	if err := a.newGraphs(cfg); err != nil {
		return nil, err
	}
	if a.ovr, err = reconcile.OpenOverridesLog(cfg.DataDir, a.component("overrides")); err != nil {
		return nil, err
	}

	// The checker kicks the reconciler through a trigger made first, so
	// neither needs the other built before it.
	kick := reconcile.NewTrigger()
	probeFn := o.Probe
	if probeFn == nil {
		probeFn = probe.ProbeServer
		// The real check types: an external check's dynamic exit status
		// and a file check's value set weights.
		a.chk = checker.NewWeight(probe.ProbeServerWeight, a.ev, a.component("checker"), kick.Kick)
	} else {
		a.chk = checker.New(probeFn, a.ev, a.component("checker"), kick.Kick)
	}
	a.self = a.newSelfCheck(cfg, probeFn)
	act := func() bool { return true }
	if cfg.HA.Enabled() || len(o.RoleSources) > 0 {
		a.role = newHARole(cfg, a.ev, a.component("ha"), o.RoleSources, kick.Kick)
		act = a.role.acting
	}
	if b, ok := o.Reader.(lvs.Backend); ok && cfg.IPVS.Backend != config.BackendProcfs {
		ro := reconcile.Options{Backend: b, Config: a.cur.Load, Health: a.chk.Health, Weights: a.chk.Weights, Overrides: a.ovr, Events: a.ev,
			Log: a.component("reconciler"), DryRun: o.DryRun, Act: act, Trigger: kick}
		if cfg.IPVS.Backend == config.BackendNetlink {
			// Only the kernel's table has other writers: keepalived,
			// ldirectord and the like on this director.
			ro.Processes = func() ([]reconcile.Process, error) { return reconcile.ScanProcesses(a.cur.Load().IPVS.ProcRoot) }
		}
		a.rec = reconcile.New(ro)
	} else {
		a.log.Info("the IPVS backend is read-only: health is checked and shown, the table is never written", "backend", cfg.IPVS.Backend)
	}
	if cfg.Alerting != nil {
		// Built before Run writes this start's first event: on a first
		// start the pipeline begins at the end of the log.
		deps := alerting.PipelineDeps{Describe: a.describeService, Name: a.serviceName, Services: a.serviceIDs}
		if a.role != nil {
			deps.IsMaster = a.role.isMaster
		}
		if a.alerts, err = newAlerts(cfg, a.ev, deps, a.alertState, a.component("alerting")); err != nil {
			return nil, err
		}
	}
	a.peers = peers.New(cfg.Peers, a.localSide, a.event, a.component("peers"))
	if err := a.newWeb(cfg); err != nil {
		return nil, err
	}
	return a, nil
}

// component is the logger of one part of the daemon.
func (a *App) component(name string) *slog.Logger { return a.log.With("component", name) }

// onClose pushes an undo step for Close.
func (a *App) onClose(fn func()) { a.cleanup = append(a.cleanup, fn) }

// Close releases what New acquired (the listener, the RRD store, the
// event log), newest first. Call it after Run has returned; it is safe
// to call more than once.
func (a *App) Close() {
	for i := len(a.cleanup) - 1; i >= 0; i-- {
		a.cleanup[i]()
	}
	a.cleanup = nil
}

// newGraphs opens the RRD store under the data dir and its renderer.
func (a *App) newGraphs(cfg *config.Config) error {
	log := a.component("graphs")
	store, err := graphs.NewStore(graphs.StoreOptions{
		Dir: filepath.Join(cfg.DataDir, "rrd"), Step: cfg.Step.D(), Rrdcached: cfg.Graphs.Rrdcached, Batch: cfg.Batch(), Log: log,
	})
	if err != nil {
		return err
	}
	a.store = store
	a.onClose(func() { store.Close() })
	a.renderer = graphs.NewRenderer(store, a.ev)
	a.renderer.Name = a.serviceName
	a.renderer.ConfiguredWeight = a.configuredWeight
	a.renderer.SetCacheBytes(int64(cfg.Web.GraphCacheMB) << 20)
	return nil
}

// newWeb builds the web server with its limits and metrics, and binds
// every listen address (a port in use fails New, not Run, and the ones
// bound before it are closed by New's undo).
func (a *App) newWeb(cfg *config.Config) error {
	// The web port's limits: its connections are capped below what the
	// open file limit leaves after the health checks' reserve.
	log := a.component("web")
	limiter := web.NewLimiter(webLimits(cfg, raiseNofile(a.log), log), log)
	extra := []prometheus.Collector{graphs.NewMetrics(a.store, a.renderer), checker.NewMetrics(a.chk, a.cur.Load), limiter}
	if a.webFile != "" {
		acc, err := web.LoadAccess(a.webFile)
		if err != nil {
			return fmt.Errorf("--web.config.file: %w", err)
		}
		a.access.Store(acc)
		log.Info("web config loaded", "file", a.webFile, "tls", acc.TLS != nil, "users", len(acc.Users()))
	}
	if err := web.CheckAnonymous(cfg, a.access.Load()); err != nil {
		return err
	}
	src := web.Source{
		Access:  a.access.Load,
		Control: a, Server: a.server, History: a.history, SorryActive: a.sorryActive, Reconciler: a.reconcilerStatus,
		Snapshot: a.coll.Snapshot, Health: a.coll.Health, Config: a.cur.Load, Version: a.build.Version,
		Graphs: grapher{a.renderer}, Events: a.ev, RRD: a.rrdStatus, Limiter: limiter,
		Problems: a.problems, Peers: a.peerStatus,
	}
	extra = append(extra, peers.NewMetrics(a.peers))
	if a.rec != nil {
		extra = append(extra, reconcile.NewMetrics(a.rec, a.cur.Load))
	}
	if al := a.alerts; al != nil {
		if m := al.mail; m != nil {
			src.Alerting = m.status
			src.Mail = m.summary
			extra = append(extra, alerting.NewMetrics(m.disp, m.pipe))
		}
		// Always: a reload may add channels (none yet: no series).
		extra = append(extra, alerting.NewChannelMetrics(al.alertmanager, al.hookDispatchers))
	}
	if a.self != nil {
		extra = append(extra, selfcheck.NewMetrics(a.self))
	}
	if a.role != nil {
		src.Role = a.role.status
		extra = append(extra, ha.NewMetrics(a.role.mon, a.role.acting))
	}
	src.Metrics = collector.MetricsHandler(a.coll, a.cur.Load, collector.MetricsOptions{Build: buildInfo(a.build), Extra: extra}, a.component("metrics"))
	src.MetricsPath = a.metrics
	a.srv = web.New(src, log)
	a.coll.Subscribe(a.srv.Observe) // the overview's sparklines
	for _, addr := range cfg.Listen {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", addr, err)
		}
		a.lns = append(a.lns, ln)
		a.onClose(func() { ln.Close() })
	}
	return nil
}

// addrs are the bound listen addresses, in the config's order.
func (a *App) addrs() []net.Addr {
	out := make([]net.Addr, len(a.lns))
	for i, ln := range a.lns {
		out[i] = ln.Addr()
	}
	return out
}

// joinAddrs writes addresses as the log shows them: comma-separated, so
// a single address reads as it always did.
func joinAddrs(addrs []net.Addr) string {
	s := make([]string, len(addrs))
	for i, a := range addrs {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

// Run starts every part and blocks until ctx ends or the web server
// fails, then stops them all and waits. Nothing is written to IPVS on the
// way out. Call it once.
func (a *App) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	cfg := a.cur.Load()
	var wg sync.WaitGroup
	started := time.Now()
	// The checker knows every checked server (as "no result yet") before
	// the reconciler's first round, so that round keeps what the kernel
	// has instead of taking a server without a result for unchecked.
	a.chk.Apply(cfg)
	wg.Go(func() { a.chk.Run(ctx) })
	if a.rec != nil {
		wg.Go(func() { a.rec.Run(ctx, cfg.Step.D()) })
	}
	wg.Go(func() { a.chk.CloseOpenOutages(ctx, started) })
	wg.Go(func() { a.store.Run(ctx, a.coll.Subscribe) })
	wg.Go(func() {
		if err := a.store.RunArchiver(ctx, cfg.Graphs.ArchiveSchedule, cfg.Graphs.ArchiveAfter.D(), a.component("graphs")); err != nil {
			a.log.Error("the RRD archive job cannot run", "err", err)
		}
	})
	if a.alerts != nil {
		a.alerts.run(ctx, &wg)
	}
	if a.role != nil {
		a.role.start(cfg)
		wg.Go(func() { a.role.tick(ctx) })
	}
	if a.self != nil {
		wg.Go(func() { a.self.Run(ctx) })
	}
	if a.cfgPath != "" {
		wg.Go(func() { a.watchConfig(ctx, a.cfgPath, 2*time.Second) })
	}
	wg.Go(func() { a.peers.Run(ctx) })
	a.log.Info("lvsmon started", "version", a.build.Version, "director", cfg.Director, "listen", joinAddrs(a.addrs()),
		"backend", cfg.IPVS.Backend, "step", cfg.Step.D(), "services", len(cfg.VirtualServices), "data_dir", cfg.DataDir)
	a.event(events.Event{Kind: events.DaemonStart, Message: fmt.Sprintf("lvsmon %s started: %d virtual services, %s backend",
		a.build.Version, len(cfg.VirtualServices), cfg.IPVS.Backend)})
	wg.Go(func() { a.coll.Run(ctx) })
	var serveErr error
	wg.Go(func() {
		if err := a.srv.Serve(ctx, a.lns...); err != nil {
			serveErr = err
			cancel(err)
		}
	})
	for _, fn := range a.extra {
		wg.Go(func() { fn(ctx, a.ev) })
	}
	if a.ready != nil {
		a.ready(a.addrs())
	}
	if a.notify != nil {
		// Ready as /-/ready decides it: the web serves (its listeners
		// were bound in New) and the first IPVS read has returned; a
		// failing read is said in the status, not waited out.
		select {
		case <-a.reads.first:
			a.notify.Ready(a.readyStatus(len(cfg.VirtualServices)))
		case <-ctx.Done():
		}
	}
	<-ctx.Done()
	if a.notify != nil {
		a.notify.Stopping()
	}
	a.log.Info("lvsmon stopping", "reason", context.Cause(ctx))
	a.event(events.Event{Kind: events.DaemonStop, Reason: fmt.Sprint(context.Cause(ctx)), Message: fmt.Sprintf("lvsmon stopping: %v", context.Cause(ctx))})
	wg.Wait()
	if a.role != nil {
		a.role.stop()
	}
	if serveErr != nil && !errors.Is(serveErr, context.Canceled) {
		return serveErr
	}
	a.log.Info("lvsmon stopped; the IPVS table was left as it is")
	return nil
}

// event appends e to the event log; a failure is logged, never fatal.
func (a *App) event(e events.Event) {
	if _, err := a.ev.Append(e); err != nil {
		a.log.Error("writing an event failed", "err", err)
	}
}

// buildInfo is the build as lvsmon_build_info labels it.
func buildInfo(b buildinfo.Info) collector.BuildInfo {
	return collector.BuildInfo{Version: b.Version, Revision: b.Revision, Branch: b.Branch,
		GoVersion: b.GoVersion, GoOS: b.GoOS, GoArch: b.GoArch, Tags: b.Tags, Date: b.Date}
}

// OpenBackend opens the IPVS backend cfg names. The fake backend of a
// daemon starts empty: it is for dry runs and tests.
func OpenBackend(cfg *config.Config) (lvs.Reader, error) {
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
