package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// The two directors' configs: "here" is the reference; "drifted" differs
// in every way the comparison knows (a service only here, a real server
// on each side only, a weight, the scheduler, persistence, the sorry
// server, the check). Services are observed only, so the kernel tables
// are the test's to set.
const (
	pairHere = `director: %s
ipvs: {backend: fake}
step: 1s
listen: 127.0.0.1:0
virtual_services:
  - name: web
    address: 192.0.2.10
    port: 80
    managed: false
    scheduler: wrr
    sorry_server: {address: 127.0.0.1}
    check: {type: tcp, interval: 1s}
    real_servers: [{address: 127.0.0.2, weight: 1}, {address: 127.0.0.3, weight: 2}]
  - {name: dns, protocol: udp, address: 192.0.2.53, port: 53, managed: false, real_servers: [{address: 127.0.0.4}]}
`
	pairDrifted = `director: %s
ipvs: {backend: fake}
step: 1s
listen: 127.0.0.1:0
virtual_services:
  - name: web
    address: 192.0.2.10
    port: 80
    managed: false
    scheduler: wlc
    persistence: 5m
    check: {type: tcp, interval: 2s}
    real_servers: [{address: 127.0.0.2, weight: 5}, {address: 127.0.0.5, weight: 1}]
`
)

var (
	pairWeb = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("192.0.2.10"), 80)
	pairDNS = lvs.AddrKey(lvs.UDP, netip.MustParseAddr("192.0.2.53"), 53)
)

func dest(a string, port uint16, w int32) lvs.Dest {
	return lvs.Dest{Key: lvs.DestKey{Addr: netip.MustParseAddr(a), Port: port}, Forward: lvs.DR, Weight: w}
}

// hereTable is the kernel table that matches pairHere; driftedTable
// differs from it in every way a kernel table can.
func hereTable() lvs.Table {
	return lvs.Table{Services: []lvs.Service{
		{Key: pairWeb, Scheduler: "wrr", Dests: []lvs.Dest{dest("127.0.0.2", 80, 1), dest("127.0.0.3", 80, 2)}},
		{Key: pairDNS, Scheduler: "wlc", Dests: []lvs.Dest{dest("127.0.0.4", 53, 1)}},
	}}
}

func driftedTable() lvs.Table {
	return lvs.Table{Services: []lvs.Service{
		{Key: pairWeb, Scheduler: "sh", Persistence: time.Minute, Dests: []lvs.Dest{dest("127.0.0.2", 80, 0), dest("127.0.0.5", 80, 1)}},
	}}
}

// director is one lvsmon of the pair.
type director struct {
	name string
	app  *App
	fake *lvs.Fake
	url  string
	stop context.CancelFunc
	done chan error
}

