package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/reconcile"
	"github.com/lvsmon/lvsmon/web"
)

// director ties the running pieces that a reload or an operator changes:
// the config in force, the checker, the reconciler and the overrides. It
// implements web.Control.
type director struct {
	cur  *atomic.Pointer[config.Config]
	load func() (*config.Config, error)
	coll *collector.Collector
	ev   *events.Log
	log  *slog.Logger

	mail *mailer // nil without an alerting section
	role *haRole // nil without an ha section
	// ctx is the daemon's, for what a reload starts (role sources).
	ctx context.Context

	chk *checker.Checker
	rec *reconcile.Reconciler // nil when the backend cannot write
	ovr *reconcile.Overrides

	reloadMu sync.Mutex
	// judged is the hash of the config file content the last Reload read
	// (applied or rejected): the file watcher does not reload it again
	// after a SIGHUP or an API reload already did.
	judged atomic.Pointer[[32]byte]
}

// startChecker opens the overrides, starts the checker and, when the
// backend can write, the reconciler.
func startChecker(ctx context.Context, cur *atomic.Pointer[config.Config], reader lvs.Reader, probe checker.ProbeFunc, dryRun bool,
	act func() bool, ev *events.Log, log *slog.Logger, goFn func(func())) (*director, error) {
	cfg := cur.Load()
	ovr, err := reconcile.OpenOverridesLog(cfg.DataDir, log.With("component", "overrides"))
	if err != nil {
		return nil, err
	}
	d := &director{cur: cur, ev: ev, log: log, ovr: ovr}
	kick := reconcile.NewTrigger()
	d.chk = checker.New(probe, ev, log.With("component", "checker"), kick.Kick)
	// The checker knows every checked server (as "no result yet") before
	// the reconciler's first round, so that round keeps what the kernel
	// has instead of taking a server without a result for unchecked.
	d.chk.Apply(cfg)
	if b, ok := reader.(lvs.Backend); ok && cfg.IPVS.Backend != config.BackendProcfs {
		d.rec = reconcile.New(reconcile.Options{Backend: b, Config: cur.Load, Health: d.chk.Health, Overrides: ovr, Events: ev,
			Log: log.With("component", "reconciler"), DryRun: dryRun, Act: act, Trigger: kick})
		goFn(func() { d.rec.Run(ctx, cfg.Step.D()) })
	} else {
		log.Info("the IPVS backend is read-only: health is checked and shown, the table is never written", "backend", cfg.IPVS.Backend)
	}
	goFn(func() { d.chk.Run(ctx) })
	return d, nil
}

// SetOverride implements web.Control.
func (d *director) SetOverride(id, mode, by string) error {
	cfg := d.cur.Load()
	var found *config.VirtualService
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		for _, r := range vs.Reals {
			if lvs.DestID(vs.Key, r.Key) == id {
				found = vs
			}
		}
	}
	if found == nil {
		return fmt.Errorf("%w: %q", web.ErrUnknownServer, id)
	}
	if err := d.ovr.Set(id, reconcile.Override(mode), by); err != nil {
		return err
	}
	to, msg := mode, fmt.Sprintf("%s: %s set by %s", found.Name, mode, by)
	if mode == "" {
		to, msg = events.Enabled, fmt.Sprintf("%s: override cleared (enabled) by %s", found.Name, by)
	}
	if _, err := d.ev.Append(events.Event{Kind: events.Override, Service: found.Key.ID(), Server: id, To: to, Actor: by, Message: msg}); err != nil {
		d.log.Error("writing an event failed", "err", err)
	}
	if d.rec != nil {
		d.rec.Kick()
	}
	return nil
}

// ReleaseHolds implements web.Control: an operator believes the failures
// the mass-failure guard holds.
func (d *director) ReleaseHolds(by string) int {
	n := d.chk.ReleaseHolds(by)
	if n > 0 && d.rec != nil {
		d.rec.Kick()
	}
	return n
}

