package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

const hundredMB = 100 << 20

// healthHandler is a web server with every answer the tests need.
func healthHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "all good\n") })
	mux.HandleFunc("/503", func(w http.ResponseWriter, r *http.Request) { http.Error(w, "Service Unavailable", 503) })
	mux.HandleFunc("/missing", http.NotFound)
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusMovedPermanently) })
	mux.HandleFunc("/echo", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "host=%s method=%s query=%s agent=%s close=%v\n", r.Host, r.Method, r.URL.RawQuery, r.UserAgent(), r.Close)
	})
	mux.HandleFunc("/head-only", func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodHead {
			w.WriteHeader(http.StatusMethodNotAllowed)
		}
	})
	mux.HandleFunc("/ten", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "0123456789") })
	huge := func(w http.ResponseWriter, r *http.Request) {
		chunk := make([]byte, 64<<10)
		for sent := 0; sent < hundredMB; sent += len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				return // the probe hung up, as it should
			}
		}
	}
	mux.HandleFunc("/huge", huge) // chunked: the size shows only by reading
	mux.HandleFunc("/huge-length", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", fmt.Sprint(hundredMB))
		huge(w, r)
	})
	return mux
}

func TestProbeHTTP(t *testing.T) {
	srv := httptest.NewServer(healthHandler())
	t.Cleanup(srv.Close) // after the parallel subtests
	addr := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		name, check, want string
	}{
		{"default check", "{type: http}", ""},
		{"server error", "{type: http, path: /503}", "http: status 503, want 200-299"},
		{"not found is healthy when listed", "{type: http, path: /missing, status: 400-499}", ""},
		{"redirects are not followed", "{type: http, path: /moved}", "http: status 301, want 200-299"},
		{"redirect listed", "{type: http, path: /moved, status: '200-299,301'}", ""},
		{"single code list", "{type: http, status: '204, 301'}", "http: status 200, want 204, 301"},
		{"body matches", "{type: http, expect: 'all go+d'}", ""},
		{"body does not match", "{type: http, path: /503, status: 503, expect: '^OK$'}", `http: body does not match "^OK$" (it starts "Service Unavailable\n")`},
		{"host header and fresh connection", `{type: http, path: /echo, host: www.example.org, expect: 'host=www.example.org method=GET query= agent=lvsmon-check close=true'}`, ""},
		{"host defaults to the address", `{type: http, path: /echo, expect: 'host=127\.0\.0\.1:'}`, ""},
		{"query string", `{type: http, path: '/echo?a=1&b=2', expect: 'query=a=1&b=2'}`, ""},
		{"HEAD", "{type: http, path: /head-only, method: HEAD}", ""},
		{"HEAD of a 100 MB page", "{type: http, path: /huge-length, method: HEAD}", ""},
		{"GET where HEAD is wanted", "{type: http, path: /head-only}", "status 405"},
		{"body at max_body", "{type: http, path: /ten, max_body: 10, expect: '9$'}", ""},
		{"body over max_body", "{type: http, path: /ten, max_body: 9}", "http: body of 10 bytes is longer than max_body (9 bytes)"},
		{"100 MB chunked", "{type: http, path: /huge}", "http: body longer than max_body (1 MiB)"},
		{"100 MB chunked with expect", "{type: http, path: /huge, expect: x}", "http: body longer than max_body (1 MiB)"},
		{"100 MB announced", "{type: http, path: /huge-length}", "http: body of 104857600 bytes is longer than max_body (1 MiB)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parseCheck(t, "tcp", tc.check)
			wantErr(t, runBounded(t, probeHTTP, targetAt(t, addr), c), tc.want)
		})
	}
}

