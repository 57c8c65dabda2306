package graphs

import (
	"cmp"
	"container/list"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ziutek/rrd"

	"github.com/lvsmon/lvsmon/events"
)

// Graph names.
const (
	GraphConns   = "conns"   // active connections (stacked by real server for a service)
	GraphRate    = "rate"    // new connections per second
	GraphTraffic = "traffic" // bits per second in and out
	GraphWeight  = "weight"  // current weight (real servers)
)

// Graphs lists the graphs of each kind of object, in page order.
var Graphs = map[Kind][]string{
	DirectorFile: {GraphConns, GraphRate, GraphTraffic},
	ServiceFile:  {GraphConns, GraphRate, GraphTraffic},
	ServerFile:   {GraphConns, GraphRate, GraphTraffic, GraphWeight},
}

// Ranges are the named ranges and their length.
var Ranges = map[string]time.Duration{
	"hour":  time.Hour,
	"day":   24 * time.Hour,
	"week":  7 * 24 * time.Hour,
	"month": 31 * 24 * time.Hour,
	"year":  366 * 24 * time.Hour,
}

// RangeNames are the named ranges in display order.
var RangeNames = []string{"hour", "day", "week", "month", "year"}

// Limits on requested images, so a URL cannot ask librrd for a gigapixel.
const (
	MinWidth, MaxWidth   = 200, 3000
	MinHeight, MaxHeight = 80, 1500
	DefaultWidth         = 800
	DefaultHeight        = 300
	maxSpan              = 10 * 366 * 24 * time.Hour
)

// EarliestTime and LatestTime bound a custom range's start and end.
// librrd reads a time given as a number as seconds since the epoch only
// above ten years (1979-12-30); a smaller number is parsed as a date
// ("61" is month 61) and a negative one as an offset from now, so such a
// request used to fail inside the draw (a 500 and an ERROR log line) or
// draw the wrong span. Nothing lvsmon stores is older than 2000 or ends
// after 2100.
var (
	EarliestTime = time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC)
	LatestTime   = time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Request says which graph to draw.
type Request struct {
	Kind    Kind
	Service string // service id (ServiceFile, ServerFile)
	Server  string // real server id within the service (ServerFile)
	Graph   string
	// Range is a named range ending now, or "" with Start and End set.
	Range      string
	Start, End time.Time
	Width      int
	Height     int
	Format     string // "png" or "svg"
}

// ErrBadRequest wraps every problem with a Request; ErrNoData says the
// object has no RRD file (unknown id, or never sampled).
var (
	ErrBadRequest = errors.New("bad graph request")
	ErrNoData     = errors.New("no data for this object")
)

// WithDefaults returns r with the width, height and format it leaves
// unset filled in.
func (r Request) WithDefaults() Request {
	if r.Width == 0 {
		r.Width = DefaultWidth
	}
	if r.Height == 0 {
		r.Height = DefaultHeight
	}
	if r.Format == "" {
		r.Format = "png"
	}
	return r
}

// Validate reports what is wrong with r once its defaults are filled; it
// changes nothing.
func (r Request) Validate() error {
	r = r.WithDefaults()
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrBadRequest, fmt.Sprintf(format, args...))
	}
	switch r.Kind {
	case DirectorFile:
	case ServiceFile, ServerFile:
		if !validID(r.Service) {
			return bad("malformed service id %q", r.Service)
		}
		if r.Kind == ServerFile && !validID(r.Server) {
			return bad("malformed real server id %q", r.Server)
		}
	default:
		return bad("unknown kind %d", r.Kind)
	}
	ok := false
	for _, g := range Graphs[r.Kind] {
		ok = ok || g == r.Graph
	}
	if !ok {
		return bad("no graph %q here (have %s)", r.Graph, strings.Join(Graphs[r.Kind], ", "))
	}
	if r.Range != "" {
		if _, ok := Ranges[r.Range]; !ok {
			return bad("unknown range %q (want %s, or start and end)", r.Range, strings.Join(RangeNames, ", "))
		}
	} else {
		if r.Start.IsZero() || r.End.IsZero() {
			return bad("give a range, or both start and end")
		}
		for _, p := range []struct {
			name string
			t    time.Time
		}{{"start", r.Start}, {"end", r.End}} {
			if p.t.Before(EarliestTime) || p.t.After(LatestTime) {
				return bad("%s %d (%s) is out of range: want a time between %s and %s", p.name, p.t.Unix(),
					p.t.UTC().Format(time.RFC3339), EarliestTime.Format(time.DateOnly), LatestTime.Format(time.DateOnly))
			}
		}
		if !r.End.After(r.Start) {
			return bad("end %s is not after start %s", r.End.Format(time.RFC3339), r.Start.Format(time.RFC3339))
		}
		if r.End.Sub(r.Start) < time.Minute || r.End.Sub(r.Start) > maxSpan {
			return bad("the span must be between 1 minute and 10 years")
		}
	}
	if r.Width < MinWidth || r.Width > MaxWidth {
		return bad("width %d is outside %d-%d", r.Width, MinWidth, MaxWidth)
	}
	if r.Height < MinHeight || r.Height > MaxHeight {
		return bad("height %d is outside %d-%d", r.Height, MinHeight, MaxHeight)
	}
	switch r.Format {
	case "png", "svg":
	default:
		return bad("format %q (want png or svg)", r.Format)
	}
	return nil
}

