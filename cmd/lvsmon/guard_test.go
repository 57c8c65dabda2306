package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// A mass failure through the binary: four real servers on loopback stop
// answering at once (they accept and hang: check timeouts, as a bad
// moment of the director's own network looks). lvsmon holds their downs:
// no weight changes, the hold is a problem in the status API, a metric
// and an event. An operator releases it: the failures are believed, the
// servers are quiesced and the sorry server comes in. They mend: weights
// come back.
func TestGuardHoldThroughTheDaemon(t *testing.T) {
	var hang atomic.Bool
	release := make(chan struct{})
	defer close(release)
	var ports []int
	for range 4 {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if hang.Load() {
				select {
				case <-r.Context().Done():
				case <-release:
				}
				return
			}
			fmt.Fprintln(w, "OK")
		}))
		defer srv.Close()
		ports = append(ports, srv.Listener.Addr().(*net.TCPAddr).Port)
	}
	var b strings.Builder
	b.WriteString(`director: guard
step: 1s
ipvs: {backend: fake}
web: {api_token: "0123456789abcdef-token"}
guard: {max_hold: 0s}
virtual_services:
  - name: web
    address: 10.0.0.1
    port: 80
    sorry_server: {address: 127.0.0.2, port: 80}
    check: {type: http, path: /, interval: 300ms, timeout: 300ms, rise: 1, fall: 1}
    real_servers:
`)
	for _, p := range ports {
		fmt.Fprintf(&b, "      - {address: 127.0.0.1, port: %d, weight: 2, forward: nat}\n", p)
	}
	d := startDaemon(t, "run", "--config", writeFile(t, "lvsmon.yaml", b.String()), "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	base := d.url(t)
	weights := func() string {
		var st ctlStatus
		getJSON(t, base+"/api/v1/status", &st)
		var w []string
		for _, s := range st.Services {
			for _, r := range s.RealServers {
				if r.Weight != nil {
					w = append(w, fmt.Sprint(*r.Weight))
				} else {
					w = append(w, "-")
				}
			}
		}
		return strings.Join(w, " ")
	}
	type problems struct {
		Problems []struct{ Source, Kind, Message string } `json:"problems"`
	}
	held := func() string {
		var p problems
		getJSON(t, base+"/api/v1/status", &p)
		for _, x := range p.Problems {
			if x.Kind == "mass_failure_hold" {
				return x.Message
			}
		}
		return ""
	}
	eventually(t, 10*time.Second, func() bool { return weights() == "2 2 2 2" }, func() string { return "weights " + weights() + "\n" + d.logText() })
	eventually(t, 10*time.Second, func() bool {
		up := 0
		for _, r := range ctlGet(t, base).Services[0].RealServers {
			if r.Health == "up" {
				up++
			}
		}
		return up == 4
	}, func() string { return "not every server checked up; log:\n" + d.logText() })

	hang.Store(true)
	// The hold trips on the third failing server; the fourth joins it.
	eventually(t, 10*time.Second, func() bool { return strings.Contains(held(), "4 real servers are held") },
		func() string { return "hold problem: " + held() + "\nlog:\n" + d.logText() })
	if m := held(); !strings.Contains(m, "(timeout)") {
		t.Errorf("hold problem: %s", m)
	}
	// Three more failing checks of every server: still nothing written.
	failures := func() []int {
		var st struct {
			Services []struct {
				RealServers []struct {
					Check struct {
						Failures int `json:"failures"`
					} `json:"check"`
				} `json:"real_servers"`
			} `json:"virtual_services"`
		}
		getJSON(t, base+"/api/v1/status", &st)
		var f []int
		for _, r := range st.Services[0].RealServers {
			f = append(f, r.Check.Failures)
		}
		return f
	}
	start := failures()
	eventually(t, 10*time.Second, func() bool {
		now := failures()
		for i := range start {
			if now[i] < start[i]+3 {
				return false
			}
		}
		return true
	}, func() string { return fmt.Sprint("failures ", start, " then ", failures()) })
	if w := weights(); w != "2 2 2 2" {
		t.Fatalf("weights changed during the hold: %s\n%s", w, d.logText())
	}
	getPage := func(path string) string {
		page, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		html, _ := io.ReadAll(page.Body)
		page.Body.Close()
		return string(html)
	}
	if !strings.Contains(getPage("/"), "mass failure on service tcp_10.0.0.1_80") {
		t.Error("status page: no hold banner")
	}
	if n := strings.Count(getPage("/service/tcp_10.0.0.1_80"), ">held</span>"); n != 4 {
		t.Errorf("service page: %d servers marked held; want 4", n)
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `lvsmon_guard_holds{class="timeout",scope="tcp_10.0.0.1_80"} 1`) {
		t.Errorf("no hold metric")
	}
	if code, body := post(t, base+"/api/v1/guard/release", "0123456789abcdef-token"); code != 200 || !strings.Contains(body, `"released":1`) {
		t.Fatalf("release: %d %s", code, body)
	}
	eventually(t, 10*time.Second, func() bool { return weights() == "0 0 0 0 1" }, func() string { return "after release: " + weights() + "\n" + d.logText() })

	hang.Store(false)
	eventually(t, 10*time.Second, func() bool { return strings.HasPrefix(weights(), "2 2 2 2") }, func() string { return "after mending: " + weights() })
	var evs struct{ Events []struct{ Kind string } }
	getJSON(t, base+"/api/v1/events", &evs)
	var kinds []string
	for _, e := range evs.Events {
		if e.Kind != "daemon_start" && e.Kind != "server_up" {
			kinds = append(kinds, e.Kind)
		}
	}
	if got := strings.Join(kinds, " "); !strings.HasPrefix(got, "guard_hold guard_release server_down server_down server_down server_down sorry_on") {
		t.Errorf("events: %s\n%s", got, d.logText())
	}
}
