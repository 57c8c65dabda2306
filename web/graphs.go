package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// GraphRequest names one graph image. Kind is "director", "service" or
// "server"; Range is a named range or "" with Start and End.
type GraphRequest struct {
	Kind, Service, Server, Graph, Range string
	Start, End                          time.Time
	Width, Height                       int
	Format                              string
}

// Grapher draws graph images. The web package does not draw itself: cmd
// hands it the graphs package's renderer behind this interface, so web
// stays free of cgo and of the RRD layout.
type Grapher interface {
	// Graph draws (or finds in a cache) one image. When ctx ends first
	// (the client went away) it returns an error wrapping ErrGraphBusy.
	Graph(ctx context.Context, r GraphRequest) (img []byte, contentType string, err error)
	// Names lists the graphs of a kind, in page order.
	Names(kind string) []string
	// Ranges lists the named ranges, shortest first.
	Ranges() []string
	// Cached returns the image when it can be answered without a draw
	// (ok false otherwise, or for a request Graph would refuse); such
	// answers take no request slot.
	Cached(r GraphRequest) (img []byte, contentType string, ok bool)
}

// Errors a Grapher wraps so the web can answer 400 or 404.
var (
	ErrBadGraphRequest = errors.New("bad graph request")
	ErrNoGraphData     = errors.New("no graph data")
	ErrGraphBusy       = errors.New("the graph was not drawn: the request ended while it waited for its turn")
)

func (s *Server) graphRoutes(expensive gin.HandlerFunc) {
	// Images take their request slots themselves: not when cached.
	g := s.engine.Group("", s.needGraphs)
	g.GET("/graphs/director/:file", func(c *gin.Context) { s.graphImage(c, "director", "", "") })
	g.GET("/graphs/service/:id/:file", func(c *gin.Context) { s.graphImage(c, "service", c.Param("id"), "") })
	g.GET("/graphs/server/:id/:file", func(c *gin.Context) {
		svc, srv, ok := lvs.ParseDestID(c.Param("id"))
		if !ok {
			apiError(c, http.StatusBadRequest, fmt.Sprintf("malformed real server id %q (want <service id>__<server id>)", c.Param("id")))
			return
		}
		s.graphImage(c, "server", svc, srv)
	})
	g.GET("/director", expensive, s.directorPage)
	// A service's and a server's pages show their state with or without
	// graphs.
	s.engine.GET("/service/:id", expensive, s.servicePage)
	s.engine.GET("/server/:id", expensive, s.serverPage)
	s.engine.GET("/api/v1/events", expensive, s.eventsAPI)
	s.engine.GET("/events", expensive, s.eventsPage)
}

// needGraphs answers 404 on graph routes of a director without graphs.
func (s *Server) needGraphs(c *gin.Context) {
	if s.src.Graphs == nil {
		apiError(c, http.StatusNotFound, "graphs are not enabled on this director")
		return
	}
	c.Next()
}

