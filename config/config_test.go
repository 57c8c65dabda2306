package config

import (
	"errors"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// The example from the project's spec, verbatim in shape.
const example = `listen: ":9160"
data_dir: /var/lib/lvsmon
step: 10s                  # collector sampling / RRD step
ipvs:
  backend: netlink         # netlink | procfs | fake
virtual_services:
  - name: web
    protocol: tcp
    address: 10.0.0.100
    port: 80
    scheduler: wrr
    persistence: 0s
    managed: true
    on_failure: quiescent
    sorry_server: {address: 127.0.0.1, port: 80, forward: dr}
    check: {type: http, path: /.health.html, expect: "OK", interval: 1s, timeout: 3s, rise: 1, fall: 1}
    real_servers:
      - {address: 10.0.1.13, port: 80, weight: 1, forward: dr}
`

func TestParseExample(t *testing.T) {
	c, err := Parse("example.yaml", []byte(example))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	if len(c.Warnings) != 0 {
		t.Errorf("warnings: %v", c.Warnings)
	}
	if c.Step.D() != 10*time.Second || c.Listen.String() != ":9160" || c.IPVS.Backend != "netlink" {
		t.Errorf("top level = %+v", c)
	}
	vs := c.VirtualServices[0]
	want := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.100"), 80)
	if vs.Key != want || !vs.IsManaged() || vs.Check.Interval.D() != time.Second {
		t.Errorf("service = %+v", vs)
	}
	r := vs.Reals[0]
	if r.Key != (lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.13"), Port: 80}) || r.ConfiguredWeight() != 1 || r.Fwd != lvs.DR {
		t.Errorf("real = %+v", r)
	}
	if c.Service(want) == nil || c.Service(want).Real(r.Key) == nil {
		t.Error("lookups failed")
	}
}

func TestDefaults(t *testing.T) {
	c, err := Parse("d.yaml", []byte(`virtual_services:
  - address: "2001:db8::1"
    port: 443
    check: {type: https}
    real_servers:
      - address: "2001:db8::10"
  - fwmark: 10
    family: inet6
    real_servers:
      - {address: "2001:db8::11", port: 8080}
`))
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.String() != DefaultListen || c.DataDir != DefaultDataDir || c.Step.D() != DefaultStep || c.Director == "" {
		t.Errorf("defaults not applied: %+v", c)
	}
	if c.IPVS.Takeover != TakeoverWhenGone || c.IPVS.TakeoverAfter.D() != 3*DefaultStep {
		t.Errorf("ipvs takeover defaults: %+v", c.IPVS)
	}
	vs := c.VirtualServices[0]
	if vs.Scheduler != "wlc" || vs.Protocol != "tcp" || vs.OnFailure != "quiescent" || vs.Reals[0].Port != 443 || vs.Reals[0].Fwd != lvs.DR {
		t.Errorf("service defaults: %+v", vs)
	}
	if ch := vs.Check; ch.Interval.D() != DefaultInterval || ch.Timeout.D() != DefaultTimeout || ch.Rise != 1 || ch.Fall != 1 || ch.Path != "/" {
		t.Errorf("check defaults: %+v", ch)
	}
	fw := c.VirtualServices[1]
	if fw.Key != lvs.MarkKey(10, lvs.IPv6) {
		t.Errorf("fwmark key = %v", fw.Key)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // substrings of the error, one per expected problem, in order
	}{
		{"unknown top-level key", "lisen: x\n", []string{`t.yaml:1: lisen: unknown key "lisen" (did you mean "listen"?)`}},
		{"unknown nested keys all reported", `virtual_services:
  - address: 10.0.0.1
    port: 80
    colour: red
    real_servers:
      - {address: 10.0.1.1, wieght: 2}
`, []string{`t.yaml:4: virtual_services[0].colour: unknown key`, `t.yaml:6: virtual_services[0].real_servers[0].wieght: unknown key "wieght" (did you mean "weight"?)`}},
		{"syntax error has a line", "listen: [\n", []string{"t.yaml:1: did not find expected node content"}},
		{"type error has a line", "virtual_services:\n  - address: 10.0.0.1\n    port: eighty\n", []string{"t.yaml:3: cannot unmarshal"}},
		{"bad duration", "step: 10\n", []string{`t.yaml:1: "10" is not a duration`}},
		{"step too short", "step: 500ms\n", []string{"t.yaml:1: step: 500ms is too short"}},
		{"fractional step", "step: 1500ms\n", []string{"not a whole number of seconds"}},
		{"bad backend", "ipvs:\n  backend: ipvsadm\n", []string{`t.yaml:2: ipvs.backend: unknown backend "ipvsadm"`}},
		{"bad listen", "listen: 9160\n", []string{"t.yaml:1: listen:"}},
		{"bad address", "virtual_services:\n  - {address: 10.0.0.300, port: 80}\n", []string{`t.yaml:2: virtual_services[0].address: "10.0.0.300" is not an IP address`}},
		{"port out of range", "virtual_services:\n  - {address: 10.0.0.1, port: 70000}\n", []string{"port 70000 is out of range"}},
		{"port zero without persistence", "virtual_services:\n  - {address: 10.0.0.1}\n", []string{"missing port"}},
		{"bad protocol", "virtual_services:\n  - {address: 10.0.0.1, port: 80, protocol: icmp}\n", []string{`unknown protocol "icmp"`}},
		{"bad scheduler", "virtual_services:\n  - {address: 10.0.0.1, port: 80, scheduler: fastest}\n", []string{`unknown scheduler "fastest"`}},
		{"fwmark with port", "virtual_services:\n  - {fwmark: 5, port: 80}\n", []string{"a fwmark service has no port"}},
		{"fwmark real without port", "virtual_services:\n  - fwmark: 5\n    real_servers: [{address: 10.0.1.1}]\n", []string{"t.yaml:3: virtual_services[0].real_servers[0].port: missing port"}},
		{"duplicate service", `virtual_services:
  - {address: 10.0.0.1, port: 80}
  - {address: 10.0.0.1, port: 80, name: other}
`, []string{"t.yaml:3: virtual_services[1]: service TCP 10.0.0.1:80 is defined twice (first at line 2)"}},
		{"same address other protocol is fine, same name is not", `virtual_services:
  - {name: a, address: 10.0.0.1, port: 53, protocol: udp}
  - {name: a, address: 10.0.0.1, port: 53, protocol: tcp}
`, []string{`t.yaml:3: virtual_services[1].name: name "a" is used twice`}},
		{"duplicate real server", `virtual_services:
  - address: 10.0.0.1
    port: 80
    real_servers:
      - {address: 10.0.1.1}
      - {address: 10.0.1.1, port: 80}
`, []string{"t.yaml:6: virtual_services[0].real_servers[1]: real server 10.0.1.1:80 is listed twice"}},
		{"family mismatch", `virtual_services:
  - address: 10.0.0.1
    port: 80
    real_servers: [{address: "2001:db8::1"}]
`, []string{"is not in the service's address family (inet)"}},
		{"dr cannot change port", `virtual_services:
  - address: 10.0.0.1
    port: 80
    real_servers: [{address: 10.0.1.1, port: 8080}]
`, []string{"only NAT can rewrite ports"}},
		{"weight range", "virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    real_servers: [{address: 10.0.1.1, weight: -1}]\n", []string{"weight -1 is out of range"}},
		{"bad forward", "virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    real_servers: [{address: 10.0.1.1, forward: magic}]\n", []string{`unknown forwarding method "magic"`}},
		{"check problems all reported", `virtual_services:
  - address: 10.0.0.1
    port: 80
    check: {type: gopher, interval: 10ms, timeout: -1s, rise: 0, fall: 200, path: health}
`, []string{`unknown check type "gopher"`, "10ms is too short", "timeout must be positive", "fall 200 is out of range", `path "health" must start with /`}},
		{"sorry server that is also a real server", `virtual_services:
  - address: 10.0.0.1
    port: 80
    sorry_server: {address: 10.0.1.1}
    real_servers: [{address: 10.0.1.1}]
`, []string{"the sorry server 10.0.1.1:80 is also a real server"}},
		{"two documents", "listen: ':1'\n---\nlisten: ':2'\n", []string{"more than one YAML document"}},
		{"empty", "", []string{"the file is empty"}},
		{"graphs section", "ipvs: {proc_hz: 123}\ngraphs:\n  rrdcached: nowhere\n  archive_after: 5m\n  archive_schedule: daily\n", []string{
			"t.yaml:1: ipvs.proc_hz: 123 is not a Linux CONFIG_HZ", "t.yaml:3: graphs.rrdcached:", "t.yaml:4: graphs.archive_after: 5m0s is too short", `t.yaml:5: graphs.archive_schedule: "daily" is not a cron schedule`}},
		{"takeover", "ipvs:\n  takeover: fight\n  takeover_after: 5s\n", []string{
			`t.yaml:2: ipvs.takeover: unknown value "fight" (want when_gone or always)`, "t.yaml:3: ipvs.takeover_after: 5s must be at least the step (10s) and at most 24h"}},
		{"takeover_after too long", "ipvs: {takeover_after: 25h}\n", []string{"ipvs.takeover_after: 25h0m0s must be at least the step"}},
		{"write_every", "step: 10s\ngraphs: {write_every: 15s}\n", []string{"t.yaml:2: graphs.write_every: 15s must be a multiple of the step (10s)"}},
		{"check and checks", "virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    check: {type: tcp}\n    checks: [{type: http}, {type: gopher}]\n", []string{
			"t.yaml:5: virtual_services[0].checks: set check (one) or checks (several), not both", `t.yaml:5: virtual_services[0].checks[1].type: unknown check type "gopher"`}},
		{"on_failure", "virtual_services:\n  - {address: 10.0.0.1, port: 80, on_failure: panic}\n", []string{`unknown value "panic"`}},
		{"netmask without persistence", "virtual_services:\n  - {address: 10.0.0.1, port: 80, persistence_netmask: 24}\n", []string{"only makes sense with persistence"}},
		{"http check fields", `virtual_services:
  - address: 10.0.0.1
    port: 80
    check:
      type: http
      method: POST
      status: 200-299,abc
      expect: "(unclosed"
      max_body: -1
      host: "www.example.org/path"
      retries: 11
`, []string{
			`t.yaml:6: virtual_services[0].check.method: unknown method "POST" (want GET or HEAD)`,
			`t.yaml:7: virtual_services[0].check.status: "abc" is not a status code or range`,
			`t.yaml:8: virtual_services[0].check.expect: "(unclosed" is not a regular expression: error parsing regexp: missing closing )`,
			`t.yaml:9: virtual_services[0].check.max_body: -1 bytes is out of range 1-67108864`,
			`t.yaml:10: virtual_services[0].check.host: "www.example.org/path" is not a Host header value`,
			`t.yaml:11: virtual_services[0].check.retries: retries 11 is out of range 0-10`}},
		{"HEAD has no body to match", "virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    check: {type: http, method: head, expect: OK}\n", []string{
			"t.yaml:4: virtual_services[0].check.expect: a HEAD request gets no body to match; use method: GET"}},
		{"status out of range", "virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    check: {type: http, status: 299-200}\n", []string{`"299-200" is not a range of status codes within 100-599`}},
		{"https fields", `virtual_services:
  - address: 10.0.0.1
    port: 443
    check: {type: https, sni: 10.0.0.1, tls_ca: /nonexistent/ca.pem}
`, []string{
			"t.yaml:4: virtual_services[0].check.sni: 10.0.0.1 is an address; SNI carries a host name",
			"t.yaml:4: virtual_services[0].check.tls_ca: a CA file does nothing without tls_verify: true",
			"t.yaml:4: virtual_services[0].check.tls_ca: open /nonexistent/ca.pem: no such file or directory"}},
		{"keys another type reads", `virtual_services:
  - address: 10.0.0.1
    port: 80
    check:
      type: tcp
      expect: OK
      path: /
      sni: www.example.org
`, []string{
			"t.yaml:6: virtual_services[0].check.expect: expect does nothing for a tcp check (it is read by dns, ftp, http, https, imap, mysql, pgsql, pop3, simpletcp, smtp, udp)",
			"t.yaml:7: virtual_services[0].check.path: path does nothing for a tcp check (it is read by http, https)",
			"t.yaml:8: virtual_services[0].check.sni: sni does nothing for a tcp check (it is read by https)"}},
		{"dns fields", `virtual_services:
  - address: 10.0.0.1
    port: 53
    protocol: udp
    check: {type: dns, query_type: ANY, expect: 192.0.2.1}
  - address: 10.0.0.2
    port: 53
    protocol: udp
    check: {type: dns, query_name: "www..example.org", expect: "2001:db8::1"}
`, []string{
			`t.yaml:5: virtual_services[0].check.query_type: unknown query type "ANY"`,
			`t.yaml:5: virtual_services[0].check.query_name: a dns check needs the name to ask for`,
			`t.yaml:9: virtual_services[1].check.query_name: "www..example.org" is not a domain name`,
			`t.yaml:9: virtual_services[1].check.expect: "2001:db8::1" is not an IPv4 address, as an A record holds`}},
		{"send escapes", "virtual_services:\n  - address: 10.0.0.1\n    port: 7\n    protocol: udp\n    check: {type: udp, send: 'PING\\q'}\n", []string{`t.yaml:5: virtual_services[0].check.send: "PING\\q": unknown escape \q`}},
		{"external without command", "virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    check: {type: external, args: [-v]}\n  - address: 10.0.0.2\n    port: 80\n    check: {type: external, command: bin/check}\n", []string{
			"t.yaml:4: virtual_services[0].check.command: an external check needs a command",
			`t.yaml:7: virtual_services[1].check.command: "bin/check" is relative to wherever lvsmon was started`}},
		{"smtp ehlo", "virtual_services:\n  - address: 10.0.0.1\n    port: 25\n    check: {type: smtp, ehlo: 'two words'}\n", []string{`t.yaml:4: virtual_services[0].check.ehlo: "two words" is not a host name to greet with`}},
		{"check port on an all-ports service", "virtual_services:\n  - address: 10.0.0.1\n    persistence: 300s\n    check: {type: http}\n    real_servers: [{address: 10.0.1.1}]\n", []string{
			"t.yaml:4: virtual_services[0].check.port: http checks connect to a port, and the real servers of an all-ports service have none: set the check's port"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectProblems(t, tc.yaml, tc.want) })
	}
}

// expectProblems parses yaml as t.yaml and wants exactly the problems
// want (substrings, in order).
func expectProblems(t *testing.T, yaml string, want []string) {
	t.Helper()
	_, err := Parse("t.yaml", []byte(yaml))
	if err == nil {
		t.Fatal("Parse succeeded, want errors")
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %T is not Errors: %v", err, err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		if !strings.Contains(errs[i].String(), w) {
			t.Errorf("problem %d = %q, want it to contain %q", i, errs[i].String(), w)
		}
	}
}

