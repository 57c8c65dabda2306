package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/lvsmon/lvsmon/alerting"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

// receiver keeps what is posted to it: webhook batches, or alert lists
// (as an Alertmanager). While failing is set it answers 503.
type receiver struct {
	mu      sync.Mutex
	bodies  []string
	failing atomic.Bool
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if r.failing.Load() {
		http.Error(w, "down for the test", http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	r.bodies = append(r.bodies, string(b))
	r.mu.Unlock()
}

func (r *receiver) all() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return strings.Join(r.bodies, "\n")
}

// events returns the kinds and servers of the events the webhook got.
func (r *receiver) events(t *testing.T) []string {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, b := range r.bodies {
		var batch events.Batch
		if err := json.Unmarshal([]byte(b), &batch); err != nil {
			t.Fatalf("a webhook body is not a batch: %v: %s", err, b)
		}
		for _, e := range batch.Events {
			out = append(out, string(e.Kind)+" "+e.Server)
		}
	}
	return out
}

// lastAlerts is the last alert list posted.
func (r *receiver) lastAlerts(t *testing.T) []alerting.Alert {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.bodies) == 0 {
		return nil
	}
	var as []alerting.Alert
	if err := json.Unmarshal([]byte(r.bodies[len(r.bodies)-1]), &as); err != nil {
		t.Fatal(err)
	}
	return as
}

// switchProbe fails the real servers whose address is in down.
type switchProbe struct {
	mu   sync.Mutex
	down map[string]bool
}

func (p *switchProbe) set(addr string, down bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.down[addr] = down
}

func (p *switchProbe) probe(_ context.Context, _ *config.VirtualService, r *config.RealServer, _ *config.Check) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.down[r.Key.Addr.String()] {
		return errors.New("http: status 503, want 200-299")
	}
	return nil
}

func channelsConfig(t *testing.T, dataDir, alerting string) *config.Config {
	t.Helper()
	cfg, err := config.Parse("t.yaml", []byte(`director: lvs-test
ipvs: {backend: fake}
listen: 127.0.0.1:0
virtual_services:
  - name: web
    address: 192.0.2.10
    port: 80
    check: {type: tcp, interval: 100ms, timeout: 100ms, fall: 1, rise: 1}
    real_servers: [{address: 10.0.1.1}, {address: 10.0.1.2}]
alerting:
`+alerting))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DataDir = dataDir
	return cfg
}

