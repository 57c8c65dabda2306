package lvs

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"
)

var (
	vip   = netip.MustParseAddr("198.51.100.10")
	vip6  = netip.MustParseAddr("2001:db8::10")
	web   = AddrKey(TCP, vip, 80)
	web6  = AddrKey(TCP, vip6, 80)
	mark  = MarkKey(10, IPv4)
	rip1  = DestKey{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80}
	rip2  = DestKey{Addr: netip.MustParseAddr("10.1.2.2"), Port: 80}
	rip61 = DestKey{Addr: netip.MustParseAddr("2001:db8::1:2"), Port: 80}
)

// backendContract exercises the write semantics every Backend must share
// with the kernel. It runs on the fake here and on the real kernel in the
// qemu tests (kernel_test.go), so the fake cannot drift from the kernel.
func backendContract(t *testing.T, b Backend) {
	t.Helper()
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(b.CreateService(ctx, Service{Key: web, Scheduler: "wrr"}))
	if err := b.CreateService(ctx, Service{Key: web, Scheduler: "wrr"}); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	must(b.CreateService(ctx, Service{Key: web6, Scheduler: "rr", Persistence: 300 * time.Second}))
	must(b.CreateService(ctx, Service{Key: mark, Scheduler: "wlc"}))
	must(b.CreateDest(ctx, web, Dest{Key: rip1, Forward: NAT, Weight: 3, UpperThreshold: 100, LowerThreshold: 10}))
	must(b.CreateDest(ctx, web, Dest{Key: rip2, Forward: NAT, Weight: 1}))
	must(b.CreateDest(ctx, web6, Dest{Key: rip61, Forward: DR, Weight: 2}))
	must(b.CreateDest(ctx, mark, Dest{Key: rip1, Forward: DR, Weight: 5}))
	if err := b.CreateDest(ctx, web, Dest{Key: rip1, Forward: NAT, Weight: 1}); !errors.Is(err, ErrExists) {
		t.Errorf("duplicate dest: %v, want ErrExists", err)
	}
	if err := b.CreateDest(ctx, web, Dest{Key: rip61, Forward: DR, Weight: 1}); !errors.Is(err, ErrInvalid) {
		t.Errorf("family mismatch: %v, want ErrInvalid", err)
	}

	// Read-modify-write keeps thresholds and forwarding.
	must(b.SetWeight(ctx, web, rip1, 0))
	tab, err := b.Table(ctx)
	must(err)
	if len(tab.Services) != 3 {
		t.Fatalf("services = %d, want 3: %+v", len(tab.Services), tab.Services)
	}
	s := tab.Service(web)
	if s == nil || s.Scheduler != "wrr" || len(s.Dests) != 2 {
		t.Fatalf("web = %+v", s)
	}
	d := s.Dest(rip1)
	if d == nil || d.Weight != 0 || d.Forward != NAT || d.UpperThreshold != 100 || d.LowerThreshold != 10 {
		t.Errorf("after SetWeight rip1 = %+v", d)
	}
	if s6 := tab.Service(web6); s6 == nil || s6.Persistence != 300*time.Second || len(s6.Dests) != 1 || s6.Dests[0].Forward != DR {
		t.Errorf("web6 = %+v", s6)
	}
	if m := tab.Service(mark); m == nil || len(m.Dests) != 1 || m.Dests[0].Weight != 5 {
		t.Errorf("fwmark = %+v", m)
	}

	must(b.UpdateDest(ctx, web, Dest{Key: rip2, Forward: NAT, Weight: 7}))
	must(b.UpdateService(ctx, Service{Key: web, Scheduler: "lc"}))
	tab, err = b.Table(ctx)
	must(err)
	if s := tab.Service(web); s.Scheduler != "lc" || s.Dest(rip2).Weight != 7 {
		t.Errorf("after updates web = %+v", s)
	}

	if err := b.SetWeight(ctx, web, DestKey{Addr: netip.MustParseAddr("10.9.9.9"), Port: 80}, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("SetWeight of missing dest: %v, want ErrNotFound", err)
	}
	if err := b.UpdateService(ctx, Service{Key: AddrKey(TCP, vip, 81), Scheduler: "rr"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of missing service: %v, want ErrNotFound", err)
	}
	must(b.DeleteDest(ctx, web, rip2))
	if err := b.DeleteDest(ctx, web, rip2); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete dest: %v, want ErrNotFound", err)
	}
	for _, k := range []ServiceKey{web, web6, mark} {
		must(b.DeleteService(ctx, k))
	}
	if err := b.DeleteService(ctx, web); !errors.Is(err, ErrNotFound) {
		t.Errorf("second delete service: %v, want ErrNotFound", err)
	}
	tab, err = b.Table(ctx)
	must(err)
	if len(tab.Services) != 0 {
		t.Errorf("table not empty: %+v", tab.Services)
	}
}