func TestWarnings(t *testing.T) {
	c, err := Parse("w.yaml", []byte(`virtual_services:
  - address: 10.0.0.1
    port: 80
    check: {type: http, interval: 1s, timeout: 5s}
    sorry_server: {address: 127.0.0.1, forward: nat}
`))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 {
		t.Fatalf("warnings = %v", c.Warnings)
	}
	if !strings.Contains(c.Warnings[0].String(), "w.yaml:5: virtual_services[0].sorry_server.forward: NAT to the loopback address") {
		t.Errorf("warning 0 = %s", c.Warnings[0])
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("err = %v", err)
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte(example))
	f.Add([]byte("virtual_services:\n  - {fwmark: 1, family: inet6, real_servers: [{address: '::1', port: 1}]}\n"))
	f.Add([]byte("a: &x {b: 1}\nc: *x\n"))
	f.Add([]byte("virtual_services: [{<<: {address: 10.0.0.1}, port: 80}]\n"))
	// Aliases and merge keys: bombs (refused), cycles, merges from lists.
	f.Add([]byte(mergeBomb(4, true)))
	f.Add([]byte(mergeBomb(24, false)))
	f.Add([]byte(laughs()))
	f.Add([]byte("virtual_services:\n  - &a {name: x, <<: *a}\n"))
	f.Add([]byte("<<: &a {director: x, <<: *a}\n"))
	f.Add([]byte("virtual_services: &l [*l]\n"))
	f.Add([]byte("virtual_services:\n  - {name: a, address: 10.0.0.1, port: 80, <<: &t {scheduler: rr}}\n  - {<<: [*t, {persistence: 1s}], address: 10.0.0.2, port: 80, check: &c {type: tcp}}\n  - {<<: *t, address: 10.0.0.3, port: 80, check: *c, real_servers: [&r {address: 10.1.0.1, port: 80}, {<<: *r, address: 10.1.0.2}]}\n"))
	f.Add([]byte("ha: &h {grace: 1s, vips: [10.0.0.1]}\nalerting: {<<: *h}\n"))
	f.Add([]byte("alerting:\n  alertmanager: {urls: [http://a:9093], labels: {team: x}}\n  webhooks: [{name: a, url: 'http://h/', headers: {X: y}, body_template: '{{json .}}'}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse("fuzz.yaml", data)
		if err == nil {
			if c == nil {
				t.Fatal("nil config without error")
			}
			return
		}
		var errs Errors
		if !errors.As(err, &errs) || len(errs) == 0 {
			t.Fatalf("error is not a non-empty Errors: %T %v", err, err)
		}
	})
}

