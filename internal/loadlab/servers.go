// Package loadlab runs the lvsmon binary under load, for the chaos test
// (chaos_test.go, build tag lab) and the soak benchmark (bench/soak):
// loopback real servers in a helper process that can be stopped or made
// to hang, the daemon started with a low open file limit and its JSON log
// followed, samples of its memory, threads and descriptors from /proc,
// and a small reader of /metrics.
//
// The real servers live in a process of their own so that lvsmon's open
// file limit, and whatever the test does to lvsmon, is not theirs: on a
// real director they are other machines.
package loadlab

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Server modes.
const (
	modeUp   = iota // answer: "OK" (http) or accept and close (tcp)
	modeHang        // accept, read the request, never answer (http only)
	modeDown        // no listener: connections are refused
)

// server is one loopback real server in the helper process.
type server struct {
	kind string // "http" or "tcp"
	addr string // host:port, fixed once bound

	mu      sync.Mutex
	mode    int
	ln      net.Listener
	srv     *http.Server
	release chan struct{} // closed when a hang ends
	hits    atomic.Int64
	lastHit atomic.Int64 // unix ns
	maxGap  atomic.Int64 // largest ns between two hits since the last stats
}

func (s *server) hit() {
	now := time.Now().UnixNano()
	s.hits.Add(1)
	if last := s.lastHit.Swap(now); last != 0 {
		gap := now - last
		for {
			old := s.maxGap.Load()
			if gap <= old || s.maxGap.CompareAndSwap(old, gap) {
				break
			}
		}
	}
}

// listen binds the server (again, after a stop) and serves it.
func (s *server) listen() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return err
	}
	s.addr = ln.Addr().String()
	s.ln = ln
	if s.kind == "tcp" {
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				s.hit()
				c.Close()
			}
		}()
		return nil
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.hit()
		s.mu.Lock()
		hang, rel := s.mode == modeHang, s.release
		s.mu.Unlock()
		if hang {
			select {
			case <-rel:
			case <-r.Context().Done():
			}
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		io.WriteString(w, "OK\n")
	}), ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go srv.Serve(ln)
	return nil
}

// stop closes the listener and every connection: connections are
// refused from now on.
func (s *server) stop() {
	if s.srv != nil {
		s.srv.Close()
		s.srv = nil
	} else if s.ln != nil {
		s.ln.Close()
	}
	s.ln = nil
}

// set changes the server's mode.
func (s *server) set(mode int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if mode == s.mode {
		return nil
	}
	if mode == modeHang && s.kind != "http" {
		return fmt.Errorf("%s: only http servers hang", s.addr)
	}
	if s.mode == modeHang {
		close(s.release)
		s.release = make(chan struct{})
	}
	switch {
	case mode == modeDown:
		s.stop()
	case s.mode == modeDown:
		if err := s.listen(); err != nil {
			return err
		}
	}
	s.mode = mode
	return nil
}

// Serve is the helper process's main: it binds one server per spec
// ("http:127.0.1.7" or "tcp:127.0.1.8:8080"; port 0 or none: any), prints
// "addr I HOST:PORT" for each and "ready", then follows commands on in
// until it closes:
//
//	up I | down I | hang I   → "ok I UNIXNANO" (when the change took effect) or "err I why"
//	stats                    → "stats HITS MAXGAPNS" (checks seen by every server, and the
//	                           longest time a server went without one since the last stats)
func Serve(in io.Reader, out io.Writer, specs []string) error {
	w := bufio.NewWriter(out)
	servers := make([]*server, len(specs))
	for i, spec := range specs {
		kind, addr, ok := strings.Cut(spec, ":")
		if !ok || (kind != "http" && kind != "tcp") {
			return fmt.Errorf("bad server spec %q (want http:ADDR or tcp:ADDR)", spec)
		}
		if _, _, err := net.SplitHostPort(addr); err != nil {
			addr = net.JoinHostPort(addr, "0")
		}
		s := &server{kind: kind, addr: addr, release: make(chan struct{})}
		if err := s.listen(); err != nil {
			return err
		}
		servers[i] = s
		fmt.Fprintf(w, "addr %d %s\n", i, s.addr)
	}
	fmt.Fprintln(w, "ready")
	w.Flush()
	sc := bufio.NewScanner(in)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if f[0] == "stats" {
			var hits, gap int64
			now := time.Now().UnixNano()
			for _, s := range servers {
				hits += s.hits.Load()
				g := s.maxGap.Swap(0)
				s.mu.Lock()
				up := s.mode == modeUp
				s.mu.Unlock()
				// A server still waiting for its next check counts too.
				if last := s.lastHit.Load(); up && last != 0 && now-last > g {
					g = now - last
				}
				if up {
					gap = max(gap, g)
				}
			}
			fmt.Fprintf(w, "stats %d %d\n", hits, gap)
			w.Flush()
			continue
		}
		i := -1
		if len(f) == 2 {
			i, _ = strconv.Atoi(f[1])
		}
		if i < 0 || i >= len(servers) {
			fmt.Fprintf(w, "err %s bad command %q\n", strings.Join(f[1:], " "), sc.Text())
			w.Flush()
			continue
		}
		var err error
		switch f[0] {
		case "up":
			err = servers[i].set(modeUp)
		case "down":
			err = servers[i].set(modeDown)
		case "hang":
			err = servers[i].set(modeHang)
		default:
			err = fmt.Errorf("unknown command %q", f[0])
		}
		if err != nil {
			fmt.Fprintf(w, "err %d %v\n", i, err)
		} else {
			fmt.Fprintf(w, "ok %d %d\n", i, time.Now().UnixNano())
		}
		w.Flush()
	}
	return sc.Err()
}