// The channels in a running daemon: a real server that goes down is an
// alert in the Alertmanager and an event at the webhook; a reload that
// replaces the webhook stops the old one (its queued delivery dropped
// and reported), the new one gets the next events, and the alert
// resolves when the server is back.
func TestChannelsRunAndReload(t *testing.T) {
	am, h1, h2 := &receiver{}, &receiver{}, &receiver{}
	amSrv, h1Srv, h2Srv := httptest.NewServer(am), httptest.NewServer(h1), httptest.NewServer(h2)
	defer amSrv.Close()
	defer h1Srv.Close()
	defer h2Srv.Close()
	section := func(hook, url string) string {
		return fmt.Sprintf(`  external_url: http://lvs-test.example:9601
  alertmanager: {urls: [%s], resend_interval: 10s, labels: {team: net}}
  webhooks: [{name: %s, url: %q, kinds: [server_down, server_up]}]
`, amSrv.URL, hook, url)
	}
	dir := t.TempDir()
	cfg := channelsConfig(t, dir, section("one", h1Srv.URL))
	p := &switchProbe{down: map[string]bool{}}
	var logBuf testutil.SyncBuffer
	a, err := New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: slog.New(slog.NewTextHandler(&logBuf, nil)), Version: "t", Probe: p.probe})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log:\n%s", logBuf.String())
		}
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()

	p.set("10.0.1.1", true)
	testutil.WaitFor(t, "the alert in the Alertmanager", func() bool {
		as := am.lastAlerts(t)
		return len(as) == 1 && as[0].Labels["alertname"] == alerting.AlertServerDown && as[0].Labels["server"] == "10.0.1.1:80" &&
			as[0].Labels["team"] == "net" && as[0].Labels["service"] == "web" && as[0].Labels["director"] == "lvs-test" && as[0].EndsAt.After(as[0].StartsAt) &&
			as[0].GeneratorURL == "http://lvs-test.example:9601/server/tcp_192.0.2.10_80__10.0.1.1_80"
	})
	testutil.WaitFor(t, "the event at the webhook", func() bool {
		return strings.Contains(strings.Join(h1.events(t), ","), "server_down tcp_192.0.2.10_80__10.0.1.1_80")
	})
	// The first hook fails; a delivery waits for it in the outbox.
	h1.failing.Store(true)
	p.set("10.0.1.2", true)
	testutil.WaitFor(t, "a delivery queued for the failing hook", func() bool { return a.alerts.hookDispatchers()["one"].Stats().Failed > 0 })
	next := channelsConfig(t, dir, section("two", h2Srv.URL))
	if err := a.Apply(next); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "queued deliveries of a removed channel were dropped") || !strings.Contains(logBuf.String(), "channel=webhook:one") {
		t.Errorf("the dropped delivery is not reported:\n%s", logBuf.String())
	}
	dropped, _ := os.ReadDir(filepath.Join(dir, "alerting", "outbox", "dropped"))
	if len(dropped) != 1 {
		t.Errorf("%d files in outbox/dropped, want 1", len(dropped))
	}
	if _, ok := a.alerts.hookDispatchers()["one"]; ok {
		t.Error("the removed hook still has a dispatcher")
	}
	p.set("10.0.1.1", false)
	p.set("10.0.1.2", false)
	testutil.WaitFor(t, "the new hook gets the recoveries", func() bool {
		ev := strings.Join(h2.events(t), ",")
		return strings.Contains(ev, "server_up tcp_192.0.2.10_80__10.0.1.1_80") && strings.Contains(ev, "server_up tcp_192.0.2.10_80__10.0.1.2_80")
	})
	if strings.Contains(strings.Join(h2.events(t), ","), "server_down") {
		t.Errorf("the new hook got history: %v", h2.events(t))
	}
	testutil.WaitFor(t, "the alerts resolved", func() bool {
		st := a.alerts.alertmanager().Stats()
		as := am.lastAlerts(t)
		for _, x := range as {
			// Resolved: endsAt is when it ended, not four resends ahead.
			if x.EndsAt.After(st.LastSent) {
				return false
			}
		}
		// Both servers' alerts, and the service's while both were down.
		return len(as) >= 2 && st.Active == 0 && st.Resolved == len(as)
	})
	resp, err := http.Get("http://" + a.addrs()[0].String() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`lvsmon_alertmanager_sends_total{result="success"}`, "lvsmon_alertmanager_alerts_active 0",
		`lvsmon_webhook_deliveries_sent_total{hook="two"} `} {
		if !strings.Contains(string(metrics), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(string(metrics), `hook="one"`) {
		t.Error("/metrics still shows the removed hook")
	}
	if strings.Contains(h1.all(), "10.0.1.2") {
		t.Error("the removed hook got a delivery")
	}
}

// Mail is optional: a section with only a webhook starts without SMTP
// settings, and the status API has no mail section.
func TestChannelsWithoutMail(t *testing.T) {
	cfg := channelsConfig(t, t.TempDir(), "  webhooks: [{name: x, url: 'http://127.0.0.1:1/'}]\n")
	a, _, _ := newTestApp(t, cfg)
	if a.alerts == nil || a.alerts.mail != nil || len(a.alerts.hookDispatchers()) != 1 || a.alerts.alertmanager() != nil {
		t.Fatalf("alerts %+v", a.alerts)
	}
}
