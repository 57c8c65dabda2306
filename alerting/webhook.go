package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/lvsmon/lvsmon/events"
)

// Delivery is one webhook request as the outbox keeps it: the body is
// rendered when the delivery is queued and sent as it is at every retry;
// the URL, method and headers are the hook's current ones, looked up by
// Hook at each attempt (a reload that changes a token applies to what is
// queued).
type Delivery struct {
	Hook string `json:"hook"`
	// ID is sent as the X-Lvsmon-Delivery header, the same at every
	// retry: a receiver can drop the copy that the at-least-once
	// guarantee may produce.
	ID          string   `json:"id"`
	ContentType string   `json:"content_type,omitempty"`
	Body        string   `json:"body"`
	EventSeqs   []uint64 `json:"event_seqs,omitempty"`
}

// Validate reports what is missing in d.
func (d *Delivery) Validate() error {
	switch {
	case d.Hook == "":
		return errors.New("webhook delivery: no hook name")
	case d.ID == "":
		return errors.New("webhook delivery: no id")
	}
	return nil
}

// TLSConfig is how an HTTP channel checks its server.
type TLSConfig struct {
	// CAFile holds the PEM certificates that sign the server's; the
	// system's when empty.
	CAFile             string
	InsecureSkipVerify bool
}

func (t TLSConfig) client(timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tc, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CAFile: t.CAFile, InsecureSkipVerify: t.InsecureSkipVerify})
	if err != nil {
		return nil, fmt.Errorf("ca_file: %w", err)
	}
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: timeout,
		// A redirect would resend the body, secrets in headers included,
		// somewhere the config does not name.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}, nil
}

// WebhookConfig is one webhook.
type WebhookConfig struct {
	Name   string
	URL    string
	Method string // POST when empty
	// Headers are sent as they are; HeaderFiles' values are read from
	// their files at each send (secrets: never logged, never queued).
	Headers     map[string]string
	HeaderFiles map[string]string
	// BearerTokenFile holds a token sent as "Authorization: Bearer".
	BearerTokenFile string
	TLS             TLSConfig
	Timeout         time.Duration // 10s when zero
	// Template renders the body from an events.Batch; nil sends the
	// Batch as JSON (ContentType application/json).
	Template    *template.Template
	ContentType string
	Filter      Filter
}

// WebhookSender makes the HTTP requests of one webhook.
type WebhookSender struct {
	cfg    WebhookConfig
	client *http.Client
}

// NewWebhookSender checks cfg and that its secret files can be read.
func NewWebhookSender(cfg WebhookConfig) (*WebhookSender, error) {
	if cfg.Method == "" {
		cfg.Method = http.MethodPost
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ContentType == "" {
		cfg.ContentType = "application/json"
		if cfg.Template != nil {
			cfg.ContentType = "text/plain; charset=utf-8"
		}
	}
	if _, err := http.NewRequest(cfg.Method, cfg.URL, nil); err != nil {
		return nil, fmt.Errorf("webhook %s: %s is not a usable URL", cfg.Name, redactURL(cfg.URL))
	}
	c, err := cfg.TLS.client(cfg.Timeout)
	if err != nil {
		return nil, fmt.Errorf("webhook %s: %w", cfg.Name, err)
	}
	s := &WebhookSender{cfg: cfg, client: c}
	if _, err := s.secretHeaders(); err != nil {
		return nil, err
	}
	return s, nil
}

// Config is what the sender was made with.
func (s *WebhookSender) Config() WebhookConfig { return s.cfg }

// ReadURLFile reads a webhook URL kept in a file (the URL is the
// secret); an error never quotes the content.
func ReadURLFile(path string) (string, error) {
	u, err := readSecret(path)
	if err != nil {
		return "", err
	}
	p, err := url.Parse(u)
	if err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
		return "", fmt.Errorf("%s does not hold an http:// or https:// URL", path)
	}
	return u, nil
}

// redactURL is u as logs may show it: scheme and host, the path and
// query (where receivers put their tokens) left out.
func redactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" {
		return "the webhook's URL"
	}
	return p.Scheme + "://" + p.Host + "/…"
}

// readSecret reads a secret file, without its trailing newline.
func readSecret(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(b), "\r\n"), nil
}