func pairConfig(t *testing.T, tmpl, name, peerName, peerURL, dataDir string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(tmpl, name)
	if peerURL != "" {
		y += fmt.Sprintf("peers:\n  - {name: %s, url: %q, interval: 1s, timeout: 900ms}\n", peerName, peerURL)
	}
	cfg, err := config.Parse(name+".yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dataDir
	return cfg
}

func startDirector(t *testing.T, name, tmpl string, table lvs.Table) *director {
	t.Helper()
	d := &director{name: name, fake: lvs.NewFake(table), done: make(chan error, 1)}
	a, err := New(Options{Config: pairConfig(t, tmpl, name, "", "", t.TempDir()), Reader: d.fake,
		Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Version: "t"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	d.app, d.url = a, "http://"+a.addrs()[0].String()
	ctx, cancel := context.WithCancel(t.Context())
	d.stop = cancel
	go func() { d.done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-d.done })
	return d
}

// peerWith applies tmpl on d with other as its peer (a reload).
func (d *director) peerWith(t *testing.T, tmpl string, other *director) {
	t.Helper()
	if err := d.app.Apply(pairConfig(t, tmpl, d.name, other.name, other.url, d.app.cur.Load().DataDir)); err != nil {
		t.Fatal(err)
	}
}

// status reads d's status API.
func (d *director) status(t *testing.T) web.Status {
	t.Helper()
	resp, err := http.Get(d.url + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st web.Status
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	return st
}

func (d *director) metrics(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(d.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// driftKinds is "table kind" of every drift d's API reports about its
// peer, sorted and without repeats; nil when the drift is not known.
func driftKinds(st web.Status) []string {
	if len(st.Peers) != 1 || !st.Peers[0].DriftKnown {
		return nil
	}
	out := []string{}
	for _, dr := range st.Peers[0].Drift {
		out = append(out, dr.Table+" "+dr.Kind)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// every kind the comparison knows, as driftKinds writes them.
var everyDrift = []string{
	"config check", "config persistence", "config real_server", "config scheduler", "config service", "config sorry_server", "config weight",
	"kernel persistence", "kernel real_server", "kernel scheduler", "kernel service", "kernel weight",
}

func eventKinds(a *App, kind events.Kind) int {
	n := 0
	for _, e := range a.ev.Query(events.Filter{}) {
		if e.Kind == kind {
			n++
		}
	}
	return n
}

// TestPairDrift runs two lvsmon daemons on the fake backend, each the
// other's peer, with configs and kernel tables that differ in every
// way: both report every kind of drift (API, problems, metrics, events);
// fixing the peer's config and table clears it on both sides; a stopped
// peer is reported unreachable, its drift unknown rather than none.
func TestPairDrift(t *testing.T) {
	a := startDirector(t, "lvs1", pairHere, hereTable())
	b := startDirector(t, "lvs2", pairDrifted, driftedTable())
	a.peerWith(t, pairHere, b)
	b.peerWith(t, pairDrifted, a)

	for _, d := range []*director{a, b} {
		var st web.Status
		testutil.Eventually(t, 20*time.Second, func() bool {
			st = d.status(t)
			return slices.Equal(driftKinds(st), everyDrift)
		}, func() string { return fmt.Sprintf("%s: drift kinds %v, peers %+v", d.name, driftKinds(st), st.Peers) })
		p := st.Peers[0]
		if !p.Up || p.LastSuccess.IsZero() || p.Director == "" || p.SampledAt.IsZero() {
			t.Errorf("%s: peer %+v", d.name, p)
		}
		var kinds []string
		for _, pr := range st.Problems {
			if strings.HasPrefix(pr.Source, "peer ") {
				kinds = append(kinds, pr.Kind)
			}
		}
		if len(kinds) != len(everyDrift) {
			t.Errorf("%s: peer problems %v, want one per kind of drift", d.name, kinds)
		}
		m := d.metrics(t)
		for _, want := range []string{`lvsmon_peer_up{peer="`, `lvsmon_peer_drift{kind="check",peer="`, `lvsmon_peer_last_success_timestamp_seconds{peer="`} {
			if !strings.Contains(m, want) {
				t.Errorf("%s: metrics lack %s", d.name, want)
			}
		}
		if eventKinds(d.app, events.PeerDrift) != 1 {
			t.Errorf("%s: %d peer_drift events, want 1", d.name, eventKinds(d.app, events.PeerDrift))
		}
	}
	// A's view names the values on each side.
	want := map[string]web.Drift{
		"config weight":       {Table: "config", Kind: "weight", Service: "tcp_192.0.2.10_80", Server: "tcp_192.0.2.10_80__127.0.0.2_80", Local: "1", Peer: "5"},
		"config sorry_server": {Table: "config", Kind: "sorry_server", Service: "tcp_192.0.2.10_80", Local: "127.0.0.1:80 dr", Peer: "none"},
		"kernel scheduler":    {Table: "kernel", Kind: "scheduler", Service: "tcp_192.0.2.10_80", Local: "wrr", Peer: "sh"},
		"kernel persistence":  {Table: "kernel", Kind: "persistence", Service: "tcp_192.0.2.10_80", Local: "0s", Peer: "60s"},
		"kernel service":      {Table: "kernel", Kind: "service", Service: "udp_192.0.2.53_53", Local: "present", Peer: "absent"},
	}
	for _, dr := range a.status(t).Peers[0].Drift {
		if w, ok := want[dr.Table+" "+dr.Kind]; ok && dr != w {
			t.Errorf("lvs1's drift %+v, want %+v", dr, w)
		}
	}

	// Fix the peer: its config and table become lvs1's.
	b.peerWith(t, pairHere, a)
	b.fake.Mutate(func(tb *lvs.Table) { *tb = hereTable() })
	for _, d := range []*director{a, b} {
		var st web.Status
		testutil.Eventually(t, 20*time.Second, func() bool {
			st = d.status(t)
			k := driftKinds(st)
			return k != nil && len(k) == 0 && eventKinds(d.app, events.PeerInSync) == 1
		}, func() string { return fmt.Sprintf("%s: drift kinds %v, peers %+v", d.name, driftKinds(st), st.Peers) })
		for _, pr := range st.Problems {
			if strings.HasPrefix(pr.Source, "peer ") {
				t.Errorf("%s: problem %+v after the fix", d.name, pr)
			}
		}
		if m := d.metrics(t); strings.Contains(m, "lvsmon_peer_drift{") && !strings.Contains(m, `lvsmon_peer_drift{kind="check"`) {
			t.Errorf("%s: drift series missing", d.name)
		}
	}

	// Stop lvs2: lvs1 reports it unreachable, never in sync.
	b.stop()
	if err := <-b.done; err != nil {
		t.Fatal(err)
	}
	b.done <- nil // for the cleanup
	b.app.Close()
	var st web.Status
	testutil.Eventually(t, 20*time.Second, func() bool {
		st = a.status(t)
		return len(st.Peers) == 1 && !st.Peers[0].Up && st.Peers[0].LastError != ""
	}, func() string { return fmt.Sprintf("peers %+v", st.Peers) })
	p := st.Peers[0]
	if p.DriftKnown || p.Drift != nil {
		t.Errorf("unreachable peer: drift known %v, drift %v", p.DriftKnown, p.Drift)
	}
	found := false
	for _, pr := range st.Problems {
		found = found || pr.Kind == "peer_unreachable" && pr.Source == "peer lvs2"
	}
	if !found {
		t.Errorf("no peer_unreachable problem: %+v", st.Problems)
	}
	m := a.metrics(t)
	if !strings.Contains(m, `lvsmon_peer_up{peer="lvs2"} 0`) || strings.Contains(m, "lvsmon_peer_drift{") {
		t.Errorf("metrics of an unreachable peer:\n%s", grepLines(m, "lvsmon_peer"))
	}
	if n := eventKinds(a.app, events.PeerUnreachable); n != 1 {
		t.Errorf("%d peer_unreachable events, want 1", n)
	}
}

func grepLines(s, sub string) string {
	var out []string
	for l := range strings.SplitSeq(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