// ContentType is the MIME type of the request's image (PNG unless it
// asks for SVG).
func (r Request) ContentType() string {
	if r.Format == "svg" {
		return "image/svg+xml"
	}
	return "image/png"
}

type cacheKey struct {
	kind                  Kind
	service, server, name string
	rng                   string
	start, end            int64
	w, h                  int
	format                string
}

// size is what an entry costs besides its image: the key's strings, the
// map and list bookkeeping.
func (k *cacheKey) size() int64 {
	return int64(entryOverhead + len(k.service) + len(k.server) + len(k.name) + len(k.rng) + len(k.format))
}

const entryOverhead = 256

type cacheEntry struct {
	key     cacheKey
	updated int64     // the store's Updated() when the draw began
	drawn   time.Time // when it was drawn
	img     []byte
	size    int64 // img plus the key's size
}

// flight is one draw in progress; requests for the same image wait for it
// instead of drawing it again.
type flight struct {
	done chan struct{}
	img  []byte
	err  error
}

// DefaultCacheBytes bounds the image cache when NewRenderer is not told
// otherwise: about a thousand 800x300 PNGs.
const DefaultCacheBytes = 64 << 20

// drawSlots is how many graphs are drawn at once. librrd's rrd_graph_v is
// not thread safe (getopt and cairo/pango state: rrdtool issue #867 shows
// crashes with concurrent graphv calls on 1.7, the version Debian 12
// ships, and ziutek/rrd holds a package-wide mutex around it for that
// reason), so draws take turns. Cache hits never wait for a draw: the
// cache's mutex is never held while drawing.
const drawSlots = 1

// ErrBusy: the request gave up (its context ended) before its image was
// drawn; wrapped with the context's error.
var ErrBusy = errors.New("graph draw abandoned")

// Renderer draws graphs from the store's files, marking events. Images
// are cached per (graph, range, size, format) until the store writes the
// next step (an image of a custom range that ends before the newest step
// stays valid; one of an earlier step is still answered, for MaxStale,
// while every draw slot is busy), in an LRU bounded in bytes. Concurrent
// requests for the same image share one draw; draws take turns
// (drawSlots).
type Renderer struct {
	store  *Store
	events *events.Log // may be nil
	now    func() time.Time
	// Name, when set, gives a service id's configured name for titles.
	Name func(serviceID string) string
	// ConfiguredWeight, when set, gives a real server's configured weight
	// (its id is the status API's), drawn as a line on its weight graph:
	// the weight it has is then read against the weight it should have.
	ConfiguredWeight func(serverID string) (int, bool)

	// drawFn draws one validated request (g.draw; tests replace it).
	drawFn func(Request) ([]byte, error)
	slots  chan struct{}

	mu       sync.Mutex
	maxBytes int64
	bytes    int64
	lru      *list.List // of *cacheEntry, most recently used first
	cache    map[cacheKey]*list.Element
	flights  map[cacheKey]*flight
	stats    CacheStats
}

// CacheStats counts the renderer's work since start.
type CacheStats struct {
	// Bytes and Entries are the cache's size now; MaxBytes its bound.
	Bytes, MaxBytes int64
	Entries         int
	// Hits were answered from the cache, Stale from the cache with an
	// image of an earlier step while every draw slot was busy (MaxStale),
	// Shared by waiting for another request's draw of the same image,
	// Draws by drawing.
	Hits, Stale, Shared, Draws uint64
	// DrawErrors are draws that failed; Evictions entries dropped to
	// stay within MaxBytes.
	DrawErrors, Evictions uint64
}

