package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

var binary string

// TestMain builds the real binary once: the daemon tests run it as a
// process so that signals, exit codes and output are the real ones. It has
// the race detector when the tests do.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lvsmon-bin-")
	if err != nil {
		panic(err)
	}
	binary = filepath.Join(dir, "lvsmon")
	args := []string{"build", "-ldflags", testLDFlags, "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfig(t *testing.T) {
	good := writeFile(t, "good.yaml", "virtual_services:\n  - {address: 10.0.0.1, port: 80, real_servers: [{address: 10.0.1.1}]}\n")
	bad := writeFile(t, "bad.yaml", "step: 1s\nlisten: nowhere\nvirtual_services:\n  - {address: 10.0.0.1, port: 80, colour: red}\n  - {address: 10.0.0.1, port: 80}\n")
	tests := []struct {
		name     string
		args     []string
		code     int
		out, err []string
	}{
		{"valid", []string{"check-config", good}, 0, []string{"valid (1 virtual services, 1 real servers)"}, nil},
		{"every error with its line", []string{"check-config", bad}, 1, nil, []string{
			`bad.yaml:2: listen: "nowhere" is not host:port`, `bad.yaml:4: virtual_services[0].colour: unknown key`,
			`bad.yaml:5: virtual_services[1]: service TCP 10.0.0.1:80 is defined twice (first at line 4)`, "3 error(s)"}},
		{"type errors stop before validation", []string{"check-config", writeFile(t, "t.yaml", "step: 1\n")}, 1, nil, []string{`t.yaml:1: "1" is not a duration`, "1 error(s)"}},
		{"missing file", []string{"check-config", "/nonexistent.yaml"}, 1, nil, []string{"no such file"}},
		{"no argument", []string{"check-config"}, 2, nil, []string{"usage: lvsmon check-config [--web.config.file FILE] [--config-id ID] FILE"}},
		{"a keepalived.conf", []string{"check-config", "--config-id", "lvs1", writeFile(t, "keepalived.conf",
			"global_defs {\n  router_id lvs1\n@lvs2 router_id lvs2\n}\n\nvirtual_server 192.0.2.1 80 {\n  lb_kind DR\n  omega\n  real_server 10.0.0.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n")}, 0,
			[]string{"keepalived.conf: valid (imported from keepalived, 1 directives not supported, 0 changed: 1 virtual services, 1 real servers)"},
			[]string{"keepalived.conf:3: ignored: @id: @lvs2", "keepalived.conf:8: unsupported: omega", "1 unsupported, 1 ignored: partial"}},
		{"an ldirectord.cf", []string{"check-config", writeFile(t, "ldirectord.cf", "cleanstop=no\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tservice=http\n")}, 0,
			[]string{"ldirectord.cf: valid (imported from ldirectord, 0 directives not supported, 0 changed: 1 virtual services, 1 real servers)"},
			[]string{"faithful"}},
		{"a file of no known format", []string{"check-config", writeFile(t, "mixed.conf", "virtual=192.0.2.1:80\nvirtual_server 192.0.2.1 80 {\n}\n")}, 1, nil,
			[]string{"mixed.conf: cannot tell which program this config is for: line 1 looks like ldirectord.cf (virtual=), line 2 looks like keepalived.conf (virtual_server)"}},
		{"a keepalived.conf that does not import", []string{"check-config", writeFile(t, "broken.conf", "virtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n}\n")}, 1, nil,
			[]string{"broken.conf:1: unbalanced braces"}},
		{"with a web config", []string{"check-config", "--web.config.file", writeFile(t, "web.yml", "basic_auth_users:\n  alice: $2a$04$t8sqcnquhdceJHwdKdqW9e8vLgc7WoKv4PbX1y7XvYZ5sWITvuakC\n"), good}, 0,
			[]string{"valid (1 virtual services", "web.yml: valid (tls off, 1 basic auth users)"}, nil},
		{"with a bad web config", []string{"check-config", "--web.config.file", writeFile(t, "badweb.yml", "basic_auth_users:\n  alice: plain\n"), good}, 1,
			nil, []string{"badweb.yml: basic_auth_users.alice: not a bcrypt hash"}},
		{"version", []string{"version"}, 0, []string{"lvsmon, version ", "\n  platform:         "}, nil},
		{"unknown command", []string{"frobnicate"}, 2, nil, []string{`unknown command "frobnicate"`}},
		{"bad log level", []string{"demo", "--log-level", "loud"}, 2, nil, []string{"--log-level"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			if code != tc.code {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
			for _, w := range tc.out {
				if !strings.Contains(out.String(), w) {
					t.Errorf("stdout lacks %q: %s", w, out.String())
				}
			}
			for _, w := range tc.err {
				if !strings.Contains(errb.String(), w) {
					t.Errorf("stderr lacks %q: %s", w, errb.String())
				}
			}
		})
	}
}

// daemon is a running lvsmon process with its log captured.
type daemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	log  bytes.Buffer
	addr chan string
	done chan error
}