// graphImage answers /graphs/...: the file part is "<graph>.<png|svg>",
// the query gives range (or start and end, unix seconds or RFC 3339),
// width and height.
func (s *Server) graphImage(c *gin.Context, kind, svc, srv string) {
	name, format, ok := strings.Cut(c.Param("file"), ".")
	if !ok {
		apiError(c, http.StatusBadRequest, fmt.Sprintf("graph file %q: want <graph>.png or <graph>.svg", c.Param("file")))
		return
	}
	req := GraphRequest{Kind: kind, Service: svc, Server: srv, Graph: name, Format: format}
	if err := parseGraphQuery(c.Request.URL.Query(), &req); err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return
	}
	if img, ctype, ok := s.src.Graphs.Cached(req); ok {
		c.Header("Cache-Control", "no-cache")
		c.Data(http.StatusOK, ctype, img)
		return
	}
	release, ok := s.limiter.acquire(c, ClassExpensive)
	if !ok {
		return
	}
	defer release()
	releaseDraw, ok := s.limiter.acquire(c, ClassGraphDraw)
	if !ok {
		return
	}
	defer releaseDraw()
	img, ctype, err := s.src.Graphs.Graph(c.Request.Context(), req)
	switch {
	case errors.Is(err, ErrBadGraphRequest):
		apiError(c, http.StatusBadRequest, err.Error())
		return
	case errors.Is(err, ErrNoGraphData):
		apiError(c, http.StatusNotFound, err.Error())
		return
	case errors.Is(err, ErrGraphBusy):
		// The client left or timed out: nobody reads this, and it is
		// no fault of lvsmon's.
		s.log.Debug("a graph request ended before its draw", "kind", kind, "graph", name, "err", err)
		c.Header("Retry-After", "1")
		apiError(c, http.StatusServiceUnavailable, err.Error())
		return
	case err != nil:
		s.log.Error("drawing a graph failed", "kind", kind, "service", svc, "server", srv, "graph", name, "err", err)
		apiError(c, http.StatusInternalServerError, "drawing the graph failed; see the log")
		return
	}
	c.Header("Cache-Control", "no-cache")
	c.Data(http.StatusOK, ctype, img)
}

// parseGraphQuery reads range, start, end, width and height.
func parseGraphQuery(q url.Values, r *GraphRequest) error {
	for k := range q {
		switch k {
		case "range", "start", "end", "width", "height":
		default:
			return fmt.Errorf("unknown query parameter %q (want range, start, end, width, height)", k)
		}
	}
	r.Range = q.Get("range")
	start, end := q.Get("start"), q.Get("end")
	if start != "" || end != "" {
		if r.Range != "" {
			return errors.New("give either range or start and end, not both")
		}
		var err error
		if r.Start, err = parseGraphTime("start", start); err != nil {
			return err
		}
		if r.End, err = parseGraphTime("end", end); err != nil {
			return err
		}
	} else if r.Range == "" {
		r.Range = "day"
	}
	for _, p := range []struct {
		name string
		v    *int
	}{{"width", &r.Width}, {"height", &r.Height}} {
		if v := q.Get(p.name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s %q is not a whole number", p.name, v)
			}
			*p.v = n
		}
	}
	return nil
}

// Graph times outside these bounds are refused with a 400 naming the
// parameter (the graphs package has the same bounds: librrd misreads
// small and negative numbers of seconds).
var (
	earliestGraphTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	latestGraphTime   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// parseGraphTime is parseTime for a graph's start and end, within the
// times a graph can show.
func parseGraphTime(name, v string) (time.Time, error) {
	t, err := parseTime(name, v)
	if err != nil {
		return t, err
	}
	if t.Before(earliestGraphTime) || t.After(latestGraphTime) {
		return time.Time{}, fmt.Errorf("%s %q is out of range: want unix seconds or RFC 3339 between %s and %s",
			name, v, earliestGraphTime.Format(time.DateOnly), latestGraphTime.Format(time.DateOnly))
	}
	return t, nil
}

// parseTime accepts unix seconds or RFC 3339.
func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, fmt.Errorf("%s is missing (start and end go together)", name)
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		return time.Unix(n, 0), nil
	}
	t, err := time.Parse(time.RFC3339, v)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s %q is neither unix seconds nor RFC 3339", name, v)
	}
	return t, nil
}

// graphPath is the path of a graph image of an object ("" id for the
// director); id is put in as it is (escaped already, or a placeholder).
func graphPath(kind, id, graph string) string {
	p := "/graphs/" + kind + "/"
	if kind != "director" {
		p += id + "/"
	}
	return p + graph + ".png"
}

// graphURLs lists an object's graph URLs of one range, in page order.
func (s *Server) graphURLs(kind, id, rng string) []graphImg {
	var out []graphImg
	for _, g := range s.src.Graphs.Names(kind) {
		out = append(out, graphImg{URL: graphPath(kind, url.PathEscape(id), g) + "?range=" + url.QueryEscape(rng), Alt: graphAlt(g, kind, id, rng)})
	}
	return out
}