// NewRenderer draws from store, with markers from ev (may be nil), and
// caches up to DefaultCacheBytes of images.
func NewRenderer(store *Store, ev *events.Log) *Renderer {
	g := &Renderer{store: store, events: ev, now: time.Now, slots: make(chan struct{}, drawSlots),
		maxBytes: DefaultCacheBytes, lru: list.New(), cache: map[cacheKey]*list.Element{}, flights: map[cacheKey]*flight{}}
	g.drawFn = g.draw
	return g
}

// SetCacheBytes changes the cache's bound (at least 1 MiB); entries over
// it are dropped at once.
func (g *Renderer) SetCacheBytes(n int64) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.maxBytes = max(n, 1<<20)
	g.evictLocked()
}

// Stats reports the cache's size and counters.
func (g *Renderer) Stats() CacheStats {
	g.mu.Lock()
	defer g.mu.Unlock()
	st := g.stats
	st.Bytes, st.MaxBytes, st.Entries = g.bytes, g.maxBytes, g.lru.Len()
	return st
}

// Render returns the image for a request; see RenderContext.
func (g *Renderer) Render(r Request) ([]byte, error) {
	return g.RenderContext(context.Background(), r)
}

// RenderContext returns the image for a request: from the cache, from a
// draw of the same image already under way, or drawn when a draw slot is
// free. When ctx ends first it returns an error wrapping ErrBusy and
// ctx's error; a draw it started goes on for the others waiting (it was
// under way already), one it was still waiting for is left to them.
func (g *Renderer) RenderContext(ctx context.Context, r Request) ([]byte, error) {
	r = r.WithDefaults()
	if err := r.Validate(); err != nil {
		return nil, err
	}
	key := r.key()
	for {
		g.mu.Lock()
		updated := g.store.Updated()
		if img, ok := g.lookupLocked(key, r, updated); ok {
			g.mu.Unlock()
			return img, nil
		}
		if f, ok := g.flights[key]; ok {
			g.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
			}
			if errors.Is(f.err, ErrBusy) {
				continue // its leader gave up before drawing: try again
			}
			g.mu.Lock()
			g.stats.Shared++
			g.mu.Unlock()
			return f.img, f.err
		}
		f := &flight{done: make(chan struct{})}
		g.flights[key] = f
		g.mu.Unlock()

		f.img, f.err = g.drawTurn(ctx, r)

		g.mu.Lock()
		delete(g.flights, key)
		switch {
		case f.err == nil:
			g.stats.Draws++
			g.insertLocked(key, updated, f.img)
		case !errors.Is(f.err, ErrBusy):
			g.stats.DrawErrors++
		}
		g.mu.Unlock()
		close(f.done)
		return f.img, f.err
	}
}