// problems are the director's own troubles for the status page and API:
// inconclusive checks, mass-failure holds, a damaged overrides file, IPVS
// writes the kernel refuses.
func (d *director) problems() []web.Problem {
	var out []web.Problem
	if s := d.chk.Local().Summary(); s != "" {
		out = append(out, web.Problem{Source: "checker", Kind: "local_trouble", Severity: "critical", Message: s})
	}
	for _, h := range d.chk.Holds() {
		where := "service " + h.Scope
		if h.Scope == checker.DirectorScope {
			where = "the whole director"
		}
		until := "until an operator releases it (POST /api/v1/guard/release)"
		if !h.Until.IsZero() {
			until = "until " + h.Until.Local().Format("15:04:05") + " at the latest, or POST /api/v1/guard/release"
		}
		out = append(out, web.Problem{Source: "guard", Kind: "mass_failure_hold", Severity: "critical", Since: h.Since,
			Message: fmt.Sprintf("mass failure on %s (%s): the downs of %d real servers are held, %d of them still failing; nothing is written for them %s",
				where, h.Class, len(h.Servers), h.Failing, until)})
	}
	if p := d.ovr.Problem(); p != "" {
		out = append(out, web.Problem{Source: "overrides", Kind: "damaged_file", Severity: "warning", Message: p})
	}
	if d.rec != nil {
		if st := d.rec.Stats(); st.LastError != "" && st.LastErrorTime.After(st.LastOK) {
			out = append(out, web.Problem{Source: "reconciler", Kind: "ipvs_write_failed", Severity: "critical", Since: st.LastErrorTime,
				Message: "the kernel refused the last IPVS change: " + st.LastError})
		}
	}
	return out
}

// servers merges health, last check and override per real server.
func (d *director) servers() map[string]web.ServerInfo {
	out := map[string]web.ServerInfo{}
	for _, st := range d.chk.Status() {
		out[st.ID] = web.ServerInfo{Health: st.Health, Check: st}
	}
	for id, e := range d.ovr.Entries() {
		in := out[id]
		in.Override = map[string]any{"mode": string(e.Mode), "since": e.Since, "by": e.By}
		in.Mode = string(e.Mode)
		out[id] = in
	}
	return out
}

// kick asks the reconciler for a round now (after a role change).
func (d *director) kick() {
	if d.rec != nil {
		d.rec.Kick()
	}
}

func (d *director) sorryActive(id string) bool { return d.rec != nil && d.rec.SorryActive(id) }

func (d *director) reconcilerStats() any {
	if d.rec == nil {
		return nil
	}
	return d.rec.Stats()
}

