package alerting

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	smtpd "github.com/emersion/go-smtp"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// fakeClock is a manual clock: After channels fire only on Advance.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock and fires the timers that are due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.waiters = fireDue(c.waiters, c.now)
}

// fireDue fires the waiters due at now and returns the others.
func fireDue(ws []fakeWaiter, now time.Time) []fakeWaiter {
	keep := ws[:0]
	for _, w := range ws {
		if !w.at.After(now) {
			w.ch <- now
		} else {
			keep = append(keep, w)
		}
	}
	return keep
}

// waiting is how many sleep on the clock now.
func (c *fakeClock) waiting() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// nextWait waits (bounded, in real time) until something sleeps on the
// clock and returns how long it sleeps.
func (c *fakeClock) nextWait(t *testing.T) time.Duration {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		c.mu.Lock()
		if len(c.waiters) > 0 {
			d := c.waiters[0].at.Sub(c.now)
			c.mu.Unlock()
			return d
		}
		c.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatal("nothing waited on the fake clock within 10 s")
	return 0
}

// testCert makes a self-signed certificate for 127.0.0.1 and writes it
// (PEM) to dir/ca.pem for SMTPConfig.CAFile.
func testCert(t *testing.T, dir string) (tls.Certificate, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "lvsmon test smtp"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, path
}

// step is what the test server does with one transaction.
type step int

const (
	stepAccept     step = iota
	stepTemp            // 451 to MAIL FROM
	stepPerm            // 554 after DATA
	stepDropInData      // read part of DATA, then hang up
	stepSlowMail        // sleep before answering MAIL FROM
	stepTempAtData      // 452 after DATA
	stepPermAtRcpt      // 550 to RCPT TO
)

// testServer is an in-process SMTP server (emersion/go-smtp) on
// 127.0.0.1 with scripted replies.
type testServer struct {
	srv      *smtpd.Server
	port     int
	caFile   string
	user     string
	pass     string
	authText string // the 535 text, to check scrubbing

	mu       sync.Mutex
	script   []step // one per transaction; stepAccept when exhausted
	received [][]byte
	mailFrom []string
	authed   []string
	attempts int
	slow     time.Duration
}

// startServer starts a server. mode: "plain" (no TLS), "starttls",
// "tls" (implicit). user non-empty requires AUTH PLAIN.
func startServer(t *testing.T, mode, user, pass string, script ...step) *testServer {
	t.Helper()
	ts := &testServer{user: user, pass: pass, script: script, slow: 3 * time.Second}
	ts.srv = smtpd.NewServer(smtpd.BackendFunc(func(c *smtpd.Conn) (smtpd.Session, error) {
		return &testSession{ts: ts, c: c}, nil
	}))
	ts.srv.Domain = "localhost"
	ts.srv.ReadTimeout = 10 * time.Second
	ts.srv.WriteTimeout = 10 * time.Second
	ts.srv.ErrorLog = nopLogger{}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ts.port = l.Addr().(*net.TCPAddr).Port
	if mode != "plain" {
		cert, ca := testCert(t, t.TempDir())
		ts.caFile = ca
		cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
		if mode == "tls" {
			l = tls.NewListener(l, cfg)
		} else {
			ts.srv.TLSConfig = cfg
		}
	}
	go ts.srv.Serve(l)
	t.Cleanup(func() { ts.srv.Close() })
	return ts
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}
func (nopLogger) Println(...any)        {}

func (ts *testServer) next() step {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	ts.attempts++
	if len(ts.script) == 0 {
		return stepAccept
	}
	s := ts.script[0]
	ts.script = ts.script[1:]
	return s
}

func (ts *testServer) messages() [][]byte {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([][]byte(nil), ts.received...)
}

func (ts *testServer) config() SMTPConfig {
	tlsMode := "none"
	switch {
	case ts.caFile != "" && ts.srv.TLSConfig != nil:
		tlsMode = "starttls"
	case ts.caFile != "":
		tlsMode = "tls"
	}
	return SMTPConfig{Host: "127.0.0.1", Port: ts.port, TLS: tlsMode, CAFile: ts.caFile, HELO: "director.test", Timeout: 5 * time.Second}
}

type testSession struct {
	ts     *testServer
	c      *smtpd.Conn
	authed bool
	step   step
}

func (s *testSession) AuthMechanisms() []string {
	if s.ts.user == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (s *testSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, username, password string) error {
		if username != s.ts.user || password != s.ts.pass {
			text := "authentication failed"
			if s.ts.authText != "" {
				text = s.ts.authText
			}
			return &smtpd.SMTPError{Code: 535, EnhancedCode: smtpd.EnhancedCode{5, 7, 8}, Message: text}
		}
		s.authed = true
		s.ts.mu.Lock()
		s.ts.authed = append(s.ts.authed, username)
		s.ts.mu.Unlock()
		return nil
	}), nil
}

func (s *testSession) Mail(from string, _ *smtpd.MailOptions) error {
	if s.ts.user != "" && !s.authed {
		return smtpd.ErrAuthRequired
	}
	s.step = s.ts.next()
	switch s.step {
	case stepTemp:
		return &smtpd.SMTPError{Code: 451, EnhancedCode: smtpd.EnhancedCode{4, 3, 0}, Message: "try again later"}
	case stepSlowMail:
		time.Sleep(s.ts.slow)
	}
	s.ts.mu.Lock()
	s.ts.mailFrom = append(s.ts.mailFrom, from)
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Rcpt(string, *smtpd.RcptOptions) error {
	if s.step == stepPermAtRcpt {
		return &smtpd.SMTPError{Code: 550, EnhancedCode: smtpd.EnhancedCode{5, 1, 1}, Message: "no such user"}
	}
	return nil
}

func (s *testSession) Data(r io.Reader) error {
	switch s.step {
	case stepDropInData:
		buf := make([]byte, 20)
		io.ReadFull(r, buf)
		s.c.Conn().Close()
		return errors.New("hung up")
	case stepPerm:
		io.Copy(io.Discard, r)
		return &smtpd.SMTPError{Code: 554, EnhancedCode: smtpd.EnhancedCode{5, 6, 0}, Message: "message refused"}
	case stepTempAtData:
		io.Copy(io.Discard, r)
		return &smtpd.SMTPError{Code: 452, EnhancedCode: smtpd.EnhancedCode{4, 3, 1}, Message: "mailbox full"}
	}
	var b bytes.Buffer
	if _, err := io.Copy(&b, r); err != nil {
		return err
	}
	s.ts.mu.Lock()
	s.ts.received = append(s.ts.received, b.Bytes())
	s.ts.mu.Unlock()
	return nil
}

func (s *testSession) Reset()        { s.step = stepAccept }
func (s *testSession) Logout() error { return nil }

func testMail(now time.Time) Mail {
	return NewMail("lvsmon <lvsmon@director.example>", []string{"ops@example.org"},
		"[lvsmon] web:80 10.0.0.2 down", "The real server 10.0.0.2:80 failed its check.\n", now, 41, 42)
}

// waitFor: the shared poll (testutil.WaitFor).
var waitFor = testutil.WaitFor

func (ts *testServer) transactions() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.attempts
}
