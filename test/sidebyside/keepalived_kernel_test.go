//go:build ipvskernel

// Debian's keepalived and lvsmon side by side on the real kernel: these
// tests run only inside the qemu VM that test/vm/vmexec.sh boots, with
// keepalived and its libraries added (testdata/vm-extras). `make
// test-kernel` builds them with the ipvskernel tag and runs the binary
// there; they never run, and so never skip, on a host.

package sidebyside

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

func TestMain(m *testing.M) {
	if os.Getenv("LVSMON_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "the side-by-side kernel tests must run inside the qemu VM: make test-kernel (CGO_ENABLED=0 go test -tags ipvskernel -exec $PWD/test/vm/vmexec.sh ./test/sidebyside/)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// The director is the VM's root namespace, with the two VIPs on a dummy
// interface; real servers 1 to 3 live in namespaces sb1 to sb3, each on
// a veth pair, each serving HTTP on port 80 (the health page
// /health.html) and a bare TCP port 8080. No client: only the table
// matters. The sorry server is an address nothing answers on, as
// neither tool checks it.
const sbTopology = `
set -e
ip() { /sbin/ip "$@"; }
ip link add sb-vip type dummy
ip link set sb-vip up
ip addr add 10.210.0.10/32 dev sb-vip
ip addr add 10.210.0.11/32 dev sb-vip
for n in 1 2 3; do
  ip netns add sb$n
  ip link add sb-r${n}a type veth peer name sb-r${n}b netns sb$n
  ip addr add 10.211.$n.1/24 dev sb-r${n}a
  ip link set sb-r${n}a up
  ip -n sb$n addr add 10.211.$n.2/24 dev sb-r${n}b
  ip -n sb$n link set sb-r${n}b up
  ip -n sb$n link set lo up
  ip -n sb$n route add default via 10.211.$n.1
done
`

const sbTeardown = `
ip() { /sbin/ip "$@"; }
for l in sb-r1a sb-r2a sb-r3a sb-vip; do ip link del $l; done
for ns in sb1 sb2 sb3; do ip netns del $ns; done
ipvsadm -C
true
`

// keepalived.conf: a NAT web service checked with HTTP_GET, its servers
// kept at weight 0 when they fail (inhibit_on_failure), one with
// thresholds; a persistent direct-routing service checked with
// TCP_CHECK, its failed servers removed; a sorry server for each.
// Checks every second with a 2 s timeout: the VM is slow, and slower
// still when its host is busy.
const sbKeepalived = `global_defs {
    router_id sidebyside
}

virtual_server 10.210.0.10 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    sorry_server 10.211.9.2 80
%s
}

virtual_server 10.210.0.11 8080 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    persistence_timeout 60
    protocol TCP
    sorry_server 10.211.9.2 8080
%s
}
`

const sbWebReal = `    real_server 10.211.%d.2 80 {
        weight %d%s
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health.html
                status_code 200
            }
            connect_timeout 2
            retry 0
        }
    }
`

const sbTCPReal = `    real_server 10.211.%d.2 8080 {
        weight %d
        TCP_CHECK {
            connect_timeout 2
            retry 0
        }
    }
`

// sbConf is the keepalived.conf with these weights for the web and the
// tcp service's real servers 1 to 3.
func sbConf(web, tcp [3]int) string {
	var w, c strings.Builder
	for i := range 3 {
		extra := ""
		if i == 0 {
			extra = "\n        uthreshold 100\n        lthreshold 10"
		}
		fmt.Fprintf(&w, sbWebReal, i+1, web[i], extra)
		fmt.Fprintf(&c, sbTCPReal, i+1, tcp[i])
	}
	return fmt.Sprintf(sbKeepalived, strings.TrimRight(w.String(), "\n"), strings.TrimRight(c.String(), "\n"))
}

// sbTable is the table keepalived.conf describes with real servers 1 to
// 3 at these weights (-1: not in the table) and the sorry servers at
// theirs, as ipvsadmView shows it.
func sbTable(web [3]int, webSorry int, tcp [3]int, tcpSorry int) view {
	a := []string{"TCP 10.210.0.10:80 wrr"}
	b := []string{"TCP 10.210.0.11:8080 rr persistent 60"}
	for i := range 3 {
		if web[i] >= 0 {
			th := "0 0"
			if i == 0 {
				th = "100 10"
			}
			a = append(a, fmt.Sprintf("  -> 10.211.%d.2:80 Masq %d %s", i+1, web[i], th))
		}
		if tcp[i] >= 0 {
			b = append(b, fmt.Sprintf("  -> 10.211.%d.2:8080 Route %d 0 0", i+1, tcp[i]))
		}
	}
	if webSorry >= 0 {
		a = append(a, fmt.Sprintf("  -> 10.211.9.2:80 Masq %d 0 0", webSorry))
	}
	if tcpSorry >= 0 {
		b = append(b, fmt.Sprintf("  -> 10.211.9.2:8080 Route %d 0 0", tcpSorry))
	}
	return joinView([][]string{a, b})
}

// The real servers' weights in the config, before and after the reload.
var (
	sbWeb  = [3]int{3, 2, 1}
	sbTCP  = [3]int{1, 1, 2}
	sbWeb2 = [3]int{3, 2, 5}
	sbTCP2 = [3]int{3, 1, 2}
	sbNone = [3]int{-1, -1, -1}
)

// A director under test: keepalived or lvsmon.
type director interface {
	// reload makes the director take the keepalived.conf at path, as a
	// SIGHUP to keepalived, a reload of lvsmon with the import of it.
	reload(t *testing.T, path string)
	stop(t *testing.T)
}

// sbStep is one step of the sequence: what happens, and the table
// keepalived leaves. Where lvsmon differs on purpose (README, "Migrating
// from"), lvsmon says what it leaves instead, and why.
type sbStep struct {
	name string
	do   func(t *testing.T, l *sbLab, d director)
	want view
	// held: lvsmon's mass-failure guard holds the downs; its table stays
	// what it was before the step.
	held bool
}

var sbSteps = []sbStep{
	{name: "start", do: func(*testing.T, *sbLab, director) {},
		want: sbTable(sbWeb, -1, sbTCP, -1)},
	{name: "rs1's health page fails", do: func(t *testing.T, l *sbLab, _ director) { l.rs[0].set(t, rsSick) },
		want: sbTable([3]int{0, 2, 1}, -1, sbTCP, -1)},
	// The TCP port of a hung application still accepts: TCP_CHECK and
	// lvsmon's tcp check see nothing wrong.
	{name: "rs2 hangs", do: func(t *testing.T, l *sbLab, _ director) { l.rs[1].set(t, rsHang) },
		want: sbTable([3]int{0, 0, 1}, -1, sbTCP, -1)},
	// Refused connections: an answer from each server.
	{name: "every server is down", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsDown) },
		want: sbTable([3]int{0, 0, 0}, 1, sbNone, 1)},
	{name: "every server is back", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsOK) },
		want: sbTable(sbWeb, -1, sbTCP, -1)},
	// Every web check times out at once: keepalived empties the service;
	// lvsmon's guard takes the cause for the director's more likely than
	// every server's and holds the downs (for guard.max_hold, 1m).
	{name: "every server hangs", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsHang) },
		want: sbTable([3]int{0, 0, 0}, 1, sbTCP, -1), held: true},
	{name: "every server is back again", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsOK) },
		want: sbTable(sbWeb, -1, sbTCP, -1)},
	{name: "reload with changed weights", do: func(t *testing.T, l *sbLab, d director) {
		d.reload(t, l.write(t, "keepalived-2.conf", sbConf(sbWeb2, sbTCP2)))
	}, want: sbTable(sbWeb2, -1, sbTCP2, -1)},
}

