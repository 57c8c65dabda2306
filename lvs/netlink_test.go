package lvs

import (
	"context"
	"errors"
	"net/netip"
	"os"
	"syscall"
	"testing"

	"github.com/cloudflare/ipvs"
)

// kernelClient is an in-memory ipvs.Client that answers as the kernel's
// netlink interface does (EEXIST, ESRCH for a missing service, ENOENT for
// a missing destination, an empty dump as os.ErrNotExist) and, like the
// kernel, replaces every destination attribute on update. It lets the
// netlink backend's conversions and read-modify-write run on a host
// without IPVS; the qemu tests run the same contract on the real kernel.
type kernelClient struct {
	svcs  []ipvs.ServiceExtended
	dests map[int][]ipvs.DestinationExtended
	// corrupt makes Services return a reply the kernel would never send.
	corrupt bool
}

func (k *kernelClient) find(s ipvs.Service) int {
	for i, x := range k.svcs {
		if x.Family == s.Family && x.FWMark == s.FWMark && x.Protocol == s.Protocol && x.Address == s.Address && x.Port == s.Port {
			return i
		}
	}
	return -1
}

func (k *kernelClient) Info() (ipvs.Info, error)     { return ipvs.Info{Version: [3]int{1, 2, 1}}, nil }
func (k *kernelClient) Config() (ipvs.Config, error) { return ipvs.Config{}, nil }
func (k *kernelClient) SetConfig(ipvs.Config) error  { return nil }
func (k *kernelClient) Services() ([]ipvs.ServiceExtended, error) {
	if k.corrupt {
		return []ipvs.ServiceExtended{{Service: ipvs.Service{Family: 99}}}, nil
	}
	if len(k.svcs) == 0 {
		return nil, os.ErrNotExist
	}
	return append([]ipvs.ServiceExtended(nil), k.svcs...), nil
}
func (k *kernelClient) Service(s ipvs.Service) (ipvs.ServiceExtended, error) {
	if i := k.find(s); i >= 0 {
		return k.svcs[i], nil
	}
	return ipvs.ServiceExtended{}, os.ErrNotExist
}
func (k *kernelClient) CreateService(s ipvs.Service) error {
	if !s.Netmask.Is4() && !s.Netmask.Is6() {
		// The kernel wants a netmask attribute in every full service.
		return syscall.EINVAL
	}
	if k.find(s) >= 0 {
		return syscall.EEXIST
	}
	s.Flags |= ipvs.ServiceHashed
	k.svcs = append(k.svcs, ipvs.ServiceExtended{Service: s, Stats64: ipvs.Stats{Connections: 1 << 40}})
	return nil
}
func (k *kernelClient) UpdateService(s ipvs.Service) error {
	if !s.Netmask.Is4() && !s.Netmask.Is6() {
		return syscall.EINVAL
	}
	i := k.find(s)
	if i < 0 {
		return syscall.ESRCH
	}
	k.svcs[i].Service = s
	return nil
}
func (k *kernelClient) RemoveService(s ipvs.Service) error {
	i := k.find(s)
	if i < 0 {
		return syscall.ESRCH
	}
	k.svcs = append(k.svcs[:i], k.svcs[i+1:]...)
	delete(k.dests, i) // indices shift; tests delete services last
	return nil
}
func (k *kernelClient) Destinations(s ipvs.Service) ([]ipvs.DestinationExtended, error) {
	i := k.find(s)
	if i < 0 {
		return nil, syscall.ESRCH
	}
	if len(k.dests[i]) == 0 {
		return nil, os.ErrNotExist
	}
	return append([]ipvs.DestinationExtended(nil), k.dests[i]...), nil
}
func (k *kernelClient) destIndex(i int, d ipvs.Destination) int {
	for j, x := range k.dests[i] {
		if x.Address == d.Address && x.Port == d.Port {
			return j
		}
	}
	return -1
}
func (k *kernelClient) CreateDestination(s ipvs.Service, d ipvs.Destination) error {
	i := k.find(s)
	if i < 0 {
		return syscall.ESRCH
	}
	if k.destIndex(i, d) >= 0 {
		return syscall.EEXIST
	}
	if k.dests == nil {
		k.dests = map[int][]ipvs.DestinationExtended{}
	}
	k.dests[i] = append(k.dests[i], ipvs.DestinationExtended{Destination: d})
	return nil
}
func (k *kernelClient) UpdateDestination(s ipvs.Service, d ipvs.Destination) error {
	i := k.find(s)
	if i < 0 {
		return syscall.ESRCH
	}
	j := k.destIndex(i, d)
	if j < 0 {
		return syscall.ENOENT
	}
	k.dests[i][j].Destination = d // every attribute replaced
	return nil
}
func (k *kernelClient) RemoveDestination(s ipvs.Service, d ipvs.Destination) error {
	i := k.find(s)
	if i < 0 {
		return syscall.ESRCH
	}
	j := k.destIndex(i, d)
	if j < 0 {
		return syscall.ENOENT
	}
	k.dests[i] = append(k.dests[i][:j], k.dests[i][j+1:]...)
	return nil
}

