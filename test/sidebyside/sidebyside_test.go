//go:build ipvskernel || lab

package sidebyside

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// The setting of every side-by-side run: a web service (10.210.0.10:80,
// wrr, NAT) checked over HTTP, its failed real servers kept at weight 0,
// the first with thresholds (u 100, l 10); a persistent TCP service
// (10.210.0.11:8080, rr, 60 s, direct routing) checked by connecting,
// its failed real servers removed; a sorry server for each. The same
// three real servers serve both.

// tab is a table of that setting: the weights of real servers 1 to 3 of
// each service (-1: not in the table) and of the sorry servers.
type tab struct {
	web      [3]int
	webSorry int
	tcp      [3]int
	tcpSorry int
}

// The real servers' weights in the config, before and after the reload.
var (
	sbWeb  = [3]int{3, 2, 1}
	sbTCP  = [3]int{1, 1, 2}
	sbWeb2 = [3]int{3, 2, 5}
	sbTCP2 = [3]int{3, 1, 2}
	sbNone = [3]int{-1, -1, -1}
)

// sbWebID is the web service's id.
const sbWebID = "tcp_10.210.0.10_80"

// A director under test: the other tool or lvsmon.
type director interface {
	// reload makes the director take the other tool's config at path:
	// a SIGHUP to the other tool, a reload of lvsmon with the import.
	reload(t *testing.T, path string)
	stop(t *testing.T)
}

// sbLab is a setting the sequence runs in.
type sbLab struct {
	dir string
	rs  [3]*realServer
	// conf writes the other tool's config with these weights, as name
	// in dir, and returns its path.
	conf func(t *testing.T, name string, web, tcp [3]int) string
	// table is tab as this setting's table shows it.
	table func(tab) view
	// read reads the table.
	read               func(t *testing.T) view
	poll, quiet, bound time.Duration
}

func (l *sbLab) all(t *testing.T, mode string) {
	for _, s := range l.rs {
		s.set(t, mode)
	}
}

func (l *sbLab) write(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(l.dir, name)
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// sbStep is one step of the sequence: what happens, and the table the
// other tool leaves.
type sbStep struct {
	name string
	do   func(t *testing.T, l *sbLab, d director)
	want tab
	// held: lvsmon's mass-failure guard holds the downs, and its table
	// stays what it was before the step (README, "Migrating from").
	held bool
}

var sbSteps = []sbStep{
	{name: "start", do: func(*testing.T, *sbLab, director) {},
		want: tab{sbWeb, -1, sbTCP, -1}},
	{name: "rs1's health page fails", do: func(t *testing.T, l *sbLab, _ director) { l.rs[0].set(t, rsSick) },
		want: tab{[3]int{0, 2, 1}, -1, sbTCP, -1}},
	// The TCP port of a hung application still accepts: the connect
	// checks see nothing wrong.
	{name: "rs2 hangs", do: func(t *testing.T, l *sbLab, _ director) { l.rs[1].set(t, rsHang) },
		want: tab{[3]int{0, 0, 1}, -1, sbTCP, -1}},
	// Refused connections: an answer from each server.
	{name: "every server is down", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsDown) },
		want: tab{[3]int{0, 0, 0}, 1, sbNone, 1}},
	{name: "every server is back", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsOK) },
		want: tab{sbWeb, -1, sbTCP, -1}},
	// Every web check times out at once: the other tool empties the
	// service; lvsmon's guard takes the cause for the director's more
	// likely than every server's and holds the downs (guard.max_hold).
	{name: "every server hangs", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsHang) },
		want: tab{[3]int{0, 0, 0}, 1, sbTCP, -1}, held: true},
	{name: "every server is back again", do: func(t *testing.T, l *sbLab, _ director) { l.all(t, rsOK) },
		want: tab{sbWeb, -1, sbTCP, -1}},
	{name: "reload with changed weights", do: func(t *testing.T, l *sbLab, d director) {
		d.reload(t, l.conf(t, "changed", sbWeb2, sbTCP2))
	}, want: tab{sbWeb2, -1, sbTCP2, -1}},
}