// Settling: the table is read every sbPoll (an ipvsadm run costs ~0.1 s
// of the VM's one CPU) until it is the one wanted and stays so for
// sbQuiet (two check rounds), for at most sbBound (lvsmon deletes a
// quiesced sorry server at a resync, every step: 10 s).
const (
	sbPoll  = 250 * time.Millisecond
	sbQuiet = 2 * time.Second
	sbBound = 20 * time.Second
)

// TestKernelSideBySideKeepalived runs Debian's keepalived (its checkers
// only, -C: no VRRP) with a config, then lvsmon with the import of the
// same config, against the same real servers through the same steps,
// and compares `ipvsadm -Ln --thresholds` after each step settles:
// weights, forwarding, thresholds, persistence, sorry servers.
// keepalived's tables are checked against the ones the config describes;
// lvsmon's against keepalived's, but where the README's "Migrating from"
// lists a deliberate difference, which is asserted as such.
func TestKernelSideBySideKeepalived(t *testing.T) {
	begin := time.Now()
	l := newSBLab(t)
	conf := l.write(t, "keepalived.conf", sbConf(sbWeb, sbTCP))

	// keepalived.
	k := startKeepalived(t, conf)
	var kept []settled
	for _, st := range sbSteps {
		st.do(t, l, k)
		s := settle(t, func() view { return l.ipvsadm(t) }, st.want, sbPoll, sbQuiet, sbBound)
		kept = append(kept, s)
		if !s.ok {
			t.Errorf("keepalived, %s: the table is not the one the config describes after %s:\n%s\nwant:\n%s\non the way:\n%s\nkeepalived's log:\n%s",
				st.name, s.took.Round(time.Millisecond), indent(s.table), indent(st.want), strings.Join(s.path, "\n"), tail(k.logs.String(), 60))
		}
	}
	last := l.ipvsadm(t)
	k.stop(t)
	// keepalived removes its services as it stops; lvsmon leaves them.
	if v := l.ipvsadm(t); v != "" {
		t.Errorf("keepalived stopped: the table is not empty:\n%s", indent(v))
	}
	if t.Failed() {
		t.FailNow()
	}

	// lvsmon, with the import of the same config, from the same start.
	l.all(t, rsOK)
	kernSh(t, "ipvsadm -C")
	data := t.TempDir()
	m := startLvsmonKernel(t, l, conf, data)
	var prev view
	wasHeld := false
	for i, st := range sbSteps {
		starved := m.rig.inconclusive(sbWebID)
		st.do(t, l, m)
		want := kept[i].table
		held := false
		if st.held {
			// The guard holds and the table stays the one before the
			// step; but a guard that heard one of the three only
			// inconclusively (lvsmon was starved: the VM's CPU is its
			// host's leftovers) counts two failing and believes them.
			if held = waitHeld(t, m.rig, st.name); held {
				want = prev
			} else if n := m.rig.inconclusive(sbWebID) - starved; n > 0 {
				t.Logf("lvsmon, %s: not held: %d check results of the web service were inconclusive (lvsmon itself was late), so the guard did not count three failing; the servers went down as with keepalived", st.name, n)
			} else {
				t.Errorf("lvsmon, %s: the guard did not hold, and no check result was inconclusive", st.name)
			}
		}
		s := settle(t, func() view { return l.ipvsadm(t) }, want, sbPoll, sbQuiet, sbBound)
		if !s.ok {
			t.Errorf("lvsmon, %s: the table is not keepalived's after %s:\n%s\nkeepalived's:\n%s\non the way:\n%s",
				st.name, s.took.Round(time.Millisecond), indent(s.table), indent(want), strings.Join(s.path, "\n"))
		}
		switch {
		case held:
			if got := m.rig.held(); len(got) != 3 {
				t.Errorf("lvsmon, %s: the guard holds %v, want the web service's three servers", st.name, got)
			}
			t.Logf("lvsmon, %s: held, as the README says; keepalived emptied the service:\n%s", st.name, indent(kept[i].table))
		case wasHeld:
			if got := m.rig.held(); len(got) != 0 {
				t.Errorf("lvsmon, %s: the guard still holds %v", st.name, got)
			}
		}
		wasHeld = held
		t.Logf("%-28s keepalived %6s, lvsmon %6s (to the settled table)", st.name, kept[i].took.Round(10*time.Millisecond), s.took.Round(10*time.Millisecond))
		logPath(t, "keepalived", st.name, kept[i].path)
		logPath(t, "lvsmon", st.name, s.path)
		prev = s.table
	}
	if v := l.ipvsadm(t); v != last {
		t.Errorf("lvsmon's last table is not keepalived's:\n%s\nkeepalived's:\n%s", indent(v), indent(last))
	}
	m.stop(t)
	// lvsmon leaves the table as it is when it stops (a restart changes
	// nothing); keepalived removed its services.
	if v := l.ipvsadm(t); v != last {
		t.Errorf("lvsmon stopped: the table changed:\n%s\nwant it as it was:\n%s", indent(v), indent(last))
	}
	kernSh(t, "ipvsadm -C")
	t.Logf("took %s", time.Since(begin).Round(time.Millisecond))
}

