package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	smtpd "github.com/emersion/go-smtp"
)

// freeAddr returns a loopback address nobody listens on (now).
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// sink is a minimal in-process SMTP server (go-smtp) that accepts or
// refuses every mail.
type sink struct {
	refuse bool
	mu     sync.Mutex
	got    [][]byte
}

func (s *sink) NewSession(*smtpd.Conn) (smtpd.Session, error) { return &sinkSession{s: s}, nil }

type sinkSession struct{ s *sink }

func (ss *sinkSession) Mail(string, *smtpd.MailOptions) error { return nil }
func (ss *sinkSession) Rcpt(string, *smtpd.RcptOptions) error {
	if ss.s.refuse {
		return &smtpd.SMTPError{Code: 550, EnhancedCode: smtpd.EnhancedCode{5, 1, 1}, Message: "no such mailbox"}
	}
	return nil
}
func (ss *sinkSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, b)
	ss.s.mu.Unlock()
	return err
}
func (ss *sinkSession) Reset()        {}
func (ss *sinkSession) Logout() error { return nil }

func startSink(t *testing.T, refuse bool) (*sink, int) {
	t.Helper()
	s := &sink{refuse: refuse}
	srv := smtpd.NewServer(s)
	srv.Domain = "localhost"
	srv.AllowInsecureAuth = true
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return s, l.Addr().(*net.TCPAddr).Port
}

func TestTestAlert(t *testing.T) {
	for _, tc := range []struct {
		name   string
		refuse bool
		code   int
		want   []string
	}{
		{"accepted", false, 0, []string{"sending a test mail to ops@example.test through 127.0.0.1:", "C: MAIL FROM:lvsmon@director.test", "OK: the server accepted the test mail (Message-ID <"}},
		{"refused", true, 1, []string{"C: RCPT TO:ops@example.test", "FAILED: smtp rcpt: permanent failure: 550", "a permanent failure"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, port := startSink(t, tc.refuse)
			path := filepath.Join(t.TempDir(), "lvsmon.yaml")
			os.WriteFile(path, []byte(`director: dir1
alerting:
  smtp: {host: 127.0.0.1, port: `+strconv.Itoa(port)+`, tls: none, helo: director.test}
  from: lvsmon@director.test
  to: [ops@example.test]
`), 0o644)
			var out, errb bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if code := run(ctx, []string{"test-alert", "--config", path}, &out, &errb); code != tc.code {
				t.Fatalf("exit %d, want %d; stdout:\n%s\nstderr:\n%s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, out.String())
				}
			}
			s.mu.Lock()
			defer s.mu.Unlock()
			if n := len(s.got); n != 1-tc.code {
				t.Fatalf("server received %d mails", n)
			}
			if !tc.refuse && !bytes.Contains(s.got[0], []byte("Subject: [lvsmon dir1] test mail")) {
				t.Errorf("mail:\n%s", s.got[0])
			}
		})
	}
	t.Run("no alerting section", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "lvsmon.yaml")
		os.WriteFile(path, []byte("director: dir1\n"), 0o644)
		var out, errb bytes.Buffer
		if code := run(context.Background(), []string{"test-alert", "--config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "has no alerting section") {
			t.Fatalf("exit %d, stderr %s", code, errb.String())
		}
	})
}

// TestDemoMail: the demo director pointed at an SMTP server with --smtp
// mails its timeline, grouped: the role at start, web2's outage, and the
// outage of every web server with the sorry server taking over, in one
// mail.
func TestDemoMail(t *testing.T) {
	t.Parallel()
	s, port := startSink(t, false)
	// At 20x the 10-minute timeline takes 30 s; the grouping window
	// follows (10s / 20, at least 1s).
	d := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "1s", "--speed", "20",
		"--smtp", "127.0.0.1:"+strconv.Itoa(port), "--smtp-tls", "none")
	base := d.url(t)
	subjects := func() []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []string
		for _, m := range s.got {
			for _, l := range strings.Split(string(m), "\r\n") {
				if strings.HasPrefix(l, "Subject: ") {
					out = append(out, strings.TrimPrefix(l, "Subject: "))
				}
			}
		}
		return out
	}
	want := func(sub string) {
		t.Helper()
		eventually(t, 45*time.Second, func() bool {
			return slices.ContainsFunc(subjects(), func(s string) bool { return strings.Contains(s, sub) })
		},
			func() string {
				return fmt.Sprintf("no mail with %q in its subject; subjects:\n%s\nlog:\n%s", sub, strings.Join(subjects(), "\n"), d.logText())
			})
	}
	want("[lvsmon demo-director] ")
	want("down on web")
	want("3 real servers down on web")
	s.mu.Lock()
	var all string
	for _, m := range s.got {
		all += string(m)
	}
	s.mu.Unlock()
	for _, w := range []string{"sorry", "State of the service now", "Message-ID: <"} {
		if !strings.Contains(all, w) {
			t.Errorf("the demo's mails never say %q", w)
		}
	}
	t.Logf("%d mails for one demo timeline: %q", len(subjects()), subjects())
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), " · mail: ") {
		t.Errorf("the status page says nothing about mail")
	}
	d.stop(t)
}