func TestFakeContract(t *testing.T) { backendContract(t, NewFake(Table{})) }

func TestFakeInjectedErrorsAndLatency(t *testing.T) {
	f := NewFake(Table{})
	boom := errors.New("netlink receive: device or resource busy")
	f.FailOn(OpCreateService, boom)
	err := f.CreateService(context.Background(), Service{Key: web, Scheduler: "rr"})
	var oe *OpError
	if !errors.Is(err, boom) || !errors.As(err, &oe) || oe.Object != "TCP 198.51.100.10:80" {
		t.Fatalf("err = %v", err)
	}
	f.FailOn(OpCreateService, nil)
	if err := f.CreateService(context.Background(), Service{Key: web, Scheduler: "rr"}); err != nil {
		t.Fatal(err)
	}
	if f.Calls(OpCreateService) != 2 {
		t.Errorf("calls = %d", f.Calls(OpCreateService))
	}
	f.SetLatency(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := f.Table(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("slow Table: %v, want deadline exceeded", err)
	}
}

func TestFakeTableIsACopy(t *testing.T) {
	f := NewFake(Table{Services: []Service{{Key: web, Scheduler: "rr", Dests: []Dest{{Key: rip1, Weight: 1}}}}})
	t1, _ := f.Table(context.Background())
	t1.Services[0].Dests[0].Weight = 99
	t2, _ := f.Table(context.Background())
	if t2.Services[0].Dests[0].Weight != 1 {
		t.Error("caller's change leaked into the fake")
	}
}

func TestIDs(t *testing.T) {
	tests := []struct {
		key ServiceKey
		id  string
		str string
	}{
		{web, "tcp_198.51.100.10_80", "TCP 198.51.100.10:80"},
		{web6, "tcp_2001-db8--10_80", "TCP [2001:db8::10]:80"},
		{AddrKey(UDP, netip.MustParseAddr("::ffff:10.0.0.1"), 53), "udp_10.0.0.1_53", "UDP 10.0.0.1:53"},
		{MarkKey(7, IPv6), "fwm_7_inet6", "FWM 7 inet6"},
	}
	for _, tc := range tests {
		if tc.key.ID() != tc.id || tc.key.String() != tc.str {
			t.Errorf("%v: id %q str %q", tc.key, tc.key.ID(), tc.key.String())
		}
	}
	id := DestID(web6, rip61)
	if id != "tcp_2001-db8--10_80__2001-db8--1-2_80" {
		t.Errorf("dest id %q", id)
	}
	if s, d, ok := ParseDestID(id); !ok || s != web6.ID() || d != rip61.ID() {
		t.Errorf("ParseDestID = %q %q %v", s, d, ok)
	}
}

func TestSortOrder(t *testing.T) {
	tab := Table{Services: []Service{{Key: mark}, {Key: web6}, {Key: AddrKey(UDP, vip, 53)}, {Key: web}}}
	tab.Sort()
	got := []ServiceKey{tab.Services[0].Key, tab.Services[1].Key, tab.Services[2].Key, tab.Services[3].Key}
	want := []ServiceKey{web, AddrKey(UDP, vip, 53), web6, mark}
	if got[0] != want[0] || got[1] != want[1] || got[2] != want[2] || got[3] != want[3] {
		t.Errorf("order = %v", got)
	}
}
