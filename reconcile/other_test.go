package reconcile

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	logbuf "github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

// recBackend is a fake that logs every write by service, and can make a
// write fail after applying it (as a netlink write whose answer is
// lost).
type recBackend struct {
	*lvs.Fake
	mu          sync.Mutex
	writes      []string // "TCP 10.0.0.100:80 set-weight 10.0.1.13:80 7"
	applyFail   bool
	partialFail float64 // probability of an applied write reporting failure
	rnd         *rand.Rand
}

func newRec() *recBackend { return &recBackend{Fake: lvs.NewFake(lvs.Table{})} }

func (b *recBackend) log(k lvs.ServiceKey, what string, err error) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if err != nil {
		return err
	}
	b.writes = append(b.writes, k.String()+" "+what)
	if b.rnd != nil && b.rnd.Float64() < b.partialFail {
		return errors.New("netlink: answer lost")
	}
	return nil
}

// written returns the writes to service k since the last call.
func (b *recBackend) written(k lvs.ServiceKey) []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out, rest []string
	for _, w := range b.writes {
		if strings.HasPrefix(w, k.String()+" ") {
			out = append(out, w)
		} else {
			rest = append(rest, w)
		}
	}
	b.writes = rest
	return out
}

func (b *recBackend) CreateService(ctx context.Context, s lvs.Service) error {
	return b.log(s.Key, "create-service", b.Fake.CreateService(ctx, s))
}
func (b *recBackend) UpdateService(ctx context.Context, s lvs.Service) error {
	return b.log(s.Key, "update-service", b.Fake.UpdateService(ctx, s))
}
func (b *recBackend) DeleteService(ctx context.Context, k lvs.ServiceKey) error {
	return b.log(k, "delete-service", b.Fake.DeleteService(ctx, k))
}
func (b *recBackend) CreateDest(ctx context.Context, k lvs.ServiceKey, d lvs.Dest) error {
	return b.log(k, "create-dest "+d.Key.String(), b.Fake.CreateDest(ctx, k, d))
}
func (b *recBackend) UpdateDest(ctx context.Context, k lvs.ServiceKey, d lvs.Dest) error {
	return b.log(k, "update-dest "+d.Key.String(), b.Fake.UpdateDest(ctx, k, d))
}
func (b *recBackend) DeleteDest(ctx context.Context, k lvs.ServiceKey, d lvs.DestKey) error {
	return b.log(k, "delete-dest "+d.String(), b.Fake.DeleteDest(ctx, k, d))
}
func (b *recBackend) SetWeight(ctx context.Context, k lvs.ServiceKey, d lvs.DestKey, w int32) error {
	return b.log(k, fmt.Sprintf("set-weight %s %d", d, w), b.Fake.SetWeight(ctx, k, d, w))
}

// otherYAML has two managed services: web is the one another writer
// touches, api must go on being written meanwhile.
const otherYAML = `ipvs: {backend: fake, takeover: %s}
step: 10s
virtual_services:
  - name: web
    address: 10.0.0.100
    port: 80
    scheduler: wrr
    sorry_server: {address: 127.0.0.1, port: 80}
    real_servers:
      - {address: 10.0.1.13, weight: 3}
      - {address: 10.0.1.14, weight: 2, upper_threshold: 100}
  - name: api
    address: 10.0.0.102
    port: 443
    real_servers:
      - {address: 10.0.1.30, weight: 5}
      - {address: 10.0.1.31, weight: 5}
`

var (
	webKey = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.100"), 80)
	apiKey = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("10.0.0.102"), 443)
	webRS1 = lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.13"), Port: 80}
	webRS2 = lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.14"), Port: 80}
	apiRS1 = lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.30"), Port: 443}
)

// otherRig is a reconciler over a recording fake with a clock the test
// moves.
type otherRig struct {
	t   *testing.T
	b   *recBackend
	r   *Reconciler
	ev  *events.Log
	cfg *config.Config
	hs  map[string]health.State
	now time.Time
	log *logbuf.SyncBuffer
	// procs is what the process scan finds.
	procs []Process
}

