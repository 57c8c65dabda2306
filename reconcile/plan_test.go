package reconcile

import (
	"log/slog"
	"net/netip"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
)

const planYAML = `ipvs: {backend: fake}
virtual_services:
  - name: web
    address: 10.0.0.100
    port: 80
    scheduler: wrr
    on_failure: %s
    sorry_server: {address: 127.0.0.1, port: 80}
    real_servers:
      - {address: 10.0.1.13, weight: 3}
      - {address: 10.0.1.14, weight: 2, upper_threshold: 100}
  - name: observed
    address: 10.0.0.101
    port: 80
    managed: false
    real_servers: [{address: 10.0.1.20}]
`

func planConfig(t *testing.T, onFailure string) *config.Config {
	t.Helper()
	c, err := config.Parse("plan.yaml", []byte(strings.Replace(planYAML, "%s", onFailure, 1)))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// apply runs actions against a fake, as the reconciler would.
func apply(t *testing.T, f *lvs.Fake, acts []Action) {
	t.Helper()
	for _, a := range acts {
		if err := do(t.Context(), f, a); err != nil {
			t.Fatalf("%s: %v", a, err)
		}
	}
}

func ops(acts []Action) string {
	var b []string
	for _, a := range acts {
		s := string(a.Op) + " " + a.Service.Key.String()
		if a.Dest.Key.Addr.IsValid() {
			s += " " + a.Dest.Key.String()
			if a.Op == OpSetWeight || a.Op == OpCreateDest {
				s += " w" + strconv.Itoa(int(a.Dest.Weight))
			}
		}
		b = append(b, s)
	}
	return strings.Join(b, "; ")
}

const (
	svc = "TCP 10.0.0.100:80"
	rs1 = "tcp_10.0.0.100_80__10.0.1.13_80"
	rs2 = "tcp_10.0.0.100_80__10.0.1.14_80"
)

// TestPlanStepByStep walks a service through the classic story: start
// from an empty kernel, one server fails, both fail (sorry server in), one
// recovers (sorry out), an operator drains and disables, and a stranger
// real server appears in the kernel. Each step applies the plan to a fake
// kernel and checks that planning again gives nothing.
func TestPlanStepByStep(t *testing.T) {
	for _, mode := range []string{"quiescent", "remove"} {
		t.Run(mode, func(t *testing.T) {
			cfg := planConfig(t, mode)
			f := lvs.NewFake(lvs.Table{Services: []lvs.Service{{Key: lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.101"), 80), Scheduler: "rr"}}})
			st := State{Health: map[string]health.State{}, Overrides: map[string]Override{}, SorryActive: map[string]bool{}, Act: true}
			down1 := "set-weight " + svc + " 10.0.1.13:80 w0"
			down2 := "set-weight " + svc + " 10.0.1.14:80 w0"
			up1 := "set-weight " + svc + " 10.0.1.13:80 w3"
			if mode == "remove" {
				down1 = "delete-dest " + svc + " 10.0.1.13:80"
				down2 = "delete-dest " + svc + " 10.0.1.14:80"
				up1 = "create-dest " + svc + " 10.0.1.13:80 w3"
			}
			steps := []struct {
				name   string
				change func()
				want   string
				sorry  bool
			}{
				{"empty kernel: create all", func() {},
					"create-service " + svc + "; create-dest " + svc + " 10.0.1.13:80 w3; create-dest " + svc + " 10.0.1.14:80 w2", false},
				{"rs1 fails", func() { st.Health[rs1] = health.Down }, down1, false},
				{"rs2 fails too: sorry server in", func() { st.Health[rs2] = health.Down }, down2 + "; create-dest " + svc + " 127.0.0.1:80 w1", true},
				{"rs1 recovers: sorry server out", func() { st.Health[rs1] = health.Up }, up1 + "; set-weight " + svc + " 127.0.0.1:80 w0", false},
				{"the quiesced sorry server, without active connections, goes", func() {}, "delete-dest " + svc + " 127.0.0.1:80", false},
				{"rs2 recovers", func() { st.Health[rs2] = health.Up }, strings.NewReplacer("13", "14", "w3", "w2").Replace(up1), false},
				{"drain rs1", func() { st.Overrides[rs1] = Drain }, "set-weight " + svc + " 10.0.1.13:80 w0", false},
				{"disable rs1", func() { st.Overrides[rs1] = Disable }, "delete-dest " + svc + " 10.0.1.13:80", false},
				{"enable rs1", func() { delete(st.Overrides, rs1) }, "create-dest " + svc + " 10.0.1.13:80 w3", false},
				{"a stranger in the kernel is removed", func() {
					f.CreateDest(t.Context(), lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80), lvs.Dest{Key: lvs.DestKey{Addr: mustAddr("10.0.9.9"), Port: 80}, Weight: 1})
				}, "delete-dest " + svc + " 10.0.9.9:80", false},
				{"someone changes a weight and a scheduler by hand", func() {
					f.SetWeight(t.Context(), lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80), lvs.DestKey{Addr: mustAddr("10.0.1.14"), Port: 80}, 9)
					f.UpdateService(t.Context(), lvs.Service{Key: lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80), Scheduler: "rr"})
				}, "update-service " + svc + "; set-weight " + svc + " 10.0.1.14:80 w2", false},
			}
			for _, step := range steps {
				step.change()
				tab, _ := f.Table(t.Context())
				res := Plan(cfg, tab, st)
				if got := ops(res.Actions); got != step.want {
					t.Fatalf("%s:\n got  %s\n want %s", step.name, got, step.want)
				}
				if res.SorryActive["tcp_10.0.0.100_80"] != step.sorry {
					t.Fatalf("%s: sorry active = %v", step.name, !step.sorry)
				}
				apply(t, f, res.Actions)
				st.SorryActive = res.SorryActive
				tab, _ = f.Table(t.Context())
				// The sorry server leaves in two rounds (quiesced, then deleted).
				then := ""
				if step.name == "rs1 recovers: sorry server out" {
					then = "delete-dest " + svc + " 127.0.0.1:80"
				}
				if again := Plan(cfg, tab, st); ops(again.Actions) != then {
					t.Fatalf("%s: not converged, then %s", step.name, ops(again.Actions))
				}
			}
			// The unmanaged service was never touched.
			tab, _ := f.Table(t.Context())
			if s := tab.Service(lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.101"), 80)); s == nil || s.Scheduler != "rr" || len(s.Dests) != 0 {
				t.Errorf("unmanaged service changed: %+v", s)
			}
		})
	}
}

func TestPlanThresholdsRestoredAndWeightsExact(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	f := lvs.NewFake(lvs.Table{})
	st := State{Act: true}
	r := Plan(cfg, lvs.Table{}, st)
	apply(t, f, r.Actions)
	k := lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80)
	f.UpdateDest(t.Context(), k, lvs.Dest{Key: lvs.DestKey{Addr: mustAddr("10.0.1.14"), Port: 80}, Forward: lvs.NAT, Weight: 0})
	tab, _ := f.Table(t.Context())
	got := ops(Plan(cfg, tab, st).Actions)
	if got != "update-dest "+svc+" 10.0.1.14:80" {
		t.Fatalf("got %s", got)
	}
	apply(t, f, Plan(cfg, tab, st).Actions)
	tab, _ = f.Table(t.Context())
	d := tab.Service(k).Dest(lvs.DestKey{Addr: mustAddr("10.0.1.14"), Port: 80})
	if d.Weight != 2 || d.Forward != lvs.DR || d.UpperThreshold != 100 {
		t.Errorf("restored dest = %+v", d)
	}
}

func TestPlanStartupPolicyAndRole(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	tab := lvs.Table{}
	if got := ops(Plan(cfg, tab, State{Act: false}).Actions); got != "" {
		t.Errorf("a node that must not act planned %s", got)
	}
	cfg.VirtualServices[0].Startup = "down"
	got := ops(Plan(cfg, tab, State{Act: true}).Actions)
	want := "create-service " + svc + "; create-dest " + svc + " 10.0.1.13:80 w0; create-dest " + svc + " 10.0.1.14:80 w0; create-dest " + svc + " 127.0.0.1:80 w1"
	if got != want {
		t.Errorf("startup down:\n got  %s\n want %s", got, want)
	}
}

func TestPlanQuorumHysteresis(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	vs := &cfg.VirtualServices[0]
	vs.Quorum, vs.Hysteresis = 3, 1 // weights 3 and 2: in below 2, out at 4 or more
	tests := []struct {
		h1, h2 health.State
		was    bool
		want   bool
	}{
		{health.Up, health.Up, false, false},    // live 5
		{health.Down, health.Up, false, false},  // live 2: not below q-h = 2
		{health.Up, health.Down, false, false},  // live 3
		{health.Down, health.Down, false, true}, // live 0
		{health.Down, health.Up, true, true},    // live 2: still below q+h = 4
		{health.Up, health.Down, true, true},    // live 3: still below 4
		{health.Up, health.Up, true, false},     // live 5
	}
	for _, tc := range tests {
		st := State{Act: true, Health: map[string]health.State{rs1: tc.h1, rs2: tc.h2}, SorryActive: map[string]bool{"tcp_10.0.0.100_80": tc.was}}
		if got := Plan(cfg, lvs.Table{}, st).SorryActive["tcp_10.0.0.100_80"]; got != tc.want {
			t.Errorf("%v %v was %v: sorry %v, want %v", tc.h1, tc.h2, tc.was, got, tc.want)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }

// The kernel table is the memory across restarts: a server the kernel
// has keeps its kernel state until its own first result, whatever the
// startup policy; the sorry server's state is read from the kernel;
// startup applies only to servers lvsmon adds.
func TestPlanRestartKeepsTheKernel(t *testing.T) {
	k := lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80)
	dest := func(a string, w int32) lvs.Dest {
		d := lvs.Dest{Key: lvs.DestKey{Addr: mustAddr(a), Port: 80}, Forward: lvs.DR, Weight: w}
		if a == "10.0.1.14" {
			d.UpperThreshold = 100 // as configured
		}
		return d
	}
	kernel := func(ds ...lvs.Dest) lvs.Table {
		return lvs.Table{Services: []lvs.Service{{Key: k, Scheduler: "wrr", Dests: ds}}}
	}
	const sorryID = "tcp_10.0.0.100_80"
	tests := []struct {
		name      string
		startup   string
		tab       lvs.Table
		health    map[string]health.State
		memory    map[string]bool
		want      string
		wantWhy   string
		was, sorr bool
	}{
		{name: "a quiesced server stays quiesced until its first result", tab: kernel(dest("10.0.1.13", 0), dest("10.0.1.14", 2))},
		{name: "every server out, sorry server in: all kept", tab: kernel(dest("10.0.1.13", 0), dest("10.0.1.14", 0), dest("127.0.0.1", 1)), was: true, sorr: true},
		{name: "startup down keeps servers found in service", startup: "down", tab: kernel(dest("10.0.1.13", 3), dest("10.0.1.14", 2))},
		{name: "startup down applies to a server lvsmon adds", startup: "down", tab: kernel(dest("10.0.1.13", 3)),
			want: "create-dest " + svc + " 10.0.1.14:80 w0", wantWhy: "no check result yet (startup: down)"},
		{name: "startup up adds at the configured weight", tab: kernel(dest("10.0.1.13", 3)),
			want: "create-dest " + svc + " 10.0.1.14:80 w2", wantWhy: "no check result yet (startup: up)"},
		{name: "a first pass restores the weight and the sorry server leaves", tab: kernel(dest("10.0.1.13", 0), dest("10.0.1.14", 0), dest("127.0.0.1", 1)),
			health: map[string]health.State{rs1: health.Up},
			want:   "set-weight " + svc + " 10.0.1.13:80 w3; set-weight " + svc + " 127.0.0.1:80 w0", wantWhy: "weight 0 -> 3: health check passing", was: true},
		{name: "a first failure keeps the sorry server, no second sorry_on", tab: kernel(dest("10.0.1.13", 0), dest("10.0.1.14", 0), dest("127.0.0.1", 1)),
			health: map[string]health.State{rs1: health.Down, rs2: health.Down}, was: true, sorr: true},
		{name: "memory wins over the kernel once it exists", tab: kernel(dest("10.0.1.13", 3), dest("10.0.1.14", 2)),
			memory: map[string]bool{sorryID: false}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := planConfig(t, "quiescent")
			vs := &cfg.VirtualServices[0]
			vs.Check = &config.Check{Type: "tcp"}
			if tc.startup != "" {
				vs.Startup = tc.startup
			}
			res := Plan(cfg, tc.tab, State{Act: true, Health: tc.health, SorryActive: tc.memory})
			if got := ops(res.Actions); got != tc.want {
				t.Errorf("actions:\n got  %s\n want %s", got, tc.want)
			}
			if tc.wantWhy != "" && (len(res.Actions) == 0 || res.Actions[0].Reason != tc.wantWhy) {
				t.Errorf("reason = %+v, want %q", res.Actions, tc.wantWhy)
			}
			for _, a := range res.Actions {
				if strings.Contains(a.Reason, "healthy") {
					t.Errorf("reason says healthy without a result: %s", a)
				}
			}
			if res.SorryBefore[sorryID] != tc.was || res.SorryActive[sorryID] != tc.sorr {
				t.Errorf("sorry before %v after %v, want %v %v", res.SorryBefore[sorryID], res.SorryActive[sorryID], tc.was, tc.sorr)
			}
		})
	}
}

// The sorry server leaves quiesced: IPVS drops the packets of
// connections to a deleted real server, so a request in flight to the
// sorry server (or a browser's keep-alive connection to it) would hang.
// It is deleted once it has no active connection; a persistent service
// deletes it at once (its templates would pin clients to it).
func TestPlanSorryServerLeavesQuiesced(t *testing.T) {
	k := lvs.AddrKey(lvs.TCP, mustAddr("10.0.0.100"), 80)
	sorry := func(w int32, active uint32) lvs.Dest {
		return lvs.Dest{Key: lvs.DestKey{Addr: mustAddr("127.0.0.1"), Port: 80}, Forward: lvs.DR, Weight: w, ActiveConns: active, InactiveConns: 7}
	}
	kernel := func(w1 int32, s lvs.Dest) lvs.Table {
		return lvs.Table{Services: []lvs.Service{{Key: k, Scheduler: "wrr", Dests: []lvs.Dest{
			{Key: lvs.DestKey{Addr: mustAddr("10.0.1.13"), Port: 80}, Forward: lvs.DR, Weight: w1},
			{Key: lvs.DestKey{Addr: mustAddr("10.0.1.14"), Port: 80}, Forward: lvs.DR, Weight: 0, UpperThreshold: 100},
			s}}}}
	}
	const id = "tcp_10.0.0.100_80"
	up, down := map[string]health.State{rs1: health.Up, rs2: health.Down}, map[string]health.State{rs1: health.Down, rs2: health.Down}
	tests := []struct {
		name       string
		persistent bool
		tab        lvs.Table
		health     map[string]health.State
		memory     bool
		want, why  string
		was, after bool
	}{
		{name: "a server is back: the sorry server is quiesced, not deleted", tab: kernel(0, sorry(1, 4)), health: up, memory: true,
			want: "set-weight " + svc + " 10.0.1.13:80 w3; set-weight " + svc + " 127.0.0.1:80 w0",
			why:  "weight 1 -> 0: sorry server: live weight 3 reached the quorum; quiesced first so that its connections finish", was: true},
		{name: "idle at weight 1: quiesced all the same (a connection may come before the write)", tab: kernel(3, sorry(1, 0)), health: up, memory: true,
			want: "set-weight " + svc + " 127.0.0.1:80 w0", was: true},
		{name: "quiesced with active connections: it stays", tab: kernel(3, sorry(0, 2)), health: up},
		{name: "quiesced without active connections: deleted", tab: kernel(3, sorry(0, 0)), health: up,
			want: "delete-dest " + svc + " 127.0.0.1:80", why: "sorry server: quiesced and without active connections"},
		{name: "quiesced and needed again", tab: kernel(0, sorry(0, 2)), health: down,
			want: "set-weight " + svc + " 127.0.0.1:80 w1", after: true},
		{name: "a persistent service deletes it at once", persistent: true, tab: kernel(3, sorry(1, 4)), health: up, memory: true,
			want: "delete-dest " + svc + " 127.0.0.1:80", was: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := planConfig(t, "quiescent")
			if tc.persistent {
				cfg.VirtualServices[0].Persistence = config.Duration(300 * time.Second)
				for i := range tc.tab.Services {
					tc.tab.Services[i].Persistence = 300 * time.Second
				}
			}
			res := Plan(cfg, tc.tab, State{Act: true, Health: tc.health, SorryActive: map[string]bool{id: tc.memory}})
			if got := ops(res.Actions); got != tc.want {
				t.Errorf("actions:\n got  %s\n want %s", got, tc.want)
			}
			if tc.why != "" && res.Actions[len(res.Actions)-1].Reason != tc.why {
				t.Errorf("reason %q, want %q", res.Actions[len(res.Actions)-1].Reason, tc.why)
			}
			if res.SorryBefore[id] != tc.was || res.SorryActive[id] != tc.after {
				t.Errorf("sorry before %v after %v, want %v %v", res.SorryBefore[id], res.SorryActive[id], tc.was, tc.after)
			}
		})
	}
}

