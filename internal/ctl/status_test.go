package ctl

import (
	"bytes"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// timeRe matches the times the table prints; they are the test run's.
var timeRe = regexp.MustCompile(`\d{4}-\d\d-\d\d \d\d:\d\d:\d\d`)

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update if the change is right):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// TestStatusGolden: `ctl status` of the daemon on the fake kernel, with
// a drained server, a failing one, an IPv6 service, a fwmark service and
// one only the kernel has.
func TestStatusGolden(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	if _, _, err := run(t, t.Context(), "drain", "10.0.1.3:80", "--url", d.URL, "--token-file", d.TokenFile, "--comment", "disk swap, OPS-42"); err != nil {
		t.Fatal(err)
	}
	d.settled(t, func(st *web.Status) bool {
		r := findReal(st, "tcp_10.0.0.1_80__10.0.1.3_80")
		return r != nil && r.Weight != nil && *r.Weight == 0
	})
	out, errb, err := run(t, t.Context(), "status", "--url", d.URL)
	if err != nil || errb != "" {
		t.Fatalf("status: %v\n%s", err, errb)
	}
	golden(t, "status.golden", timeRe.ReplaceAll([]byte(out), []byte("YYYY-MM-DD hh:mm:ss")))
}

func findReal(st *web.Status, id string) *web.RealServerStatus {
	for i := range st.Services {
		for j := range st.Services[i].RealServers {
			if r := &st.Services[i].RealServers[j]; r.ID == id {
				return r
			}
		}
	}
	return nil
}

// TestRenderDirectorTroubles: the head of the table shows the role, the
// guard's hold and the other problems, a dry run's pending writes, and a
// real server's held down. The status is built here: the daemon on the
// fake kernel has none of these troubles to show.
func TestRenderDirectorTroubles(t *testing.T) {
	at := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	port, w, cw := uint16(80), int32(2), int32(2)
	rates := &web.Counters{Stats: lvs.Stats{Conns: 10}, Rates: lvs.Rates{Valid: true, Conns: 12.5, InBytes: 1000, OutBytes: 3 << 20}}
	st := &web.Status{StatusHead: web.StatusHead{Director: "lvs1", Version: "1.4.0", Backend: "netlink", SampledAt: &at,
		Collector: lvs.CollectorHealth{ConsecutiveErr: 2, LastError: "netlink: operation not permitted"},
		Role: &web.Role{Role: "BACKUP", Acting: false, ActOnlyOn: "master",
			Instances: []web.RoleInstance{{Instance: "VI_1", State: "BACKUP", Disagreements: []string{"vip_without_master"}}}},
		Reconciler: &web.ReconcilerStatus{DryRun: true, Pending: []string{"set weight of 10.0.1.1:80 in TCP 10.0.0.1:80 to 0"}},
		Problems: []web.Problem{{Source: "guard", Kind: "mass_failure_hold", Severity: "critical", Since: at,
			Message: "mass failure on service tcp_10.0.0.1_80 (timeout): the downs of 2 real servers are held"}}},
		Services: []web.ServiceStatus{{ID: "tcp_10.0.0.1_80", Name: "web", Protocol: "tcp", Address: "10.0.0.1", Port: &port,
			Family: "inet", Scheduler: "wlc", Configured: true, Managed: true, InKernel: true, SorryActive: true, ActiveConns: 4, Stats: rates,
			RealServers: []web.RealServerStatus{{ID: "tcp_10.0.0.1_80__10.0.1.1_80", Address: "10.0.1.1", Port: 80, Forward: "dr",
				Weight: &w, ConfiguredWeight: &cw, Configured: true, InKernel: true, Health: "up", ActiveConns: 4, Stats: rates,
				Check: map[string]any{"last_check": at, "last_ok": false, "last_message": "i/o timeout", "check_type": "http", "held": true,
					"last_inconclusive": "no route to the server's network"}},
				{ID: "tcp_10.0.0.1_80__10.0.1.2_80", Address: "10.0.1.2", Port: 80, Forward: "dr", ConfiguredWeight: &cw, Configured: true,
					Check: map[string]any{"check_type": "http"}}}}}}
	var b bytes.Buffer
	if err := Render(&b, st, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "troubles.golden", b.Bytes())
}

// TestStatusJSON: --json prints the API's own types (web.Status), every
// page joined. Both the API's answer and the output decode into them
// with no field left over, so the client's types are the server's.
func TestStatusJSON(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	out, _, err := run(t, t.Context(), "status", "--json", "--url", d.URL)
	if err != nil {
		t.Fatal(err)
	}
	strict := func(b []byte) *web.Status {
		t.Helper()
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		var st web.Status
		if err := dec.Decode(&st); err != nil {
			t.Fatalf("%v:\n%s", err, b)
		}
		return &st
	}
	got := strict([]byte(out))
	resp, err := http.Get(d.URL + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	var raw bytes.Buffer
	raw.ReadFrom(resp.Body)
	resp.Body.Close()
	api := strict(raw.Bytes())
	if got.Page != nil || api.Page == nil {
		t.Errorf("page: --json %+v, API %+v", got.Page, api.Page)
	}
	ids := func(st *web.Status) []string {
		var out []string
		for _, s := range st.Services {
			out = append(out, s.ID+" "+s.Name)
			for _, r := range s.RealServers {
				out = append(out, "  "+r.ID+" "+r.Health)
			}
		}
		return out
	}
	if g, a := ids(got), ids(api); !slices.Equal(g, a) || len(g) != 13 {
		t.Errorf("--json services:\n%s\nAPI:\n%s", strings.Join(g, "\n"), strings.Join(a, "\n"))
	}
	if got.Director != "ctltest" || got.Version != "1.2.3-test" || got.Backend != "fake" {
		t.Errorf("head: %+v", got.StatusHead)
	}
	// The output is stable: encoding what it decodes to gives it again.
	again, _ := json.MarshalIndent(got, "", "  ")
	if string(again)+"\n" != out {
		t.Errorf("--json does not round-trip:\n%s\n---\n%s", out, again)
	}
}

// TestStatusPages: the client follows the API's pages and joins them.
func TestStatusPages(t *testing.T) {
	d := startDaemon(t, "")
	c := d.client(t)
	whole := d.settled(t, nil)
	for _, size := range []int{1, 2, 4} {
		c.pageSize = size
		st, err := c.Status(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var got, want []string
		for _, s := range st.Services {
			got = append(got, s.ID)
		}
		for _, s := range whole.Services {
			want = append(want, s.ID)
		}
		if !slices.Equal(got, want) {
			t.Errorf("pages of %d: %v, want %v", size, got, want)
		}
	}
}

func TestHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		v    float64
		want string
	}{{0, "0"}, {512, "512"}, {1023, "1023"}, {1024, "1.0K"}, {1536, "1.5K"}, {3 << 20, "3.0M"}, {5 << 30, "5.0G"}, {1 << 62, "4.0E"}, {1 << 72, "4096.0E"}} {
		if got := humanBytes(tc.v); got != tc.want {
			t.Errorf("humanBytes(%g) = %q, want %q", tc.v, got, tc.want)
		}
	}
}