var listenRe = regexp.MustCompile(`listen=(\S+)`)

func startDaemon(t *testing.T, args ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(binary, args...), addr: make(chan string, 1), done: make(chan error, 1)}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			line := sc.Text()
			d.mu.Lock()
			d.log.WriteString(line + "\n")
			d.mu.Unlock()
			if m := listenRe.FindStringSubmatch(line); m != nil && strings.Contains(line, "lvsmon started") {
				first, _, _ := strings.Cut(m[1], ",") // the first of several addresses
				d.addr <- first
			}
		}
		d.done <- d.cmd.Wait()
	}()
	t.Cleanup(func() { d.cmd.Process.Kill() })
	return d
}

func (d *daemon) url(t *testing.T) string {
	t.Helper()
	select {
	case a := <-d.addr:
		return "http://" + a
	case <-time.After(30 * time.Second):
		t.Fatalf("daemon did not start; log:\n%s", d.logText())
	}
	return ""
}

func (d *daemon) logText() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.log.String()
}

// waitLog waits until the log contains s.
func (d *daemon) waitLog(t *testing.T, s string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if strings.Contains(d.logText(), s) {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("log never showed %q:\n%s", s, d.logText())
}

func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-d.done:
		if err != nil {
			t.Errorf("daemon exited with %v; log:\n%s", err, d.logText())
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("daemon did not stop on SIGTERM; log:\n%s", d.logText())
	}
}

type statusBody struct {
	Director string `json:"director"`
	RRD      struct {
		Files   int    `json:"files"`
		Updates uint64 `json:"updates"`
		Errors  uint64 `json:"errors"`
	} `json:"rrd"`
	Collector struct {
		Samples uint64 `json:"samples"`
	} `json:"collector"`
	Totals struct {
		Conns uint64 `json:"conns"`
	} `json:"totals"`
	Services []struct {
		Name        string `json:"name"`
		InKernel    bool   `json:"in_kernel"`
		RealServers []struct {
			ID     string `json:"id"`
			Weight *int   `json:"weight"`
		} `json:"real_servers"`
	} `json:"virtual_services"`
}

func getStatus(t *testing.T, base string) statusBody {
	t.Helper()
	var st statusBody
	getJSON(t, base+"/api/v1/status", &st)
	return st
}

// getJSON decodes the JSON body of GET url into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
}

// eventually: the shared poll (testutil.Eventually).
var eventually = testutil.Eventually

