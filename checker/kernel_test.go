//go:build ipvskernel

// The classic LVS scenario, end to end, against the real kernel: these
// tests run only inside the qemu VM that test/vm/vmexec.sh boots
// (Debian's own kernel, real IPVS). `make test-kernel` builds them with
// the ipvskernel tag and runs the binary there; they never run, and so
// never skip, on a host.
//
// The pieces are lvsmon's own: config.Parse, the netlink backend, the
// event log, the checker with its real probes and the reconciler. The
// test only breaks and mends health pages, then watches the kernel table
// (through netlink, and through ipvsadm -Ln as the reference) and what a
// client in its own namespace gets back.

package checker

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

func TestMain(m *testing.M) {
	if os.Getenv("LVSMON_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "checker kernel tests must run inside the qemu VM: make test-kernel (CGO_ENABLED=0 go test -tags ipvskernel -exec $PWD/test/vm/vmexec.sh ./checker/)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// The director is the VM's root namespace, with the VIP on a dummy
// interface; the client and the two real servers live in namespaces of
// their own, each on a veth pair. rs1 is reached by direct routing (the
// VIP on its lo, ARP for it silenced), rs2 by NAT (its default route is
// the director, so the replies come back through it). The health checks
// run from the root namespace to the real servers' own addresses.
const (
	kernVIP   = "10.200.100.10"
	kernRS1   = "10.201.1.2"
	kernRS2   = "10.201.2.2"
	kernSorry = "127.0.0.1"
	kernWWW   = "/tmp/lvsmon-kt" // web roots: www1, www2, sorry
)

const kernTopology = `
set -e
ip() { /sbin/ip "$@"; }
ip link add kt-vip type dummy
ip link set kt-vip up
ip addr add 10.200.100.10/32 dev kt-vip
for ns in cl rs1 rs2; do ip netns add $ns; done
ip link add kt-c0 type veth peer name kt-c1 netns cl
ip link add kt-r1a type veth peer name kt-r1b netns rs1
ip link add kt-r2a type veth peer name kt-r2b netns rs2
ip addr add 10.201.0.1/24 dev kt-c0
ip addr add 10.201.1.1/24 dev kt-r1a
ip addr add 10.201.2.1/24 dev kt-r2a
for l in kt-c0 kt-r1a kt-r2a; do ip link set $l up; done
ip -n cl addr add 10.201.0.2/24 dev kt-c1
ip -n cl link set kt-c1 up
ip -n cl link set lo up
ip -n cl route add default via 10.201.0.1
for n in 1 2; do
  ip -n rs$n addr add 10.201.$n.2/24 dev kt-r${n}b
  ip -n rs$n link set kt-r${n}b up
  ip -n rs$n link set lo up
  ip -n rs$n route add default via 10.201.$n.1
done
# rs1 is a direct-routing real server: it holds the VIP and does not
# answer ARP for it.
ip -n rs1 addr add 10.200.100.10/32 dev lo
nsenter --net=/run/netns/rs1 sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
sysctl -q -w net.ipv4.ip_forward=1
# DR replies come back through the director with the VIP as source.
sysctl -q -w net.ipv4.conf.all.accept_local=1
`

const kernTeardown = `
ip() { /sbin/ip "$@"; }
for ns in cl rs1 rs2; do ip netns del $ns; done
ip link del kt-vip
true
`

// kernSh runs a shell snippet in the VM and fails the test on error.
func kernSh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// kernHTTPD serves dir on port 80 in namespace ns ("" is the root
// namespace, where busybox httpd listens on 0.0.0.0) until the test ends,
// and waits until addr accepts connections.
func kernHTTPD(t *testing.T, ns, dir, addr string) {
	t.Helper()
	args := []string{"httpd", "-f", "-p", "80", "-h", dir}
	if ns != "" {
		args = append([]string{"nsenter", "--net=/run/netns/" + ns}, args...)
	}
	cmd := exec.Command(args[0], args[1:]...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(addr, "80"), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("httpd in %q on %s: %v", ns, addr, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func kernWrite(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// kernFetch makes n requests to the VIP from the client namespace, one
// connection each, and counts the answers by body ("rs1", "rs2",
// "sorry", or "error").
func kernFetch(t *testing.T, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		out, err := exec.Command("nsenter", "--net=/run/netns/cl", "timeout", "5", "wget", "-q", "-O", "-", "http://"+kernVIP+"/").CombinedOutput()
		if err != nil {
			got["error"]++
			t.Logf("client request failed: %v: %s", err, bytes.TrimSpace(out))
			continue
		}
		got[string(bytes.TrimSpace(out))]++
	}
	return got
}

// kernView is a table reduced to what ipvsadm -Ln shows of it:
// "TCP 10.200.100.10:80 wrr" -> "10.201.1.2:80" -> "Route 3".
type kernView map[string]map[string]string

// ipvsadmForward is ipvsadm's name of a forwarding method.
func ipvsadmForward(f lvs.Forward) string {
	switch f {
	case lvs.DR:
		return "Route"
	case lvs.NAT:
		return "Masq"
	case lvs.Tunnel:
		return "Tunnel"
	case lvs.Local:
		return "Local"
	}
	return f.String()
}

func kernViewOf(tab lvs.Table) kernView {
	v := kernView{}
	for _, s := range tab.Services {
		ds := map[string]string{}
		for _, d := range s.Dests {
			ds[d.Key.String()] = ipvsadmForward(d.Forward) + " " + strconv.Itoa(int(d.Weight))
		}
		v[s.Key.String()+" "+s.Scheduler] = ds
	}
	return v
}

// kernIpvsadm parses `ipvsadm -Ln`:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
//	TCP  10.200.100.10:80 wrr
//	  -> 10.201.1.2:80                Route   3      0          0
func kernIpvsadm(t *testing.T) (kernView, string) {
	t.Helper()
	out, err := exec.Command("ipvsadm", "-Ln").CombinedOutput()
	if err != nil {
		t.Fatalf("ipvsadm -Ln: %v\n%s", err, out)
	}
	v := kernView{}
	var cur map[string]string
	for i, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case i < 3 || len(f) == 0:
		case f[0] == "->" && len(f) >= 4 && cur != nil:
			cur[f[1]] = f[2] + " " + f[3]
		case len(f) >= 3 && (f[0] == "TCP" || f[0] == "UDP" || f[0] == "SCTP"):
			cur = map[string]string{}
			v[f[0]+" "+f[1]+" "+f[2]] = cur
		default:
			t.Fatalf("ipvsadm -Ln: line %d not understood: %q\n%s", i+1, line, out)
		}
	}
	return v, string(out)
}

// kernRig is lvsmon's checking half, wired as cmd/lvsmon wires it: the
// checker kicks the reconciler on every health change, the reconciler
// reads the config in force through a pointer that a reload swaps.
type kernRig struct {
	t    *testing.T
	nl   *lvs.Netlink
	ev   *events.Log
	chk  *Checker
	rec  *Reconciler
	cur  atomic.Pointer[config.Config]
	key  lvs.ServiceKey
	rs1  lvs.DestKey
	rs2  lvs.DestKey
	sry  lvs.DestKey
	seen int // events already looked at
}

// kernConfig is the service under test with the given on_failure.
func kernConfig(t *testing.T, dataDir, onFailure string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`data_dir: %s
virtual_services:
  - name: web
    address: %s
    port: 80
    scheduler: wrr
    on_failure: %s
    sorry_server: {address: %s, port: 80, forward: dr}
    check: {type: http, path: /.health.html, expect: OK, interval: 200ms, timeout: 1s, rise: 1, fall: 1}
    real_servers:
      - {address: %s, weight: 3, forward: dr}
      - {address: %s, weight: 2, forward: nat}
`, dataDir, kernVIP, onFailure, kernSorry, kernRS1, kernRS2)
	cfg, err := config.Parse("kernel-test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	for _, w := range cfg.Warnings {
		t.Errorf("config warning: %s", w)
	}
	return cfg
}

// startKernRig starts the checker and the reconciler on the real kernel
// with cfg, and stops them (and empties the table) when the test ends.
func startKernRig(t *testing.T, cfg *config.Config) *kernRig {
	t.Helper()
	nl, err := lvs.NewNetlink()
	if err != nil {
		t.Fatalf("netlink in the VM: %v", err)
	}
	logs := &testutil.SyncBuffer{} // printed when the test fails
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ev, err := events.Open(t.TempDir(), 0, log)
	if err != nil {
		t.Fatal(err)
	}
	k := &kernRig{t: t, nl: nl, ev: ev, key: cfg.VirtualServices[0].Key,
		rs1: cfg.VirtualServices[0].Reals[0].Key, rs2: cfg.VirtualServices[0].Reals[1].Key, sry: cfg.VirtualServices[0].Sorry.Key}
	k.cur.Store(cfg)
	k.chk = New(ProbeServer, ev, log.With("component", "checker"), func() { k.rec.Kick() })
	k.rec = NewReconciler(nl, k.cur.Load, k.chk.Health, nil, ev, log.With("component", "reconciler"), false)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); k.rec.Run(ctx, time.Second) }()
	k.chk.Apply(cfg)
	go func() { defer wg.Done(); k.chk.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		wg.Wait()
		if err := nl.DeleteService(context.Background(), k.key); err != nil {
			t.Errorf("removing the service at the end: %v", err)
		}
		nl.Close()
		ev.Close()
		if t.Failed() {
			t.Logf("lvsmon's log:\n%s", logs.String())
		}
	})
	return k
}

