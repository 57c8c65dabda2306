package ctl

import (
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/web"
)

// contains fails the test unless s has every part.
func contains(t *testing.T, what, s string, parts ...string) {
	t.Helper()
	for _, p := range parts {
		if !strings.Contains(s, p) {
			t.Errorf("%s lacks %q:\n%s", what, p, s)
		}
	}
}

// TestOverrideCommands: drain, disable and enable by address:port and id
// print what changed, and the daemon applies it (weight, comment, event).
func TestOverrideCommands(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	conn := []string{"--url", d.URL, "--token-file", d.TokenFile}
	out, _, err := run(t, t.Context(), append([]string{"drain", "[::1]:80", "--comment", "kernel 6.12"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "drain", out, "drained tcp_2001-db8--1_80__--1_80 (service web6 TCP [2001:db8::1]:80, [::1]:80)",
		"override: none -> drain", "kernel weight now 1")
	st := d.settled(t, func(st *web.Status) bool { return *findReal(st, "tcp_2001-db8--1_80__--1_80").Weight == 0 })
	o, ok := OverrideOf(findReal(st, "tcp_2001-db8--1_80__--1_80"))
	if !ok || o.Mode != "drain" || o.Comment != "kernel 6.12" || o.By != "127.0.0.1" {
		t.Errorf("override after drain: %+v", o)
	}
	// Flags may come first; disable over a drain says so.
	out, _, err = run(t, t.Context(), append(append([]string{"disable"}, conn...), "tcp_2001-db8--1_80__--1_80")...)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "disable", out, "disabled tcp_2001-db8--1_80__--1_80", "override: drain -> disable")
	out, _, err = run(t, t.Context(), append([]string{"enable", "tcp_2001-db8--1_80__--1_80"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "enable", out, "enabled tcp_2001-db8--1_80__--1_80", "override: disable -> none")
	d.settled(t, func(st *web.Status) bool {
		r := findReal(st, "tcp_2001-db8--1_80__--1_80")
		_, ovr := OverrideOf(r)
		return !ovr && r.Weight != nil && *r.Weight == 1
	})
	out, _, err = run(t, t.Context(), append([]string{"events", "--kind", "override"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "events", out, "override          web6: drain set by 127.0.0.1: kernel 6.12", "web6: disable set by 127.0.0.1", "web6: override cleared (enabled)")
	// Ambiguity is an error listing the choices; --service picks.
	_, _, err = run(t, t.Context(), append([]string{"drain", "10.0.1.1:80"}, conn...)...)
	var re *ResolveError
	if !errors.As(err, &re) {
		t.Fatalf("ambiguous drain: %v", err)
	}
	contains(t, "ambiguous drain", err.Error(), "--service web (tcp_10.0.0.1_80)", "--service marked (fwm_10_inet)")
	out, _, err = run(t, t.Context(), append([]string{"drain", "10.0.1.1:80", "--service", "marked"}, conn...)...)
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "drain --service", out, "drained fwm_10_inet__10.0.1.1_80 (service marked FWM 10 inet, 10.0.1.1:80)")
	for _, tc := range []struct {
		args []string
		err  string
	}{
		{[]string{"enable", "10.0.1.3:80", "--comment", "x"}, "--comment goes with drain and disable"},
		{[]string{"drain"}, "want 1 argument(s), got 0"},
		{[]string{"drain", "a", "b"}, "want 1 argument(s), got 2"},
		{[]string{"drain", "web1"}, "want its id (as the status shows it) or address:port"},
	} {
		_, _, err := run(t, t.Context(), append(tc.args, conn...)...)
		if err == nil || !errors.Is(err, ErrUsage) || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("%q: %v, want a usage error with %q", tc.args, err, tc.err)
		}
	}
}

// TestReload: an accepted reload; a config that does not validate is
// rejected with its errors, and the daemon keeps running the old one.
func TestReload(t *testing.T) {
	d := startDaemon(t, "")
	conn := []string{"--url", d.URL, "--token-file", d.TokenFile}
	out, _, err := run(t, t.Context(), append([]string{"reload"}, conn...)...)
	if err != nil || !strings.Contains(out, "reload accepted") {
		t.Fatalf("reload: %q, %v", out, err)
	}
	cfg, _ := os.ReadFile(d.CfgPath)
	bad := strings.Replace(string(cfg), "scheduler: wrr", "scheduler: wrr\n    colour: red", 1)
	bad = strings.Replace(bad, "step: 1s", "step: 0.1ms", 1)
	if err := os.WriteFile(d.CfgPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, err = run(t, t.Context(), append([]string{"reload"}, conn...)...)
	var rej *RejectedError
	if !errors.As(err, &rej) || out != "" {
		t.Fatalf("reload of a bad config: %q, %v", out, err)
	}
	contains(t, "rejected reload", err.Error(), "reload rejected: the config does not validate; the running one is kept",
		"lvsmon.yaml:2: step:", "lvsmon.yaml:10: virtual_services[0].colour: unknown key")
	// The daemon still answers, with the old config.
	if _, _, err := run(t, t.Context(), "status", "--url", d.URL); err != nil {
		t.Errorf("status after a rejected reload: %v", err)
	}
}

// TestEventsFollow: --follow prints the events there are, then a new
// one, and ends cleanly when its context does (SIGINT in the command).
func TestEventsFollow(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb testutil.SyncBuffer
	done := make(chan error, 1)
	go func() {
		done <- Main(ctx, []string{"events", "--follow", "--url", d.URL, "--kind", "override,daemon_start"},
			&Env{Stdout: &out, Stderr: &errb, Loc: time.UTC, Poll: 20 * time.Millisecond})
	}()
	testutil.WaitFor(t, "the start event printed", func() bool { return strings.Contains(out.String(), "daemon_start") })
	if _, err := d.client(t).SetOverride(t.Context(), "tcp_10.0.0.1_80__10.0.1.3_80", "drain", "follow me"); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "the new event printed", func() bool { return strings.Contains(out.String(), "web: drain set by 127.0.0.1: follow me") })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("events --follow ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("events --follow did not end with its context")
	}
	if n := strings.Count(out.String(), "follow me"); n != 1 || strings.Contains(out.String(), "server_down") || errb.String() != "" {
		t.Errorf("printed the new event %d times; output:\n%s\nstderr:\n%s", n, out.String(), errb.String())
	}
}

// TestEventsSince: --since takes a duration or a time; --json prints
// lines of the event log's JSON.
func TestEventsSince(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	out, _, err := run(t, t.Context(), "events", "--url", d.URL, "--since", "1h", "--json", "--kind", "server_down")
	if err != nil {
		t.Fatal(err)
	}
	contains(t, "events --json", out, `"kind":"server_down"`, `"server":"tcp_10.0.0.1_80__10.0.1.2_80"`)
	if strings.Count(out, "\n") != 1 {
		t.Errorf("want the one down event:\n%s", out)
	}
	out, _, err = run(t, t.Context(), "events", "--url", d.URL, "--since", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	if err != nil || out != "" {
		t.Errorf("events since an hour ahead: %q, %v", out, err)
	}
	for _, bad := range [][]string{{"--since", "yesterday"}, {"--kind", "explosion"}, {"--limit", "0"}} {
		_, _, err := run(t, t.Context(), append([]string{"events", "--url", d.URL}, bad...)...)
		if !errors.Is(err, ErrUsage) {
			t.Errorf("events %q: %v, want a usage error", bad, err)
		}
	}
}

func TestParseSince(t *testing.T) {
	now := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	cet := time.FixedZone("CET", 3600)
	for _, tc := range []struct {
		in   string
		want time.Time
		err  bool
	}{
		{"90m", now.Add(-90 * time.Minute), false},
		{"1h30m", now.Add(-90 * time.Minute), false},
		{"2d", now.AddDate(0, 0, -2), false},
		{"0s", now, false},
		{"2026-12-03T14:00:00Z", time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC), false},
		{"2026-12-03T14:00:00.5+02:00", time.Date(2026, 12, 3, 12, 0, 0, 5e8, time.UTC), false},
		{"2026-12-03 14:00", time.Date(2026, 12, 3, 14, 0, 0, 0, cet), false},
		{"2026-12-03 14:00:30", time.Date(2026, 12, 3, 14, 0, 30, 0, cet), false},
		{"2026-12-03T14:00", time.Date(2026, 12, 3, 14, 0, 0, 0, cet), false},
		{"2026-12-03", time.Date(2026, 12, 3, 0, 0, 0, 0, cet), false},
		{"-5m", time.Time{}, true},
		{"yesterday", time.Time{}, true},
		{"", time.Time{}, true},
		{"99999999d", time.Time{}, true},
	} {
		got, err := ParseSince(tc.in, now, cet)
		if tc.err != (err != nil) || !got.Equal(tc.want) {
			t.Errorf("ParseSince(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// FuzzParseSince: nothing panics, and a time taken is never after now
// when given as a duration.
func FuzzParseSince(f *testing.F) {
	for _, s := range []string{"90m", "2d", "2026-12-03 14:00", "2026-12-03T14:00:00Z", "-1d", "1e9h"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 3, 16, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseSince(s, now, time.UTC)
		if err == nil && got.IsZero() {
			t.Fatalf("%q: taken as the zero time", s)
		}
		if _, derr := time.ParseDuration(strings.TrimSpace(s)); err == nil && derr == nil && got.After(now) {
			t.Fatalf("%q: a duration ago is %v, after now", s, got)
		}
	})
}

// TestAuthErrors: each way the write token can be wrong says which.
func TestAuthErrors(t *testing.T) {
	d := startDaemon(t, "")
	dir := t.TempDir()
	wrong := filepath.Join(dir, "wrong")
	os.WriteFile(wrong, []byte("not-the-token-at-all\n"), 0o600)
	open := filepath.Join(dir, "open")
	os.WriteFile(open, []byte(testToken+"\n"), 0o644)
	short := filepath.Join(dir, "short")
	os.WriteFile(short, []byte("abc\n"), 0o600)
	noToken := filepath.Join(dir, "lvsmon.yaml")
	os.WriteFile(noToken, []byte("listen: "+strings.TrimPrefix(d.URL, "http://")+"\n"), 0o644)
	keepalivedConf := filepath.Join(dir, "keepalived.conf")
	os.WriteFile(keepalivedConf, []byte("virtual_server 192.0.2.1 80 {\n}\n"), 0o644)
	cfgToken := filepath.Join(dir, "with-token.yaml")
	os.WriteFile(cfgToken, []byte("listen: "+strings.TrimPrefix(d.URL, "http://")+"\nweb: {api_token_file: "+d.TokenFile+"}\nvirtual_services: [{colour: red}]\n"), 0o644)
	for _, tc := range []struct {
		name string
		args []string
		err  []string
	}{
		{"wrong token", []string{"--url", d.URL, "--token-file", wrong}, []string{"401 Unauthorized: missing or wrong bearer token",
			"the write token was refused: the token file (--token-file, or the config's web.api_token_file) does not hold the daemon's token"}},
		{"token file readable by others", []string{"--url", d.URL, "--token-file", open}, []string{"--token-file: " + open + " has mode 0644", "chmod 600"}},
		{"token too short", []string{"--url", d.URL, "--token-file", short}, []string{"--token-file: the token in " + short + " is too short"}},
		{"missing token file", []string{"--url", d.URL, "--token-file", filepath.Join(dir, "nope")}, []string{"--token-file: open", "no such file"}},
		{"config names no token", []string{"--config.file", noToken}, []string{"the config names none (web.api_token_file): give --token-file"}},
		{"unreachable", []string{"--url", "http://127.0.0.1:1", "--token-file", d.TokenFile}, []string{"the daemon does not answer at http://127.0.0.1:1",
			"give its address with --url"}},
		{"unreadable config", []string{"--config.file", filepath.Join(dir, "missing.yaml")}, []string{"--config.file: open"}},
		{"a keepalived.conf run as imported", []string{"--url", d.URL, "--config.file", keepalivedConf}, []string{"the config names none (web.api_token_file): give --token-file"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := run(t, t.Context(), append([]string{"drain", "10.0.1.3:80"}, tc.args...)...)
			if err == nil {
				t.Fatal("drain succeeded")
			}
			contains(t, "error", err.Error(), tc.err...)
		})
	}
	// Reads with --url need no config; a write then says why it has no
	// token.
	if _, _, err := run(t, t.Context(), "status", "--url", d.URL, "--config.file", filepath.Join(dir, "missing.yaml")); err != nil {
		t.Errorf("status --url beside a missing config: %v", err)
	}
	_, _, err := run(t, t.Context(), "drain", "10.0.1.3:80", "--url", d.URL, "--config.file", filepath.Join(dir, "missing.yaml"))
	if err == nil || !strings.Contains(err.Error(), "the write API needs the token: --config.file: open") {
		t.Errorf("drain --url beside a missing config: %v", err)
	}
	// The config is read leniently: an invalid one still gives the URL
	// and the token (the daemon runs on its last good config).
	out, _, err := run(t, t.Context(), "drain", "10.0.1.3:80", "--config.file", cfgToken)
	if err != nil || !strings.Contains(out, "drained") {
		t.Errorf("drain through an invalid config's listen and token: %q, %v", out, err)
	}
}

func TestDefaultURL(t *testing.T) {
	for _, tc := range []struct {
		listen []string
		want   string
		err    string
	}{
		{nil, "http://127.0.0.1:9160", ""},
		{[]string{":9160"}, "http://127.0.0.1:9160", ""},
		{[]string{"0.0.0.0:9160"}, "http://127.0.0.1:9160", ""},
		{[]string{"[::]:9160"}, "http://[::1]:9160", ""},
		{[]string{"192.0.2.5:9160"}, "http://192.0.2.5:9160", ""},
		{[]string{"192.0.2.5:9160", "127.0.0.1:9161"}, "http://127.0.0.1:9161", ""},
		{[]string{"192.0.2.5:9160", "[::1]:9162"}, "http://[::1]:9162", ""},
		{[]string{"lvs1.example.com:9160", "localhost:9163"}, "http://localhost:9163", ""},
		{[]string{"[::ffff:192.0.2.5]:9160"}, "http://192.0.2.5:9160", ""},
		{[]string{"127.0.0.1:0"}, "", "a port chosen at start"},
		{[]string{"[fe80::1%eth0]:9160"}, "", "has a zone"},
		{[]string{"nowhere"}, "", "missing port"},
	} {
		got, err := DefaultURL(tc.listen, "http")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("DefaultURL(%q) = %q, %v; want an error with %q", tc.listen, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("DefaultURL(%q) = %q, %v; want %q", tc.listen, got, err, tc.want)
		}
	}
}

// TestUsage: help and usage mistakes.
func TestUsage(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		help   bool
		stderr string
	}{
		{nil, false, "usage: lvsmon ctl COMMAND"},
		{[]string{"frobnicate"}, false, `unknown command "frobnicate"`},
		{[]string{"-h"}, true, "drain SERVER"},
		{[]string{"status", "-h"}, true, "-json"},
		{[]string{"status", "--bogus"}, false, "flag provided but not defined: -bogus"},
		{[]string{"status", "extra"}, false, "usage: lvsmon ctl status"},
		{[]string{"status", "--url", "ftp://x"}, false, ""},
		{[]string{"status", "--url", "http://127.0.0.1:1", "--cert-file", "x"}, false, ""},
		{[]string{"status", "--config.file", "/a", "--config", "/b"}, false, ""},
	} {
		_, errb, err := run(t, t.Context(), tc.args...)
		if tc.help {
			if !errors.Is(err, flag.ErrHelp) {
				t.Errorf("%q: %v, want help", tc.args, err)
			}
		} else if !errors.Is(err, ErrUsage) {
			t.Errorf("%q: %v, want a usage error", tc.args, err)
		}
		if !strings.Contains(errb, tc.stderr) {
			t.Errorf("%q: stderr lacks %q:\n%s", tc.args, tc.stderr, errb)
		}
	}
}
