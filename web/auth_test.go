package web

import (
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsmon/lvsmon/config"
)

const (
	drainPath = "/api/v1/servers/tcp_198.51.100.10_80__10.1.1.2_80/drain"
	goodAuth  = "Bearer 0123456789abcdef-token"
)

// request sends method path from remote with Host host and auth ("": none).
func request(s *Server, method, path, host, remote, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, nil)
	req.Host, req.RemoteAddr = host, remote
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// fakeClock is a clock that tests move.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (f *fakeClock) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

func (f *fakeClock) add(d time.Duration) {
	f.mu.Lock()
	f.t = f.t.Add(d)
	f.mu.Unlock()
}

// Five failures within a minute block the client, right token or not,
// for a minute, then two, doubling; other clients are not blocked; the
// block is logged once, each failure once.
func TestWriteAPIFailureLimit(t *testing.T) {
	s, _, logBuf := proxyFixture(t, "")
	clk := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	s.limiter.auth.now = clk.now
	const host, bad, other = "127.0.0.1:9160", "192.0.2.9:5000", "192.0.2.10:5000"
	post := func(remote, auth string) *httptest.ResponseRecorder {
		return request(s, "POST", drainPath, host, remote, auth)
	}
	// failures spread over more than a minute do not block
	for i := 0; i < 4; i++ {
		if rec := post(bad, "Bearer wrong-token-wrong-token"); rec.Code != 401 {
			t.Fatalf("failure %d: %d %s", i+1, rec.Code, rec.Body)
		}
		clk.add(10 * time.Second)
	}
	clk.add(31 * time.Second) // the first failure is out of the window
	if rec := post(bad, ""); rec.Code != 401 {
		t.Fatalf("5th failure, first out of the window: %d %s", rec.Code, rec.Body)
	}
	if rec := post(bad, goodAuth); rec.Code != 200 {
		t.Fatalf("right token: %d %s", rec.Code, rec.Body)
	}
	// [20s, 30s, 71s] in the window: two more, and the 5th blocks
	if rec := post(bad, "Bearer nope"); rec.Code != 401 {
		t.Fatalf("4th failure within a minute: %d %s", rec.Code, rec.Body)
	}
	rec := post(bad, "Bearer nope")
	if rec.Code != 429 || rec.Header().Get("Retry-After") != "60" {
		t.Fatalf("5th failure within a minute: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
	}
	clk.add(20 * time.Second)
	for i := 0; i < 3; i++ {
		rec = post(bad, goodAuth)
		if rec.Code != 429 || rec.Header().Get("Retry-After") != "40" {
			t.Fatalf("right token during the block: %d Retry-After %q %s", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
		}
	}
	if rec := post(other, goodAuth); rec.Code != 200 {
		t.Fatalf("another client during the block: %d %s", rec.Code, rec.Body)
	}
	clk.add(40 * time.Second)
	if rec := post(bad, goodAuth); rec.Code != 200 {
		t.Fatalf("after the block: %d %s", rec.Code, rec.Body)
	}
	// the next block, soon after, doubles
	for i := 0; i < 4; i++ {
		post(bad, "")
	}
	if rec := post(bad, ""); rec.Code != 429 || rec.Header().Get("Retry-After") != "120" {
		t.Fatalf("second block: %d Retry-After %q", rec.Code, rec.Header().Get("Retry-After"))
	}
	log := logBuf.String()
	if n := strings.Count(log, "too many failed attempts"); n != 2 {
		t.Errorf("%d block lines, want 2 (one a block):\n%s", n, log)
	}
	if n := strings.Count(log, "write API: request refused"); n != 12 {
		t.Errorf("%d failure lines, want 12:\n%s", n, log)
	}
	if !strings.Contains(log, "client=192.0.2.9") || !strings.Contains(log, "level=WARN") {
		t.Errorf("the log lacks the client or the level:\n%s", log)
	}
	const want = `# HELP lvsmon_web_auth_failures_total Write API requests refused for a missing or wrong bearer token (requests refused 429 during a client's block are not counted).
# TYPE lvsmon_web_auth_failures_total counter
lvsmon_web_auth_failures_total 12
`
	if err := promtest.CollectAndCompare(s.limiter, strings.NewReader(want), "lvsmon_web_auth_failures_total"); err != nil {
		t.Error(err)
	}
}

// The per-client table is bounded: the least recently seen go first.
func TestAuthLimiterBounded(t *testing.T) {
	a := newAuthLimiter(nil, nil)
	a.max = 100
	for i := 0; i < 1000; i++ {
		a.fail(strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String())
	}
	if len(a.clients) != 100 || a.lru.Len() != 100 {
		t.Errorf("%d clients tracked (list %d), want 100", len(a.clients), a.lru.Len())
	}
	if a.failures() != 1000 {
		t.Errorf("failures = %d", a.failures())
	}
}

// A token file read at request time that went bad fails closed: 503 and
// an ERROR, even for the token it holds.
func TestWriteAPITokenFileFailsClosed(t *testing.T) {
	tf := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tf, []byte("0123456789abcdef-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {api_token_file: "+tf+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	s, _, logBuf := proxyFixture(t, "")
	s.src.Config = func() *config.Config { return cfg }
	post := func() *httptest.ResponseRecorder {
		return request(s, "POST", drainPath, "127.0.0.1:9160", "192.0.2.9:5000", goodAuth)
	}
	if rec := post(); rec.Code != 200 {
		t.Fatalf("0600: %d %s", rec.Code, rec.Body)
	}
	if err := os.Chmod(tf, 0o644); err != nil {
		t.Fatal(err)
	}
	if rec := post(); rec.Code != 503 || !strings.Contains(rec.Body.String(), "write API misconfigured") {
		t.Errorf("0644: %d %s", rec.Code, rec.Body)
	}
	if err := os.Chmod(tf, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tf, []byte("short\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if rec := post(); rec.Code != 503 {
		t.Errorf("short token: %d %s", rec.Code, rec.Body)
	}
	if rec := request(s, "POST", drainPath, "127.0.0.1:9160", "192.0.2.9:5000", "Bearer short"); rec.Code != 503 {
		t.Errorf("short token, sent: %d %s", rec.Code, rec.Body)
	}
	log := logBuf.String()
	if !strings.Contains(log, "level=ERROR") || !strings.Contains(log, "chmod 600") || !strings.Contains(log, "too short") {
		t.Errorf("log:\n%s", log)
	}
}

// DNS rebinding: by default writes must name an address, localhost or the
// machine's name, reads any; with web.allowed_hosts every request must
// name a listed host or an address.
func TestHostCheck(t *testing.T) {
	hn := "lvs-test-host"
	for _, tc := range []struct {
		web, method, path, host string
		code                    int
	}{
		{"", "POST", drainPath, "evil.example", 421},
		{"", "POST", drainPath, "evil.example:9160", 421},
		{"", "POST", drainPath, "127.0.0.1:9160", 200},
		{"", "POST", drainPath, "[::1]:9160", 200},
		{"", "POST", drainPath, "localhost:9160", 200},
		{"", "POST", drainPath, hn + ":9160", 200},
		{"", "POST", drainPath, "LVS-TEST-HOST.", 200},
		{"", "GET", "/healthz", "evil.example", 200},
		{", allowed_hosts: [lvs1.example.com]", "GET", "/healthz", "evil.example", 421},
		{", allowed_hosts: [lvs1.example.com]", "GET", "/healthz", "lvs1.example.com:9160", 200},
		{", allowed_hosts: [lvs1.example.com]", "GET", "/healthz", "192.0.2.1", 200},
		{", allowed_hosts: [lvs1.example.com]", "POST", drainPath, "LVS1.example.com", 200},
		{", allowed_hosts: [lvs1.example.com]", "POST", drainPath, "localhost", 421},
		{", allowed_hosts: [lvs1.example.com]", "POST", drainPath, "evil.example", 421},
		{", allowed_hosts: [lvs1.example.com]", "POST", drainPath, "127.0.0.1:9160", 200},
	} {
		s, bc, _ := proxyFixture(t, tc.web)
		s.hostnames = []string{hn}
		rec := request(s, tc.method, tc.path, tc.host, "192.0.2.9:5000", goodAuth)
		if rec.Code != tc.code {
			t.Errorf("%s %s Host %q%s: %d %s, want %d", tc.method, tc.path, tc.host, tc.web, rec.Code, rec.Body, tc.code)
		}
		if rec.Code == 421 && len(bc.by) != 0 {
			t.Errorf("%s Host %q: refused, yet the override was set", tc.method, tc.host)
		}
	}
}
