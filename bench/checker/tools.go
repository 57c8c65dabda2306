package main

// The two checkers under measurement, each a process tree of its own,
// and what both report the same way: every weight they write to their
// (fake) IPVS table, with the time it was written.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// weightEvent is one weight written for a real server.
type weightEvent struct {
	at time.Time
	w  int
}

// weights are the weight writes a checker made, by real server
// ("ip:port").
type weights struct {
	mu sync.Mutex
	ev map[string][]weightEvent
}

func newWeights() *weights { return &weights{ev: map[string][]weightEvent{}} }

func (ws *weights) add(dest string, at time.Time, w int) {
	ws.mu.Lock()
	ws.ev[dest] = append(ws.ev[dest], weightEvent{at, w})
	ws.mu.Unlock()
}

// first is the first write at or after since that sets dest's weight to
// zero (zero) or to more than zero (!zero).
func (ws *weights) first(dest string, since time.Time, zero bool) (time.Time, bool) {
	ws.mu.Lock()
	defer ws.mu.Unlock()
	for _, e := range ws.ev[dest] {
		if !e.at.Before(since) && (e.w == 0) == zero {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// tool is a checker under measurement.
type tool interface {
	Name() string
	// Start launches it on the first n real servers.
	Start(ctx context.Context, n int) error
	Pid() int
	Weights() *weights
	// IpvsadmRuns is how many ipvsadm runs were logged up to t (-1: the
	// tool runs none).
	IpvsadmRuns(t time.Time) int
	// Own is what the tool counts itself (lvsmon; -1: not known).
	Own(ctx context.Context) ownStats
	Stop()
	Log() string
}

// ownStats are lvsmon's own counts.
type ownStats struct {
	probes     int64         // probes run
	firstRound time.Duration // from Apply to every server with a result
	rounds     int64         // reconciler rounds
}

var noStats = ownStats{-1, -1, -1}

// proc is a started child in a process group of its own.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
	err  error
}

func startProc(cmd *exec.Cmd) (*proc, error) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// stop ends the child's process group (the group the bench made for
// it): TERM, then KILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil {
		return
	}
	pgid := p.cmd.Process.Pid
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(grace):
	}
	syscall.Kill(-pgid, syscall.SIGKILL) // forked children that outlived their parent
	<-p.done
}

// --- lvsmon -----------------------------------------------------------

type lvsmonTool struct {
	self     string
	dir      string
	interval time.Duration
	timeout  time.Duration
	fall     int
	perSvc   int
	port     int

	p     *proc
	stdin io.WriteCloser
	ws    *weights
	stats chan string
	ready chan struct{}
}

func (t *lvsmonTool) Name() string              { return "lvsmon" }
func (t *lvsmonTool) Pid() int                  { return t.p.cmd.Process.Pid }
func (t *lvsmonTool) Weights() *weights         { return t.ws }
func (t *lvsmonTool) IpvsadmRuns(time.Time) int { return -1 }

