// Package web serves lvsmon's HTTP interface on one port (9160 by
// default): the status dashboard, the JSON API and health endpoints. It
// only reads shared state (the collector's latest snapshot and the current
// config); it never reaches the kernel itself, so a burst of requests
// cannot load the director's IPVS.
package web

import (
	"cmp"
	"context"
	"crypto/tls"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	ttemplate "text/template"
	"time"

	"github.com/gin-contrib/gzip"
	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// Source is what the web server reads: the latest snapshot and health of
// the collector, and the config in force (it changes on reload).
type Source struct {
	Snapshot func() *lvs.Snapshot
	Health   func() lvs.CollectorHealth
	Config   func() *config.Config
	Version  string
	// Graphs draws graph images; nil when graphs are off.
	Graphs Grapher
	// Events is the event log; nil when there is none.
	Events *events.Log
	// Control is the write API's target; nil: no write API.
	Control Control
	// Server gives the checker's view and the override of one real
	// server by id; nil: no checker. With check false the caller needs
	// no ServerInfo.Check (the overview): 50,000 fewer copies of the
	// checker's status per build.
	Server func(id string, check bool) (ServerInfo, bool)
	// History gives a real server's recent check results, per check;
	// nil: no checker.
	History func(serverID string) []CheckHistory
	// SorryActive reports whether a service's sorry server is in use.
	SorryActive func(serviceID string) bool
	// Reconciler reports the reconciler's counters for the status API.
	Reconciler func() *ReconcilerStatus
	// RRD reports the RRD store's health (files, errors, failing files)
	// for the status API; nil when graphs are off.
	RRD func() *RRDStatus
	// Metrics serves Prometheus metrics at MetricsPath; nil: none.
	Metrics http.Handler
	// MetricsPath is where Metrics answers (--web.telemetry-path); ""
	// is DefaultMetricsPath. It must pass CheckTelemetryPath.
	MetricsPath string
	// Role reports the director's HA role for the status API and page;
	// nil when no ha section is configured.
	Role func() *Role
	// Peers reports the peer directors and their drift (config peers);
	// nil without peers.
	Peers func() []PeerStatus
	// Alerting reports the mail pipeline and outbox; nil without mail.
	Alerting func() *AlertingStatus
	// Mail summarises delivery for the status page; nil without mail.
	Mail func() MailSummary
	// Problems reports the director's own troubles (checks failing
	// locally, a hold on mass failures, a damaged overrides file) for the
	// status API and the top of the status page; nil: none.
	Problems func() []Problem
	// Access is the web config in force (--web.config.file: TLS and
	// basic auth); nil, or a nil func: plain HTTP, no users.
	Access func() *Access
	// Limiter enforces the connection and request caps and counts what it
	// refused; nil: a Limiter with the default limits.
	Limiter *Limiter
}

// Server is the HTTP interface.
type Server struct {
	src     Source
	log     *slog.Logger
	engine  *gin.Engine
	page    *template.Template
	start   time.Time
	limiter *Limiter
	// hostnames are the machine's names, which write requests may name
	// in their Host header without web.allowed_hosts (see hostCheck).
	hostnames []string
	// serving is true while Serve answers on its listeners (/-/ready).
	serving  atomic.Bool
	pwcache  pwCache
	sessions *sessions
	// overviewCache keeps the status the page was last built from.
	overviewCache statusCache
	// sparks are the services' recent rates for the overview.
	sparks sparks
	// ids keeps real servers' names between status builds.
	ids idCache
}

// DefaultMetricsPath is where Prometheus metrics are served unless
// --web.telemetry-path says otherwise.
const DefaultMetricsPath = "/metrics"

// CheckTelemetryPath refuses a metrics path that is not a clean absolute
// path or that would take the place of one of lvsmon's own pages.
func CheckTelemetryPath(p string) error {
	switch {
	case !strings.HasPrefix(p, "/") || p == "/":
		return fmt.Errorf("%q: want an absolute path like %s", p, DefaultMetricsPath)
	case path.Clean(p) != p || strings.ContainsAny(p, ":*?#%"):
		return fmt.Errorf("%q is not a clean path (no trailing slash, dot segments, wildcards, query or escapes)", p)
	}
	for _, own := range []string{"/healthz", "/favicon.ico", "/director", "/events", "/login", "/logout"} {
		if p == own {
			return fmt.Errorf("%q is lvsmon's own page", p)
		}
	}
	for _, own := range []string{"/api/", "/graphs/", "/service/", "/server/", "/-/", "/healthz/", "/director/", "/static/", "/ui/", "/events/"} {
		if strings.HasPrefix(p, own) || p+"/" == own {
			return fmt.Errorf("%q is under %s, where lvsmon's own pages are", p, own)
		}
	}
	return nil
}

//go:embed templates/*.html
var templates embed.FS

// static are the pages' own files (live.js), served from the binary: a
// director often has no internet, and CSP allows no other script.
//
//go:embed static
var static embed.FS

// New builds the server and its routes.
func New(src Source, log *slog.Logger) *Server {
	gin.SetMode(gin.ReleaseMode)
	s := &Server{src: src, log: log, engine: gin.New(), start: time.Now(), limiter: src.Limiter, hostnames: ownHostnames(), sessions: newSessions(nil)}
	if s.limiter == nil {
		s.limiter = NewLimiter(Limits{}, log)
	}
	expensive := s.limiter.limit(ClassExpensive)
	s.page = template.Must(template.New("").Funcs(funcs).ParseFS(templates, "templates/*.html"))
	// Forwarding headers are believed from the configured proxies only:
	// anyone else could write any client address into the access log and
	// into who set an override.
	var proxies []string
	if src.Config != nil {
		proxies = src.Config().Web.TrustedProxies
	}
	if err := s.engine.SetTrustedProxies(proxies); err != nil {
		// config validated them; trust none rather than some
		log.Error("the trusted proxies cannot be used; trusting none", "proxies", proxies, "err", err)
		s.engine.SetTrustedProxies(nil)
	}
	// Pages and JSON go out gzipped to clients that take it (the status
	// page of a big director is a tenth of its size); the metrics are
	// compressed by their own handler, images are compressed already.
	mp := cmp.Or(src.MetricsPath, DefaultMetricsPath)
	if CheckTelemetryPath(mp) != nil {
		mp = DefaultMetricsPath
	}
	s.engine.Use(gin.Recovery(), s.accessLog, securityHeaders,
		// (no WithMinLength: in v1.2.6 it drops what a template writes
		// before the threshold; TestGzip compares the bodies)
		gzip.Gzip(gzip.DefaultCompression, gzip.WithExcludedPaths([]string{mp})),
		s.hostCheck, s.gate)
	s.engine.HandleMethodNotAllowed = true
	s.engine.NoRoute(func(c *gin.Context) { apiError(c, http.StatusNotFound, "no such page: "+c.Request.URL.Path) })
	s.engine.NoMethod(func(c *gin.Context) {
		apiError(c, http.StatusMethodNotAllowed, c.Request.Method+" is not allowed on "+c.Request.URL.Path)
	})
	s.engine.GET("/healthz", s.healthz)
	for _, m := range []string{http.MethodGet, http.MethodHead} {
		s.engine.Handle(m, "/-/healthy", s.healthy)
		s.engine.Handle(m, "/-/ready", s.ready)
	}
	// Browsers ask for it on every page; no content rather than a 404
	// in every access log and browser console.
	s.engine.GET("/favicon.ico", func(c *gin.Context) { c.Status(http.StatusNoContent) })
	s.engine.GET("/static/:file", s.staticFile)
	s.engine.GET("/api/v1/status", expensive, s.statusAPI)
	s.engine.GET("/", expensive, s.index)
	if src.Metrics != nil {
		if err := CheckTelemetryPath(cmp.Or(src.MetricsPath, DefaultMetricsPath)); err != nil {
			log.Error("the metrics path cannot be used; serving metrics at the default", "err", err, "path", DefaultMetricsPath)
		}
		s.engine.GET(mp, s.limiter.limit(ClassMetrics), gin.WrapH(src.Metrics))
	}
	s.graphRoutes(expensive)
	s.controlRoutes()
	s.uiRoutes()
	return s
}

// Handler returns the HTTP handler, for tests and for mounting. The
// request caps apply; the connection cap and timeouts are Serve's.
func (s *Server) Handler() http.Handler { return s.engine }

// Limiter returns the server's Limiter (a prometheus.Collector).
func (s *Server) Limiter() *Limiter { return s.limiter }

// Serve answers on every listener (loopback and a management network,
// say) until ctx ends, then shuts down gracefully (open requests get five
// seconds). One listener failing stops them all. Connections are capped
// over all listeners together and timed out as the Limiter's doc says.
func (s *Server) Serve(ctx context.Context, lns ...net.Listener) error {
	if len(lns) == 0 {
		return errors.New("web: no listener")
	}
	srv := s.httpServer()
	serve := srv.Serve
	if acc := s.access(); acc != nil && acc.TLS != nil {
		srv.TLSConfig = s.tlsFor(acc)
		if !acc.HTTP2 {
			srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
		}
		serve = func(ln net.Listener) error { return srv.ServeTLS(ln, "", "") }
	}
	type result struct {
		addr net.Addr
		err  error
	}
	errc := make(chan result, len(lns))
	for _, ln := range lns {
		go func() { errc <- result{ln.Addr(), serve(s.limiter.Listener(ln))} }()
	}
	s.serving.Store(true)
	defer s.serving.Store(false)
	var failed error
	select {
	case r := <-errc:
		failed = fmt.Errorf("web: serve %s: %w", r.addr, r.err)
		lns = lns[1:] // one result is in
	case <-ctx.Done():
	}
	s.serving.Store(false)
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil && failed == nil {
		failed = fmt.Errorf("web: shutdown: %w", err)
	}
	for range lns {
		if r := <-errc; r.err != nil && !errors.Is(r.err, http.ErrServerClosed) && failed == nil {
			failed = fmt.Errorf("web: serve %s: %w", r.addr, r.err)
		}
	}
	return failed
}

// httpServer is the http.Server that Serve runs.
func (s *Server) httpServer() *http.Server {
	return &http.Server{
		Handler:           s.engine,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      WriteTimeout,
		IdleTimeout:       s.limiter.lim.IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnState:         s.limiter.connState,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) accessLog(c *gin.Context) {
	start := time.Now()
	c.Next()
	s.log.Debug("http request", "method", c.Request.Method, "path", c.Request.URL.Path,
		"status", c.Writer.Status(), "duration", time.Since(start), "remote", c.ClientIP())
}

// apiError answers with a JSON error body, so API clients never have to
// parse an HTML error page.
func apiError(c *gin.Context, code int, msg string) {
	c.AbortWithStatusJSON(code, gin.H{"error": msg, "status": code})
}

// healthz is healthy while the collector keeps sampling: a daemon whose
// kernel reads fail for three steps in a row is alive but useless, and a
// supervisor or load balancer should know.
func (s *Server) healthz(c *gin.Context) {
	h := s.src.Health()
	step := h.Step
	last := h.LastSample
	if last.IsZero() {
		last = s.start
	}
	if age := time.Since(last); age > 3*step+time.Second {
		c.JSON(http.StatusServiceUnavailable, gin.H{"status": "stale", "last_sample": h.LastSample, "last_error": h.LastError,
			"detail": fmt.Sprintf("no successful IPVS sample for %s (step %s)", age.Round(time.Second), step)})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "ok", "last_sample": h.LastSample})
}

// healthy answers 200 while the process serves HTTP, as Prometheus'
// /-/healthy does: a liveness probe that restarts only a hung process.
func (s *Server) healthy(c *gin.Context) {
	c.String(http.StatusOK, "lvsmon is Healthy.\n")
}

// ready answers 200 once the collector has read the IPVS table and the
// web interface serves, 503 with the reason before: a load balancer or
// an orchestrator sends no one to an lvsmon with nothing to show.
func (s *Server) ready(c *gin.Context) {
	switch {
	case !s.serving.Load():
		c.String(http.StatusServiceUnavailable, "lvsmon is not ready: the web interface is not serving (starting or stopping).\n")
	case s.src.Health().LastSample.IsZero():
		h := s.src.Health()
		msg := "lvsmon is not ready: no successful IPVS sample yet"
		if h.LastError != "" {
			msg += " (last error: " + h.LastError + ")"
		}
		c.String(http.StatusServiceUnavailable, msg+".\n")
	default:
		c.String(http.StatusOK, "lvsmon is Ready.\n")
	}
}

// indexPage is the status page's data: the status, and who looks.
type indexPage struct {
	Status
	Viewer viewer
	O      overview
}

func (s *Server) index(c *gin.Context) {
	st := indexPage{Status: s.cachedStatus(), Viewer: s.viewerOf(c)}
	st.O = buildOverview(&st.Status, c)
	step := strconv.FormatFloat(st.StepSeconds, 'f', -1, 64) + " s"
	for i := range st.O.Lines {
		st.O.Lines[i].Spark = sparkSVG(s.spark(st.O.Lines[i].ID), step)
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := s.page.ExecuteTemplate(c.Writer, "index.html", st); err != nil {
		s.templateFailed(c, "index.html", err)
	}
}

// templateFailed logs a page that could not be written. A template's own
// failure is a bug (ERROR); anything else is the write to a client that
// went away or timed out, which the client caused and an attacker could
// repeat at will: debug only.
func (s *Server) templateFailed(c *gin.Context, page string, err error) {
	var (
		ee  ttemplate.ExecError
		esc *template.Error
	)
	if errors.As(err, &ee) || errors.As(err, &esc) {
		s.log.Error("rendering a page failed", "page", page, "err", err)
		return
	}
	s.log.Debug("writing a page failed; the client went away", "page", page, "err", err, "remote", c.ClientIP())
}

// staticFile serves a file of the pages (live.js), cached for an hour.
func (s *Server) staticFile(c *gin.Context) {
	name := c.Param("file")
	b, err := static.ReadFile("static/" + name)
	if err != nil || strings.Contains(name, "/") {
		apiError(c, http.StatusNotFound, "no such file: "+name)
		return
	}
	ctype := "application/octet-stream"
	if strings.HasSuffix(name, ".js") {
		ctype = "text/javascript; charset=utf-8"
	}
	c.Header("Cache-Control", "public, max-age=3600")
	c.Data(http.StatusOK, ctype, b)
}
