package peers

import (
	"crypto/tls"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

// pages is a peer's status API of two pages, as web writes it: the web
// service configured and in the kernel (with its sorry server in), dns
// configured only.
var pages = []string{
	`{"director":"lvs2","version":"1.5.0","sampled_at":"2026-12-03T14:00:00Z",
	  "role":{"role":"BACKUP","instances":[{"vips":[{"address":"10.0.0.100","present":false},{"address":"10.0.0.53","present":true}]}]},
	  "problems":[{"kind":"x"}],
	  "virtual_services":[{"id":"tcp_10.0.0.100_80","scheduler":"rr","persistence_seconds":0,"configured":true,"in_kernel":true,
	    "config":{"scheduler":"wrr","persistence_seconds":0,"sorry_server":"127.0.0.1:80 dr","check":"type=http interval=1s timeout=3s rise=1 fall=1"},
	    "real_servers":[
	      {"id":"tcp_10.0.0.100_80__10.0.1.1_80","weight":0,"configured_weight":1,"configured":true,"in_kernel":true},
	      {"id":"tcp_10.0.0.100_80__127.0.0.1_80","weight":1,"configured_weight":null,"configured":true,"in_kernel":true,"sorry_server":true},
	      {"id":"tcp_10.0.0.100_80__10.0.1.2_80","weight":null,"configured_weight":2,"configured":true,"in_kernel":false}]}],
	  "page":{"offset":0,"limit":1,"returned":1,"next":"/api/v1/status?limit=1&offset=1"}}`,
	`{"director":"lvs2","version":"1.5.0","sampled_at":"2026-12-03T14:00:00Z","problems":[],
	  "role":{"role":"BACKUP","instances":[{"vips":[{"address":"10.0.0.100","present":false},{"address":"10.0.0.53","present":true}]}]},
	  "virtual_services":[{"id":"udp_10.0.0.53_53","scheduler":"rr","persistence_seconds":300,"configured":true,"in_kernel":false,
	    "config":{"scheduler":"rr","persistence_seconds":300},
	    "real_servers":[{"id":"udp_10.0.0.53_53__10.0.1.9_53","weight":null,"configured_weight":1,"configured":true,"in_kernel":false}]}],
	  "page":{"offset":1,"limit":1,"returned":1}}`,
}

// peerAPI serves pages, asking for auth when user or token is set.
func peerAPI(t *testing.T, user, pw, token string, calls *atomic.Int32) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.URL.Path != "/api/v1/status" || r.URL.Query().Get("limit") != strconv.Itoa(pageLimit) {
			http.Error(w, "bad request "+r.URL.String(), 400)
			return
		}
		u, p, ok := r.BasicAuth()
		switch {
		case user != "" && (!ok || u != user || p != pw):
			w.Header().Set("WWW-Authenticate", "Basic")
			http.Error(w, `{"error":"unauthorized"}`, 401)
			return
		case token != "" && r.Header.Get("Authorization") != "Bearer "+token:
			http.Error(w, `{"error":"unauthorized"}`, 401)
			return
		}
		off, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		if off >= len(pages) {
			t.Errorf("offset %d", off)
			off = len(pages) - 1
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, pages[off])
	})
}

func secretFile(t *testing.T, s string) string {
	f := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(f, []byte(s+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestPullPagesAndAuth(t *testing.T) {
	pki := testutil.NewPKI(t, "peers")
	cert, key := pki.Issue("lvs2", testutil.CertOptions{})
	for _, tc := range []struct {
		name        string
		tls         bool
		user, token string
		peer        func(p *config.Peer)
		wantErr     string
	}{
		{name: "plain"},
		{name: "basic auth", user: "lvsmon", peer: func(p *config.Peer) {
			p.BasicAuth = config.BasicAuth{Username: "lvsmon", PasswordFile: secretFile(t, "pw")}
		}},
		{name: "wrong password", user: "lvsmon", peer: func(p *config.Peer) {
			p.BasicAuth = config.BasicAuth{Username: "lvsmon", PasswordFile: secretFile(t, "nope")}
		}, wantErr: "401 Unauthorized"},
		{name: "bearer", token: "0123456789abcdef", peer: func(p *config.Peer) { p.BearerTokenFile = secretFile(t, "0123456789abcdef") }},
		{name: "tls with the CA", tls: true, peer: func(p *config.Peer) { p.CAFile = pki.CA }},
		{name: "tls without the CA", tls: true, wantErr: "certificate signed by unknown authority"},
		{name: "tls insecure", tls: true, peer: func(p *config.Peer) { p.InsecureSkipVerify = true }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewUnstartedServer(peerAPI(t, tc.user, "pw", tc.token, &calls))
			if tc.tls {
				srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.KeyPair(cert, key)}}
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			pc := config.Peer{Name: "lvs2", URL: srv.URL, Timeout: config.Duration(5 * time.Second)}
			if tc.peer != nil {
				tc.peer(&pc)
			}
			c, err := newClient(pc)
			if err != nil {
				t.Fatal(err)
			}
			defer c.close()
			r, err := c.pull(t.Context())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if calls.Load() != 2 {
				t.Errorf("%d requests, want 2 pages", calls.Load())
			}
			if r.Director != "lvs2" || r.Role != "BACKUP" || len(r.VIPs) != 1 || r.VIPs[0] != "10.0.0.53" || r.Problems != 0 || r.SampledAt.IsZero() {
				t.Errorf("head = %+v", r)
			}
			w := r.Side.Config[web]
			if w == nil || w.Scheduler != "wrr" || w.SorryServer != "127.0.0.1:80 dr" || !strings.HasPrefix(w.Check, "type=http") || len(w.Reals) != 2 || w.Reals[rs1] != 1 || w.Reals[rs2] != 2 {
				t.Errorf("config web = %+v", w)
			}
			k := r.Side.Kernel[web]
			if k == nil || k.Scheduler != "rr" || len(k.Reals) != 2 || k.Reals[rs1] != 0 || k.Reals[web+"__127.0.0.1_80"] != 1 {
				t.Errorf("kernel web = %+v", k)
			}
			if d := r.Side.Config[dns]; d == nil || d.Persistence != 300 || d.Reals[rsD] != 1 || r.Side.Kernel[dns] != nil {
				t.Errorf("dns = %+v, kernel %+v", d, r.Side.Kernel[dns])
			}
		})
	}
}

func TestPullRefusesWhatIsNotLvsmon(t *testing.T) {
	for _, body := range []string{`{}`, `<html>`, `[]`} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) }))
		c, err := newClient(config.Peer{URL: srv.URL})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.pull(t.Context()); err == nil || !strings.Contains(err.Error(), "not lvsmon's status JSON") {
			t.Errorf("%s: err = %v", body, err)
		}
		srv.Close()
	}
}
