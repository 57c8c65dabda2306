package importer

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	_ "github.com/lvsmon/lvsmon/probe" // registers the check types validation knows
)

// mapSource is a file system in memory, for includes.
type mapSource map[string]string

func (s mapSource) read(path string, _ int64) ([]byte, error) {
	b, ok := s[path]
	if !ok {
		return nil, os.ErrNotExist
	}
	return []byte(b), nil
}

func (s mapSource) glob(pattern string) ([]string, error) {
	var out []string
	for k := range s {
		if ok, _ := filepath.Match(pattern, k); ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out, nil
}

func importK(t *testing.T, files mapSource) (*Result, error) {
	t.Helper()
	return importKeepalived("/etc/keepalived/keepalived.conf", []byte(files["/etc/keepalived/keepalived.conf"]), files, Options{ConfigID: "lvs1"})
}

// entry finds the report entry of a directive at a line.
func entry(r *Result, line int, directive string) *Entry {
	for i, e := range r.Report {
		if e.Line == line && e.Directive == directive {
			return &r.Report[i]
		}
	}
	return nil
}

func TestKeepalivedMapping(t *testing.T) {
	conf := `! ours
global_defs {
  notification_email {
    ops@example.org
    root
  }
  notification_email_from lvs@example.org
  smtp_server 192.0.2.25 2525
  router_id lvs1
}
vrrp_instance VI_1 {
  state MASTER
  virtual_ipaddress { 192.0.2.10 }
}
virtual_server_group WEB {
  192.0.2.10-12 80
  fwmark 7
}
virtual_server group WEB {
  delay_loop 2
  lb_algo wrr
  lb_kind DR
  inhibit_on_failure
  quorum 2
  hysteresis 1
  alpha
  sorry_server 192.0.2.99 80
  real_server 198.51.100.1 80 {
    weight 3
    HTTP_GET {
      url {
        path /health
        status_code 200 301
      }
      url {
        path /ready
      }
      connect_timeout 2
      nb_get_retry 2
    }
  }
  real_server 198.51.100.2 80 {
    weight 0
    HTTP_GET {
      url {
        path /health
        status_code 200 301
      }
      url {
        path /ready
      }
      connect_timeout 2
      nb_get_retry 2
    }
  }
}
virtual_server fwmark 9 {
  ip_family inet6
  lvs_sched sh
  real_server 2001:db8::1 443 {
    MISC_CHECK {
      misc_path "/usr/local/bin/check --mode 'deep probe'"
      misc_dynamic
    }
  }
}
virtual_server 2001:db8::80 53 {
  protocol UDP
  persistence_timeout
  persistence_granularity 64
  real_server 2001:db8::2 53 {
    DNS_CHECK {
      type A
      name www.example.org
    }
    FILE_CHECK {
      track_file f
    }
  }
}
`
	r, err := importK(t, mapSource{"/etc/keepalived/keepalived.conf": conf})
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if got := len(c.VirtualServices); got != 6 {
		t.Fatalf("%d services, want 3 group addresses + fwmark 7 + fwmark 9 + the IPv6 one:\n%s", got, r.YAML)
	}
	web := c.VirtualServices[0]
	if web.Address != "192.0.2.10" || web.Port != 80 || web.Scheduler != "wrr" || web.OnFailure != "quiescent" ||
		web.Quorum != 2 || web.Hysteresis != 1 || web.Startup != "down" || web.Sorry == nil || web.Name != "WEB 192.0.2.10:80" {
		t.Errorf("group member: %+v", web)
	}
	if len(web.Checks) != 2 || web.Checks[0].Path != "/health" || web.Checks[0].Status != "200,301" || web.Checks[1].Path != "/ready" ||
		web.Checks[0].Interval.D() != 2*time.Second || web.Checks[0].Timeout.D() != 2*time.Second || web.Checks[0].Retries != 2 {
		t.Errorf("checks: %+v %+v", web.Checks[0], web.Checks[1])
	}
	if w := web.Reals[1].Weight; w == nil || *w != 0 {
		t.Errorf("weight 0 must be kept, got %v", w)
	}
	if web.Reals[0].Forward != "dr" {
		t.Errorf("forward %q", web.Reals[0].Forward)
	}
	if fw := c.VirtualServices[3]; fw.FWMark != 7 || fw.Family != "inet" {
		t.Errorf("group fwmark: %+v", fw)
	}
	misc := c.VirtualServices[4]
	if misc.FWMark != 9 || misc.Family != "inet6" || misc.Scheduler != "sh" || misc.OnFailure != "remove" || misc.Reals[0].Forward != "nat" {
		t.Errorf("fwmark 9: %+v", misc)
	}
	if ch := misc.Check; ch == nil || ch.Type != "external" || ch.Command != "/usr/local/bin/check" || !slices.Equal(ch.Args, []string{"--mode", "deep probe"}) ||
		ch.Retries != 0 || ch.Timeout.D() != 60*time.Second || !ch.Dynamic {
		t.Errorf("misc check: %+v", misc.Check)
	}
	dns := c.VirtualServices[5]
	if dns.Protocol != "udp" || dns.Persistence.D() != 6*time.Minute || dns.PersistenceNetmask != 64 ||
		dns.Check == nil || dns.Check.QueryName != "www.example.org" || dns.Check.QueryType != "A" || dns.Check.Retries != 3 {
		t.Errorf("dns service: %+v %+v", dns, dns.Check)
	}
	if c.Director != "lvs1" || c.HA.Keepalived == nil || c.Alerting == nil || c.Alerting.SMTP.Port != 2525 || c.Alerting.SMTP.TLS != "none" ||
		!slices.Equal(c.Alerting.To, []string{"ops@example.org"}) || c.Alerting.From != "lvs@example.org" {
		t.Errorf("globals: director %q ha %+v alerting %+v", c.Director, c.HA, c.Alerting)
	}
	for _, want := range []struct {
		line      int
		directive string
		status    Status
	}{
		{lineOf(conf, "root"), "notification_email", Unsupported},
		{lineOf(conf, "vrrp_instance"), "vrrp_instance", Mapped},
		{lineOf(conf, "virtual_server_group"), "virtual_server_group", Changed},
		{lineOf(conf, "misc_dynamic"), "misc_dynamic", Mapped},
		{lineOf(conf, "FILE_CHECK"), "FILE_CHECK", Unsupported},
		{lineOf(conf, "HTTP_GET"), "HTTP_GET", Mapped},
		{lineOf(conf, "nb_get_retry"), "nb_get_retry", Changed},
	} {
		e := entry(r, want.line, want.directive)
		if e == nil || e.Status != want.status {
			t.Errorf("line %d %s: got %+v, want %s\nreport:\n%s", want.line, want.directive, e, want.status, reportText(r))
		}
	}
	if !r.Partial() {
		t.Error("an import with unsupported directives is not partial")
	}
	if !bytes.Contains(r.YAML, []byte("# from /etc/keepalived/keepalived.conf:19-56, group WEB at /etc/keepalived/keepalived.conf:16")) {
		t.Errorf("no source comment on the service:\n%s", r.YAML)
	}
}

// lineOf is the line of the first occurrence of s.
func lineOf(text, s string) int {
	i := strings.Index(text, s)
	if i < 0 {
		panic(s)
	}
	return strings.Count(text[:i], "\n") + 1
}

func reportText(r *Result) string {
	var b strings.Builder
	for _, e := range r.Report {
		b.WriteString(e.String() + "\n")
	}
	return b.String()
}

func TestKeepalivedDifferingCheckers(t *testing.T) {
	conf := `virtual_server 192.0.2.1 80 {
  lb_kind NAT
  real_server 10.0.0.1 80 {
    inhibit_on_failure
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 10.0.0.2 80 {
    TCP_CHECK {
      connect_timeout 1
    }
  }
  real_server 10.0.0.3 8080 {
    HTTP_GET {
      url {
        path /
      }
    }
  }
  real_server 10.0.0.4 80 {
  }
}
`
	r, err := importK(t, mapSource{"/etc/keepalived/keepalived.conf": conf})
	if err != nil {
		t.Fatal(err)
	}
	vs := r.Config.VirtualServices[0]
	if vs.Check == nil || vs.Check.Type != "tcp" || vs.OnFailure != "remove" {
		t.Errorf("the most common checker wins, on_failure stays remove: %+v %+v", vs, vs.Check)
	}
	for _, line := range []int{lineOf(conf, "10.0.0.3"), lineOf(conf, "10.0.0.4")} {
		if e := entry(r, line, "real_server"); e == nil || !slices.ContainsFunc(r.Report, func(x Entry) bool { return x.Line == line && x.Status == Changed }) {
			t.Errorf("line %d: the server whose checkers differ is not reported as changed:\n%s", line, reportText(r))
		}
	}
	inh := lineOf(conf, "inhibit_on_failure")
	if e := entry(r, inh, "inhibit_on_failure"); e == nil || !slices.ContainsFunc(r.Report, func(x Entry) bool { return x.Line == inh && x.Status == Changed }) {
		t.Errorf("a lone inhibit_on_failure is not reported as changed:\n%s", reportText(r))
	}
}

func TestKeepalivedIncludes(t *testing.T) {
	files := mapSource{
		"/etc/keepalived/keepalived.conf": "include conf.d/*.conf\n",
		"/etc/keepalived/conf.d/a.conf":   "virtual_server 192.0.2.1 80 {\n  real_server 10.0.0.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n",
		"/etc/keepalived/conf.d/b.conf":   "virtual_server 192.0.2.2 80 {\ninclude ../reals/*.inc\n}\n",
		"/etc/keepalived/reals/r.inc":     "real_server 10.0.0.2 80 {\n}\n",
	}
	r, err := importK(t, files)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Config.VirtualServices) != 2 || len(r.Config.VirtualServices[1].Reals) != 1 || r.Config.VirtualServices[1].Reals[0].Address != "10.0.0.2" {
		t.Fatalf("includes not read in place:\n%s", r.YAML)
	}
	if e := entry(r, 1, "real_server"); e == nil || e.File != "/etc/keepalived/reals/r.inc" {
		t.Errorf("the report does not name the included file: %+v", e)
	}
}

