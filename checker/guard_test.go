package checker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/probe"
	"github.com/lvsmon/lvsmon/reconcile"
)

// bench is a checker driven by hand: its check loops never report (their
// first check is an hour away), results are fed with feed at times of a
// fake clock, and Tick runs the guard at that clock.
type bench struct {
	t   *testing.T
	c   *Checker
	ev  *events.Log
	now time.Time
	cfg *config.Config
}

func newBench(t *testing.T, n, fall int, guard string) *bench {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "%svirtual_services:\n  - name: web\n    address: 10.0.0.100\n    port: 80\n    sorry_server: {address: 127.0.0.1, port: 80}\n", guard)
	fmt.Fprintf(&b, "    check: {type: tcp, interval: 1s, timeout: 1s, rise: 1, fall: %d}\n    real_servers:\n", fall)
	for i := range n {
		fmt.Fprintf(&b, "      - {address: 10.0.1.%d}\n", 1+i)
	}
	cfg, err := config.Parse("c.yaml", []byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := events.Open(t.TempDir(), 1000, quiet)
	if err != nil {
		t.Fatal(err)
	}
	bn := &bench{t: t, ev: ev, now: time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC), cfg: cfg}
	bn.c = New(func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
		<-ctx.Done()
		return ctx.Err()
	}, ev, quiet, nil)
	bn.c.now = func() time.Time { return bn.now }
	// The loops' first check waits up to 80% of the interval: an hour.
	for i := range cfg.VirtualServices {
		for _, chk := range cfg.VirtualServices[i].AllChecks() {
			chk.Interval = config.Duration(time.Hour)
		}
	}
	bn.c.Apply(cfg)
	// The guard's windows follow the check's real schedule (1s + 1s).
	bn.c.mu.Lock()
	for _, st := range bn.c.state {
		st.IntervalNS = time.Second
	}
	bn.c.mu.Unlock()
	t.Cleanup(func() {
		bn.c.mu.Lock()
		for _, w := range bn.c.workers {
			w.cancel()
		}
		bn.c.mu.Unlock()
	})
	return bn
}

func rsID(i int) string { return fmt.Sprintf("tcp_10.0.0.100_80__10.0.1.%d_80", i) }

// feed reports a result of server i (1-based) that started at the bench's
// clock, with no scheduling lag.
func (b *bench) feed(i int, err error) {
	b.feedLag(i, err, 0)
}

func (b *bench) feedLag(i int, err error, lag time.Duration) {
	b.c.mu.Lock()
	st := b.c.state[rsID(i)+"#0"]
	out := b.c.result(st, b.now, 10*time.Millisecond, probe.Weight{}, err, func() time.Duration { return lag })
	b.c.mu.Unlock()
	b.c.emit(out)
}

// feedFrom reports, at the bench's clock, a result of server i whose
// check started at start: a timeout arrives its whole budget after the
// check began, and the guard must tell when each check began.
func (b *bench) feedFrom(i int, start time.Time, err error) {
	b.c.mu.Lock()
	st := b.c.state[rsID(i)+"#0"]
	out := b.c.result(st, start, b.now.Sub(start), probe.Weight{}, err, func() time.Duration { return 0 })
	b.c.mu.Unlock()
	b.c.emit(out)
}

// timing gives every check the interval and whole budget the guard's
// windows follow.
func (b *bench) timing(interval, timeout time.Duration) {
	b.c.mu.Lock()
	defer b.c.mu.Unlock()
	for _, st := range b.c.state {
		st.IntervalNS, st.timeout = interval, timeout
	}
}

// at moves the bench's clock to t, ticking the guard every 100 ms on the
// way, as Run does.
func (b *bench) at(t time.Time) {
	for b.now.Add(100 * time.Millisecond).Before(t) {
		b.tick(100 * time.Millisecond)
	}
	b.tick(t.Sub(b.now))
}

func (b *bench) tick(d time.Duration) {
	b.now = b.now.Add(d)
	b.c.Tick(b.now)
}

func (b *bench) status(i int) ServerStatus {
	for _, s := range b.c.Status() {
		if s.ID == rsID(i) {
			return s
		}
	}
	b.t.Fatalf("no status of %s", rsID(i))
	return ServerStatus{}
}

func (b *bench) health(i int) health.State { return b.c.Health()[rsID(i)] }