func TestMetricsSection(t *testing.T) {
	tests := []struct {
		name, yaml string
		compat     bool
		err        string
	}{
		{"absent: lvsmon names only", "step: 10s\n", false, ""},
		{"node_exporter names too", "metrics:\n  node_exporter_compatible: true\n", true, ""},
		{"typo is an error with its line", "metrics:\n  node_exporter_compatibel: true\n", false,
			`t.yaml:2: metrics.node_exporter_compatibel: unknown key "node_exporter_compatibel" (did you mean "node_exporter_compatible"?)`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.yaml))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.Metrics.NodeExporterCompatible != tc.compat {
				t.Errorf("node_exporter_compatible = %v, want %v", c.Metrics.NodeExporterCompatible, tc.compat)
			}
		})
	}
}

func TestWebSection(t *testing.T) {
	c, err := Parse("t.yaml", []byte("step: 10s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Web; w.MaxConnections != 256 || w.MaxConcurrentRequests != 8 || w.IdleTimeout.D() != 30*time.Second || w.GraphCacheMB != 64 {
		t.Errorf("web defaults: %+v", w)
	}
	c, err = Parse("t.yaml", []byte("web:\n  max_connections: 1000\n  max_concurrent_requests: 2\n  idle_timeout: 5s\n  graph_cache_mb: 16\n"))
	if err != nil {
		t.Fatal(err)
	}
	if w := c.Web; w.MaxConnections != 1000 || w.MaxConcurrentRequests != 2 || w.IdleTimeout.D() != 5*time.Second || w.GraphCacheMB != 16 {
		t.Errorf("web: %+v", w)
	}
	for _, tc := range []struct {
		name, yaml string
		want       []string
	}{
		{"too few connections", "web:\n  max_connections: 4\n", []string{"t.yaml:2: web.max_connections: 4 is out of range 16-1000000"}},
		{"negative", "web:\n  max_concurrent_requests: -1\n  graph_cache_mb: -5\n", []string{
			"t.yaml:2: web.max_concurrent_requests: -1 is out of range 1-1024", "t.yaml:3: web.graph_cache_mb: -5 is out of range"}},
		{"idle timeout", "web: {idle_timeout: 2h}\n", []string{"t.yaml:1: web.idle_timeout: 2h0m0s is out of range 1s-1h"}},
		{"idle timeout without unit", "web:\n  idle_timeout: 30\n", []string{`t.yaml:2: "30" is not a duration`}},
		{"typo", "web:\n  max_conections: 10\n", []string{`t.yaml:2: web.max_conections: unknown key "max_conections" (did you mean "max_connections"?)`}},
	} {
		t.Run(tc.name, func(t *testing.T) { expectProblems(t, tc.yaml, tc.want) })
	}
}

// listen takes one host:port or a list; each is checked with its line
// and none may be given twice.
func TestListen(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		want []string // the addresses, or nil when it must fail
		errs []string
	}{
		{"absent: the default", "step: 10s\n", []string{DefaultListen}, nil},
		{"one, as before", "listen: 127.0.0.1:9160\n", []string{"127.0.0.1:9160"}, nil},
		{"empty string: the default", "listen: ''\n", []string{DefaultListen}, nil},
		{"a list", "listen:\n  - 127.0.0.1:9160\n  - '[2001:db8::1]:9160'\n", []string{"127.0.0.1:9160", "[2001:db8::1]:9160"}, nil},
		{"a flow list", "listen: ['127.0.0.1:9160', '192.0.2.1:9160']\n", []string{"127.0.0.1:9160", "192.0.2.1:9160"}, nil},
		{"port 0 twice: two free ports", "listen: ['127.0.0.1:0', '127.0.0.1:0']\n", []string{"127.0.0.1:0", "127.0.0.1:0"}, nil},
		{"empty list", "listen: []\n", nil, []string{"t.yaml:1: listen: an empty list"}},
		{"one bad in a list, with its line", "listen:\n  - 127.0.0.1:9160\n  - nowhere\n  - ':99999'\n", nil, []string{
			`t.yaml:3: listen[1]: "nowhere" is not host:port`, `t.yaml:4: listen[2]: ":99999": port "99999" is not a number`}},
		{"twice", "listen:\n  - 127.0.0.1:9160\n  - 127.0.0.1:09160\n", nil, []string{"t.yaml:3: listen[1]: 127.0.0.1:09160 is listed twice (first at line 2)"}},
		{"a mapping", "listen: {address: x}\n", nil, []string{"t.yaml:1: want host:port or a list of them, got a mapping"}},
		{"a list in the list", "listen:\n  - [a, b]\n", nil, []string{"t.yaml:2: want host:port, got a list"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte(tc.yaml))
			if tc.want != nil {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(c.Listen, tc.want) {
					t.Errorf("listen = %q, want %q", c.Listen, tc.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("accepted: %q", c.Listen)
			}
			for _, w := range tc.errs {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if n := len(err.(Errors)); n != len(tc.errs) {
				t.Errorf("%d problems, want %d:\n%v", n, len(tc.errs), err)
			}
		})
	}
}

func TestCheckListen(t *testing.T) {
	for _, tc := range []struct {
		addrs []string
		err   string
	}{
		{[]string{":9160"}, ""},
		{[]string{"127.0.0.1:9160", "[::1]:9160"}, ""},
		{nil, "no listen address"},
		{[]string{"localhost"}, "is not host:port"},
		{[]string{"127.0.0.1:9160", "127.0.0.1:9160"}, "given twice"},
	} {
		err := CheckListen(tc.addrs)
		if (err == nil) != (tc.err == "") || err != nil && !strings.Contains(err.Error(), tc.err) {
			t.Errorf("CheckListen(%q) = %v, want %q", tc.addrs, err, tc.err)
		}
	}
}

// web.trusted_proxies: addresses and prefixes, strictly; empty trusts none.
func TestTrustedProxies(t *testing.T) {
	c, err := Parse("t.yaml", []byte("web:\n  trusted_proxies: [127.0.0.1, '10.0.0.0/8', '2001:db8::/32', '::1']\n"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"127.0.0.1", "10.0.0.0/8", "2001:db8::/32", "::1"}; !slices.Equal(c.Web.TrustedProxies, want) {
		t.Errorf("trusted_proxies = %q", c.Web.TrustedProxies)
	}
	if c, _ := Parse("t.yaml", []byte("step: 10s\n")); len(c.Web.TrustedProxies) != 0 {
		t.Errorf("default trusts %q", c.Web.TrustedProxies)
	}
	_, err = Parse("t.yaml", []byte(`web:
  trusted_proxies:
    - 10.0.0.1/8
    - proxy.example.com
    - 127.0.0.1
    - 127.0.0.1/32
    - fe80::1%eth0
    - 10.0.0.0/33
`))
	for _, w := range []string{
		`t.yaml:3: web.trusted_proxies[0]: "10.0.0.1/8" has bits set past the prefix length; write 10.0.0.0/8`,
		`t.yaml:4: web.trusted_proxies[1]: "proxy.example.com" is neither an IP address nor a CIDR prefix`,
		`t.yaml:6: web.trusted_proxies[3]: 127.0.0.1/32 is listed twice (first at line 5)`,
		`t.yaml:7: web.trusted_proxies[4]: "fe80::1%eth0" has a zone`,
		`t.yaml:8: web.trusted_proxies[5]: "10.0.0.0/33" is neither`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}

// The write API's token: at least MinTokenLen bytes, and a token file
// that only its owner may read or write.
func TestAPITokenStrength(t *testing.T) {
	dir := t.TempDir()
	file := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := file("good", "0123456789abcdef\n", 0o600)
	owner := file("owner", "0123456789abcdef\n", 0o400)
	world := file("world", "0123456789abcdef\n", 0o644)
	group := file("group", "0123456789abcdef\n", 0o620)
	short := file("short", "0123456789abcde\n", 0o600)
	for _, tc := range []struct {
		name, web, err string
	}{
		{"token ok", `api_token: "0123456789abcdef"`, ""},
		{"token short", `api_token: "0123456789abcde"`, `t.yaml:3: web.api_token: the token is too short to be a secret (15 bytes; at least 16)`},
		{"file 0600", "api_token_file: " + good, ""},
		{"file 0400", "api_token_file: " + owner, ""},
		{"file 0644", "api_token_file: " + world, "t.yaml:3: web.api_token_file: " + world + " has mode 0644: group or other may read or write the secret; chmod 600 " + world},
		{"file 0620", "api_token_file: " + group, "has mode 0620"},
		{"file short", "api_token_file: " + short, "t.yaml:3: web.api_token_file: the token in " + short + " is too short"},
		{"file missing", "api_token_file: " + filepath.Join(dir, "none"), "t.yaml:3: web.api_token_file: open "},
	} {
		_, err := Parse("t.yaml", []byte("step: 10s\nweb:\n  "+tc.web+"\n"))
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
		}
	}
	// read per request: a token file that turned world-readable, or
	// short, after the load is an error, never a token.
	w := Web{APITokenFile: good}
	if tok, err := w.Token(); tok != "0123456789abcdef" || err != nil {
		t.Fatalf("Token() = %q, %v", tok, err)
	}
	if err := os.Chmod(good, 0o604); err != nil {
		t.Fatal(err)
	}
	if tok, err := w.Token(); tok != "" || err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("after chmod 604: Token() = %q, %v", tok, err)
	}
}

// web.allowed_hosts: bare names and addresses, strictly.
func TestAllowedHosts(t *testing.T) {
	c, err := Parse("t.yaml", []byte("web:\n  allowed_hosts: [lvs1.example.com, 192.0.2.1, '::1', '[2001:db8::1]', localhost]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Web.AllowedHosts) != 5 {
		t.Errorf("allowed_hosts = %q", c.Web.AllowedHosts)
	}
	_, err = Parse("t.yaml", []byte(`web:
  allowed_hosts:
    - lvs1.example.com
    - LVS1.example.com
    - http://lvs1.example.com
    - lvs1.example.com:9160
    - ""
    - bad..name
    - 192.0.2.1
    - 192.0.2.1
`))
	for _, w := range []string{
		`t.yaml:4: web.allowed_hosts[1]: "LVS1.example.com" is listed twice (first at line 3)`,
		`t.yaml:5: web.allowed_hosts[2]: "http://lvs1.example.com": want a bare host name`,
		`t.yaml:6: web.allowed_hosts[3]: "lvs1.example.com:9160": want the host without a port`,
		`t.yaml:7: web.allowed_hosts[4]: empty host name`,
		`t.yaml:8: web.allowed_hosts[5]: "bad..name" is not a host name`,
		`t.yaml:10: web.allowed_hosts[7]: "192.0.2.1" is listed twice (first at line 9)`,
	} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("error lacks %q:\n%v", w, err)
		}
	}
}
