package peers

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

const (
	web  = "tcp_10.0.0.100_80"
	rs1  = web + "__10.0.1.1_80"
	rs2  = web + "__10.0.1.2_80"
	dns  = "udp_10.0.0.53_53"
	rsD  = dns + "__10.0.1.9_53"
	chk1 = "type=http interval=1s timeout=3s rise=1 fall=1"
)

// side is a two-service side, changed by mod.
func side(mod func(s Side)) Side {
	s := Side{
		Config: map[string]*Service{
			web: {Scheduler: "wrr", SorryServer: "127.0.0.1:80 dr", Check: chk1, Reals: map[string]int32{rs1: 1, rs2: 2}},
			dns: {Scheduler: "rr", Persistence: 300, Reals: map[string]int32{rsD: 1}},
		},
		Kernel: map[string]*Service{
			web: {Scheduler: "wrr", Reals: map[string]int32{rs1: 1, rs2: 2}},
			dns: {Scheduler: "rr", Persistence: 300, Reals: map[string]int32{rsD: 1}},
		},
	}
	if mod != nil {
		mod(s)
	}
	return s
}

func TestCompare(t *testing.T) {
	tests := []struct {
		name        string
		local, peer func(s Side)
		want        []string
	}{
		{"same", nil, nil, nil},
		{"service only here, config", nil, func(s Side) { delete(s.Config, dns) },
			[]string{"config service udp_10.0.0.53_53: here present, peer absent"}},
		{"service only on the peer, kernel", func(s Side) { delete(s.Kernel, web) }, nil,
			[]string{"kernel service tcp_10.0.0.100_80: here absent, peer present"}},
		{"real servers one side each", func(s Side) { delete(s.Config[web].Reals, rs1) }, func(s Side) { delete(s.Kernel[web].Reals, rs2) }, []string{
			"config real_server " + rs1 + ": here absent, peer present",
			"kernel real_server " + rs2 + ": here present, peer absent"}},
		{"weights", func(s Side) { s.Config[web].Reals[rs2] = 5 }, func(s Side) { s.Kernel[web].Reals[rs1] = 0 }, []string{
			"config weight " + rs2 + ": here 5, peer 2",
			"kernel weight " + rs1 + ": here 1, peer 0"}},
		{"scheduler and persistence", func(s Side) { s.Config[web].Scheduler = "wlc"; s.Kernel[dns].Persistence = 0 }, nil, []string{
			"config scheduler " + web + ": here wlc, peer wrr",
			"kernel persistence " + dns + ": here 0s, peer 300s"}},
		{"sorry server and check", func(s Side) { s.Config[web].SorryServer = "" }, func(s Side) { s.Config[web].Check = chk1 + ` path="/x"` }, []string{
			"config sorry_server " + web + ": here none, peer 127.0.0.1:80 dr",
			"config check " + web + `: here ` + chk1 + `, peer ` + chk1 + ` path="/x"`}},
		{"kernel unknown on one side", func(s Side) { s.Kernel = nil; s.Config[dns].Scheduler = "sh" }, nil, []string{
			"config scheduler " + dns + ": here sh, peer rr"}},
		{"sorry and check are config only", nil, func(s Side) { s.Kernel[web].SorryServer, s.Kernel[web].Check = "x", "y" }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, d := range Compare(side(tc.local), side(tc.peer)) {
				got = append(got, d.String())
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("got\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tc.want, "\n  "))
			}
		})
	}
}

func TestCompareCoversEveryKind(t *testing.T) {
	l := side(func(s Side) {
		delete(s.Config, dns)
		delete(s.Kernel, dns)
		s.Config[web].Reals[rs1], s.Kernel[web].Reals[rs1] = 9, 9
		delete(s.Config[web].Reals, rs2)
		delete(s.Kernel[web].Reals, rs2)
		s.Config[web].Scheduler, s.Kernel[web].Scheduler = "sh", "sh"
		s.Config[web].Persistence, s.Kernel[web].Persistence = 60, 60
		s.Config[web].SorryServer, s.Config[web].Check = "", ""
	})
	got := Count(Compare(l, side(nil)))
	for table, kinds := range Kinds {
		for _, k := range kinds {
			if got[[2]string{table, k}] != 1 {
				t.Errorf("%s %s: %d drifts, want 1", table, k, got[[2]string{table, k}])
			}
		}
	}
	if s := Summary(Compare(l, side(nil))); !strings.HasPrefix(s, "config service 1, config real_server 1, config weight 1") {
		t.Errorf("summary = %s", s)
	}
}

func TestLocal(t *testing.T) {
	cfg, err := config.Parse("t.yaml", []byte(`virtual_services:
  - address: 10.0.0.100
    port: 80
    scheduler: wrr
    persistence: 5m
    sorry_server: {address: 127.0.0.1}
    check: {type: tcp}
    real_servers: [{address: 10.0.1.1, weight: 3}, {address: 10.0.1.2, weight: 0}]
`))
	if err != nil {
		t.Fatal(err)
	}
	s := Local(cfg, nil)
	if s.Kernel != nil {
		t.Error("no snapshot: the kernel must be unknown")
	}
	c := s.Config[web]
	if c == nil || c.Scheduler != "wrr" || c.Persistence != 300 || c.SorryServer != "127.0.0.1:80 dr" || !strings.HasPrefix(c.Check, "type=tcp") ||
		c.Reals[rs1] != 3 || c.Reals[rs2] != 0 || len(c.Reals) != 2 {
		t.Errorf("config side = %+v", c)
	}
	key := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.100"), 80)
	snap := &lvs.Snapshot{Table: lvs.Table{Services: []lvs.Service{{Key: key, Scheduler: "rr", Persistence: time.Minute,
		Dests: []lvs.Dest{{Key: lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.1"), Port: 80}, Weight: 2}}}}}}
	k := Local(cfg, snap).Kernel[web]
	if k == nil || k.Scheduler != "rr" || k.Persistence != 60 || k.Reals[rs1] != 2 || len(k.Reals) != 1 {
		t.Errorf("kernel side = %+v", k)
	}
}
