package alerting

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"log/slog"
	"net"
	"net/mail"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

func newSender(t *testing.T, cfg SMTPConfig) *Sender {
	t.Helper()
	s, err := NewSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func messageID(t *testing.T, raw []byte) string {
	t.Helper()
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m.Header.Get("Message-ID")
}

func passwordFile(t *testing.T, pw string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSenderSTARTTLSAuth(t *testing.T) {
	ts := startServer(t, "starttls", "alerts", "s3cret-pw")
	cfg := ts.config()
	cfg.Username, cfg.PasswordFile = "alerts", passwordFile(t, "s3cret-pw")
	m := testMail(time.Now())
	if err := newSender(t, cfg).Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	msgs := ts.messages()
	if len(msgs) != 1 || messageID(t, msgs[0]) != "<"+m.MessageID+">" {
		t.Fatalf("received %q", msgs)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.authed) != 1 || ts.mailFrom[0] != "lvsmon@director.example" {
		t.Errorf("auth %v, MAIL FROM %v", ts.authed, ts.mailFrom)
	}
}

func TestSenderImplicitTLSAuthFromEnv(t *testing.T) {
	ts := startServer(t, "tls", "alerts", "env-pw")
	t.Setenv("LVSMON_TEST_SMTP_PW", "env-pw")
	cfg := ts.config()
	cfg.Username, cfg.PasswordEnv = "alerts", "LVSMON_TEST_SMTP_PW"
	if err := newSender(t, cfg).Send(context.Background(), testMail(time.Now())); err != nil {
		t.Fatal(err)
	}
	if len(ts.messages()) != 1 {
		t.Fatal("not received")
	}
}

func TestSenderMandatorySTARTTLS(t *testing.T) {
	ts := startServer(t, "plain", "", "")
	cfg := ts.config()
	cfg.TLS = "starttls"
	err := newSender(t, cfg).Send(context.Background(), testMail(time.Now()))
	if err == nil || !strings.Contains(err.Error(), "STARTTLS") {
		t.Fatalf("mandatory STARTTLS against a server without it: %v", err)
	}
	if len(ts.messages()) != 0 {
		t.Fatal("sent in the clear")
	}
	cfg.TLS = "opportunistic"
	if err := newSender(t, cfg).Send(context.Background(), testMail(time.Now())); err != nil {
		t.Fatalf("opportunistic: %v", err)
	}
	// Opportunistic upgrades when offered: with an unknown certificate it
	// fails (no silent downgrade), with the right CA it goes through.
	tls := startServer(t, "starttls", "", "")
	cfg = tls.config()
	cfg.TLS, cfg.CAFile = "opportunistic", ""
	if err := newSender(t, cfg).Send(context.Background(), testMail(time.Now())); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("opportunistic STARTTLS with an unknown certificate: %v", err)
	}
	cfg.CAFile = tls.caFile
	if err := newSender(t, cfg).Send(context.Background(), testMail(time.Now())); err != nil {
		t.Fatalf("opportunistic with STARTTLS: %v", err)
	}
	if len(tls.messages()) != 1 {
		t.Fatal("not received over STARTTLS")
	}
}

func TestSenderClassifiesReplies(t *testing.T) {
	ts := startServer(t, "plain", "", "", stepTemp, stepTempAtData, stepPerm, stepPermAtRcpt, stepDropInData)
	s := newSender(t, ts.config())
	for _, want := range []struct {
		perm bool
		code int
	}{{false, 451}, {false, 452}, {true, 554}, {true, 550}, {false, 0}} {
		err := s.Send(context.Background(), testMail(time.Now()))
		var se *SendError
		if !errors.As(err, &se) || se.Permanent != want.perm || se.Code != want.code || IsPermanent(err) != want.perm {
			t.Errorf("got %v (%+v), want permanent=%v code=%d", err, se, want.perm, want.code)
		}
	}
	if len(ts.messages()) != 0 {
		t.Fatal("a refused mail counted as received")
	}
	// Nobody listening: temporary.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	cfg := ts.config()
	cfg.Port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	if err := newSender(t, cfg).Send(context.Background(), testMail(time.Now())); err == nil || IsPermanent(err) {
		t.Errorf("connection refused: %v", err)
	}
}

func TestSenderSlowServer(t *testing.T) {
	ts := startServer(t, "plain", "", "", stepSlowMail)
	cfg := ts.config()
	cfg.Timeout = 300 * time.Millisecond
	start := time.Now()
	err := newSender(t, cfg).Send(context.Background(), testMail(time.Now()))
	if err == nil || IsPermanent(err) {
		t.Fatalf("slow server: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("the timeout did not cut the conversation short (%v)", el)
	}
	// A cancelled context interrupts too.
	ts.mu.Lock()
	ts.script = []step{stepSlowMail}
	ts.mu.Unlock()
	cfg.Timeout = time.Minute
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start = time.Now()
	if err := newSender(t, cfg).Send(ctx, testMail(time.Now())); err == nil || IsPermanent(err) {
		t.Fatalf("cancelled: %v", err)
	}
	if el := time.Since(start); el > 2*time.Second {
		t.Errorf("cancel did not interrupt (%v)", el)
	}
}

func TestPasswordNeverInErrorsOrLogs(t *testing.T) {
	const pw = "Hunter2-very-secret"
	ts := startServer(t, "starttls", "alerts", "the-right-one")
	ts.authText = "bad credentials for alerts/" + pw // a server that echoes
	cfg := ts.config()
	cfg.Username, cfg.PasswordFile = "alerts", passwordFile(t, pw)
	dir := t.TempDir()
	o, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	clk := newFakeClock()
	d := NewDispatcher(o, newSender(t, cfg), DispatcherConfig{Clock: clk,
		Log: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	if err := o.Put(testMail(clk.Now())); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	waitFor(t, "a failed attempt, logged", func() bool { return strings.Contains(logs.String(), "535") })
	s := d.Stats()
	if !strings.Contains(s.LastError, "535") || s.Permanent != 1 {
		t.Errorf("stats = %+v", s)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*"))
	var disk []byte
	for _, f := range files {
		b, _ := os.ReadFile(f)
		disk = append(disk, b...)
	}
	b64 := base64.StdEncoding.EncodeToString([]byte(pw))
	for what, text := range map[string]string{"error": s.LastError, "log": logs.String(), "outbox": string(disk)} {
		if strings.Contains(text, pw) || strings.Contains(text, b64) || strings.Contains(text, "Hunter2") {
			t.Errorf("the password is in the %s: %s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "535") {
		t.Errorf("the failure was not logged: %s", logs.String())
	}
	// Missing env var / file: the error names the source, not a value.
	_, err = NewSender(SMTPConfig{Host: "127.0.0.1", Username: "u", PasswordEnv: "LVSMON_TEST_UNSET_PW"})
	if err == nil || !strings.Contains(err.Error(), "LVSMON_TEST_UNSET_PW") {
		t.Errorf("unset env: %v", err)
	}
}

// The point of the outbox: a mail survives a 4xx and a hang-up in the
// middle of DATA and goes out exactly once, with its Message-ID, when the
// server recovers.
func TestDispatcherSurvives4xxAndMidDataDisconnect(t *testing.T) {
	ts := startServer(t, "starttls", "alerts", "pw", stepTemp, stepDropInData, stepTempAtData)
	cfg := ts.config()
	cfg.Username, cfg.PasswordFile = "alerts", passwordFile(t, "pw")
	o, err := OpenOutbox(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	d := NewDispatcher(o, newSender(t, cfg), DispatcherConfig{Clock: clk, Rand: func() float64 { return 0.5 }})
	m := testMail(clk.Now())
	if err := o.Put(m); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		if got := clk.nextWait(t); got != want {
			t.Fatalf("wait %d = %v, want %v", i, got, want)
		}
		if p := o.Pending(); len(p) != 1 || p[0].Attempts != i+1 || p[0].Permanent {
			t.Fatalf("after failure %d: %+v", i+1, p)
		}
		clk.Advance(want)
	}
	// Done runs before the stats count the mail: wait for both.
	waitFor(t, "delivery", func() bool { return o.Len() == 0 && d.Stats().Sent == 1 })
	msgs := ts.messages()
	if len(msgs) != 1 || messageID(t, msgs[0]) != "<"+m.MessageID+">" {
		t.Fatalf("received %d mails: %q", len(msgs), msgs)
	}
	if ts.transactions() != 4 {
		t.Errorf("server saw %d transactions, want 4", ts.transactions())
	}
	if s := d.Stats(); s.Sent != 1 || s.Failed != 3 || s.Queued != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestDispatcherPermanentKeptAndReported(t *testing.T) {
	ts := startServer(t, "plain", "", "", stepPerm)
	o, err := OpenOutbox(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	clk := newFakeClock()
	d := NewDispatcher(o, newSender(t, ts.config()), DispatcherConfig{Clock: clk})
	if err := o.Put(testMail(clk.Now())); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	waitFor(t, "the refusal", func() bool { return d.Stats().Permanent == 1 })
	p := o.Pending()
	if len(p) != 1 || !p[0].Permanent || !strings.Contains(p[0].LastError, "554") {
		t.Fatalf("pending = %+v", p)
	}
	if s := d.Stats(); !strings.Contains(s.LastError, "554 5.6.0 message refused") || s.Queued != 1 {
		t.Errorf("stats = %+v", s)
	}
	// Never retried, however much time passes: a mail put after it is
	// sent (the server accepts it), and the server saw nothing else.
	clk.Advance(24 * time.Hour)
	marker := testMail(clk.Now())
	if err := o.Put(marker); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	waitFor(t, "a mail put after the refused one", func() bool { return d.Stats().Sent == 1 })
	if msgs := ts.messages(); ts.transactions() != 2 || len(msgs) != 1 || messageID(t, msgs[0]) != "<"+marker.MessageID+">" {
		t.Errorf("%d attempts, %d mails received: the refused mail was retried", ts.transactions(), len(msgs))
	}
}

func TestDispatcherResumesAfterRestart(t *testing.T) {
	dir := t.TempDir()
	clk := newFakeClock()
	// First life: the server is down, the attempt fails, backoff is saved.
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	deadPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	o1, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	m := testMail(clk.Now())
	if err := o1.Put(m); err != nil {
		t.Fatal(err)
	}
	d1 := NewDispatcher(o1, newSender(t, SMTPConfig{Host: "127.0.0.1", Port: deadPort, TLS: "none", Timeout: time.Second}),
		DispatcherConfig{Clock: clk, Rand: func() float64 { return 0.5 }})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d1.Run(ctx); close(done) }()
	if w := clk.nextWait(t); w != 10*time.Second {
		t.Fatalf("wait = %v", w)
	}
	cancel()
	<-done

	// Second life: a new Outbox on the same directory, the server is up.
	ts := startServer(t, "plain", "", "")
	o2, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := o2.Pending()
	if len(p) != 1 || p[0].Attempts != 1 || !p[0].NextAttempt.Equal(clk.Now().Add(10*time.Second)) {
		t.Fatalf("after restart: %+v", p)
	}
	clk2 := newFakeClock() // same start time as clk
	d2 := NewDispatcher(o2, newSender(t, ts.config()), DispatcherConfig{Clock: clk2})
	runDispatcher(t, d2)
	if w := clk2.nextWait(t); w != 10*time.Second {
		t.Fatalf("the persisted backoff was not honoured: wait %v", w)
	}
	if len(ts.messages()) != 0 {
		t.Fatal("sent before the backoff ran out")
	}
	clk2.Advance(10 * time.Second)
	waitFor(t, "delivery after restart", func() bool { return o2.Len() == 0 })
	msgs := ts.messages()
	if len(msgs) != 1 || messageID(t, msgs[0]) != "<"+m.MessageID+">" {
		t.Fatalf("received %q", msgs)
	}
}

func TestSenderNoClearTextPassword(t *testing.T) {
	ts := startServer(t, "plain", "alerts", "pw")
	ts.srv.AllowInsecureAuth = true
	cfg := ts.config()
	cfg.Host = "mail.example.org" // not localhost: PLAIN must not go in the clear
	cfg.Username, cfg.PasswordFile = "alerts", passwordFile(t, "pw")
	s := newSender(t, cfg)
	s.dialAddr = "127.0.0.1:" + strconv.Itoa(ts.port)
	err := s.Send(context.Background(), testMail(time.Now()))
	if !IsPermanent(err) || !strings.Contains(err.Error(), "unencrypted") {
		t.Fatalf("PLAIN over plain text to a remote host: %v", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if len(ts.authed) != 0 || len(ts.received) != 0 {
		t.Fatal("the password or the mail went over the clear connection")
	}
}