// Cached returns the image of a request if the cache can answer it
// without a draw (as RenderContext would); ok is false when it needs one,
// or the request is invalid.
func (g *Renderer) Cached(r Request) (img []byte, ok bool) {
	r = r.WithDefaults()
	if r.Validate() != nil {
		return nil, false
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.lookupLocked(r.key(), r, g.store.Updated())
}

// MaxStale is how old a cached image of a past step may be and still be
// answered while every draw slot is busy: a graph a minute behind beats
// a wait behind a queue of draws (someone asking for odd sizes, say).
const MaxStale = time.Minute

// lookupLocked finds key's image: drawn at the store's newest step
// (updated), or of a custom range that ended before the step it was drawn
// at, or not older than MaxStale while every draw slot is busy.
func (g *Renderer) lookupLocked(key cacheKey, r Request, updated int64) ([]byte, bool) {
	el, ok := g.cache[key]
	if !ok {
		return nil, false
	}
	e := el.Value.(*cacheEntry)
	switch {
	case e.updated == updated || r.Range == "" && r.End.Unix() < e.updated:
		g.stats.Hits++
	case len(g.slots) == cap(g.slots) && g.now().Sub(e.drawn) < MaxStale:
		g.stats.Stale++
	default:
		return nil, false // a draw replaces it
	}
	g.lru.MoveToFront(el)
	return e.img, true
}

func (r *Request) key() cacheKey {
	k := cacheKey{r.Kind, r.Service, r.Server, r.Graph, r.Range, r.Start.Unix(), r.End.Unix(), r.Width, r.Height, r.Format}
	if r.Range != "" {
		k.start, k.end = 0, 0
	}
	return k
}

// drawTurn waits for a draw slot (or the end of ctx) and draws.
func (g *Renderer) drawTurn(ctx context.Context, r Request) ([]byte, error) {
	select {
	case g.slots <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: %w", ErrBusy, context.Cause(ctx))
	}
	defer func() { <-g.slots }()
	return g.drawFn(r)
}

// insertLocked caches an image, replacing an older one of the key, and
// evicts the least recently used entries beyond the bound. An image
// larger than an eighth of the bound is not cached: it would push out
// many others.
func (g *Renderer) insertLocked(key cacheKey, updated int64, img []byte) {
	if el, ok := g.cache[key]; ok {
		g.removeLocked(el)
	}
	size := int64(len(img)) + key.size()
	if size > g.maxBytes/8 {
		return
	}
	g.cache[key] = g.lru.PushFront(&cacheEntry{key: key, updated: updated, drawn: g.now(), img: img, size: size})
	g.bytes += size
	g.evictLocked()
}

func (g *Renderer) evictLocked() {
	for g.bytes > g.maxBytes {
		g.removeLocked(g.lru.Back())
		g.stats.Evictions++
	}
}

func (g *Renderer) removeLocked(el *list.Element) {
	e := g.lru.Remove(el).(*cacheEntry)
	delete(g.cache, e.key)
	g.bytes -= e.size
}

// series is one stacked or drawn object: a file, its legend and the id
// its colour comes from.
type series struct {
	file, label, id string
	// sum are the files of "others" (file is empty then).
	sum []string
}

// palette for the series of a service's servers and the director's
// services: muted colours, none of them an event marker's (those are pure
// hues, below), so a marker is never mistaken for a series. A series'
// colour comes from its id (seriesColor), so a server keeps its colour
// when another one, or the sorry server, appears or goes.
var palette = []string{"1f77b4", "aec7e8", "ffbb78", "98df8a", "c5b0d5", "8c564b", "c49c94", "f7b6d2",
	"bcbd22", "dbdb8d", "17becf", "9edae5", "393b79", "637939", "8c6d31", "7b4173"}

// othersColor draws the sum of the series beyond maxSeries.
const othersColor = "c7c7c7"

// maxSeries is how many series a graph draws one by one, with a legend
// line each; the rest are summed into "others", so that a service of 50
// real servers keeps its plot (the legend would fill the image).
const maxSeries = 10

// seriesColor is a series' colour, derived from its id.
func seriesColor(id string) string {
	h := fnv.New32a()
	h.Write([]byte(id))
	return palette[h.Sum32()%uint32(len(palette))]
}

// eventStyle is how each event kind is marked.
var eventStyle = map[events.Kind]struct{ color, legend string }{
	events.ServerDown:    {"ff0000", "server down"},
	events.ServerUp:      {"00cc00", "server up"},
	events.SorryOn:       {"ff8800", "sorry server on"},
	events.SorryOff:      {"ffcc00", "sorry server off"},
	events.RoleChange:    {"aa00ff", "HA role change"},
	events.Disagreement:  {"ff00aa", "HA sources disagree"},
	events.Agreement:     {"6600ff", "HA sources agree again"},
	events.DaemonStart:   {"000000", "lvsmon started"},
	events.Override:      {"00aaff", "manual override"},
	events.Reload:        {"555555", "config reload"},
	events.SimulatedDown: {"ff0000", "demo: server broken"},
	events.SimulatedUp:   {"00cc00", "demo: server mended"},
}

func (g *Renderer) draw(r Request) ([]byte, error) {
	end := r.End
	start := r.Start
	if r.Range != "" {
		end = g.now()
		start = end.Add(-Ranges[r.Range])
	}
	gr := rrd.NewGrapher()
	gr.SetSize(uint(r.Width), uint(r.Height))
	// The image, legend included, is exactly the size asked for.
	gr.AddOptions("--full-size-mode")
	gr.SetImageFormat(strings.ToUpper(r.Format))
	gr.SetSlopeMode()
	gr.SetLowerLimit(0)
	gr.SetColor("BACK", "FFFFFF")
	gr.SetColor("CANVAS", "FFFFFF")
	gr.SetColor("SHADEA", "FFFFFF")
	gr.SetColor("SHADEB", "FFFFFF")
	gr.SetBorder(0)

	var files []string
	var evf events.Filter
	switch r.Kind {
	case DirectorFile:
		own := directorFile(g.store.Dir())
		files = append(files, own)
		parts, err := g.serviceFiles()
		if err != nil {
			return nil, err
		}
		if err := g.plot(gr, r.Graph, "director", own, parts, start, end); err != nil {
			return nil, err
		}
		for _, p := range parts {
			files = append(files, p.file)
		}
	case ServiceFile:
		own := filepath.Join(g.store.Dir(), r.Service, "service.rrd")
		parts, err := g.serverFiles(r.Service)
		if err != nil {
			return nil, err
		}
		files = append(files, own)
		for _, p := range parts {
			files = append(files, p.file)
		}
		if err := g.plot(gr, r.Graph, g.title(r.Service), own, parts, start, end); err != nil {
			return nil, err
		}
		evf = events.Filter{Service: r.Service, Director: true}
	case ServerFile:
		own := filepath.Join(g.store.Dir(), r.Service, r.Server+".rrd")
		files = append(files, own)
		if err := g.plot(gr, r.Graph, g.title(r.Service)+" → "+labelFromDestID(r.Server), own, nil, start, end); err != nil {
			return nil, err
		}
		if r.Graph == GraphWeight && g.ConfiguredWeight != nil {
			if w, ok := g.ConfiguredWeight(r.Service + "__" + r.Server); ok {
				gr.HRule(strconv.Itoa(w), "17652b", pad(fmt.Sprintf("configured weight %d", w))+"\\l", "dashes=6,3")
			}
		}
		evf = events.Filter{Server: r.Service + "__" + r.Server, Director: true}
	}
	if _, err := os.Stat(files[0]); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoData
	}
	// Rows batched in memory or held by rrdcached reach the files first.
	if err := g.store.Flush(files...); err != nil {
		return nil, err
	}
	if g.events != nil {
		evf.From, evf.To = start, end
		g.markEvents(gr, g.events.Query(evf))
	}
	_, img, err := gr.Graph(start, end)
	if err != nil {
		return nil, fmt.Errorf("graphs: draw %s %s: %w", r.Graph, files[0], err)
	}
	return img, nil
}

