//go:build lab

package sidebyside

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/lvs"
)

// ldirectord.cf of the setting: real servers 1 to 3 on 127.31.0.1-3,
// the sorry server (fallback) on 127.31.0.9, where nothing listens, as
// neither tool checks it. The TCP service's port is its servers' (with
// gate, IPVS keeps the service's port, which the fake ipvsadm does not
// know: the import writes the service's). ldirectord checks one server after the other
// (fork=no), every second, with a 2 s timeout.
const ldConf = `checktimeout=2
negotiatetimeout=2
checkinterval=1
failurecount=1
autoreload=no
supervised=yes
fork=no
logfile="%[1]s/ldirectord.log"

virtual=10.210.0.10:80
%[2]s	fallback=127.31.0.9:%[4]d masq
	service=http
	scheduler=wrr
	protocol=tcp
	checktype=negotiate
	request="health.html"
	receive="OK"
	quiescent=yes

virtual=10.210.0.11:%[5]d
%[3]s	fallback=127.31.0.9:%[5]d gate
	scheduler=rr
	protocol=tcp
	persistent=60
	checktype=connect
	quiescent=no
`

// ldSetting is where the real servers listen: HTTP on 127.31.0.N:web,
// the TCP port on 127.31.0.N:tcp.
type ldSetting struct{ web, tcp int }

func (s ldSetting) conf(dir string, web, tcp [3]int) string {
	var w, c strings.Builder
	for i := range 3 {
		th := ""
		if i == 0 {
			th = " l:10 u:100"
		}
		fmt.Fprintf(&w, "\treal=127.31.0.%d:%d masq %d%s\n", i+1, s.web, web[i], th)
		fmt.Fprintf(&c, "\treal=127.31.0.%d:%d gate %d\n", i+1, s.tcp, tcp[i])
	}
	return fmt.Sprintf(ldConf, dir, w.String(), c.String(), s.web, s.tcp)
}

func (s ldSetting) table(x tab) view {
	a := []string{"TCP 10.210.0.10:80 wrr"}
	b := []string{fmt.Sprintf("TCP 10.210.0.11:%d rr persistent 60", s.tcp)}
	for i := range 3 {
		if x.web[i] >= 0 {
			th := "0 0"
			if i == 0 {
				th = "100 10"
			}
			a = append(a, fmt.Sprintf("  -> 127.31.0.%d:%d Masq %d %s", i+1, s.web, x.web[i], th))
		}
		if x.tcp[i] >= 0 {
			b = append(b, fmt.Sprintf("  -> 127.31.0.%d:%d Route %d 0 0", i+1, s.tcp, x.tcp[i]))
		}
	}
	if x.webSorry >= 0 {
		a = append(a, fmt.Sprintf("  -> 127.31.0.9:%d Masq %d 0 0", s.web, x.webSorry))
	}
	if x.tcpSorry >= 0 {
		b = append(b, fmt.Sprintf("  -> 127.31.0.9:%d Route %d 0 0", s.tcp, x.tcpSorry))
	}
	return joinView([][]string{a, b})
}

// listenLoopback opens the two ports of every real server: two ports
// free on 127.31.0.1, then the same on .2 and .3 (tried again with
// others when one is taken there).
func listenLoopback(t *testing.T) (ldSetting, [3][2]net.Listener) {
	t.Helper()
	var last error
	for range 10 {
		var ls [3][2]net.Listener
		var s ldSetting
		err := func() error {
			for i := range 3 {
				for j, port := range []*int{&s.web, &s.tcp} {
					l, err := net.Listen("tcp", fmt.Sprintf("127.31.0.%d:%d", i+1, *port))
					if err != nil {
						return err
					}
					ls[i][j] = l
					*port = l.Addr().(*net.TCPAddr).Port
				}
			}
			return nil
		}()
		if err == nil {
			return s, ls
		}
		last = err
		for _, p := range ls {
			for _, l := range p {
				if l != nil {
					l.Close()
				}
			}
		}
	}
	t.Fatalf("real servers on 127.31.0.1-3: %v", last)
	return ldSetting{}, [3][2]net.Listener{}
}

