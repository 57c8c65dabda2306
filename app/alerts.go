package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
)

// alerts is the alerting section at work: the outbox that mail and the
// webhooks share, the mail (optional), the webhooks' feeder and one
// dispatcher per webhook, and the Alertmanager channel. A reload swaps
// the webhooks and the Alertmanager settings as a whole (every new
// setting is checked before any is applied); a removed channel stops,
// and its queued deliveries are dropped (moved to outbox/dropped) and
// reported. Adding or removing mail, or the whole section, takes effect
// at the next restart.
type alerts struct {
	out    *alerting.Outbox
	ev     *events.Log
	log    *slog.Logger
	mail   *mailer // nil without mail
	feeder *alerting.HookFeeder
	state  func() alerting.AlertState
	name   func(string) string
	dir    string

	mu    sync.Mutex
	hooks map[string]*channelRun
	am    *channelRun
	amc   *alerting.Alertmanager
	// start runs a channel's goroutine until its stop (set by run; nil
	// before, when channels only wait).
	start func(fn func(ctx context.Context)) *channelRun
}

// channelRun is one channel's goroutine.
type channelRun struct {
	disp *alerting.Dispatcher // a webhook's
	wake chan struct{}
	stop func() // cancels it and waits
}

// newAlerts opens the outbox and builds every configured channel. It
// runs before the first event of this start (see newMailer).
func newAlerts(cfg *config.Config, ev *events.Log, deps alerting.PipelineDeps, state func() alerting.AlertState, log *slog.Logger) (*alerts, error) {
	a := cfg.Alerting
	dir := filepath.Join(cfg.DataDir, "alerting")
	out, err := alerting.OpenOutbox(filepath.Join(dir, "outbox"), a.OutboxMax, log)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	al := &alerts{out: out, ev: ev, log: log, state: state, name: deps.Name, dir: dir, hooks: map[string]*channelRun{}}
	if a.MailEnabled() {
		if al.mail, err = newMailer(cfg, out, ev, deps, log); err != nil {
			return nil, err
		}
	}
	senders, err := webhookSenders(cfg)
	if err != nil {
		return nil, err
	}
	hd := alerting.HookDeps{Outbox: out, Events: ev, Kick: al.kickHook, Log: log, Name: deps.Name, IsMaster: deps.IsMaster}
	if al.feeder, err = alerting.NewHookFeeder(cfg.Director, dir, senders, hd); err != nil {
		return nil, err
	}
	for _, s := range senders {
		al.hooks[s.Config().Name] = &channelRun{disp: alerting.NewWebhookDispatcher(out, s, alerting.DispatcherConfig{Log: log})}
	}
	if a.Alertmanager != nil {
		if al.amc, err = alerting.NewAlertmanager(alertmanagerConfig(cfg, deps.Name), dir, state, nil, log); err != nil {
			return nil, err
		}
		al.am = &channelRun{}
	}
	al.dropOrphans(cfg)
	return al, nil
}

// dropOrphans drops the queued entries of channels the config does not
// have (a webhook removed while lvsmon was stopped, or by a reload).
func (al *alerts) dropOrphans(cfg *config.Config) {
	keep := map[string]bool{}
	if cfg.Alerting.MailEnabled() {
		keep[alerting.MailChannel] = true
	}
	for _, w := range cfg.Alerting.Webhooks {
		keep[alerting.WebhookChannel(w.Name)] = true
	}
	dropped := map[string]int{}
	for _, e := range al.out.Pending() {
		if keep[e.Channel()] {
			continue
		}
		to, err := al.out.Drop(e.ID)
		if err != nil {
			al.log.Error("alerting: cannot drop a queued delivery of a removed channel", "channel", e.Channel(), "id", e.ID, "err", err)
			continue
		}
		al.log.Warn("alerting: dropped a queued delivery: its channel is no longer configured", "channel", e.Channel(), "id", e.ID, "subject", e.Subject(), "moved_to", to)
		dropped[e.Channel()]++
	}
	for ch, n := range dropped {
		al.log.Error("alerting: queued deliveries of a removed channel were dropped, not sent", "channel", ch, "dropped", n, "dir", filepath.Join(al.out.Dir(), "dropped"))
	}
}

// webhookSenders builds the config's webhooks (their templates parsed,
// their secret files read once to prove they can be).
func webhookSenders(cfg *config.Config) ([]*alerting.WebhookSender, error) {
	var out []*alerting.WebhookSender
	for i, w := range cfg.Alerting.Webhooks {
		path := fmt.Sprintf("alerting.webhooks[%d]", i)
		f, err := alerting.NewFilter(w.Kinds, w.Services, w.IsMasterOnly())
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		url := w.URL
		if w.URLFile != "" {
			if url, err = alerting.ReadURLFile(w.URLFile); err != nil {
				return nil, fmt.Errorf("%s.url_file: %w", path, err)
			}
		}
		wc := alerting.WebhookConfig{Name: w.Name, URL: url, Method: w.Method, Headers: w.Headers, HeaderFiles: w.HeaderFiles,
			BearerTokenFile: w.BearerTokenFile, TLS: alerting.TLSConfig{CAFile: w.TLS.CAFile, InsecureSkipVerify: w.TLS.InsecureSkipVerify},
			Timeout: w.Timeout.D(), ContentType: w.ContentType, Filter: f}
		if w.BodyTemplate != "" {
			if wc.Template, err = events.ParseTemplate(path+".body_template", w.BodyTemplate); err != nil {
				return nil, fmt.Errorf("%s.body_template: %w", path, err)
			}
		}
		s, err := alerting.NewWebhookSender(wc)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		out = append(out, s)
	}
	return out, nil
}