func newOtherRig(t *testing.T, takeover string) *otherRig {
	t.Helper()
	cfg, err := config.Parse("other.yaml", []byte(fmt.Sprintf(otherYAML, takeover)))
	if err != nil {
		t.Fatal(err)
	}
	g := &otherRig{t: t, b: newRec(), cfg: cfg, hs: map[string]health.State{}, now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), log: &logbuf.SyncBuffer{}}
	for _, k := range []string{"10.0.1.13_80", "10.0.1.14_80"} {
		g.hs[webKey.ID()+"__"+k] = health.Up
	}
	for _, k := range []string{"10.0.1.30_443", "10.0.1.31_443"} {
		g.hs[apiKey.ID()+"__"+k] = health.Up
	}
	if g.ev, err = events.Open(t.TempDir(), 1000, quiet); err != nil {
		t.Fatal(err)
	}
	g.r = New(Options{Backend: g.b, Config: func() *config.Config { return g.cfg }, Health: func() map[string]health.State { return g.hs },
		Events: g.ev, Log: slog.New(slog.NewTextHandler(g.log, nil)), Now: func() time.Time { return g.now }, Processes: func() ([]Process, error) { return g.procs, nil }})
	return g
}

// round advances the clock by d and runs one round.
func (g *otherRig) round(d time.Duration) {
	g.t.Helper()
	g.now = g.now.Add(d)
	if err := g.r.Round(g.t.Context()); err != nil {
		g.t.Fatal(err)
	}
}

func (g *otherRig) weight(k lvs.ServiceKey, d lvs.DestKey) int32 {
	g.t.Helper()
	tab, _ := g.b.Table(g.t.Context())
	if s := tab.Service(k); s != nil {
		if x := s.Dest(d); x != nil {
			return x.Weight
		}
	}
	return -1
}

// behindTheBack is the other writer: it sets a weight in the kernel's
// table without lvsmon.
func (g *otherRig) behindTheBack(k lvs.ServiceKey, d lvs.DestKey, w int32) {
	g.b.Mutate(func(t *lvs.Table) { t.Service(k).Dest(d).Weight = w })
}

func (g *otherRig) kinds() []string {
	var out []string
	for _, e := range g.ev.Query(events.Filter{}) {
		out = append(out, string(e.Kind)+" "+e.Service)
	}
	return out
}