// sideBySide runs the other tool (started by other on the config at
// conf) through the steps, checking its tables against the ones the
// config describes; stops it, which must leave an empty table (both
// tools delete their services as they stop); then lvsmon (started by
// lvsmon on the same config, on an empty table, the servers mended)
// through the same steps, comparing its tables with the other tool's,
// but where a step says lvsmon differs on purpose. lvsmon's stop must
// leave the table as it was.
func sideBySide(t *testing.T, l *sbLab, name string, other func(t *testing.T, conf string) director, lvsmon func(t *testing.T, conf string) *lvsmonDirector) {
	begin := time.Now()
	conf := l.conf(t, "first", sbWeb, sbTCP)
	o := other(t, conf)
	var kept []settled
	for _, st := range sbSteps {
		st.do(t, l, o)
		want := l.table(st.want)
		s := settle(t, func() view { return l.read(t) }, want, l.poll, l.quiet, l.bound)
		kept = append(kept, s)
		if !s.ok {
			t.Errorf("%s, %s: the table is not the one the config describes after %s:\n%s\nwant:\n%s\non the way:\n%s",
				name, st.name, s.took.Round(time.Millisecond), indent(s.table), indent(want), strings.Join(s.path, "\n"))
		}
	}
	last := l.read(t)
	o.stop(t)
	if v := l.read(t); v != "" {
		t.Errorf("%s stopped: the table is not empty:\n%s", name, indent(v))
	}
	if t.Failed() {
		t.FailNow()
	}

	l.all(t, rsOK)
	m := lvsmon(t, conf)
	var prev view
	wasHeld := false
	for i, st := range sbSteps {
		starved := m.rig.inconclusive(sbWebID)
		st.do(t, l, m)
		want := kept[i].table
		held := false
		if st.held {
			// The guard holds and the table stays the one before the
			// step; but a guard that heard one of the three only
			// inconclusively (lvsmon itself was late: a starved VM or
			// host) counts two failing and believes them. The guard
			// believes a pending down once every other server has a
			// result that started after the failing check ended (a
			// passing check that started a moment after the failing
			// one, but before the hang, is no word on it), and counts
			// every server still failing, however long ago its run
			// began. The real servers hang only the connections
			// accepted after the change.
			if held = waitHeld(t, m.rig, st.name, l.bound); held {
				want = prev
			} else if n := m.rig.inconclusive(sbWebID) - starved; n > 0 {
				t.Logf("lvsmon, %s: not held: %d check results of the web service were inconclusive (lvsmon itself was late), so the guard did not count three failing; the servers went down as with %s", st.name, n, name)
			} else {
				t.Errorf("lvsmon, %s: the guard did not hold, and no check result was inconclusive; the checker's status:\n%s", st.name, m.rig.status(sbWebID))
			}
		}
		s := settle(t, func() view { return l.read(t) }, want, l.poll, l.quiet, l.bound)
		if !s.ok {
			t.Errorf("lvsmon, %s: the table is not %s's after %s:\n%s\n%s's:\n%s\non the way:\n%s",
				st.name, name, s.took.Round(time.Millisecond), indent(s.table), name, indent(want), strings.Join(s.path, "\n"))
		}
		switch {
		case held:
			if got := m.rig.held(); len(got) != 3 {
				t.Errorf("lvsmon, %s: the guard holds %v, want the web service's three servers", st.name, got)
			}
			t.Logf("lvsmon, %s: held, as the README says; %s emptied the service:\n%s", st.name, name, indent(kept[i].table))
		case wasHeld:
			if got := m.rig.held(); len(got) != 0 {
				t.Errorf("lvsmon, %s: the guard still holds %v", st.name, got)
			}
		}
		wasHeld = held
		t.Logf("%-28s %s %6s, lvsmon %6s (to the settled table)", st.name, name, kept[i].took.Round(10*time.Millisecond), s.took.Round(10*time.Millisecond))
		logPath(t, name, st.name, kept[i].path)
		logPath(t, "lvsmon", st.name, s.path)
		prev = s.table
	}
	if v := l.read(t); v != last {
		t.Errorf("lvsmon's last table is not %s's:\n%s\n%s's:\n%s", name, indent(v), name, indent(last))
	}
	m.stop(t)
	// lvsmon leaves the table as it is when it stops: a restart changes
	// nothing.
	if v := l.read(t); v != last {
		t.Errorf("lvsmon stopped: the table changed:\n%s\nwant it as it was:\n%s", indent(v), indent(last))
	}
	t.Logf("took %s", time.Since(begin).Round(time.Millisecond))
}