// alertmanagerConfig is the alertmanager section as the channel takes it.
func alertmanagerConfig(cfg *config.Config, name func(string) string) alerting.AlertmanagerConfig {
	a := cfg.Alerting
	am := a.Alertmanager
	f, _ := alerting.NewFilter(am.Kinds, am.Services, am.IsMasterOnly()) // validated with the config
	return alerting.AlertmanagerConfig{
		URLs: am.URLs, Timeout: am.Timeout.D(), ResendInterval: am.ResendInterval.D(),
		TLS:      alerting.TLSConfig{CAFile: am.TLS.CAFile, InsecureSkipVerify: am.TLS.InsecureSkipVerify},
		Username: am.BasicAuth.Username, PasswordFile: am.BasicAuth.PasswordFile, BearerTokenFile: am.BearerTokenFile,
		Policy: alerting.AlertPolicy{Director: cfg.Director, Filter: f, Labels: am.Labels, ExternalURL: a.ExternalURL, RunbookBaseURL: a.RunbookBaseURL, Name: name},
	}
}

// kickHook wakes the named hook's dispatcher.
func (al *alerts) kickHook(name string) {
	al.mu.Lock()
	h := al.hooks[name]
	al.mu.Unlock()
	if h != nil {
		h.disp.Kick()
	}
}

// run starts every channel; they stop when ctx ends (wg waits for them).
func (al *alerts) run(ctx context.Context, wg *sync.WaitGroup) {
	if al.mail != nil {
		al.mail.run(ctx, wg)
	}
	wake := make(chan struct{}, 1)
	al.ev.Wake(wake)
	wg.Go(func() {
		if err := al.feeder.Run(ctx, wake); err != nil && ctx.Err() == nil {
			al.log.Error("the webhook feeder stopped", "err", err)
		}
	})
	al.mu.Lock()
	al.start = func(fn func(ctx context.Context)) *channelRun {
		cctx, cancel := context.WithCancel(ctx)
		done := make(chan struct{})
		wg.Go(func() { defer close(done); fn(cctx) })
		return &channelRun{stop: func() { cancel(); <-done }}
	}
	for name, h := range al.hooks {
		al.hooks[name] = al.startHook(h.disp)
	}
	if al.amc != nil {
		al.am = al.startAM(al.amc)
	}
	al.mu.Unlock()
}

// startHook and startAM run a channel (al.mu held, after run).
func (al *alerts) startHook(d *alerting.Dispatcher) *channelRun {
	r := al.start(func(ctx context.Context) {
		if err := d.Run(ctx); err != nil && ctx.Err() == nil {
			al.log.Error("a webhook dispatcher stopped", "channel", d.Channel(), "err", err)
		}
	})
	r.disp = d
	return r
}

func (al *alerts) startAM(m *alerting.Alertmanager) *channelRun {
	wake := make(chan struct{}, 1)
	r := al.start(func(ctx context.Context) {
		if err := m.Run(ctx, wake); err != nil && ctx.Err() == nil {
			al.log.Error("the alertmanager channel stopped", "err", err)
		}
	})
	r.wake = wake
	return r
}

// hookDispatchers are the webhooks' dispatchers by name, for metrics.
func (al *alerts) hookDispatchers() map[string]*alerting.Dispatcher {
	al.mu.Lock()
	defer al.mu.Unlock()
	out := make(map[string]*alerting.Dispatcher, len(al.hooks))
	for n, h := range al.hooks {
		out[n] = h.disp
	}
	return out
}

// alertmanager is the Alertmanager channel, nil when not configured.
func (al *alerts) alertmanager() *alerting.Alertmanager {
	al.mu.Lock()
	defer al.mu.Unlock()
	return al.amc
}

// prepareReload checks next's alerting section whole (mail's password,
// the webhooks' templates and secret files, the Alertmanager's) before
// the reload commits to anything; apply then swaps every channel in.
func (al *alerts) prepareReload(old, next *config.Config) (apply func(), err error) {
	if old.Alerting.MailEnabled() != next.Alerting.MailEnabled() {
		al.log.Warn("mail was added to or removed from the alerting section; that takes effect at the next restart")
		keepMail(next.Alerting, old.Alerting)
	}
	var applyMail func() error
	if al.mail != nil {
		if applyMail, err = al.mail.prepareReload(next); err != nil {
			return nil, err
		}
	}
	senders, err := webhookSenders(next)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	var amc alerting.AlertmanagerConfig
	if next.Alerting.Alertmanager != nil {
		amc = alertmanagerConfig(next, al.name)
		// A trial channel proves the settings (URLs, TLS, secrets).
		if _, err := alerting.NewAlertmanager(amc, al.dir, al.state, nil, slog.New(slog.DiscardHandler)); err != nil {
			return nil, err
		}
	}
	return func() {
		if applyMail != nil {
			if err := applyMail(); err != nil {
				al.log.Error("applying the new mail settings failed; mail keeps the old ones", "err", err)
			}
		}
		al.swap(next, senders, amc)
	}, nil
}