// Reload implements web.Control: re-read the config, and swap it in whole
// if it validates. Settings bound at start (listen address, data dir,
// backend) keep their running values until a restart, and the log says
// so; everything else takes effect at once.
func (d *director) Reload() error {
	d.reloadMu.Lock()
	defer d.reloadMu.Unlock()
	log := d.log
	if d.load == nil {
		return errors.New("this director has no config file to reload")
	}
	old := d.cur.Load()
	if b, err := os.ReadFile(old.File); err == nil {
		sum := sha256.Sum256(b)
		d.judged.Store(&sum)
	}
	next, err := d.load()
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, p := range errs {
				log.Error("config reload rejected", "problem", p.String())
			}
		} else {
			log.Error("config reload rejected", "err", err)
		}
		log.Warn("keeping the running config", "file", old.File)
		d.reloadRejected(err)
		return err
	}
	for _, f := range []struct {
		name      string
		old, next *string
	}{
		{"listen", &old.Listen, &next.Listen},
		{"data_dir", &old.DataDir, &next.DataDir},
		{"ipvs.backend", &old.IPVS.Backend, &next.IPVS.Backend},
		{"ipvs.proc_root", &old.IPVS.ProcRoot, &next.IPVS.ProcRoot},
	} {
		if *f.old != *f.next {
			log.Warn("setting changed; it takes effect at the next restart", "key", f.name, "running", *f.old, "configured", *f.next)
			*f.next = *f.old
		}
	}
	// The web port's limits are bound at start (the listener, the
	// http.Server); the API token is read per request and changes at once.
	for _, f := range []struct {
		name      string
		old, next *int
	}{
		{"web.max_connections", &old.Web.MaxConnections, &next.Web.MaxConnections},
		{"web.max_concurrent_requests", &old.Web.MaxConcurrentRequests, &next.Web.MaxConcurrentRequests},
		{"web.graph_cache_mb", &old.Web.GraphCacheMB, &next.Web.GraphCacheMB},
	} {
		if *f.old != *f.next {
			log.Warn("setting changed; it takes effect at the next restart", "key", f.name, "running", *f.old, "configured", *f.next)
			*f.next = *f.old
		}
	}
	if old.Web.IdleTimeout != next.Web.IdleTimeout {
		log.Warn("setting changed; it takes effect at the next restart", "key", "web.idle_timeout", "running", old.Web.IdleTimeout.D(), "configured", next.Web.IdleTimeout.D())
		next.Web.IdleTimeout = old.Web.IdleTimeout
	}
	var applyMail func() error
	switch {
	case reflect.DeepEqual(old.Alerting, next.Alerting):
	case old.Alerting == nil || next.Alerting == nil || d.mail == nil:
		log.Warn("the alerting section was added or removed; that takes effect at the next restart (mail already queued is sent either way)")
		next.Alerting = old.Alerting
	default:
		if applyMail, err = d.mail.prepareReload(next); err != nil {
			log.Error("config reload rejected", "problem", err.Error())
			log.Warn("keeping the running config", "file", old.File)
			d.reloadRejected(err)
			return err
		}
	}
	haChanged := !reflect.DeepEqual(old.HA, next.HA)
	if haChanged && (d.role == nil || !next.HA.Enabled()) {
		log.Warn("the ha section was added or emptied; that takes effect at the next restart")
		next.HA, haChanged = old.HA, false
	}
	for _, w := range next.Warnings {
		log.Warn("config warning", "problem", w.String())
	}
	if next.Step != old.Step {
		log.Warn("step changed: sampling follows at once; existing RRD files keep the step they were created with", "old", old.Step.D(), "new", next.Step.D())
	}
	d.cur.Store(next)
	if haChanged {
		d.role.reload(d.ctx, next)
	}
	if applyMail != nil {
		if err := applyMail(); err != nil {
			log.Error("applying the new alerting section failed; mail keeps the old one", "err", err)
		} else {
			log.Info("alerting section reloaded", "to", next.Alerting.To, "smtp", fmt.Sprintf("%s:%d", next.Alerting.SMTP.Host, next.Alerting.SMTP.Port))
		}
	}
	d.coll.SetStep(next.Step.D())
	d.chk.Apply(next)
	if d.rec != nil {
		d.rec.Kick()
	}
	log.Info("config reloaded", "file", next.File, "services", len(next.VirtualServices), "step", next.Step.D())
	d.event(events.Event{Kind: events.Reload, To: events.Applied, Message: fmt.Sprintf("config reloaded: %d virtual services", len(next.VirtualServices))})
	return nil
}

// reloadRejected records a reload whose config was rejected, with its
// first problem.
func (d *director) reloadRejected(err error) {
	why := firstLine(err)
	d.event(events.Event{Kind: events.Reload, To: events.Rejected, Reason: why, Message: "config reload rejected, running config kept: " + why})
}

func (d *director) event(e events.Event) {
	if _, err := d.ev.Append(e); err != nil {
		d.log.Error("writing an event failed", "err", err)
	}
}

func firstLine(err error) string {
	s := err.Error()
	for i, c := range s {
		if c == '\n' {
			return s[:i] + " (and more)"
		}
	}
	return s
}

// watchConfig reloads when the file's content changes, checked every
// interval. Content, not mtime, decides (as ldirectord's autoreload), so a
// touch does nothing and an editor's rename-and-replace is seen.
func (d *director) watchConfig(ctx context.Context, path string, interval time.Duration) {
	sum := func() [32]byte {
		b, err := os.ReadFile(path)
		if err != nil {
			return [32]byte{}
		}
		return sha256.Sum256(b)
	}
	last := sum()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := sum(); s != last && s != ([32]byte{}) {
			last = s
			if j := d.judged.Load(); j != nil && *j == s {
				d.log.Info("the config file changed, and a reload has already read it; not reloading again", "file", path)
				continue
			}
			d.log.Info("the config file changed; reloading", "file", path)
			d.Reload()
		}
	}
}

