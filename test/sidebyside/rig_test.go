//go:build ipvskernel || lab

package sidebyside

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/checker"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/reconcile"
)

// importConfig imports the other tool's config as `lvsmon import` does
// and reads the YAML it prints back through config.Parse, as the daemon
// reads its file, with the data dir in a test directory (the only line
// added). The report's changed and unsupported lines are logged; a
// config warning fails the test, but the one about NAT to a loopback
// address where loopback says the real servers are there (the lab tier
// has no other addresses).
func importConfig(t *testing.T, format, path, dataDir string, loopback bool) *config.Config {
	t.Helper()
	res, err := importer.Import(format, path, importer.Options{})
	if err != nil {
		t.Fatalf("lvsmon import %s %s: %v", format, path, err)
	}
	for _, e := range res.Report {
		if e.Status == importer.Changed || e.Status == importer.Unsupported {
			t.Logf("import: %s", e)
		}
	}
	if bytes.Contains(res.YAML, []byte("\ndata_dir:")) {
		t.Fatalf("the import sets data_dir; the test cannot put it elsewhere:\n%s", res.YAML)
	}
	y := append(bytes.TrimRight(slices.Clone(res.YAML), "\n"), "\ndata_dir: "+dataDir+"\n"...)
	cfg, err := config.Parse(path+".yaml", y)
	if err != nil {
		t.Fatalf("the import of %s does not parse: %v\n%s", path, err, y)
	}
	for _, w := range cfg.Warnings {
		if loopback && strings.Contains(w.String(), "to the loopback address") {
			continue
		}
		t.Errorf("the import of %s: config warning: %s", path, w)
	}
	return cfg
}

// lvsmonRig is lvsmon's checking half assembled as app.New and App.Run
// assemble it: the event log and the overrides in the data dir, the
// checker with the real probes, applied before the reconciler's first
// round and kicking it on every health change, the reconciler reading
// the config in force and resyncing every step, and on the netlink
// backend looking for other IPVS writers. (The daemon itself cannot run
// in the VM: its graphs need cgo, the VM takes static binaries only.)
type lvsmonRig struct {
	cur    atomic.Pointer[config.Config]
	chk    *checker.Checker
	rec    *reconcile.Reconciler
	ev     *events.Log
	logs   *testutil.SyncBuffer
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

// startLvsmon runs the rig on backend b with cfg until stop or the end
// of the test. scan: look for other writers in /proc, as the daemon does
// on the netlink backend.
func startLvsmon(t *testing.T, cfg *config.Config, b lvs.Backend, scan bool) *lvsmonRig {
	t.Helper()
	r := &lvsmonRig{logs: &testutil.SyncBuffer{}}
	log := slog.New(slog.NewTextHandler(r.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	var err error
	if r.ev, err = events.Open(filepath.Join(cfg.DataDir, "events"), events.DefaultMax, log.With("component", "events")); err != nil {
		t.Fatal(err)
	}
	ovr, err := reconcile.OpenOverridesLog(cfg.DataDir, log.With("component", "overrides"))
	if err != nil {
		t.Fatal(err)
	}
	r.cur.Store(cfg)
	kick := reconcile.NewTrigger()
	r.chk = checker.New(probe.ProbeServer, r.ev, log.With("component", "checker"), kick.Kick)
	ro := reconcile.Options{Backend: b, Config: r.cur.Load, Health: r.chk.Health, Overrides: ovr, Events: r.ev,
		Log: log.With("component", "reconciler"), Trigger: kick}
	if scan {
		ro.Processes = func() ([]reconcile.Process, error) { return reconcile.ScanProcesses(r.cur.Load().IPVS.ProcRoot) }
	}
	r.rec = reconcile.New(ro)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	r.chk.Apply(cfg)
	r.wg.Go(func() { r.chk.Run(ctx) })
	r.wg.Go(func() { r.rec.Run(ctx, cfg.Step.D()) })
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("lvsmon's log:\n%s", tail(r.logs.String(), 200))
		}
	})
	return r
}

// reload swaps in next as App.Reload does with a config that validates.
func (r *lvsmonRig) reload(next *config.Config) {
	r.cur.Store(next)
	r.chk.Apply(next)
	r.rec.Kick()
}

// stop ends the run as SIGTERM ends the daemon: nothing is written on
// the way out.
func (r *lvsmonRig) stop() {
	r.once.Do(func() {
		r.cancel()
		r.wg.Wait()
		r.ev.Close()
	})
}

