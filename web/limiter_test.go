package web

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gin-gonic/gin"
	promtest "github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// guarded rebuilds s with a Limiter of these limits.
func guarded(s *Server, lim Limits) *Server {
	s.src.Limiter = NewLimiter(lim, quietLog)
	return New(s.src, quietLog)
}

// serveGuarded runs s on a loopback port until the test ends.
func serveGuarded(t *testing.T, s *Server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return ln.Addr().String()
}

// waitFor: the shared poll (testutil.WaitFor).
var waitFor = testutil.WaitFor

// rawGet sends GET path on c (keep-alive) and reads the response.
func rawGet(t *testing.T, c net.Conn, br *bufio.Reader, path string) *http.Response {
	t.Helper()
	if _, err := io.WriteString(c, "GET "+path+" HTTP/1.1\r\nHost: lvsmon\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestIdleConnectionsAreReaped: clients keep three times more idle
// keep-alive connections open than the cap; every new one is still
// answered, the longest idle ones are closed to make room, and the
// server never holds more connections (descriptors) than the cap.
func TestIdleConnectionsAreReaped(t *testing.T) {
	const limit, clients = 8, 24
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	s = guarded(s, Limits{MaxConnections: limit})
	addr := serveGuarded(t, s)
	fdsBefore := openFDs(t)

	type client struct {
		c  net.Conn
		br *bufio.Reader
	}
	var cs []client
	for i := range clients {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		cl := client{nc, bufio.NewReader(nc)}
		cs = append(cs, cl)
		if resp := rawGet(t, cl.c, cl.br, "/healthz"); resp.StatusCode != 200 {
			t.Fatalf("client %d: %s", i, resp.Status)
		}
		// Its connection is idle now (so that the next one finds every
		// earlier one idle, whatever the scheduling).
		waitFor(t, "the connection goes idle", func() bool { st := s.limiter.stats(); return st.waiting == st.open })
		if st := s.limiter.stats(); st.open > limit {
			t.Fatalf("after client %d: %d connections open, cap %d", i, st.open, limit)
		}
	}
	st := s.limiter.stats()
	if st.open != limit || st.peak > limit || st.reaped != clients-limit || st.refused != 0 {
		t.Errorf("limiter %+v", st)
	}
	// The server's descriptors: the clients hold theirs (24), the server
	// at most the cap.
	if fds := openFDs(t) - fdsBefore; fds > clients+limit+2 {
		t.Errorf("%d more descriptors with %d clients and a cap of %d", fds, clients, limit)
	}
	// The longest idle were closed; the newest still work.
	for i, cl := range cs {
		if i < clients-limit {
			if _, err := cl.br.ReadByte(); !errors.Is(err, io.EOF) {
				t.Errorf("client %d (among the oldest): connection not closed: %v", i, err)
			}
			continue
		}
		if resp := rawGet(t, cl.c, cl.br, "/api/v1/status"); resp.StatusCode != 200 {
			t.Errorf("client %d (among the newest): %s", i, resp.Status)
		}
	}
	// An ordinary client still gets in.
	resp, err := http.Get("http://" + addr + "/healthz")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("new client: %v %v", err, resp)
	}
	resp.Body.Close()
	if err := promtest.CollectAndCompare(s.limiter, strings.NewReader(`
# HELP lvsmon_web_connections_max The cap on open connections (web.max_connections, lowered to what RLIMIT_NOFILE allows).
# TYPE lvsmon_web_connections_max gauge
lvsmon_web_connections_max 8
# HELP lvsmon_web_connections_reaped_total Connections without a request in progress (idle keep-alive, or new and silent) closed at the cap to admit a new one.
# TYPE lvsmon_web_connections_reaped_total counter
lvsmon_web_connections_reaped_total 17
`), "lvsmon_web_connections_max", "lvsmon_web_connections_reaped_total"); err != nil {
		t.Error(err)
	}
}

// TestConnectionCapRefusesWhenAllBusy: at the cap with every connection
// in a request, a new connection is answered 503 and closed.
func TestConnectionCapRefusesWhenAllBusy(t *testing.T) {
	const limit = 4
	s, _, _ := fixture(t)
	s = guarded(s, Limits{MaxConnections: limit})
	entered, release := make(chan struct{}), make(chan struct{})
	s.engine.GET("/test/block", func(c *gin.Context) {
		entered <- struct{}{}
		<-release
		c.String(200, "done")
	})
	addr := serveGuarded(t, s)
	var wg sync.WaitGroup
	for range limit {
		wg.Go(func() {
			resp, err := http.Get("http://" + addr + "/test/block")
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("held request: %s", resp.Status)
			}
		})
	}
	for range limit {
		<-entered
	}
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	answer, err := io.ReadAll(nc)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"HTTP/1.1 503 Service Unavailable\r\n", "\r\nRetry-After: 1\r\n", "\r\nConnection: close\r\n", "web.max_connections"} {
		if !strings.Contains(string(answer), want) {
			t.Errorf("answer over the cap lacks %q:\n%s", want, answer)
		}
	}
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader(string(answer))), nil)
	if err != nil || resp.StatusCode != 503 {
		t.Errorf("not a well-formed 503: %v", err)
	}
	close(release)
	wg.Wait()
	if st := s.limiter.stats(); st.refused != 1 || st.reaped != 0 || st.peak > limit {
		t.Errorf("limiter %+v", st)
	}
	if err := promtest.CollectAndCompare(s.limiter, strings.NewReader(`
# HELP lvsmon_web_connections_rejected_total Connections refused at the cap while every open one had a request in progress: limit (answered 503), limit_unanswered (closed at once: too many being answered).
# TYPE lvsmon_web_connections_rejected_total counter
lvsmon_web_connections_rejected_total{reason="limit"} 1
lvsmon_web_connections_rejected_total{reason="limit_unanswered"} 0
`), "lvsmon_web_connections_rejected_total"); err != nil {
		t.Error(err)
	}
}

