package app

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/web"
)

// Reload implements web.Control: re-read the config file and Apply it.
// A config that does not validate is refused with its problems, logged
// and written as an event, and the running one kept.
func (a *App) Reload() error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	defer a.notifyReload()()
	if a.load == nil {
		return errors.New("this director has no config file to reload")
	}
	log := a.log
	old := a.cur.Load()
	if sum := fingerprint(old.File, old.Origin); sum != ([32]byte{}) {
		a.judged.Store(&sum)
	}
	next, err := a.load()
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
		a.reloadRejected(err)
		return err
	}
	acc := a.access.Load()
	if a.webFile != "" {
		if acc, err = web.LoadAccess(a.webFile); err == nil {
			err = web.CheckAccessReload(a.access.Load(), acc)
		}
		if err != nil {
			err = fmt.Errorf("--web.config.file: %w", err)
		}
	}
	if err == nil {
		err = web.CheckAnonymous(next, acc)
	}
	if err != nil {
		log.Error("config reload rejected", "err", err)
		log.Warn("keeping the running config", "file", old.File)
		a.reloadRejected(err)
		return err
	}
	if err := a.apply(next); err != nil {
		return err
	}
	if a.webFile != "" {
		a.access.Store(acc)
	}
	return nil
}

// Apply swaps in next, a validated config, whole. Settings bound at start
// (listen addresses, data dir, backend, the web port's limits and trusted
// proxies) keep their running values until a restart, and the log says
// so; everything else takes effect at once. A new alerting section that cannot be used (its
// password unreadable) refuses the whole config.
func (a *App) Apply(next *config.Config) error {
	a.reloadMu.Lock()
	defer a.reloadMu.Unlock()
	defer a.notifyReload()()
	return a.apply(next)
}

// notifyReload tells the Notifier a reload began, and returns what tells
// it the reload is over (applied or rejected, a config runs).
func (a *App) notifyReload() func() {
	if a.notify == nil {
		return func() {}
	}
	a.notify.Reloading()
	return func() { a.notify.Ready(a.readyStatus(len(a.cur.Load().VirtualServices))) }
}

// apply is Apply with reloadMu held.
func (a *App) apply(next *config.Config) error {
	log := a.log
	old := a.cur.Load()
	for _, f := range []struct {
		name      string
		old, next *string
	}{
		{"data_dir", &old.DataDir, &next.DataDir},
		{"ipvs.backend", &old.IPVS.Backend, &next.IPVS.Backend},
		{"ipvs.proc_root", &old.IPVS.ProcRoot, &next.IPVS.ProcRoot},
	} {
		if *f.old != *f.next {
			log.Warn("setting changed; it takes effect at the next restart", "key", f.name, "running", *f.old, "configured", *f.next)
			*f.next = *f.old
		}
	}
	// The listeners and the proxies the web trusts are bound at start.
	if !slices.Equal(old.Listen, next.Listen) {
		log.Warn("setting changed; it takes effect at the next restart", "key", "listen", "running", old.Listen.String(), "configured", next.Listen.String())
		next.Listen = old.Listen
	}
	if !slices.Equal(old.Web.TrustedProxies, next.Web.TrustedProxies) {
		log.Warn("setting changed; it takes effect at the next restart", "key", "web.trusted_proxies",
			"running", strings.Join(old.Web.TrustedProxies, ","), "configured", strings.Join(next.Web.TrustedProxies, ","))
		next.Web.TrustedProxies = old.Web.TrustedProxies
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
	var applyAlerts func()
	switch {
	case reflect.DeepEqual(old.Alerting, next.Alerting):
	case old.Alerting == nil || next.Alerting == nil || a.alerts == nil:
		log.Warn("the alerting section was added or removed; that takes effect at the next restart (mail already queued is sent either way)")
		next.Alerting = old.Alerting
	default:
		var err error
		if applyAlerts, err = a.alerts.prepareReload(old, next); err != nil {
			log.Error("config reload rejected", "problem", err.Error())
			log.Warn("keeping the running config", "file", old.File)
			a.reloadRejected(err)
			return err
		}
	}
	if !reflect.DeepEqual(old.HA.SelfChecks, next.HA.SelfChecks) || !reflect.DeepEqual(old.HA.Handover, next.HA.Handover) {
		log.Warn("setting changed; it takes effect at the next restart (a reload must not undo a hand-over in force)", "key", "ha.self_checks, ha.handover")
		next.HA.SelfChecks, next.HA.Handover = old.HA.SelfChecks, old.HA.Handover
	}
	haChanged := !reflect.DeepEqual(old.HA, next.HA)
	if haChanged && (a.role == nil || !next.HA.Enabled()) {
		log.Warn("the ha section was added or emptied; that takes effect at the next restart")
		next.HA, haChanged = old.HA, false
	}
	for _, w := range next.Warnings {
		log.Warn("config warning", "problem", w.String())
	}
	if next.Step != old.Step {
		log.Warn("step changed: sampling follows at once; existing RRD files keep the step they were created with", "old", old.Step.D(), "new", next.Step.D())
	}
	a.cur.Store(next)
	if haChanged {
		a.role.reload(next)
	}
	if applyAlerts != nil {
		applyAlerts()
		log.Info("alerting section reloaded", "mail_to", next.Alerting.To, "webhooks", len(next.Alerting.Webhooks), "alertmanager", next.Alerting.Alertmanager != nil)
	}
	a.coll.SetStep(next.Step.D())
	a.chk.Apply(next)
	if !reflect.DeepEqual(old.Peers, next.Peers) {
		a.peers.Apply(next.Peers)
	}
	if a.rec != nil {
		a.rec.Kick()
	}
	if o := next.Origin; o != nil {
		log.Info("config reloaded", "file", next.File, "imported_from", o.Format, "services", len(next.VirtualServices), "step", next.Step.D())
	} else {
		log.Info("config reloaded", "file", next.File, "services", len(next.VirtualServices), "step", next.Step.D())
	}
	a.event(events.Event{Kind: events.Reload, To: events.Applied, Message: fmt.Sprintf("config reloaded: %d virtual services", len(next.VirtualServices))})
	return nil
}

// reloadRejected records a reload whose config was rejected, with its
// first problem.
func (a *App) reloadRejected(err error) {
	why := firstLine(err)
	a.event(events.Event{Kind: events.Reload, To: events.Rejected, Reason: why, Message: "config reload rejected, running config kept: " + why})
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
// touch does nothing and an editor's rename-and-replace is seen. For an
// imported keepalived.conf the files its includes read, and what the
// include patterns match, count too (fingerprint).
func (a *App) watchConfig(ctx context.Context, path string, interval time.Duration) {
	sum := func() [32]byte { return fingerprint(path, a.cur.Load().Origin) }
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
			if j := a.judged.Load(); j != nil && *j == s {
				a.log.Info("the config file changed, and a reload has already read it; not reloading again", "file", path)
				continue
			}
			a.log.Info("the config file changed; reloading", "file", path)
			a.Reload()
		}
	}
}