// title names a service by its configured name and its key.
func (g *Renderer) title(serviceID string) string {
	l := labelFromServiceID(serviceID)
	if g.Name != nil {
		if n := g.Name(serviceID); n != "" {
			return n + " (" + l + ")"
		}
	}
	return l
}

// markEvents draws each event as a dashed vertical line, with one legend
// entry per kind.
func (g *Renderer) markEvents(gr *rrd.Grapher, evs []events.Event) {
	seen := map[events.Kind]bool{}
	for _, e := range evs {
		st, ok := eventStyle[e.Kind]
		if !ok {
			st.color, st.legend = "555555", string(e.Kind)
		}
		if seen[e.Kind] {
			gr.VRule(e.Time, st.color, "", "dashes=4,2")
		} else {
			seen[e.Kind] = true
			gr.VRule(e.Time, st.color, strings.ReplaceAll(st.legend, ":", "\\:"), "dashes=4,2")
		}
	}
}

// plot adds the definitions of one graph. own is the object's file;
// parts are the files it is made of (servers of a service, services of
// the director), stacked where that makes sense.
func (g *Renderer) plot(gr *rrd.Grapher, name, title, own string, parts []series, start, end time.Time) error {
	switch name {
	case GraphConns:
		gr.SetTitle(title + " – active connections")
		gr.SetVLabel("connections")
		if len(parts) == 0 {
			gr.Def("a", own, "active", "AVERAGE")
			gr.Def("i", own, "inactive", "AVERAGE")
			known := hasData(own, "active", start, end)
			gr.Area("a", "1f77b4", pad("active"))
			gprint(gr, "a", known)
			gr.Line(1, "i", "8c6d31", pad("inactive"))
			gprint(gr, "i", known)
			return nil
		}
		for i, p := range g.top(parts, "active", start, end) {
			v := "a" + strconv.Itoa(i)
			defSeries(gr, v, p, "active")
			opts := []string{}
			if i > 0 {
				opts = append(opts, "STACK")
			}
			gr.Area(v, p.color(), append([]string{pad(p.label)}, opts...)...)
			gprint(gr, v, p.hasData("active", start, end))
		}
	case GraphRate:
		gr.SetTitle(title + " – new connections per second")
		gr.SetVLabel("conns/s")
		if len(parts) == 0 {
			gr.Def("c", own, "conns", "AVERAGE")
			gr.Def("cm", own, "conns", "MAX")
			known := hasData(own, "conns", start, end)
			gr.Area("c", "aec7e8", pad("average"))
			gprint(gr, "c", known)
			gr.Line(1, "cm", "393b79", pad("maximum"))
			gprint(gr, "cm", known)
			return nil
		}
		for i, p := range g.top(parts, "conns", start, end) {
			v := "c" + strconv.Itoa(i)
			defSeries(gr, v, p, "conns")
			gr.Line(2, v, p.color(), pad(p.label))
			gprint(gr, v, p.hasData("conns", start, end))
		}
	case GraphTraffic:
		// Bytes per second in binary units, as the status page's tables.
		gr.SetTitle(title + " – traffic")
		gr.SetVLabel("bytes/s")
		gr.SetBase(1024)
		gr.Def("in", own, "inbytes", "AVERAGE")
		gr.Def("out", own, "outbytes", "AVERAGE")
		known := hasData(own, "inbytes", start, end)
		gr.Area("in", "aec7e8", pad("in"))
		gprint(gr, "in", known)
		gr.Line(2, "out", "393b79", pad("out"))
		gprint(gr, "out", known)
	case GraphWeight:
		gr.SetTitle(title + " – weight")
		gr.SetVLabel("weight")
		gr.Def("w", own, "weight", "AVERAGE")
		gr.Def("wmin", own, "weight", "MAX")
		gr.Area("w", "c5b0d5", pad("weight"))
		gprint(gr, "w", hasData(own, "weight", start, end))
	default:
		return fmt.Errorf("%w: graph %q", ErrBadRequest, name)
	}
	return nil
}

