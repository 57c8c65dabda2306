package app

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// recNotifier records what the daemon tells its supervisor.
type recNotifier struct{ c chan string }

func (n recNotifier) Ready(status string) { n.c <- "READY " + status }
func (n recNotifier) Reloading()          { n.c <- "RELOADING" }
func (n recNotifier) Stopping()           { n.c <- "STOPPING" }

func (n recNotifier) next(t *testing.T) string {
	t.Helper()
	select {
	case s := <-n.c:
		return s
	case <-time.After(10 * time.Second):
		t.Fatal("no notification within 10 s")
		return ""
	}
}

// The Notifier hears Ready once the web serves and the first IPVS read
// returned, Reloading then Ready around an Apply and around a Reload
// that is rejected (the old config still runs), and Stopping at the end.
func TestNotifierLifecycle(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	a, _, _ := newTestApp(t, cfg)
	n := recNotifier{make(chan string, 16)}
	a.notify = n
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	if got := n.next(t); !strings.HasPrefix(got, "READY serving on 127.0.0.1:") || !strings.Contains(got, "1 virtual services") {
		t.Fatalf("first notification %q", got)
	}
	if a.reads.last.Load() == 0 {
		t.Error("Ready before the first IPVS read returned")
	}
	next := *cfg
	if err := a.Apply(&next); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"RELOADING", "READY serving"} {
		if got := n.next(t); !strings.HasPrefix(got, want) {
			t.Fatalf("after Apply: %q, want %q", got, want)
		}
	}
	a.load = func() (*config.Config, error) { return nil, errors.New("broken") }
	if err := a.Reload(); err == nil {
		t.Fatal("Reload of a broken config succeeded")
	}
	for _, want := range []string{"RELOADING", "READY serving"} {
		if got := n.next(t); !strings.HasPrefix(got, want) {
			t.Fatalf("after a rejected Reload: %q, want %q", got, want)
		}
	}
	cancel()
	if got := n.next(t); got != "STOPPING" {
		t.Fatalf("at the stop: %q", got)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// failingReader is a kernel whose table cannot be read.
type failingReader struct{}

func (failingReader) Table(context.Context) (lvs.Table, error) {
	return lvs.Table{}, errors.New("no ip_vs here")
}
func (failingReader) Close() error { return nil }

// A failing first read still makes the daemon ready (its page and
// /-/ready say why), with the failure in the status.
func TestNotifierReadyWithAFailingRead(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	cfg.VirtualServices = nil
	a, err := New(Options{Config: cfg, Reader: failingReader{}, Log: discardLog(), Notify: recNotifier{make(chan string, 4)}})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	n := a.notify.(recNotifier)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	defer func() { cancel(); <-done }()
	if got := n.next(t); !strings.Contains(got, "reading the IPVS table fails: no ip_vs here") {
		t.Fatalf("ready status %q", got)
	}
}

// Alive holds while the loops turn, and fails, naming the collector,
// once its last read is older than three steps (an injected clock), and
// naming the web interface once that stops answering.
func TestAlive(t *testing.T) {
	cfg := testConfig(t, "127.0.0.1:0")
	a, _, _ := newTestApp(t, cfg)
	if err := a.Alive(t.Context()); err == nil || !strings.Contains(err.Error(), "not read the IPVS table yet") {
		t.Fatalf("Alive before Run: %v", err)
	}
	n := recNotifier{make(chan string, 16)}
	a.notify = n
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	n.next(t)
	if err := a.Alive(t.Context()); err != nil {
		t.Fatalf("Alive on a running daemon: %v", err)
	}
	a.now = func() time.Time { return time.Now().Add(3*cfg.Step.D() + time.Minute) }
	if err := a.Alive(t.Context()); err == nil || !strings.Contains(err.Error(), "collector's last IPVS read") {
		t.Fatalf("Alive with a stale collector: %v", err)
	}
	a.now = time.Now
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// The collector's loop has ended too; the web no longer answers.
	if err := a.Alive(t.Context()); err == nil || !strings.Contains(err.Error(), "web interface") {
		t.Fatalf("Alive after Run: %v", err)
	}
}

func discardLog() *slog.Logger { return slog.New(slog.DiscardHandler) }