// held is the real servers whose downs the mass-failure guard holds.
func (r *lvsmonRig) held() []string {
	var s []string
	for _, h := range r.chk.Holds() {
		s = append(s, h.Servers...)
	}
	slices.Sort(s)
	return s
}

// inconclusive is the count of inconclusive check results (the
// director's own trouble) of the real servers of service (an id,
// tcp_10.0.0.1_80).
func (r *lvsmonRig) inconclusive(service string) uint64 {
	var n uint64
	for _, s := range r.chk.Status() {
		if strings.HasPrefix(s.ID, service+"__") {
			n += s.Inconclusive
		}
	}
	return n
}

// status is the checker's status of the real servers of service, one
// line each, for a failure's message.
func (r *lvsmonRig) status(service string) string {
	var lines []string
	for _, s := range r.chk.Status() {
		if strings.HasPrefix(s.ID, service+"__") {
			lines = append(lines, fmt.Sprintf("    %s: %s since %s, last check %s (%s) ok=%v %q, pending=%v held=%v",
				s.ID, s.Health, s.Since.Format("15:04:05.000"), s.LastTime.Format("15:04:05.000"), s.LastDur.Round(time.Millisecond), s.LastOK, s.LastMsg, s.Pending, s.Held))
		}
	}
	slices.Sort(lines)
	return strings.Join(lines, "\n")
}

// down counts the real servers of service that lvsmon holds down.
func (r *lvsmonRig) down(service string) int {
	n := 0
	for id, h := range r.chk.Health() {
		if strings.HasPrefix(id, service+"__") && h == health.Down {
			n++
		}
	}
	return n
}

// tail is the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{fmt.Sprintf("[%d lines before]", len(lines)-n)}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}

// view is an IPVS table as `ipvsadm -Ln` and `ipvsadm -Ln --thresholds`
// show it, reduced to what the tools are compared on: each service's
// protocol, address, scheduler and flags (persistence), each real
// server's forwarding and weight (-Ln) and thresholds (--thresholds).
// The headers and the connection counters are left out; services and
// their real servers are sorted, as the kernel lists them in the order
// they were added.
type view string

// ipvsadmView reads the outputs of `ipvsadm -Ln` (ln) and `ipvsadm -Ln
// --thresholds` (th) taken one after the other:
//
//	IP Virtual Server version 1.2.1 (size=4096)
//	Prot LocalAddress:Port Scheduler Flags
//	  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
//	TCP  10.210.0.11:8080 rr persistent 60
//	  -> 10.211.1.2:8080              Route   1      0          0
//
// and, with --thresholds, "Uthreshold Lthreshold" in place of "Forward
// Weight". A table that changed between the two runs is an error.
func ipvsadmView(ln, th string) (view, error) {
	a, err := ipvsadmLines(ln)
	if err != nil {
		return "", fmt.Errorf("ipvsadm -Ln: %w", err)
	}
	b, err := ipvsadmLines(th)
	if err != nil {
		return "", fmt.Errorf("ipvsadm -Ln --thresholds: %w", err)
	}
	if len(a) != len(b) {
		return "", errTableMoved
	}
	var svcs [][]string
	for i := range a {
		if a[i][0] != b[i][0] || len(a[i]) != len(b[i]) {
			return "", errTableMoved
		}
		if a[i][0] != "->" {
			svcs = append(svcs, []string{strings.Join(a[i], " ")})
			continue
		}
		if a[i][1] != b[i][1] {
			return "", errTableMoved
		}
		svcs[len(svcs)-1] = append(svcs[len(svcs)-1], fmt.Sprintf("  -> %s %s %s %s %s", a[i][1], a[i][2], a[i][3], b[i][2], b[i][3]))
	}
	return joinView(svcs), nil
}

// errTableMoved: the table changed between two ipvsadm runs; read again.
var errTableMoved = errors.New("the table changed between the two ipvsadm runs")

// ipvsadmLines splits ipvsadm's service and real-server lines into
// fields, without the headers.
func ipvsadmLines(out string) ([][]string, error) {
	var lines [][]string
	for i, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0, strings.HasPrefix(line, "IP Virtual Server"), f[0] == "Prot",
			f[0] == "->" && len(f) > 1 && f[1] == "RemoteAddress:Port":
		case f[0] == "->" && len(f) >= 4 && len(lines) > 0,
			slices.Contains([]string{"TCP", "UDP", "SCTP", "FWM"}, f[0]) && len(f) >= 3:
			lines = append(lines, f)
		default:
			return nil, fmt.Errorf("line %d not understood: %q", i+1, line)
		}
	}
	return lines, nil
}

