package alerting

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	promconfig "github.com/prometheus/common/config"

	gomail "github.com/wneessen/go-mail"
	gomaillog "github.com/wneessen/go-mail/log"
	"github.com/wneessen/go-mail/smtp"
)

// SMTPConfig says how to reach the mail server.
type SMTPConfig struct {
	Host string
	// Port defaults to 587 for "starttls" and "opportunistic", 465 for
	// "tls" and 25 for "none".
	Port int
	// TLS is "starttls" (the default: STARTTLS is mandatory, a server
	// that does not offer it is an error), "opportunistic" (STARTTLS when
	// offered), "tls" (implicit TLS, usually port 465) or "none".
	TLS string
	// Username enables SMTP AUTH (PLAIN, LOGIN or CRAM-MD5, whichever the
	// server offers; PLAIN and LOGIN only over TLS or to localhost).
	Username string
	// The password is read from PasswordFile (trailing newline removed)
	// or, when that is empty, from the environment variable PasswordEnv,
	// at every send, so a rotated password needs no restart. It is never
	// logged nor put in an error text.
	PasswordFile string
	PasswordEnv  string
	From         string
	To           []string
	// HELO is the name sent in EHLO; the host name when empty.
	HELO string
	// CAFile is a PEM bundle to verify the server with instead of the
	// system roots (a private CA, or a test server).
	CAFile string
	// Timeout bounds the whole conversation; 30 s when zero.
	Timeout time.Duration
}

// Sender sends mails through one SMTP server. It is safe for concurrent
// use; each Send is one connection.
type Sender struct {
	cfg    SMTPConfig
	policy gomail.TLSPolicy
	tlsCfg *tls.Config
	// dialAddr, when set (tests), is dialled instead of Host:Port.
	dialAddr string
	// transcript, when set, receives every line of the conversation
	// (AUTH exchanges hidden by go-mail, the password scrubbed).
	transcript func(line string)
}

// WithTranscript returns a copy of s that hands each line of its SMTP
// conversations to fn, prefixed "C: " (client) or "S: " (server). It is
// what `lvsmon test-alert` prints; the daemon does not use it.
func (s *Sender) WithTranscript(fn func(line string)) *Sender {
	c := *s
	c.transcript = fn
	return &c
}

// transcriptLogger adapts go-mail's debug log to a transcript function.
type transcriptLogger struct {
	fn     func(string)
	secret string
}

func (t transcriptLogger) line(l gomaillog.Log) {
	prefix := "S: "
	if l.Direction == gomaillog.DirClientToServer {
		prefix = "C: "
	}
	text := strings.TrimRight(fmt.Sprintf(l.Format, l.Messages...), "\r\n")
	for _, ln := range strings.Split(text, "\n") {
		t.fn(prefix + scrub(strings.TrimRight(ln, "\r"), t.secret))
	}
}

func (t transcriptLogger) Debugf(l gomaillog.Log) { t.line(l) }
func (t transcriptLogger) Infof(l gomaillog.Log)  { t.line(l) }
func (t transcriptLogger) Warnf(l gomaillog.Log)  { t.line(l) }
func (t transcriptLogger) Errorf(l gomaillog.Log) { t.line(l) }