// A server sending 100 MB costs the probe max_body at most, not 100 MB:
// the bytes allocated while probing it stay far below the answer's
// size (TotalAlloc counts every allocation, freed or not).
func TestProbeHTTPHugeBodyBoundedMemory(t *testing.T) {
	srv := httptest.NewServer(healthHandler())
	defer srv.Close()
	tg := targetAt(t, strings.TrimPrefix(srv.URL, "http://"))
	for _, check := range []string{"{type: http, path: /huge}", "{type: http, path: /huge, expect: x}"} {
		c := parseCheck(t, "tcp", check)
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err := runBounded(t, probeHTTP, tg, c)
		runtime.ReadMemStats(&after)
		wantErr(t, err, "longer than max_body")
		if got := after.TotalAlloc - before.TotalAlloc; got > 16<<20 {
			t.Errorf("%s: allocated %d MiB probing a 100 MB answer", check, got>>20)
		}
	}
}

// tlsServer is an https test server that records the SNI of each
// handshake. Its certificate is httptest's: valid for example.com,
// 127.0.0.1 and ::1, signed by no CA the system knows.
type tlsServer struct {
	*httptest.Server
	mu  sync.Mutex
	sni []string
	ca  string // the certificate as a PEM file, for tls_ca
}

func newTLSServer(t *testing.T) *tlsServer {
	s := &tlsServer{Server: httptest.NewUnstartedServer(healthHandler())}
	s.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshakes are the point
	s.TLS = &tls.Config{GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		s.mu.Lock()
		s.sni = append(s.sni, hi.ServerName)
		s.mu.Unlock()
		return nil, nil
	}}
	s.StartTLS()
	t.Cleanup(s.Close)
	s.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *tlsServer) lastSNI() (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.sni) == 0 {
		return "", false
	}
	return s.sni[len(s.sni)-1], true
}

func TestProbeHTTPS(t *testing.T) {
	srv := newTLSServer(t)
	addr := strings.TrimPrefix(srv.URL, "https://")
	tests := []struct {
		name, check, wantSNI, want string
	}{
		{"no verify, no name", "{type: https, path: /echo, expect: 'host=127\\.0\\.0\\.1:'}", "", ""},
		{"host sets the SNI", "{type: https, path: /echo, host: 'www.example.org:443', expect: 'host=www.example.org:443 '}", "www.example.org", ""},
		{"sni beats host", "{type: https, host: www.example.org, sni: other.example}", "other.example", ""},
		{"status over TLS", "{type: https, path: /503}", "", "https: status 503, want 200-299"},
		{"verified name", "{type: https, tls_verify: true, tls_ca: '" + srv.ca + "', sni: example.com}", "example.com", ""},
		{"verified address", "{type: https, tls_verify: true, tls_ca: '" + srv.ca + "'}", "", ""},
		{"wrong name", "{type: https, tls_verify: true, tls_ca: '" + srv.ca + "', host: wrong.example}", "wrong.example", "https: TLS handshake with 127.0.0.1:|certificate is valid for example.com|not wrong.example"},
		{"unknown authority", "{type: https, tls_verify: true, sni: example.com}", "example.com", "https: TLS handshake|certificate signed by unknown authority"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "tcp", tc.check)
			wantErr(t, runBounded(t, probeHTTPS, targetAt(t, addr), c), tc.want)
			if sni, ok := srv.lastSNI(); !ok || sni != tc.wantSNI {
				t.Errorf("server saw SNI %q (handshake: %v), want %q", sni, ok, tc.wantSNI)
			}
		})
	}
}

// closeHandler reads the request and hangs up without answering.
func closeHandler(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil || line == "\r\n" {
			return
		}
	}
}

// endlessHeaders answers with a status line and headers that never end.
func endlessHeaders(c net.Conn) {
	c.Write([]byte("HTTP/1.1 200 OK\r\n"))
	line := []byte("X-Padding: " + strings.Repeat("x", 1000) + "\r\n")
	for {
		if _, err := c.Write(line); err != nil {
			return
		}
	}
}