func TestStrayWriteHoldsTheServiceUntilQuiet(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	g.round(0) // builds both services
	g.round(10 * time.Second)
	if w := g.b.written(webKey); len(w) != 3 {
		t.Fatalf("setting up web: %q", w)
	}
	g.b.written(apiKey)

	// Someone sets rs1 to 7 by hand; in the same interval rs2 fails its
	// check and an api server fails too.
	g.behindTheBack(webKey, webRS1, 7)
	g.hs[lvs.DestID(webKey, webRS2)] = health.Down
	g.hs[lvs.DestID(apiKey, apiRS1)] = health.Down
	g.round(10 * time.Second)
	ws := g.r.OtherWriters(g.cfg)
	if len(ws) != 1 || ws[0].Kind != WriterStray || !slices.Equal(ws[0].Services, []string{webKey.ID()}) || !ws[0].Held ||
		ws[0].What != "weight of 10.0.1.13:80 3 -> 7" {
		t.Fatalf("other writers = %+v", ws)
	}
	if w := g.b.written(webKey); len(w) != 0 {
		t.Errorf("web written while another writer is at it: %q", w)
	}
	if w := g.b.written(apiKey); !slices.Equal(w, []string{"TCP 10.0.0.102:443 set-weight 10.0.1.30:443 0"}) {
		t.Errorf("api, which nobody else touches, was not written as planned: %q", w)
	}
	if g.weight(webKey, webRS1) != 7 || g.weight(webKey, webRS2) != 2 {
		t.Errorf("web's weights changed: %d %d", g.weight(webKey, webRS1), g.weight(webKey, webRS2))
	}
	if k := g.kinds(); !slices.Equal(k, []string{"other_writer " + webKey.ID()}) {
		t.Errorf("events = %q", k)
	}
	for _, want := range []string{
		`level=WARN msg="another program writes IPVS" kind=stray_write service=tcp_10.0.0.100_80 message="web tcp_10.0.0.100_80: the IPVS table changed behind lvsmon's back: weight of 10.0.1.13:80 3 -> 7"`,
		`effect="lvsmon does not write this service until it has gone 30s without a change lvsmon did not make (ipvs.takeover: when_gone)"`,
		`level=WARN msg="not written: another program writes these services" actions=2 services=1 first="set-weight TCP 10.0.0.100:80 -> 10.0.1.13:80 weight 3: weight 7 -> 3`,
	} {
		if !strings.Contains(g.log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, g.log)
		}
	}

	// The other writer goes on: each change restarts the quiet period
	// (30s, three steps).
	g.round(20 * time.Second)
	g.behindTheBack(webKey, webRS1, 8)
	g.round(5 * time.Second)
	g.round(25 * time.Second) // 25s quiet
	if w := g.b.written(webKey); len(w) != 0 || len(g.r.OtherWriters(g.cfg)) != 1 {
		t.Fatalf("taken over before the quiet period: %q", w)
	}
	if n := g.r.StrayChanges(); n != 2 {
		t.Errorf("stray changes = %d, want 2", n)
	}

	// Quiet for 30s: lvsmon takes over, in that round.
	g.round(5 * time.Second)
	if ws := g.r.OtherWriters(g.cfg); len(ws) != 0 {
		t.Fatalf("still held: %+v", ws)
	}
	if w := g.b.written(webKey); !slices.Equal(w, []string{"TCP 10.0.0.100:80 set-weight 10.0.1.13:80 3", "TCP 10.0.0.100:80 set-weight 10.0.1.14:80 0"}) {
		t.Errorf("takeover wrote %q", w)
	}
	// Its own writes are no stray writes.
	g.round(10 * time.Second)
	if k := g.kinds(); !slices.Equal(k, []string{"other_writer " + webKey.ID(), "other_writer_gone " + webKey.ID()}) {
		t.Errorf("events = %q", k)
	}
}

func TestStrayWriteKinds(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(t *lvs.Table)
		what   string
	}{
		{"server added", func(t *lvs.Table) {
			s := t.Service(webKey)
			s.Dests = append(s.Dests, lvs.Dest{Key: lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.99"), Port: 80}, Weight: 1})
		}, "real server 10.0.1.99:80 added (weight 1)"},
		{"server removed", func(t *lvs.Table) { s := t.Service(webKey); s.Dests = s.Dests[1:] }, "real server 10.0.1.13:80 removed"},
		{"scheduler", func(t *lvs.Table) { t.Service(webKey).Scheduler = "rr" }, "scheduler wrr persistence 0s -> rr 0s"},
		{"forwarding", func(t *lvs.Table) { t.Service(webKey).Dests[0].Forward = lvs.NAT }, "10.0.1.13:80 changed to nat thresholds 0/0"},
		{"service deleted", func(t *lvs.Table) {
			t.Services = slices.DeleteFunc(t.Services, func(s lvs.Service) bool { return s.Key == webKey })
		}, "service deleted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newOtherRig(t, "when_gone")
			g.round(0)
			g.round(time.Second)
			g.b.written(webKey)
			g.b.Mutate(tc.change)
			g.round(time.Second)
			ws := g.r.OtherWriters(g.cfg)
			if len(ws) != 1 || ws[0].What != tc.what {
				t.Fatalf("other writers = %+v, want %q", ws, tc.what)
			}
			if w := g.b.written(webKey); len(w) != 0 {
				t.Errorf("written: %q", w)
			}
		})
	}
}

