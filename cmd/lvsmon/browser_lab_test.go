//go:build lab

// Lab tier (README, Tests): headless Chromium (Debian's chromium) opens the
// demo's pages.

package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// TestBrowserDashboard opens the demo director's pages in headless
// Chromium (Debian's, installed by make test) and checks what an operator
// sees: the HA role table, every graph image decoded at its stated size,
// working links from the status page to a service's and a real server's
// graph pages, and no failed request or script error on the way.
func TestBrowserDashboard(t *testing.T) {
	t.Parallel()
	chrome := chromium(t)
	d := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "1s", "--speed", "60")
	base := d.url(t)
	// Graphs need a couple of samples in the RRD files.
	d.waitLog(t, "demo timeline: real server goes down")

	ctx := browser(t, chrome, 200*time.Second)

	var (
		mu       sync.Mutex
		problems []string
	)
	// Listen starts the browser.
	if err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *runtime.EventExceptionThrown:
			problems = append(problems, "script error: "+ev.ExceptionDetails.Text)
		case *network.EventLoadingFailed:
			problems = append(problems, "request failed: "+ev.ErrorText)
		case *cdplog.EventEntryAdded:
			// CSP violations and other browser errors (the console's
			// red lines) come through the Log domain.
			if ev.Entry.Level == cdplog.EntryLevelError {
				problems = append(problems, "browser "+string(ev.Entry.Source)+" error: "+ev.Entry.Text)
			}
		case *network.EventResponseReceived:
			if ev.Response.Status >= 400 {
				problems = append(problems, "HTTP "+ev.Response.StatusText+" for "+ev.Response.URL)
			}
		}
	}); err != nil {
		t.Fatalf("starting chromium: %v", err)
	}

	// images lists every <img> that did not decode at its width and
	// height attributes.
	const images = `Array.from(document.images).filter(i => !(i.complete && i.naturalWidth == i.getAttribute("width") && i.naturalHeight == i.getAttribute("height"))).map(i => i.src + " " + i.naturalWidth + "x" + i.naturalHeight)`
	const count = `document.images.length`
	loaded := chromedp.Poll[bool](`Array.from(document.images).every(i => i.complete)`, chromedp.WithPollingTimeout(30*time.Second))
	fail := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("browser, %s: %v\nlog:\n%s", what, err, d.logText())
		}
	}
	page := func(what string) (bad []string, n int) {
		t.Helper()
		_, err := chromedp.Run(ctx, loaded)
		fail(what+": images loading", err)
		bad, err = chromedp.Run(ctx, chromedp.Evaluate[[]string](images))
		fail(what+": images", err)
		n, err = chromedp.Run(ctx, chromedp.Evaluate[int](count))
		fail(what+": count", err)
		return bad, n
	}

	_, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{})
	fail("log domain", err)
	fail("status page", chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#role`))))
	bad, nImages := page("status page")
	// Live update: the page changes in place at the next step, and what
	// the operator looks at does not move (the browser may scroll to keep
	// it in place when something above it grows; it never jumps back to
	// the top as a reload does).
	const live = `(async () => {
		document.body.style.minHeight = "3000px"; // room to scroll, whatever the page's length
		window.scrollTo(0, 400);
		const h = document.getElementById("services-h");
		const top = Math.round(h.getBoundingClientRect().top);
		for (let i = 0; i < 100; i++) {
			await new Promise(r => setTimeout(r, 100));
			if (document.getElementById("live-status").textContent.startsWith("live, updated")) break;
		}
		return [top, Math.round(h.getBoundingClientRect().top), window.scrollY > 0, h.isConnected, document.getElementById("live-status").textContent].join("|");
	})()`
	liveRes, err := chromedp.Run(ctx, chromedp.Evaluate[string](live, chromedp.EvalAwaitPromise))
	fail("live update", err)
	if p := strings.Split(liveRes, "|"); len(p) != 5 || p[0] != p[1] || p[2] != "true" || p[3] != "true" || !strings.HasPrefix(p[4], "live, updated") {
		t.Errorf("live update: heading top before|after|scrolled|same element|status = %s; want it unmoved after an update in place", liveRes)
	}
	title, err := chromedp.Run(ctx, chromedp.Title())
	fail("title", err)
	role, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`#role h2`)))
	fail("role", err)
	svc, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#services a[href^="/service/"]`), "href"))
	fail("service link", err)
	serviceHref := svc.Value
	// Follow the service link as an operator would; its page lists the
	// real servers.
	fail("service page", chromedp.Do(ctx, chromedp.Click(chromedp.CSS(`#services a[href^="/service/"]`)), chromedp.WaitVisible(chromedp.CSS(`#servers`))))
	serviceBad, serviceImages := page("service page")
	serviceHeading, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(`h1`)))
	fail("service heading", err)
	srv, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(`#servers a[href^="/server/"]`), "href"))
	fail("server link", err)
	serverHref := srv.Value
	fail("server page", chromedp.Do(ctx, chromedp.Navigate(base+serverHref), chromedp.WaitVisible(chromedp.CSS(`h1`))))
	serverBad, serverImages := page("server page")
	// A script builds a real server's graph URL from the status API's
	// templates, as a dashboard would, and the image decodes at its size.
	const fromTemplate = `(async () => {
		const st = await (await fetch("/api/v1/status?limit=1")).json();
		const rs = st.virtual_services[0].real_servers[0];
		const u = st.graph_templates.server.replace("{id}", rs.id).replace("{graph}", st.graph_names.server[0]).replace("{range}", st.graph_ranges[0]);
		const img = new Image();
		img.src = u;
		await img.decode();
		return u + " " + img.naturalWidth + "x" + img.naturalHeight;
	})()`
	templated, err := chromedp.Run(ctx, chromedp.Evaluate[string](fromTemplate, chromedp.EvalAwaitPromise))
	fail("graph URL from the status API's template", err)

	if !strings.Contains(title, "demo-director") {
		t.Errorf("title %q", title)
	}
	if !strings.Contains(role, "HA role:") || !(strings.Contains(role, "MASTER") || strings.Contains(role, "BACKUP")) {
		t.Errorf("role heading %q", role)
	}
	if nImages < 2 || len(bad) > 0 {
		t.Errorf("status page: %d images, not decoded at their size: %q", nImages, bad)
	}
	if serviceImages < 2 || len(serviceBad) > 0 || serviceHeading == "" {
		t.Errorf("service page %s (%q): %d images, not decoded at their size: %q", serviceHref, serviceHeading, serviceImages, serviceBad)
	}
	if serverImages < 2 || len(serverBad) > 0 {
		t.Errorf("server page %s: %d images, not decoded at their size: %q", serverHref, serverImages, serverBad)
	}
	if !strings.HasPrefix(templated, "/graphs/server/tcp_198.51.100.10_80__") || !strings.HasSuffix(templated, ".png?range=hour 800x300") {
		t.Errorf("graph from the status API's template: %q", templated)
	}
	// The README's screenshot is this page, at a desktop's size, while
	// the demo's timeline has a real server down (go test -tags lab -run
	// TestBrowserDashboard -update rewrites it).
	if *update {
		// A demo slow enough for its checks to see the timeline's
		// outages (at --speed 60 they pass between two checks).
		slow := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "1s", "--speed", "10")
		slowURL := slow.url(t)
		slow.waitLog(t, "demo timeline: real server goes down") // and the graphs have data
		sctx, cancel := context.WithTimeout(ctx, 100*time.Second)
		defer cancel()
		fail("screenshot page", chromedp.Do(sctx, chromedp.EmulateViewport(1440, 900), chromedp.Navigate(slowURL+"/")))
		_, err := chromedp.Run(sctx, chromedp.Poll[bool](`document.querySelectorAll("#trouble li.critical").length >= 1`, chromedp.WithPollingTimeout(90*time.Second)))
		fail("trouble on the page", err)
		fail("settle", chromedp.Do(sctx, chromedp.Sleep(1500*time.Millisecond)))
		png, err := chromedp.Run(sctx, chromedp.CaptureScreenshot())
		fail("screenshot", err)
		if err := os.WriteFile(filepath.Join("..", "..", "docs", "overview.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
		slow.stop(t)
	}
	// A phone: the status page fits 390 px without scrolling sideways.
	fail("phone", chromedp.Do(ctx, chromedp.EmulateViewport(390, 844), chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#services`))))
	width, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.documentElement.scrollWidth`))
	fail("phone width", err)
	if width > 390 {
		t.Errorf("on a 390 px screen the status page is %d px wide", width)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(problems) > 0 {
		t.Errorf("the browser saw problems:\n%s", strings.Join(problems, "\n"))
	}
	t.Logf("status page %d graphs, %s %d, %s %d; role heading %q", nImages, serviceHref, serviceImages, serverHref, serverImages, strings.Join(strings.Fields(role), " "))
	d.stop(t)
}
