package web

import (
	"container/list"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"
)

// Limits bound what the HTTP interface may take from the process. The
// port is open to anonymous clients, and the process also runs the health
// checks: a client holding thousands of connections, or asking for the
// 50,000-server status page two hundred times at once, must not take the
// file descriptors and the CPU the checks need, or healthy real servers
// are taken out of service.
type Limits struct {
	// MaxConnections caps the open connections (default 256).
	MaxConnections int
	// MaxConcurrent caps the expensive requests in flight (default 8).
	MaxConcurrent int
	// IdleTimeout closes keep-alive connections idle this long (default
	// 30 s).
	IdleTimeout time.Duration
}

// The fixed limits of every connection. Read and write timeouts are long
// enough for a cold /metrics scrape of 500,000 series to a remote
// Prometheus and for a graph that waited its turn to be drawn; they end
// slow-loris clients, which would otherwise hold a connection for ever.
const (
	ReadHeaderTimeout = 10 * time.Second
	ReadTimeout       = 60 * time.Second
	WriteTimeout      = 60 * time.Second
	// MaxHeaderBytes: lvsmon's requests carry no more than a token; 64 KiB
	// leaves room for a browser's cookies of other sites on the host.
	MaxHeaderBytes = 64 << 10
	// MetricsConcurrency caps /metrics scrapes in flight, apart from the
	// expensive requests. A scrape of an unchanged snapshot is served from
	// a cache; more than a few at once is not Prometheus.
	MetricsConcurrency = 4
	// refusers caps the connections being answered 503 at once (each
	// holds its descriptor for at most refuseTimeout); beyond that a
	// connection over the cap is closed without an answer.
	refusers      = 32
	refuseTimeout = time.Second
)

// Request classes with a concurrency cap of their own (the label of
// lvsmon_web_requests_shed_total). A graph image that needs drawing takes
// a slot of both expensive and graph_draw: draws take turns in librrd, and
// at most half of the expensive slots may wait for one, so that a flood
// of odd-sized graphs leaves the status page and API room.
const (
	ClassExpensive = "expensive"
	ClassMetrics   = "metrics"
	ClassGraphDraw = "graph_draw"
)