func (t *lvsmonTool) Start(ctx context.Context, n int) error {
	t.ws, t.stats, t.ready = newWeights(), make(chan string, 1), make(chan struct{})
	cmd := exec.Command(t.self, "lvsmon", "-n", strconv.Itoa(n), "-per-service", strconv.Itoa(t.perSvc),
		"-port", strconv.Itoa(t.port), "-interval", t.interval.String(), "-timeout", t.timeout.String(),
		"-fall", strconv.Itoa(t.fall), "-dir", t.dir, "-log", filepath.Join(t.dir, "lvsmon.log"))
	stderr, err := os.Create(filepath.Join(t.dir, "lvsmon.stderr"))
	if err != nil {
		return err
	}
	cmd.Stderr = stderr
	if t.stdin, err = cmd.StdinPipe(); err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if t.p, err = startProc(cmd); err != nil {
		return err
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			line := sc.Text()
			switch {
			case strings.HasPrefix(line, "W "):
				f := strings.Fields(line)
				if len(f) == 4 {
					ns, _ := strconv.ParseInt(f[1], 10, 64)
					w, _ := strconv.Atoi(f[3])
					t.ws.add(f[2], time.Unix(0, ns), w)
				}
			case strings.HasPrefix(line, "stats "):
				select {
				case t.stats <- line:
				default:
				}
			case line == "ready":
				close(t.ready)
			}
		}
	}()
	select {
	case <-t.ready:
		return nil
	case <-t.p.done:
		return fmt.Errorf("lvsmon exited: %s", t.Log())
	case <-time.After(30 * time.Second):
		return errors.New("lvsmon: not ready within 30 s")
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (t *lvsmonTool) Own(ctx context.Context) ownStats {
	if _, err := io.WriteString(t.stdin, "stats\n"); err != nil {
		return noStats
	}
	select {
	case line := <-t.stats:
		var st ownStats
		var first int64
		if _, err := fmt.Sscanf(line, "stats %d %d %d", &st.probes, &first, &st.rounds); err != nil {
			return noStats
		}
		st.firstRound = time.Duration(first)
		return st
	case <-time.After(5 * time.Second):
	case <-ctx.Done():
	}
	return noStats
}

func (t *lvsmonTool) Stop() {
	if t.p == nil {
		return
	}
	t.stdin.Close()
	t.p.stop(5 * time.Second)
}

func (t *lvsmonTool) Log() string {
	b, _ := os.ReadFile(filepath.Join(t.dir, "lvsmon.stderr"))
	return tail(b, 2000)
}

// --- ldirectord -------------------------------------------------------

type ldirectordTool struct {
	bin     string // /usr/sbin/ldirectord
	ipvsadm string // the fake's binary
	dir     string
	fork    bool
	perSvc  int
	port    int
	// interval and timeout are whole seconds: ldirectord takes nothing
	// finer.
	interval, timeout int

	p       *proc
	ws      *weights
	mu      sync.Mutex
	runs    []time.Time // every ipvsadm run, in order
	how     string      // how the fake ipvsadm was put in place
	stopped atomic.Bool
	tailed  chan struct{}
}

func (t *ldirectordTool) Name() string {
	if t.fork {
		return "ldirectord fork=yes"
	}
	return "ldirectord fork=no"
}
func (t *ldirectordTool) Pid() int                     { return t.p.cmd.Process.Pid }
func (t *ldirectordTool) Weights() *weights            { return t.ws }
func (t *ldirectordTool) Own(context.Context) ownStats { return noStats }

func (t *ldirectordTool) IpvsadmRuns(at time.Time) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if at.IsZero() {
		return len(t.runs)
	}
	n, _ := slices.BinarySearchFunc(t.runs, at, func(r, at time.Time) int { return r.Compare(at.Add(1)) })
	return n
}

// ldirectordConfig is the ldirectord.cf of n real servers, perService to
// a virtual service, checked as lvsmon checks them.
func ldirectordConfig(n, perService, port, interval, timeout int, fork bool) string {
	var sb strings.Builder
	forkS := "no"
	if fork {
		forkS = "yes"
	}
	fmt.Fprintf(&sb, "checktimeout=%d\nnegotiatetimeout=%d\ncheckinterval=%d\nfailurecount=1\nautoreload=no\n"+
		"quiescent=yes\nreaddquiescent=no\ncleanstop=no\nsupervised=yes\nfork=%s\n\n", timeout, timeout, interval, forkS)
	for i := 0; i < n; i += perService {
		fmt.Fprintf(&sb, "virtual=%s:80\n", vipAddr(i/perService))
		for j := i; j < min(n, i+perService); j++ {
			fmt.Fprintf(&sb, "\treal=%s:%d masq 1\n", serverAddr(j), port)
		}
		sb.WriteString("\tservice=http\n\tscheduler=wrr\n\tprotocol=tcp\n\tchecktype=negotiate\n" +
			"\trequest=\".health.html\"\n\treceive=\"OK\"\n\n")
	}
	return sb.String()
}