func (b *bench) kinds() string {
	var k []string
	for _, e := range b.ev.Query(events.Filter{}) {
		k = append(k, string(e.Kind))
	}
	return strings.Join(k, " ")
}

func (b *bench) countDown() int {
	n := 0
	for _, h := range b.c.Health() {
		if h == health.Down {
			n++
		}
	}
	return n
}

var (
	errTimeout     = fmt.Errorf("tcp: connect: %w", probe.TimeoutError{After: time.Second})
	errRefused     = fmt.Errorf("tcp: connect: %w", syscall.ECONNREFUSED)
	errUnreachable = fmt.Errorf("tcp: connect: %w", syscall.EHOSTUNREACH)
)

func TestClassify(t *testing.T) {
	tests := []struct {
		name  string
		err   error
		lag   time.Duration
		class Class
		why   string
	}{
		{"fds", fmt.Errorf("http: connect 127.0.0.1:80: %w", &os.SyscallError{Syscall: "socket", Err: syscall.EMFILE}), 0, ClassLocal, LocalFDs},
		{"system fds", &os.PathError{Op: "open", Path: "/dev/null", Err: syscall.ENFILE}, 0, ClassLocal, LocalFDs},
		{"buffers", fmt.Errorf("udp: %w", syscall.ENOBUFS), 0, ClassLocal, LocalBuffers},
		{"memory", fmt.Errorf("x: %w", syscall.ENOMEM), 0, ClassLocal, LocalMemory},
		{"ports", fmt.Errorf("tcp: %w", syscall.EADDRNOTAVAIL), 0, ClassLocal, LocalPorts},
		{"fork", fmt.Errorf("external: %w", &os.PathError{Op: "fork/exec", Path: "/bin/check", Err: syscall.EAGAIN}), 0, ClassLocal, LocalProcesses},
		{"missing command", fmt.Errorf("external: %w", &exec.Error{Name: "check", Err: exec.ErrNotFound}), 0, ClassLocal, LocalProcesses},
		{"timeout", errTimeout, 0, ClassTimeout, ""},
		{"timeout under small lag", errTimeout, 200 * time.Millisecond, ClassTimeout, ""},
		{"timeout while starved", errTimeout, 300 * time.Millisecond, ClassLocal, LocalLag},
		{"deadline", fmt.Errorf("tcp: %w", os.ErrDeadlineExceeded), time.Second, ClassLocal, LocalLag},
		{"unreachable", errUnreachable, 0, ClassUnreachable, ""},
		{"refused", errRefused, time.Second, ClassRefused, ""},
		{"reset", fmt.Errorf("http: %w", syscall.ECONNRESET), 0, ClassReset, ""},
		{"closed", fmt.Errorf("smtp: %w", probe.ErrClosed), 0, ClassReset, ""},
		{"wrong answer", errors.New("http: status 503, want 200-299"), time.Second, ClassAnswer, ""},
		{"file check's file missing", probe.InconclusiveError{Err: fmt.Errorf("file: %w", &os.PathError{Op: "open", Path: "/run/w", Err: syscall.ENOENT})}, 0, ClassLocal, LocalInput},
		{"file check's file hangs", probe.InconclusiveError{Err: fmt.Errorf("file: %w", probe.TimeoutError{After: time.Second})}, 0, ClassLocal, LocalInput},
		{"file check's value fails", errors.New("file: /run/w holds 3, want 0"), 0, ClassAnswer, ""},
	}
	for _, tc := range tests {
		class, why := classify(tc.err, tc.lag, time.Second)
		if class != tc.class || why != tc.why {
			t.Errorf("%s: classify(%v, lag %s) = %s %q, want %s %q", tc.name, tc.err, tc.lag, class, why, tc.class, tc.why)
		}
	}
}

