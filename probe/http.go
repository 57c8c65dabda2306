package probe

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"unicode/utf8"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "http", Keys: []string{"path", "method", "host", "status", "expect", "max_body"}, ExpectRegexp: true}, probeHTTP)
}

// maxHTTPHeader bounds the status line and headers of a checked answer.
const maxHTTPHeader = 64 << 10

// probeHTTP is the http check: one GET (or HEAD) over a fresh
// connection to the target, whatever Host says; healthy when the status
// is in the check's list and, with expect, the body matches.
func probeHTTP(ctx context.Context, t Target, c *config.Check) error {
	return httpProbe(ctx, t, c, "http")
}

// httpProbe speaks HTTP/1.1 itself over one connection rather than
// through http.Client: a client pools connections, follows redirects
// and hides which phase failed, and a health check wants one fresh
// connection, the first answer, and a message that says "TLS handshake"
// or "status 503". A plain http GET or HEAD takes the cheaper path of
// httpplain.go, which answers the same.
func httpProbe(ctx context.Context, t Target, c *config.Check, scheme string) error {
	if scheme == "http" {
		if head, ok := plainCheck(t, c); ok {
			return plainHTTP(ctx, t, c, head)
		}
	}
	return stdHTTP(ctx, t, c, scheme)
}

// checkRequest is the request of check c to t, and its method.
func checkRequest(ctx context.Context, t Target, c *config.Check, scheme string) (*http.Request, error) {
	method := strings.ToUpper(c.Method)
	if method == "" {
		method = config.DefaultMethod
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	u, err := url.ParseRequestURI(path)
	if err != nil {
		return nil, fmt.Errorf("%s: path %q: %w", scheme, path, err)
	}
	u.Scheme, u.Host = scheme, t.String()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", scheme, err)
	}
	switch {
	case c.Host != "":
		req.Host = c.Host
	case scheme == "http" && t.Port == 80, scheme == "https" && t.Port == 443:
		req.Host = u.Hostname() // as browsers write it: no default port
		if t.Addr.Is6() {
			req.Host = "[" + req.Host + "]"
		}
	}
	req.Header.Set("User-Agent", "lvsmon-check")
	req.Close = true
	return req, nil
}

// stdHTTP is the check through net/http's request writer and response
// reader: https, and whatever plainCheck leaves to it.
func stdHTTP(ctx context.Context, t Target, c *config.Check, scheme string) error {
	req, err := checkRequest(ctx, t, c, scheme)
	if err != nil {
		return err
	}
	conn, err := dialTarget(ctx, "tcp", t)
	if err != nil {
		return fmt.Errorf("%s: connect %s: %w", scheme, t, reason(ctx, err, c))
	}
	defer conn.Close()
	rw := conn
	if scheme == "https" {
		cfg, err := httpsConfig(t, c)
		if err != nil {
			return fmt.Errorf("https: %w", err)
		}
		tc := tls.Client(conn, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			return fmt.Errorf("https: TLS handshake with %s: %w", t, reason(ctx, err, c))
		}
		rw = tc
	}
	bw := bufio.NewWriter(rw)
	if err := req.Write(bw); err == nil {
		err = bw.Flush()
	}
	if err != nil {
		return fmt.Errorf("%s: send request to %s: %w", scheme, t, reason(ctx, err, c))
	}
	return stdAnswer(ctx, newCapReader(rw, answerCap(c), "answer"), req, t, c, scheme)
}

// maxBody is c's max_body, or the default.
func maxBody(c *config.Check) int64 {
	if c.MaxBody <= 0 {
		return config.DefaultMaxBody
	}
	return c.MaxBody
}

// answerCap bounds the whole answer (headers, then body with its chunk
// framing); the body alone is checked against max_body, so the message
// names the setting to change.
func answerCap(c *config.Check) int64 { return maxHTTPHeader + maxBody(c) + maxHTTPHeader }

// statusRanges are the codes c takes for healthy.
func statusRanges(c *config.Check, scheme string) ([]config.StatusRange, string, error) {
	ranges, status := c.Statuses, c.Status
	if status == "" {
		status = config.DefaultStatus
	}
	if ranges == nil {
		var err error
		if ranges, err = config.ParseStatus(status); err != nil {
			return nil, "", fmt.Errorf("%s: status: %w", scheme, err)
		}
	}
	return ranges, status, nil
}

// stdAnswer reads the answer to req from r (the capped connection) with
// net/http and judges it.
func stdAnswer(ctx context.Context, r io.Reader, req *http.Request, t Target, c *config.Check, scheme string) error {
	resp, err := http.ReadResponse(bufio.NewReader(r), req)
	if err != nil {
		return fmt.Errorf("%s: read answer from %s: %w", scheme, t, reason(ctx, err, c))
	}
	defer resp.Body.Close()

	ranges, status, err := statusRanges(c, scheme)
	if err != nil {
		return err
	}
	if !config.StatusIn(resp.StatusCode, ranges) {
		return fmt.Errorf("%s: status %d, want %s", scheme, resp.StatusCode, status)
	}
	maxBody := maxBody(c)
	if req.Method != http.MethodHead && resp.ContentLength > maxBody {
		return fmt.Errorf("%s: body of %d bytes is longer than max_body (%s)", scheme, resp.ContentLength, byteSize(maxBody))
	}
	re, err := expectRegexp(c)
	if err != nil {
		return fmt.Errorf("%s: %w", scheme, err)
	}
	// The body is read in full even without expect: a healthy server
	// sends its whole answer within the timeout.
	body := io.LimitReader(resp.Body, maxBody+1)
	var n int64
	var got []byte
	if re == nil {
		n, err = io.Copy(io.Discard, body)
	} else {
		got, err = io.ReadAll(body)
		n = int64(len(got))
	}
	return judgeBody(ctx, t, c, scheme, re, got, n, err)
}

// judgeBody is the verdict on a body read: n bytes (got, with expect),
// and the read's error.
func judgeBody(ctx context.Context, t Target, c *config.Check, scheme string, re *regexp.Regexp, got []byte, n int64, err error) error {
	switch {
	case n > maxBody(c):
		return fmt.Errorf("%s: body longer than max_body (%s)", scheme, byteSize(maxBody(c)))
	case err != nil:
		return fmt.Errorf("%s: read body from %s: %w", scheme, t, reason(ctx, err, c))
	case re != nil && !matchBody(re, got):
		return fmt.Errorf("%s: body does not match %q (it starts %s)", scheme, re.String(), excerpt(got))
	}
	return nil
}

// matchBody is re.Match(b), without the regexp machine when expect is a
// plain literal (the usual "OK"): the literal's bytes are found exactly
// where the regexp matches, as a literal of valid UTF-8 starts on a byte
// the regexp's decoding of b always steps onto. U+FFFD is left to the
// regexp, which also takes an invalid byte for it.
func matchBody(re *regexp.Regexp, b []byte) bool {
	if lit, whole := re.LiteralPrefix(); whole && lit == re.String() && !strings.ContainsRune(lit, utf8.RuneError) {
		return bytes.Contains(b, []byte(lit))
	}
	return re.Match(b)
}
