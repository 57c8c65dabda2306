package web

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/config"
)

func w(n int32) *int32 { return &n }

func TestDisplayState(t *testing.T) {
	for _, tc := range []struct {
		name string
		rs   RealServerStatus
		want string
	}{
		{"up", RealServerStatus{Configured: true, InKernel: true, Weight: w(1), Health: "up"}, "up"},
		{"down, weight 0", RealServerStatus{Configured: true, InKernel: true, Weight: w(0), Health: "down"}, "down"},
		{"down, removed", RealServerStatus{Configured: true, Health: "down"}, "down"},
		{"a drain hides the health", RealServerStatus{Configured: true, InKernel: true, Weight: w(0), Health: "down", mode: "drain"}, "drained"},
		{"disabled", RealServerStatus{Configured: true, Health: "up", mode: "disable"}, "disabled"},
		{"sorry first", RealServerStatus{Configured: true, InKernel: true, Weight: w(1), Sorry: true, mode: "drain"}, "sorry"},
		{"missing", RealServerStatus{Configured: true}, "missing"},
		{"unknown", RealServerStatus{Configured: true, InKernel: true, Weight: w(1), Health: "unknown"}, "unknown"},
		{"quiesced by hand", RealServerStatus{Configured: true, InKernel: true, Weight: w(0), Health: "up"}, "quiesced"},
		{"unconfigured", RealServerStatus{InKernel: true, Weight: w(1)}, "unconfigured"},
		{"unchecked", RealServerStatus{Configured: true, InKernel: true, Weight: w(2)}, "unchecked"},
	} {
		if got := tc.rs.Display(); got != tc.want {
			t.Errorf("%s: %s; want %s", tc.name, got, tc.want)
		}
	}
}

// svc is a configured service in the kernel with servers up of total
// (weight 1 or 0), sorry when the sorry server is in.
func svc(name string, up, total int, sorry bool) ServiceStatus {
	port := uint16(80)
	s := ServiceStatus{ID: "tcp_192.0.2.1_" + name, Name: name, Protocol: "tcp", Address: "192.0.2.1", Port: &port, Configured: true, InKernel: true, SorryActive: sorry}
	for i := range total {
		weight, health := int32(0), "down"
		if i < up {
			weight, health = 1, "up"
		}
		s.RealServers = append(s.RealServers, RealServerStatus{ID: fmt.Sprintf("%s__10.0.0.%d_80", s.ID, i+1), Address: fmt.Sprintf("10.0.0.%d", i+1), Port: 80,
			Configured: true, InKernel: true, Weight: &weight, Health: health, message: "connection refused", since: time.Unix(1e9, 0)})
	}
	if sorry {
		s.RealServers = append(s.RealServers, RealServerStatus{ID: s.ID + "__127.0.0.1_80", Address: "127.0.0.1", Port: 80, Configured: true, InKernel: true, Weight: w(1), Sorry: true})
	}
	return s
}

func overviewOf(t *testing.T, st *Status, query string) overview {
	t.Helper()
	c, _ := gin.CreateTestContext(httptest.NewRecorder())
	c.Request = httptest.NewRequest("GET", "/?"+query, nil)
	return buildOverview(st, c)
}

func TestOverviewTroubleFirst(t *testing.T) {
	st := &Status{Services: []ServiceStatus{svc("a", 2, 2, false), svc("b", 1, 3, false), svc("c", 0, 2, true), svc("d", 0, 1, false), svc("e", 3, 3, false)}}
	o := overviewOf(t, st, "")
	var order, states []string
	for _, l := range o.Lines {
		order = append(order, l.Name)
		states = append(states, fmt.Sprintf("%s %d/%d", l.State, l.Up, l.Total))
	}
	if got := strings.Join(order, ""); got != "cdbae" {
		t.Errorf("order %s (%v); want the critical, then the degraded, then the rest in the kernel's order", got, states)
	}
	if got := strings.Join(states, ", "); got != "sorry 0/2, down 0/1, degraded 1/3, ok 2/2, ok 3/3" {
		t.Errorf("states: %s", got)
	}
	if o.Up != 6 || o.Total != 11 || o.States["ok"] != 2 {
		t.Errorf("up %d/%d, states %v", o.Up, o.Total, o.States)
	}
	// c (sorry), d (down), b (degraded) and the 2+1+2 servers down.
	if o.TroubleCount != 8 || o.Trouble[0].Severity != "critical" || o.Trouble[len(o.Trouble)-1].Severity != "warning" {
		t.Errorf("%d troubles: %+v", o.TroubleCount, o.Trouble)
	}
	for _, tr := range o.Trouble {
		if strings.HasPrefix(tr.What, "10.0.0.") && (tr.Text != "down: connection refused" || tr.Since.IsZero()) {
			t.Errorf("a server's trouble without its reason or since: %+v", tr)
		}
	}
	if o := overviewOf(t, st, "show=trouble"); len(o.Lines) != 3 {
		t.Errorf("show=trouble: %d services", len(o.Lines))
	}
	if o := overviewOf(t, st, "q=E"); len(o.Lines) != 1 || o.Lines[0].Name != "e" {
		t.Errorf("q=E: %+v", o.Lines)
	}
}

