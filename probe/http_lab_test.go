//go:build lab

// Lab tier (README, Tests): an HTTP server on port 80 in a network
// namespace of the test's own; needs root.

package probe

import (
	"context"
	"net"
	"net/http"
	"testing"
)

// On the scheme's default port the Host header carries no port, as
// browsers write it (the port 80 server runs in a namespace of its own).
func TestProbeHTTPHostOmitsDefaultPort(t *testing.T) {
	c := parseCheck(t, "tcp", `{type: http, path: /echo, expect: 'host=(127\.0\.0\.1|\[::1\]) '}`)
	inNewNetns(t, nil, func() {
		for _, addr := range []string{"127.0.0.1:80", "[::1]:80"} {
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				t.Error(err)
				continue
			}
			srv := &http.Server{Handler: healthHandler()}
			go srv.Serve(ln)
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
			if err := probeHTTP(ctx, targetAt(t, addr), c); err != nil {
				t.Errorf("%s: %v", addr, err)
			}
			cancel()
			srv.Close()
		}
	})
}