// graphURLsBetween is graphURLs for a time range of the operator's.
func (s *Server) graphURLsBetween(kind, id string, start, end time.Time) []graphImg {
	var out []graphImg
	span := fmt.Sprintf("%s to %s", start.Format("2006-01-02 15:04"), end.Format("2006-01-02 15:04"))
	for _, g := range s.src.Graphs.Names(kind) {
		out = append(out, graphImg{URL: graphPath(kind, url.PathEscape(id), g) + fmt.Sprintf("?start=%d&end=%d", start.Unix(), end.Unix()),
			Alt: strings.Replace(graphAlt(g, kind, id, "x"), "last x", span, 1)})
	}
	return out
}

// pageTime reads a page's start or end: what an HTML datetime-local
// input sends (the director's local time), unix seconds or RFC 3339,
// within the graphs' bounds.
func pageTime(name, v string) (time.Time, error) {
	if t, err := time.ParseInLocation("2006-01-02T15:04", v, time.Local); err == nil {
		v = strconv.FormatInt(t.Unix(), 10)
	}
	return parseGraphTime(name, v)
}

// graphImg is one graph on a page, with the alt text a screen reader
// says: which graph of what, over which range.
type graphImg struct{ URL, Alt string }

func graphAlt(graph, kind, id, rng string) string {
	what := map[string]string{"conns": "Active connections", "rate": "New connections per second",
		"traffic": "Traffic in and out", "weight": "Weight"}[graph]
	if what == "" {
		what = graph
	}
	of := "the director"
	if kind != "director" {
		of = kind + " " + id
	}
	return fmt.Sprintf("%s of %s, last %s", what, of, rng)
}

// graphPage is what the per-object page template needs.
type graphPage struct {
	Title    string
	Subtitle string
	Back     string
	Range    string
	Ranges   []string
	Images   []graphImg
	Events   []events.Event
	Director string
	Viewer   viewer
	// Server is the real server's current state and its actions, on a
	// server page; nil elsewhere.
	Server *RealServerStatus
	// Service is the service with its real servers, on a service page.
	Service *serviceLine
	// History is the server's recent check results, on a server page.
	History []CheckHistory
	// EventsURL is the events page of the object; Step the live update's
	// interval in seconds.
	EventsURL string
	Step      int
	// Start and End are a time range of the operator's (Range is then
	// empty).
	Start, End time.Time
}

func (s *Server) pageRange(c *gin.Context) (string, bool) {
	r := c.DefaultQuery("range", "day")
	for _, x := range s.src.Graphs.Ranges() {
		if x == r {
			return r, true
		}
	}
	apiError(c, http.StatusBadRequest, fmt.Sprintf("unknown range %q (want %s)", r, strings.Join(s.src.Graphs.Ranges(), ", ")))
	return "", false
}

func (s *Server) directorPage(c *gin.Context) {
	d := s.src.Config().Director
	s.showPage(c, graphPage{Title: d, Subtitle: "the whole director", Back: "/", Director: d}, "director", "", events.Filter{})
}

func (s *Server) servicePage(c *gin.Context) {
	id := c.Param("id")
	svc, ok := s.findService(id)
	if !ok {
		apiError(c, http.StatusNotFound, fmt.Sprintf("no virtual service %q", id))
		return
	}
	line := summarize(&svc)
	s.showPage(c, graphPage{Title: serviceTitle(svc), Subtitle: "virtual service " + svc.ID, Back: "/#" + svc.ID, Director: s.src.Config().Director, Service: &line},
		"service", svc.ID, events.Filter{Service: svc.ID, Director: true})
}

