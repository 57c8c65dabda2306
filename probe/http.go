package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

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
// or "status 503".
func httpProbe(ctx context.Context, t Target, c *config.Check, scheme string) error {
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
		return fmt.Errorf("%s: path %q: %w", scheme, path, err)
	}
	u.Scheme, u.Host = scheme, t.String()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%s: %w", scheme, err)
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

	maxBody := c.MaxBody
	if maxBody <= 0 {
		maxBody = config.DefaultMaxBody
	}
	// The whole answer is capped (headers, then body with its chunk
	// framing); the body alone is checked against max_body below, so
	// the message names the setting to change.
	br := bufio.NewReader(newCapReader(rw, maxHTTPHeader+maxBody+maxHTTPHeader, "answer"))
	resp, err := http.ReadResponse(br, req)
	if err != nil {
		return fmt.Errorf("%s: read answer from %s: %w", scheme, t, reason(ctx, err, c))
	}
	defer resp.Body.Close()

	ranges, status := c.Statuses, c.Status
	if status == "" {
		status = config.DefaultStatus
	}
	if ranges == nil {
		if ranges, err = config.ParseStatus(status); err != nil {
			return fmt.Errorf("%s: status: %w", scheme, err)
		}
	}
	if !config.StatusIn(resp.StatusCode, ranges) {
		return fmt.Errorf("%s: status %d, want %s", scheme, resp.StatusCode, status)
	}
	if method != http.MethodHead && resp.ContentLength > maxBody {
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
	switch {
	case n > maxBody:
		return fmt.Errorf("%s: body longer than max_body (%s)", scheme, byteSize(maxBody))
	case err != nil:
		return fmt.Errorf("%s: read body from %s: %w", scheme, t, reason(ctx, err, c))
	case re != nil && !re.Match(got):
		return fmt.Errorf("%s: body does not match %q (it starts %s)", scheme, re.String(), excerpt(got))
	}
	return nil
}
