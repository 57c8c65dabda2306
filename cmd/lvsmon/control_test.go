package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

const controlCfg = `director: ctl
step: 1s
ipvs: {backend: fake}
web: {api_token: "0123456789abcdef-token"}
virtual_services:
  - name: web
    address: 10.0.0.1
    port: 80
    sorry_server: {address: 127.0.0.1, port: 80}
    # type none: no traffic leaves the test; the servers count as up
    check: {type: none, interval: 200ms, timeout: 100ms}
    real_servers:
      - {address: 10.0.1.1, weight: 3}
      - {address: 10.0.1.2, weight: 2}
`

func post(t *testing.T, url, token string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", url, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type ctlStatus struct {
	Services []struct {
		RealServers []struct {
			ID       string         `json:"id"`
			Weight   *int           `json:"weight"`
			Health   string         `json:"health"`
			Override map[string]any `json:"override"`
		} `json:"real_servers"`
	} `json:"virtual_services"`
}

func ctlGet(t *testing.T, base string) ctlStatus {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st ctlStatus
	json.NewDecoder(resp.Body).Decode(&st)
	return st
}

func TestWriteAPIAndCheckerMetrics(t *testing.T) {
	cfgPath := writeFile(t, "lvsmon.yaml", controlCfg)
	dataDir := t.TempDir()
	d := startDaemon(t, "run", "--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	base := d.url(t)
	rs1 := "tcp_10.0.0.1_80__10.0.1.1_80"
	weightOf := func(st ctlStatus, id string) (int, string, map[string]any) {
		for _, r := range st.Services[0].RealServers {
			if r.ID == id && r.Weight != nil {
				return *r.Weight, r.Health, r.Override
			}
		}
		return -1, "", nil
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		w, h, _ := weightOf(ctlGet(t, base), rs1)
		if w == 3 && h == "up" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("rs1 never reached weight 3 and health up: %d %s\n%s", w, h, d.logText())
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, tc := range []struct {
		path, token string
		code        int
		want        string
	}{
		{"/api/v1/servers/" + rs1 + "/drain", "", 401, "bearer token"},
		{"/api/v1/servers/" + rs1 + "/drain", "wrong-token-wrong-token", 401, "bearer token"},
		{"/api/v1/servers/tcp_10.0.0.1_80__10.9.9.9_80/drain", "0123456789abcdef-token", 404, "no such configured real server"},
		{"/api/v1/servers/" + rs1 + "/explode", "0123456789abcdef-token", 404, "unknown action"},
		{"/api/v1/servers/" + rs1 + "/drain", "0123456789abcdef-token", 200, "ok"},
	} {
		if code, body := post(t, base+tc.path, tc.token); code != tc.code || !strings.Contains(body, tc.want) {
			t.Errorf("POST %s: %d %s", tc.path, code, body)
		}
	}
	for {
		w, _, o := weightOf(ctlGet(t, base), rs1)
		if w == 0 && o["mode"] == "drain" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drain not applied: weight %d override %v", w, o)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The status API's state filter sees the override.
	var drained ctlStatus
	getJSON(t, base+"/api/v1/status?state=drained", &drained)
	if len(drained.Services) != 1 || len(drained.Services[0].RealServers) != 1 || drained.Services[0].RealServers[0].ID != rs1 {
		t.Errorf("state=drained: %+v", drained)
	}
	// The scheme of the Authorization header is case-insensitive.
	req, _ := http.NewRequest("POST", base+"/api/v1/servers/"+rs1+"/drain", nil)
	req.Header.Set("Authorization", "bearer 0123456789abcdef-token")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 200 {
		t.Errorf("lower-case bearer: %v %v", err, resp)
	} else {
		resp.Body.Close()
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`lvsmon_real_server_up{address="10.0.0.1",fwmark="",name="web",port="80",protocol="tcp",real_address="10.0.1.1",real_port="80",service="tcp_10.0.0.1_80"} 1`,
		`lvsmon_sorry_server_active{address="10.0.0.1",fwmark="",name="web",port="80",protocol="tcp",service="tcp_10.0.0.1_80"} 0`,
		`lvsmon_real_server_check_failures_total{`, `lvsmon_reconcile_applied_actions_total `,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// An invalid config through the reload endpoint is refused with its
	// problems; the override survives a restart.
	os.WriteFile(cfgPath, []byte("step: soon\n"), 0o644)
	if code, body := post(t, base+"/-/reload", "0123456789abcdef-token"); code != 400 || !strings.Contains(body, `\"soon\" is not a duration`) {
		t.Errorf("reload of a bad config: %d %s", code, body)
	}
	os.WriteFile(cfgPath, []byte(controlCfg), 0o644)
	d.stop(t)
	d2 := startDaemon(t, "run", "--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", dataDir)
	base = d2.url(t)
	deadline = time.Now().Add(15 * time.Second)
	for {
		w, _, o := weightOf(ctlGet(t, base), rs1)
		if w == 0 && o["mode"] == "drain" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("drain lost across a restart: weight %d override %v", w, o)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, _ := post(t, base+"/api/v1/servers/"+rs1+"/enable", "0123456789abcdef-token"); code != 200 {
		t.Errorf("enable: %d", code)
	}
	d2.stop(t)
}

// TestOutageEndsAcrossRestart: a real server fails, lvsmon stops, the
// server recovers, lvsmon starts again. The checker assumes servers up at
// start (no event without a change), so lvsmon must itself log the end of
// the outage it had logged, or the graphs and the mail reminders would
// think the server still down.
func TestOutageEndsAcrossRestart(t *testing.T) {
	t.Parallel()
	addr := freeAddr(t)
	_, port, _ := net.SplitHostPort(addr)
	dir := t.TempDir()
	cfg := writeFile(t, "lvsmon.yaml", `data_dir: `+filepath.Join(dir, "data")+`
step: 1s
ipvs: {backend: fake}
virtual_services:
  - name: web
    address: 198.51.100.81
    port: 80
    check: {type: tcp, interval: 1s, timeout: 500ms}
    real_servers:
      - {address: 127.0.0.1, port: `+port+`, forward: nat}
`)
	events := func(base string) string {
		resp, err := http.Get(base + "/api/v1/events")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b)
	}
	waitEvents := func(base, want string) {
		t.Helper()
		eventually(t, 20*time.Second, func() bool { return strings.Contains(events(base), want) },
			func() string { return fmt.Sprintf("no event with %q: %s", want, events(base)) })
	}
	d := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	waitEvents(d.url(t), `"kind":"server_down"`)
	d.stop(t)

	l, err := net.Listen("tcp", addr) // the server is back
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	d = startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	base := d.url(t)
	waitEvents(base, "found up by the first check after lvsmon restarted")
	if n := strings.Count(events(base), `"kind":"server_up"`); n != 1 {
		t.Errorf("%d server_up events, want 1: %s", n, events(base))
	}
	d.stop(t)
}

// TestHAReload: a reload that changes the ha section restarts the role
// sources with it. VIP-only setup on this host's own addresses (read
// only): 127.0.0.1 is here, so the director holds its "VIP"; after the
// reload the VIP is one no interface has, and the role turns BACKUP.
func TestHAReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "lvsmon.yaml")
	write := func(vip string) {
		os.WriteFile(path, []byte(`data_dir: `+filepath.Join(dir, "data")+`
step: 1s
ipvs: {backend: fake}
ha:
  act_only_on: master
  vips: [`+vip+`]
`), 0o644)
	}
	write("127.0.0.1")
	d := startDaemon(t, "run", "--config", path, "--listen", "127.0.0.1:0")
	base := d.url(t)
	role := func(want string) {
		t.Helper()
		var st struct {
			Role struct {
				Role   string `json:"role"`
				Acting bool   `json:"acting"`
			} `json:"role"`
		}
		eventually(t, 15*time.Second, func() bool {
			getJSON(t, base+"/api/v1/status", &st)
			return st.Role.Role == want && st.Role.Acting == (want == "MASTER")
		}, func() string { return fmt.Sprintf("role %+v, want %s; log:\n%s", st.Role, want, d.logText()) })
	}
	role("MASTER")
	write("198.51.100.99")
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "ha section reloaded")
	role("BACKUP")
	d.stop(t)
}