// logPath logs the tables a director went through in a step, when it
// went through more than one.
func logPath(t *testing.T, who, step string, path []string) {
	if len(path) > 1 {
		t.Logf("%s, %s, on the way:\n%s", who, step, strings.Join(path, "\n"))
	}
}

// sbWebID is the web service's id.
const sbWebID = "tcp_10.210.0.10_80"

// waitHeld waits until lvsmon's guard holds the downs of the web
// service's three servers (true), or lvsmon took all three down (false).
func waitHeld(t *testing.T, r *lvsmonRig, step string) bool {
	t.Helper()
	deadline := time.Now().Add(sbBound)
	for {
		switch {
		case len(r.held()) == 3:
			return true
		case r.down(sbWebID) == 3:
			return false
		case time.Now().After(deadline):
			t.Fatalf("lvsmon, %s: after %s the guard holds %v and the health is %v; want the three web servers held or down", step, sbBound, r.held(), r.chk.Health())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// sbLab is the topology with its three real servers.
type sbLab struct {
	dir string
	rs  [3]*realServer
}

func newSBLab(t *testing.T) *sbLab {
	t.Helper()
	l := &sbLab{dir: t.TempDir()}
	if v := l.ipvsadm(t); v != "" {
		t.Fatalf("the kernel table is not empty at the start:\n%s", v)
	}
	kernSh(t, sbTopology)
	t.Cleanup(func() { exec.Command("/bin/sh", "-c", sbTeardown).Run() })
	for i := range l.rs {
		l.rs[i] = startRealServer(t, fmt.Sprintf("sb%d", i+1))
	}
	return l
}

func (l *sbLab) all(t *testing.T, mode string) {
	for _, s := range l.rs {
		s.set(t, mode)
	}
}

func (l *sbLab) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func (l *sbLab) ipvsadm(t *testing.T) view {
	t.Helper()
	for {
		ln := kernSh(t, "ipvsadm -Ln")
		th := kernSh(t, "ipvsadm -Ln --thresholds")
		v, err := ipvsadmView(ln, th)
		if errors.Is(err, errTableMoved) {
			continue
		}
		if err != nil {
			t.Fatalf("%v\n%s\n%s", err, ln, th)
		}
		return v
	}
}

// kernSh runs a shell snippet in the VM and fails the test on error.
func kernSh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// keepalived is Debian's keepalived, in the foreground, its checkers
// only.
type keepalived struct {
	cmd  *exec.Cmd
	logs *testutil.SyncBuffer
	conf string
	done chan struct{}
	once sync.Once
}

// startKeepalived runs keepalived on a copy of conf of its own, which a
// reload replaces.
func startKeepalived(t *testing.T, conf string) *keepalived {
	t.Helper()
	dir := t.TempDir()
	k := &keepalived{logs: &testutil.SyncBuffer{}, conf: filepath.Join(dir, "keepalived.conf"), done: make(chan struct{})}
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	k.cmd = exec.Command("keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--check",
		"--use-file", k.conf, "--pid", filepath.Join(dir, "keepalived.pid"), "--checkers_pid", filepath.Join(dir, "checkers.pid"),
		"--vrrp_pid", filepath.Join(dir, "vrrp.pid"), "--bfd_pid", filepath.Join(dir, "bfd.pid"))
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	if err := k.cmd.Start(); err != nil {
		t.Fatalf("keepalived: %v", err)
	}
	go func() { k.cmd.Wait(); close(k.done) }()
	t.Cleanup(func() {
		k.stop(t)
		if t.Failed() {
			t.Logf("keepalived's log:\n%s", tail(k.logs.String(), 100))
		}
	})
	return k
}

// reload: keepalived re-reads its -f file on SIGHUP.
func (k *keepalived) reload(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(k.conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := k.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("keepalived reload: %v", err)
	}
}

// stop ends keepalived with SIGTERM, as systemd does, and waits for it.
func (k *keepalived) stop(t *testing.T) {
	k.once.Do(func() {
		k.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-k.done:
		case <-time.After(15 * time.Second):
			t.Errorf("keepalived did not stop within 15 s of SIGTERM")
			k.cmd.Process.Kill()
			<-k.done
		}
	})
}

// lvsmonKernel is lvsmon on the netlink backend with the import of a
// keepalived.conf.
type lvsmonKernel struct {
	rig  *lvsmonRig
	nl   *lvs.Netlink
	data string
}

func startLvsmonKernel(t *testing.T, l *sbLab, conf, data string) *lvsmonKernel {
	t.Helper()
	cfg := importConfig(t, importer.FormatKeepalived, conf, data)
	nl, err := lvs.NewNetlink()
	if err != nil {
		t.Fatalf("netlink in the VM: %v", err)
	}
	t.Cleanup(func() { nl.Close() })
	return &lvsmonKernel{rig: startLvsmon(t, cfg, nl, true), nl: nl, data: data}
}

func (m *lvsmonKernel) reload(t *testing.T, path string) {
	t.Helper()
	m.rig.reload(importConfig(t, importer.FormatKeepalived, path, m.data))
}

func (m *lvsmonKernel) stop(*testing.T) { m.rig.stop() }

// Real server modes.
const (
	rsOK   = "ok"   // passes its checks
	rsSick = "sick" // its health page answers 503; its TCP port accepts
	rsHang = "hang" // accepts connections and never answers (a hung application)
	rsDown = "down" // nothing listens: connections are refused
)

// realServer is a real server in its namespace: HTTP on port 80 (the
// health page /health.html) and a TCP port 8080 that accepts and
// closes, each of which can be made to fail.
type realServer struct {
	ns   string
	mu   sync.Mutex
	mode string
	wake chan struct{} // closed (and replaced) at every mode change
	web  *http.Server
	tcp  net.Listener
}

func startRealServer(t *testing.T, ns string) *realServer {
	t.Helper()
	s := &realServer{ns: ns, mode: rsDown, wake: make(chan struct{})}
	s.set(t, rsOK)
	t.Cleanup(func() { s.set(t, rsDown) })
	return s
}

func (s *realServer) set(t *testing.T, mode string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == mode {
		return
	}
	was := s.mode
	s.mode = mode
	close(s.wake)
	s.wake = make(chan struct{})
	switch {
	case mode == rsDown:
		s.web.Close()
		s.tcp.Close()
	case was == rsDown:
		var web net.Listener
		err := inNS(s.ns, func() (err error) {
			if web, err = net.Listen("tcp", ":80"); err != nil {
				return err
			}
			s.tcp, err = net.Listen("tcp", ":8080")
			return err
		})
		if err != nil {
			t.Fatalf("real server in %s: %v", s.ns, err)
		}
		s.web = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
		s.web.SetKeepAlivesEnabled(false)
		go s.web.Serve(web)
		go func(l net.Listener) {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}(s.tcp)
	}
}

func (s *realServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	for {
		s.mu.Lock()
		mode, wake := s.mode, s.wake
		s.mu.Unlock()
		if mode != rsHang {
			if mode == rsSick {
				http.Error(w, "sick", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "OK")
			return
		}
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		}
	}
}

// inNS runs fn on an OS thread of its own that has joined the network
// namespace ns: the sockets fn creates live in ns. The thread is never
// handed back to the scheduler.
func inNS(ns string, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // and never unlocked: the thread dies with the goroutine
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}
