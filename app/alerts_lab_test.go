//go:build lab

// Lab tier (README, Tests): the alerting channels against Debian's
// prometheus-alertmanager, and a webhook's durability across a restart
// of the daemon. Each waits real time (Alertmanager's group_wait, a
// retry's backoff), 5 to 20 s.

package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

const alertmanagerBin = "/usr/bin/prometheus-alertmanager"

// startAlertmanager runs Debian's Alertmanager on a free loopback port,
// alone (no cluster gossip), grouping by alertname and service, and
// returns its base URL.
func startAlertmanager(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat(alertmanagerBin); err != nil {
		t.Fatalf("prometheus-alertmanager is not installed (scripts/deps.sh test installs it): %v", err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(`route:
  receiver: nobody
  group_by: [alertname, service]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: nobody
`), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var out testutil.SyncBuffer
	cmd := exec.Command(alertmanagerBin, "--config.file="+cfg, "--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr, "--cluster.listen-address=")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("alertmanager's output:\n%s", out.String())
		}
	})
	base := "http://" + addr
	testutil.WaitFor(t, "the Alertmanager ready", func() bool {
		resp, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return base
}

// getJSON decodes a GET's answer into v.
func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s: %s", url, resp.Status, b)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
}

// amAlert is an alert as the Alertmanager's API v2 lists it.
type amAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
	StartsAt     time.Time `json:"startsAt"`
	EndsAt       time.Time `json:"endsAt"`
	GeneratorURL string    `json:"generatorURL"`
}

// runApp starts a daemon on cfg with probe p and stops it at the test's
// end; stop stops it earlier.
func runApp(t *testing.T, cfg *config.Config, p *switchProbe, log *testutil.SyncBuffer) (a *App, stop func()) {
	t.Helper()
	a, err := New(Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: slog.New(slog.NewTextHandler(log, nil)), Version: "lab", Probe: p.probe})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		a.Close()
	}
	t.Cleanup(stop)
	return a, stop
}

// A real server that goes down is an alert in a real Alertmanager,
// grouped by alertname and service as its route says, with lvsmon's
// labels; when the server is back the alert resolves there. The
// webhook gets both events.
func TestAlertmanagerLab(t *testing.T) {
	am := startAlertmanager(t)
	hook := &receiver{}
	hs := httptest.NewServer(hook)
	defer hs.Close()
	cfg := channelsConfig(t, t.TempDir(), fmt.Sprintf(`  alertmanager: {urls: [%s], resend_interval: 10s}
  webhooks: [{name: lab, url: %q, kinds: [server_down, server_up]}]
`, am, hs.URL))
	p := &switchProbe{down: map[string]bool{}}
	var log testutil.SyncBuffer
	runApp(t, cfg, p, &log)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lvsmon's log:\n%s", log.String())
		}
	})
	p.set("10.0.1.1", true)
	var got []amAlert
	start := time.Now()
	eventually(t, 20*time.Second, func() bool {
		getJSON(t, am+"/api/v2/alerts?active=true", &got)
		return len(got) == 1 && got[0].Status.State == "active"
	}, func() string { return fmt.Sprintf("the Alertmanager's alerts: %+v", got) })
	t.Logf("the alert was active in the Alertmanager %v after the server failed", time.Since(start).Round(time.Millisecond))
	want := map[string]string{"alertname": "LVSRealServerDown", "director": "lvs-test", "service": "web",
		"service_id": "tcp_192.0.2.10_80", "server": "10.0.1.1:80", "severity": "warning"}
	for k, v := range want {
		if got[0].Labels[k] != v {
			t.Errorf("label %s = %q, want %q (all: %v)", k, got[0].Labels[k], v, got[0].Labels)
		}
	}
	var groups []struct {
		Labels map[string]string `json:"labels"`
		Alerts []amAlert         `json:"alerts"`
	}
	getJSON(t, am+"/api/v2/alerts/groups", &groups)
	if len(groups) != 1 || !maps(groups[0].Labels, map[string]string{"alertname": "LVSRealServerDown", "service": "web"}) || len(groups[0].Alerts) != 1 {
		t.Errorf("groups: %+v", groups)
	}
	p.set("10.0.1.1", false)
	start = time.Now()
	eventually(t, 20*time.Second, func() bool {
		getJSON(t, am+"/api/v2/alerts", &got)
		return len(got) == 0
	}, func() string { return fmt.Sprintf("the Alertmanager still lists %+v", got) })
	t.Logf("the alert resolved in the Alertmanager %v after the server came back", time.Since(start).Round(time.Millisecond))
	testutil.WaitFor(t, "both events at the webhook", func() bool {
		ev := strings.Join(hook.events(t), ",")
		return strings.Contains(ev, "server_down tcp_192.0.2.10_80__10.0.1.1_80") && strings.Contains(ev, "server_up tcp_192.0.2.10_80__10.0.1.1_80")
	})
}

func maps(got, want map[string]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if got[k] != v {
			return false
		}
	}
	return true
}

// eventually polls cond every 100 ms for up to d, failing with what's
// message.
func eventually(t *testing.T, d time.Duration, cond func() bool, what func() string) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %s", d, what())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A webhook whose receiver fails keeps the delivery in the outbox across
// a restart of the daemon; once the receiver is back, the restarted
// daemon delivers it (the event of before the restart, by its sequence
// number), once.
func TestWebhookDurableAcrossRestartLab(t *testing.T) {
	hook := &receiver{}
	hook.failing.Store(true)
	hs := httptest.NewServer(hook)
	defer hs.Close()
	dir := t.TempDir()
	section := fmt.Sprintf("  webhooks: [{name: lab, url: %q, kinds: [server_down]}]\n", hs.URL)
	p := &switchProbe{down: map[string]bool{"10.0.1.1": true}}
	var log testutil.SyncBuffer
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("lvsmon's log:\n%s", log.String())
		}
	})
	a, stop := runApp(t, channelsConfig(t, dir, section), p, &log)
	testutil.WaitFor(t, "a failed delivery", func() bool {
		d := a.alerts.hookDispatchers()["lab"]
		return d != nil && d.Stats().Failed > 0
	})
	var seq uint64
	for _, e := range a.ev.Query(events.Filter{}) {
		if e.Kind == events.ServerDown {
			seq = e.Seq
		}
	}
	stop()
	if seq == 0 {
		t.Fatal("no server_down event before the restart")
	}
	hook.failing.Store(false)
	start := time.Now()
	runApp(t, channelsConfig(t, dir, section), p, &log)
	var seqs []uint64
	eventually(t, 30*time.Second, func() bool {
		seqs = seqs[:0]
		hook.mu.Lock()
		for _, b := range hook.bodies {
			var batch events.Batch
			json.Unmarshal([]byte(b), &batch)
			for _, e := range batch.Events {
				seqs = append(seqs, e.Seq)
			}
		}
		hook.mu.Unlock()
		return slices.Contains(seqs, seq)
	}, func() string {
		return "the receiver got the events " + fmt.Sprint(seqs) + ", not " + strconv.FormatUint(seq, 10)
	})
	t.Logf("delivered %v after the restart (the persisted backoff)", time.Since(start).Round(time.Millisecond))
	n := 0
	for _, s := range seqs {
		if s == seq {
			n++
		}
	}
	if n != 1 {
		t.Errorf("event %d delivered %d times", seq, n)
	}
}
