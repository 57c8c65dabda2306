// Package ctl is the operator's command line for a running lvsmon: `lvsmon
// ctl status`, drain, disable, enable, reload, events and pair, over the
// daemon's HTTP API. It decodes the API's answers into the web package's
// own types, so the client reads what the server writes; the daemon's
// config tells it where the API answers and where the write token is.
// Only cmd/lvsmon imports it.
package ctl

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/web"
)

// Options say how to reach the daemon.
type Options struct {
	// URL is the daemon's base URL (http or https), without a path.
	URL string
	// Token returns the write API's bearer token; it is called only when
	// a request needs one, so that reading works without the secret.
	Token func() (string, error)
	// CAFile verifies the server's certificate (a private CA); empty:
	// the system's roots.
	CAFile string
	// CertFile and KeyFile are the client certificate, for a server that
	// asks for one (tls_server_config.client_ca_file).
	CertFile, KeyFile string
	// InsecureSkipVerify accepts any server certificate.
	InsecureSkipVerify bool
	// BasicAuthUser and BasicAuthPasswordFile authenticate reads when the
	// web config has basic_auth_users.
	BasicAuthUser, BasicAuthPasswordFile string
	// Timeout bounds each request (not a followed event stream as a
	// whole).
	Timeout time.Duration
}

// Client talks to one daemon's API.
type Client struct {
	base     *url.URL
	http     *http.Client
	token    func() (string, error)
	user     string
	password string
	// pageSize is the services asked per page of the status API.
	pageSize int
}

// New checks the options and builds the client; the files it names are
// read now, so a wrong path fails before any request.
func New(o Options) (*Client, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("--url %q: want http://host:port or https://host:port: %w", o.URL, ErrUsage)
	}
	u.Path = strings.TrimSuffix(u.Path, "/")
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil // the daemon is local or on the management network
	if (o.CertFile == "") != (o.KeyFile == "") {
		return nil, fmt.Errorf("--cert-file and --key-file go together: %w", ErrUsage)
	}
	tc, err := promconfig.NewTLSConfig(&promconfig.TLSConfig{CAFile: o.CAFile, CertFile: o.CertFile, KeyFile: o.KeyFile,
		InsecureSkipVerify: o.InsecureSkipVerify, MinVersion: tls.VersionTLS12})
	if err != nil {
		return nil, fmt.Errorf("--ca-file/--cert-file/--key-file: %w", err)
	}
	tr.TLSClientConfig = tc
	c := &Client{base: u, http: &http.Client{Transport: tr, Timeout: o.Timeout}, token: o.Token, user: o.BasicAuthUser, pageSize: web.MaxStatusLimit}
	if o.BasicAuthUser != "" {
		if o.BasicAuthPasswordFile == "" {
			return nil, fmt.Errorf("--basic-auth-user needs --basic-auth-password-file: %w", ErrUsage)
		}
		b, err := os.ReadFile(o.BasicAuthPasswordFile)
		if err != nil {
			return nil, fmt.Errorf("--basic-auth-password-file: %w", err)
		}
		c.password = strings.TrimRight(string(b), "\r\n")
	} else if o.BasicAuthPasswordFile != "" {
		return nil, fmt.Errorf("--basic-auth-password-file needs --basic-auth-user: %w", ErrUsage)
	}
	if c.token == nil {
		c.token = func() (string, error) { return "", nil }
	}
	return c, nil
}

// URL is the daemon's base URL, for messages.
func (c *Client) URL() string { return c.base.String() }

// ErrUsage marks a command-line mistake (exit code 2).
var ErrUsage = errors.New("usage")

// APIError is an answer other than 2xx, with what the API said.
type APIError struct {
	Method, URL string
	Code        int
	// Message is the API's "error" (or the body's text).
	Message string
	// Problems are a rejected reload's config errors.
	Problems []string
	// Hint says what the operator may do about it.
	Hint string
}

func (e *APIError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s: %d %s", e.Method, e.URL, e.Code, http.StatusText(e.Code))
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	for _, p := range e.Problems {
		b.WriteString("\n  " + p)
	}
	if e.Hint != "" {
		b.WriteString("\n" + e.Hint)
	}
	return b.String()
}

