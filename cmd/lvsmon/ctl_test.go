package main

import (
	"bytes"
	"context"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// TestCtl: `lvsmon ctl` against the daemon: the exit codes (0, 1 for a
// refused request, 2 for a usage mistake) and SIGINT ending events
// --follow cleanly.
func TestCtl(t *testing.T) {
	d := startDaemon(t, "run", "--config", writeFile(t, "lvsmon.yaml", controlCfg), "--listen", "127.0.0.1:0", "--data-dir", t.TempDir())
	base := d.url(t)
	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
		err  string
	}{
		{"status", []string{"ctl", "status", "--url", base}, 0, "director ctl, role -, lvsmon ", ""},
		{"help", []string{"ctl", "-h"}, 0, "", "drain SERVER"},
		{"no command", []string{"ctl"}, 2, "", "usage: lvsmon ctl COMMAND"},
		{"bad server", []string{"ctl", "drain", "web1", "--url", base}, 2, "", "lvsmon ctl: real server \"web1\": want its id"},
		{"bad flag", []string{"ctl", "status", "--frob"}, 2, "", "flag provided but not defined: -frob"},
		{"unknown server", []string{"ctl", "drain", "10.0.1.9:80", "--url", base}, 1, "", "lvsmon ctl: no configured real server 10.0.1.9:80"},
		{"unreachable", []string{"ctl", "status", "--url", "http://127.0.0.1:1"}, 1, "", "give its address with --url"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.err) {
				t.Errorf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, out.String(), errb.String())
			}
		})
	}
	var out, errb testutil.SyncBuffer
	cmd := exec.Command(binary, "ctl", "events", "--follow", "--url", base)
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	testutil.WaitFor(t, "events --follow printed the start", func() bool { return strings.Contains(out.String(), "daemon_start") })
	cmd.Process.Signal(syscall.SIGINT)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("events --follow after SIGINT: %v\n%s", err, errb.String())
		}
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("events --follow did not end on SIGINT")
	}
}