// checkerMetrics exports the checker's and the reconciler's state, with
// the same service and real-server labels as the table's families so the
// two join without relabelling.
type checkerMetrics struct {
	d                                                          *director
	up, dur, fails, stalled, sorry, recFail, recOK             *prometheus.Desc
	inconclusive, srvInconclusive, lag, held, holds, heldTotal *prometheus.Desc
}

func newCheckerMetrics(d *director) *checkerMetrics {
	n := prometheus.NewDesc
	return &checkerMetrics{d: d,
		up:              n("lvsmon_real_server_up", "1 when the real server's health checks pass (after rise), 0 when they fail (after fall); absent before the first result and for servers without a check.", collector.RealServerLabels, nil),
		dur:             n("lvsmon_real_server_check_duration_seconds", "How long the real server's last health check took.", collector.RealServerLabels, nil),
		fails:           n("lvsmon_real_server_check_failures_total", "Failed health checks of the real server.", collector.RealServerLabels, nil),
		stalled:         n("lvsmon_real_server_check_stalled", "1 when the real server's check loop has not reported for three intervals plus its timeout (a frozen checker).", collector.RealServerLabels, nil),
		sorry:           n("lvsmon_sorry_server_active", "1 while the virtual service's sorry server takes the traffic.", collector.ServiceLabels, nil),
		recFail:         n("lvsmon_reconcile_failed_actions_total", "IPVS writes the reconciler tried and the kernel refused; each is retried from fresh state.", nil, nil),
		recOK:           n("lvsmon_reconcile_applied_actions_total", "IPVS writes the reconciler made.", nil, nil),
		inconclusive:    n("lvsmon_checks_inconclusive_total", "Health check results that said nothing about the real server because of the director's own trouble (reason: fd_exhausted, no_buffers, no_memory, ports_exhausted, exec_failed, scheduling_lag); they change no health and no weight.", []string{"reason"}, nil),
		srvInconclusive: n("lvsmon_real_server_checks_inconclusive_total", "The real server's inconclusive check results (the director's own trouble).", collector.RealServerLabels, nil),
		lag:             n("lvsmon_checker_scheduling_lag_seconds", "The largest lateness of lvsmon's own timers over the last minute: a starved director (check timeouts during such lag are inconclusive).", nil, nil),
		held:            n("lvsmon_real_server_down_held", "1 while the mass-failure guard holds this real server's down (nothing is written for it).", collector.RealServerLabels, nil),
		heldTotal:       n("lvsmon_guard_held_servers", "Real servers whose down the mass-failure guard holds now (0 when no hold is in force).", nil, nil),
		holds:           n("lvsmon_guard_holds", "Mass-failure holds in force, by scope (a service id, or director) and failure class.", []string{"scope", "class"}, nil),
	}
}

func (m *checkerMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.up, m.dur, m.fails, m.stalled, m.sorry, m.recFail, m.recOK, m.inconclusive, m.srvInconclusive, m.lag, m.held, m.holds, m.heldTotal} {
		ch <- d
	}
}