// Local trouble changes no health: fd exhaustion and a starved process
// on every server, every interval, and nothing goes down.
func TestInconclusiveChangesNothing(t *testing.T) {
	b := newBench(t, 4, 1, "")
	for i := 1; i <= 4; i++ {
		b.feed(i, nil)
	}
	emfile := fmt.Errorf("http: connect 127.0.0.1:80: %w", &os.SyscallError{Syscall: "socket", Err: syscall.EMFILE})
	for round := 0; round < 5; round++ {
		for i := 1; i <= 4; i++ {
			if i%2 == 0 {
				b.feed(i, emfile)
			} else {
				b.feedLag(i, errTimeout, 800*time.Millisecond)
			}
		}
		b.tick(time.Second)
	}
	if n := b.countDown(); n != 0 {
		t.Fatalf("%d servers went down on the director's own trouble", n)
	}
	if k := b.kinds(); k != "" {
		t.Errorf("events: %s", k)
	}
	loc := b.c.Local()
	if loc.Inconclusive[LocalFDs] != 10 || loc.Inconclusive[LocalLag] != 10 {
		t.Errorf("inconclusive = %v", loc.Inconclusive)
	}
	if s := loc.Summary(); !strings.Contains(s, LocalFDs) || !strings.Contains(s, LocalLag) || !strings.Contains(s, "too many open files") {
		t.Errorf("summary = %q", s)
	}
	st := b.status(2)
	if st.Inconclusive != 5 || st.Failures != 0 || !strings.Contains(st.LastInconclusive, "too many open files") || st.Health != health.Up {
		t.Errorf("status = %+v", st)
	}
	// A real failure after all that is still seen at once.
	b.feed(2, errRefused)
	if b.health(2) != health.Down {
		t.Errorf("a refused server after local trouble is %v", b.health(2))
	}
	b.now = b.now.Add(LocalRecent + time.Second)
	if s := b.c.Local().Summary(); s != "" {
		t.Errorf("old trouble still current: %q", s)
	}
}

// One server that times out among healthy ones goes down as soon as the
// others have been heard, not a window later.
func TestGuardSingleTimeoutGoesDown(t *testing.T) {
	b := newBench(t, 5, 1, "")
	for i := 1; i <= 5; i++ {
		b.feed(i, nil)
	}
	b.tick(100 * time.Millisecond)
	b.feed(3, errTimeout)
	if b.health(3) != health.Up || !b.status(3).Pending {
		t.Fatalf("a timeout went down before the others were heard: %+v", b.status(3))
	}
	b.tick(100 * time.Millisecond)
	for _, i := range []int{1, 2, 4, 5} {
		b.feed(i, nil)
	}
	b.tick(100 * time.Millisecond)
	if b.health(3) != health.Down || b.kinds() != "server_down" {
		t.Fatalf("health %v, events %q", b.health(3), b.kinds())
	}
}

// Without word from the others, the window ends the wait.
func TestGuardPendingEndsWithTheWindow(t *testing.T) {
	b := newBench(t, 5, 1, "")
	for i := 1; i <= 5; i++ {
		b.feed(i, nil)
	}
	b.tick(time.Second)
	b.feed(1, errUnreachable)
	b.tick(2900 * time.Millisecond)
	if b.health(1) != health.Up {
		t.Fatal("down before its window (interval + timeout, and half of that again) ended")
	}
	b.tick(100 * time.Millisecond)
	if b.health(1) != health.Down {
		t.Fatal("not down when its window ended")
	}
}

// A bad moment of the director's network: most servers time out at once,
// then answer again. Nothing goes down, the hold is an event, and no
// write is asked for.
func TestGuardHoldsAMassTimeout(t *testing.T) {
	b := newBench(t, 10, 1, "")
	for i := 1; i <= 10; i++ {
		b.feed(i, nil)
	}
	b.tick(time.Second)
	for i := 1; i <= 8; i++ {
		b.feed(i, errTimeout)
		b.tick(100 * time.Millisecond)
	}
	holds := b.c.Holds()
	if len(holds) != 1 || holds[0].Scope != "tcp_10.0.0.100_80" || holds[0].Class != ClassTimeout || len(holds[0].Servers) != 8 {
		t.Fatalf("holds = %+v", holds)
	}
	if n := b.countDown(); n != 0 {
		t.Fatalf("%d servers down during the hold", n)
	}
	if st := b.status(1); !st.Held || st.Health != health.Up {
		t.Errorf("status = %+v", st)
	}
	// The moment passes: the servers answer again.
	for i := 1; i <= 8; i++ {
		b.feed(i, nil)
		b.tick(100 * time.Millisecond)
	}
	if len(b.c.Holds()) != 0 || b.countDown() != 0 {
		t.Fatalf("holds %+v, %d down", b.c.Holds(), b.countDown())
	}
	if k := b.kinds(); k != "guard_hold guard_release" {
		t.Errorf("events: %s", k)
	}
	evs := b.ev.Query(events.Filter{})
	if !strings.Contains(evs[0].Message, "fail with timeout at once") || !strings.Contains(evs[1].Message, "pass again") {
		t.Errorf("messages: %q / %q", evs[0].Message, evs[1].Message)
	}
	if evs[0].Reason != "timeout" || evs[0].Actor != events.ActorChecker || !strings.Contains(evs[1].Reason, "pass again") || evs[1].Actor != events.ActorChecker {
		t.Errorf("fields: %+v / %+v", evs[0], evs[1])
	}
}

