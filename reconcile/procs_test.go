package reconcile

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/lvs"
)

// fakeProc builds a /proc tree: each process gets a cmdline and, when
// ns is set, a ns/net link.
type fakeProc struct {
	t    *testing.T
	root string
}

func newFakeProc(t *testing.T, selfNS string) *fakeProc {
	p := &fakeProc{t: t, root: t.TempDir()}
	if selfNS != "" {
		p.link("self/ns/net", selfNS)
	}
	// Entries a scan must pass over.
	p.write("stat", "cpu 1 2 3\n")
	p.write("2/cmdline", "") // a kernel thread
	return p
}

func (p *fakeProc) write(rel, content string) {
	p.t.Helper()
	path := filepath.Join(p.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		p.t.Fatal(err)
	}
}

func (p *fakeProc) link(rel, target string) {
	p.t.Helper()
	path := filepath.Join(p.root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		p.t.Fatal(err)
	}
	if err := os.Symlink(target, path); err != nil {
		p.t.Fatal(err)
	}
}

// proc adds a process with the given arguments.
func (p *fakeProc) proc(pid int, args ...string) string {
	dir := strconv.Itoa(pid)
	p.write(dir+"/cmdline", strings.Join(args, "\x00")+"\x00")
	return dir
}

const kaVirtualServers = `! Configuration File for keepalived
global_defs {
   router_id LVS_1   # virtual_server in a comment does not count
}
virtual_server 10.0.0.100 80 {
    delay_loop 6
    lb_algo wlc
    real_server 10.0.1.13 80 { weight 3 }
}
virtual_server fwmark 7 { lb_algo rr }
`

const kaVRRPOnly = `vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    ! virtual_server 10.0.0.100 80 {
    virtual_ipaddress { 10.0.0.100 }
}
`