func TestStrayWriteWithTakeoverAlways(t *testing.T) {
	g := newOtherRig(t, "always")
	g.round(0)
	g.round(10 * time.Second)
	g.b.written(webKey)
	g.behindTheBack(webKey, webRS1, 7)
	g.round(10 * time.Second)
	ws := g.r.OtherWriters(g.cfg)
	if len(ws) != 1 || ws[0].Held {
		t.Fatalf("other writers = %+v", ws)
	}
	if w := g.b.written(webKey); !slices.Equal(w, []string{"TCP 10.0.0.100:80 set-weight 10.0.1.13:80 3"}) {
		t.Errorf("always: written %q", w)
	}
	if k := g.kinds(); !slices.Equal(k, []string{"other_writer " + webKey.ID()}) {
		t.Errorf("events = %q", k)
	}
}

func TestProcessHoldsTheServicesItNames(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	g.round(0)
	g.b.written(webKey)
	g.b.written(apiKey)
	g.procs = []Process{{PID: 812, Name: "keepalived", Why: "its config has virtual_server blocks", Services: []ServiceRef{{Addr: webKey.Addr, Port: 80}}}}
	g.hs[lvs.DestID(webKey, webRS1)] = health.Down
	g.hs[lvs.DestID(apiKey, apiRS1)] = health.Down
	g.round(scanEvery)
	ws := g.r.OtherWriters(g.cfg)
	if len(ws) != 1 || ws[0].Who != "keepalived (pid 812)" || !slices.Equal(ws[0].Services, []string{webKey.ID()}) || !ws[0].Held {
		t.Fatalf("other writers = %+v", ws)
	}
	if w := g.b.written(webKey); len(w) != 0 {
		t.Errorf("web written while keepalived runs: %q", w)
	}
	if w := g.b.written(apiKey); len(w) != 1 {
		t.Errorf("api not written: %q", w)
	}
	// The scan runs at most every scanEvery: the process exits, lvsmon
	// takes over at the next scan.
	g.procs = nil
	g.round(scanEvery / 2)
	if w := g.b.written(webKey); len(w) != 0 {
		t.Errorf("written before the next scan: %q", w)
	}
	g.round(scanEvery / 2)
	if w := g.b.written(webKey); !slices.Equal(w, []string{"TCP 10.0.0.100:80 set-weight 10.0.1.13:80 0"}) {
		t.Errorf("takeover wrote %q", w)
	}
	evs := g.ev.Query(events.Filter{})
	if len(evs) != 2 || evs[0].Kind != events.OtherWriter || evs[1].Kind != events.OtherWriterGone ||
		!strings.Contains(evs[0].Message, "keepalived (pid 812) writes IPVS") || !strings.Contains(evs[0].Message, webKey.ID()) || evs[0].Actor != events.ActorReconciler {
		t.Errorf("events = %+v", evs)
	}
	if want := `level=WARN msg="another program writes IPVS" kind=process service="" message="keepalived (pid 812) writes IPVS: its config has virtual_server blocks; managed services it names: tcp_10.0.0.100_80" effect="lvsmon does not write these services until it is gone (ipvs.takeover: when_gone)"`; !strings.Contains(g.log.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, g.log)
	}
	// A writer of unknown services holds every managed one.
	g.procs = []Process{{PID: 900, Name: "ldirectord", All: true}}
	g.hs[lvs.DestID(apiKey, apiRS1)] = health.Up
	g.round(scanEvery)
	if w := append(g.b.written(webKey), g.b.written(apiKey)...); len(w) != 0 {
		t.Errorf("written while ldirectord runs: %q", w)
	}
}

