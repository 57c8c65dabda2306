//go:build lab

package main

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// TestBrowserTroubleWithinAStep: an operator keeps the overview open; a
// real server's health page starts answering 503. The trouble list names
// the server and the check's reason, and the service line goes from 3/3
// to 2/3, in place, at the first live update that was asked for after
// the checker's down event (plus the status cache's second), without a
// reload. The measure is the order of events, not a duration.
func TestBrowserTroubleWithinAStep(t *testing.T) {
	t.Parallel()
	chrome := chromium(t)
	var broken atomic.Bool
	var ports []int
	for range 3 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		first := len(ports) == 0
		ports = append(ports, port)
		srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if first && broken.Load() {
				http.Error(w, "maintenance", http.StatusServiceUnavailable)
				return
			}
			fmt.Fprintln(w, "ok")
		})}
		go srv.Serve(ln)
		t.Cleanup(func() { srv.Close() })
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "lvsmon.yaml")
	yaml := fmt.Sprintf(`director: trouble-test
data_dir: %s
step: 1s
ipvs: {backend: fake}
virtual_services:
  - name: web
    address: 198.51.100.10
    port: 80
    check: {type: http, path: /health, interval: 300ms, timeout: 1s, rise: 1, fall: 1}
    real_servers:
      - {address: 127.0.0.1, port: %d, forward: nat}
      - {address: 127.0.0.1, port: %d, forward: nat}
      - {address: 127.0.0.1, port: %d, forward: nat}
`, filepath.Join(dir, "data"), ports[0], ports[1], ports[2])
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	d := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	base := d.url(t)
	target := fmt.Sprintf("127.0.0.1:%d", ports[0])

	ctx := browser(t, chrome, 90*time.Second)
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v\nlog:\n%s", what, err, d.logText())
		}
	}
	fail("overview", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#services`))))
	_, err := chromedp.Run(ctx, chromedp.Poll[bool](`document.querySelector("#services tbody tr td:nth-child(3)").textContent == "3/3"`, chromedp.WithPollingTimeout(30*time.Second)))
	fail("3/3 up on the page", err)
	// From now on the page records, at each live update, when the page
	// shown was asked for, and stops at the first one showing the trouble.
	const watch = `(() => {
		window.asked = [];
		window.found = 0;
		new MutationObserver(() => {
			const a = Number(document.body.getAttribute("data-live-asked") || 0);
			if (window.found || !a || window.asked[window.asked.length - 1] === a) return;
			window.asked.push(a);
			const tr = document.getElementById("trouble");
			const line = document.querySelector("#services tbody tr td:nth-child(3)");
			if (tr && tr.textContent.includes(%q) && tr.textContent.includes("status 503") && line && line.textContent == "2/3") window.found = a;
		}).observe(document.body, {subtree: true, childList: true, attributes: true, attributeFilter: ["data-live-asked"]});
		return true;
	})()`
	_, err = chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(watch, target)))
	fail("watch", err)
	broken.Store(true)

	// The checker's down event, from the event API.
	var downAt time.Time
	testutil.WaitFor(t, "the server's down event", func() bool {
		resp, err := http.Get(base + "/api/v1/events?limit=50")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var evs struct {
			Events []struct {
				Time   time.Time `json:"time"`
				Kind   string    `json:"kind"`
				Reason string    `json:"reason"`
				Server string    `json:"server"`
			} `json:"events"`
		}
		if json.NewDecoder(resp.Body).Decode(&evs) != nil {
			return false
		}
		for _, e := range evs.Events {
			if e.Kind == "server_down" && strings.Contains(e.Reason, "503") {
				downAt = e.Time
				return true
			}
		}
		return false
	})
	found, err := chromedp.Run(ctx, chromedp.Poll[float64](`window.found || null`, chromedp.WithPollingTimeout(30*time.Second)))
	fail("the trouble on the page without a reload", err)
	asked, err := chromedp.Run(ctx, chromedp.Evaluate[[]float64](`window.asked`))
	fail("updates", err)
	// Updates asked for after the down event and the status cache's
	// second (1 s): the first of them must be the one that showed it.
	fresh := downAt.Add(time.Second).UnixMilli()
	var late int
	var rel []string // when each update was asked for, from the down event
	for _, a := range asked {
		if int64(a) >= fresh {
			late++
		}
		rel = append(rel, fmt.Sprintf("%+dms", int64(a)-downAt.UnixMilli()))
	}
	if late > 1 {
		t.Errorf("the trouble showed in live update %d asked for more than 1 s (the status cache) after the down event; updates asked at %v from it", late, rel)
	}
	text, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#trouble`)))
	fail("trouble text", err)
	title, err := chromedp.Run(ctx, chromedp.Title())
	fail("title", err)
	if !strings.Contains(text, target) || !strings.Contains(text, "http: status 503") || !strings.HasPrefix(title, "(") {
		t.Errorf("trouble %q, title %q: want the server, the check's reason and a count in the title", text, title)
	}
	t.Logf("updates asked at %v from the down event; the trouble showed in the one asked at %+dms", rel, int64(found)-downAt.UnixMilli())
	d.stop(t)
}
