package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
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
	for name, conf := range map[string]string{
		"no alerting section": "director: dir1\n",
		"no mail in alerting": "director: dir1\nalerting: {webhooks: [{name: a, url: 'http://127.0.0.1:1/'}]}\n",
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "lvsmon.yaml")
			os.WriteFile(path, []byte(conf), 0o644)
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"test-alert", "--config", path}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "configures no mail") {
				t.Fatalf("exit %d, stderr %s", code, errb.String())
			}
		})
	}
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