// gprint adds last/average/max figures of v to the legend, or says that
// the range holds no data: rrdtool would print "-nan" for each (a year
// view of a director a week old, a server added today).
func gprint(gr *rrd.Grapher, v string, known bool) {
	if !known {
		gr.Comment("no data in this range\\l")
		return
	}
	gr.VDef(v+"_last", v+",LAST")
	gr.VDef(v+"_avg", v+",AVERAGE")
	gr.VDef(v+"_max", v+",MAXIMUM")
	gr.GPrint(v+"_last", "last %7.2lf%s")
	gr.GPrint(v+"_avg", "avg %7.2lf%s")
	gr.GPrint(v+"_max", "max %7.2lf%s\\l")
}

// pad aligns legends; rrdtool legends cannot contain a colon unescaped.
func pad(s string) string {
	s = strings.ReplaceAll(s, ":", "\\:")
	if n := 28 - len(s); n > 0 {
		s += strings.Repeat(" ", n)
	}
	return s
}

// serverFiles lists a service's real-server files, including servers no
// longer in the kernel whose files are not archived yet (their lines are
// simply empty where they had no data).
func (g *Renderer) serverFiles(serviceID string) ([]series, error) {
	dir := filepath.Join(g.store.Dir(), serviceID)
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoData
	}
	if err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	var out []series
	for _, e := range ents {
		n := e.Name()
		if e.IsDir() || !strings.HasSuffix(n, ".rrd") || n == "service.rrd" {
			continue
		}
		id := strings.TrimSuffix(n, ".rrd")
		out = append(out, series{file: filepath.Join(dir, n), label: labelFromDestID(id), id: id})
	}
	return out, nil
}

// serviceFiles lists every service's file, for the director's graphs.
func (g *Renderer) serviceFiles() ([]series, error) {
	ents, err := os.ReadDir(g.store.Dir())
	if err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	var out []series
	for _, e := range ents {
		if !e.IsDir() || !validID(e.Name()) {
			continue
		}
		f := filepath.Join(g.store.Dir(), e.Name(), "service.rrd")
		if _, err := os.Stat(f); err == nil {
			out = append(out, series{file: f, label: g.title(e.Name()), id: e.Name()})
		}
	}
	return out, nil
}

// labelFromDestID turns "10.1.1.2_80" into "10.1.1.2:80" and
// "2001-db8--1_80" into "[2001:db8::1]:80".
func labelFromDestID(id string) string {
	i := strings.LastIndexByte(id, '_')
	if i < 0 {
		return id
	}
	addr, port := id[:i], id[i+1:]
	if strings.Contains(addr, "-") {
		return "[" + strings.ReplaceAll(addr, "-", ":") + "]:" + port
	}
	return addr + ":" + port
}

