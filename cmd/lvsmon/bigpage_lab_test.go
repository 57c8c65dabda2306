//go:build lab

package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserBigOverview loads the status page of a director of 1,000
// services of 50 real servers in headless Chromium (every service
// configured, none in the fake kernel yet: the worst trouble list) and
// reports the time to the load event and the page's size; it fails on a
// page over 5,000 elements or wider than a phone when asked to be one.
// The time is logged, not asserted: this machine is shared.
func TestBrowserBigOverview(t *testing.T) {
	t.Parallel()
	chrome := chromium(t)
	var b strings.Builder
	b.WriteString("director: big\nstep: 10s\nipvs: {backend: fake}\nvirtual_services:\n")
	for i := range 1000 {
		fmt.Fprintf(&b, "  - {name: s%d, address: 10.%d.%d.1, port: 80, managed: false, real_servers: [", i, i/256, i%256)
		for j := range 50 {
			if j > 0 {
				b.WriteString(", ")
			}
			fmt.Fprintf(&b, "{address: 10.%d.%d.%d}", 100+i/256, i%256, j+2)
		}
		b.WriteString("]}\n")
	}
	d := startDaemon(t, "run", "--config.file", writeFile(t, "big.yaml", b.String()), "--web.listen-address", "127.0.0.1:0", "--data-dir", t.TempDir())
	base := d.url(t)

	ctx := browser(t, chrome, 120*time.Second)
	if err := chromedp.Do(ctx, chromedp.Navigate(base+"/"), chromedp.WaitVisible(chromedp.CSS(`#services`))); err != nil {
		t.Fatalf("loading the page: %v\n%s", err, d.logText())
	}
	const measure = `(() => { const n = performance.getEntriesByType("navigation")[0];
		return [Math.round(n.loadEventEnd), n.transferSize, n.decodedBodySize, document.getElementsByTagName("*").length].join(" "); })()`
	res, err := chromedp.Run(ctx, chromedp.Evaluate[string](measure))
	if err != nil {
		t.Fatal(err)
	}
	var loadMS, transfer, body, elements int
	fmt.Sscan(res, &loadMS, &transfer, &body, &elements)
	t.Logf("1000×50 overview in Chromium: load event at %d ms, %d bytes transferred (%d decoded), %d elements", loadMS, transfer, body, elements)
	if elements > 5000 || body > 300_000 {
		t.Errorf("the overview has %d elements and %d bytes; want under 5,000 and 300 KB", elements, body)
	}
}
