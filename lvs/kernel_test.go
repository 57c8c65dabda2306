//go:build ipvskernel

// These tests run only inside the qemu VM that test/vm/vmexec.sh boots
// (Debian's own kernel, real IPVS): `make test-kernel` builds them with
// the ipvskernel tag and runs the binary there. They never run, and so
// never skip, on a host.

package lvs

import (
	"bytes"
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) {
	if os.Getenv("LVSMON_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "kernel tests must run inside the qemu VM: make test-kernel (go test -tags ipvskernel -exec test/vm/vmexec.sh)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// sh runs a shell snippet in the VM and fails the test on error.
func sh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

func newNetlink(t *testing.T) *Netlink {
	t.Helper()
	n, err := NewNetlink()
	if err != nil {
		t.Fatalf("netlink in the VM: %v", err)
	}
	t.Cleanup(func() { n.Close() })
	return n
}

func TestKernelInfo(t *testing.T) {
	uname := strings.TrimSpace(sh(t, "uname -r"))
	t.Logf("running inside qemu on Linux %s with real IPVS: %s", uname, strings.SplitN(sh(t, "cat /proc/net/ip_vs"), "\n", 2)[0])
	tab, err := newNetlink(t).Table(context.Background())
	if err != nil || len(tab.Services) != 0 {
		t.Fatalf("empty kernel table: %+v, %v", tab, err)
	}
}

// TestKernelContract runs the write contract the fake is held to against
// the real kernel: create, duplicate, read back (IPv4, IPv6, fwmark,
// persistence), read-modify-write of a weight, update, delete, not-found.
func TestKernelContract(t *testing.T) {
	backendContract(t, newNetlink(t))
}

// The topology: the VM's root namespace is the director; a client and two
// real servers live in namespaces of their own, each on a veth pair. The
// real servers' default route is the director, so NAT replies come back
// through it. Addresses are private to the VM (it has no network card).
const topology = `
set -e
ip() { /sbin/ip "$@"; }
ip link add dummy0 type dummy
ip link set dummy0 up
ip addr add 10.200.100.10/32 dev dummy0
ip addr add 10.200.200.10/32 dev dummy0
for ns in cl rs1 rs2; do ip netns add $ns; done
ip link add vc0 type veth peer name vc1 netns cl
ip link add vr1a type veth peer name vr1b netns rs1
ip link add vr2a type veth peer name vr2b netns rs2
ip addr add 10.201.0.1/24 dev vc0
ip addr add 10.201.1.1/24 dev vr1a
ip addr add 10.201.2.1/24 dev vr2a
for l in vc0 vr1a vr2a; do ip link set $l up; done
ip -n cl addr add 10.201.0.2/24 dev vc1
ip -n cl link set vc1 up
ip -n cl link set lo up
ip -n cl route add default via 10.201.0.1
for n in 1 2; do
  ip -n rs$n addr add 10.201.$n.2/24 dev vr${n}b
  ip -n rs$n link set vr${n}b up
  ip -n rs$n link set lo up
  ip -n rs$n route add default via 10.201.$n.1
  ip -n rs$n addr add 10.200.200.10/32 dev lo
  nsenter --net=/run/netns/rs$n sysctl -q -w net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2
  mkdir -p /tmp/www$n
  echo rs$n > /tmp/www$n/index.html
done
sysctl -q -w net.ipv4.ip_forward=1
sysctl -q -w net.ipv4.conf.all.accept_local=1
`

func startHTTPD(t *testing.T, n int) {
	t.Helper()
	cmd := exec.Command("nsenter", fmt.Sprintf("--net=/run/netns/rs%d", n), "httpd", "-f", "-p", "80", "-h", fmt.Sprintf("/tmp/www%d", n))
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
}

// fetch makes n requests from the client namespace and counts the
// answers by real server.
func fetch(t *testing.T, url string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	for range n {
		out, err := exec.Command("nsenter", "--net=/run/netns/cl", "timeout", "5", "wget", "-q", "-O", "-", url).CombinedOutput()
		if err != nil {
			got["error"]++
			continue
		}
		got[string(bytes.TrimSpace(out))]++
	}
	return got
}

// waitTable polls the kernel until ok accepts the table: IPVS folds its
// per-CPU counters only about every 2 s, so counters lag the traffic.
func waitTable(t *testing.T, r Reader, what string, ok func(Table) bool) Table {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		tab, err := r.Table(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if ok(tab) {
			return tab
		}
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: table is %+v", what, tab)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func TestKernelTrafficNATandDR(t *testing.T) {
	sh(t, topology)
	startHTTPD(t, 1)
	startHTTPD(t, 2)
	time.Sleep(200 * time.Millisecond)
	n := newNetlink(t)
	ctx := context.Background()
	nat := AddrKey(TCP, netip.MustParseAddr("10.200.100.10"), 80)
	dr := AddrKey(TCP, netip.MustParseAddr("10.200.200.10"), 80)
	r1 := DestKey{Addr: netip.MustParseAddr("10.201.1.2"), Port: 80}
	r2 := DestKey{Addr: netip.MustParseAddr("10.201.2.2"), Port: 80}
	for _, err := range []error{
		n.CreateService(ctx, Service{Key: nat, Scheduler: "rr"}),
		n.CreateDest(ctx, nat, Dest{Key: r1, Forward: NAT, Weight: 1, UpperThreshold: 1000}),
		n.CreateDest(ctx, nat, Dest{Key: r2, Forward: NAT, Weight: 1}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}

	// NAT round robin: three requests each.
	if got := fetch(t, "http://10.200.100.10/", 6); got["rs1"] != 3 || got["rs2"] != 3 {
		t.Fatalf("NAT rr answers = %v", got)
	}
	tab := waitTable(t, n, "NAT counters", func(tb Table) bool {
		s := tb.Service(nat)
		return s != nil && s.Stats.Conns == 6 && s.Stats.OutBytes > 0 && s.Dest(r1).Stats.Conns == 3 && s.Dest(r2).Stats.InPkts > 0
	})
	s := tab.Service(nat)
	d1, d2 := s.Dest(r1), s.Dest(r2)
	t.Logf("NAT service after 6 requests: %+v; rs1 %+v; rs2 %+v", s.Stats, d1.Stats, d2.Stats)
	if d1.Stats.InBytes+d2.Stats.InBytes != s.Stats.InBytes || d1.Forward != NAT || d1.UpperThreshold != 1000 {
		t.Errorf("per-server counters do not add up: %+v %+v %+v", s.Stats, d1, d2)
	}
	if d1.InactiveConns+d1.ActiveConns == 0 {
		t.Errorf("no connection entries on rs1: %+v", d1)
	}

	// The procfs backend reads the same table from /proc/net/ip_vs.
	ptab, err := NewProcfs("/proc").Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ps := ptab.Service(nat)
	if ps == nil || ps.Scheduler != "rr" || len(ps.Dests) != 2 || ps.Dest(r1).Weight != 1 || ps.Dest(r1).Forward != NAT {
		t.Errorf("procfs view: %+v", ps)
	}
	if ptab.Totals.Conns < 6 || ptab.Totals.InBytes < s.Stats.InBytes {
		t.Errorf("procfs totals %+v below netlink's service counters %+v", ptab.Totals, s.Stats)
	}

	// Weight 0 by read-modify-write: rs1 gets nothing, keeps its settings.
	if err := n.SetWeight(ctx, nat, r1, 0); err != nil {
		t.Fatal(err)
	}
	if got := fetch(t, "http://10.200.100.10/", 4); got["rs2"] != 4 {
		t.Errorf("after weight 0 on rs1: %v", got)
	}
	tab, _ = n.Table(ctx)
	if d := tab.Service(nat).Dest(r1); d.Weight != 0 || d.Forward != NAT || d.UpperThreshold != 1000 {
		t.Errorf("rs1 after SetWeight: %+v", d)
	}

	// DR weighted round robin 2:1, real servers reply from the VIP.
	for _, err := range []error{
		n.CreateService(ctx, Service{Key: dr, Scheduler: "wrr"}),
		n.CreateDest(ctx, dr, Dest{Key: r1, Forward: DR, Weight: 2}),
		n.CreateDest(ctx, dr, Dest{Key: r2, Forward: DR, Weight: 1}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := fetch(t, "http://10.200.200.10/", 6); got["rs1"] != 4 || got["rs2"] != 2 {
		t.Errorf("DR wrr 2:1 answers = %v", got)
	}
	waitTable(t, n, "DR counters", func(tb Table) bool {
		s := tb.Service(dr)
		return s != nil && s.Stats.Conns == 6 && s.Dest(r1).Stats.Conns == 4 && s.Dest(r1).Forward == DR
	})
	for _, k := range []ServiceKey{nat, dr} {
		if err := n.DeleteService(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if tab, _ := n.Table(ctx); len(tab.Services) != 0 {
		t.Errorf("table not empty at the end: %+v", tab.Services)
	}
}

// TestKernelProcfsMatchesNetlink checks the procfs parser against what
// the real kernel prints for every kind of service: IPv4, IPv6, fwmark of
// both families, persistence with a netmask, one-packet scheduling, and
// every forwarding method lvsmon sets.
func TestKernelProcfsMatchesNetlink(t *testing.T) {
	n := newNetlink(t)
	ctx := context.Background()
	a4 := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	svcs := []Service{
		{Key: AddrKey(TCP, a4("10.202.0.1"), 80), Scheduler: "wlc"},
		{Key: AddrKey(UDP, a4("10.202.0.1"), 53), Scheduler: "rr", OnePacket: true},
		{Key: AddrKey(SCTP, a4("10.202.0.2"), 3868), Scheduler: "sh"},
		{Key: AddrKey(TCP, a4("10.202.0.3"), 443), Scheduler: "wrr", Persistence: 300 * time.Second, Netmask: 24},
		{Key: AddrKey(TCP, a4("2001:db8:202::1"), 80), Scheduler: "lc"},
		{Key: AddrKey(TCP, a4("2001:db8:202::2"), 443), Scheduler: "rr", Persistence: 60 * time.Second, Netmask: 64},
		{Key: MarkKey(10, IPv4), Scheduler: "wrr"},
		{Key: MarkKey(11, IPv6), Scheduler: "rr"},
	}
	for i, s := range svcs {
		if err := n.CreateService(ctx, s); err != nil {
			t.Fatal(err)
		}
		var d1, d2 netip.Addr
		if s.Key.Family == IPv6 {
			d1, d2 = a4(fmt.Sprintf("2001:db8:203::%x", 2*i+1)), a4(fmt.Sprintf("2001:db8:203::%x", 2*i+2))
		} else {
			d1, d2 = a4(fmt.Sprintf("10.203.%d.1", i)), a4(fmt.Sprintf("10.203.%d.2", i))
		}
		port := s.Key.Port
		if s.Key.IsFWMark() {
			port = 8080
		}
		for j, d := range []Dest{
			{Key: DestKey{Addr: d1, Port: port}, Forward: DR, Weight: int32(i + 1)},
			{Key: DestKey{Addr: d2, Port: port}, Forward: []Forward{NAT, Tunnel}[i%2], Weight: 0, UpperThreshold: 50, LowerThreshold: 5},
		} {
			if s.Key.IsFWMark() && d.Forward == NAT {
				d.Forward = DR
			}
			if err := n.CreateDest(ctx, s.Key, d); err != nil {
				t.Fatalf("service %d dest %d: %v", i, j, err)
			}
		}
	}
	t.Logf("/proc/net/ip_vs as the kernel prints it:\n%s", sh(t, "cat /proc/net/ip_vs"))
	nt, err := n.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	pt, err := NewProcfs("/proc").Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nt.Services) != len(svcs) || len(pt.Services) != len(svcs) {
		t.Fatalf("netlink has %d services, procfs %d, want %d", len(nt.Services), len(pt.Services), len(svcs))
	}
	for i := range nt.Services {
		ns, ps := nt.Services[i], pt.Services[i]
		if ns.Key != ps.Key || ns.Scheduler != ps.Scheduler || ns.Persistence != ps.Persistence || ns.Netmask != ps.Netmask || ns.OnePacket != ps.OnePacket {
			t.Errorf("service %d: netlink %+v, procfs %+v", i, ns, ps)
			continue
		}
		if len(ns.Dests) != len(ps.Dests) {
			t.Errorf("%s: %d vs %d real servers", ns.Key, len(ns.Dests), len(ps.Dests))
			continue
		}
		for j := range ns.Dests {
			nd, pd := ns.Dests[j], ps.Dests[j]
			if nd.Key != pd.Key || nd.Weight != pd.Weight || nd.Forward != pd.Forward || nd.ActiveConns != pd.ActiveConns || nd.InactiveConns != pd.InactiveConns {
				t.Errorf("%s real server %d: netlink %+v, procfs %+v", ns.Key, j, nd, pd)
			}
		}
	}
	for _, s := range svcs {
		if err := n.DeleteService(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
	}
}
