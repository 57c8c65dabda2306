//go:build lab

// Lab tier (README, Tests): the lvsmon binary's mail over a whole demo
// timeline and across a crash during a relay outage; each waits out real
// time (the timeline at 20x, a retry's backoff), 15 to 30 s.

package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	smtpd "github.com/emersion/go-smtp"
)

// TestDemoMail: the demo director pointed at an SMTP server with --smtp
// mails its timeline, grouped: the role at start, web2's outage, and the
// outage of every web server with the sorry server taking over, in one
// mail.
func TestDemoMail(t *testing.T) {
	t.Parallel()
	s, port := startSink(t, false)
	// At 20x the 10-minute timeline takes 30 s; the grouping window
	// follows (10s / 20, at least 1s).
	d := startDaemon(t, "demo", "--listen", "127.0.0.1:0", "--step", "1s", "--speed", "20",
		"--smtp", "127.0.0.1:"+strconv.Itoa(port), "--smtp-tls", "none")
	base := d.url(t)
	subjects := func() []string {
		s.mu.Lock()
		defer s.mu.Unlock()
		var out []string
		for _, m := range s.got {
			for _, l := range strings.Split(string(m), "\r\n") {
				if strings.HasPrefix(l, "Subject: ") {
					out = append(out, strings.TrimPrefix(l, "Subject: "))
				}
			}
		}
		return out
	}
	want := func(sub string) {
		t.Helper()
		eventually(t, 45*time.Second, func() bool {
			return slices.ContainsFunc(subjects(), func(s string) bool { return strings.Contains(s, sub) })
		},
			func() string {
				return fmt.Sprintf("no mail with %q in its subject; subjects:\n%s\nlog:\n%s", sub, strings.Join(subjects(), "\n"), d.logText())
			})
	}
	want("[lvsmon demo-director] ")
	want("down on web")
	want("3 real servers down on web")
	s.mu.Lock()
	var all string
	for _, m := range s.got {
		all += string(m)
	}
	s.mu.Unlock()
	for _, w := range []string{"sorry", "State of the service now", "Message-ID: <"} {
		if !strings.Contains(all, w) {
			t.Errorf("the demo's mails never say %q", w)
		}
	}
	t.Logf("%d mails for one demo timeline: %q", len(subjects()), subjects())
	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(page), " · mail: ") {
		t.Errorf("the status page says nothing about mail")
	}
	d.stop(t)
}

// TestMailSurvivesCrashDuringOutage: the mail relay is down when a real
// server fails; lvsmon queues the mail, fails to send it, and is killed
// (SIGKILL, no chance to clean up). Restarted with the relay back, it
// sends that very mail (same Message-ID) exactly once, and the checker's
// renewed "down" after the restart is not mailed again.
func TestMailSurvivesCrashDuringOutage(t *testing.T) {
	t.Parallel()
	// A port for the relay that nobody listens on yet, and a real
	// server that refuses connections.
	relay := freeAddr(t)
	_, dead, _ := net.SplitHostPort(freeAddr(t))

	dir := t.TempDir()
	cfg := filepath.Join(dir, "lvsmon.yaml")
	_, relayPort, _ := net.SplitHostPort(relay)
	os.WriteFile(cfg, []byte(`director: crashy
data_dir: `+filepath.Join(dir, "data")+`
step: 1s
ipvs: {backend: fake}
alerting:
  smtp: {host: 127.0.0.1, port: `+relayPort+`, tls: none, timeout: 2s}
  from: lvsmon@crashy.test
  to: [ops@crashy.test]
  group_window: 1s
virtual_services:
  - name: web
    address: 198.51.100.80
    port: 80
    check: {type: tcp, interval: 1s, timeout: 500ms}
    real_servers:
      - {address: 127.0.0.1, port: `+dead+`, forward: nat}
`), 0o644)

	d := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	d.url(t)
	d.waitLog(t, "down on web")
	d.waitLog(t, "sending failed, will retry")
	queued := regexp.MustCompile(`subject="[^"]*down on web[^"]*" message_id=(\S+)`).FindStringSubmatch(d.logText())
	if queued == nil {
		t.Fatalf("no queued down mail in the log:\n%s", d.logText())
	}
	d.cmd.Process.Kill()
	<-d.done

	// The relay comes back; lvsmon restarts.
	s := &sink{}
	srv := smtpd.NewServer(s)
	srv.Domain = "localhost"
	rl, err := net.Listen("tcp", relay)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(rl)
	t.Cleanup(func() { srv.Close() })
	restarted := time.Now()
	d2 := startDaemon(t, "run", "--config", cfg, "--listen", "127.0.0.1:0")
	base2 := d2.url(t)
	d2.waitLog(t, "mails from before the restart are in the outbox")
	downMails := func() (n int, ids []string) {
		s.mu.Lock()
		defer s.mu.Unlock()
		for _, m := range s.got {
			msg := string(m)
			if strings.Contains(msg, "down on web") {
				n++
				for _, l := range strings.Split(msg, "\r\n") {
					if strings.HasPrefix(l, "Message-ID: ") {
						ids = append(ids, strings.Trim(strings.TrimPrefix(l, "Message-ID: "), "<>"))
					}
				}
			}
		}
		return n, ids
	}
	// The first retry after the crash is due at most 20 s after the
	// failed attempt (10 s backoff, jitter), as stored in the outbox.
	eventually(t, 40*time.Second, func() bool { n, _ := downMails(); return n > 0 },
		func() string { return "the queued mail never arrived; log:\n" + d2.logText() })
	t.Logf("the mail queued before the crash arrived %v after the restart", time.Since(restarted).Round(time.Millisecond))
	// The restarted checker re-announces the server down: the pipeline
	// must see it as a duplicate. Then, with nothing in a grouping window,
	// held back or queued, every mail lvsmon would send is sent: still
	// one about the down.
	var st struct {
		Alerting struct {
			Pipeline struct {
				Suppressed map[string]int `json:"suppressed"`
				Held       int            `json:"held"`
				Backlog    int            `json:"backlog"`
			} `json:"pipeline"`
			Outbox struct {
				Queued int `json:"queued"`
			} `json:"outbox"`
		} `json:"alerting"`
	}
	eventually(t, 20*time.Second, func() bool {
		getJSON(t, base2+"/api/v1/status", &st)
		return st.Alerting.Pipeline.Suppressed["duplicate"] > 0
	}, func() string {
		return fmt.Sprintf("the re-announced down was never seen as a duplicate: %+v; log:\n%s", st, d2.logText())
	})
	eventually(t, 20*time.Second, func() bool {
		getJSON(t, base2+"/api/v1/status", &st)
		p := st.Alerting.Pipeline
		return p.Held == 0 && p.Backlog == 0 && st.Alerting.Outbox.Queued == 0
	}, func() string {
		return fmt.Sprintf("mail still held or queued: %+v; log:\n%s", st, d2.logText())
	})
	n, ids := downMails()
	if n != 1 || len(ids) != 1 || ids[0] != queued[1] {
		t.Fatalf("%d down mails with ids %v, want exactly the one queued before the crash (%s); log:\n%s", n, ids, queued[1], d2.logText())
	}
	d2.stop(t)
}
