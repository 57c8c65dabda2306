package main

// The floor ("checker bare"): the least a Go checker can do on lvsmon's
// schedule — one goroutine per server, a jittered start, every interval
// a fresh connection, a fixed GET, the answer read to the end, close —
// with no HTTP parsing, no health state and no reconciler. Its CPU is
// what the kernel (a loopback connection's handshake and teardown are
// processed for both ends in the connecting process's context) and the
// Go runtime cost on this machine, whatever the checker's code.

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"runtime/pprof"
	"strconv"
	"sync"
	"syscall"
	"time"
)

func runBare(args []string) error {
	fs := flag.NewFlagSet("bare", flag.ContinueOnError)
	n := fs.Int("n", 100, "real servers")
	port := fs.Int("port", 28080, "real servers' port")
	interval := fs.Duration("interval", time.Second, "check interval")
	timeout := fs.Duration("timeout", time.Second, "check timeout")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of the whole run here")
	if err := fs.Parse(args); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	req := []byte("GET /.health.html HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n")
	var wg sync.WaitGroup
	for i := range *n {
		addr := netip.AddrPortFrom(serverAddr(i), uint16(*port)).String()
		wg.Go(func() {
			t := time.NewTimer(time.Duration(rand.Int64N(int64(*interval))))
			defer t.Stop()
			buf := make([]byte, 512)
			var d net.Dialer
			for {
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
				start := time.Now()
				if c, err := d.DialContext(ctx, "tcp", addr); err == nil {
					c.SetDeadline(start.Add(*timeout))
					if _, err := c.Write(req); err == nil {
						for {
							if _, err := c.Read(buf); err != nil {
								break
							}
						}
					}
					c.Close()
				}
				t.Reset(max(0, *interval-time.Since(start)))
			}
		})
	}
	fmt.Println("ready")
	<-ctx.Done()
	wg.Wait()
	return nil
}

// bareTool runs the floor in a child process.
type bareTool struct {
	self              string
	port              int
	interval, timeout time.Duration
	p                 *proc
	ws                *weights
}

func (t *bareTool) Name() string                 { return "bare Go loop" }
func (t *bareTool) Pid() int                     { return t.p.cmd.Process.Pid }
func (t *bareTool) Weights() *weights            { return t.ws }
func (t *bareTool) IpvsadmRuns(time.Time) int    { return -1 }
func (t *bareTool) Own(context.Context) ownStats { return noStats }
func (t *bareTool) Log() string                  { return "" }
func (t *bareTool) Stop()                        { t.p.stop(5 * time.Second) }

func (t *bareTool) Start(ctx context.Context, n int) error {
	t.ws = newWeights()
	cmd := exec.Command(t.self, "bare", "-n", strconv.Itoa(n), "-port", strconv.Itoa(t.port),
		"-interval", t.interval.String(), "-timeout", t.timeout.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if t.p, err = startProc(cmd); err != nil {
		return err
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if !bytes.Equal([]byte(line), []byte("ready\n")) {
		return fmt.Errorf("bare loop did not start: %q", line)
	}
	go io.Copy(io.Discard, out)
	return nil
}

// measureFloor runs the bare loop at n servers for one window.
func measureFloor(ctx context.Context, srv *serversClient, t tool, n int, o opts) *result {
	r := &result{tool: t.Name(), n: n, firstRoundIn: -1, ipvsadmFirst: -1}
	if err := srv.allOK(ctx); err != nil {
		r.err = err
		return r
	}
	err := t.Start(ctx, n)
	defer t.Stop()
	if err != nil {
		r.err = err
		return r
	}
	if err := sleep(ctx, o.interval+o.timeout); err != nil {
		r.err = err
		return r
	}
	r.healthy = window(ctx, srv, t, n, o)
	r.err = r.healthy.err
	return r
}