// A real outage where every server refuses is evidence about each: no
// hold, every server down at once.
func TestGuardNeverHoldsAnswers(t *testing.T) {
	b := newBench(t, 10, 1, "")
	for i := 1; i <= 10; i++ {
		b.feed(i, nil)
	}
	for i := 1; i <= 10; i++ {
		b.feed(i, errRefused)
	}
	if b.countDown() != 10 || len(b.c.Holds()) != 0 {
		t.Fatalf("%d down, holds %+v", b.countDown(), b.c.Holds())
	}
}

// A real outage where every server hangs is held for guard.max_hold, then
// believed.
func TestGuardMaxHoldBelievesTheFailures(t *testing.T) {
	b := newBench(t, 6, 1, "guard: {max_hold: 30s}\n")
	for i := 1; i <= 6; i++ {
		b.feed(i, nil)
	}
	b.tick(time.Second)
	for round := 0; round < 35; round++ {
		for i := 1; i <= 6; i++ {
			b.feed(i, errTimeout)
		}
		b.tick(time.Second)
		if round < 29 && b.countDown() != 0 {
			t.Fatalf("round %d: %d down during the hold", round, b.countDown())
		}
	}
	if b.countDown() != 6 || len(b.c.Holds()) != 0 {
		t.Fatalf("%d down, holds %+v", b.countDown(), b.c.Holds())
	}
	if k := b.kinds(); k != "guard_hold guard_release server_down server_down server_down server_down server_down server_down" {
		t.Errorf("events: %s", k)
	}
}

// An operator ends a hold at once; max_hold 0 never does.
func TestGuardOperatorRelease(t *testing.T) {
	b := newBench(t, 6, 1, "guard: {max_hold: 0s}\n")
	for i := 1; i <= 6; i++ {
		b.feed(i, nil)
	}
	for i := 1; i <= 6; i++ {
		b.feed(i, errUnreachable)
	}
	b.tick(100 * time.Millisecond)
	b.tick(time.Hour)
	if len(b.c.Holds()) != 1 || b.countDown() != 0 {
		t.Fatalf("holds %+v, %d down", b.c.Holds(), b.countDown())
	}
	b.feed(6, nil) // one answers: 5 of 6 still fail, still a mass failure
	b.tick(time.Second)
	if h := b.c.Holds(); len(h) != 1 || h[0].Failing != 5 {
		t.Fatalf("holds %+v", h)
	}
	if n := b.c.ReleaseHolds("alice"); n != 1 {
		t.Fatalf("released %d", n)
	}
	if b.countDown() != 5 || b.health(6) != health.Up {
		t.Fatalf("%d down", b.countDown())
	}
	var evs []events.Event
	for _, e := range b.ev.Query(events.Filter{}) {
		if e.Kind == events.GuardRelease {
			evs = append(evs, e)
		}
	}
	if len(evs) != 1 || !strings.Contains(evs[0].Message, "released by alice") || !strings.Contains(evs[0].Message, "5 servers go down") {
		t.Fatalf("release events: %+v", evs)
	}
	if evs[0].Actor != "alice" || evs[0].Reason != "released by alice" {
		t.Errorf("release event fields: %+v", evs[0])
	}
}