func TestScanProcesses(t *testing.T) {
	fp := newFakeProc(t, "net:[4026531840]")
	// keepalived and its two children, with virtual_server blocks read
	// through the process's root (as in a container).
	for _, pid := range []int{1201, 1203, 1202} {
		dir := fp.proc(pid, "/usr/sbin/keepalived", "--dont-fork", "-D")
		fp.link(dir+"/ns/net", "net:[4026531840]")
		fp.link(dir+"/root", filepath.Join(fp.root, "rootfs"))
	}
	fp.write("rootfs/etc/keepalived/keepalived.conf", kaVirtualServers)
	// A keepalived for VRRP only: its config has no virtual_server.
	conf := filepath.Join(t.TempDir(), "vrrp.conf")
	if err := os.WriteFile(conf, []byte(kaVRRPOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	fp.proc(1300, "keepalived", "-lDf", conf)
	// A keepalived with -P writes no IPVS whatever its config says.
	fp.proc(1400, "/usr/sbin/keepalived", "-P", "--use-file", "/nonexistent.conf")
	// A keepalived in another network namespace writes another table.
	fp.link(fp.proc(1500, "/usr/sbin/keepalived")+"/ns/net", "net:[4026532000]")
	// ldirectord runs as a perl script, its children retitled; pulse
	// and nanny as binaries.
	fp.link(fp.proc(900, "/usr/bin/perl", "-w", "/usr/sbin/ldirectord", "start")+"/root", filepath.Join(fp.root, "rootfs"))
	fp.write("rootfs/etc/ha.d/ldirectord.cf", "checktimeout=3\nvirtual=10.0.0.100:80\n\treal=10.0.1.13:80 gate\nvirtual6=[2001:db8::1]:443 # v6\n#virtual=10.0.0.101:80\nvirtual = 7\n")
	fp.proc(905, "ldirectord tcp:10.0.0.100:80 checking 10.0.1.13")
	fp.link(fp.proc(906, "/usr/sbin/ldirectord", "-d", "other.cf", "start")+"/root", filepath.Join(fp.root, "rootfs"))
	fp.write("rootfs/etc/ha.d/conf/other.cf", "virtual=www.example.com:http\n")
	fp.proc(901, "/usr/sbin/pulse")
	// Not writers.
	fp.proc(902, "/usr/bin/pulseaudio", "--daemonize=no")
	fp.proc(903, "vim", "/etc/keepalived/keepalived.conf")
	fp.proc(904, "/usr/bin/perl", "/usr/local/bin/monitor")

	got, err := ScanProcesses(fp.root)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, p := range got {
		names = append(names, p.Who())
	}
	want := []string{"ldirectord (pid 900)", "pulse (pid 901)", "ldirectord (pid 906)", "keepalived (pid 1201)"}
	if !slices.Equal(names, want) {
		t.Fatalf("writers %v, want %v", names, want)
	}
	ka := got[3]
	if ka.All || len(ka.Services) != 2 || ka.Config != "/etc/keepalived/keepalived.conf" || !strings.Contains(ka.Why, "has virtual_server blocks") {
		t.Errorf("keepalived = %+v", ka)
	}
	web := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.100"), 80)
	other := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.101"), 80)
	if !ka.Covers(web) || ka.Covers(other) || !ka.Covers(lvs.MarkKey(7, lvs.IPv6)) || ka.Covers(lvs.MarkKey(8, lvs.IPv4)) {
		t.Errorf("keepalived covers the wrong services: %+v", ka.Services)
	}
	ld := got[0]
	if ld.All || ld.Config != "/etc/ha.d/ldirectord.cf" || !ld.Covers(web) || ld.Covers(other) || !ld.Covers(lvs.MarkKey(7, lvs.IPv4)) ||
		!ld.Covers(lvs.AddrKey(lvs.TCP, netip.MustParseAddr("2001:db8::1"), 443)) || len(ld.Services) != 3 {
		t.Errorf("ldirectord = %+v", ld)
	}
	if ld := got[2]; !ld.All || ld.Config != "/etc/ha.d/conf/other.cf" || !strings.Contains(ld.Why, "other.cf") {
		t.Errorf("ldirectord with a host name = %+v", ld)
	}
	if !got[1].All || !got[1].Covers(other) || got[1].Why == "" {
		t.Errorf("pulse = %+v", got[1])
	}
}

func TestScanProcessesWithoutVirtualServers(t *testing.T) {
	fp := newFakeProc(t, "")
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(kaVRRPOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	fp.proc(77, "/usr/sbin/keepalived", "--use-file="+conf)
	got, err := ScanProcesses(fp.root)
	if err != nil || len(got) != 0 {
		t.Fatalf("a VRRP-only keepalived reported: %+v, %v", got, err)
	}
	if _, err := ScanProcesses(filepath.Join(fp.root, "missing")); err == nil {
		t.Error("a missing proc root is no error")
	}
}

func TestKeepalivedConfigScan(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"main.conf":          "global_defs { router_id x }\ninclude conf.d/*.conf\n",
		"conf.d/a.conf":      "virtual_server 192.0.2.1 443 {\n lb_algo rr\n}\n",
		"conf.d/b.conf":      "@lvs1 virtual_server 2001:db8::1 53 { protocol UDP }\n",
		"group.conf":         "virtual_server_group G { 192.0.2.9 80 }\nvirtual_server group G { }\n",
		"var.conf":           "$VIP=192.0.2.7\nvirtual_server $VIP 80 {}\n",
		"loop.conf":          "include loop.conf\n",
		"unreadable.conf":    "include /nonexistent/*.conf\nvirtual_server 192.0.2.2 80 {}\n",
		"commented.conf":     "# virtual_server 192.0.2.3 80 {\n! virtual_server 192.0.2.3 80 {\nvrrp_script chk { script \"/bin/true\" }\n",
		"brace-on-line.conf": "virtual_server 192.0.2.4 8080{real_server 10.0.1.1 8080{weight 1}}\n",
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		file  string
		found bool
		all   bool
		refs  []ServiceRef
		err   string
	}{
		{"main.conf", true, false, []ServiceRef{{Addr: netip.MustParseAddr("192.0.2.1"), Port: 443}, {Addr: netip.MustParseAddr("2001:db8::1"), Port: 53}}, ""},
		{"group.conf", true, true, nil, ""},
		{"var.conf", true, true, nil, ""},
		{"loop.conf", false, false, nil, ""},
		{"unreadable.conf", true, false, []ServiceRef{{Addr: netip.MustParseAddr("192.0.2.2"), Port: 80}}, ""},
		{"commented.conf", false, false, nil, ""},
		{"brace-on-line.conf", true, false, []ServiceRef{{Addr: netip.MustParseAddr("192.0.2.4"), Port: 8080}}, ""},
		{"missing.conf", false, false, nil, "no such file"},
	} {
		t.Run(tc.file, func(t *testing.T) {
			s := &kaScan{}
			err := s.file(filepath.Join(dir, tc.file), 0)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil || s.found != tc.found || s.all != tc.all || !slices.Equal(s.refs, tc.refs) {
				t.Errorf("found %v all %v refs %v err %v; want %v %v %v", s.found, s.all, s.refs, err, tc.found, tc.all, tc.refs)
			}
		})
	}
}

func TestKeepalivedArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		conf string
		vrrp bool
	}{
		{[]string{"keepalived"}, "/etc/keepalived/keepalived.conf", false},
		{[]string{"keepalived", "-f", "/a.conf"}, "/a.conf", false},
		{[]string{"keepalived", "-f/a.conf"}, "/a.conf", false},
		{[]string{"keepalived", "-Dlf", "/a.conf", "-P"}, "/a.conf", true},
		{[]string{"keepalived", "--use-file=/b.conf", "--vrrp"}, "/b.conf", true},
		{[]string{"keepalived", "--use-file", "/b.conf", "-C"}, "/b.conf", false},
		// -p takes a value: the f and P in it are no options.
		{[]string{"keepalived", "-p", "/run/fP.pid", "-S7"}, "/etc/keepalived/keepalived.conf", false},
		{[]string{"keepalived", "-pf"}, "/etc/keepalived/keepalived.conf", false},
		{[]string{"keepalived", "-f"}, "", false},
	} {
		conf, vrrp := keepalivedArgs(tc.args)
		if conf != tc.conf || vrrp != tc.vrrp {
			t.Errorf("%q: conf %q vrrp %v, want %q %v", tc.args, conf, vrrp, tc.conf, tc.vrrp)
		}
	}
}

