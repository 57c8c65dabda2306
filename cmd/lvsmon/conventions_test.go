package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// testLDFlags are what the Makefile passes, with values of the tests'
// own, for the binary TestMain builds.
const testLDFlags = "-X " + pkg + ".Version=9.8.7-test -X " + pkg + ".Revision=0123456789abcdef0123456789abcdef01234567 " +
	"-X " + pkg + ".Branch=test-branch -X " + pkg + ".User=tester@buildhost -X " + pkg + ".Date=2025-01-02T03:04:05Z"

// pkg is where the build variables live.
const pkg = "github.com/lvsmon/lvsmon/internal/buildinfo"

// `lvsmon version` prints what -ldflags set, as Prometheus' tools print
// their builds.
func TestVersionOfTheBinary(t *testing.T) {
	b, err := exec.Command(binary, "version").Output()
	out := string(b)
	if err != nil {
		t.Fatalf("lvsmon version: %v\n%s", err, out)
	}
	want := fmt.Sprintf(`lvsmon, version 9.8.7-test (branch: test-branch, revision: 0123456789abcdef0123456789abcdef01234567)
  build user:       tester@buildhost
  build date:       2025-01-02T03:04:05Z
  go version:       %s
  platform:         %s/%s
  tags:             none
`, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	if out != want {
		t.Errorf("lvsmon version:\n%s\nwant:\n%s", out, want)
	}
}

// The Makefile sets every build variable the binary reads.
func TestMakefileSetsBuildInfo(t *testing.T) {
	mk, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{"Version", "Revision", "Branch", "User", "Date"} {
		if !regexp.MustCompile(`-X \$\(BUILDINFO\)\.` + v + `=\$\(\w+\)`).Match(mk) {
			t.Errorf("the Makefile's LDFLAGS do not set buildinfo.%s", v)
		}
	}
}

// Both spellings of a flag work; both with different values is a usage
// error, and -h lists each flag once with both.
func TestFlagSpellings(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		out  []string
		err  []string
	}{
		{"old spellings", []string{"demo", "--listen", "127.0.0.1:9", "--log-level", "warn", "--print-config"}, 0, []string{`listen: ["127.0.0.1:9"]`}, nil},
		{"Prometheus spellings", []string{"demo", "--web.listen-address", "127.0.0.1:9", "--log.level", "warn", "--log.format", "json", "--print-config"}, 0, []string{`listen: ["127.0.0.1:9"]`}, nil},
		{"repeated listen", []string{"demo", "--web.listen-address", "127.0.0.1:9", "--web.listen-address", "[::1]:9", "--print-config"}, 0, []string{`listen: ["127.0.0.1:9", "[::1]:9"]`}, nil},
		{"both listen spellings, one value", []string{"demo", "--web.listen-address", "127.0.0.1:9", "--listen", "127.0.0.1:9", "--print-config"}, 0, []string{`listen: ["127.0.0.1:9"]`}, nil},
		{"both listen spellings, two values", []string{"demo", "--web.listen-address", "127.0.0.1:9", "--listen", "127.0.0.1:8", "--print-config"}, 2, nil,
			[]string{"--web.listen-address and --listen are one flag"}},
		{"both log level spellings, two values", []string{"demo", "--log.level", "debug", "--log-level", "info", "--print-config"}, 2, nil,
			[]string{"--log.level and --log-level are one flag"}},
		{"both log level spellings, one value", []string{"demo", "--log.level", "debug", "--log-level", "debug", "--print-config"}, 0, nil, nil},
		{"both config spellings, two values", []string{"run", "--config.file", "/a.yaml", "--config", "/b.yaml"}, 2, nil,
			[]string{"--config.file and --config are one flag"}},
		{"config.file read", []string{"run", "--config.file", "/nonexistent/lvsmon.yaml"}, 1, nil, []string{"/nonexistent/lvsmon.yaml"}},
		{"listen twice", []string{"demo", "--listen", "127.0.0.1:9", "--listen", "127.0.0.1:9", "--print-config"}, 2, nil, []string{`"127.0.0.1:9" is given twice`}},
		{"bad listen", []string{"run", "--web.listen-address", "nowhere"}, 2, nil, []string{`--web.listen-address: "nowhere" is not host:port`}},
		{"bad telemetry path", []string{"demo", "--web.telemetry-path", "/api/metrics"}, 2, nil, []string{"--web.telemetry-path:"}},
		{"bad log format", []string{"demo", "--log.format", "xml"}, 2, nil, []string{`--log.format "xml"`}},
		{"bad log format, old spelling", []string{"demo", "--log-format", "xml"}, 2, nil, []string{`--log-format "xml"`}},
		{"help of run", []string{"run", "-h"}, 0, nil, []string{
			"--config.file file, --config file", "--web.listen-address host:port, --listen host:port", "--web.telemetry-path path",
			"(default /metrics)", "--log.level level, --log-level level", "--log.format format, --log-format format", "--data-dir directory"}},
		{"help of test-alert", []string{"test-alert", "-h"}, 0, nil, []string{"--config.file file, --config file"}},
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

const conventionsCfg = `director: conv
step: 1s
ipvs: {backend: fake}
web: {api_token: "0123456789abcdef-token"%s}
virtual_services:
  - {name: web, address: 10.0.0.1, port: 80, real_servers: [{address: 10.0.1.1}]}
`

var startedRe = regexp.MustCompile(`msg="lvsmon started".* listen=(\S+)`)

// httpGet returns a GET's status, Content-Type and body, with extra
// request headers.
func httpGet(t *testing.T, url string, hdr ...string) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("Content-Type"), string(b)
}

// The real binary with the Prometheus-style flags: two listen addresses
// (both serve, both are reported), the metrics at the telemetry path
// only, in text or OpenMetrics as asked, /-/healthy and /-/ready,
// lvsmon_build_info's labels from -ldflags.
func TestDaemonConventions(t *testing.T) {
	d := startDaemon(t, "run", "--config.file", writeFile(t, "lvsmon.yaml", fmt.Sprintf(conventionsCfg, "")),
		"--web.listen-address", "127.0.0.1:0", "--web.listen-address", "127.0.0.2:0", "--web.telemetry-path", "/prom",
		"--log.level", "debug", "--data-dir", t.TempDir())
	d.url(t)
	m := startedRe.FindStringSubmatch(d.logText())
	if m == nil {
		t.Fatalf("no start line:\n%s", d.logText())
	}
	addrs := strings.Split(m[1], ",")
	if len(addrs) != 2 || !strings.HasPrefix(addrs[0], "127.0.0.1:") || !strings.HasPrefix(addrs[1], "127.0.0.2:") {
		t.Fatalf("the start line names %q", addrs)
	}
	for _, a := range addrs {
		base := "http://" + a
		if code, _, body := httpGet(t, base+"/-/healthy"); code != 200 {
			t.Errorf("%s/-/healthy: %d %s", base, code, body)
		}
		testutil.WaitFor(t, "ready on "+a, func() bool { code, _, _ := httpGet(t, base+"/-/ready"); return code == 200 })
	}
	base := "http://" + addrs[1]
	if code, _, _ := httpGet(t, base+"/metrics"); code != 404 {
		t.Errorf("/metrics with --web.telemetry-path /prom: %d, want 404", code)
	}
	code, ct, text := httpGet(t, base+"/prom")
	if code != 200 || ct != "text/plain; version=0.0.4; charset=utf-8" {
		t.Fatalf("/prom: %d %s", code, ct)
	}
	wantInfo := fmt.Sprintf(`lvsmon_build_info{branch="test-branch",builddate="2025-01-02T03:04:05Z",goarch=%q,goos=%q,goversion=%q,revision="0123456789abcdef0123456789abcdef01234567",tags="",version="9.8.7-test"} 1`+"\n",
		runtime.GOARCH, runtime.GOOS, runtime.Version())
	if !strings.Contains(text, wantInfo) {
		t.Errorf("/prom lacks %s", wantInfo)
	}
	code, ct, om := httpGet(t, base+"/prom", "Accept", "application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5")
	if code != 200 || ct != "application/openmetrics-text; version=1.0.0; charset=utf-8" || !strings.HasSuffix(om, "\n# EOF\n") ||
		!strings.Contains(om, strings.Replace(wantInfo, "} 1\n", "} 1.0\n", 1)) {
		t.Errorf("/prom as OpenMetrics: %d %s:\n%s", code, ct, om)
	}
	d.stop(t)
}

// A forged X-Forwarded-For is not believed unless the proxy it came
// through is trusted: the override's "by", its event and the access log
// name the connection's address; with web.trusted_proxies naming it,
// the forwarded client.
func TestForwardedForIsBelievedFromTrustedProxiesOnly(t *testing.T) {
	const forged = "203.0.113.66"
	for _, tc := range []struct {
		name, web, want string
	}{
		{"trusted_proxies unset", "", "127.0.0.1"},
		{"the proxy trusted", ", trusted_proxies: [127.0.0.1]", forged},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := startDaemon(t, "run", "--config", writeFile(t, "lvsmon.yaml", fmt.Sprintf(conventionsCfg, tc.web)),
				"--listen", "127.0.0.1:0", "--log-level", "debug", "--data-dir", t.TempDir())
			base := d.url(t)
			req, _ := http.NewRequest("POST", base+"/api/v1/servers/tcp_10.0.0.1_80__10.0.1.1_80/drain", nil)
			req.Header.Set("Authorization", "Bearer 0123456789abcdef-token")
			req.Header.Set("X-Forwarded-For", forged)
			req.Header.Set("X-Real-IP", forged)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Fatalf("drain: %d", resp.StatusCode)
			}
			st := ctlGet(t, base)
			if by := st.Services[0].RealServers[0].Override["by"]; by != tc.want {
				t.Errorf("override by %v, want %s", by, tc.want)
			}
			var evs struct {
				Events []struct {
					Kind    string `json:"kind"`
					Message string `json:"message"`
				} `json:"events"`
			}
			getJSON(t, base+"/api/v1/events", &evs)
			found := false
			for _, e := range evs.Events {
				if e.Kind == "override" {
					found = true
					if !strings.HasSuffix(e.Message, "set by "+tc.want) {
						t.Errorf("override event: %q", e.Message)
					}
				}
			}
			if !found {
				t.Errorf("no override event in %+v", evs)
			}
			deadline := time.Now().Add(10 * time.Second)
			for !regexp.MustCompile(`msg="http request" .*method=POST path=/api/v1/servers/\S+ status=200 .*remote=` + regexp.QuoteMeta(tc.want) + `\n`).MatchString(d.logText()) {
				if time.Now().After(deadline) {
					t.Fatalf("the access log does not name %s:\n%s", tc.want, d.logText())
				}
				time.Sleep(50 * time.Millisecond)
			}
			if tc.want != forged && strings.Contains(d.logText(), forged) {
				t.Errorf("the forged address reached the log:\n%s", d.logText())
			}
			d.stop(t)
		})
	}
}