// busyResponse answers a connection over the cap: complete, small, and
// closing, so that a client sees why and when to retry instead of a reset.
var busyResponse = func() []byte {
	const body = "lvsmon: too many open connections (web.max_connections); retry in a second\n"
	return fmt.Appendf(nil, "HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/plain; charset=utf-8\r\n"+
		"Retry-After: 1\r\nConnection: close\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}()

// Limiter enforces Limits and counts what it refused; it is a
// prometheus.Collector of those counts (lvsmon_web_*).
//
// Connections: the cap is enforced in the listener (Limiter.Listener), before
// http.Server spends a goroutine or a buffer on a connection, so that a
// flood of connections can never hold more descriptors than the cap
// (plus at most 32 being refused). A cap that only refused new connections
// would let idle keep-alive clients, or clients that connect and send
// nothing, lock everyone else out until their timeouts; so at the cap the
// Limiter first closes the connection that has been waiting longest without
// a request in progress (idle between keep-alive requests, or new and not
// yet done sending its headers: http.Server.ConnState tells which), as
// HAProxy and nginx reclaim idle keep-alive connections under pressure.
// An honest client loses at worst an idle connection, which its HTTP
// library reopens. Only when every connection is busy with a request is
// the new one refused, with a complete 503 (Retry-After: 1, Connection:
// close) rather than a reset, written and closed in a goroutine of its
// own so the accept loop never waits for a client.
//
// Requests: expensive routes (status page and API, graph pages, graph
// images that need drawing, events API) take a slot of MaxConcurrent,
// /metrics one of MetricsConcurrency, a graph draw also one of
// ClassGraphDraw; with none free the request is answered 503 with
// Retry-After at once, never queued (a queue would only turn overload into
// latency and memory). A graph image the cache can answer takes no slot.
// /metrics has its own cap so that a flood of status requests never fails
// a Prometheus scrape, and the reverse. /healthz (a supervisor's or load
// balancer's probe: two atomic reads) and the write API (authenticated,
// cheap, and what an operator needs during an incident) are not capped.
type Limiter struct {
	lim       Limits
	log       *slog.Logger
	expensive chan struct{}
	metrics   chan struct{}
	draws     chan struct{}
	refusing  chan struct{}

	mu   sync.Mutex
	open int
	peak int
	// waiting lists the connections without a request in progress (new
	// or idle), longest waiting first: the ones closed to admit a new
	// connection at the cap.
	waiting *list.List

	reaped, refused, refusedUnanswered    atomic.Uint64
	shedExpensive, shedMetrics, shedDraws atomic.Uint64
	lastWarn                              atomic.Int64

	// auth limits the write API's failed attempts by client.
	auth *authLimiter

	descOpen, descMax, descRejected, descReaped, descInFlight, descMaxInFlight, descShed, descAuthFailures *prometheus.Desc
}

// NewLimiter enforces lim (zero fields take the defaults).
func NewLimiter(lim Limits, log *slog.Logger) *Limiter {
	if lim.MaxConnections <= 0 {
		lim.MaxConnections = 256
	}
	if lim.MaxConcurrent <= 0 {
		lim.MaxConcurrent = 8
	}
	if lim.IdleTimeout <= 0 {
		lim.IdleTimeout = 30 * time.Second
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Limiter{lim: lim, log: log, waiting: list.New(), auth: newAuthLimiter(time.Now, log),
		expensive: make(chan struct{}, lim.MaxConcurrent),
		metrics:   make(chan struct{}, MetricsConcurrency),
		draws:     make(chan struct{}, max(1, lim.MaxConcurrent/2)),
		refusing:  make(chan struct{}, refusers),
		descOpen:  prometheus.NewDesc("lvsmon_web_connections_open", "Open connections to the HTTP port.", nil, nil),
		descMax:   prometheus.NewDesc("lvsmon_web_connections_max", "The cap on open connections (web.max_connections, lowered to what RLIMIT_NOFILE allows).", nil, nil),
		descRejected: prometheus.NewDesc("lvsmon_web_connections_rejected_total",
			"Connections refused at the cap while every open one had a request in progress: limit (answered 503), limit_unanswered (closed at once: too many being answered).", []string{"reason"}, nil),
		descReaped: prometheus.NewDesc("lvsmon_web_connections_reaped_total",
			"Connections without a request in progress (idle keep-alive, or new and silent) closed at the cap to admit a new one.", nil, nil),
		descInFlight: prometheus.NewDesc("lvsmon_web_requests_in_flight",
			"Requests in flight by capped class: expensive (status, graph pages, graph images not cached, events), metrics, graph_draw (graph images waiting for or in a draw).", []string{"class"}, nil),
		descMaxInFlight: prometheus.NewDesc("lvsmon_web_requests_max_in_flight",
			"The cap on requests in flight by class (expensive: web.max_concurrent_requests; metrics: 4; graph_draw: half the expensive cap).", []string{"class"}, nil),
		descShed: prometheus.NewDesc("lvsmon_web_requests_shed_total",
			"Requests answered 503 at once because their class's cap was reached.", []string{"class"}, nil),
		descAuthFailures: prometheus.NewDesc("lvsmon_web_auth_failures_total",
			"Write API requests refused for a missing or wrong bearer token (requests refused 429 during a client's block are not counted).", nil, nil),
	}
}

// Limits returns the limits in force.
func (g *Limiter) Limits() Limits { return g.lim }

// Listener wraps ln: Accept returns only connections under the cap.
func (g *Limiter) Listener(ln net.Listener) net.Listener { return &guardedListener{Listener: ln, g: g} }

type guardedListener struct {
	net.Listener
	g *Limiter
}

func (l *guardedListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if tc := l.g.admit(c); tc != nil {
			return tc, nil
		}
	}
}

// trackedConn is an admitted connection; its first Close frees its place.
type trackedConn struct {
	net.Conn
	g    *Limiter
	once sync.Once
	// Guarded by g.mu: el is its place in g.waiting (nil while a request
	// is in progress); closed is set by the first Close.
	el     *list.Element
	closed bool
}

// CloseWrite half-closes, as http.Server does before closing a
// connection with an error, so the client reads the answer, not a reset.
func (c *trackedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}

func (c *trackedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(func() {
		c.g.mu.Lock()
		defer c.g.mu.Unlock()
		c.closed = true
		if c.el != nil {
			c.g.waiting.Remove(c.el)
			c.el = nil
		}
		c.g.open--
	})
	return err
}

// admit takes c under the cap, closing the longest-waiting connection to
// make room if need be; it returns nil when c was refused.
func (g *Limiter) admit(c net.Conn) *trackedConn {
	g.mu.Lock()
	for g.open >= g.lim.MaxConnections {
		front := g.waiting.Front()
		if front == nil {
			g.mu.Unlock()
			g.refuse(c)
			return nil
		}
		victim := g.waiting.Remove(front).(*trackedConn)
		victim.el = nil
		g.mu.Unlock()
		// Its Close (this one, or the server's if it raced us) frees
		// exactly one place; its goroutine in http.Server sees the read
		// fail and ends.
		victim.Close()
		g.reaped.Add(1)
		g.warn("the HTTP port is at its connection cap: connections without a request in progress are closed to admit new ones")
		g.mu.Lock()
	}
	tc := &trackedConn{Conn: c, g: g}
	tc.el = g.waiting.PushBack(tc)
	g.open++
	g.peak = max(g.peak, g.open)
	g.mu.Unlock()
	return tc
}

// refuse answers c 503 and closes it, in a goroutine of its own with a
// deadline; with too many refusals under way it closes c at once.
func (g *Limiter) refuse(c net.Conn) {
	select {
	case g.refusing <- struct{}{}:
	default:
		c.Close()
		g.refusedUnanswered.Add(1)
		g.warn("the HTTP port is at its connection cap with every connection busy: new connections are closed unanswered")
		return
	}
	g.refused.Add(1)
	g.warn("the HTTP port is at its connection cap with every connection busy: new connections are answered 503")
	go func() {
		defer func() { <-g.refusing }()
		defer c.Close()
		c.SetDeadline(time.Now().Add(refuseTimeout))
		if _, err := c.Write(busyResponse); err != nil {
			return
		}
		// Half-close, then read what the client sent until it closes: a
		// close with unread data would send a reset, which may destroy
		// the 503 before the client reads it.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		}
		io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// connState tracks which connections have a request in progress (the
// http.Server's ConnState hook).
func (g *Limiter) connState(nc net.Conn, st http.ConnState) {
	c, ok := nc.(*trackedConn)
	if !ok {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if c.closed {
		return
	}
	if c.el != nil {
		g.waiting.Remove(c.el)
		c.el = nil
	}
	if st == http.StateNew || st == http.StateIdle {
		c.el = g.waiting.PushBack(c) // waiting longest: at the front
	}
}

// warn logs overload at most once a minute: a flood must not become a
// flood of log lines.
func (g *Limiter) warn(msg string) {
	now := time.Now().Unix()
	last := g.lastWarn.Load()
	if now-last < 60 || !g.lastWarn.CompareAndSwap(last, now) {
		return
	}
	g.log.Warn(msg+" (logged at most once a minute; see lvsmon_web_* metrics)",
		"max_connections", g.lim.MaxConnections, "max_concurrent_requests", g.lim.MaxConcurrent,
		"reaped", g.reaped.Load(), "refused", g.refused.Load()+g.refusedUnanswered.Load(),
		"shed", g.shedExpensive.Load()+g.shedMetrics.Load()+g.shedDraws.Load())
}

// pool is a class's slots and its count of shed requests.
func (g *Limiter) pool(class string) (chan struct{}, *atomic.Uint64) {
	switch class {
	case ClassMetrics:
		return g.metrics, &g.shedMetrics
	case ClassGraphDraw:
		return g.draws, &g.shedDraws
	}
	return g.expensive, &g.shedExpensive
}

// acquire takes a slot of class, or answers 503 with Retry-After and
// returns false.
func (g *Limiter) acquire(c *gin.Context, class string) (release func(), ok bool) {
	pool, shed := g.pool(class)
	select {
	case pool <- struct{}{}:
		return func() { <-pool }, true
	default:
	}
	shed.Add(1)
	g.warn("requests are shed: their class is at its cap of requests in flight (" + class + ")")
	c.Header("Retry-After", "1")
	apiError(c, http.StatusServiceUnavailable,
		fmt.Sprintf("lvsmon is busy: %d %s requests in flight, the most it serves at once; retry in a second", cap(pool), class))
	return nil, false
}

// limit is the middleware of a capped class: a free slot or 503 at once.
func (g *Limiter) limit(class string) gin.HandlerFunc {
	return func(c *gin.Context) {
		release, ok := g.acquire(c, class)
		if !ok {
			return
		}
		defer release()
		c.Next()
	}
}

// Describe implements prometheus.Collector.
func (g *Limiter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{g.descOpen, g.descMax, g.descRejected, g.descReaped, g.descInFlight, g.descMaxInFlight, g.descShed, g.descAuthFailures} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (g *Limiter) Collect(ch chan<- prometheus.Metric) {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	ch <- prometheus.MustNewConstMetric(g.descOpen, prometheus.GaugeValue, float64(open))
	ch <- prometheus.MustNewConstMetric(g.descMax, prometheus.GaugeValue, float64(g.lim.MaxConnections))
	ch <- prometheus.MustNewConstMetric(g.descRejected, prometheus.CounterValue, float64(g.refused.Load()), "limit")
	ch <- prometheus.MustNewConstMetric(g.descRejected, prometheus.CounterValue, float64(g.refusedUnanswered.Load()), "limit_unanswered")
	ch <- prometheus.MustNewConstMetric(g.descReaped, prometheus.CounterValue, float64(g.reaped.Load()))
	ch <- prometheus.MustNewConstMetric(g.descAuthFailures, prometheus.CounterValue, float64(g.auth.failures()))
	for _, p := range []struct {
		class string
		pool  chan struct{}
		shed  *atomic.Uint64
	}{{ClassExpensive, g.expensive, &g.shedExpensive}, {ClassMetrics, g.metrics, &g.shedMetrics}, {ClassGraphDraw, g.draws, &g.shedDraws}} {
		ch <- prometheus.MustNewConstMetric(g.descInFlight, prometheus.GaugeValue, float64(len(p.pool)), p.class)
		ch <- prometheus.MustNewConstMetric(g.descMaxInFlight, prometheus.GaugeValue, float64(cap(p.pool)), p.class)
		ch <- prometheus.MustNewConstMetric(g.descShed, prometheus.CounterValue, float64(p.shed.Load()), p.class)
	}
}

// guardStats is what tests read.
type guardStats struct {
	open, peak, waiting int
	reaped, refused     uint64
}

func (g *Limiter) stats() guardStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	return guardStats{open: g.open, peak: g.peak, waiting: g.waiting.Len(), reaped: g.reaped.Load(), refused: g.refused.Load() + g.refusedUnanswered.Load()}
}