func (m *checkerMetrics) Collect(ch chan<- prometheus.Metric) {
	cfg := m.d.cur.Load()
	byID := map[string][]string{}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		sl := collector.ServiceLabelValues(vs.Key, vs.Name)
		if vs.Sorry != nil && vs.IsManaged() && m.d.rec != nil {
			v := 0.0
			if m.d.sorryActive(vs.Key.ID()) {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.sorry, prometheus.GaugeValue, v, sl...)
		}
		for _, r := range vs.Reals {
			byID[lvs.DestID(vs.Key, r.Key)] = collector.RealServerLabelValues(vs.Key, vs.Name, r.Key)
		}
	}
	for _, st := range m.d.chk.Status() {
		lv, ok := byID[st.ID]
		if !ok {
			continue
		}
		if st.Health != health.Unknown.String() {
			v := 0.0
			if st.Health == health.Up.String() {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, v, lv...)
		}
		if !st.LastTime.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.dur, prometheus.GaugeValue, st.LastDur.Seconds(), lv...)
		}
		ch <- prometheus.MustNewConstMetric(m.fails, prometheus.CounterValue, float64(st.Failures), lv...)
		stalled := 0.0
		if st.Stalled {
			stalled = 1
		}
		ch <- prometheus.MustNewConstMetric(m.stalled, prometheus.GaugeValue, stalled, lv...)
		ch <- prometheus.MustNewConstMetric(m.srvInconclusive, prometheus.CounterValue, float64(st.Inconclusive), lv...)
		held := 0.0
		if st.Held {
			held = 1
		}
		ch <- prometheus.MustNewConstMetric(m.held, prometheus.GaugeValue, held, lv...)
	}
	loc := m.d.chk.Local()
	for _, r := range checker.LocalReasons {
		ch <- prometheus.MustNewConstMetric(m.inconclusive, prometheus.CounterValue, float64(loc.Inconclusive[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, loc.Lag.Seconds())
	heldServers := 0
	for _, h := range m.d.chk.Holds() {
		heldServers += len(h.Servers)
		scope := h.Scope
		if scope == checker.DirectorScope {
			scope = "director"
		}
		ch <- prometheus.MustNewConstMetric(m.holds, prometheus.GaugeValue, 1, scope, string(h.Class))
	}
	ch <- prometheus.MustNewConstMetric(m.heldTotal, prometheus.GaugeValue, float64(heldServers))
	if m.d.rec != nil {
		s := m.d.rec.Stats()
		ch <- prometheus.MustNewConstMetric(m.recFail, prometheus.CounterValue, float64(s.Failed))
		ch <- prometheus.MustNewConstMetric(m.recOK, prometheus.CounterValue, float64(s.Applied))
	}
}

// closeOpenOutages settles outages that an earlier run of lvsmon logged
// but never saw end. With startup "up" (the default) the checker assumes
// every server up at start and writes an event only on a change, so a
// server that failed before a restart and recovered meanwhile would stay
// "down" in the event log, on the graphs and in alerting's memory (which
// would keep sending reminders). Once the first check of such a server
// passes, this writes the missing server_up.
func (d *director) closeOpenOutages(ctx context.Context, since time.Time) {
	open := map[string]events.Event{} // server → its last down event before this start
	for _, e := range d.ev.Query(events.Filter{To: since}) {
		switch e.Kind {
		case events.ServerDown:
			open[e.Server] = e
		case events.ServerUp:
			delete(open, e.Server)
		}
	}
	if len(open) == 0 {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for len(open) > 0 {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		// This run's own events about these servers settle them too.
		for _, e := range d.ev.Query(events.Filter{From: since}) {
			if e.Kind == events.ServerDown || e.Kind == events.ServerUp {
				delete(open, e.Server)
			}
		}
		for _, st := range d.chk.Status() {
			down, ok := open[st.ID]
			if !ok || st.LastTime.IsZero() {
				continue
			}
			delete(open, st.ID)
			if st.Health != "up" {
				continue
			}
			msg := fmt.Sprintf("up: found up by the first check after lvsmon restarted (down since %s)", down.Time.Local().Format("2006-01-02 15:04:05"))
			e := events.Event{Kind: events.ServerUp, Service: down.Service, Server: st.ID, From: events.Down, To: events.Up,
				Reason: "found up by the first check after lvsmon restarted", Actor: events.ActorChecker, Message: msg}
			if _, err := d.ev.Append(e); err != nil {
				d.log.Error("writing an event failed", "err", err)
			}
		}
		// Servers no longer configured never get a check: forget them.
		known := map[string]bool{}
		for _, st := range d.chk.Status() {
			known[st.ID] = true
		}
		for id := range open {
			if !known[id] {
				delete(open, id)
			}
		}
	}
}