// labelFromServiceID turns "tcp_10.0.0.1_80" into "TCP 10.0.0.1:80".
func labelFromServiceID(id string) string {
	proto, rest, ok := strings.Cut(id, "_")
	if !ok {
		return id
	}
	if proto == "fwm" {
		return "FWM " + strings.ReplaceAll(rest, "_", " ")
	}
	return strings.ToUpper(proto) + " " + labelFromDestID(rest)
}

// color is the series' colour; "others" has its own.
func (p series) color() string {
	if p.file == "" {
		return othersColor
	}
	return seriesColor(p.id)
}

// top keeps the maxSeries-1 series with the largest average of ds over
// [start, end] (in their own order) and folds the others into one series
// without a file, "others (N)", which defSeries draws as their sum.
func (g *Renderer) top(parts []series, ds string, start, end time.Time) []series {
	if len(parts) <= maxSeries {
		return parts
	}
	type ranked struct {
		p   series
		avg float64
		i   int
	}
	rs := make([]ranked, len(parts))
	for i, p := range parts {
		rs[i] = ranked{p, average(p.file, ds, start, end), i}
	}
	slices.SortStableFunc(rs, func(a, b ranked) int { return cmp.Compare(b.avg, a.avg) })
	kept := rs[:maxSeries-1]
	slices.SortFunc(kept, func(a, b ranked) int { return cmp.Compare(a.i, b.i) })
	out := make([]series, 0, maxSeries)
	for _, r := range kept {
		out = append(out, r.p)
	}
	others := series{label: fmt.Sprintf("others (%d)", len(parts)-len(kept))}
	for _, r := range rs[maxSeries-1:] {
		others.sum = append(others.sum, r.p.file)
	}
	return append(out, others)
}

// average is the mean of ds over [start, end] in file, unknown rows
// left out; 0 when nothing is known (such a series ranks last).
func average(file, ds string, start, end time.Time) float64 {
	res, err := rrd.Fetch(file, "AVERAGE", start, end, end.Sub(start)/200)
	if err != nil {
		return 0
	}
	defer res.FreeValues()
	di := slices.Index(res.DsNames, ds)
	if di < 0 {
		return 0
	}
	sum, n := 0.0, 0
	for row := range rows(res) {
		if v := res.ValueAt(di, row); !math.IsNaN(v) {
			sum += v
			n++
		}
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}

// defSeries defines v as the series' ds: its file's, or for "others" the
// sum of its files (a server without data adds nothing).
func defSeries(gr *rrd.Grapher, v string, p series, ds string) {
	if p.file != "" {
		gr.Def(v, p.file, ds, "AVERAGE")
		return
	}
	rpn := make([]string, 0, 2*len(p.sum))
	for i, f := range p.sum {
		name := v + "_" + strconv.Itoa(i)
		gr.Def(name, f, ds, "AVERAGE")
		rpn = append(rpn, name)
		if i > 0 {
			rpn = append(rpn, "ADDNAN")
		}
	}
	gr.CDef(v, strings.Join(rpn, ","))
}

// hasData reports whether ds of file has a known value in [start, end].
func hasData(file, ds string, start, end time.Time) bool {
	res, err := rrd.Fetch(file, "AVERAGE", start, end, end.Sub(start)/200)
	if err != nil {
		return true // let rrdtool say what it says
	}
	defer res.FreeValues()
	di := slices.Index(res.DsNames, ds)
	if di < 0 {
		return true
	}
	for row := range rows(res) {
		if !math.IsNaN(res.ValueAt(di, row)) {
			return true
		}
	}
	return false
}

// hasData is hasData for a series, "others" included.
func (p series) hasData(ds string, start, end time.Time) bool {
	if p.file != "" {
		return hasData(p.file, ds, start, end)
	}
	for _, f := range p.sum {
		if hasData(f, ds, start, end) {
			return true
		}
	}
	return false
}

// rows is how many rows a fetch really holds: librrd returns
// (end-start)/step rows, and the binding's RowCnt counts one more, past
// the end of the buffer (it reads whatever memory follows).
func rows(res rrd.FetchResult) int { return max(0, res.RowCnt-1) }
