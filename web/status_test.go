package web

import (
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// statusFixture is the fixture with the checker's view (rs1 up, rs2 down
// and drained, rs3 never checked yet) and a real server in the fwmark
// service that the config does not know.
func statusFixture(t *testing.T) *Server {
	t.Helper()
	s, c, f := fixture(t)
	f.Mutate(func(tb *lvs.Table) {
		tb.Services[1].Dests = []lvs.Dest{{Key: lvs.DestKey{Addr: netip.MustParseAddr("10.7.7.7")}, Forward: lvs.Tunnel, Weight: 1}}
	})
	c.Sample(t.Context())
	info := map[string]ServerInfo{
		"tcp_198.51.100.10_80__10.1.1.2_80":       {Health: "up"},
		"tcp_198.51.100.10_80__10.1.2.2_80":       {Health: "down", Override: map[string]any{"mode": "drain"}, Mode: "drain"},
		"tcp_198.51.100.10_80__10.1.3.2_80":       {Health: "unknown"},
		"tcp_2001-db8--10_443__2001-db8--1-2_443": {Health: "unknown", Mode: "disable"},
	}
	s.src.Server = func(id string, _ bool) (ServerInfo, bool) {
		in, ok := info[id]
		return in, ok
	}
	return s
}

type pagedStatus struct {
	Page     Page `json:"page"`
	Services []struct {
		ID          string `json:"id"`
		RealServers []struct {
			ID string `json:"id"`
		} `json:"real_servers"`
	} `json:"virtual_services"`
}

// ids lists "service: server server" per service.
func (p pagedStatus) ids() string {
	var out []string
	for _, s := range p.Services {
		var rs []string
		for _, r := range s.RealServers {
			_, d, _ := lvs.ParseDestID(r.ID)
			rs = append(rs, d)
		}
		out = append(out, s.ID+": "+strings.Join(rs, " "))
	}
	return strings.Join(out, "; ")
}

func TestStatusPagingAndFilters(t *testing.T) {
	s := statusFixture(t)
	const (
		web   = "tcp_198.51.100.10_80: 10.1.1.2_80 10.1.2.2_80 127.0.0.1_80 10.1.3.2_80"
		fwm   = "fwm_7_inet: 10.7.7.7_0"
		gone  = "tcp_2001-db8--10_443: 2001-db8--1-2_443"
		every = web + "; " + fwm + "; " + gone
	)
	for _, tc := range []struct {
		query        string
		ids          string
		services, rs int
		next         string
	}{
		{"", every, 3, 6, ""},
		{"?limit=1", web, 3, 6, "/api/v1/status?limit=1&offset=1"},
		{"?limit=1&offset=1", fwm, 3, 6, "/api/v1/status?limit=1&offset=2"},
		{"?limit=2&offset=2", gone, 3, 6, ""},
		{"?offset=3", "", 3, 6, ""},
		{"?offset=1000", "", 3, 6, ""},
		{"?service=web", web, 1, 4, ""},
		{"?service=tcp_198.51.100.10_80", web, 1, 4, ""},
		{"?service=gone,fwm_7_inet", fwm + "; " + gone, 2, 2, ""}, // status order, not query order
		{"?service=gone&service=web&service=gone", web + "; " + gone, 2, 5, ""},
		{"?state=down", "tcp_198.51.100.10_80: 10.1.2.2_80", 1, 1, ""},
		{"?state=up", "tcp_198.51.100.10_80: 10.1.1.2_80", 1, 1, ""},
		{"?state=unknown", "tcp_198.51.100.10_80: 10.1.3.2_80; " + gone, 2, 2, ""},
		{"?state=unchecked", "tcp_198.51.100.10_80: 127.0.0.1_80; " + fwm, 2, 2, ""},
		{"?state=drained", "tcp_198.51.100.10_80: 10.1.2.2_80", 1, 1, ""},
		{"?state=disabled", gone, 1, 1, ""},
		{"?state=quiesced", "tcp_198.51.100.10_80: 10.1.2.2_80", 1, 1, ""},
		{"?state=missing", "tcp_198.51.100.10_80: 10.1.3.2_80; " + gone, 2, 2, ""},
		{"?state=unconfigured", fwm, 1, 1, ""},
		{"?state=sorry", "tcp_198.51.100.10_80: 127.0.0.1_80", 1, 1, ""},
		{"?state=down,missing", "tcp_198.51.100.10_80: 10.1.2.2_80 10.1.3.2_80; " + gone, 2, 3, ""},
		{"?state=down&state=unconfigured&limit=1", "tcp_198.51.100.10_80: 10.1.2.2_80", 2, 2, "/api/v1/status?limit=1&offset=1&state=down%2Cunconfigured"},
		{"?state=down&state=unconfigured&limit=1&offset=1", fwm, 2, 2, ""},
		{"?service=web&state=up,sorry", "tcp_198.51.100.10_80: 10.1.1.2_80 127.0.0.1_80", 1, 2, ""},
		{"?service=gone&state=up", "", 0, 0, ""},
	} {
		rec := get(t, s.Handler(), "GET", "/api/v1/status"+tc.query)
		var p pagedStatus
		if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil || rec.Code != 200 {
			t.Errorf("%s: %d %v %s", tc.query, rec.Code, err, rec.Body.String())
			continue
		}
		if got := p.ids(); got != tc.ids {
			t.Errorf("%s: services\n  %s\nwant\n  %s", tc.query, got, tc.ids)
		}
		if p.Page.TotalServices != tc.services || p.Page.TotalRealServers != tc.rs || p.Page.Next != tc.next || p.Page.Returned != len(p.Services) {
			t.Errorf("%s: page %+v, want %d services, %d real servers, next %q", tc.query, p.Page, tc.services, tc.rs, tc.next)
		}
		if !strings.Contains(rec.Body.String(), `"virtual_services":[`) {
			t.Errorf("%s: virtual_services is not a list: %.300s", tc.query, rec.Body.String())
		}
	}
}

func TestStatusQueryErrors(t *testing.T) {
	s := statusFixture(t)
	for _, tc := range []struct {
		query string
		code  int
		want  string
	}{
		{"?limit=0", 400, `limit "0": want services per page, 1-1000`},
		{"?limit=1001", 400, "1-1000"},
		{"?limit=ten", 400, `limit "ten"`},
		{"?offset=-1", 400, `offset "-1"`},
		{"?state=sick", 400, `unknown state "sick" (want up, down, unknown, unchecked, drained, disabled, quiesced, missing, unconfigured, sorry)`},
		{"?page=2", 400, `unknown query parameter "page"`},
		{"?service=web,nope,gnoe", 404, `no virtual service "nope", "gnoe"`},
	} {
		rec := get(t, s.Handler(), "GET", "/api/v1/status"+tc.query)
		var e struct{ Error string }
		json.Unmarshal(rec.Body.Bytes(), &e)
		if rec.Code != tc.code || !strings.Contains(e.Error, tc.want) {
			t.Errorf("%s: %d %s, want %d with %q", tc.query, rec.Code, rec.Body.String(), tc.code, tc.want)
		}
	}
}

// TestStatusWalk follows next links from the first page: every service
// once, in order, whatever the page size.
func TestStatusWalk(t *testing.T) {
	s := statusFixture(t)
	all := get(t, s.Handler(), "GET", "/api/v1/status").Body.Bytes()
	var want pagedStatus
	json.Unmarshal(all, &want)
	for _, limit := range []int{1, 2, 3, 1000} {
		var got []string
		next, pages := fmt.Sprintf("/api/v1/status?limit=%d", limit), 0
		for next != "" && pages < 10 {
			var p pagedStatus
			json.Unmarshal(get(t, s.Handler(), "GET", next).Body.Bytes(), &p)
			for _, svc := range p.Services {
				got = append(got, svc.ID)
			}
			next, pages = p.Page.Next, pages+1
		}
		var ids []string
		for _, svc := range want.Services {
			ids = append(ids, svc.ID)
		}
		if !slices.Equal(got, ids) || pages != (len(ids)+limit-1)/limit {
			t.Errorf("limit %d: %d pages, %v, want %v", limit, pages, got, ids)
		}
	}
}

// TestStatusShape pins the status API's keys: a client can rely on them.
func TestStatusShape(t *testing.T) {
	s := statusFixture(t)
	s.src.Graphs = &fakeGrapher{}
	var st map[string]any
	if err := json.Unmarshal(get(t, s.Handler(), "GET", "/api/v1/status?limit=1").Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	keys := func(m any) string {
		var k []string
		for key := range m.(map[string]any) {
			k = append(k, key)
		}
		sort.Strings(k)
		return strings.Join(k, " ")
	}
	for _, tc := range []struct {
		what string
		got  any
		want string
	}{
		{"status", st, "backend collector director graph_names graph_ranges graph_templates page problems sampled_at step_seconds totals version virtual_services"},
		{"page", st["page"], "limit next offset returned total_real_servers total_services"},
		{"service", st["virtual_services"].([]any)[0], "active_conns address config configured family id in_kernel inactive_conns managed name persistence_seconds port protocol real_servers scheduler sorry_active stats"},
		{"real server", st["virtual_services"].([]any)[0].(map[string]any)["real_servers"].([]any)[1],
			"active_conns address configured configured_weight forward health id in_kernel inactive_conns override persistent_conns port stats weight"},
	} {
		if got := keys(tc.got); got != tc.want {
			t.Errorf("%s keys:\n  %s\nwant\n  %s", tc.what, got, tc.want)
		}
	}
	if p, ok := st["problems"].([]any); !ok || len(p) != 0 {
		t.Errorf("problems without any: %#v, want []", st["problems"])
	}
}

func TestProblems(t *testing.T) {
	s := statusFixture(t)
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.src.Problems = func() []Problem {
		return []Problem{
			{Source: "checker", Kind: "local_failures", Severity: "critical", Message: "37 checks failed to open a socket: too many open files", Since: since},
			{Source: "overrides", Kind: "damaged_file", Severity: "warning", Message: "overrides.json does not parse; the last good copy is used"},
		}
	}
	rec := get(t, s.Handler(), "GET", "/api/v1/status?limit=1")
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Problems) != 2 || st.Problems[0] != s.src.Problems()[0] || st.Problems[1].Severity != "warning" {
		t.Errorf("problems = %+v", st.Problems)
	}
	if !strings.Contains(rec.Body.String(), `"problems":[{"source":"checker","kind":"local_failures","severity":"critical","message":"37 checks failed to open a socket: too many open files","since":"2026-03-01T12:00:00Z"},{"source":"overrides","kind":"damaged_file","severity":"warning","message":"overrides.json does not parse; the last good copy is used"}]`) {
		t.Errorf("problems JSON: %.600s", rec.Body.String())
	}
	page := get(t, s.Handler(), "GET", "/").Body.String()
	banner := strings.Index(page, `id="problems"`)
	if banner < 0 || banner > strings.Index(page, "<h1>") {
		t.Fatalf("no problem banner above the heading:\n%.1500s", page)
	}
	for _, want := range []string{"This director has 2 problems of its own", `class="critical"`, "37 checks failed to open a socket", `class="warning"`, "overrides.json does not parse"} {
		if !strings.Contains(page, want) {
			t.Errorf("banner lacks %q", want)
		}
	}
	// None: no banner, and [] in the API.
	s.src.Problems = func() []Problem { return nil }
	if page := get(t, s.Handler(), "GET", "/").Body.String(); strings.Contains(page, `id="problems"`) {
		t.Error("a banner without problems")
	}
	if body := get(t, s.Handler(), "GET", "/api/v1/status").Body.String(); !strings.Contains(body, `"problems":[]`) {
		t.Errorf("no problems: %.300s", body)
	}
}

// TestCheckWeightShown: the weight a check set is in the status API
// beside the live and configured weights, and on the server page.
func TestCheckWeightShown(t *testing.T) {
	s := statusFixture(t)
	server := s.src.Server
	w := int32(7)
	s.src.Server = func(id string, check bool) (ServerInfo, bool) {
		in, ok := server(id, check)
		if id == "tcp_198.51.100.10_80__10.1.1.2_80" {
			in.CheckWeight = &w
		}
		return in, ok
	}
	rec := get(t, s.Handler(), "GET", "/api/v1/status")
	var st struct {
		Services []struct {
			RealServers []struct {
				ID               string `json:"id"`
				Weight           *int32 `json:"weight"`
				ConfiguredWeight *int32 `json:"configured_weight"`
				CheckWeight      *int32 `json:"check_weight"`
			} `json:"real_servers"`
		} `json:"virtual_services"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, svc := range st.Services {
		for _, rs := range svc.RealServers {
			switch {
			case rs.ID == "tcp_198.51.100.10_80__10.1.1.2_80":
				if rs.CheckWeight == nil || *rs.CheckWeight != 7 || rs.ConfiguredWeight == nil || rs.Weight == nil {
					t.Errorf("%s: weights %v %v %v", rs.ID, rs.Weight, rs.ConfiguredWeight, rs.CheckWeight)
				}
				found++
			case rs.CheckWeight != nil:
				t.Errorf("%s has check_weight %d", rs.ID, *rs.CheckWeight)
			}
		}
	}
	if found != 1 {
		t.Fatalf("the server was listed %d times", found)
	}
	page := get(t, s.Handler(), "GET", "/server/tcp_198.51.100.10_80__10.1.1.2_80").Body.String()
	if !strings.Contains(page, `<th scope="row">weight set by check</th><td>7</td>`) {
		t.Errorf("the server page does not say the check's weight:\n%.3000s", page)
	}
	if page := get(t, s.Handler(), "GET", "/server/tcp_198.51.100.10_80__10.1.2.2_80").Body.String(); strings.Contains(page, "weight set by check") {
		t.Error("a server without a check weight shows one")
	}
}

// TestIDCache: cached names are the ones made afresh, and the cache
// starts again once full.
func TestIDCache(t *testing.T) {
	var c idCache
	k := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("2001:db8::10"), 443)
	d := lvs.DestKey{Addr: netip.MustParseAddr("2001:db8::1:2"), Port: 443}
	id, addr := c.names(k, d)
	wantID, wantAddr := (*idCache)(nil).names(k, d)
	if id != wantID || addr != wantAddr || id != "tcp_2001-db8--10_443__2001-db8--1-2_443" {
		t.Fatalf("names %q %q, want %q %q", id, addr, wantID, wantAddr)
	}
	for i := range maxIDCache {
		c.names(k, lvs.DestKey{Addr: netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), Port: 80})
	}
	if n := len(c.m); n > maxIDCache {
		t.Errorf("the cache holds %d names, more than %d", n, maxIDCache)
	}
}
