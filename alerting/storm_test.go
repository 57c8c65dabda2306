package alerting

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// TestStorm500ServersDown is the storm: 500 real servers go down
// within one second. The events go through the real event log, the
// pipeline (on the fake clock, so the grouping window is exact), the
// durable outbox, the dispatcher and the SMTP sender to an in-process
// SMTP server. At most two mails may arrive, and together they name all
// 500 servers.
func TestStorm500ServersDown(t *testing.T) {
	const n = 500
	ts := startServer(t, "plain", "", "")
	elog, err := events.Open(t.TempDir(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { elog.Close() })
	out, err := OpenOutbox(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	smtp := ts.config()
	d := NewDispatcher(out, newSender(t, smtp), DispatcherConfig{})
	clk := newLoopClock()
	cfg := baseConfig()
	cfg.StateDir = t.TempDir()
	p, err := NewPipeline(cfg, PipelineDeps{
		Outbox: out, Events: elog, Kick: d.Kick, Clock: clk, Name: testName,
		Describe: func(string) string { return fmt.Sprintf("%d real servers, all down; sorry server active", n) },
	})
	if err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	wake := make(chan struct{}, 1)
	elog.Wake(wake)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx, wake) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	})

	began := time.Now()
	first := clk.peek()
	for i := range n {
		// 2 ms apart on the pipeline's clock: all within one second.
		if _, err := elog.Append(events.Event{
			Time: clk.peek(), Kind: events.ServerDown, Service: svcWeb, Server: web(i),
			From: events.Up, To: events.Down, Reason: "http check: connection refused", Actor: events.ActorChecker,
			Message: fmt.Sprintf("web: %s is down: http check: connection refused", webAddr(i)),
		}); err != nil {
			t.Fatal(err)
		}
		clk.Advance(2 * time.Millisecond)
	}
	if span := clk.peek().Sub(first); span > time.Second {
		t.Fatalf("the storm spans %v", span)
	}
	appended := time.Since(began)
	waitFor(t, "the pipeline to read the storm", func() bool { return p.Stats().Events == n })
	clk.Advance(10 * time.Second) // the grouping window ends
	waitFor(t, "the storm's mail to be delivered", func() bool {
		s := p.Stats()
		return s.Held == 0 && s.Backlog == 0 && s.Mails > 0 && out.Len() == 0 && len(ts.messages()) >= int(s.Mails)
	})
	elapsed := time.Since(began)

	msgs := ts.messages()
	if len(msgs) < 1 || len(msgs) > 2 {
		t.Fatalf("%d mails for the storm, want at most 2", len(msgs))
	}
	var bodies, subjects []string
	for _, raw := range msgs {
		m, err := mail.ReadMessage(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		subj, err := new(mime.WordDecoder).DecodeHeader(m.Header.Get("Subject"))
		if err != nil {
			t.Fatal(err)
		}
		subjects = append(subjects, subj)
		b, err := io.ReadAll(quotedprintable.NewReader(m.Body))
		if err != nil {
			t.Fatal(err)
		}
		bodies = append(bodies, string(b))
		for _, l := range strings.Split(string(raw), "\r\n") {
			if len(l) > 998 {
				t.Errorf("a line of %d characters: %.80s...", len(l), l)
			}
		}
	}
	all := strings.Join(bodies, "\n")
	for i := range n {
		if !strings.Contains(all, webAddr(i)+"  http check: connection refused") {
			t.Fatalf("server %s not named in the mails", webAddr(i))
		}
	}
	if len(msgs) == 1 && subjects[0] != "[lvsmon dir1] 500 real servers down on web (tcp_10.0.0.1_80)" {
		t.Errorf("subject %q", subjects[0])
	}
	s := p.Stats()
	t.Logf("storm: %d events in (appended and fsynced in %v), %d mails out (%d bytes), delivered %v after the first event; grouped %d; subjects %q",
		s.Events, appended.Round(time.Millisecond), len(msgs), len(msgs[0]), elapsed.Round(time.Millisecond), s.Grouped, subjects)
}
