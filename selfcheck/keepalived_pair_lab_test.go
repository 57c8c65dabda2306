//go:build lab

// Lab tier (README, Tests): a real keepalived pair in network namespaces
// (internal/vrrplab) whose master follows lvsmon's track_file; needs root
// and Debian's keepalived.

package selfcheck_test

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/netlab"
	"github.com/lvsmon/lvsmon/internal/netns"
	"github.com/lvsmon/lvsmon/internal/vrrplab"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/selfcheck"
)

// port is a TCP port in a namespace that the test opens and closes.
type port struct {
	t    *testing.T
	ns   string
	addr netip.AddrPort
	mu   sync.Mutex
	ln   net.Listener
}

func (p *port) open() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	err := netns.Do(p.ns, func() error {
		ln, err := net.Listen("tcp", p.addr.String())
		p.ln = ln
		return err
	})
	if err != nil {
		p.t.Fatal(err)
	}
	go func(ln net.Listener) {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}(p.ln)
}

func (p *port) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
}

// stamped is an event and when the test saw it.
type stamped struct {
	events.Event
	at time.Time
}

// recorder keeps the runner's events.
type recorder struct {
	mu  sync.Mutex
	evs []stamped
	ch  chan stamped
}

func newRecorder() *recorder { return &recorder{ch: make(chan stamped, 16)} }

func (r *recorder) add(e events.Event) {
	s := stamped{e, time.Now()}
	r.mu.Lock()
	r.evs = append(r.evs, s)
	r.mu.Unlock()
	r.ch <- s
}

func (r *recorder) wait(t *testing.T, kind events.Kind, within time.Duration) stamped {
	t.Helper()
	select {
	case s := <-r.ch:
		if s.Kind != kind {
			t.Fatalf("event %s (%s), want %s", s.Kind, s.Message, kind)
		}
		return s
	case <-time.After(within):
		t.Fatalf("no %s event within %s", kind, within)
	}
	return stamped{}
}

// Self checks of the master: interval 500ms, fall 2, rise 3.
const (
	interval = 500 * time.Millisecond
	fall     = 2
	rise     = 3
	weight   = -100 // priority 150 → 50, below b's 100
)

// tcpCheck is a self check probing addr from inside namespace ns with
// lvsmon's tcp probe; fails counts its failures.
func tcpCheck(name, ns string, addr netip.AddrPort, fails *atomic.Int64) selfcheck.Check {
	c := &config.Check{Type: "tcp", Timeout: config.Duration(300 * time.Millisecond)}
	tgt := probe.Target{Addr: addr.Addr(), Port: addr.Port()}
	return selfcheck.Check{Name: name, Type: "tcp", Interval: interval, Rise: rise, Fall: fall, Run: func(ctx context.Context) error {
		var res probe.CheckResult
		if err := netns.Do(ns, func() error { res = probe.RunCheck(ctx, tgt, c); return nil }); err != nil {
			return err
		}
		if !res.OK && fails != nil {
			fails.Add(1)
		}
		return res.Err
	}}
}