func joinView(svcs [][]string) view {
	var b strings.Builder
	for _, s := range svcs {
		slices.Sort(s[1:])
	}
	slices.SortFunc(svcs, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	for _, s := range svcs {
		for _, l := range s {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	return view(b.String())
}

// tableView is an lvs.Table as ipvsadmView reads ipvsadm's output of it.
func tableView(tab lvs.Table) view {
	fwd := map[lvs.Forward]string{lvs.DR: "Route", lvs.NAT: "Masq", lvs.Tunnel: "Tunnel", lvs.Local: "Local"}
	var svcs [][]string
	for _, s := range tab.Services {
		line := s.Key.String() // "TCP 10.0.0.1:80"
		if s.Key.IsFWMark() {
			line = "FWM " + strconv.Itoa(int(s.Key.FWMark))
		}
		line += " " + s.Scheduler
		if s.Persistence > 0 {
			line += " persistent " + strconv.Itoa(int(s.Persistence/time.Second))
			if s.Netmask > 0 && s.Netmask < 32 && s.Key.Addr.Is4() {
				m := net.CIDRMask(s.Netmask, 32)
				line += " mask " + net.IP(m).String()
			}
		}
		svc := []string{line}
		for _, d := range s.Dests {
			svc = append(svc, fmt.Sprintf("  -> %s %s %d %d %d", d.Key, fwd[d.Forward], d.Weight, d.UpperThreshold, d.LowerThreshold))
		}
		svcs = append(svcs, svc)
	}
	return joinView(svcs)
}

// settled is how a table came to rest after a step.
type settled struct {
	table view
	// took is until the table was the one wanted (or the bound).
	took time.Duration
	// path is every distinct table on the way, with when it was seen.
	path []string
	ok   bool
}

// settle reads the table every poll until it is want and has stayed so
// for quiet, or bound has passed.
func settle(t *testing.T, read func() view, want view, poll, quiet, bound time.Duration) settled {
	t.Helper()
	start := time.Now()
	var s settled
	var since time.Time // when the table became want
	last := view("-")
	for {
		v := read()
		now := time.Now()
		if v != last {
			s.path = append(s.path, fmt.Sprintf("at %s:\n%s", now.Sub(start).Round(time.Millisecond), indent(v)))
			last = v
			since = time.Time{}
			if v == want {
				since = now
				s.took = now.Sub(start)
			}
		}
		s.table = v
		if !since.IsZero() && now.Sub(since) >= quiet {
			s.ok = true
			return s
		}
		if now.Sub(start) > bound {
			s.took = now.Sub(start)
			return s
		}
		time.Sleep(poll)
	}
}

func indent(v view) string {
	if v == "" {
		return "    (empty)"
	}
	return "    " + strings.ReplaceAll(strings.TrimRight(string(v), "\n"), "\n", "\n    ")
}

// tool is the other tool's process (keepalived, ldirectord): it runs on
// a copy of its config of its own, reloads on SIGHUP with a new one, and
// stops on SIGTERM, as their init scripts have them do.
type tool struct {
	name     string
	cmd      *exec.Cmd
	conf     string // its own copy of the config, which a reload replaces
	stopWait time.Duration
	done     chan struct{}
	once     sync.Once
}

// start runs cmd and closes done when it exits.
func (p *tool) start(t *testing.T) {
	t.Helper()
	p.done = make(chan struct{})
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", p.name, err)
	}
	go func() { p.cmd.Wait(); close(p.done) }()
}

// writeConf copies the config at path over the tool's own.
func (p *tool) writeConf(t *testing.T, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p.conf, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// reload gives the tool the config at path and a SIGHUP.
func (p *tool) reload(t *testing.T, path string) {
	t.Helper()
	p.writeConf(t, path)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatalf("%s reload: %v", p.name, err)
	}
}

// stop ends the tool with SIGTERM and waits for it, at most stopWait.
func (p *tool) stop(t *testing.T) {
	p.once.Do(func() {
		p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(p.stopWait):
			t.Errorf("%s did not stop within %s of SIGTERM", p.name, p.stopWait)
			p.cmd.Process.Kill()
			<-p.done
		}
	})
}
