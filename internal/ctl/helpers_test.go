package ctl

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/app"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/ from this run's output")

const testToken = "0123456789abcdef-ctl-token"

// testCfg has what name resolution must tell apart: 10.0.1.1:80 in two
// services (web and the fwmark one), IPv6 real servers ([::1]:80), a
// persistent service, a sorry server, a failing real server (10.0.1.2).
const testCfg = `director: ctltest
step: 1s
ipvs: {backend: fake}
web: {api_token_file: %TOKEN%}
virtual_services:
  - name: web
    address: 10.0.0.1
    port: 80
    scheduler: wrr
    sorry_server: {address: 127.0.0.1, port: 80}
    check: {type: tcp, interval: 200ms, timeout: 100ms}
    real_servers:
      - {address: 10.0.1.1, port: 80, weight: 3}
      - {address: 10.0.1.2, port: 80, weight: 2}
      - {address: 10.0.1.3, port: 80, weight: 1, forward: nat}
  - name: api
    address: 10.0.0.1
    port: 443
    persistence: 300s
    check: {type: tcp, interval: 200ms, timeout: 100ms}
    real_servers:
      - {address: 10.0.1.1, port: 443}
  - name: web6
    address: "2001:db8::1"
    port: 80
    check: {type: tcp, interval: 200ms, timeout: 100ms}
    real_servers:
      - {address: "::1", port: 80}
      - {address: "2001:db8::10", port: 80, forward: tun}
  - name: marked
    fwmark: 10
    check: {type: tcp, interval: 200ms, timeout: 100ms}
    real_servers:
      - {address: 10.0.1.1, port: 80}
`

// failing is the real server testProbe fails.
var failing = netip.MustParseAddr("10.0.1.2")

// testProbe stands in for the checks: no traffic leaves the test, and
// 10.0.1.2 fails.
func testProbe(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
	if r.Key.Addr == failing {
		return errors.New("dial tcp 10.0.1.2:80: connect: connection refused")
	}
	return nil
}

// observed is a service only the kernel has: fwmark 20 with a real
// server added by hand.
func observed() lvs.Table {
	t := lvs.Table{Services: []lvs.Service{{Key: lvs.MarkKey(20, lvs.IPv4), Scheduler: "sh",
		Dests: []lvs.Dest{{Key: lvs.DestKey{Addr: netip.MustParseAddr("10.0.3.1"), Port: 0}, Forward: lvs.Tunnel, Weight: 5, ActiveConns: 2, InactiveConns: 7}}}}}
	t.SumTotals()
	return t
}

// daemon is lvsmon's app on the fake kernel, serving its real web API.
type daemon struct {
	URL       string
	CfgPath   string
	TokenFile string
	Fake      *lvs.Fake
	Log       *testutil.SyncBuffer
}

// startDaemon runs the app on testCfg (cfg when not "") until the test
// ends. Reloads re-read CfgPath.
func startDaemon(t *testing.T, cfg string) *daemon {
	t.Helper()
	dir := t.TempDir()
	d := &daemon{CfgPath: filepath.Join(dir, "lvsmon.yaml"), TokenFile: filepath.Join(dir, "token"), Log: &testutil.SyncBuffer{}}
	if err := os.WriteFile(d.TokenFile, []byte(testToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if cfg == "" {
		cfg = testCfg
	}
	cfg = strings.ReplaceAll(cfg, "%TOKEN%", d.TokenFile)
	if err := os.WriteFile(d.CfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func() (*config.Config, error) {
		c, err := config.Load(d.CfgPath)
		if err != nil {
			return nil, err
		}
		c.DataDir, c.Listen = filepath.Join(dir, "data"), config.Addresses{"127.0.0.1:0"}
		return c, nil
	}
	c, err := load()
	if err != nil {
		t.Fatal(err)
	}
	d.Fake = lvs.NewFake(observed())
	ready := make(chan []net.Addr, 1)
	a, err := app.New(app.Options{Config: c, Reader: d.Fake, Load: load, Log: slog.New(slog.NewTextHandler(d.Log, nil)),
		Version: "1.2.3-test", Probe: testProbe, Ready: func(a []net.Addr) { ready <- a }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	})
	select {
	case addrs := <-ready:
		d.URL = "http://" + addrs[0].String()
	case err := <-done:
		t.Fatalf("Run: %v\n%s", err, d.Log.String())
	case <-time.After(20 * time.Second):
		t.Fatalf("the daemon did not start:\n%s", d.Log.String())
	}
	return d
}

// client is a Client of d with its token.
func (d *daemon) client(t *testing.T) *Client {
	t.Helper()
	c, err := New(Options{URL: d.URL, Token: tokenFrom(d.TokenFile, nil), Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// settled waits until every configured real server has been checked,
// the failing one is down and quiesced, and cond (when not nil) holds;
// it returns that status.
func (d *daemon) settled(t *testing.T, cond func(st *web.Status) bool) *web.Status {
	t.Helper()
	c := d.client(t)
	var st *web.Status
	testutil.WaitFor(t, "the daemon settled", func() bool {
		var err error
		if st, err = c.Status(t.Context()); err != nil {
			t.Fatal(err)
		}
		if st.Collector.Samples < 2 {
			return false
		}
		for _, s := range st.Services {
			for i := range s.RealServers {
				r := &s.RealServers[i]
				if !r.Configured || r.Sorry {
					continue
				}
				ck, ok := CheckOf(r)
				if !ok || ck.LastCheck.IsZero() || !r.InKernel || r.Weight == nil {
					return false
				}
				want := "up"
				if r.Address == failing.String() {
					want = "down"
				}
				if r.Health != want {
					return false
				}
				if _, drained := OverrideOf(r); (want == "down" || drained) && *r.Weight != 0 {
					return false
				}
			}
		}
		return cond == nil || cond(st)
	})
	return st
}

// run runs `lvsmon ctl args...` against d, returning stdout, stderr and
// the error.
func run(t *testing.T, ctx context.Context, args ...string) (string, string, error) {
	t.Helper()
	var out, errb testutil.SyncBuffer
	err := Main(ctx, args, &Env{Stdout: &out, Stderr: &errb, Loc: time.UTC, Poll: 20 * time.Millisecond})
	return out.String(), errb.String(), err
}