// logPath logs the tables a director went through in a step, when it
// went through more than one.
func logPath(t *testing.T, who, step string, path []string) {
	if len(path) > 1 {
		t.Logf("%s, %s, on the way:\n%s", who, step, strings.Join(path, "\n"))
	}
}

// waitHeld waits until lvsmon's guard holds the downs of the web
// service's three servers (true), or lvsmon took all three down (false).
func waitHeld(t *testing.T, r *lvsmonRig, step string, bound time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(bound)
	for {
		switch {
		case len(r.held()) == 3:
			return true
		case r.down(sbWebID) == 3:
			return false
		case time.Now().After(deadline):
			t.Fatalf("lvsmon, %s: after %s the guard holds %v and the health is %v; want the three web servers held or down", step, bound, r.held(), r.chk.Health())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// lvsmonDirector is lvsmon with the import of the other tool's config.
type lvsmonDirector struct {
	rig      *lvsmonRig
	format   string
	data     string
	loopback bool // the real servers are on loopback addresses
}

// startLvsmonDirector imports conf (in format) and runs lvsmon on b.
func startLvsmonDirector(t *testing.T, format, conf string, b lvs.Backend, scan, loopback bool) *lvsmonDirector {
	t.Helper()
	data := t.TempDir()
	cfg := importConfig(t, format, conf, data, loopback)
	return &lvsmonDirector{rig: startLvsmon(t, cfg, b, scan), format: format, data: data, loopback: loopback}
}

func (m *lvsmonDirector) reload(t *testing.T, path string) {
	t.Helper()
	m.rig.reload(importConfig(t, m.format, path, m.data, m.loopback))
}

func (m *lvsmonDirector) stop(*testing.T) { m.rig.stop() }

// Real server modes.
const (
	rsOK   = "ok"   // passes its checks
	rsSick = "sick" // its health page answers 503; its TCP port accepts
	rsHang = "hang" // accepts connections and never answers (a hung application)
	rsDown = "down" // nothing listens: connections are refused
)

// realServer is a real server: HTTP (any path: "OK", or 503 when sick)
// and a TCP port that accepts and closes, each of which can be made to
// fail.
type realServer struct {
	name string
	// listen opens the two listeners, HTTP's and TCP's.
	listen func() (web, tcp net.Listener, err error)
	mu     sync.Mutex
	mode   string
	wake   chan struct{} // closed (and replaced) at every mode change
	web    *http.Server
	tcp    net.Listener
}

func startRealServer(t *testing.T, name string, listen func() (web, tcp net.Listener, err error)) *realServer {
	t.Helper()
	s := &realServer{name: name, listen: listen, mode: rsDown, wake: make(chan struct{})}
	s.set(t, rsOK)
	t.Cleanup(func() { s.set(t, rsDown) })
	return s
}

func (s *realServer) set(t *testing.T, mode string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.mode == mode {
		return
	}
	was := s.mode
	s.mode = mode
	close(s.wake)
	s.wake = make(chan struct{})
	switch {
	case mode == rsDown:
		s.web.Close()
		s.tcp.Close()
	case was == rsDown:
		web, tcp, err := s.listen()
		if err != nil {
			t.Fatalf("real server %s: %v", s.name, err)
		}
		s.tcp = tcp
		s.web = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ConnContext: s.accept}
		s.web.SetKeepAlivesEnabled(false)
		go s.web.Serve(web)
		go func() {
			for {
				c, err := tcp.Accept()
				if err != nil {
					return
				}
				c.Close()
			}
		}()
	}
}

// accepted is a connection's mode, taken when it was accepted: a mode
// change applies to the connections that come after it, so that a check
// in flight when a server starts to hang finishes as it began, and the
// servers of a step all fail from the same moment (see sideBySide's
// note on the guard).
type accepted struct {
	mode string
	wake chan struct{}
}

type acceptedKey struct{}

func (s *realServer) accept(ctx context.Context, _ net.Conn) context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	return context.WithValue(ctx, acceptedKey{}, accepted{s.mode, s.wake})
}

func (s *realServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, _ := r.Context().Value(acceptedKey{}).(accepted)
	for a.mode == rsHang {
		select {
		case <-a.wake:
			s.mu.Lock()
			a = accepted{s.mode, s.wake}
			s.mu.Unlock()
		case <-r.Context().Done():
			return
		}
	}
	if a.mode == rsSick {
		http.Error(w, "sick", http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "OK")
}