// Servers is the test's handle on a helper process running Serve.
type Servers struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	mu    sync.Mutex // one command at a time
	lines chan string
	Addrs []string // host:port by spec index
	done  chan struct{}
}

// StartServers runs cmd (a program that calls Serve with specs) and waits
// until every server listens. The servers run at a higher CPU priority
// (nice -5, when allowed): they stand for other machines, which a CPU
// hog on the director does not slow.
func StartServers(ctx context.Context, argv []string, env []string) (*Servers, error) {
	if _, err := exec.LookPath("nice"); err == nil {
		argv = append([]string{"nice", "-n", "-5"}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &Servers{cmd: cmd, stdin: stdin, lines: make(chan string, 16), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			s.lines <- sc.Text()
		}
		close(s.lines)
		cmd.Wait()
	}()
	for {
		select {
		case line, ok := <-s.lines:
			if !ok {
				return nil, errors.New("the servers' process exited before it was ready")
			}
			if line == "ready" {
				return s, nil
			}
			f := strings.Fields(line)
			if len(f) == 3 && f[0] == "addr" {
				s.Addrs = append(s.Addrs, f[2])
			}
		case <-ctx.Done():
			s.Close()
			return nil, ctx.Err()
		case <-time.After(time.Minute):
			s.Close()
			return nil, errors.New("the servers' process was not ready within a minute")
		}
	}
}

func (s *Servers) do(line string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := fmt.Fprintln(s.stdin, line); err != nil {
		return "", err
	}
	select {
	case ans, ok := <-s.lines:
		if !ok {
			return "", errors.New("the servers' process exited")
		}
		if strings.HasPrefix(ans, "err ") {
			return "", fmt.Errorf("servers: %s", ans)
		}
		return ans, nil
	case <-time.After(30 * time.Second):
		return "", fmt.Errorf("servers: no answer to %q", line)
	}
}

func (s *Servers) change(cmd string, i int) (time.Time, error) {
	ans, err := s.do(fmt.Sprintf("%s %d", cmd, i))
	if err != nil {
		return time.Time{}, err
	}
	f := strings.Fields(ans)
	if len(f) != 3 {
		return time.Time{}, fmt.Errorf("servers: answer %q", ans)
	}
	ns, err := strconv.ParseInt(f[2], 10, 64)
	return time.Unix(0, ns), err
}

// Down closes server i's listener and connections (refused from then
// on); it returns when that took effect.
func (s *Servers) Down(i int) (time.Time, error) { return s.change("down", i) }

// Hang makes server i accept and read requests but never answer.
func (s *Servers) Hang(i int) (time.Time, error) { return s.change("hang", i) }

// Up makes server i answer again.
func (s *Servers) Up(i int) (time.Time, error) { return s.change("up", i) }

// Stats returns the checks the servers have seen so far and the longest
// time an answering server went without one since the last call.
func (s *Servers) Stats() (hits int64, maxGap time.Duration, err error) {
	ans, err := s.do("stats")
	if err != nil {
		return 0, 0, err
	}
	var g int64
	if _, err := fmt.Sscanf(ans, "stats %d %d", &hits, &g); err != nil {
		return 0, 0, fmt.Errorf("servers: answer %q", ans)
	}
	return hits, time.Duration(g), nil
}

// Close ends the helper (its stdin closes) and waits for it.
func (s *Servers) Close() {
	s.stdin.Close()
	select {
	case <-s.done:
	case <-time.After(5 * time.Second):
		s.cmd.Process.Kill()
		<-s.done
	}
}