// TestProcessScanOfAProcTree runs the reconciler with the real scan over
// a fake /proc: keepalived with virtual_server blocks, then without.
func TestProcessScanOfAProcTree(t *testing.T) {
	fp := newFakeProc(t, "")
	conf := filepath.Join(t.TempDir(), "keepalived.conf")
	if err := os.WriteFile(conf, []byte(kaVirtualServers), 0o644); err != nil {
		t.Fatal(err)
	}
	fp.proc(4242, "/usr/sbin/keepalived", "-f", conf)
	g := newOtherRig(t, "when_gone")
	g.r.procs = func() ([]Process, error) { return ScanProcesses(fp.root) }
	g.round(0)
	if w := append(g.b.written(webKey), g.b.written(apiKey)...); !slices.Equal(w, []string{"TCP 10.0.0.102:443 create-service",
		"TCP 10.0.0.102:443 create-dest 10.0.1.30:443", "TCP 10.0.0.102:443 create-dest 10.0.1.31:443"}) {
		t.Errorf("with keepalived writing web: %q", w)
	}
	// keepalived is reloaded with a VRRP-only config.
	if err := os.WriteFile(conf, []byte(kaVRRPOnly), 0o644); err != nil {
		t.Fatal(err)
	}
	g.round(scanEvery)
	if w := g.b.written(webKey); len(w) != 3 {
		t.Errorf("web not created once keepalived stopped writing it: %q", w)
	}
}