// UnreachableError: no HTTP answer at all (refused, timed out, TLS).
type UnreachableError struct {
	URL string
	Err error
}

func (e *UnreachableError) Error() string {
	msg := fmt.Sprintf("the daemon does not answer at %s: %v", e.URL, e.Err)
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		recordHdr tls.RecordHeaderError
	)
	switch {
	case errors.As(e.Err, &unknownCA):
		msg += "\n(the server's certificate is not signed by a CA this client trusts: give --ca-file)"
	case errors.As(e.Err, &hostname):
		msg += "\n(the certificate is not for this host name: use a --url with one of its names)"
	case errors.As(e.Err, &recordHdr):
		msg += "\n(the server speaks plain HTTP: use an http:// --url)"
	case strings.Contains(e.Err.Error(), "remote error: tls: unknown certificate authority"):
		msg += "\n(the server does not trust this client certificate: give --cert-file and --key-file of one its client CA signed)"
	case strings.Contains(e.Err.Error(), "certificate required"), strings.Contains(e.Err.Error(), "bad certificate"):
		msg += "\n(the server wants a client certificate it trusts: give --cert-file and --key-file)"
	case strings.Contains(e.Err.Error(), "server gave HTTP response to HTTPS client"):
		msg += "\n(the server speaks plain HTTP: use an http:// --url)"
	default:
		msg += "\n(is lvsmon running there? give its address with --url)"
	}
	return msg
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// auth is what a request presents.
type auth int

const (
	authRead  auth = iota // basic auth if given, else the token if it can be read
	authWrite             // the bearer token, required
)

// do sends one request and decodes a 2xx answer's JSON into out (when
// not nil). A rejected reload's 400 is decoded into out as well and
// returned with an APIError.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, body any, a auth, out any) error {
	u := *c.base
	u.Path += path
	u.RawQuery = query.Encode()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	var tokenErr error
	switch {
	case a == authWrite:
		tok, err := c.token()
		if err != nil {
			return fmt.Errorf("the write API needs the token: %w", err)
		}
		if tok == "" {
			return errors.New("the write API needs the token, and the config names none (web.api_token_file): give --token-file")
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	case c.user != "":
		req.SetBasicAuth(c.user, c.password)
	default:
		// Reads pass a basic auth gate with the token too; without one
		// they need nothing.
		var tok string
		if tok, tokenErr = c.token(); tokenErr == nil && tok != "" {
			req.Header.Set("Authorization", "Bearer "+tok)
		}
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return &UnreachableError{URL: c.base.String(), Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 256<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, u.Redacted(), err)
	}
	if resp.StatusCode/100 == 2 {
		if out == nil {
			return nil
		}
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: the answer is not the JSON expected (is %s lvsmon?): %w", method, u.Redacted(), c.base, err)
		}
		return nil
	}
	var eb struct {
		Error    string   `json:"error"`
		Problems []string `json:"problems"`
	}
	e := &APIError{Method: method, URL: u.Redacted(), Code: resp.StatusCode}
	if json.Unmarshal(data, &eb) == nil && eb.Error != "" {
		e.Message, e.Problems = eb.Error, eb.Problems
		if resp.StatusCode == http.StatusBadRequest && out != nil {
			_ = json.Unmarshal(data, out) // a rejected reload's status
		}
	} else {
		e.Message = strings.TrimSpace(string(data))
		if len(e.Message) > 512 {
			e.Message = e.Message[:512] + "…"
		}
	}
	e.Hint = hint(resp, a, c.user != "", tokenErr)
	if resp.StatusCode == http.StatusBadRequest && strings.Contains(e.Message, "HTTP request to an HTTPS server") {
		e.Hint = "the daemon speaks TLS: use an https:// --url"
	}
	return e
}