// keepMail puts old's mail settings into next.
func keepMail(next, old *config.Alerting) {
	m := *old
	m.Alertmanager, m.Webhooks, m.ExternalURL, m.RunbookBaseURL, m.OutboxMax = next.Alertmanager, next.Webhooks, next.ExternalURL, next.RunbookBaseURL, next.OutboxMax
	*next = m
}

// swap makes the webhooks and the Alertmanager channel those of next.
func (al *alerts) swap(next *config.Config, senders []*alerting.WebhookSender, amc alerting.AlertmanagerConfig) {
	al.mu.Lock()
	defer al.mu.Unlock()
	if err := al.feeder.SetHooks(senders); err != nil {
		al.log.Error("alerting: saving the webhooks' cursors", "err", err)
	}
	want := map[string]bool{}
	for _, s := range senders {
		name := s.Config().Name
		want[name] = true
		if h := al.hooks[name]; h != nil {
			h.disp.SetWebhook(s)
			continue
		}
		d := alerting.NewWebhookDispatcher(al.out, s, alerting.DispatcherConfig{Log: al.log})
		if al.start != nil {
			al.hooks[name] = al.startHook(d)
		} else {
			al.hooks[name] = &channelRun{disp: d}
		}
		al.log.Info("alerting: webhook added", "hook", name)
	}
	var removed []string
	for name, h := range al.hooks {
		if !want[name] {
			removed = append(removed, name)
			if h.stop != nil {
				h.stop()
			}
			delete(al.hooks, name)
		}
	}
	sort.Strings(removed)
	for _, name := range removed {
		al.log.Info("alerting: webhook removed", "hook", name)
	}
	switch {
	case next.Alerting.Alertmanager == nil && al.amc != nil:
		if al.am != nil && al.am.stop != nil {
			al.am.stop()
		}
		al.am, al.amc = nil, nil
		al.log.Info("alerting: the alertmanager channel removed; its alerts expire in the Alertmanager by their endsAt")
	case next.Alerting.Alertmanager != nil && al.amc != nil:
		if err := al.amc.Configure(amc); err != nil {
			al.log.Error("alerting: the alertmanager settings", "err", err)
		}
		if al.am != nil && al.am.wake != nil {
			select {
			case al.am.wake <- struct{}{}:
			default:
			}
		}
	case next.Alerting.Alertmanager != nil:
		m, err := alerting.NewAlertmanager(amc, al.dir, al.state, nil, al.log)
		if err != nil {
			al.log.Error("alerting: the alertmanager channel", "err", err)
			break
		}
		al.amc, al.am = m, &channelRun{}
		if al.start != nil {
			al.am = al.startAM(m)
		}
		al.log.Info("alerting: alertmanager channel added", "urls", amc.URLs)
	}
	al.dropOrphans(next)
}

// alertState is the director's state as the Alertmanager channel reads
// it: every configured real server's health, every service's count of
// servers up and its sorry server, the HA disagreements and the
// director's problems.
func (a *App) alertState() alerting.AlertState {
	cfg := a.cur.Load()
	st := alerting.AlertState{Master: a.role == nil || a.role.isMaster()}
	status := map[string]health.State{}
	since := map[string]checkerInfo{}
	for _, s := range a.chk.Status() {
		status[s.ID] = s.Health
		since[s.ID] = checkerInfo{s.Since, s.LastMsg}
	}
	for _, vs := range cfg.VirtualServices {
		svc := alerting.ServiceState{Service: vs.Key.ID(), Name: vs.Name, Total: len(vs.Reals), Sorry: a.sorryActive(vs.Key.ID())}
		for _, r := range vs.Reals {
			id := lvs.DestID(vs.Key, r.Key)
			down := status[id] == health.Down
			if !down {
				svc.Up++
			} else if since[id].since.After(svc.Since) {
				svc.Since = since[id].since
			}
			st.Servers = append(st.Servers, alerting.ServerState{Service: svc.Service, Server: id, Address: r.Key.String(),
				Down: down, Since: since[id].since, Reason: since[id].msg})
		}
		st.Services = append(st.Services, svc)
	}
	if a.role != nil {
		for _, in := range a.role.mon.Status().Instances {
			for _, k := range in.Disagreements {
				st.Roles = append(st.Roles, alerting.RoleProblem{Instance: in.Instance, Kind: k})
			}
		}
	}
	for _, p := range a.problems() {
		st.Problems = append(st.Problems, alerting.DirectorProblem{Source: p.Source, Kind: p.Kind, Severity: p.Severity, Message: p.Message, Since: p.Since})
	}
	return st
}

type checkerInfo struct {
	since time.Time
	msg   string
}
