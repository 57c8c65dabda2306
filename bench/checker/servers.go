package main

// The real servers: one process of their own ("checker servers"), so
// their CPU is never counted against a checker. Server i listens on
// serverAddr(i):port, a distinct 127.x.y.z address each, so that fresh
// connections at thousands per second never run one source/destination
// pair out of ephemeral ports. Each answers GET /.health.html with "OK"
// unless the control endpoint has made it fail (503) or a tarpit (accepts
// and never answers), and counts the checks it sees, with the time of
// the first and last one and the longest gap between two, so the period
// at which each server is checked is measured the same way for every
// checker.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Server modes.
const (
	modeOK     = 0
	modeFail   = 1
	modeTarpit = 2
)

var modeNames = map[string]int32{"ok": modeOK, "fail": modeFail, "tarpit": modeTarpit}

// serverAddr is real server i's address: 127.20.0.1, 127.20.0.2, ...,
// 250 to a /24.
func serverAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{127, 20, byte(i / 250), byte(i%250 + 1)})
}

// realServer is one server's mode and what it has seen since the last
// reset. Times are unix nanoseconds, 0 for none.
type realServer struct {
	mode   atomic.Int32
	checks atomic.Int64 // answered requests and tarpit accepts
	first  atomic.Int64
	last   atomic.Int64
	maxGap atomic.Int64
}

func (s *realServer) seen(now int64) {
	s.checks.Add(1)
	s.first.CompareAndSwap(0, now)
	if prev := s.last.Swap(now); prev != 0 {
		gap := now - prev
		for {
			m := s.maxGap.Load()
			if gap <= m || s.maxGap.CompareAndSwap(m, gap) {
				break
			}
		}
	}
}

func (s *realServer) reset() {
	s.checks.Store(0)
	s.first.Store(0)
	s.last.Store(0)
	s.maxGap.Store(0)
}

var (
	respOK   = []byte("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 2\r\nConnection: close\r\n\r\nOK")
	respFail = []byte("HTTP/1.1 503 Service Unavailable\r\nContent-Type: text/html\r\nContent-Length: 4\r\nConnection: close\r\n\r\nDOWN")
)

// serveConn answers one connection: a minimal HTTP/1.1 server (the
// request head is read in full, one fixed answer, then close), cheap
// enough that the servers are never what limits a checker.
func serveConn(c net.Conn, s *realServer) {
	defer c.Close()
	if s.mode.Load() == modeTarpit {
		s.seen(time.Now().UnixNano())
		// Accept and never answer: hold the connection until the client
		// gives up and closes it.
		c.SetReadDeadline(time.Now().Add(10 * time.Minute))
		io.Copy(io.Discard, c)
		return
	}
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	var buf [4096]byte
	n := 0
	for {
		m, err := c.Read(buf[n:])
		n += m
		if bytes.Contains(buf[:n], []byte("\r\n\r\n")) {
			break
		}
		if err != nil || n == len(buf) {
			return
		}
	}
	resp := respOK
	if s.mode.Load() == modeFail {
		resp = respFail
	}
	s.seen(time.Now().UnixNano())
	c.Write(resp)
}

// serversStats is what /stats returns: per server, in index order.
type serversStats struct {
	Now    int64   `json:"now"`
	Checks []int64 `json:"checks"`
	First  []int64 `json:"first"`
	Last   []int64 `json:"last"`
	MaxGap []int64 `json:"max_gap"`
}