// wait polls the kernel table through netlink until ok accepts it, and
// returns it with the time it took.
func (k *kernRig) wait(what string, ok func(s *lvs.Service) bool) (lvs.Table, time.Duration) {
	k.t.Helper()
	start := time.Now()
	deadline := start.Add(15 * time.Second)
	for {
		tab, err := k.nl.Table(context.Background())
		if err != nil {
			k.t.Fatal(err)
		}
		if s := tab.Service(k.key); s != nil && ok(s) {
			return tab, time.Since(start)
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("waiting %s for %s: kernel table %v; health %v", time.Since(start).Round(time.Millisecond), what, kernViewOf(tab), k.chk.Health())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// weights reduces a service to its real servers' weights by address, the
// sorry server included: "10.201.1.2:80" -> 3.
func weights(s *lvs.Service) map[string]int32 {
	m := map[string]int32{}
	for _, d := range s.Dests {
		m[d.Key.String()] = d.Weight
	}
	return m
}

// settled checks the table the reconciler left against three other
// views: ipvsadm's, the expected one, and lvsmon's own plan (which must
// have nothing left to do: the kernel reports back what lvsmon wrote).
func (k *kernRig) settled(step string, tab lvs.Table, want map[string]string) {
	k.t.Helper()
	nv := kernViewOf(tab)
	iv, raw := kernIpvsadm(k.t)
	wantView := kernView{"TCP " + kernVIP + ":80 wrr": want}
	if !maps.EqualFunc(nv, wantView, maps.Equal) {
		k.t.Errorf("%s: netlink view %v, want %v", step, nv, wantView)
	}
	if !maps.EqualFunc(nv, iv, maps.Equal) {
		k.t.Errorf("%s: netlink view %v differs from ipvsadm -Ln:\n%s", step, nv, raw)
	}
	cfg := k.cur.Load()
	st := State{Health: k.chk.Health(), SorryActive: map[string]bool{k.key.ID(): k.rec.SorryActive(k.key.ID())}, Act: true}
	if res := Plan(cfg, tab, st); len(res.Actions) > 0 {
		k.t.Errorf("%s: lvsmon still plans %v on the settled table", step, res.Actions)
	}
	k.t.Logf("%s: kernel table as ipvsadm -Ln shows it:\n%s", step, strings.TrimRight(raw, "\n"))
}

// health waits until the checker holds the wanted health for both real
// servers (it normally does by the time the table shows it).
func (k *kernRig) health(step string, h1, h2 Health) {
	k.t.Helper()
	id1, id2 := lvs.DestID(k.key, k.rs1), lvs.DestID(k.key, k.rs2)
	deadline := time.Now().Add(15 * time.Second)
	for {
		h := k.chk.Health()
		if h[id1] == h1 && h[id2] == h2 {
			return
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s: health %v, want %s %s", step, h, h1, h2)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// events waits until the events written since the last call include
// every wanted one (kind and server id, message substring), and returns
// the new events. Extra events are logged, not failed: a check that
// happens to time out on a loaded host is no fault of lvsmon.
func (k *kernRig) events(step string, want ...events.Event) []events.Event {
	k.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		all := k.ev.Query(events.Filter{})
		evs := all[k.seen:]
		var missing []events.Event
		used := map[int]bool{}
	next:
		for _, w := range want {
			for i, e := range evs {
				if !used[i] && e.Kind == w.Kind && e.Server == w.Server && e.Service == k.key.ID() && strings.Contains(e.Message, w.Message) {
					used[i] = true
					continue next
				}
			}
			missing = append(missing, w)
		}
		if len(missing) == 0 {
			k.seen = len(all)
			for i, e := range evs {
				if !used[i] {
					k.t.Logf("%s: unexpected extra event %s %s: %s", step, e.Kind, e.Server, e.Message)
				}
			}
			return evs
		}
		if time.Now().After(deadline) {
			k.t.Fatalf("%s: events %+v lack %+v", step, evs, missing)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (k *kernRig) down(d lvs.DestKey, msg string) events.Event {
	return events.Event{Kind: events.ServerDown, Server: lvs.DestID(k.key, d), Message: msg}
}

func (k *kernRig) up(d lvs.DestKey) events.Event {
	return events.Event{Kind: events.ServerUp, Server: lvs.DestID(k.key, d), Message: "is up"}
}

// wantAnswers checks that all n answers came from the wanted bodies and
// that each of them answered at least once.
func wantAnswers(t *testing.T, step string, got map[string]int, n int, want ...string) {
	t.Helper()
	sum := 0
	for _, w := range want {
		if got[w] == 0 {
			t.Errorf("%s: %d requests got %v: none from %s", step, n, got, w)
		}
		sum += got[w]
	}
	if sum != n {
		t.Errorf("%s: %d requests got %v, want answers only from %v", step, n, got, want)
	} else {
		t.Logf("%s: %d requests got %v", step, n, got)
	}
}

// TestKernelClassicScenario is issue 5's scenario: a VIP with two real
// servers health-checked over HTTP, quiescent on failure with a sorry
// server on the director; break one, break both, mend both; then, after
// a reload to on_failure: remove, the same again.
func TestKernelClassicScenario(t *testing.T) {
	begin := time.Now()
	kernSh(t, kernTopology)
	t.Cleanup(func() { exec.Command("/bin/sh", "-c", kernTeardown).Run() })
	www1, www2, sorry := filepath.Join(kernWWW, "www1"), filepath.Join(kernWWW, "www2"), filepath.Join(kernWWW, "sorry")
	t.Cleanup(func() { os.RemoveAll(kernWWW) })
	for dir, name := range map[string]string{www1: "rs1", www2: "rs2", sorry: "sorry"} {
		kernWrite(t, filepath.Join(dir, "index.html"), name+"\n")
	}
	health1, health2 := filepath.Join(www1, ".health.html"), filepath.Join(www2, ".health.html")
	kernWrite(t, health1, "OK\n")
	kernWrite(t, health2, "OK\n")
	kernHTTPD(t, "rs1", www1, kernRS1)
	kernHTTPD(t, "rs2", www2, kernRS2)
	kernHTTPD(t, "", sorry, kernSorry) // the root namespace: 0.0.0.0:80
	if tab, err := lvs.NewProcfs("/proc").Table(context.Background()); err != nil || len(tab.Services) != 0 {
		t.Fatalf("the kernel table is not empty at the start: %v %v", kernViewOf(tab), err)
	}

	cfg := kernConfig(t, t.TempDir(), "quiescent")
	k := startKernRig(t, cfg)
	rs1, rs2, sry := k.rs1.String(), k.rs2.String(), k.sry.String()
	var latencies []string
	breakPage := func(path string, d lvs.DestKey, what string, cond func(*lvs.Service) bool) lvs.Table {
		t.Helper()
		if err := os.Remove(path); err != nil {
			t.Fatal(err)
		}
		tab, took := k.wait(what, cond)
		latencies = append(latencies, fmt.Sprintf("%s %s", what, took.Round(time.Millisecond)))
		t.Logf("detection latency: %s's health page removed -> %s in %s", d, what, took.Round(time.Millisecond))
		return tab
	}
	const notFound = "http: status 404, want 200-299"

	// 1. Start: both real servers at their configured weights, checks
	// passing, no sorry server; the client reaches both.
	tab, took := k.wait("both real servers at their weights", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{rs1: 3, rs2: 2})
	})
	t.Logf("start: service and real servers in the kernel %s after Apply", took.Round(time.Millisecond))
	k.health("start", Up, Up)
	k.settled("start", tab, map[string]string{rs1: "Route 3", rs2: "Masq 2"})
	wantAnswers(t, "start", kernFetch(t, 6), 6, "rs1", "rs2")
	if evs := k.events("start"); len(evs) != 0 {
		t.Errorf("start: events %+v, want none (unknown -> up with startup: up is silent)", evs)
	}

	// 2. rs1's health page goes (its httpd still serves /): quiescent,
	// weight 0, and every request goes to rs2.
	tab = breakPage(health1, k.rs1, "rs1 weight 0", func(s *lvs.Service) bool { return weights(s)[rs1] == 0 })
	tab, _ = k.wait("rs1 quiescent only", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{rs1: 0, rs2: 2})
	})
	k.health("rs1 broken", Down, Up)
	k.settled("rs1 broken", tab, map[string]string{rs1: "Route 0", rs2: "Masq 2"})
	wantAnswers(t, "rs1 broken", kernFetch(t, 4), 4, "rs2")
	k.events("rs1 broken", k.down(k.rs1, notFound))
	for _, st := range k.chk.Status() {
		if st.ID == lvs.DestID(k.key, k.rs1) && (st.Health != "down" || st.LastMsg != notFound || st.LastOK) {
			t.Errorf("rs1 broken: checker status %+v", st)
		}
	}

	// 3. rs2's too: both quiescent, the sorry server (DR to the
	// director itself) comes in and the client gets the sorry page.
	tab = breakPage(health2, k.rs2, "sorry server in", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{rs1: 0, rs2: 0, sry: 1})
	})
	k.health("both broken", Down, Down)
	k.settled("both broken", tab, map[string]string{rs1: "Route 0", rs2: "Masq 0", sry: "Route 1"})
	if !k.rec.SorryActive(k.key.ID()) {
		t.Error("both broken: the reconciler does not report the sorry server active")
	}
	wantAnswers(t, "both broken", kernFetch(t, 4), 4, "sorry")
	k.events("both broken", k.down(k.rs2, notFound), events.Event{Kind: events.SorryOn, Message: sry})

	// 4. Both pages back: the configured weights exactly, sorry server
	// out, both real servers answer again.
	start := time.Now()
	kernWrite(t, health1, "OK\n")
	kernWrite(t, health2, "OK\n")
	tab, _ = k.wait("weights restored, sorry server out", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{rs1: 3, rs2: 2})
	})
	t.Logf("recovery latency: pages restored -> weights back, sorry server out in %s", time.Since(start).Round(time.Millisecond))
	k.health("restored", Up, Up)
	k.settled("restored", tab, map[string]string{rs1: "Route 3", rs2: "Masq 2"})
	if k.rec.SorryActive(k.key.ID()) {
		t.Error("restored: the reconciler still reports the sorry server active")
	}
	wantAnswers(t, "restored", kernFetch(t, 6), 6, "rs1", "rs2")
	k.events("restored", k.up(k.rs1), k.up(k.rs2), events.Event{Kind: events.SorryOff})

	// 5. Reload with on_failure: remove. Nothing is down, so the reload
	// changes nothing in the kernel, and the check loops keep running.
	applied := k.rec.Stats().Applied
	before := k.chk.Status()
	cfg2 := kernConfig(t, cfg.DataDir, "remove")
	k.cur.Store(cfg2)
	k.chk.Apply(cfg2)
	k.rec.Kick()
	rounds := k.rec.Stats().Rounds
	deadline := time.Now().Add(15 * time.Second)
	for k.rec.Stats().Rounds < rounds+2 {
		if time.Now().After(deadline) {
			t.Fatalf("reload: no reconcile round after the kick: %+v", k.rec.Stats())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if st := k.rec.Stats(); st.Applied != applied {
		t.Errorf("reload to on_failure: remove with every server up wrote to the kernel: %d actions before, %d after", applied, st.Applied)
	}
	tab, _ = k.wait("reloaded", func(*lvs.Service) bool { return true })
	k.settled("reloaded", tab, map[string]string{rs1: "Route 3", rs2: "Masq 2"})
	for i, st := range k.chk.Status() {
		if st.Health != "up" || st.Successes < before[i].Successes {
			t.Errorf("reload: checker status %+v, before %+v", st, before[i])
		}
	}

	tab = breakPage(health1, k.rs1, "rs1 removed", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{rs2: 2})
	})
	k.health("remove: rs1 broken", Down, Up)
	k.settled("remove: rs1 broken", tab, map[string]string{rs2: "Masq 2"})
	wantAnswers(t, "remove: rs1 broken", kernFetch(t, 4), 4, "rs2")
	k.events("remove: rs1 broken", k.down(k.rs1, notFound))

	tab = breakPage(health2, k.rs2, "only the sorry server", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{sry: 1})
	})
	k.health("remove: both broken", Down, Down)
	k.settled("remove: both broken", tab, map[string]string{sry: "Route 1"})
	wantAnswers(t, "remove: both broken", kernFetch(t, 4), 4, "sorry")
	k.events("remove: both broken", k.down(k.rs2, notFound), events.Event{Kind: events.SorryOn, Message: sry})

	start = time.Now()
	kernWrite(t, health1, "OK\n")
	kernWrite(t, health2, "OK\n")
	tab, _ = k.wait("real servers back, sorry server out", func(s *lvs.Service) bool {
		return maps.Equal(weights(s), map[string]int32{rs1: 3, rs2: 2})
	})
	t.Logf("recovery latency (remove): pages restored -> real servers back, sorry server out in %s", time.Since(start).Round(time.Millisecond))
	k.health("remove: restored", Up, Up)
	k.settled("remove: restored", tab, map[string]string{rs1: "Route 3", rs2: "Masq 2"})
	wantAnswers(t, "remove: restored", kernFetch(t, 6), 6, "rs1", "rs2")
	k.events("remove: restored", k.up(k.rs1), k.up(k.rs2), events.Event{Kind: events.SorryOff})

	st := k.rec.Stats()
	if st.Failed != 0 {
		t.Errorf("the reconciler had failed writes: %+v", st)
	}
	var checks []string
	for _, s := range k.chk.Status() {
		checks = append(checks, fmt.Sprintf("%s: %d ok, %d failed, last %s", s.ID, s.Successes, s.Failures, s.LastDur.Round(time.Microsecond)))
	}
	slices.Sort(checks)
	t.Logf("detection latencies (page removed -> kernel table): %s", strings.Join(latencies, "; "))
	t.Logf("reconciler: %d rounds, %d actions; checks: %s; scenario took %s", st.Rounds, st.Applied, strings.Join(checks, "; "), time.Since(begin).Round(time.Millisecond))
}