func TestProbeHTTPBadServers(t *testing.T) {
	tlsSrv := newTLSServer(t)
	tests := []struct {
		name   string
		probe  Probe
		handle func(net.Conn) // nil: use addr
		addr   string
		want   string
	}{
		{"tarpit", probeHTTP, tarpitHandler, "", "http: read answer from 127.0.0.1:|: no answer within 300ms"},
		{"tarpit, https", probeHTTPS, tarpitHandler, "", "https: TLS handshake with 127.0.0.1:|: no answer within 300ms"},
		{"reset", probeHTTP, resetHandler, "", "http: |connection reset by peer"},
		{"hangs up", probeHTTP, closeHandler, "", "http: read answer from 127.0.0.1:|: connection closed by the server"},
		{"not HTTP", probeHTTP, bannerHandler("SSH-2.0-OpenSSH_9.2p1\r\n"), "", `http: read answer from 127.0.0.1:|malformed HTTP response "SSH-2.0-OpenSSH_9.2p1"`},
		{"headers without end", probeHTTP, endlessHeaders, "", "http: read answer from 127.0.0.1:|: answer longer than 1152 KiB"},
		{"plain TCP on https", probeHTTPS, bannerHandler("SSH-2.0-OpenSSH_9.2p1\r\n"), "", "https: TLS handshake with 127.0.0.1:|first record does not look like a TLS handshake"},
		{"http to a TLS server", probeHTTP, nil, strings.TrimPrefix(tlsSrv.URL, "https://"), "http: status 400, want 200-299"},
		{"nothing listening", probeHTTP, nil, closedPort(t, "tcp"), "http: connect 127.0.0.1:|: connection refused"},
		{"nothing listening, https", probeHTTPS, nil, closedPort(t, "tcp"), "https: connect 127.0.0.1:|: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.addr
			if tc.handle != nil {
				addr = serveTCP(t, "127.0.0.1", tc.handle).addr()
			}
			c := parseCheck(t, "tcp", "{type: http, timeout: 300ms}")
			wantErr(t, runBounded(t, tc.probe, targetAt(t, addr), c), tc.want)
		})
	}
}

func TestProbeHTTPOverIPv6(t *testing.T) {
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: healthHandler()}}
	srv.Start()
	defer srv.Close()
	c := parseCheck(t, "tcp", `{type: http, path: /echo, expect: 'host=\[::1\]:'}`)
	wantErr(t, runBounded(t, probeHTTP, targetAt(t, ln.Addr().String()), c), "")
}

// A check built in code, not loaded from a file, works the same: the
// probe derives what validation would have.
func TestProbeHTTPCheckBuiltInCode(t *testing.T) {
	srv := httptest.NewServer(healthHandler())
	defer srv.Close()
	tg := targetAt(t, strings.TrimPrefix(srv.URL, "http://"))
	c := &config.Check{Type: "http", Timeout: config.Duration(config.DefaultTimeout), Expect: "good", Status: "200"}
	wantErr(t, runBounded(t, probeHTTP, tg, c), "")
	c = &config.Check{Type: "http", Timeout: config.Duration(config.DefaultTimeout), Path: "/503"}
	wantErr(t, runBounded(t, probeHTTP, tg, c), "http: status 503, want 200-299")
}

// BenchmarkProbeHTTP is checks per second of the http check (a fresh
// connection, GET, status, body) against a loopback server, the server's
// work included.
func BenchmarkProbeHTTP(b *testing.B) {
	srv := httptest.NewServer(healthHandler())
	defer srv.Close()
	c := parseCheck(b, "tcp", "{type: http, expect: good}")
	tg := targetAt(b, strings.TrimPrefix(srv.URL, "http://"))
	b.ReportAllocs()
	for b.Loop() {
		if res := RunCheck(b.Context(), tg, c); !res.OK {
			b.Fatal(res.Msg)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}

// BenchmarkProbeHTTPParallel is the same with checks in flight at once,
// as a director runs them (one goroutine per real server).
func BenchmarkProbeHTTPParallel(b *testing.B) {
	srv := httptest.NewServer(healthHandler())
	defer srv.Close()
	c := parseCheck(b, "tcp", "{type: http, expect: good}")
	tg := targetAt(b, strings.TrimPrefix(srv.URL, "http://"))
	b.SetParallelism(8)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if res := RunCheck(context.Background(), tg, c); !res.OK {
				b.Error(res.Msg)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