func TestOverviewPages(t *testing.T) {
	st := &Status{}
	for i := range 250 {
		st.Services = append(st.Services, svc(fmt.Sprint("s", i), 1, 1, false))
	}
	st.Services[249] = svc("last", 0, 1, false)
	o := overviewOf(t, st, "")
	if o.Pages != 3 || len(o.Lines) != servicesPerPage || o.Lines[0].Name != "last" {
		t.Errorf("page 1: %d pages, %d lines, first %s", o.Pages, len(o.Lines), o.Lines[0].Name)
	}
	if o := overviewOf(t, st, "page=3"); len(o.Lines) != 50 || o.Page != 3 {
		t.Errorf("page 3: %d lines", len(o.Lines))
	}
	if o := overviewOf(t, st, "page=99"); o.Page != 3 {
		t.Errorf("page 99 shows page %d; want the last", o.Page)
	}
	if o := overviewOf(t, st, "q=s1&show=trouble"); o.PageURL != "/?q=s1&show=trouble&" || len(o.Lines) != 0 {
		t.Errorf("filtered: url %q, %d lines", o.PageURL, len(o.Lines))
	}
	// The trouble list is bounded, its count is not.
	big := &Status{}
	for i := range 300 {
		big.Services = append(big.Services, svc(fmt.Sprint("x", i), 0, 1, false))
	}
	if o := overviewOf(t, big, ""); len(o.Trouble) != maxTrouble || o.TroubleCount != 600 {
		t.Errorf("%d listed of %d", len(o.Trouble), o.TroubleCount)
	}
}

// The overview shows the pair: each peer reachable or not, its role and
// VIPs, and the drift from this director, never "none" for a peer that
// cannot be reached.
func TestOverviewPair(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	s.src.Peers = func() []PeerStatus {
		return []PeerStatus{
			{Name: "lvs2", URL: "https://lvs2:9160", Up: true, Director: "lvs2", Role: "BACKUP", VIPs: []string{"198.51.100.99"}, DriftKnown: true, LastSuccess: time.Now(),
				Drift: []Drift{{Table: "kernel", Kind: "weight", Service: "tcp_198.51.100.10_80", Server: "tcp_198.51.100.10_80__10.1.1.2_80", Local: "3", Peer: "1"}}},
			{Name: "lvs3", URL: "https://lvs3:9160", LastError: "connection refused"},
		}
	}
	page := get(t, s.Handler(), "GET", "/").Body.String()
	for _, want := range []string{`id="pair"`, "lvs2", "BACKUP", "198.51.100.99", "◐ 1 difference<", "1 difference with lvs2", "<td>3</td><td>1</td>",
		"✗ unreachable", "connection refused", "? unknown"} {
		if !strings.Contains(page, want) {
			t.Errorf("pair panel lacks %q", want)
		}
	}
	if strings.Count(page, "✓ none") != 0 {
		t.Error("a peer shown in sync")
	}
}

// A config imported from another program's file is said on the page and
// in the status API; lvsmon's own YAML adds nothing.
func TestOverviewImportedConfig(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	if page := get(t, s.Handler(), "GET", "/").Body.String(); strings.Contains(page, "config imported") {
		t.Error("a YAML config shown as imported")
	}
	cfg := *s.src.Config()
	cfg.File = "/etc/keepalived/keepalived.conf"
	cfg.Origin = &config.Origin{Format: "keepalived", Files: []string{cfg.File}, Mapped: 20, Changed: 1, Unsupported: 3}
	s.src.Config = func() *config.Config { return &cfg }
	page := get(t, s.Handler(), "GET", "/").Body.String()
	if want := "config imported from keepalived (/etc/keepalived/keepalived.conf): 3 directives not supported, 1 changed meaning"; !strings.Contains(page, want) {
		t.Errorf("the page lacks %q", want)
	}
	body := get(t, s.Handler(), "GET", "/api/v1/status").Body.String()
	if want := `"config":{"file":"/etc/keepalived/keepalived.conf","imported_from":"keepalived","files":["/etc/keepalived/keepalived.conf"],"mapped":20,"changed":1,"unsupported":3,"ignored":0,"partial":true}`; !strings.Contains(body, want) {
		t.Errorf("the status lacks %s:\n%s", want, body)
	}
}
