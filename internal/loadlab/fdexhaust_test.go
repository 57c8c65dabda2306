//go:build lab

package loadlab

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// TestChecksOutOfDescriptors runs lvsmon out of file descriptors through
// its own checks: 300 real servers of one service hang (each check holds
// its connection for the 20 s timeout), more than lvsmon's limit of 256
// open files. The checks of a second service, whose 40 servers are
// healthy, then fail to open their sockets (EMFILE). Those failures are
// the director's, not the servers': not one of the healthy servers may go
// down or change weight, the failures count as inconclusive
// (fd_exhausted), and the status API names the trouble.
func TestChecksOutOfDescriptors(t *testing.T) {
	if testing.Short() {
		t.Skip("lab test: not in -short")
	}
	const healthy, hanging, nofile = 40, 300, 256
	ctx := t.Context()
	raiseOwnNoFile(t, 4000)
	var specs []string
	for i := 1; i <= healthy; i++ {
		specs = append(specs, fmt.Sprintf("http:127.79.1.%d", i))
	}
	for i := 1; i <= hanging; i++ {
		specs = append(specs, fmt.Sprintf("http:127.79.%d.%d", 2+i/250, 1+i%250))
	}
	srv, err := StartServers(ctx, []string{os.Args[0]}, []string{serversEnv + "=" + strings.Join(specs, " ")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)

	var cfg strings.Builder
	fmt.Fprintf(&cfg, "director: fds\nstep: 5s\nipvs: {backend: fake}\nvirtual_services:\n")
	fmt.Fprintf(&cfg, "  - name: ok\n    address: 10.79.0.1\n    port: 80\n    check: {type: http, path: /, interval: 500ms, timeout: 1s, rise: 1, fall: 1}\n    real_servers:\n")
	for i, a := range srv.Addrs {
		if i == healthy {
			fmt.Fprintf(&cfg, "  - name: slow\n    address: 10.79.0.2\n    port: 80\n    managed: false\n    check: {type: http, path: /, interval: 1s, timeout: 20s, rise: 1, fall: 1}\n    real_servers:\n")
		}
		host, port, _ := net.SplitHostPort(a)
		fmt.Fprintf(&cfg, "      - {address: %s, port: %s, weight: 1, forward: nat}\n", host, port)
	}
	d, dataDir := startLab(t, cfg.String(), nofile, nil)
	m := &monitor{t: t, url: d.URL, c: &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}}
	okWeights := func(mt Metrics) float64 { return mt.Sum("lvsmon_real_server_weight", map[string]string{"name": "ok"}) }
	eventually(t, 60*time.Second, func() bool {
		mt, err := m.metrics()
		return err == nil && mt.Sum("lvsmon_real_server_up", nil) == healthy+hanging && okWeights(mt) == healthy
	}, func() string { return "not every real server came up:\n" + tail(d.LogText(), 40) })

	start := time.Now()
	for i := healthy; i < healthy+hanging; i++ {
		if _, err := srv.Hang(i); err != nil {
			t.Fatal(err)
		}
	}
	// lvsmon's own port may not answer while it has no descriptor to
	// accept with, so its log tells: the inconclusive line comes at most
	// once every 10 s per reason; two of them mean the trouble lasted.
	var problems []string
	fdLines := func() int {
		n := 0
		for _, l := range d.Lines() {
			if l.Str("reason") == "fd_exhausted" && strings.HasPrefix(l.Str("msg"), "health check inconclusive") {
				n++
			}
		}
		return n
	}
	eventually(t, 120*time.Second, func() bool { return fdLines() >= 2 },
		func() string { return fmt.Sprintf("%d fd_exhausted log lines after %s", fdLines(), time.Since(start)) })
	fds := fdsOf(d.PID)
	for i := healthy; i < healthy+hanging; i++ {
		if _, err := srv.Up(i); err != nil {
			t.Fatal(err)
		}
	}
	var mt Metrics
	eventually(t, 60*time.Second, func() bool {
		if mt, err = m.metrics(); err != nil {
			return false
		}
		p, perr := m.problems()
		problems = p
		return perr == nil
	}, func() string { return fmt.Sprintf("no metrics after the servers answered again: %v", err) })
	if w := okWeights(mt); w != healthy {
		t.Errorf("the healthy service's weights add up to %.0f, want %d", w, healthy)
	}
	for _, e := range readEvents(t, dataDir) {
		if e.Kind == "server_down" && strings.HasPrefix(e.Server, "tcp_10.79.0.1_80__") {
			t.Errorf("a healthy server went down on the director's own trouble: %s", e.Message)
		}
	}
	found := false
	for _, p := range problems {
		found = found || strings.Contains(p, "local_trouble") && strings.Contains(p, "fd_exhausted")
	}
	if !found {
		t.Errorf("the status API never named the trouble; problems seen: %q", problems)
	}
	var emfile int
	for _, l := range d.Lines() {
		if strings.Contains(l.Str("err"), "too many open files") {
			emfile++
		}
	}
	incon := mt.Sum("lvsmon_checks_inconclusive_total", map[string]string{"reason": "fd_exhausted"})
	if incon == 0 {
		t.Error("no check counted inconclusive (fd_exhausted)")
	}
	t.Logf("lvsmon at %d open files (limit %d) while %d checks hung: %.0f checks inconclusive (fd_exhausted), %d log lines with too many open files (rate-limited), problems %q",
		fds, nofile, hanging, incon, emfile, problems)
}
