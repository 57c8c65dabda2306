package main

import (
	"context"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"

	"github.com/lvsmon/lvsmon/app"
)

// sdNotifier tells systemd the daemon's state through $NOTIFY_SOCKET
// (a Type=notify unit): READY=1 once lvsmon answers, RELOADING=1 and
// READY=1 around every reload, STOPPING=1 at the stop, and WATCHDOG=1
// while the daemon's loops turn when the unit sets WatchdogSec.
type sdNotifier struct {
	log   *slog.Logger
	ready chan struct{}
	once  sync.Once
}

// newSDNotifier returns nil when lvsmon does not run under systemd (no
// $NOTIFY_SOCKET), so that nothing is sent anywhere.
func newSDNotifier(log *slog.Logger) *sdNotifier {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return nil
	}
	return &sdNotifier{log: log.With("component", "systemd"), ready: make(chan struct{})}
}

// send writes one notification; a failure is logged, never fatal.
func (n *sdNotifier) send(lines ...string) {
	state := strings.Join(lines, "\n")
	if _, err := sd.SdNotify(false, state); err != nil {
		n.log.Warn("telling systemd failed", "state", lines[0], "err", err)
	}
}

// statusLine makes a STATUS= line of one line.
func statusLine(s string) string {
	return "STATUS=" + strings.ReplaceAll(s, "\n", " ")
}

func (n *sdNotifier) Ready(status string) {
	n.send(sd.SdNotifyReady, statusLine(status))
	n.once.Do(func() { close(n.ready) })
}

// Reloading carries MONOTONIC_USEC, which systemd 253 and later want with
// RELOADING=1 (older ones ignore it).
func (n *sdNotifier) Reloading() {
	lines := []string{sd.SdNotifyReloading, statusLine("reloading the config")}
	if m := strings.TrimSpace(sd.SdNotifyMonotonicUsec()); m != "" {
		lines = append(lines, m)
	}
	n.send(lines...)
}

func (n *sdNotifier) Stopping() { n.send(sd.SdNotifyStopping, statusLine("stopping")) }

// watchdog pings at half of $WATCHDOG_USEC from the first READY=1 on,
// each time only if alive says the daemon's loops still turn: a hung
// lvsmon stops pinging and systemd restarts it. A probe that has not
// returned by the next tick is not started again, and no ping is sent.
func (n *sdNotifier) watchdog(ctx context.Context, alive func(context.Context) error) {
	every, err := sd.SdWatchdogEnabled(false)
	if err != nil {
		n.log.Warn("the watchdog settings are unusable; not pinging", "err", err)
		return
	}
	if every == 0 {
		return
	}
	every /= 2
	select {
	case <-n.ready:
	case <-ctx.Done():
		return
	}
	n.log.Info("pinging systemd's watchdog while the daemon's loops turn", "every", every)
	t := time.NewTicker(every)
	defer t.Stop()
	result := make(chan error, 1)
	out := false // a probe is running
	ping := func() {
		if out {
			n.log.Error("watchdog: the last liveness probe has not returned; not pinging")
			return
		}
		out = true
		go func() {
			pctx, cancel := context.WithTimeout(ctx, min(every, app.AliveTimeout))
			defer cancel()
			result <- alive(pctx)
		}()
	}
	ping()
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-result:
			out = false
			if err != nil {
				n.log.Error("watchdog: the daemon looks hung; not pinging", "err", err)
				continue
			}
			n.send(sd.SdNotifyWatchdog)
		case <-t.C:
			ping()
		}
	}
}
