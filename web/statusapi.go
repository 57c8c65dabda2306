package web

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/gin-gonic/gin"
)

// Paging of the status API.
const (
	DefaultStatusLimit = 100
	MaxStatusLimit     = 1000
)

// statusQuery is a parsed GET /api/v1/status query.
type statusQuery struct {
	offset, limit int
	services      []string // ids or names; empty: all
	states        []string // ServerStates; empty: all
}

// parseStatusQuery reads limit, offset, service and state (the last two
// repeatable and comma-separated).
func parseStatusQuery(q url.Values) (statusQuery, error) {
	sq := statusQuery{limit: DefaultStatusLimit}
	for k := range q {
		switch k {
		case "limit", "offset", "service", "state":
		default:
			return sq, fmt.Errorf("unknown query parameter %q (want limit, offset, service, state)", k)
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > MaxStatusLimit {
			return sq, fmt.Errorf("limit %q: want services per page, 1-%d", v, MaxStatusLimit)
		}
		sq.limit = n
	}
	if v := q.Get("offset"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return sq, fmt.Errorf("offset %q: want a whole number of services to skip, 0 or more", v)
		}
		sq.offset = n
	}
	list := func(key string) []string {
		var out []string
		for _, v := range q[key] {
			for _, x := range strings.Split(v, ",") {
				if x = strings.TrimSpace(x); x != "" && !slices.Contains(out, x) {
					out = append(out, x)
				}
			}
		}
		return out
	}
	sq.services = list("service")
	sq.states = list("state")
	for _, st := range sq.states {
		if !slices.Contains(ServerStates, st) {
			return sq, fmt.Errorf("unknown state %q (want %s)", st, strings.Join(ServerStates, ", "))
		}
	}
	return sq, nil
}

// encode writes q back as a query string, at another offset.
func (q statusQuery) encode(offset int) string {
	v := url.Values{"limit": {strconv.Itoa(q.limit)}, "offset": {strconv.Itoa(offset)}}
	if len(q.services) > 0 {
		v.Set("service", strings.Join(q.services, ","))
	}
	if len(q.states) > 0 {
		v.Set("state", strings.Join(q.states, ","))
	}
	return v.Encode()
}

// matches reports whether rs is in one of the states (any, when none).
func (q statusQuery) matches(rs *RealServerStatus) bool {
	if len(q.states) == 0 {
		return true
	}
	for _, st := range q.states {
		if rs.is(st) {
			return true
		}
	}
	return false
}

// statusAPI answers GET /api/v1/status: the director's head, then one page
// of its services (limit, offset), optionally only some services
// (service: ids or names) and only real servers in some states (state:
// ServerStates; a service none of whose real servers match is left out).
// The answer is written a service at a time: its size in memory is one
// page of structs and one service of JSON, whatever the page's size.
func (s *Server) statusAPI(c *gin.Context) {
	q, err := parseStatusQuery(c.Request.URL.Query())
	if err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return
	}
	b := s.builder()
	refs := b.refs()
	if len(q.services) > 0 {
		want := map[string]bool{}
		for _, x := range q.services {
			want[x] = true
		}
		var sel []svcRef
		for _, r := range refs {
			if want[r.id] || r.vs != nil && r.vs.Name != "" && want[r.vs.Name] {
				sel = append(sel, r)
				delete(want, r.id)
				if r.vs != nil {
					delete(want, r.vs.Name)
				}
			}
		}
		if len(want) > 0 {
			var unknown []string
			for _, x := range q.services {
				if want[x] {
					unknown = append(unknown, strconv.Quote(x))
				}
			}
			apiError(c, http.StatusNotFound, "no virtual service "+strings.Join(unknown, ", ")+" (service= takes ids or names)")
			return
		}
		refs = sel
	}
	page := &Page{Offset: q.offset, Limit: q.limit}
	var out []ServiceStatus
	for _, r := range refs {
		if len(q.states) == 0 {
			// Without a state filter every service counts: only the
			// page's are built.
			if page.TotalServices >= q.offset && len(out) < q.limit {
				out = append(out, b.service(r))
			}
			page.TotalServices++
			page.TotalRealServers += b.numReals(r)
			continue
		}
		ss := b.service(r)
		kept := ss.RealServers[:0]
		for j := range ss.RealServers {
			if q.matches(&ss.RealServers[j]) {
				kept = append(kept, ss.RealServers[j])
			}
		}
		if len(kept) == 0 {
			continue
		}
		ss.RealServers = kept
		if page.TotalServices >= q.offset && len(out) < q.limit {
			out = append(out, ss)
		}
		page.TotalServices++
		page.TotalRealServers += len(kept)
	}
	page.Returned = len(out)
	if next := q.offset + q.limit; next < page.TotalServices {
		page.Next = c.Request.URL.Path + "?" + q.encode(next)
	}
	head := s.head(b)
	head.Page = page
	s.writeStatus(c, head, out)
}