func TestKeepalivedRefusesBrokenInput(t *testing.T) {
	deep := strings.Repeat("a {\n", MaxDepth+2) + strings.Repeat("}\n", MaxDepth+2)
	many := mapSource{"/etc/keepalived/keepalived.conf": "include conf.d/*.conf\n"}
	for i := range MaxIncludes + 1 {
		many[fmt.Sprintf("/etc/keepalived/conf.d/%03d.conf", i)] = "! empty\n"
	}
	chain := mapSource{"/etc/keepalived/keepalived.conf": "include 1.conf\n"}
	for i := 1; i <= MaxIncludeDepth+1; i++ {
		chain[fmt.Sprintf("/etc/keepalived/%d.conf", i)] = fmt.Sprintf("include %d.conf\n", i+1)
	}
	big := strings.Repeat("! a comment that fills the file up\n", (10<<20)/35)
	for _, tc := range []struct {
		name  string
		files mapSource
		want  string
	}{
		{"open brace", mapSource{"/etc/keepalived/keepalived.conf": "virtual_server 192.0.2.1 80 {\n real_server 10.0.0.1 80 {\n}\n"}, "keepalived.conf:1: unbalanced braces"},
		{"close brace", mapSource{"/etc/keepalived/keepalived.conf": "global_defs {\n}\n}\n"}, "keepalived.conf:3: unbalanced braces"},
		{"brace alone", mapSource{"/etc/keepalived/keepalived.conf": "{\n}\n"}, "keepalived.conf:1: a { that opens no block"},
		{"deep", mapSource{"/etc/keepalived/keepalived.conf": deep}, "nested deeper than 32"},
		{"many includes", many, "more than 256 included files"},
		{"deep includes", chain, "includes nested deeper than 16"},
		{"loop", mapSource{"/etc/keepalived/keepalived.conf": "include a.conf\n", "/etc/keepalived/a.conf": "include keepalived.conf\n"}, "a.conf:1: include loop"},
		{"self", mapSource{"/etc/keepalived/keepalived.conf": "\ninclude keepalived.conf\n"}, "keepalived.conf:2: include loop"},
		{"binary", mapSource{"/etc/keepalived/keepalived.conf": "global_defs {\n\x00\x01\x02\n}\n"}, "keepalived.conf:2: a NUL byte"},
		{"not utf8", mapSource{"/etc/keepalived/keepalived.conf": "a\n\xff\xfe\n"}, "keepalived.conf:2: not UTF-8"},
		{"10 MB", mapSource{"/etc/keepalived/keepalived.conf": big}, "too large"},
		{"quote", mapSource{"/etc/keepalived/keepalived.conf": "global_defs {\n router_id \"lvs\n}\n"}, "keepalived.conf:2: an unterminated quote"},
		{"seq", mapSource{"/etc/keepalived/keepalived.conf": "~SEQ(i,1,3) real_server 10.0.0.$i 80\n"}, "~SEQ"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := importK(t, tc.files)
			var ie *Error
			if !errors.As(err, &ie) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an *Error with %q", err, tc.want)
			}
		})
	}
}

