package app

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// Notifier hears the daemon's state changes, for a supervisor: `lvsmon
// run` passes one that speaks systemd's sd_notify, so that a Type=notify
// unit is started only once lvsmon answers, shows reloads, and is
// restarted by the watchdog when it hangs.
type Notifier interface {
	// Ready: the web interface serves and the first IPVS read has
	// returned (status says how it went); again after every reload.
	Ready(status string)
	// Reloading: a reload began (a SIGHUP, a changed file, the API).
	Reloading()
	// Stopping: Run's context ended; the parts are stopping.
	Stopping()
}

// readTracker wraps the collector's reader: it tells when the first read
// returned (readiness, as /-/ready waits for the first sample) and when
// the last one did (liveness of the sampling loop, for the watchdog).
type readTracker struct {
	lvs.Reader
	now   func() time.Time
	first chan struct{}
	once  sync.Once
	last  atomic.Int64 // unix nanoseconds of the last return
	err   atomic.Pointer[string]
}

func newReadTracker(r lvs.Reader, now func() time.Time) *readTracker {
	return &readTracker{Reader: r, now: now, first: make(chan struct{})}
}

func (t *readTracker) Table(ctx context.Context) (lvs.Table, error) {
	tab, err := t.Reader.Table(ctx)
	t.last.Store(t.now().UnixNano())
	if err != nil {
		s := err.Error()
		t.err.Store(&s)
	} else {
		t.err.Store(nil)
	}
	t.once.Do(func() { close(t.first) })
	return tab, err
}

// readyStatus is the STATUS= line sent with READY=1.
func (a *App) readyStatus(services int) string {
	if e := a.reads.err.Load(); e != nil {
		return fmt.Sprintf("serving on %s; reading the IPVS table fails: %s", joinAddrs(a.addrs()), *e)
	}
	return fmt.Sprintf("serving on %s; %d virtual services configured", joinAddrs(a.addrs()), services)
}

// AliveTimeout bounds one liveness probe of the web interface.
const AliveTimeout = 5 * time.Second

// Alive says whether the daemon's main loops still turn, for a watchdog
// that restarts a hung lvsmon: the sampling loop has returned from an
// IPVS read within three steps (a read may take a step, the next starts
// at most 1.5 steps later), the web interface answers /-/healthy on its
// first listener, and the checker's and reconciler's state can be read
// (their locks are not held forever). It blocks at most until ctx ends
// or AliveTimeout; the caller should not call it again while one call is
// still out.
func (a *App) Alive(ctx context.Context) error {
	step := a.coll.Step()
	last := time.Unix(0, a.reads.last.Load())
	if a.reads.last.Load() == 0 {
		return errors.New("the collector has not read the IPVS table yet")
	}
	if age := a.now().Sub(last); age > 3*step+10*time.Second {
		return fmt.Errorf("the collector's last IPVS read returned %s ago (step %s)", age.Round(time.Second), step)
	}
	ctx, cancel := context.WithTimeout(ctx, AliveTimeout)
	defer cancel()
	if len(a.lns) > 0 {
		if err := probeHealthy(ctx, a.lns[0].Addr()); err != nil {
			return err
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.chk.Holds()
		if a.rec != nil {
			a.rec.Stats()
		}
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("the checker's or reconciler's state cannot be read: %w", ctx.Err())
	}
}

// probeHealthy asks the web interface at addr for /-/healthy, through
// loopback when addr is a wildcard.
func probeHealthy(ctx context.Context, addr net.Addr) error {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return fmt.Errorf("the web listener %s is not TCP", addr)
	}
	ip := tcp.IP
	if ip.IsUnspecified() {
		ip = net.IPv4(127, 0, 0, 1)
		if tcp.IP.To4() == nil && len(tcp.IP) == net.IPv6len && !tcp.IP.Equal(net.IPv6unspecified) {
			ip = net.IPv6loopback
		}
	}
	url := "http://" + net.JoinHostPort(ip.String(), fmt.Sprint(tcp.Port)) + "/-/healthy"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{DisableKeepAlives: true, Proxy: nil}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return fmt.Errorf("the web interface does not answer: %w", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the web interface answers %s to /-/healthy", resp.Status)
	}
	return nil
}
