package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// mailer is the alerting section at work: the pipeline choosing what to
// mail from the event log, the durable outbox, and the dispatcher sending
// it. Like the role sources it starts once; a reload that changes the
// alerting section takes effect at the next restart.
type mailer struct {
	out  *alerting.Outbox
	disp *alerting.Dispatcher
	pipe *alerting.Pipeline
	ev   *events.Log
	log  *slog.Logger
}

// newMailer opens the outbox and builds the pipeline. It must run before
// the first event of this start (daemon_start, the checker's): on a first
// start the pipeline begins at the end of the log, and it must exist
// before the dispatcher runs (see alerting.Pipeline).
func newMailer(cfg *config.Config, ev *events.Log, deps alerting.PipelineDeps, log *slog.Logger) (*mailer, error) {
	a := cfg.Alerting
	dir := filepath.Join(cfg.DataDir, "alerting")
	out, err := alerting.OpenOutbox(filepath.Join(dir, "outbox"), a.OutboxMax, log)
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	sender, err := alerting.NewSender(smtpConfig(a))
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	m := &mailer{out: out, ev: ev, log: log}
	m.disp = alerting.NewDispatcher(out, sender, alerting.DispatcherConfig{Log: log})
	deps.Outbox, deps.Events, deps.Kick, deps.Log = out, ev, m.disp.Kick, log
	if m.pipe, err = alerting.NewPipeline(pipelineConfig(cfg), deps); err != nil {
		return nil, err
	}
	if n := out.Len(); n > 0 {
		log.Info("mails from before the restart are in the outbox; sending them", "mails", n)
	}
	return m, nil
}

// pipelineConfig is the alerting section as the pipeline takes it.
func pipelineConfig(cfg *config.Config) alerting.PipelineConfig {
	a := cfg.Alerting
	return alerting.PipelineConfig{
		Director: cfg.Director, From: a.From, To: a.To, SubjectPrefix: a.SubjectPrefix,
		Kinds: a.Kinds, Services: a.Services, DaemonStates: a.DaemonStates,
		GroupWindow: a.GroupWindow.D(), Reminder: a.Reminder.D(), FlapCount: a.FlapCount, FlapWindow: a.FlapWindow.D(),
		RateLimit: a.RateLimit, BackupMails: !a.IsMasterOnly(), DailyDigest: a.Digest,
		StateDir: filepath.Join(cfg.DataDir, "alerting"),
	}
}

// prepareReload checks that next's alerting section can be used (its
// password can be read) before the reload commits to anything; apply
// then swaps it in.
func (m *mailer) prepareReload(next *config.Config) (apply func() error, err error) {
	sender, err := alerting.NewSender(smtpConfig(next.Alerting))
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	return func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := m.pipe.Reconfigure(ctx, pipelineConfig(next)); err != nil {
			return err
		}
		m.disp.SetTransport(sender)
		return nil
	}, nil
}

// run starts the pipeline and the dispatcher.
func (m *mailer) run(ctx context.Context, goFn func(func())) {
	wake := make(chan struct{}, 1)
	m.ev.Wake(wake)
	goFn(func() {
		if err := m.pipe.Run(ctx, wake); err != nil && ctx.Err() == nil {
			m.log.Error("the alerting pipeline stopped", "err", err)
		}
	})
	goFn(func() {
		if err := m.disp.Run(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("the mail dispatcher stopped", "err", err)
		}
	})
}

// status is the status API's alerting section.
func (m *mailer) status() any {
	return map[string]any{"pipeline": m.pipe.Stats(), "outbox": m.disp.Stats()}
}

// summary is the status page's one line about mail.
func (m *mailer) summary() web.MailSummary {
	st := m.disp.Stats()
	return web.MailSummary{Sent: st.Sent, Queued: st.Queued, LastError: st.LastError}
}

// describeService renders a service's state now for a mail: every real
// server with weight (live/configured), health, override and the last
// check's message, and the sorry server.
func describeService(cur *atomic.Pointer[config.Config], coll *collector.Collector, d **director) func(string) string {
	return func(id string) string {
		cfg := cur.Load()
		var vs *config.VirtualService
		for i := range cfg.VirtualServices {
			if cfg.VirtualServices[i].Key.ID() == id {
				vs = &cfg.VirtualServices[i]
			}
		}
		if vs == nil {
			return ""
		}
		live := map[string]int32{}
		if snap := coll.Snapshot(); snap != nil {
			for _, s := range snap.Table.Services {
				if s.Key.ID() != id {
					continue
				}
				for _, dst := range s.Dests {
					live[lvs.DestID(s.Key, dst.Key)] = dst.Weight
				}
			}
		}
		health := map[string]checker.ServerStatus{}
		for _, st := range (*d).chk.Status() {
			health[st.ID] = st
		}
		ovr := (*d).ovr.Entries()
		var b strings.Builder
		up := 0
		line := func(r *config.RealServer, sorry bool) {
			sid := lvs.DestID(vs.Key, r.Key)
			w, in := live[sid]
			weight := "not in the kernel"
			if sorry {
				weight = "out"
			}
			if in {
				weight = fmt.Sprintf("weight %d/%d", w, r.ConfiguredWeight())
				if w > 0 && !sorry {
					up++
				}
			}
			role := ""
			if sorry {
				role = " (sorry server)"
			}
			st, checked := health[sid]
			h := st.Health
			switch {
			case sorry && in:
				h = "in use"
			case sorry:
				h = "standby"
			case !checked || h == "":
				h = "unchecked"
			}
			fmt.Fprintf(&b, "  %-28s %-9s %s%s", r.Key.String(), h, weight, role)
			if o, ok := ovr[sid]; ok {
				fmt.Fprintf(&b, ", override %s", o.Mode)
			}
			if st.LastMsg != "" && h != "up" {
				fmt.Fprintf(&b, ": %s", st.LastMsg)
			}
			b.WriteByte('\n')
		}
		for i := range vs.Reals {
			line(&vs.Reals[i], false)
		}
		if vs.Sorry != nil {
			line(vs.Sorry, true)
		}
		return fmt.Sprintf("%d of %d real servers take connections:\n%s", up, len(vs.Reals), b.String())
	}
}