func TestKeepalivedConditionalsAndParameters(t *testing.T) {
	conf := "$VIP=192.0.2.7\n@lvs1 $PORT=80\n@lvs2 $PORT=81\nvirtual_server $VIP ${PORT} {\n@^lvs1  lb_algo rr\n  real_server 10.0.0.1 80 { # a comment\n  }\n}\n"
	r, err := importK(t, mapSource{"/etc/keepalived/keepalived.conf": conf})
	if err != nil {
		t.Fatal(err)
	}
	vs := r.Config.VirtualServices[0]
	if vs.Address != "192.0.2.7" || vs.Port != 80 || vs.Scheduler != "wlc" {
		t.Errorf("got %+v", vs)
	}
	for _, line := range []int{3, 5} {
		if e := entry(r, line, "@id"); e == nil || e.Status != Ignored {
			t.Errorf("line %d: %+v", line, e)
		}
	}
}

func TestLdirectordMapping(t *testing.T) {
	conf := `# ours
checktimeout=4
negotiatetimeout=9
checkinterval=5
failurecount=3
quiescent=yes
fallback=127.0.0.1:80
emailalert="ops@example.org, root"
emailalertfreq=30
emailalertstatus=starting,running
smtp=mail.example.org
logfile="local0"

virtual=192.0.2.10:80
	real=10.0.0.1->10.0.0.3:80 gate 5
	real=10.0.0.9:8080 masq 2 ".healthz","OK" l:10 u:100
	service=http
	request="healthz"
	receive="^OK$"
	httpmethod=HEAD
	scheduler=wlc
	persistent=600
	netmask=255.255.255.0
	quiescent=no
virtual=192.0.2.10:3306
	real=10.0.0.5:3306 gate
	service=mysql
	login="u"
virtual=192.0.2.10:53
	real=10.0.0.6:53 gate
	checktype=connect
virtual=7
	real=10.0.0.7:443 masq
	checktype=external
	checkcommand="/usr/local/bin/probe --fast"
virtual=192.0.2.10:25
	real=10.0.0.8:25 gate
	checktype=3
	checkinterval=60
virtual=192.0.2.10:8000
	real=10.0.0.8:8000 gate
	checktype=off
	fallback=127.0.0.1:8000 masq
`
	r, err := Ldirectord("ldirectord.cf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	c := r.Config
	if len(c.VirtualServices) != 6 {
		t.Fatalf("%d services:\n%s", len(c.VirtualServices), r.YAML)
	}
	web := c.VirtualServices[0]
	ch := web.Check
	if len(web.Reals) != 4 || web.Reals[2].Address != "10.0.0.3" || *web.Reals[0].Weight != 5 || web.Reals[3].Forward != "nat" ||
		web.Reals[3].LowerThreshold != 10 || web.Reals[3].UpperThreshold != 100 || web.OnFailure != "remove" ||
		web.Persistence.D() != 10*time.Minute || web.PersistenceNetmask != 24 || web.Sorry == nil || web.Sorry.Forward != "dr" {
		t.Errorf("web: %+v", web)
	}
	if ch.Type != "http" || ch.Path != "/healthz" || ch.Expect != "" || ch.Method != "HEAD" || ch.Timeout.D() != 9*time.Second ||
		ch.Interval.D() != 5*time.Second || ch.Fall != 3 {
		t.Errorf("web check: %+v", ch)
	}
	if e := entry(r, 16, "real request/receive"); e == nil || e.Status != Unsupported {
		t.Errorf("per-real request: %+v", e)
	}
	sql := c.VirtualServices[1]
	if sql.Check.Type != "mysql" || sql.Check.Username != "u" || sql.Check.Query != "SELECT 1" || sql.OnFailure != "quiescent" || sql.Check.Timeout.D() != 9*time.Second {
		t.Errorf("mysql: %+v %+v", sql, sql.Check)
	}
	if e := entry(r, 27, "service"); e == nil || e.Status != Mapped {
		t.Errorf("service=mysql: %+v\n%s", e, reportText(r))
	}
	if dns := c.VirtualServices[2]; dns.Protocol != "udp" || dns.Check.Type != "ping" || dns.Check.Timeout.D() != 4*time.Second {
		t.Errorf("connect on udp is ping: %+v %+v", dns, dns.Check)
	}
	if ext := c.VirtualServices[3]; ext.FWMark != 7 || ext.Check.Type != "external" || ext.Check.Command != "/usr/local/bin/probe" || !slices.Equal(ext.Check.Args, []string{"--fast"}) {
		t.Errorf("external: %+v %+v", ext, ext.Check)
	}
	if smtp := c.VirtualServices[4]; smtp.Check.Type != "smtp" || smtp.Check.Interval.D() != 5*time.Second {
		t.Errorf("checktype=3 on port 25 is smtp every interval; a virtual's checkinterval needs fork=yes: %+v", smtp.Check)
	}
	if off := c.VirtualServices[5]; len(off.Reals) != 0 || off.Check != nil || off.Sorry == nil || off.Sorry.Port != 8000 {
		t.Errorf("checktype=off adds no real servers: %+v", off)
	}
	a := c.Alerting
	if a == nil || !slices.Equal(a.To, []string{"ops@example.org"}) || a.SMTP.Host != "mail.example.org" || a.SMTP.TLS != "none" ||
		a.Reminder.D() != time.Minute || !slices.Equal(a.DaemonStates, []string{"starting", "running"}) {
		t.Errorf("alerting: %+v", a)
	}
}

func TestLdirectordRefusesBrokenInput(t *testing.T) {
	for _, tc := range []struct{ name, conf, want string }{
		{"unknown global", "checktimeout=3\nfrobnicate=yes\n", "ldirectord.cf:2: unknown directive \"frobnicate\""},
		{"unknown in virtual", "virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tcheck=yes\n", "ldirectord.cf:3: unknown directive \"check\""},
		{"indented after a blank line", "virtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\n\tscheduler=rr\n", "ldirectord.cf:4: an indented line outside"},
		{"binary", "checktimeout=3\n\x00\x00", "ldirectord.cf:2: a NUL byte"},
		{"10 MB", strings.Repeat("#\n", 5<<20), "too large"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Ldirectord("ldirectord.cf", []byte(tc.conf))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
		})
	}
}