// blockingGrapher holds every graph request until released, and tells
// when one has entered.
type blockingGrapher struct {
	fakeGrapher
	entered chan struct{}
	release chan struct{}
}

func (b *blockingGrapher) Graph(ctx context.Context, r GraphRequest) ([]byte, string, error) {
	b.entered <- struct{}{}
	select {
	case <-b.release:
		return []byte("\x89PNG"), "image/png", nil
	case <-ctx.Done():
		return nil, "", ErrGraphBusy
	}
}

// TestRequestCap: with the expensive class at its cap, its requests are
// answered 503 with Retry-After at once; cached graph images, /healthz,
// /metrics and the write API are not held up by it. Graph draws have a
// cap of their own within it.
func TestRequestCap(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	bg := &blockingGrapher{entered: make(chan struct{}), release: make(chan struct{})}
	statusIn, statusRelease := make(chan struct{}), make(chan struct{})
	metricsIn, metricsRelease := make(chan struct{}), make(chan struct{})
	s.src.Graphs = bg
	// The first call of each of the two held requests blocks (a request
	// makes no second call while its first blocks); later calls pass.
	var calls atomic.Int32
	s.src.Server = func(string, bool) (ServerInfo, bool) {
		if calls.Add(1) <= 2 {
			statusIn <- struct{}{}
			<-statusRelease
		}
		return ServerInfo{}, false
	}
	s.src.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("block") != "" {
			metricsIn <- struct{}{}
			<-metricsRelease
		}
		io.WriteString(w, "# metrics\n")
	})
	s = guarded(s, Limits{MaxConcurrent: 4}) // 2 of them for graph draws
	h := s.Handler()

	var wg sync.WaitGroup
	hold := func(path string, entered chan struct{}) {
		wg.Go(func() {
			if rec := get(t, h, "GET", path); rec.Code != 200 {
				t.Errorf("held %s: %d %s", path, rec.Code, rec.Body.String())
			}
		})
		<-entered
	}
	hold("/graphs/director/conns.png", bg.entered)
	hold("/graphs/director/rate.png", bg.entered)
	// Draws at their cap: another image to draw is refused, the status
	// is not.
	if rec := get(t, h, "GET", "/graphs/director/traffic.png"); rec.Code != 503 || !strings.Contains(rec.Body.String(), "2 graph_draw requests in flight") {
		t.Errorf("a third draw: %d %s", rec.Code, rec.Body.String())
	}
	hold("/api/v1/status", statusIn)
	hold("/", statusIn)
	// Expensive at its cap.
	for _, path := range []string{"/api/v1/status", "/", "/graphs/director/rate.png?width=400", "/service/tcp_198.51.100.10_80", "/api/v1/events", "/director"} {
		rec := get(t, h, "GET", path)
		if rec.Code != 503 || rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), "4 expensive requests in flight") {
			t.Errorf("GET %s at the cap: %d %q %s", path, rec.Code, rec.Header().Get("Retry-After"), rec.Body.String())
		}
	}
	for _, tc := range []struct {
		method, path string
		code         int
	}{
		{"GET", "/graphs/director/rate.png?width=123", 200}, // cached
		{"GET", "/healthz", 200},
		{"GET", "/metrics", 200},
		{"POST", "/api/v1/servers/x/drain", 404}, // no write API here, but not shed
		{"GET", "/nope", 404},
	} {
		if rec := get(t, h, tc.method, tc.path); rec.Code != tc.code {
			t.Errorf("%s %s at the expensive cap: %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
	}
	// /metrics has a cap of its own.
	for range MetricsConcurrency {
		hold("/metrics?block=1", metricsIn)
	}
	if rec := get(t, h, "GET", "/metrics"); rec.Code != 503 || rec.Header().Get("Retry-After") != "1" {
		t.Errorf("/metrics at its cap: %d", rec.Code)
	}
	if err := promtest.CollectAndCompare(s.limiter, strings.NewReader(`
# HELP lvsmon_web_requests_in_flight Requests in flight by capped class: expensive (status, graph pages, graph images not cached, events), metrics, graph_draw (graph images waiting for or in a draw).
# TYPE lvsmon_web_requests_in_flight gauge
lvsmon_web_requests_in_flight{class="expensive"} 4
lvsmon_web_requests_in_flight{class="graph_draw"} 2
lvsmon_web_requests_in_flight{class="metrics"} 4
`), "lvsmon_web_requests_in_flight"); err != nil {
		t.Error(err)
	}
	close(metricsRelease)
	close(statusRelease)
	close(bg.release)
	wg.Wait()
	s.src.Server = nil
	if rec := get(t, h, "GET", "/api/v1/status"); rec.Code != 200 {
		t.Errorf("after the release: %d", rec.Code)
	}
	if err := promtest.CollectAndCompare(s.limiter, strings.NewReader(`
# HELP lvsmon_web_requests_shed_total Requests answered 503 at once because their class's cap was reached.
# TYPE lvsmon_web_requests_shed_total counter
lvsmon_web_requests_shed_total{class="expensive"} 6
lvsmon_web_requests_shed_total{class="graph_draw"} 1
lvsmon_web_requests_shed_total{class="metrics"} 1
`), "lvsmon_web_requests_shed_total"); err != nil {
		t.Error(err)
	}

	// A graph request whose client leaves while it waits is a 503, not
	// a 500 with an ERROR line.
	bg.release = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ServeHTTP(rec, httptest.NewRequestWithContext(ctx, "GET", "/graphs/director/conns.png", nil))
	}()
	<-bg.entered
	cancel()
	<-done
	if rec.Code != 503 {
		t.Errorf("abandoned graph: %d %s", rec.Code, rec.Body.String())
	}
}

func TestHTTPServerLimits(t *testing.T) {
	s, _, _ := fixture(t)
	s = guarded(s, Limits{IdleTimeout: 7 * time.Second})
	srv := s.httpServer()
	if srv.ReadHeaderTimeout != 10*time.Second || srv.ReadTimeout != 60*time.Second || srv.WriteTimeout != 60*time.Second ||
		srv.IdleTimeout != 7*time.Second || srv.MaxHeaderBytes != 64<<10 || srv.ConnState == nil {
		t.Errorf("http.Server limits: %+v", srv)
	}
	if l := NewLimiter(Limits{}, nil).Limits(); l.MaxConnections != 256 || l.MaxConcurrent != 8 || l.IdleTimeout != 30*time.Second {
		t.Errorf("default limits: %+v", l)
	}
}