var quiet = slog.New(slog.DiscardHandler)

// TestPlanCheckWeights: the weight a check set replaces the configured
// weight of a server whose checks pass, counts in the quorum as the
// weight it is, and loses to an operator's drain or disable and to a
// failing check; a server without a result keeps the kernel's weight.
func TestPlanCheckWeights(t *testing.T) {
	cfg := planConfig(t, "quiescent")
	cfg.VirtualServices[0].Check = &config.Check{Type: "tcp"} // checked: no check type is registered here
	f := lvs.NewFake(lvs.Table{})
	st := State{Health: map[string]health.State{rs1: health.Up, rs2: health.Up}, Weights: map[string]int32{}, Overrides: map[string]Override{}, SorryActive: map[string]bool{}, Act: true}
	apply(t, f, Plan(cfg, lvs.Table{}, st).Actions)
	steps := []struct {
		name   string
		change func()
		want   string
		sorry  bool
	}{
		{"rs1's check sets 7", func() { st.Weights[rs1] = 7 }, "set-weight " + svc + " 10.0.1.13:80 w7", false},
		{"rs2's check sets 0: up, no weight", func() { st.Weights[rs2] = 0 }, "set-weight " + svc + " 10.0.1.14:80 w0", false},
		{"rs1's check sets 0 too: the live weight is 0, sorry in", func() { st.Weights[rs1] = 0 },
			"set-weight " + svc + " 10.0.1.13:80 w0; create-dest " + svc + " 127.0.0.1:80 w1", true},
		{"rs1 at 5: sorry out", func() { st.Weights[rs1] = 5 },
			"set-weight " + svc + " 10.0.1.13:80 w5; set-weight " + svc + " 127.0.0.1:80 w0", false},
		{"the sorry server goes", func() {}, "delete-dest " + svc + " 127.0.0.1:80", false},
		{"drained: the drain wins", func() { st.Overrides[rs1] = Drain }, "set-weight " + svc + " 10.0.1.13:80 w0; create-dest " + svc + " 127.0.0.1:80 w1", true},
		{"enabled: the check's weight again", func() { delete(st.Overrides, rs1) }, "set-weight " + svc + " 10.0.1.13:80 w5; set-weight " + svc + " 127.0.0.1:80 w0", false},
		{"the sorry server goes again", func() {}, "delete-dest " + svc + " 127.0.0.1:80", false},
		{"rs2's check sets none: configured 2", func() { delete(st.Weights, rs2) }, "set-weight " + svc + " 10.0.1.14:80 w2", false},
		{"rs1 fails: quiesced whatever its weight", func() { st.Health[rs1] = health.Down }, "set-weight " + svc + " 10.0.1.13:80 w0", false},
		{"rs1 unknown (a restart): the kernel's weight kept", func() { st.Health[rs1] = health.Unknown; st.Weights[rs1] = 9 }, "", false},
		{"rs1 up: its check's weight, bounded", func() { st.Health[rs1] = health.Up; st.Weights[rs1] = 70000 }, "set-weight " + svc + " 10.0.1.13:80 w65535", false},
	}
	for _, step := range steps {
		step.change()
		tab, _ := f.Table(t.Context())
		res := Plan(cfg, tab, st)
		if got := ops(res.Actions); got != step.want {
			t.Fatalf("%s:\n got  %s\n want %s", step.name, got, step.want)
		}
		if res.SorryActive["tcp_10.0.0.100_80"] != step.sorry {
			t.Fatalf("%s: sorry active = %v", step.name, !step.sorry)
		}
		apply(t, f, res.Actions)
		st.SorryActive = res.SorryActive
	}
}