// TestOwnWritesAreNeverStray runs many rounds with flapping health,
// weights set by checks, operator overrides, config reloads, refused
// writes and writes that were applied but reported failed: lvsmon must
// never take its own writes for another writer's.
func TestOwnWritesAreNeverStray(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	rnd := rand.New(rand.NewPCG(1, 2))
	g.b.rnd, g.b.partialFail = rnd, 0.05
	ovr, err := OpenOverrides(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g.r.ovr = ovr
	other, err := config.Parse("other.yaml", []byte(strings.ReplaceAll(fmt.Sprintf(otherYAML, "when_gone"), "weight: 5", "weight: 9")))
	if err != nil {
		t.Fatal(err)
	}
	configs := []*config.Config{g.cfg, other}
	weights := map[string]int32{}
	g.r.wts = func() map[string]int32 { return weights }
	wrnd := rand.New(rand.NewPCG(3, 4)) // its own: the other draws stay as they were
	ids := slices.Sorted(func(yield func(string) bool) {
		for id := range g.hs {
			if !yield(id) {
				return
			}
		}
	})
	ops := []string{lvs.OpSetWeight, lvs.OpCreateDest, lvs.OpDeleteDest, lvs.OpUpdateDest}
	var failedRounds int
	for i := range 2000 {
		for _, id := range ids {
			if rnd.IntN(4) == 0 {
				g.hs[id] = []health.State{health.Up, health.Down, health.Unknown}[rnd.IntN(3)]
			}
			switch wrnd.IntN(8) {
			case 0:
				weights[id] = int32(wrnd.IntN(254))
			case 1:
				delete(weights, id)
			}
		}
		if rnd.IntN(10) == 0 {
			id := ids[rnd.IntN(len(ids))]
			mode := []Override{Drain, Disable, NoOverride}[rnd.IntN(3)]
			if err := ovr.Set(id, mode, "test"); err != nil {
				t.Fatal(err)
			}
		}
		if rnd.IntN(20) == 0 {
			g.cfg = configs[rnd.IntN(2)]
		}
		op := ops[rnd.IntN(len(ops))]
		if rnd.IntN(10) == 0 {
			g.b.FailOn(op, errors.New("netlink: cannot allocate memory"))
		}
		g.now = g.now.Add(time.Duration(rnd.IntN(3000)) * time.Millisecond)
		if err := g.r.Round(t.Context()); err != nil {
			failedRounds++
		}
		g.b.FailOn(op, nil)
		if ws := g.r.OtherWriters(g.cfg); len(ws) != 0 {
			t.Fatalf("round %d: lvsmon's own writes taken for another writer's: %+v", i, ws)
		}
	}
	others := slices.DeleteFunc(g.kinds(), func(k string) bool { return !strings.HasPrefix(k, "other_writer") })
	if n := g.r.StrayChanges(); n != 0 || len(others) != 0 {
		t.Errorf("%d stray changes seen, events %q", n, others)
	}
	if applied := g.r.Stats().Applied; failedRounds < 30 || applied < 400 {
		t.Errorf("the run did not exercise enough: %d failed rounds, %d writes", failedRounds, applied)
	}
	t.Logf("%d rounds failed, %d writes applied", failedRounds, g.r.Stats().Applied)
}

func TestOtherWriterMetrics(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	g.round(0)
	g.procs = []Process{{PID: 812, Name: "keepalived", Services: []ServiceRef{{Addr: apiKey.Addr, Port: 443}}}}
	g.round(scanEvery)
	g.behindTheBack(webKey, webRS1, 7)
	g.round(3 * time.Second)
	want := `
# HELP lvsmon_ipvs_other_writer 1 while another program writes (or may write) the managed virtual service's IPVS table.
# TYPE lvsmon_ipvs_other_writer gauge
lvsmon_ipvs_other_writer{address="10.0.0.100",fwmark="",name="web",port="80",protocol="tcp",service="tcp_10.0.0.100_80"} 1
lvsmon_ipvs_other_writer{address="10.0.0.102",fwmark="",name="api",port="443",protocol="tcp",service="tcp_10.0.0.102_443"} 1
# HELP lvsmon_ipvs_other_writer_processes Processes on the director that write IPVS tables (keepalived with virtual_server blocks, ldirectord, pulse, nanny).
# TYPE lvsmon_ipvs_other_writer_processes gauge
lvsmon_ipvs_other_writer_processes 1
# HELP lvsmon_reconcile_held 1 while lvsmon does not write the managed virtual service because another program does (ipvs.takeover: when_gone).
# TYPE lvsmon_reconcile_held gauge
lvsmon_reconcile_held{address="10.0.0.100",fwmark="",name="web",port="80",protocol="tcp",service="tcp_10.0.0.100_80"} 1
lvsmon_reconcile_held{address="10.0.0.102",fwmark="",name="api",port="443",protocol="tcp",service="tcp_10.0.0.102_443"} 1
# HELP lvsmon_reconcile_stray_changes_total Changes to managed services' IPVS tables that lvsmon did not make.
# TYPE lvsmon_reconcile_stray_changes_total counter
lvsmon_reconcile_stray_changes_total 1
`
	names := []string{"lvsmon_ipvs_other_writer", "lvsmon_ipvs_other_writer_processes", "lvsmon_reconcile_held", "lvsmon_reconcile_stray_changes_total"}
	if err := testutil.CollectAndCompare(NewMetrics(g.r, func() *config.Config { return g.cfg }), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
	// With takeover: always, writers are shown and nothing is held.
	g.cfg.IPVS.Takeover = config.TakeoverAlways
	want = `
# HELP lvsmon_reconcile_held 1 while lvsmon does not write the managed virtual service because another program does (ipvs.takeover: when_gone).
# TYPE lvsmon_reconcile_held gauge
lvsmon_reconcile_held{address="10.0.0.100",fwmark="",name="web",port="80",protocol="tcp",service="tcp_10.0.0.100_80"} 0
lvsmon_reconcile_held{address="10.0.0.102",fwmark="",name="api",port="443",protocol="tcp",service="tcp_10.0.0.102_443"} 0
`
	if err := testutil.CollectAndCompare(NewMetrics(g.r, func() *config.Config { return g.cfg }), strings.NewReader(want), "lvsmon_reconcile_held"); err != nil {
		t.Error(err)
	}
}

// TestProcessOfUnmanagedServicesIsNoNews: keepalived writing only a
// service lvsmon does not manage is an ordinary setup.
func TestProcessOfUnmanagedServicesIsNoNews(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	g.procs = []Process{{PID: 812, Name: "keepalived", Services: []ServiceRef{{Addr: netip.MustParseAddr("10.0.0.200"), Port: 80}}}}
	g.round(0)
	if w := g.b.written(webKey); len(w) != 3 {
		t.Errorf("web not written: %q", w)
	}
	ws := g.r.OtherWriters(g.cfg)
	if len(ws) != 1 || len(ws[0].Services) != 0 || len(g.kinds()) != 0 {
		t.Errorf("other writers %+v, events %q", ws, g.kinds())
	}
	g.procs = nil
	g.round(scanEvery)
	if len(g.r.OtherWriters(g.cfg)) != 0 || len(g.kinds()) != 0 {
		t.Errorf("events %q", g.kinds())
	}
}

// TestChangesOfAKnownProcessAreItsOwn: keepalived's weight changes while
// it runs, and its removal of its services as it exits, open no stray
// hold of their own: lvsmon takes over as soon as it is gone.
func TestChangesOfAKnownProcessAreItsOwn(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	g.round(0)
	g.procs = []Process{{PID: 812, Name: "keepalived", Services: []ServiceRef{{Addr: webKey.Addr, Port: 80}}}}
	g.round(scanEvery)
	g.behindTheBack(webKey, webRS1, 1)
	g.round(scanEvery / 4)
	// It exits, taking web along, between two scans.
	g.b.Mutate(func(t *lvs.Table) {
		t.Services = slices.DeleteFunc(t.Services, func(s lvs.Service) bool { return s.Key == webKey })
	})
	g.procs = nil
	g.round(scanEvery / 4)
	g.round(scanEvery / 2)
	ws := g.r.OtherWriters(g.cfg)
	if len(ws) != 0 {
		t.Errorf("other writers after keepalived exited: %+v", ws)
	}
	if w := g.b.written(webKey); len(w) != 6 { // created at the start, and again
		t.Errorf("web not taken over at once: %q", w)
	}
	if k, n := g.kinds(), g.r.StrayChanges(); !slices.Equal(k, []string{"other_writer ", "other_writer_gone "}) || n != 2 {
		t.Errorf("events %q, %d stray changes", k, n)
	}
}

// TestHeldServiceKeepsItsSorryMemory: every web server fails while
// keepalived has web: no sorry server goes in and no sorry_on is
// written (nothing was done); once keepalived is gone, both happen.
func TestHeldServiceKeepsItsSorryMemory(t *testing.T) {
	g := newOtherRig(t, "when_gone")
	g.round(0)
	g.procs = []Process{{PID: 812, Name: "keepalived", Services: []ServiceRef{{Addr: webKey.Addr, Port: 80}}}}
	g.hs[lvs.DestID(webKey, webRS1)], g.hs[lvs.DestID(webKey, webRS2)] = health.Down, health.Down
	g.round(scanEvery)
	g.round(scanEvery / 2)
	sorry := lvs.DestKey{Addr: netip.MustParseAddr("127.0.0.1"), Port: 80}
	if g.r.SorryActive(webKey.ID()) || g.weight(webKey, sorry) != -1 {
		t.Errorf("sorry server in while held: active %v, weight %d", g.r.SorryActive(webKey.ID()), g.weight(webKey, sorry))
	}
	if k := g.kinds(); !slices.Equal(k, []string{"other_writer "}) {
		t.Errorf("events while held: %q", k)
	}
	g.procs = nil
	g.round(scanEvery)
	if !g.r.SorryActive(webKey.ID()) || g.weight(webKey, sorry) != 1 {
		t.Errorf("sorry server not in after the takeover")
	}
	if k := g.kinds(); !slices.Equal(k, []string{"other_writer ", "other_writer_gone ", "sorry_on " + webKey.ID()}) {
		t.Errorf("events: %q", k)
	}
}