// TestMailSurvivesCrashDuringOutage: the mail relay is down when a real
// server fails; lvsmon queues the mail, fails to send it, and is killed
// (SIGKILL, no chance to clean up). Restarted with the relay back, it
// sends that very mail (same Message-ID) exactly once, and the checker's
// renewed "down" after the restart is not mailed again.
func TestMailSurvivesCrashDuringOutage(t *testing.T) {
	t.Parallel()
	// A port for the relay that nobody listens on yet, and a real
	// server that refuses connections.
	relay := freeAddr(t)
	_, dead, _ := net.SplitHostPort(freeAddr(t))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "lvsmon.yaml")
	_, relayPort, _ := net.SplitHostPort(relay)
	os.WriteFile(cfg, []byte(`director: crashy
data_dir: `+filepath.Join(dir, "data")+`
step: 1s
ipvs: {backend: fake}
alerting:
  smtp: {host: 127.0.0.1, port: `+relayPort+`, tls: none, timeout: 2s}
  from: lvsmon@crashy.test
  to: [ops@crashy.test]
  group_window: 1s
virtual_services:
  - name: web
    address: 198.51.100.80
    port: 80
    check: {type: tcp, interval: 1s, timeout: 500ms}
    real_servers:
      - {address: 127.0.0.1, port: `+dead+`, forward: nat}
`), 0o644)

	d := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	d.url(t)
	d.waitLog(t, "down on web")
	d.waitLog(t, "sending failed, will retry")
	queued := regexp.MustCompile(`subject="[^"]*down on web[^"]*" message_id=(\S+)`).FindStringSubmatch(d.logText())
	if queued == nil {
		t.Fatalf("no queued down mail in the log:\n%s", d.logText())
	}
	d.cmd.Process.Kill()
	<-d.done

	// The relay comes back; lvsmon restarts.
	s := &sink{}
	srv := smtpd.NewServer(s)
	srv.Domain = "localhost"
	rl, err := net.Listen("tcp", relay)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(rl)
	t.Cleanup(func() { srv.Close() })
	restarted := time.Now()
	d2 := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	base2 := d2.url(t)
	d2.waitLog(t, "mails from before the restart are in the outbox")
	downMails := func() (n int, ids []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.got {
			msg := string(m)
			if strings.Contains(msg, "down on web") {
				n++
				for _, l := range strings.Split(msg, "\r\n") {
					if strings.HasPrefix(l, "Message-ID: ") {
						ids = append(ids, strings.Trim(strings.TrimPrefix(l, "Message-ID: "), "<>"))
					}
				}
			}
		}
		return n, ids
	}
	// The first retry after the crash is due at most 20 s after the
	// failed attempt (10 s backoff, jitter), as stored in the outbox.
	eventually(t, 40*time.Second, func() bool { n, _ := downMails(); return n > 0 },
		func() string { return "the queued mail never arrived; log:\n" + d2.logText() })
	t.Logf("the mail queued before the crash arrived %v after the restart", time.Since(restarted).Round(time.Millisecond))
	// Let the restarted checker re-announce the server down and a window
	// pass: still one mail about it.
	var st struct {
		Alerting struct {
			Pipeline struct {
				Suppressed map[string]int `json:"suppressed"`
			} `json:"pipeline"`
		} `json:"alerting"`
	}
	eventually(t, 20*time.Second, func() bool {
		getJSON(t, base2+"/api/v1/status", &st)
		return st.Alerting.Pipeline.Suppressed["duplicate"] > 0
	}, func() string {
		return fmt.Sprintf("the re-announced down was never seen as a duplicate: %+v; log:\n%s", st, d2.logText())
	})
	time.Sleep(2 * time.Second) // a grouping window and more
	n, ids := downMails()
	if n != 1 || len(ids) != 1 || ids[0] != queued[1] {
		t.Fatalf("%d down mails with ids %v, want exactly the one queued before the crash (%s); log:\n%s", n, ids, queued[1], d2.logText())
	}
	d2.stop(t)
}

// TestAlertingReload: a reload moves mail to another relay and other
// recipients without a restart; the reload's own event is mailed through
// the new ones.
func TestAlertingReload(t *testing.T) {
	t.Parallel()
	a, portA := startSink(t, false)
	b, portB := startSink(t, false)
	dir := t.TempDir()
	path := filepath.Join(dir, "lvsmon.yaml")
	write := func(port int, to string) {
		os.WriteFile(path, []byte(`director: reloady
data_dir: `+filepath.Join(dir, "data")+`
step: 1s
ipvs: {backend: fake}
alerting:
  smtp: {host: 127.0.0.1, port: `+strconv.Itoa(port)+`, tls: none}
  from: lvsmon@reloady.test
  to: [`+to+`]
  kinds: [all]
  group_window: 1s
`), 0o644)
	}
	got := func(s *sink, what string) bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.got {
			if strings.Contains(string(m), what) {
				return true
			}
		}
		return false
	}
	waitMail := func(s *sink, what string) {
		t.Helper()
		eventually(t, 20*time.Second, func() bool { return got(s, what) }, func() string { return fmt.Sprintf("no mail with %q", what) })
	}
	write(portA, "day@reloady.test")
	d := startDaemon(t, "run", "--config", path, "--listen", "127.0.0.1:0")
	d.url(t)
	waitMail(a, "To: <day@reloady.test>")
	write(portB, "night@reloady.test")
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "alerting section reloaded")
	waitMail(b, "To: <night@reloady.test>")
	if !got(b, "config reloaded") {
		t.Errorf("the reload's event did not go through the new relay")
	}
	if got(a, "config reloaded") {
		t.Errorf("the old relay got mail after the reload")
	}
	d.stop(t)
}
