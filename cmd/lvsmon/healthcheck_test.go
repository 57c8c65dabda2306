package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// healthcheck exits 0 on a 200 and 1 on anything else (an error status,
// nothing listening, a hang past --timeout, a redirect), 2 on a usage
// mistake.
func TestHealthcheck(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/-/healthy":
			w.Write([]byte("lvsmon is Healthy.\n"))
		case "/-/ready":
			http.Error(w, "lvsmon is not ready: no successful IPVS sample yet.", http.StatusServiceUnavailable)
		case "/hang":
			<-r.Context().Done()
		case "/moved":
			http.Redirect(w, r, "/-/healthy", http.StatusFound)
		}
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()
	for _, c := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"healthy", []string{"--url", srv.URL + "/-/healthy"}, 0, "lvsmon is Healthy."},
		{"not ready", []string{"--url", srv.URL + "/-/ready"}, 1, "503 Service Unavailable: lvsmon is not ready"},
		{"nothing listens", []string{"--url", closed.URL + "/-/healthy"}, 1, "connection refused"},
		{"hangs", []string{"--url", srv.URL + "/hang", "--timeout", "200ms"}, 1, "context deadline exceeded"},
		{"redirect", []string{"--url", srv.URL + "/moved"}, 1, "redirected"},
		{"bad url", []string{"--url", "::"}, 2, "--url"},
		{"bad timeout", []string{"--timeout", "0s"}, 2, "--timeout"},
		{"extra argument", []string{"now"}, 2, "unexpected arguments"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			code := run(context.Background(), append([]string{"healthcheck"}, c.args...), &out, &errb)
			if code != c.code || !strings.Contains(out.String()+errb.String(), c.out) {
				t.Errorf("exit %d, want %d; output %q, want %q", code, c.code, out.String()+errb.String(), c.out)
			}
			if time.Since(start) > 10*time.Second {
				t.Errorf("took %s", time.Since(start))
			}
		})
	}
}