// NewSender checks cfg (and that the password can be read) and returns a
// Sender.
func NewSender(cfg SMTPConfig) (*Sender, error) {
	if cfg.Host == "" {
		return nil, errors.New("smtp: no host")
	}
	if cfg.TLS == "" {
		cfg.TLS = "starttls"
	}
	s := &Sender{cfg: cfg}
	switch cfg.TLS {
	case "starttls":
		s.policy = gomail.TLSMandatory
		if cfg.Port == 0 {
			s.cfg.Port = 587
		}
	case "opportunistic":
		s.policy = gomail.TLSOpportunistic
		if cfg.Port == 0 {
			s.cfg.Port = 587
		}
	case "tls":
		s.policy = gomail.NoTLS // no STARTTLS inside the TLS connection
		if cfg.Port == 0 {
			s.cfg.Port = 465
		}
	case "none":
		s.policy = gomail.NoTLS
		if cfg.Port == 0 {
			s.cfg.Port = 25
		}
	default:
		return nil, fmt.Errorf("smtp: tls must be starttls, opportunistic, tls or none, not %q", cfg.TLS)
	}
	if s.cfg.Port < 1 || s.cfg.Port > 65535 {
		return nil, fmt.Errorf("smtp: bad port %d", s.cfg.Port)
	}
	if s.cfg.Timeout <= 0 {
		s.cfg.Timeout = 30 * time.Second
	}
	tc, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CAFile: cfg.CAFile, ServerName: cfg.Host, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("smtp: ca_file: %w", err)
	}
	s.tlsCfg = tc
	if cfg.Username != "" {
		if _, err := s.password(); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// Config returns the configuration in use (defaults filled in).
func (s *Sender) Config() SMTPConfig { return s.cfg }

func (s *Sender) password() (string, error) {
	switch {
	case s.cfg.PasswordFile != "":
		b, err := os.ReadFile(s.cfg.PasswordFile)
		if err != nil {
			// The error names the file, not its content.
			return "", fmt.Errorf("smtp: password file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case s.cfg.PasswordEnv != "":
		p, ok := os.LookupEnv(s.cfg.PasswordEnv)
		if !ok {
			return "", fmt.Errorf("smtp: environment variable %s (the password) is not set", s.cfg.PasswordEnv)
		}
		return p, nil
	}
	return "", errors.New("smtp: a username needs password_file or password_env")
}

// SendError is a failed delivery. Permanent is set for 5xx replies: the
// server refused the mail (or the credentials) and repeating the same
// attempt will not help.
type SendError struct {
	Stage     string // dial, hello, auth, mail, rcpt, data
	Code      int    // SMTP reply code, 0 when there was none
	Permanent bool
	Text      string // the reason, scrubbed of the password
}

func (e *SendError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Code != 0 {
		return fmt.Sprintf("smtp %s: %s failure: %d %s", e.Stage, kind, e.Code, e.Text)
	}
	return fmt.Sprintf("smtp %s: %s failure: %s", e.Stage, kind, e.Text)
}

// IsPermanent reports whether err is a permanent delivery failure (a
// mail's or a webhook's).
func IsPermanent(err error) bool {
	var se *SendError
	var he *HTTPError
	return errors.As(err, &se) && se.Permanent || errors.As(err, &he) && he.Permanent
}

// classify turns an error of one stage into a SendError: a 5xx reply is
// permanent, a 4xx reply, a network error or anything else temporary. The
// text is scrubbed of the password in plain and base64 form. Only the
// text is kept, not the wrapped error, so no password can leak through
// an Unwrap.
func classify(stage string, err error, secret string) *SendError {
	se := &SendError{Stage: stage}
	var te *textproto.Error
	if errors.As(err, &te) {
		se.Code = te.Code
		se.Permanent = te.Code >= 500 && te.Code < 600
		se.Text = te.Msg
	} else {
		se.Text = err.Error()
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			se.Text = "interrupted: " + se.Text
		}
	}
	se.Text = scrub(se.Text, secret)
	return se
}

func scrub(text, secret string) string {
	if secret == "" {
		return text
	}
	for _, s := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), base64.RawStdEncoding.EncodeToString([]byte(secret))} {
		text = strings.ReplaceAll(text, s, "[redacted]")
	}
	return text
}

