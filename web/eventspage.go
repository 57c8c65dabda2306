package web

import (
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/events"
)

// The events page is the event log for people: newest first, filtered by
// kind, service, server and time range, paged, with who did what (the
// audit trail of overrides and reloads) and the alerting outbox's state.
// Every object page links to its events here.

const eventsPerPage = 100

// eventRanges are the events page's time ranges.
var eventRanges = []struct {
	Name string
	D    time.Duration
}{{"hour", time.Hour}, {"day", 24 * time.Hour}, {"week", 7 * 24 * time.Hour}, {"all", 0}}

type eventsPage struct {
	Director              string
	Viewer                viewer
	Events                []events.Event
	Kinds                 []events.Kind
	Kind, Service, Server string
	Range                 string
	Ranges                []string
	Page, Pages, Total    int
	// PageURL is the page's URL without its page number.
	PageURL  string
	Alerting *AlertingStatus
}

func (s *Server) eventsPage(c *gin.Context) {
	if s.src.Events == nil {
		apiError(c, http.StatusNotFound, "this director keeps no event log")
		return
	}
	p := eventsPage{Director: s.director(), Viewer: s.viewerOf(c), Kinds: events.Kinds(),
		Kind: c.Query("kind"), Service: c.Query("service"), Server: c.Query("server"), Range: c.DefaultQuery("range", "day"), Page: 1}
	if p.Kind != "" && !slices.Contains(p.Kinds, events.Kind(p.Kind)) {
		apiError(c, http.StatusBadRequest, fmt.Sprintf("unknown event kind %q (want one of %v)", p.Kind, p.Kinds))
		return
	}
	f := events.Filter{Service: p.Service, Server: p.Server}
	known := false
	for _, r := range eventRanges {
		p.Ranges = append(p.Ranges, r.Name)
		if r.Name == p.Range {
			known = true
			if r.D > 0 {
				f.From = time.Now().Add(-r.D)
			}
		}
	}
	if !known {
		apiError(c, http.StatusBadRequest, fmt.Sprintf("unknown range %q (want hour, day, week or all)", p.Range))
		return
	}
	if n, err := strconv.Atoi(c.Query("page")); err == nil && n > 1 {
		p.Page = n
	}
	all := s.src.Events.Query(f)
	if p.Kind != "" {
		all = slices.DeleteFunc(all, func(e events.Event) bool { return string(e.Kind) != p.Kind })
	}
	slices.Reverse(all) // newest first
	p.Total = len(all)
	p.Pages = max(1, (len(all)+eventsPerPage-1)/eventsPerPage)
	p.Page = min(p.Page, p.Pages)
	from := (p.Page - 1) * eventsPerPage
	p.Events = all[from:min(len(all), from+eventsPerPage)]
	v := url.Values{}
	for k, val := range map[string]string{"kind": p.Kind, "service": p.Service, "server": p.Server, "range": p.Range} {
		if val != "" {
			v.Set(k, val)
		}
	}
	p.PageURL = "/events?" + v.Encode() + "&"
	if s.src.Alerting != nil {
		p.Alerting = s.src.Alerting()
	}
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := s.page.ExecuteTemplate(c.Writer, "events.html", p); err != nil {
		s.templateFailed(c, "events.html", err)
	}
}
