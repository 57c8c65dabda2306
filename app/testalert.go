package app

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/web"
)

// TestMail is the test mail of `lvsmon test-alert` and of the pages'
// test alert: what it says tells the reader where it came from and by
// which way.
func TestMail(cfg *config.Config, by string, now time.Time) alerting.Mail {
	a := cfg.Alerting
	host, _ := os.Hostname()
	body := fmt.Sprintf(`This is a test mail from lvsmon on director %s (host %s), sent by
%s at %s.

If you read this, lvsmon's alert mail reaches you through %s:%d (%s).
Alert mails have subjects starting with %q.
`, cfg.Director, host, by, now.Format(time.RFC1123Z), a.SMTP.Host, a.SMTP.Port, a.SMTP.TLS, a.SubjectPrefix)
	return alerting.NewMail(a.From, a.To, a.SubjectPrefix+" test mail", body, now)
}

// TestAlert implements web.Control: one test mail now, straight to the
// relay (not through the outbox: the operator wants the relay's answer),
// with the SMTP conversation (secrets scrubbed by the sender) to show.
func (a *App) TestAlert(ctx context.Context, by string) ([]string, error) {
	cfg := a.cur.Load()
	if cfg.Alerting == nil || !cfg.Alerting.MailEnabled() {
		return nil, web.ErrNoMail
	}
	sender, err := alerting.NewSender(SMTPConfig(cfg.Alerting))
	if err != nil {
		return nil, err
	}
	var (
		mu    sync.Mutex
		lines []string
	)
	sender = sender.WithTranscript(func(l string) { mu.Lock(); lines = append(lines, l); mu.Unlock() })
	m := TestMail(cfg, "an operator on the status page ("+by+")", time.Now())
	err = sender.Send(ctx, m)
	mu.Lock()
	defer mu.Unlock()
	a.log.Info("test mail from the page", "by", by, "ok", err == nil, "err", err)
	if err != nil {
		kind := "temporary: the daemon would retry with backoff"
		if alerting.IsPermanent(err) {
			kind = "permanent: the daemon would keep the mail in its outbox, marked failed"
		}
		return lines, fmt.Errorf("%w (%s)", err, kind)
	}
	return append(lines, "OK: the server accepted the test mail (Message-ID <"+m.MessageID+">)"), nil
}
