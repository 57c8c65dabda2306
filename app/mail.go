package app

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/web"
)

// mailer is the alerting section's mail at work: the pipeline choosing
// what to mail from the event log and the dispatcher sending the mails
// of the outbox (shared with the webhooks, see alerts). A reload swaps
// its settings; adding or removing mail takes effect at the next
// restart.
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
func newMailer(cfg *config.Config, out *alerting.Outbox, ev *events.Log, deps alerting.PipelineDeps, log *slog.Logger) (*mailer, error) {
	a := cfg.Alerting
	sender, err := alerting.NewSender(SMTPConfig(a))
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	m := &mailer{out: out, ev: ev, log: log}
	m.disp = alerting.NewDispatcher(out, sender, alerting.DispatcherConfig{Log: log})
	deps.Outbox, deps.Events, deps.Kick, deps.Log = out, ev, m.disp.Kick, log
	if m.pipe, err = alerting.NewPipeline(pipelineConfig(cfg), deps); err != nil {
		return nil, err
	}
	if n := m.disp.Stats().Queued; n > 0 {
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
	sender, err := alerting.NewSender(SMTPConfig(next.Alerting))
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
func (m *mailer) run(ctx context.Context, wg *sync.WaitGroup) {
	wake := make(chan struct{}, 1)
	m.ev.Wake(wake)
	wg.Go(func() {
		if err := m.pipe.Run(ctx, wake); err != nil && ctx.Err() == nil {
			m.log.Error("the alerting pipeline stopped", "err", err)
		}
	})
	wg.Go(func() {
		if err := m.disp.Run(ctx); err != nil && ctx.Err() == nil {
			m.log.Error("the mail dispatcher stopped", "err", err)
		}
	})
}

// status is the status API's alerting section.
func (m *mailer) status() *web.AlertingStatus {
	return &web.AlertingStatus{Pipeline: web.PipelineStatus(m.pipe.Stats()), Outbox: web.OutboxStatus(m.disp.Stats())}
}

// summary is the status page's one line about mail.
func (m *mailer) summary() web.MailSummary {
	st := m.disp.Stats()
	return web.MailSummary{Sent: st.Sent, Queued: st.Queued, LastError: st.LastError}
}

// SMTPConfig turns the alerting section into the sender's settings.
func SMTPConfig(a *config.Alerting) alerting.SMTPConfig {
	return alerting.SMTPConfig{
		Host: a.SMTP.Host, Port: a.SMTP.Port, TLS: a.SMTP.TLS, Username: a.SMTP.Username,
		PasswordFile: a.SMTP.PasswordFile, PasswordEnv: a.SMTP.PasswordEnv, From: a.From, To: a.To,
		HELO: a.SMTP.HELO, CAFile: a.SMTP.CAFile, Timeout: a.SMTP.Timeout.D(),
	}
}