func TestRunReloadsOnSIGHUP(t *testing.T) {
	cfgPath := writeFile(t, "lvsmon.yaml", "director: first\nstep: 1s\nipvs: {backend: fake}\nvirtual_services:\n  - {name: web, address: 10.0.0.1, port: 80}\n")
	d := startDaemon(t, "run", "--config", cfgPath, "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	base := d.url(t)
	if st := getStatus(t, base); st.Director != "first" || len(st.Services) != 1 {
		t.Fatalf("status = %+v", st)
	}

	// An invalid config is rejected with its errors and changes nothing.
	os.WriteFile(cfgPath, []byte("director: second\nstep: soon\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "keeping the running config")
	if !strings.Contains(d.logText(), `lvsmon.yaml:2: \"soon\" is not a duration`) {
		t.Errorf("rejection does not name the line:\n%s", d.logText())
	}
	if st := getStatus(t, base); st.Director != "first" {
		t.Errorf("invalid reload changed the director to %q", st.Director)
	}

	// A valid one is swapped in whole; the listen address stays.
	os.WriteFile(cfgPath, []byte("director: second\nstep: 2s\nipvs: {backend: fake, proc_root: /elsewhere}\nvirtual_services:\n  - {name: web, address: 10.0.0.1, port: 80}\n  - {name: dns, address: 10.0.0.1, port: 53, protocol: udp}\n"), 0o644)
	d.cmd.Process.Signal(syscall.SIGHUP)
	d.waitLog(t, "config reloaded")
	d.waitLog(t, "takes effect at the next restart")
	st := getStatus(t, base)
	if st.Director != "second" || len(st.Services) != 2 {
		t.Errorf("after reload: %+v", st)
	}
	// The file watcher sees the new content too, and knows it was read.
	d.waitLog(t, "a reload has already read it")
	if n := strings.Count(d.logText(), `msg="config reloaded"`); n != 1 {
		t.Errorf("the new config was applied %d times", n)
	}
	d.stop(t)
	if !strings.Contains(d.logText(), "the IPVS table was left as it is") {
		t.Errorf("no clean-stop line:\n%s", d.logText())
	}
}

func TestRunRejectsInvalidConfigAtStart(t *testing.T) {
	cfgPath := writeFile(t, "bad.yaml", "ipvs: {backend: ipvsadm}\n")
	var out, errb bytes.Buffer
	code := run(context.Background(), []string{"run", "--config", cfgPath}, &out, &errb)
	if code != 1 || !strings.Contains(errb.String(), `bad.yaml:1: ipvs.backend: unknown backend "ipvsadm"`) {
		t.Errorf("exit %d, stderr %s", code, errb.String())
	}
}

func TestDemoCountersMove(t *testing.T) {
	d := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "1s", "--speed", "60")
	base := d.url(t)
	var first statusBody
	deadline := time.Now().Add(20 * time.Second)
	for {
		first = getStatus(t, base)
		if first.Collector.Samples >= 1 && first.Totals.Conns > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no traffic: %+v", first)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if first.Director != "demo-director" || len(first.Services) != 3 {
		t.Fatalf("demo status = %+v", first)
	}
	for _, s := range first.Services {
		if !s.InKernel || len(s.RealServers) < 2 {
			t.Errorf("service %s: %+v", s.Name, s)
		}
	}
	var second statusBody
	for {
		second = getStatus(t, base)
		if second.Collector.Samples > first.Collector.Samples+1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("collector stopped sampling")
		}
		time.Sleep(200 * time.Millisecond)
	}
	// 3 services with 7 real servers, plus the director: 11 RRD files
	// (12 once the timeline has brought the sorry server in).
	if second.RRD.Files < 11 || second.RRD.Files > 12 || second.RRD.Updates == 0 || second.RRD.Errors != 0 {
		t.Errorf("RRD store in the demo: %+v", second.RRD)
	}
	if second.Totals.Conns <= first.Totals.Conns {
		t.Errorf("counters did not move: %d then %d", first.Totals.Conns, second.Totals.Conns)
	}
	// At 60x, the timeline's first outage (2 simulated minutes in) comes
	// after 2 real seconds.
	d.waitLog(t, "demo timeline: real server goes down")
	for _, path := range []string{"/", "/graphs/director/conns.png?range=hour", "/service/tcp_198.51.100.10_80?range=hour",
		"/graphs/service/tcp_198.51.100.10_80/rate.svg?range=hour&width=600&height=200", "/api/v1/events"} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || len(body) < 100 {
			t.Errorf("GET %s: %d %.200s", path, resp.StatusCode, body)
		}
		if strings.HasSuffix(strings.Split(path, "?")[0], ".png") && !bytes.HasPrefix(body, []byte("\x89PNG")) {
			t.Errorf("GET %s: not a PNG", path)
		}
	}
	var ev struct {
		Events []struct{ Kind, Server string } `json:"events"`
	}
	resp, _ := http.Get(base + "/api/v1/events")
	json.NewDecoder(resp.Body).Decode(&ev)
	resp.Body.Close()
	kinds := map[string]bool{}
	for _, e := range ev.Events {
		kinds[e.Kind] = kinds[e.Kind] || e.Kind != "simulated_down" || e.Server != ""
	}
	// The timeline's outage names its server; the simulated HA pair
	// reports its role at start.
	if !kinds["simulated_down"] || !kinds["role_change"] {
		t.Errorf("demo events = %+v, want a simulated_down with its server and a role_change", ev.Events)
	}
	resp, _ = http.Get(base + "/")
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !bytes.Contains(page, []byte("HA role: <span")) || !bytes.Contains(page, []byte("VI_DEMO")) {
		t.Errorf("the status page shows no HA role:\n%.2000s", page)
	}
	d.stop(t)
}