// serviceName maps a service id to its configured name.
func serviceName(cur *atomic.Pointer[config.Config]) func(string) string {
	return func(id string) string {
		for _, vs := range cur.Load().VirtualServices {
			if vs.Key.ID() == id {
				return vs.Name
			}
		}
		return ""
	}
}

// serviceIDs lists the configured services, for the daily digest.
func serviceIDs(cur *atomic.Pointer[config.Config]) func() []string {
	return func() []string {
		var ids []string
		for _, vs := range cur.Load().VirtualServices {
			ids = append(ids, vs.Key.ID())
		}
		return ids
	}
}

// mailMetrics exports delivery and pipeline counters.
type mailMetrics struct {
	m                                               *mailer
	sent, failed, queued, perm, lastSent, lastError *prometheus.Desc
	events, suppressed, mails, held                 *prometheus.Desc
}

func newMailMetrics(m *mailer) *mailMetrics {
	n := prometheus.NewDesc
	return &mailMetrics{m: m,
		sent:       n("lvsmon_alert_mails_sent_total", "Mails the SMTP server accepted since lvsmon started.", nil, nil),
		failed:     n("lvsmon_alert_send_failures_total", "Failed delivery attempts (each retry counts) since lvsmon started.", nil, nil),
		queued:     n("lvsmon_alert_outbox_mails", "Mails in the outbox waiting to be sent (permanent failures included).", nil, nil),
		perm:       n("lvsmon_alert_outbox_permanent_failures", "Mails in the outbox that the server refused for good (5xx); they wait for an operator.", nil, nil),
		lastSent:   n("lvsmon_alert_last_sent_timestamp_seconds", "When the SMTP server last accepted a mail (0: never since start).", nil, nil),
		lastError:  n("lvsmon_alert_last_error_timestamp_seconds", "When a delivery attempt last failed (0: never since start).", nil, nil),
		events:     n("lvsmon_alert_events_total", "Events the alerting pipeline read from the event log.", nil, nil),
		suppressed: n("lvsmon_alert_events_suppressed_total", "Events deliberately not mailed, by reason (kind, service, daemon_state, backup, duplicate, flapping).", []string{"reason"}, nil),
		mails:      n("lvsmon_alert_mails_queued_total", "Mails the pipeline put in the outbox (grouped mails, reminders, digests).", nil, nil),
		held:       n("lvsmon_alert_events_held", "Events waiting in the grouping window or the rate limit's backlog.", nil, nil),
	}
}

func (mm *mailMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mm.sent, mm.failed, mm.queued, mm.perm, mm.lastSent, mm.lastError, mm.events, mm.suppressed, mm.mails, mm.held} {
		ch <- d
	}
}

func (mm *mailMetrics) Collect(ch chan<- prometheus.Metric) {
	ds, ps := mm.m.disp.Stats(), mm.m.pipe.Stats()
	c := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	g := func(d *prometheus.Desc, v float64) { ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v) }
	c(mm.sent, float64(ds.Sent))
	c(mm.failed, float64(ds.Failed))
	g(mm.queued, float64(ds.Queued))
	g(mm.perm, float64(ds.Permanent))
	ts := func(t time.Time) float64 {
		if t.IsZero() {
			return 0
		}
		return float64(t.Unix())
	}
	g(mm.lastSent, ts(ds.LastSentTime))
	g(mm.lastError, ts(ds.LastErrorTime))
	c(mm.events, float64(ps.Events))
	for _, r := range []string{alerting.SuppressedKind, alerting.SuppressedService, alerting.SuppressedDaemonState,
		alerting.SuppressedBackup, alerting.SuppressedDuplicate, alerting.SuppressedFlapping} {
		c(mm.suppressed, float64(ps.Suppressed[r]), r)
	}
	c(mm.mails, float64(ps.Mails))
	g(mm.held, float64(ps.Held+ps.Backlog))
}