// writeStatus writes a Status as JSON, one service at a time.
func (s *Server) writeStatus(c *gin.Context, head StatusHead, services []ServiceStatus) {
	h, err := json.Marshal(head)
	if err != nil {
		s.log.Error("encoding the status failed", "err", err)
		apiError(c, http.StatusInternalServerError, "encoding the status failed; see the log")
		return
	}
	c.Header("Content-Type", "application/json; charset=utf-8")
	c.Status(http.StatusOK)
	w := c.Writer
	var buf bytes.Buffer
	buf.Write(h[:len(h)-1]) // without its closing brace
	buf.WriteString(`,"virtual_services":[`)
	for i := range services {
		if i > 0 {
			buf.WriteByte(',')
		}
		b, err := json.Marshal(&services[i])
		if err != nil {
			s.log.Error("encoding the status failed", "service", services[i].ID, "err", err)
			return // the client sees a truncated answer: invalid JSON, never a wrong one
		}
		buf.Write(b)
		if buf.Len() >= 64<<10 {
			if _, err := w.Write(buf.Bytes()); err != nil {
				s.log.Debug("writing the status failed; the client went away", "err", err, "remote", c.ClientIP())
				return
			}
			buf.Reset()
		}
	}
	buf.WriteString("]}\n")
	if _, err := w.Write(buf.Bytes()); err != nil {
		s.log.Debug("writing the status failed; the client went away", "err", err, "remote", c.ClientIP())
	}
}

// builder builds services from the sources' state of this moment.
func (s *Server) builder() *builder {
	b := &builder{cfg: s.src.Config(), snap: s.src.Snapshot(), sorry: s.src.SorryActive, ids: &s.ids}
	b.info = s.src.Server
	return b
}

// head builds the status's head from b's config and snapshot.
func (s *Server) head(b *builder) StatusHead {
	cfg, snap, h := b.cfg, b.snap, s.src.Health()
	st := StatusHead{Director: cfg.Director, Version: s.src.Version, Backend: cfg.IPVS.Backend,
		StepSeconds: h.Step.Seconds(), Collector: h, Problems: []Problem{}, Config: configSource(cfg)}
	if snap != nil {
		t := snap.Time
		st.SampledAt = &t
		st.Totals = Counters{Stats: snap.Table.Totals, Rates: snap.TotalRates}
	}
	if s.src.Problems != nil {
		if ps := s.src.Problems(); len(ps) > 0 {
			st.Problems = ps
		}
	}
	if s.src.Graphs != nil {
		st.GraphTemplates = map[string]string{}
		st.GraphNames = map[string][]string{}
		for _, kind := range []string{"director", "service", "server"} {
			st.GraphTemplates[kind] = graphPath(kind, "{id}", "{graph}") + "?range={range}"
			st.GraphNames[kind] = s.src.Graphs.Names(kind)
		}
		st.GraphRanges = s.src.Graphs.Ranges()
	}
	if s.src.RRD != nil {
		st.RRD = s.src.RRD()
	}
	if s.src.Reconciler != nil {
		st.Reconciler = s.src.Reconciler()
	}
	if s.src.Role != nil {
		st.Role = s.src.Role()
	}
	if s.src.Alerting != nil {
		st.Alerting = s.src.Alerting()
	}
	if s.src.Peers != nil {
		st.Peers = s.src.Peers()
	}
	if s.src.Mail != nil {
		m := s.src.Mail()
		st.Mail = &m
	}
	return st
}

// status builds the whole status of this moment (the status page).
func (s *Server) status() Status {
	b := s.builder()
	st := Status{StatusHead: s.head(b), Services: []ServiceStatus{}}
	for _, r := range b.refs() {
		st.Services = append(st.Services, b.service(r))
	}
	return st
}

// findService builds the service with this id, if there is one.
func (s *Server) findService(id string) (ServiceStatus, bool) {
	b := s.builder()
	for _, r := range b.refs() {
		if r.id == id {
			return b.service(r), true
		}
	}
	return ServiceStatus{}, false
}