// When the hold ends because most servers pass again, the few still
// failing are judged one by one: each needs its own fall failures.
func TestGuardRecoveryJudgesTheRestOneByOne(t *testing.T) {
	b := newBench(t, 10, 2, "")
	for i := 1; i <= 10; i++ {
		b.feed(i, nil)
	}
	b.tick(time.Second)
	for round := 0; round < 2; round++ {
		for i := 1; i <= 7; i++ {
			b.feed(i, errTimeout)
		}
		b.tick(100 * time.Millisecond)
	}
	if len(b.c.Holds()) != 1 {
		t.Fatalf("holds %+v", b.c.Holds())
	}
	for i := 1; i <= 5; i++ {
		b.feed(i, nil)
	}
	b.tick(100 * time.Millisecond)
	if len(b.c.Holds()) != 0 || b.countDown() != 0 {
		t.Fatalf("holds %+v, %d down", b.c.Holds(), b.countDown())
	}
	b.tick(time.Second)
	b.feed(6, errTimeout) // one failure: fall is 2
	b.tick(3 * time.Second)
	if b.health(6) != health.Up {
		t.Fatal("down on one fresh failure after the hold (fall 2)")
	}
	b.feed(6, errTimeout)
	b.feed(7, errTimeout)
	b.feed(7, errTimeout)
	b.tick(3 * time.Second)
	if b.health(6) != health.Down || b.health(7) != health.Down || b.countDown() != 2 {
		t.Fatalf("6 %v, 7 %v, %d down", b.health(6), b.health(7), b.countDown())
	}
}

// Small services alone never trip the guard, but the director's share
// does: 5 services of 2 servers, all timing out at once.
func TestGuardDirectorScope(t *testing.T) {
	var s strings.Builder
	s.WriteString("virtual_services:\n")
	for v := range 5 {
		fmt.Fprintf(&s, "  - {name: s%d, address: 10.0.0.%d, port: 80, check: {type: tcp, interval: 1s, timeout: 1s, rise: 1, fall: 1}, real_servers: [{address: 10.0.1.1}, {address: 10.0.1.2}]}\n", v, 100+v)
	}
	cfg, err := config.Parse("c.yaml", []byte(s.String()))
	if err != nil {
		t.Fatal(err)
	}
	for i := range cfg.VirtualServices {
		cfg.VirtualServices[i].Check.Interval = config.Duration(time.Hour)
	}
	ev, _ := events.Open(t.TempDir(), 100, quiet)
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	c := New(func(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
		<-ctx.Done()
		return ctx.Err()
	}, ev, quiet, nil)
	c.now = func() time.Time { return now }
	c.Apply(cfg)
	defer func() {
		for _, w := range c.workers {
			w.cancel()
		}
	}()
	feed := func(err error) {
		c.mu.Lock()
		var out []emitFn
		for _, st := range c.state {
			st.IntervalNS = time.Second
			out = append(out, c.result(st, now, time.Millisecond, probe.Weight{}, err, nil)...)
		}
		c.mu.Unlock()
		c.emit(out)
	}
	feed(nil)
	now = now.Add(time.Second)
	feed(errTimeout)
	c.Tick(now)
	h := c.Holds()
	if len(h) != 1 || h[0].Scope != DirectorScope || len(h[0].Servers) != 10 {
		t.Fatalf("holds = %+v", h)
	}
	for id, hl := range c.Health() {
		if hl != health.Up {
			t.Errorf("%s is %v", id, hl)
		}
	}
}

// End to end with the reconciler on the fake kernel: the held mass
// timeout writes nothing; a real outage (every server refusing) brings
// the sorry server in.
func TestGuardWithReconciler(t *testing.T) {
	b := newBench(t, 4, 1, "")
	f := lvs.NewFake(lvs.Table{})
	rec := reconcile.New(reconcile.Options{Backend: f, Config: func() *config.Config { return b.cfg }, Health: b.c.Health, Log: quiet})
	round := func() []string {
		t.Helper()
		before, _ := f.Table(t.Context())
		if err := rec.Round(t.Context()); err != nil {
			t.Fatal(err)
		}
		after, _ := f.Table(t.Context())
		return diffWeights(before, after)
	}
	for i := 1; i <= 4; i++ {
		b.feed(i, nil)
	}
	round()
	b.tick(time.Second)
	for i := 1; i <= 4; i++ {
		b.feed(i, errTimeout)
		b.tick(50 * time.Millisecond)
		if d := round(); len(d) != 0 {
			t.Fatalf("writes during a mass timeout: %v", d)
		}
	}
	if len(b.c.Holds()) != 1 {
		t.Fatalf("holds = %+v", b.c.Holds())
	}
	for i := 1; i <= 4; i++ {
		b.feed(i, nil)
	}
	b.tick(100 * time.Millisecond)
	if d := round(); len(d) != 0 {
		t.Fatalf("writes after the moment: %v", d)
	}
	for i := 1; i <= 4; i++ {
		b.feed(i, errRefused)
	}
	got := round()
	want := "10.0.1.1:80 1->0; 10.0.1.2:80 1->0; 10.0.1.3:80 1->0; 10.0.1.4:80 1->0; 127.0.0.1:80 ->1"
	if strings.Join(got, "; ") != want || !rec.SorryActive("tcp_10.0.0.100_80") {
		t.Errorf("real outage:\n got  %s\n want %s", strings.Join(got, "; "), want)
	}
}

