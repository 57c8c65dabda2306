package app

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

func testConfig(t *testing.T, listen string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte("ipvs: {backend: fake}\nlisten: "+listen+
		"\nvirtual_services:\n  - {name: web, address: 192.0.2.10, port: 80, real_servers: [{address: 10.0.1.1}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = t.TempDir()
	return cfg
}

// newTestApp builds an App on cfg with an empty fake kernel and a log
// kept for the test; Close is deferred to the test's end.
func newTestApp(t *testing.T, cfg *config.Config) (*App, *lvs.Fake, *testutil.SyncBuffer) {
	t.Helper()
	fake := lvs.NewFake(lvs.Table{})
	logBuf := &testutil.SyncBuffer{}
	a, err := New(Options{Config: cfg, Reader: fake, Log: slog.New(slog.NewTextHandler(logBuf, nil)), Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	return a, fake, logBuf
}

// openFDs counts this process's open file descriptors.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// A step of New that fails (here the web port is taken, the last step)
// undoes the ones before it: the event log, the RRD store and the
// overrides leave no descriptor open, and a second New on the same data
// directory works.
func TestNewUndoesAFailedStart(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t, busy.Addr().String())
	log := slog.New(slog.DiscardHandler)
	before := openFDs(t)
	a, err := New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: log})
	if err == nil || a != nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("New on a busy port: %v, %v", a, err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before the failed New, %d after", before, after)
	}
	cfg.Listen = config.Addresses{"127.0.0.1:0"}
	a, err = New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: log})
	if err != nil {
		t.Fatalf("New after a failed one: %v", err)
	}
	a.Close()
	a.Close() // a second Close does nothing
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before, %d after New and Close", before, after)
	}
}

// A data directory that cannot be made fails New with its reason.
func TestNewFailsOnAnUnusableDataDir(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	file := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = filepath.Join(file, "data")
	if _, err := New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "data dir") {
		t.Fatalf("New with a data dir under a file: %v", err)
	}
}

// New starts nothing and writes no event; Run writes daemon_start, runs
// until its context ends, writes daemon_stop and leaves the kernel table
// as it was at the end.
func TestRunStartsAndStops(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	a, fake, logBuf := newTestApp(t, cfg)
	if n := len(a.ev.Query(events.Filter{})); n != 0 {
		t.Fatalf("New wrote %d events", n)
	}
	ready := make(chan []net.Addr, 1)
	a.ready = func(addrs []net.Addr) { ready <- addrs }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	<-ready
	testutil.WaitFor(t, "the reconciler created the service", func() bool {
		tab, _ := fake.Table(t.Context())
		return len(tab.Services) == 1
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v; log:\n%s", err, logBuf.String())
	}
	var kinds []string
	for _, e := range a.ev.Query(events.Filter{}) {
		kinds = append(kinds, string(e.Kind))
	}
	if got := strings.Join(kinds, " "); !strings.HasPrefix(got, "daemon_start") || !strings.HasSuffix(got, "daemon_stop") {
		t.Errorf("events: %s", got)
	}
	if !strings.Contains(logBuf.String(), "the IPVS table was left as it is") {
		t.Errorf("log:\n%s", logBuf.String())
	}
}

// Apply swaps a new config in while Run runs: a new service reaches the
// kernel, a changed listen address keeps its running value (the log
// says so), and a reload event is written.
func TestApplyKeepsWhatIsBoundAtStart(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	a, fake, logBuf := newTestApp(t, cfg)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	services := func() int {
		tab, _ := fake.Table(t.Context())
		return len(tab.Services)
	}
	testutil.WaitFor(t, "the first service in the kernel", func() bool { return services() == 1 })

	next, err := config.Parse("t.yaml", []byte("ipvs: {backend: fake}\nlisten: 127.0.0.1:1\nvirtual_services:\n"+
		"  - {name: web, address: 192.0.2.10, port: 80, real_servers: [{address: 10.0.1.1}]}\n"+
		"  - {name: api, address: 192.0.2.11, port: 443, real_servers: [{address: 10.0.1.2}]}\n"))
	if err != nil {
		t.Fatal(err)
	}
	next.DataDir = cfg.DataDir
	if err := a.Apply(next); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the new service in the kernel", func() bool { return services() == 2 })
	if got := a.cur.Load().Listen; !slices.Equal(got, cfg.Listen) {
		t.Errorf("listen after Apply: %q, want the running %q", got, cfg.Listen)
	}
	if !strings.Contains(logBuf.String(), `key=listen`) {
		t.Errorf("the log does not say listen waits for a restart:\n%s", logBuf.String())
	}
	reloads := 0
	for _, e := range a.ev.Query(events.Filter{}) {
		if e.Kind == events.Reload {
			reloads++
		}
	}
	if reloads != 1 {
		t.Errorf("%d reload events, want 1", reloads)
	}
}

// Every listen address is bound: a busy one fails New with its address
// named and closes those bound before it; Run serves on all of them and
// reports every address to Ready and in the "lvsmon started" line.
func TestSeveralListenAddresses(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	cfg := testConfig(t, "['127.0.0.1:0', '"+busy.Addr().String()+"']")
	before := openFDs(t)
	a, err := New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: slog.New(slog.DiscardHandler)})
	if err == nil || a != nil || !strings.Contains(err.Error(), "listen on "+busy.Addr().String()) {
		t.Fatalf("New with the second address busy: %v, %v", a, err)
	}
	if after := openFDs(t); after != before {
		t.Errorf("open descriptors: %d before the failed New, %d after (the first listener left open?)", before, after)
	}

	cfg.Listen = config.Addresses{"127.0.0.1:0", "127.0.0.2:0"}
	var logBuf testutil.SyncBuffer
	a, err = New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ready := make(chan []net.Addr, 1)
	a.ready = func(addrs []net.Addr) { ready <- addrs }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	addrs := <-ready
	if len(addrs) != 2 || !strings.HasPrefix(addrs[0].String(), "127.0.0.1:") || !strings.HasPrefix(addrs[1].String(), "127.0.0.2:") {
		t.Fatalf("Ready got %v", addrs)
	}
	for _, ad := range addrs {
		testutil.WaitFor(t, "/-/ready on "+ad.String(), func() bool {
			resp, err := http.Get("http://" + ad.String() + "/-/ready")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	if want := "listen=" + addrs[0].String() + "," + addrs[1].String() + " "; !strings.Contains(logBuf.String(), want) {
		t.Errorf("the start line lacks %q:\n%s", want, logBuf.String())
	}
}