// TestOutputValidates: what the importer prints is what config.Parse
// reads back, and the faithful case exits 0.
func TestOutputValidates(t *testing.T) {
	r, err := Ldirectord("l.cf", []byte("quiescent=yes\ncleanstop=no\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tservice=http\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Partial() {
		t.Errorf("a plain config is partial:\n%s", reportText(r))
	}
	c, err := config.Parse("again", r.YAML)
	if err != nil {
		t.Fatalf("the output does not parse: %v\n%s", err, r.YAML)
	}
	if c.VirtualServices[0].Check.Type != "http" || c.VirtualServices[0].Check.Timeout.D() != 30*time.Second {
		t.Errorf("got %+v", c.VirtualServices[0].Check)
	}
}

// TestKeepalivedFileCheck: a FILE_CHECK becomes a file check with its
// track_file's file, and its own weight and reverse or else the
// track_file's; a track_file only VRRP uses stays with keepalived, and
// one a FILE_CHECK names but that is not defined leaves the check out.
func TestKeepalivedFileCheck(t *testing.T) {
	conf := `track_file weights {
  file "/run/lb/weight"
  weight 5 reverse
  init_file 3
}
vrrp_track_file vrrp_only {
  file /run/lb/vrrp
}
virtual_server 192.0.2.10 80 {
  real_server 198.51.100.1 80 {
    FILE_CHECK {
      track_file weights
      dynamic
    }
  }
}
virtual_server 192.0.2.11 80 {
  real_server 198.51.100.1 80 {
    FILE_CHECK {
      track_file weights
      weight 0
    }
    MISC_CHECK {
      misc_path /usr/local/bin/weight
      misc_dynamic
    }
  }
}
virtual_server 192.0.2.12 80 {
  real_server 198.51.100.1 80 {
    FILE_CHECK {
      track_file nowhere
    }
  }
}
`
	r, err := importK(t, mapSource{"/etc/keepalived/keepalived.conf": conf})
	if err != nil {
		t.Fatal(err)
	}
	vs := r.Config.VirtualServices
	if len(vs) != 3 {
		t.Fatalf("%d services:\n%s", len(vs), r.YAML)
	}
	if c := vs[0].Check; c == nil || c.Type != "file" || c.File != "/run/lb/weight" || c.Weight == nil || *c.Weight != 5 || !c.Reverse ||
		c.Interval.D() != time.Second || c.Rise != 1 || c.Fall != 1 || c.Retries != 0 {
		t.Errorf("the track_file's weight: %+v", vs[0].Check)
	}
	if cs := vs[1].AllChecks(); len(cs) != 2 || cs[0].Type != "file" || cs[0].Weight == nil || *cs[0].Weight != 0 || cs[0].Reverse ||
		cs[1].Type != "external" || !cs[1].Dynamic {
		t.Errorf("its own weight and a dynamic MISC_CHECK: %+v", vs[1].AllChecks())
	}
	if len(vs[2].AllChecks()) != 0 {
		t.Errorf("an undefined track_file: %+v", vs[2].AllChecks())
	}
	for _, want := range []struct {
		line      int
		directive string
		status    Status
	}{
		{lineOf(conf, "track_file weights"), "track_file", Mapped},
		{lineOf(conf, "init_file"), "init_file", Unsupported},
		{lineOf(conf, "vrrp_track_file"), "vrrp_track_file", Ignored},
		{lineOf(conf, "dynamic"), "dynamic", Ignored},
		{lineOf(conf, "FILE_CHECK"), "FILE_CHECK", Changed},
		{lineOf(conf, "weight 0"), "weight", Mapped},
		{lineOf(conf, "track_file nowhere") - 1, "FILE_CHECK", Unsupported},
	} {
		e := entry(r, want.line, want.directive)
		if e == nil || e.Status != want.status {
			t.Errorf("line %d %s: got %+v, want %s\nreport:\n%s", want.line, want.directive, e, want.status, reportText(r))
		}
	}
	if _, err := config.Parse("out.yaml", r.YAML); err != nil {
		t.Errorf("the output does not load: %v\n%s", err, r.YAML)
	}
}

// TestLdirectordMailAndSIP: imap, imaps, pop and pops keep login and
// passwd (the check logs in), sip's login is its URI, and the output
// validates.
func TestLdirectordMailAndSIP(t *testing.T) {
	conf := `virtual=192.0.2.10:993
	real=10.0.0.1:993 gate
	service=imaps
	login="monitor"
	passwd="pa ss\"word"
virtual=192.0.2.10:995
	real=10.0.0.1:995 gate
virtual=192.0.2.10:110
	real=10.0.0.1:110 gate
	service=pop
	login="monitor"
	passwd="s3cret"
	receive="ready"
virtual=192.0.2.10:143
	real=10.0.0.1:143 gate
	passwd="unused"
virtual=192.0.2.10:5060
	real=10.0.0.1:5060 gate
	protocol=udp
	service=sip
	login="ping@lvs.example.org"
	passwd="not sent"
virtual=9
	real=10.0.0.1:5060 gate
	service=sip
virtual=192.0.2.10:21
	real=10.0.0.1:21 gate
	service=ftp
	login="anonymous"
`
	r, err := Ldirectord("ldirectord.cf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse("again", r.YAML); err != nil {
		t.Fatalf("the output does not parse: %v\n%s", err, r.YAML)
	}
	vs := r.Config.VirtualServices
	for i, want := range []config.Check{
		{Type: "imaps", Username: "monitor", Password: `pa ss\"word`}, // ldirectord unescapes nothing
		{Type: "pop3s"},
		{Type: "pop3", Username: "monitor", Password: "s3cret"},
		{Type: "imap"},
		{Type: "sip", SIPURI: "sip:ping@lvs.example.org"},
		{Type: "sip", SIPTransport: "tcp"},
		{Type: "ftp"},
	} {
		c := vs[i].Check
		if c.Type != want.Type || c.Username != want.Username || c.Password != want.Password || c.SIPURI != want.SIPURI || c.SIPTransport != want.SIPTransport {
			t.Errorf("%s: check %+v, want %+v", vs[i].Name, c, want)
		}
	}
	for _, w := range []struct {
		line      int
		directive string
		status    Status
	}{
		{3, "service", Mapped}, {4, "login, passwd", Mapped}, {5, "login, passwd", Mapped},
		{13, "receive", Ignored},
		{16, "login, passwd, database, secret", Changed},
		{21, "login (sip)", Mapped}, {22, "login, passwd, database, secret", Changed},
		{29, "login, passwd, database, secret", Changed},
	} {
		if e := entry(r, w.line, w.directive); e == nil || e.Status != w.status {
			t.Errorf("line %d %s: %+v, want %s\n%s", w.line, w.directive, e, w.status, reportText(r))
		}
	}
	if strings.Contains(reportText(r), "s3cret") {
		t.Errorf("the report shows a password:\n%s", reportText(r))
	}
}

// ldirectord's check_mysql and check_pgsql become the mysql and pgsql
// checks: login, passwd, database and request carry over; receive is
// not read by ldirectord's check, nor by the import; without a login
// (ldirectord's check cannot run) the servers get a tcp check.
func TestLdirectordSQL(t *testing.T) {
	conf := `virtual=192.0.2.10:3306
	real=10.0.0.5:3306 gate
	service=mysql
	login="readuser"
	passwd="genericpassword"
	database="portal"
	request="/SELECT * FROM link"
	receive="ok"
virtual=192.0.2.10:5432
	real=10.0.0.6:5432 gate
	login="readuser"
	passwd="genericpassword"
	request="SELECT 1 WHERE NOT pg_is_in_recovery()"
virtual=192.0.2.10:3307
	real=10.0.0.7:3307 gate
	service=mysql
virtual=192.0.2.10:3308
	real=10.0.0.8:3308 gate
	service=pgsql
	checktype=connect
	login="readuser"
`
	r, err := Ldirectord("ldirectord.cf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	text := reportText(r)
	vs := r.Config.VirtualServices
	if len(vs) != 4 {
		t.Fatalf("%d services:\n%s", len(vs), r.YAML)
	}
	if c := vs[0].Check; c.Type != "mysql" || c.Username != "readuser" || c.Password != "genericpassword" || c.Secret != "genericpassword" ||
		c.Database != "portal" || c.Query != "SELECT * FROM link" || c.Expect != "" {
		t.Errorf("mysql: %+v", c)
	}
	for line, st := range map[int]Status{4: Mapped, 5: Mapped, 6: Mapped, 7: Mapped, 8: Ignored} {
		found := false
		for _, e := range r.Report {
			if e.Line == line {
				found = true
				if e.Status != st {
					t.Errorf("line %d: %s, want %s", line, e, st)
				}
			}
		}
		if !found {
			t.Errorf("line %d not reported:\n%s", line, text)
		}
	}
	if c := vs[1].Check; c.Type != "pgsql" || c.Username != "readuser" || c.Database != "" || c.Query != "SELECT 1 WHERE NOT pg_is_in_recovery()" {
		t.Errorf("pgsql by the port: %+v", c)
	}
	if c := vs[2].Check; c.Type != "tcp" || c.Username != "" {
		t.Errorf("mysql without login: %+v", c)
	}
	if e := entry(r, 16, "service"); e == nil || e.Status != Changed || !strings.Contains(e.Note, "without login") {
		t.Errorf("mysql without login: %+v\n%s", e, text)
	}
	if c := vs[3].Check; c.Type != "tcp" || c.Username != "" {
		t.Errorf("checktype=connect: %+v", c)
	}
	if e := entry(r, 21, "login, passwd, database, secret"); e == nil || e.Status != Changed {
		t.Errorf("a login a tcp check does not use: %+v\n%s", e, text)
	}
	if strings.Contains(text, "genericpassword") {
		t.Errorf("the report shows the password:\n%s", text)
	}
	if !r.Partial() {
		t.Error("an import with changed lines counts as faithful")
	}
}