// diffWeights lists the real servers whose presence or weight changed.
func diffWeights(a, b lvs.Table) []string {
	w := func(t lvs.Table) map[string]string {
		m := map[string]string{}
		for _, s := range t.Services {
			for _, d := range s.Dests {
				m[d.Key.String()] = fmt.Sprint(d.Weight)
			}
		}
		return m
	}
	wa, wb := w(a), w(b)
	var out []string
	for k, v := range wb {
		if wa[k] != v {
			out = append(out, k+" "+wa[k]+"->"+v)
		}
	}
	for k, v := range wa {
		if _, ok := wb[k]; !ok {
			out = append(out, k+" "+v+"->")
		}
	}
	slices.Sort(out)
	return out
}

// lvsmon starts during a bad moment: the first results of most servers
// are timeouts. The servers not heard from yet are waited for, and the
// guard holds.
func TestGuardMassTimeoutAtStart(t *testing.T) {
	b := newBench(t, 4, 1, "")
	b.feed(1, errTimeout)
	b.tick(100 * time.Millisecond)
	if b.health(1) == health.Down {
		t.Fatal("down while the other servers had not been heard at all")
	}
	b.feed(2, errTimeout)
	b.feed(3, errTimeout)
	b.tick(100 * time.Millisecond)
	if len(b.c.Holds()) != 1 || b.countDown() != 0 {
		t.Fatalf("holds %+v, %d down", b.c.Holds(), b.countDown())
	}
}

// The real schedule with a timeout longer than the interval (1s, 2s) and
// servers whose checks start a few ms apart: the hang begins between
// server 2's check and the others', so server 2 passes once more and
// hangs one interval later. Its timeout arrives up to a whole window
// after the others' first failing checks began; they still fail, and
// the three are one mass failure.
func TestGuardHoldsHangsOneIntervalApart(t *testing.T) {
	b := newBench(t, 3, 1, "")
	b.timing(time.Second, 2*time.Second)
	p := b.now.Add(time.Second) // the checks' phase: 1 and 3 at p, 2 just before
	for i := 1; i <= 3; i++ {
		b.feedFrom(i, b.now, nil)
	}
	b.at(p.Add(5 * time.Millisecond))
	b.feedFrom(2, p.Add(-time.Millisecond), nil) // started before the hang began
	b.at(p.Add(2 * time.Second))
	b.feedFrom(1, p, errTimeout)
	b.feedFrom(3, p, errTimeout)
	b.at(p.Add(3*time.Second - time.Millisecond))
	b.feedFrom(2, p.Add(time.Second-time.Millisecond), errTimeout)
	b.at(p.Add(3*time.Second + 100*time.Millisecond))
	if h := b.c.Holds(); len(h) != 1 || len(h[0].Servers) != 3 || b.countDown() != 0 || b.kinds() != "guard_hold" {
		t.Fatalf("holds %+v, %d down, events %q", h, b.countDown(), b.kinds())
	}
}