// hint says what to do about an error answer.
func hint(resp *http.Response, a auth, basic bool, tokenErr error) string {
	challenge := strings.ToLower(resp.Header.Get("WWW-Authenticate"))
	switch resp.StatusCode {
	case http.StatusUnauthorized:
		switch {
		case strings.HasPrefix(challenge, "bearer"):
			return "the write token was refused: the token file (--token-file, or the config's web.api_token_file) does not hold the daemon's token"
		case basic:
			return "the basic auth user or password was refused (--basic-auth-user, --basic-auth-password-file)"
		case a == authWrite:
			return "the write token was refused: the token file (--token-file, or the config's web.api_token_file) does not hold the daemon's token"
		case tokenErr != nil:
			return "the daemon wants a password: give --basic-auth-user and --basic-auth-password-file (the write token could not be read: " + tokenErr.Error() + ")"
		}
		return "the daemon wants a password: give --basic-auth-user and --basic-auth-password-file, or a readable --token-file"
	case http.StatusForbidden:
		return "the daemon refuses writes: its config needs web.api_token_file"
	case http.StatusTooManyRequests:
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			if n, err := strconv.Atoi(ra); err == nil {
				return fmt.Sprintf("too many failed logins from this address: retry in %s", time.Duration(n)*time.Second)
			}
		}
		return "the daemon is busy or blocks this address for failed logins: retry later"
	case http.StatusServiceUnavailable:
		return "the daemon cannot serve this now (see its log)"
	case http.StatusMisdirectedRequest:
		return "the daemon does not answer to this host name: use its address in --url, or list the name in its web.allowed_hosts"
	}
	return ""
}

// Status fetches the whole status: every page of the status API, joined.
// The head is the last page's.
func (c *Client) Status(ctx context.Context) (*web.Status, error) {
	var all []web.ServiceStatus
	q := url.Values{"limit": {strconv.Itoa(c.pageSize)}}
	for offset := 0; ; {
		q.Set("offset", strconv.Itoa(offset))
		var st web.Status
		if err := c.do(ctx, http.MethodGet, "/api/v1/status", q, nil, authRead, &st); err != nil {
			return nil, err
		}
		all = append(all, st.Services...)
		p := st.Page
		if p == nil || p.Next == "" || p.Returned == 0 {
			st.Services, st.Page = all, nil
			if st.Services == nil {
				st.Services = []web.ServiceStatus{}
			}
			return &st, nil
		}
		offset = p.Offset + p.Returned
	}
}

// OverrideResult is the write API's answer to a drain, disable or enable.
type OverrideResult struct {
	Server string `json:"server"`
	Action string `json:"action"`
	Status string `json:"status"`
}

// SetOverride drains, disables or enables (action) the real server id.
func (c *Client) SetOverride(ctx context.Context, id, action, comment string) (OverrideResult, error) {
	var out OverrideResult
	var body any
	if comment != "" {
		body = map[string]string{"comment": comment}
	}
	err := c.do(ctx, http.MethodPost, "/api/v1/servers/"+url.PathEscape(id)+"/"+action, nil, body, authWrite, &out)
	return out, err
}

// ReloadResult is the answer of POST /-/reload.
type ReloadResult struct {
	// Status is "reloaded" or "rejected".
	Status   string   `json:"status"`
	Error    string   `json:"error,omitempty"`
	Problems []string `json:"problems,omitempty"`
}

// Reload asks the daemon to re-read its config. A config that does not
// validate comes back as a ReloadResult with Status "rejected" and a nil
// error: that is an answer, not a failure to ask.
func (c *Client) Reload(ctx context.Context) (ReloadResult, error) {
	var out ReloadResult
	err := c.do(ctx, http.MethodPost, "/-/reload", nil, nil, authWrite, &out)
	var ae *APIError
	if errors.As(err, &ae) && ae.Code == http.StatusBadRequest && out.Status == "rejected" {
		return out, nil
	}
	return out, err
}

// EventQuery selects events of the event log.
type EventQuery struct {
	Since time.Time // zero: the newest Limit
	Limit int       // 1-10000; 0: the API's default (1000)
}

// Events fetches events, oldest first.
func (c *Client) Events(ctx context.Context, q EventQuery) ([]events.Event, error) {
	v := url.Values{}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var out struct {
		Events []events.Event `json:"events"`
	}
	if err := c.do(ctx, http.MethodGet, "/api/v1/events", v, nil, authRead, &out); err != nil {
		return nil, err
	}
	return out.Events, nil
}
