package web

import (
	"cmp"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// The status page is an overview, trouble first: what is wrong on this
// director (services down, degraded or on their sorry server, real
// servers down with the check's reason, overrides in force) comes before
// anything that is fine, the page title counts it, and every service is
// one line ("2/3 up") that leads to its page, where its real servers are.
// So the first screen shows the trouble whatever the size of the
// director, and the page stays small at 1,000 services of 50 servers.

// Display is the one state a real server is shown in, the most telling
// first: an operator's override before the health it hides, a down before
// the weight 0 it causes. Each state has its own text and symbol on the
// pages, never a colour alone.
func (rs *RealServerStatus) Display() string {
	switch {
	case rs.Sorry:
		return "sorry"
	case rs.mode == "disable":
		return "disabled"
	case rs.mode == "drain":
		return "drained"
	case rs.Health == "down":
		return "down"
	case rs.Configured && !rs.InKernel:
		return "missing"
	case rs.Health == "unknown":
		return "unknown"
	case rs.InKernel && rs.Weight != nil && *rs.Weight == 0:
		return "quiesced"
	case !rs.Configured:
		return "unconfigured"
	case rs.Health == "up":
		return "up"
	}
	return "unchecked"
}

// serving reports whether the kernel sends new connections to it.
func (rs *RealServerStatus) serving() bool {
	return rs.InKernel && rs.Weight != nil && *rs.Weight > 0
}

// Message is the failing check's message, for a server that is down.
func (rs *RealServerStatus) Message() string { return rs.message }

// HealthSince is when the server's health last changed (zero: unknown).
func (rs *RealServerStatus) HealthSince() time.Time { return rs.since }

// OverrideMode is the operator's override: drain, disable or "".
func (rs *RealServerStatus) OverrideMode() string { return rs.mode }

// OverrideBy and OverrideSince say who set the override and when.
func (rs *RealServerStatus) OverrideBy() string { return rs.overrideBy }

// OverrideComment is the operator's comment on the override ("" for none).
func (rs *RealServerStatus) OverrideComment() string {
	if m, ok := rs.Override.(map[string]any); ok {
		c, _ := m["comment"].(string)
		return c
	}
	return ""
}

// OverrideSince is when the override was set.
func (rs *RealServerStatus) OverrideSince() time.Time { return rs.overrideSince }

// serviceLine is one service of the overview.
type serviceLine struct {
	*ServiceStatus
	// Up of Total real servers (the sorry server aside) take new
	// connections.
	Up, Total int
	// State is ok, degraded, down, sorry, missing (configured, not in
	// the kernel) or idle (no real server configured or in the kernel).
	State    string
	severity int
	// Spark is the sparkline of its recent new connections per second
	// (set for the lines of the page shown).
	Spark template.HTML
}

func summarize(svc *ServiceStatus) serviceLine {
	l := serviceLine{ServiceStatus: svc}
	for i := range svc.RealServers {
		rs := &svc.RealServers[i]
		if rs.Sorry {
			continue
		}
		l.Total++
		if rs.serving() {
			l.Up++
		}
	}
	switch {
	case svc.Configured && !svc.InKernel:
		l.State, l.severity = "missing", 3
	case svc.SorryActive:
		l.State, l.severity = "sorry", 3
	case l.Total == 0:
		l.State = "idle"
	case l.Up == 0:
		l.State, l.severity = "down", 3
	case l.Up < l.Total:
		l.State, l.severity = "degraded", 2
	default:
		l.State = "ok"
	}
	return l
}

// Label is the service's name, or its address when it has none.
func (l serviceLine) Label() string {
	if l.Name != "" {
		return l.Name
	}
	return l.Key()
}

// Key is the service as ipvsadm writes it.
func (l serviceLine) Key() string {
	if l.FWMark != 0 {
		return fmt.Sprintf("FWM %d %s", l.FWMark, l.Family)
	}
	return fmt.Sprintf("%s %s", strings.ToUpper(l.Protocol), lvs.DestKey{Addr: mustAddr(l.Address), Port: *l.Port})
}

// trouble is one line of the overview's trouble list.
type trouble struct {
	Severity string // critical or warning
	What     string // the object, as the operator names it
	Link     string // its page
	Text     string // what is wrong
	Since    time.Time
}

// maxTrouble bounds the trouble list on the page; the count in the
// title and heading is the whole.
const maxTrouble = 100

// overview is the status page's data beyond the status head.
type overview struct {
	Lines []serviceLine
	// Trouble is the list (at most maxTrouble), TroubleCount all of it.
	Trouble      []trouble
	TroubleCount int
	// Counts of services by state, and of real servers (sorry servers
	// aside) up and in all, over the whole director.
	States        map[string]int
	Up, Total     int
	Page, Pages   int
	Query, Filter string
	// Shown is how many services the filter kept (all pages).
	Shown int
	// PageURL is the page's URL without its page number, for the pager.
	PageURL string
}

// servicesPerPage is the overview's page size.
const servicesPerPage = 100

// buildOverview summarises every service, lists the trouble and picks
// the page that the query asks for: q (a substring of the name, address
// or id), show=trouble (services not ok only), page (from 1).
func buildOverview(st *Status, c *gin.Context) overview {
	o := overview{States: map[string]int{}, Query: strings.TrimSpace(c.Query("q")), Filter: c.Query("show"), Page: 1}
	if p, err := strconv.Atoi(c.Query("page")); err == nil && p > 1 {
		o.Page = p
	}
	lines := make([]serviceLine, 0, len(st.Services))
	for i := range st.Services {
		l := summarize(&st.Services[i])
		o.States[l.State]++
		o.Up += l.Up
		o.Total += l.Total
		lines = append(lines, l)
		o.addTrouble(l)
	}
	// Trouble first, the kernel's order otherwise.
	slices.SortStableFunc(lines, func(a, b serviceLine) int { return cmp.Compare(b.severity, a.severity) })
	q := strings.ToLower(o.Query)
	for _, l := range lines {
		if o.Filter == "trouble" && l.severity == 0 {
			continue
		}
		if q != "" && !strings.Contains(strings.ToLower(l.Name+" "+l.Key()+" "+l.ID), q) {
			continue
		}
		o.Lines = append(o.Lines, l)
	}
	o.Shown = len(o.Lines)
	o.Pages = max(1, (len(o.Lines)+servicesPerPage-1)/servicesPerPage)
	o.Page = min(o.Page, o.Pages)
	from := (o.Page - 1) * servicesPerPage
	o.Lines = o.Lines[from:min(len(o.Lines), from+servicesPerPage)]
	v := url.Values{}
	if o.Query != "" {
		v.Set("q", o.Query)
	}
	if o.Filter != "" {
		v.Set("show", o.Filter)
	}
	o.PageURL = "/?" + v.Encode()
	if len(v) > 0 {
		o.PageURL += "&"
	}
	slices.SortStableFunc(o.Trouble, func(a, b trouble) int { return cmp.Compare(sevRank(b.Severity), sevRank(a.Severity)) })
	return o
}

func sevRank(s string) int {
	if s == "critical" {
		return 1
	}
	return 0
}

func (o *overview) add(t trouble) {
	o.TroubleCount++
	if len(o.Trouble) < maxTrouble {
		o.Trouble = append(o.Trouble, t)
	}
}

// addTrouble lists what is wrong with a service and its real servers.
func (o *overview) addTrouble(l serviceLine) {
	link := "/service/" + l.ID
	switch l.State {
	case "missing":
		o.add(trouble{"critical", l.Label(), link, "configured but not in the kernel: its clients get no answer", time.Time{}})
	case "sorry":
		o.add(trouble{"critical", l.Label(), link, fmt.Sprintf("%d/%d up: the sorry server takes the traffic", l.Up, l.Total), time.Time{}})
	case "down":
		o.add(trouble{"critical", l.Label(), link, fmt.Sprintf("0/%d up: no real server takes new connections", l.Total), time.Time{}})
	case "degraded":
		o.add(trouble{"warning", l.Label(), link, fmt.Sprintf("%d/%d up", l.Up, l.Total), time.Time{}})
	}
	for i := range l.RealServers {
		rs := &l.RealServers[i]
		st := rs.Display()
		switch st {
		case "down", "drained", "disabled", "missing", "unknown":
		default:
			continue // most servers, most of the time: no strings made
		}
		what := hostport(rs.Address, rs.Port) + " (" + l.Label() + ")"
		link := "/server/" + rs.ID
		switch st {
		case "down":
			text := "down"
			if m := rs.Message(); m != "" {
				text += ": " + m
			}
			o.add(trouble{"critical", what, link, text, rs.HealthSince()})
		case "drained", "disabled":
			text := rs.Display()
			if by := rs.OverrideBy(); by != "" {
				text += " by " + by
			}
			o.add(trouble{"warning", what, link, text, rs.OverrideSince()})
		case "missing":
			o.add(trouble{"warning", what, link, "configured but not in the kernel", time.Time{}})
		case "unknown":
			o.add(trouble{"warning", what, link, "health unknown (no conclusive check yet)", time.Time{}})
		}
	}
}

// statusCache keeps the services of the status that the status page was
// last built from, for as long as the snapshot and the config are the
// same and at most statusCacheAge: at 1,000 services of 50 servers
// building them costs tens of milliseconds, and several browsers kept
// open all day each ask every step. The head (the director's problems,
// role, collector) is built fresh for every page; the checker's view of
// the servers may lag by statusCacheAge.
type statusCache struct {
	mu       sync.Mutex
	snap     *lvs.Snapshot
	cfg      *config.Config
	built    time.Time
	services []ServiceStatus
}

const statusCacheAge = time.Second

// cachedStatus is s.status() with the services from the cache when it
// is fresh. The services are shared: callers only read them.
func (s *Server) cachedStatus() Status {
	cfg, snap := s.src.Config(), s.src.Snapshot()
	b := &builder{cfg: cfg, snap: snap, sorry: s.src.SorryActive, ids: &s.ids}
	st := Status{StatusHead: s.head(b)}
	c := &s.overviewCache
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.snap == snap && c.cfg == cfg && snap != nil && time.Since(c.built) < statusCacheAge {
		st.Services = c.services
		return st
	}
	b.info, b.light = s.src.Server, true
	st.Services = []ServiceStatus{}
	for _, r := range b.refs() {
		st.Services = append(st.Services, b.service(r))
	}
	c.services, c.snap, c.cfg, c.built = st.Services, snap, cfg, time.Now()
	return st
}