// runServers is the "servers" mode: n real servers and the control
// endpoint, whose address it prints as "control ADDR".
func runServers(args []string) error {
	fs := flag.NewFlagSet("servers", flag.ContinueOnError)
	n := fs.Int("n", 100, "real servers")
	port := fs.Int("port", 28080, "port every real server listens on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	servers := make([]realServer, *n)
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	for i := range servers {
		ln, err := net.Listen("tcp", netip.AddrPortFrom(serverAddr(i), uint16(*port)).String())
		if err != nil {
			return fmt.Errorf("real server %d: %w", i, err)
		}
		lns = append(lns, ln)
		s := &servers[i]
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					if errors.Is(err, net.ErrClosed) {
						return
					}
					time.Sleep(10 * time.Millisecond) // EMFILE and the like
					continue
				}
				go serveConn(c, s)
			}
		}()
	}

	mux := http.NewServeMux()
	// /mode?mode=ok|fail|tarpit&ids=1,2,3 (or ids=all)
	mux.HandleFunc("/mode", func(w http.ResponseWriter, r *http.Request) {
		m, ok := modeNames[r.FormValue("mode")]
		if !ok {
			http.Error(w, "mode: ok, fail or tarpit", http.StatusBadRequest)
			return
		}
		ids := r.FormValue("ids")
		if ids == "all" {
			for i := range servers {
				servers[i].mode.Store(m)
			}
			return
		}
		for f := range strings.SplitSeq(ids, ",") {
			i, err := strconv.Atoi(f)
			if err != nil || i < 0 || i >= len(servers) {
				http.Error(w, "bad id "+strconv.Quote(f), http.StatusBadRequest)
				return
			}
			servers[i].mode.Store(m)
		}
	})
	mux.HandleFunc("/reset", func(w http.ResponseWriter, r *http.Request) {
		for i := range servers {
			servers[i].reset()
		}
	})
	// /seen?n=N: how many of the first N servers were checked since the
	// reset, and when the last of them was first checked.
	mux.HandleFunc("/seen", func(w http.ResponseWriter, r *http.Request) {
		k, _ := strconv.Atoi(r.FormValue("n"))
		k = min(max(k, 0), len(servers))
		seen, latest := 0, int64(0)
		for i := range k {
			if f := servers[i].first.Load(); f != 0 {
				seen++
				latest = max(latest, f)
			}
		}
		fmt.Fprintf(w, "%d %d\n", seen, latest)
	})
	mux.HandleFunc("/stats", func(w http.ResponseWriter, r *http.Request) {
		k, _ := strconv.Atoi(r.FormValue("n"))
		k = min(max(k, 0), len(servers))
		st := serversStats{Now: time.Now().UnixNano(), Checks: make([]int64, k), First: make([]int64, k),
			Last: make([]int64, k), MaxGap: make([]int64, k)}
		for i := range k {
			s := &servers[i]
			st.Checks[i], st.First[i], st.Last[i], st.MaxGap[i] = s.checks.Load(), s.first.Load(), s.last.Load(), s.maxGap.Load()
		}
		json.NewEncoder(w).Encode(st)
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		srv.Close()
	}()
	out := bufio.NewWriter(os.Stdout)
	fmt.Fprintf(out, "control %s\n", ln.Addr())
	out.Flush()
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// serversClient drives the servers process from the bench.
type serversClient struct {
	base string
	hc   *http.Client
}

func (c *serversClient) get(ctx context.Context, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", c.base+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("servers %s: %s: %s", path, resp.Status, bytes.TrimSpace(b))
	}
	return b, nil
}

func (c *serversClient) setMode(ctx context.Context, mode string, ids []int) error {
	if len(ids) == 0 {
		return nil
	}
	var sb strings.Builder
	for i, id := range ids {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(strconv.Itoa(id))
	}
	_, err := c.get(ctx, "/mode?mode="+mode+"&ids="+sb.String())
	return err
}

func (c *serversClient) allOK(ctx context.Context) error {
	_, err := c.get(ctx, "/mode?mode=ok&ids=all")
	return err
}

func (c *serversClient) reset(ctx context.Context) error {
	_, err := c.get(ctx, "/reset")
	return err
}

// seen is how many of the first n servers were checked since the reset
// and when the last of them was first checked.
func (c *serversClient) seen(ctx context.Context, n int) (int, time.Time, error) {
	b, err := c.get(ctx, "/seen?n="+strconv.Itoa(n))
	if err != nil {
		return 0, time.Time{}, err
	}
	var k int
	var ns int64
	if _, err := fmt.Sscan(string(b), &k, &ns); err != nil {
		return 0, time.Time{}, err
	}
	return k, time.Unix(0, ns), nil
}

func (c *serversClient) stats(ctx context.Context, n int) (*serversStats, error) {
	b, err := c.get(ctx, "/stats?n="+strconv.Itoa(n))
	if err != nil {
		return nil, err
	}
	var st serversStats
	return &st, json.Unmarshal(b, &st)
}
