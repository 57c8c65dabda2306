package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/app"
	"github.com/lvsmon/lvsmon/importer"
)

// errAlertFailed: the test mail was not accepted; the reason is printed.
var errAlertFailed = errors.New("the test mail was not accepted")

// cmdTestAlert sends one mail through the configured server, printing
// the conversation (password and AUTH data hidden) and its outcome, so an
// operator can check relay, TLS and credentials before an outage needs
// them. It does not go through the outbox: nothing is retried.
func cmdTestAlert(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("test-alert", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagUsage(fs, stderr, "lvsmon test-alert [--config.file FILE] [--quiet]")
	path := &aliasString(fs, "config.file", "config", "/etc/lvsmon/lvsmon.yaml", "config `file`").value
	quiet := fs.Bool("quiet", false, "print only the outcome, not the SMTP conversation")
	configID := configIDFlag(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "test-alert: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	cfg, _, err := importer.Load(*path, importer.Options{ConfigID: *configID})
	if err != nil {
		printConfigErrors(stderr, err)
		return errInvalidConfig
	}
	if cfg.Alerting == nil || !cfg.Alerting.MailEnabled() {
		fmt.Fprintf(stderr, "%s configures no mail (alerting.smtp, from, to): lvsmon sends no mail\n", *path)
		return errInvalidConfig
	}
	a := cfg.Alerting
	sender, err := alerting.NewSender(app.SMTPConfig(a))
	if err != nil {
		return err
	}
	if !*quiet {
		sender = sender.WithTranscript(func(line string) { fmt.Fprintln(stdout, line) })
	}
	m := app.TestMail(cfg, `"lvsmon test-alert"`, time.Now())
	fmt.Fprintf(stdout, "sending a test mail to %s through %s:%d (tls: %s)\n", strings.Join(a.To, ", "), a.SMTP.Host, a.SMTP.Port, a.SMTP.TLS)
	if err := sender.Send(ctx, m); err != nil {
		kind := "a temporary failure: the daemon would retry with backoff"
		if alerting.IsPermanent(err) {
			kind = "a permanent failure: the daemon would keep the mail in its outbox, marked failed"
		}
		fmt.Fprintf(stdout, "FAILED: %v\n(%s)\n", err, kind)
		return errAlertFailed
	}
	fmt.Fprintf(stdout, "OK: the server accepted the test mail (Message-ID <%s>)\n", m.MessageID)
	return nil
}