func TestNetlinkContractOnKernelClient(t *testing.T) {
	backendContract(t, newNetlinkWith(&kernelClient{}))
}

func TestNetlinkEmptyTableIsNotAnError(t *testing.T) {
	tab, err := newNetlinkWith(&kernelClient{}).Table(context.Background())
	if err != nil || len(tab.Services) != 0 {
		t.Fatalf("Table = %+v, %v", tab, err)
	}
}

func TestNetlinkStats64AndTunnelKeptOnSetWeight(t *testing.T) {
	kc := &kernelClient{}
	n := newNetlinkWith(kc)
	ctx := context.Background()
	if err := n.CreateService(ctx, Service{Key: web, Scheduler: "wrr"}); err != nil {
		t.Fatal(err)
	}
	if err := n.CreateDest(ctx, web, Dest{Key: rip1, Forward: Tunnel, Weight: 4}); err != nil {
		t.Fatal(err)
	}
	// Settings lvsmon does not model must survive a weight change.
	kc.dests[0][0].TunnelType = ipvs.GUE
	kc.dests[0][0].TunnelPort = 6080
	if err := n.SetWeight(ctx, web, rip1, 0); err != nil {
		t.Fatal(err)
	}
	if d := kc.dests[0][0]; d.TunnelType != ipvs.GUE || d.TunnelPort != 6080 || d.Weight != 0 || d.FwdMethod != ipvs.Tunnel {
		t.Errorf("after SetWeight: %+v", d)
	}
	tab, err := n.Table(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tab.Services[0].Stats.Conns != 1<<40 || tab.Totals.Conns != 1<<40 {
		t.Errorf("64-bit counters lost: %+v", tab.Services[0].Stats)
	}
}

func TestNetlinkMalformedReply(t *testing.T) {
	_, err := newNetlinkWith(&kernelClient{corrupt: true}).Table(context.Background())
	var oe *OpError
	if !errors.Is(err, ErrInvalid) || !errors.As(err, &oe) || oe.Backend != "netlink" {
		t.Fatalf("err = %v", err)
	}
}

func TestNetlinkPersistenceRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		key     ServiceKey
		netmask int
	}{
		{AddrKey(TCP, netip.MustParseAddr("198.51.100.1"), 443), 24},
		{AddrKey(TCP, netip.MustParseAddr("2001:db8::1"), 443), 64},
		{MarkKey(3, IPv4), 0},
	} {
		in := Service{Key: tc.key, Scheduler: "sh", Persistence: 600e9, Netmask: tc.netmask, OnePacket: true}
		out, err := fromNLService(ipvs.ServiceExtended{Service: toNLService(in)})
		if err != nil {
			t.Fatal(err)
		}
		if out.Key != in.Key || out.Persistence != in.Persistence || out.Netmask != in.Netmask || !out.OnePacket || out.Scheduler != "sh" {
			t.Errorf("round trip of %+v gave %+v", in, out)
		}
	}
}

func TestNetlinkHonoursContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := newNetlinkWith(&kernelClient{})
	if _, err := n.Table(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("Table: %v", err)
	}
	if err := n.SetWeight(ctx, web, rip1, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("SetWeight: %v", err)
	}
}