// TestLdirectordSideBySide runs Debian's ldirectord with its config and
// a fake ipvsadm (bench/checker/ipvsadm: a table in a file), then lvsmon
// with the import of the same config on its fake backend, against the
// same real servers on loopback through the same steps as the kernel
// tier's keepalived comparison, and compares the tables after each step
// settles: weights, forwarding, thresholds, persistence, fallback.
func TestLdirectordSideBySide(t *testing.T) {
	if testing.Short() {
		t.Skip("runs ldirectord for two minutes")
	}
	const bin = "/usr/sbin/ldirectord"
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("Debian's ldirectord: %v (scripts/deps.sh test installs it)", err)
	}
	if os.Geteuid() != 0 {
		t.Fatal("ldirectord runs ipvsadm by its absolute path: the fake goes over it in a mount namespace of its own, which needs root")
	}
	dir := t.TempDir()
	fake := filepath.Join(dir, "ipvsadm")
	if out, err := exec.Command("go", "build", "-o", fake, "../../bench/checker/ipvsadm").CombinedOutput(); err != nil {
		t.Fatalf("building the fake ipvsadm: %v\n%s", err, out)
	}
	set, ls := listenLoopback(t)
	l := &sbLab{dir: dir, table: set.table, poll: 100 * time.Millisecond, quiet: 3 * time.Second, bound: 40 * time.Second}
	for i := range l.rs {
		first := true
		l.rs[i] = startRealServer(t, fmt.Sprintf("rs%d", i+1), func() (web, tcp net.Listener, err error) {
			if first {
				first = false
				return ls[i][0], ls[i][1], nil
			}
			if web, err = net.Listen("tcp", fmt.Sprintf("127.31.0.%d:%d", i+1, set.web)); err != nil {
				return nil, nil, err
			}
			if tcp, err = net.Listen("tcp", fmt.Sprintf("127.31.0.%d:%d", i+1, set.tcp)); err != nil {
				web.Close()
			}
			return web, tcp, err
		})
	}
	l.conf = func(t *testing.T, name string, web, tcp [3]int) string {
		return l.write(t, "ldirectord-"+name+".cf", set.conf(dir, web, tcp))
	}
	var read func(t *testing.T) view
	l.read = func(t *testing.T) view { return read(t) }
	sideBySide(t, l, "ldirectord",
		func(t *testing.T, conf string) director {
			ld := startLdirectord(t, bin, fake, conf)
			read = ld.read
			return ld
		},
		func(t *testing.T, conf string) *lvsmonDirector {
			f := lvs.NewFake(lvs.Table{})
			read = func(t *testing.T) view {
				tab, err := f.Table(context.Background())
				if err != nil {
					t.Fatal(err)
				}
				return tableView(tab)
			}
			return startLvsmonDirector(t, importer.FormatLdirectord, conf, f, false, true)
		})
}

// ldirectord is Debian's ldirectord in the foreground (supervised=yes),
// with the fake ipvsadm bind-mounted over /usr/sbin/ipvsadm in a mount
// namespace of its own, as bench/checker runs it.
type ldirectord struct {
	tool
	dir  string // the fake's table and log
	fake string
}

func startLdirectord(t *testing.T, bin, fake, conf string) *ldirectord {
	t.Helper()
	ld := &ldirectord{tool: tool{name: "ldirectord", stopWait: 20 * time.Second}, dir: t.TempDir(), fake: fake}
	// ldirectord names its pid file after the config's: one of its own.
	ld.conf = filepath.Join(ld.dir, "lvsmon-sidebyside.cf")
	ld.writeConf(t, conf)
	ld.cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /usr/sbin/ipvsadm && exec "$1" "$2" start`, fake, bin, ld.conf)
	ld.cmd.Env = append(os.Environ(), "FAKE_IPVSADM_DIR="+ld.dir)
	out, err := os.Create(filepath.Join(ld.dir, "ldirectord.out"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	ld.cmd.Stdout, ld.cmd.Stderr = out, out
	ld.start(t)
	t.Cleanup(func() {
		ld.stop(t)
		if t.Failed() {
			for _, f := range []string{"ldirectord.out", "ipvsadm.log"} {
				b, _ := os.ReadFile(filepath.Join(ld.dir, f))
				t.Logf("%s:\n%s", f, tail(string(b), 80))
			}
			b, _ := os.ReadFile(filepath.Join(filepath.Dir(conf), "ldirectord.log"))
			t.Logf("ldirectord.log:\n%s", tail(string(b), 80))
		}
	})
	return ld
}

// read lists the fake's table as ldirectord reads it.
func (ld *ldirectord) read(t *testing.T) view {
	t.Helper()
	run := func(args ...string) string {
		cmd := exec.Command(ld.fake, args...)
		cmd.Env = append(os.Environ(), "FAKE_IPVSADM_DIR="+ld.dir)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("fake ipvsadm %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	for {
		v, err := ipvsadmView(run("-L", "-n"), run("-L", "-n", "--thresholds"))
		if errors.Is(err, errTableMoved) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}