// Send delivers m in one SMTP conversation. It returns nil only when the
// server accepted the message (250 after the final dot). A failure is a
// *SendError.
func (s *Sender) Send(ctx context.Context, m Mail) error {
	msg, err := m.Render()
	if err != nil {
		return &SendError{Stage: "render", Permanent: true, Text: err.Error()}
	}
	from, to, err := m.envelope()
	if err != nil {
		return &SendError{Stage: "render", Permanent: true, Text: err.Error()}
	}
	var secret string
	if s.cfg.Username != "" {
		if secret, err = s.password(); err != nil {
			return &SendError{Stage: "auth", Text: err.Error()}
		}
	}

	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	var (
		connMu sync.Mutex
		conn   net.Conn
	)
	// Closing the connection is how a cancelled context interrupts a
	// conversation that is blocked reading a reply.
	stop := context.AfterFunc(ctx, func() {
		connMu.Lock()
		defer connMu.Unlock()
		if conn != nil {
			conn.Close()
		}
	})
	defer stop()
	dial := func(dctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		if s.dialAddr != "" {
			addr = s.dialAddr
		}
		c, err := d.DialContext(dctx, network, addr)
		if err != nil {
			return nil, err
		}
		if s.cfg.TLS == "tls" {
			tc := tls.Client(c, s.tlsCfg.Clone())
			if err := tc.HandshakeContext(dctx); err != nil {
				c.Close()
				return nil, err
			}
			c = tc
		}
		connMu.Lock()
		conn = c
		connMu.Unlock()
		if ctx.Err() != nil {
			c.Close()
			return nil, ctx.Err()
		}
		return c, nil
	}
	opts := []gomail.Option{
		gomail.WithPort(s.cfg.Port),
		gomail.WithTimeout(s.cfg.Timeout),
		gomail.WithTLSPolicy(s.policy),
		gomail.WithTLSConfig(s.tlsCfg),
		gomail.WithDialContextFunc(dial),
	}
	if s.cfg.HELO != "" {
		opts = append(opts, gomail.WithHELO(s.cfg.HELO))
	}
	if s.transcript != nil {
		opts = append(opts, gomail.WithDebugLog(), gomail.WithLogger(transcriptLogger{fn: s.transcript, secret: secret}))
	}
	gc, err := gomail.NewClient(s.cfg.Host, opts...)
	if err != nil {
		return &SendError{Stage: "config", Permanent: true, Text: scrub(err.Error(), secret)}
	}
	// go-mail does the connection, EHLO and the STARTTLS policy.
	c, err := gc.DialToSMTPClientWithContext(ctx)
	if err != nil {
		connMu.Lock()
		if conn != nil {
			conn.Close()
		}
		connMu.Unlock()
		return classify("connect", err, secret)
	}
	defer c.Close()
	if err := c.UpdateDeadline(time.Until(deadline(ctx))); err != nil {
		return classify("connect", err, secret)
	}
	if s.cfg.Username != "" {
		if err := s.auth(c, secret); err != nil {
			return err
		}
	}
	if err := c.Mail(from); err != nil {
		return classify("mail", err, secret)
	}
	for _, t := range to {
		if err := c.Rcpt(t); err != nil {
			return classify("rcpt", err, secret)
		}
	}
	w, err := c.Data()
	if err != nil {
		return classify("data", err, secret)
	}
	if _, err := w.Write(msg); err != nil {
		return classify("data", err, secret)
	}
	if err := w.Close(); err != nil {
		return classify("data", err, secret)
	}
	// Accepted. Whatever QUIT says does not change that.
	_ = c.Quit()
	return nil
}

func deadline(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// auth picks the first mechanism the server offers: PLAIN, LOGIN, then
// CRAM-MD5 over TLS; CRAM-MD5, then PLAIN and LOGIN (which the library
// allows only to localhost) without.
func (s *Sender) auth(c *smtp.Client, secret string) error {
	ok, offered := c.Extension("AUTH")
	if !ok {
		return &SendError{Stage: "auth", Permanent: true, Text: "a username is configured but the server offers no AUTH"}
	}
	mechs := strings.Fields(strings.ToUpper(offered))
	has := func(m string) bool {
		for _, x := range mechs {
			if x == m {
				return true
			}
		}
		return false
	}
	_, encrypted := c.TLSConnectionState()
	order := []string{"PLAIN", "LOGIN", "CRAM-MD5"}
	if !encrypted {
		order = []string{"CRAM-MD5", "PLAIN", "LOGIN"}
	}
	local := s.cfg.Host == "localhost" || s.cfg.Host == "127.0.0.1" || s.cfg.Host == "::1"
	var a smtp.Auth
	for _, m := range order {
		if !has(m) {
			continue
		}
		if !encrypted && !local && m != "CRAM-MD5" {
			return &SendError{Stage: "auth", Permanent: true,
				Text: "refusing to send the password with " + m + " over an unencrypted connection (set tls to starttls or tls)"}
		}
		switch m {
		case "PLAIN":
			a = smtp.PlainAuth("", s.cfg.Username, secret, s.cfg.Host, false)
		case "LOGIN":
			a = smtp.LoginAuth(s.cfg.Username, secret, s.cfg.Host, false)
		case "CRAM-MD5":
			a = smtp.CRAMMD5Auth(s.cfg.Username, secret)
		}
		break
	}
	if a == nil {
		return &SendError{Stage: "auth", Permanent: true, Text: "the server offers none of PLAIN, LOGIN, CRAM-MD5 (it offers " + strconv.Quote(offered) + ")"}
	}
	if err := c.Auth(a); err != nil {
		return classify("auth", err, secret)
	}
	return nil
}