func (s *WebhookSender) secretHeaders() (map[string]string, error) {
	h := map[string]string{}
	for k, path := range s.cfg.HeaderFiles {
		v, err := readSecret(path)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: header %s: %w", s.cfg.Name, k, err)
		}
		h[k] = v
	}
	if s.cfg.BearerTokenFile != "" {
		v, err := readSecret(s.cfg.BearerTokenFile)
		if err != nil {
			return nil, fmt.Errorf("webhook %s: bearer_token_file: %w", s.cfg.Name, err)
		}
		h["Authorization"] = "Bearer " + v
	}
	return h, nil
}

// Render makes the body of a delivery of b.
func (s *WebhookSender) Render(b events.Batch) (body, contentType string, err error) {
	if s.cfg.Template == nil {
		j, err := json.Marshal(b)
		return string(j), s.cfg.ContentType, err
	}
	var w bytes.Buffer
	if err := s.cfg.Template.Execute(&w, b); err != nil {
		return "", "", fmt.Errorf("webhook %s: body template: %w", s.cfg.Name, err)
	}
	return w.String(), s.cfg.ContentType, nil
}

// HTTPError is a failed webhook request. Permanent is set for a 4xx
// answer other than 408 and 429: the receiver refuses the request as it
// is, and sending it again will not help. RetryAfter is the receiver's
// Retry-After, when it sent one.
type HTTPError struct {
	Status     int // 0 when there was no answer
	Permanent  bool
	RetryAfter time.Duration
	Text       string
}

func (e *HTTPError) Error() string {
	kind := "temporary"
	if e.Permanent {
		kind = "permanent"
	}
	if e.Status != 0 {
		return fmt.Sprintf("http: %s failure: %d %s", kind, e.Status, e.Text)
	}
	return fmt.Sprintf("http: %s failure: %s", kind, e.Text)
}

// retryAfter is the wait the receiver asked for with err, if any.
func retryAfter(err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.RetryAfter
	}
	return 0
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && n > 0 {
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// Deliver sends d. It returns nil only for a 2xx answer; a failure is an
// *HTTPError whose text holds no secret (header values are never put in
// one; the answer's body is cut and scrubbed of them).
func (s *WebhookSender) Deliver(ctx context.Context, d Delivery) error {
	secrets, err := s.secretHeaders()
	if err != nil {
		return &HTTPError{Text: err.Error()}
	}
	req, err := http.NewRequestWithContext(ctx, s.cfg.Method, s.cfg.URL, strings.NewReader(d.Body))
	if err != nil {
		return &HTTPError{Permanent: true, Text: redactURL(s.cfg.URL) + " is not a usable URL"}
	}
	ct := d.ContentType
	if ct == "" {
		ct = s.cfg.ContentType
	}
	req.Header.Set("Content-Type", ct)
	req.Header.Set("User-Agent", "lvsmon")
	req.Header.Set("X-Lvsmon-Delivery", d.ID)
	for k, v := range s.cfg.Headers {
		req.Header.Set(k, v)
	}
	for k, v := range secrets {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		// Not the url.Error's text: it quotes the whole URL, which may be
		// the receiver's secret.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		text := strings.ReplaceAll(err.Error(), s.cfg.URL, redactURL(s.cfg.URL))
		return &HTTPError{Text: scrubAll(s.cfg.Method+" "+redactURL(s.cfg.URL)+": "+text, secrets)}
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	he := &HTTPError{Status: resp.StatusCode, Text: scrubAll(strings.TrimSpace(string(text)), secrets)}
	if he.Text == "" {
		he.Text = http.StatusText(resp.StatusCode)
	}
	switch c := resp.StatusCode; {
	case c == http.StatusRequestTimeout || c == http.StatusTooManyRequests || c >= 500:
		he.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	case c >= 300 && c < 400:
		he.Permanent = true
		he.Text = "redirected to " + redactURL(resp.Header.Get("Location")) + "; lvsmon does not follow redirects, put the final URL in the config"
	default:
		he.Permanent = true
	}
	return he
}

func scrubAll(text string, secrets map[string]string) string {
	for _, v := range secrets {
		text = scrub(text, v)
		if _, tok, ok := strings.Cut(v, " "); ok {
			text = scrub(text, tok)
		}
	}
	return text
}