// A hang that begins while server 1's check is in flight: servers 2 and
// 3 start theirs a moment later, before the hang, and pass. That word
// came before server 1's failure was known, so it is no evidence
// against a mass failure: server 1's down waits, and when the others
// time out too, the three are held.
func TestGuardWordFromBeforeTheFailureIsNotHeard(t *testing.T) {
	b := newBench(t, 3, 1, "")
	b.timing(time.Second, 2*time.Second)
	p := b.now.Add(time.Second)
	for i := 1; i <= 3; i++ {
		b.feedFrom(i, b.now, nil)
	}
	b.at(p.Add(5 * time.Millisecond))
	b.feedFrom(2, p.Add(time.Millisecond), nil)
	b.feedFrom(3, p.Add(2*time.Millisecond), nil)
	b.at(p.Add(2 * time.Second))
	b.feedFrom(1, p, errTimeout)
	b.at(p.Add(3 * time.Second))
	if b.health(1) != health.Up || !b.status(1).Pending {
		t.Fatalf("down on the word of checks that started before its failure was known: %+v", b.status(1))
	}
	b.feedFrom(2, p.Add(time.Second+time.Millisecond), errTimeout)
	b.feedFrom(3, p.Add(time.Second+2*time.Millisecond), errTimeout)
	b.at(p.Add(3*time.Second + 100*time.Millisecond))
	if h := b.c.Holds(); len(h) != 1 || len(h[0].Servers) != 3 || b.countDown() != 0 || b.kinds() != "guard_hold" {
		t.Fatalf("holds %+v, %d down, events %q", h, b.countDown(), b.kinds())
	}
}

// With fall 2 a run of failures lasts two checks (4s with a 2s timeout
// that restarts at once): the servers still failing count, however long
// ago their run began.
func TestGuardHoldsWithFallTwo(t *testing.T) {
	b := newBench(t, 3, 2, "")
	b.timing(time.Second, 2*time.Second)
	p := b.now.Add(time.Second)
	for i := 1; i <= 3; i++ {
		b.feedFrom(i, b.now, nil)
	}
	for run := range 2 {
		start := p.Add(time.Duration(run) * 2 * time.Second)
		for i := 1; i <= 3; i++ {
			b.at(start.Add(2*time.Second + time.Duration(i)*10*time.Millisecond))
			b.feedFrom(i, start.Add(time.Duration(i)*10*time.Millisecond), errTimeout)
		}
	}
	b.at(b.now.Add(200 * time.Millisecond))
	if h := b.c.Holds(); len(h) != 1 || len(h[0].Servers) != 3 || b.countDown() != 0 || b.kinds() != "guard_hold" {
		t.Fatalf("holds %+v, %d down, events %q", h, b.countDown(), b.kinds())
	}
}

// The opposite risk, on the same schedule: one server hangs and the
// others pass. Its down waits for a check of each other server that
// started once its failure was known, then goes through (within about
// one interval), for fall 1 and fall 2.
func TestGuardSingleHangGoesDownOnTheSchedule(t *testing.T) {
	for _, fall := range []int{1, 2} {
		t.Run(fmt.Sprintf("fall %d", fall), func(t *testing.T) {
			b := newBench(t, 3, fall, "")
			b.timing(time.Second, 2*time.Second)
			p := b.now.Add(time.Second) // 2 hangs from p; 1 and 3 pass at p+300ms, p+600ms, ...
			var failed time.Time
			for start := p; start.Before(p.Add(10 * time.Second)); start = start.Add(2 * time.Second) {
				for _, tc := range []struct {
					i   int
					off time.Duration
				}{{1, 300 * time.Millisecond}, {3, 600 * time.Millisecond}, {1, 1300 * time.Millisecond}, {3, 1600 * time.Millisecond}} {
					b.at(start.Add(tc.off + 5*time.Millisecond))
					b.feedFrom(tc.i, start.Add(tc.off), nil)
				}
				b.at(start.Add(2 * time.Second))
				b.feedFrom(2, start, errTimeout)
				if b.health(2) == health.Down {
					break
				}
				if b.status(2).Pending && failed.IsZero() {
					failed = b.now
				}
			}
			b.at(b.now.Add(100 * time.Millisecond))
			if failed.IsZero() || b.health(2) != health.Down || len(b.c.Holds()) != 0 || b.countDown() != 1 {
				t.Fatalf("health %v, holds %+v, %d down, events %q", b.health(2), b.c.Holds(), b.countDown(), b.kinds())
			}
		})
	}
}