func (s *Server) serverPage(c *gin.Context) {
	id := c.Param("id")
	svcID, _, ok := lvs.ParseDestID(id)
	if svc, found := s.findService(svcID); ok && found {
		for _, rs := range svc.RealServers {
			if rs.ID == id {
				p := graphPage{Title: fmt.Sprintf("%s → %s", serviceTitle(svc), lvs.DestKey{Addr: mustAddr(rs.Address), Port: rs.Port}),
					Subtitle: "real server " + rs.ID, Back: "/service/" + svc.ID, Director: s.src.Config().Director, Server: &rs}
				if s.src.History != nil {
					p.History = s.src.History(rs.ID)
				}
				s.showPage(c, p, "server", rs.ID, events.Filter{Server: rs.ID, Director: true})
				return
			}
		}
	}
	apiError(c, http.StatusNotFound, fmt.Sprintf("no real server %q", id))
}

// showPage fills a graph page's range, images and recent events and
// renders it.
func (s *Server) showPage(c *gin.Context, p graphPage, kind, id string, f events.Filter) {
	p.Viewer = s.viewerOf(c)
	p.Step = refresh(s.src.Health().Step.Seconds())
	switch kind {
	case "service":
		p.EventsURL = "/events?service=" + url.QueryEscape(id)
	case "server":
		p.EventsURL = "/events?server=" + url.QueryEscape(id)
	default:
		p.EventsURL = "/events"
	}
	if s.src.Graphs != nil {
		p.Ranges = s.src.Graphs.Ranges()
		if c.Query("start") != "" || c.Query("end") != "" {
			// A time range of the operator's: the form's local times or
			// the graph API's formats.
			start, err := pageTime("start", c.Query("start"))
			if err == nil {
				p.End, err = pageTime("end", c.Query("end"))
			}
			if err == nil && !p.End.After(start) {
				err = fmt.Errorf("end %s is not after start %s", p.End.Format(time.DateTime), start.Format(time.DateTime))
			}
			if err != nil {
				apiError(c, http.StatusBadRequest, err.Error())
				return
			}
			p.Start = start
			p.Images = s.graphURLsBetween(kind, id, start, p.End)
		} else {
			rng, ok := s.pageRange(c)
			if !ok {
				return
			}
			p.Range = rng
			p.Images = s.graphURLs(kind, id, rng)
		}
	}
	if s.src.Events != nil {
		f.Limit = 50
		p.Events = s.src.Events.Query(f)
	}
	s.renderPage(c, p)
}

func (s *Server) renderPage(c *gin.Context, p graphPage) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := s.page.ExecuteTemplate(c.Writer, "graphs.html", p); err != nil {
		s.templateFailed(c, "graphs.html", err)
	}
}

func serviceTitle(svc ServiceStatus) string {
	var k string
	if svc.FWMark != 0 {
		k = fmt.Sprintf("FWM %d %s", svc.FWMark, svc.Family)
	} else {
		k = fmt.Sprintf("%s %s", strings.ToUpper(svc.Protocol), lvs.DestKey{Addr: mustAddr(svc.Address), Port: *svc.Port})
	}
	if svc.Name != "" {
		return svc.Name + " (" + k + ")"
	}
	return k
}

// eventsAPI answers GET /api/v1/events?service=&server=&since=&limit=.
func (s *Server) eventsAPI(c *gin.Context) {
	if s.src.Events == nil {
		c.JSON(http.StatusOK, gin.H{"events": []events.Event{}})
		return
	}
	f := events.Filter{Service: c.Query("service"), Server: c.Query("server"), Limit: 1000, Director: c.Query("director") != "false"}
	for k := range c.Request.URL.Query() {
		switch k {
		case "service", "server", "since", "limit", "director":
		default:
			apiError(c, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (want service, server, since, limit, director)", k))
			return
		}
	}
	if v := c.Query("since"); v != "" {
		t, err := parseTime("since", v)
		if err != nil {
			apiError(c, http.StatusBadRequest, err.Error())
			return
		}
		f.From = t
	}
	if v := c.Query("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			apiError(c, http.StatusBadRequest, fmt.Sprintf("limit %q: want 1-10000", v))
			return
		}
		f.Limit = n
	}
	evs := s.src.Events.Query(f)
	if evs == nil {
		evs = []events.Event{}
	}
	c.JSON(http.StatusOK, gin.H{"events": evs})
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