func readTrack(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestKeepalivedHandOver: the master's self check (a TCP port in its
// namespace) fails → lvsmon writes the track_file → keepalived lowers
// a's priority and b becomes MASTER; the port reopens → a preempts back
// (keepalived's default preempt); a port flapping faster than fall does
// not move the VIP; a peer known to be sick does not receive it.
func TestKeepalivedHandOver(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (network namespaces, keepalived)")
	}
	ctx, lab := netlab.UpForTest(t, 4*time.Minute, vrrplab.Up, func(lab *vrrplab.Lab) {
		for _, n := range vrrplab.Nodes {
			t.Logf("keepalived log of %s:\n%s", n, netlab.Tail(lab.LogFile(n), 40))
		}
	})
	track := filepath.Join(t.TempDir(), "track")
	if err := lab.TrackFile("a", track); err != nil {
		t.Fatal(err)
	}
	nsA := lab.NetNS("a")
	svc := &port{t: t, ns: nsA, addr: netip.AddrPortFrom(lab.Addr("a"), 2222)}
	svc.open()
	defer svc.close()
	for _, n := range []string{"b", "a"} {
		if err := lab.Start(n); err != nil {
			t.Fatal(err)
		}
	}
	wait := func(node string, want bool, within time.Duration) time.Duration {
		t.Helper()
		wctx, cancel := context.WithTimeout(ctx, within)
		defer cancel()
		d, err := lab.WaitVIP(wctx, node, want)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	wait("a", true, 20*time.Second)
	wait("b", false, 5*time.Second)

	var fails atomic.Int64
	rec := newRecorder()
	r := selfcheck.New(selfcheck.Options{Checks: []selfcheck.Check{tcpCheck("port 2222", nsA, svc.addr, &fails)},
		Actions: []selfcheck.Action{selfcheck.TrackFile{Path: track, Weight: weight}}, Event: rec.add})
	rctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { r.Run(rctx); close(done) }()
	defer func() { stop(); <-done }()
	time.Sleep(2 * interval) // a few passing checks

	detectMax := time.Duration(fall+1)*interval + 300*time.Millisecond
	t.Run("sick master hands over", func(t *testing.T) {
		t0 := time.Now()
		svc.close()
		ev := rec.wait(t, events.HandOver, detectMax+time.Second)
		detect := ev.at.Sub(t0)
		if got := readTrack(t, track); got != fmt.Sprintf("%d\n", weight) {
			t.Errorf("track file %q", got)
		}
		onB := wait("b", true, 15*time.Second)
		wait("a", false, 5*time.Second)
		total := time.Since(t0)
		t.Logf("MEASURED keepalived hand-over: port closed → track_file written %v (fall %d × interval %v = %v), → VIP on b %v later, total %v; reason %q",
			detect.Round(time.Millisecond), fall, interval, fall*interval, (total - detect).Round(time.Millisecond), total.Round(time.Millisecond), ev.Reason)
		_ = onB
		if detect > detectMax {
			t.Errorf("detection took %v, want at most %v", detect, detectMax)
		}
	})
	t.Run("healthy again fails back", func(t *testing.T) {
		t0 := time.Now()
		svc.open()
		ev := rec.wait(t, events.HandBack, time.Duration(rise+1)*interval+time.Second)
		back := ev.at.Sub(t0)
		if got := readTrack(t, track); got != "0\n" {
			t.Errorf("track file %q", got)
		}
		wait("a", true, 15*time.Second)
		wait("b", false, 5*time.Second)
		total := time.Since(t0)
		t.Logf("MEASURED keepalived failback (preempt): port open → track_file 0 after %v (rise %d × interval %v), → VIP back on a %v later, total %v",
			back.Round(time.Millisecond), rise, interval, (total - back).Round(time.Millisecond), total.Round(time.Millisecond))
	})
	t.Run("a flapping port does not flap the role", func(t *testing.T) {
		// Closed 200ms, then open 550-870ms: two probes 500ms apart
		// never both fall in closed windows (those are at least 750ms
		// apart), so fall 2 is never reached; the varying cycle keeps
		// the probes from locking onto the open phase.
		before := fails.Load()
		for i := range 15 {
			svc.close()
			time.Sleep(200 * time.Millisecond)
			svc.open()
			time.Sleep(time.Duration(550+80*(i%5)) * time.Millisecond)
			if on, err := lab.VIPOn("b"); err != nil || on {
				t.Fatalf("VIP on b during the flapping (err %v)", err)
			}
		}
		if n := fails.Load() - before; n == 0 {
			t.Fatal("the probe never saw the port closed: the test proves nothing")
		} else {
			t.Logf("the flapping port failed %d probes, none twice in a row", n)
		}
		select {
		case ev := <-rec.ch:
			t.Fatalf("event %s during the flapping: %s", ev.Kind, ev.Message)
		default:
		}
		if on, err := lab.VIPOn("a"); err != nil || !on {
			t.Fatalf("VIP left a (err %v)", err)
		}
	})
	stop()
	<-done

	t.Run("a sick peer does not receive the VIP", func(t *testing.T) {
		// The peer check probes b's port 2223 from a: nothing listens
		// there yet, so the peer is sick.
		peerPort := &port{t: t, ns: lab.NetNS("b"), addr: netip.AddrPortFrom(lab.Addr("b"), 2223)}
		pc := tcpCheck("peer", nsA, peerPort.addr, nil)
		pc.Rise, pc.Fall = 1, 1
		rec := newRecorder()
		r := selfcheck.New(selfcheck.Options{Checks: []selfcheck.Check{tcpCheck("port 2222", nsA, svc.addr, nil)},
			Actions: []selfcheck.Action{selfcheck.TrackFile{Path: track, Weight: weight}}, PeerCheck: &pc, Event: rec.add})
		rctx, stop := context.WithCancel(ctx)
		done := make(chan struct{})
		go func() { r.Run(rctx); close(done) }()
		defer func() { stop(); <-done; peerPort.close() }()
		time.Sleep(2 * interval)
		svc.close()
		ev := rec.wait(t, events.HandOverRefused, detectMax+time.Second)
		t.Logf("refused: %s", ev.Message)
		// Longer than a hand-over took above: the VIP stays on a.
		time.Sleep(6 * time.Second)
		if got := readTrack(t, track); got != "0\n" {
			t.Errorf("track file %q while the peer is sick", got)
		}
		if on, err := lab.VIPOn("b"); err != nil || on {
			t.Fatalf("the sick peer got the VIP (err %v)", err)
		}
		// The peer mends: now the hand-over happens.
		t0 := time.Now()
		peerPort.open()
		rec.wait(t, events.HandOver, 3*interval)
		wait("b", true, 15*time.Second)
		t.Logf("peer healthy again → VIP on b after %v", time.Since(t0).Round(time.Millisecond))
		svc.open()
		rec.wait(t, events.HandBack, time.Duration(rise+1)*interval+time.Second)
		wait("a", true, 15*time.Second)
	})
}
