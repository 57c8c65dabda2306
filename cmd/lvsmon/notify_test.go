package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// notifySocket is a fake systemd: a unixgram socket whose path goes into
// $NOTIFY_SOCKET, and the datagrams it got.
type notifySocket struct {
	path string
	msgs chan string
}

func listenNotify(t *testing.T) *notifySocket {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	n := &notifySocket{path: path, msgs: make(chan string, 1000)}
	go func() {
		buf := make([]byte, 4096)
		for {
			k, err := conn.Read(buf)
			if err != nil {
				return
			}
			n.msgs <- string(buf[:k])
		}
	}()
	return n
}

// next is the next datagram that is not a watchdog ping; pings counts
// those skipped.
func (n *notifySocket) next(t *testing.T, pings *int) string {
	t.Helper()
	for {
		select {
		case m := <-n.msgs:
			if m == "WATCHDOG=1" {
				*pings++
				continue
			}
			return m
		case <-time.After(20 * time.Second):
			t.Fatal("no notification within 20 s")
		}
	}
}

// The lvsmon binary on the fake backend, under a fake systemd: READY=1
// once it serves (with a STATUS line), watchdog pings at half of
// WATCHDOG_USEC, RELOADING=1 with MONOTONIC_USEC then READY=1 around a
// SIGHUP, and STOPPING=1 at SIGTERM.
func TestRunNotifiesSystemd(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sock.path)
	t.Setenv("WATCHDOG_USEC", "200000") // a ping every 0.1 s
	cfgPath := writeFile(t, "lvsmon.yaml", "step: 1s\nipvs: {backend: fake}\nvirtual_services:\n  - {name: web, address: 10.0.0.1, port: 80}\n")
	d := startDaemon(t, "run", "--config.file", cfgPath, "--web.listen-address", "127.0.0.1:0", "--data-dir", t.TempDir())
	base := d.url(t)
	pings := 0
	if m := sock.next(t, &pings); !strings.HasPrefix(m, "READY=1\nSTATUS=serving on 127.0.0.1:") || !strings.Contains(m, "1 virtual services") {
		t.Fatalf("first notification %q", m)
	}
	// Ready means /-/ready says so too.
	getJSON(t, base+"/api/v1/status", new(statusBody))
	for pings < 3 {
		select {
		case m := <-sock.msgs:
			if m != "WATCHDOG=1" {
				t.Fatalf("between READY and the reload: %q", m)
			}
			pings++
		case <-time.After(20 * time.Second):
			t.Fatalf("%d watchdog pings within 20 s; log:\n%s", pings, d.logText())
		}
	}
	d.cmd.Process.Signal(syscall.SIGHUP)
	m := sock.next(t, &pings)
	lines := strings.Split(m, "\n")
	if lines[0] != "RELOADING=1" || !strings.HasPrefix(lines[len(lines)-1], "MONOTONIC_USEC=") {
		t.Fatalf("at SIGHUP: %q", m)
	}
	if m := sock.next(t, &pings); !strings.HasPrefix(m, "READY=1\n") {
		t.Fatalf("after the reload: %q", m)
	}
	d.waitLog(t, "config reloaded")
	d.stop(t)
	if m := sock.next(t, &pings); !strings.HasPrefix(m, "STOPPING=1") {
		t.Fatalf("at SIGTERM: %q", m)
	}
}

// Without $NOTIFY_SOCKET nothing speaks to systemd.
func TestNoNotifierOutsideSystemd(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if n := newSDNotifier(slog.New(slog.DiscardHandler)); n != nil {
		t.Fatal("a notifier without NOTIFY_SOCKET")
	}
}

// The watchdog pings only after a liveness probe that passed: with every
// other probe failing, the fifth ping needs at least ten probes.
func TestWatchdogPingsOnlyWhileAlive(t *testing.T) {
	sock := listenNotify(t)
	t.Setenv("NOTIFY_SOCKET", sock.path)
	t.Setenv("WATCHDOG_USEC", "40000")
	n := newSDNotifier(slog.New(slog.DiscardHandler))
	var calls atomic.Int64
	alive := func(context.Context) error {
		if calls.Add(1)%2 == 1 {
			return errors.New("hung")
		}
		return nil
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); n.watchdog(ctx, alive) }()
	defer func() { cancel(); <-done }()
	n.Ready("test")
	pings := 0
	for pings < 5 {
		select {
		case m := <-sock.msgs:
			if m == "WATCHDOG=1" {
				pings++
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%d pings within 20 s", pings)
		}
	}
	if c := calls.Load(); c < 10 {
		t.Errorf("5 pings after %d probes, half of which failed: a failed probe pinged", c)
	}
}