// schedule simulates the check loops of n servers on the bench's clock,
// as loop() runs them (interval 1s, timeout 2s): each server's checks
// start at its phase, the next an interval after a check started, or at
// once after a check that took longer. A check hangs when the server
// (the hanging set) takes its connection at or after hang; the server
// takes it a random moment (up to accept) after the check starts, so a
// check that started just before the hang may hang and one that started
// just after may pass. Results and the guard's ticks (every 100 ms, at
// tickAt) go in time order until end. It returns, by server, when its
// down became pending and when it was committed.
func (b *bench) schedule(r *rand.Rand, phases []time.Duration, hanging map[int]bool, hang time.Time, accept time.Duration, tickAt time.Duration, end time.Time) (pending, down map[int]time.Time) {
	type result struct {
		at, start time.Time
		i         int
		err       error
	}
	var rs []result
	t0 := b.now
	for i, ph := range phases {
		for s := t0.Add(ph); s.Before(end); {
			a := time.Duration(r.Int64N(int64(accept) + 1))
			if !hanging[i+1] || s.Add(a).Before(hang) {
				rs = append(rs, result{at: s.Add(a + time.Millisecond), start: s, i: i + 1})
				s = s.Add(time.Second)
				continue
			}
			rs = append(rs, result{at: s.Add(2 * time.Second), start: s, i: i + 1, err: errTimeout})
			s = s.Add(2 * time.Second)
		}
	}
	slices.SortFunc(rs, func(x, y result) int { return x.at.Compare(y.at) })
	pending, down = map[int]time.Time{}, map[int]time.Time{}
	note := func() {
		for i := 1; i <= len(phases); i++ {
			if _, ok := pending[i]; !ok && b.status(i).Pending {
				pending[i] = b.now
			}
			if _, ok := down[i]; !ok && b.health(i) == health.Down {
				down[i] = b.now
			}
		}
	}
	tick := t0.Add(tickAt)
	for _, res := range rs {
		for ; !tick.After(res.at); tick = tick.Add(100 * time.Millisecond) {
			b.now = tick
			b.c.Tick(tick)
			note()
		}
		b.now = res.at
		b.feedFrom(res.i, res.start, res.err)
		note()
	}
	for ; tick.Before(end); tick = tick.Add(100 * time.Millisecond) {
		b.now = tick
		b.c.Tick(tick)
		note()
	}
	return pending, down
}

// Many moments for a hang on the real schedule, seeded: the checks of
// the three servers start anywhere in the interval, or within 5 ms of
// each other (as after a moment when the director was starved), the
// hang comes at any moment, connections are taken up to 50 ms late.
// Every server hanging is held, with no release on the way; one server
// hanging goes down, about one interval after its failure is known.
func TestGuardOnTheSchedule(t *testing.T) {
	for _, fall := range []int{1, 2} {
		for _, all := range []bool{true, false} {
			t.Run(fmt.Sprintf("fall %d, all hang %v", fall, all), func(t *testing.T) {
				for run := range 150 {
					r := rand.New(rand.NewPCG(uint64(run), uint64(fall)))
					b := newBench(t, 3, fall, "")
					b.timing(time.Second, 2*time.Second)
					base := time.Duration(r.Int64N(int64(time.Second)))
					phases := make([]time.Duration, 3)
					for i := range phases {
						phases[i] = time.Duration(r.Int64N(int64(time.Second)))
						if run%2 == 0 {
							phases[i] = base + time.Duration(r.Int64N(int64(5*time.Millisecond)))
						}
					}
					hanging := map[int]bool{1: true, 2: all, 3: all}
					t0 := b.now
					hang := b.now.Add(3*time.Second + time.Duration(r.Int64N(int64(time.Second))))
					pending, down := b.schedule(r, phases, hanging, hang, time.Duration(r.Int64N(int64(50*time.Millisecond))),
						time.Duration(r.Int64N(int64(100*time.Millisecond))), hang.Add(9*time.Second))
					switch {
					case all && (b.countDown() != 0 || len(b.c.Holds()) != 1 || b.kinds() != "guard_hold"):
						t.Fatalf("run %d (phases %v, hang at +%s): %d down, holds %+v, events %q", run, phases, hang.Sub(t0), b.countDown(), b.c.Holds(), b.kinds())
					case !all && (b.health(1) != health.Down || b.countDown() != 1 || b.kinds() != "server_down"):
						t.Fatalf("run %d (phases %v): health %v, %d down, events %q", run, phases, b.health(1), b.countDown(), b.kinds())
					case !all && down[1].Sub(pending[1]) > time.Second+150*time.Millisecond:
						t.Fatalf("run %d (phases %v): down %s after its failure was known, want about an interval", run, phases, down[1].Sub(pending[1]))
					}
				}
			})
		}
	}
}