func FuzzKeepalivedScan(f *testing.F) {
	f.Add(kaVirtualServers)
	f.Add(kaVRRPOnly)
	f.Add("virtual_server fwmark 0 {}\nvirtual_server 1.2.3.4 99999\nvirtual_server\ninclude\n")
	f.Fuzz(func(t *testing.T, conf string) {
		s := &kaScan{}
		s.scan("/x.conf", []byte(conf), maxIncDepth)
		if !s.found && (s.all || len(s.refs) > 0) {
			t.Errorf("services without virtual_server: %+v", s)
		}
		for _, r := range s.refs {
			if r.FWMark == 0 && !r.Addr.IsValid() {
				t.Errorf("invalid ref %+v", r)
			}
		}
	})
}

func FuzzKeepalivedArgs(f *testing.F) {
	f.Add("keepalived\x00-Dlf\x00/a.conf\x00-P")
	f.Add("keepalived\x00--use-file\x00x\x00-pf\x00--vrrp")
	f.Fuzz(func(t *testing.T, cmdline string) {
		args := strings.Split(cmdline, "\x00")
		conf, _ := keepalivedArgs(args)
		if conf != "/etc/keepalived/keepalived.conf" && !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, conf) }) {
			t.Errorf("config %q is in no argument of %q", conf, args)
		}
	})
}

// BenchmarkScanProcesses is one scan of a director with 2000 processes,
// one of them keepalived with virtual_server blocks: what a round pays
// every scanEvery at most.
func BenchmarkScanProcesses(b *testing.B) {
	fp := &fakeProc{t: &testing.T{}, root: b.TempDir()}
	for pid := 1; pid <= 2000; pid++ {
		fp.proc(pid, "/usr/sbin/sshd", "-D", "-o", "something")
	}
	fp.write("rootfs/etc/keepalived/keepalived.conf", kaVirtualServers)
	fp.link(fp.proc(2001, "/usr/sbin/keepalived", "--dont-fork")+"/root", filepath.Join(fp.root, "rootfs"))
	for b.Loop() {
		ps, err := ScanProcesses(fp.root)
		if err != nil || len(ps) != 1 {
			b.Fatal(ps, err)
		}
	}
}

func FuzzLdirectordScan(f *testing.F) {
	f.Add("virtual=10.0.0.100:80\n\treal=10.0.1.13:80 gate\nvirtual6=[2001:db8::1]:443\nvirtual = 7\n")
	f.Add("virtual=www.example.com:http\nvirtualx=1\nvirtual6 =\n")
	f.Fuzz(func(t *testing.T, conf string) {
		refs, all := ldirectordScan([]byte(conf))
		if !strings.Contains(conf, "virtual") && (all || len(refs) > 0) {
			t.Errorf("services without a virtual line: %v %v", refs, all)
		}
		for _, r := range refs {
			if r.FWMark == 0 && !r.Addr.IsValid() {
				t.Errorf("invalid ref %+v", r)
			}
		}
	})
}