func (t *ldirectordTool) Start(ctx context.Context, n int) error {
	t.ws, t.runs, t.tailed = newWeights(), nil, make(chan struct{})
	t.stopped.Store(false)
	for _, f := range []string{"table", "table.lock", "ipvsadm.log"} {
		os.Remove(filepath.Join(t.dir, f))
	}
	cf := filepath.Join(t.dir, "ldirectord.cf")
	if err := os.WriteFile(cf, []byte(ldirectordConfig(n, t.perSvc, t.port, t.interval, t.timeout, t.fork)), 0o644); err != nil {
		return err
	}
	logf, err := os.Create(filepath.Join(t.dir, "ldirectord.out"))
	if err != nil {
		return err
	}
	defer logf.Close()
	// ldirectord runs /sbin/ipvsadm, found by absolute path, except in
	// debug mode (-d), where ./ipvsadm wins. Debug mode also prints
	// every step of every check, which costs CPU a director would not
	// spend, so the fake goes over /usr/sbin/ipvsadm in a mount namespace
	// of ldirectord's own (as root) and ldirectord runs as in production
	// (supervised=yes keeps it in the foreground); -d is the fallback.
	var cmd *exec.Cmd
	if canUnshare() {
		t.how = "bind-mounted over /usr/sbin/ipvsadm in a private mount namespace, no debug"
		cmd = exec.Command("unshare", "--mount", "--propagation", "private", "sh", "-c",
			`mount --bind "$0" /usr/sbin/ipvsadm && exec "$1" "$2" start`, t.ipvsadm, t.bin, cf)
	} else {
		t.how = "./ipvsadm with ldirectord -d (debug mode: its CPU is overstated)"
		if err := copyFile(t.ipvsadm, filepath.Join(t.dir, "ipvsadm")); err != nil {
			return err
		}
		cmd = exec.Command(t.bin, "-d", cf, "start")
	}
	cmd.Dir = t.dir
	cmd.Env = append(os.Environ(), "FAKE_IPVSADM_DIR="+t.dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if t.p, err = startProc(cmd); err != nil {
		return err
	}
	go t.tail()
	return nil
}

// tail follows the fake ipvsadm's log: every run, and the weights set.
func (t *ldirectordTool) tail() {
	defer close(t.tailed)
	path := filepath.Join(t.dir, "ipvsadm.log")
	var f *os.File
	var pending []byte
	buf := make([]byte, 256<<10)
	for {
		if f == nil {
			f, _ = os.Open(path)
		}
		if f != nil {
			for {
				k, err := f.Read(buf)
				pending = append(pending, buf[:k]...)
				for {
					i := bytes.IndexByte(pending, '\n')
					if i < 0 {
						break
					}
					t.line(string(pending[:i]))
					pending = pending[i+1:]
				}
				if err != nil || k == 0 {
					break
				}
			}
		}
		if t.stopped.Load() {
			if f != nil {
				f.Close()
			}
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (t *ldirectordTool) line(l string) {
	f := strings.Fields(l)
	if len(f) < 2 {
		return
	}
	ns, _ := strconv.ParseInt(f[0], 10, 64)
	at := time.Unix(0, ns)
	t.mu.Lock()
	t.runs = append(t.runs, at)
	t.mu.Unlock()
	if f[1] != "-a" && f[1] != "-e" {
		return // a listing, a service, or a failed run ("!")
	}
	real, w := "", -1
	for i := 2; i+1 < len(f); i++ {
		switch f[i] {
		case "-r":
			real = f[i+1]
		case "-w":
			w, _ = strconv.Atoi(f[i+1])
		}
	}
	if real != "" && w >= 0 {
		t.ws.add(real, at, w)
	}
}

func (t *ldirectordTool) Stop() {
	if t.p == nil {
		return
	}
	t.p.stop(3 * time.Second)
	time.Sleep(20 * time.Millisecond) // the last log lines
	t.stopped.Store(true)
	<-t.tailed
}

func (t *ldirectordTool) Log() string {
	b, _ := os.ReadFile(filepath.Join(t.dir, "ldirectord.out"))
	return tail(b, 2000)
}

var unshareOK = sync.OnceValue(func() bool {
	if os.Geteuid() != 0 {
		return false
	}
	if _, err := os.Stat("/usr/sbin/ipvsadm"); err != nil {
		return false // the mount point: the real one, which ldirectord looks for
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		return false
	}
	return exec.Command("unshare", "--mount", "--propagation", "private", "true").Run() == nil
})

func canUnshare() bool { return unshareOK() }

func copyFile(from, to string) error {
	b, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, b, 0o755)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}
