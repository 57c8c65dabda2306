package checker

import (
	"bufio"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/probe"
)

// serveRaw runs handle on every connection to a loopback listener until
// the test ends, and returns the listener's address.
func serveRaw(t *testing.T, handle func(net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
	return ln.Addr().String()
}

// afterRequest reads a request's head, then does f.
func afterRequest(f func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				break
			}
		}
		f(c)
	}
}

// The http check's own failures (its plain path, and net/http's where
// the answer needs it) sort into the classes the guard relies on, as
// the errors net/http's path always gave.
func TestClassifyHTTPCheckFailures(t *testing.T) {
	write := func(s string) func(net.Conn) { return func(c net.Conn) { c.Write([]byte(s)) } }
	stall := func(c net.Conn) { // until the probe gives up
		for buf := make([]byte, 512); ; {
			if _, err := c.Read(buf); err != nil {
				return
			}
		}
	}
	reset := func(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	refused := closed.Addr().String()
	closed.Close()
	tests := []struct {
		name   string
		addr   string
		class  Class
		msgHas string
	}{
		{"refused", refused, ClassRefused, "connection refused"},
		{"no answer", serveRaw(t, stall), ClassTimeout, "no answer within"},
		{"stops in the head", serveRaw(t, afterRequest(func(c net.Conn) { c.Write([]byte("HTTP/1.1 200 OK\r\n")); stall(c) })), ClassTimeout, "read answer"},
		{"stops in the body", serveRaw(t, afterRequest(func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nO"))
			stall(c)
		})), ClassTimeout, "read body"},
		{"hangs up before answering", serveRaw(t, afterRequest(func(net.Conn) {})), ClassReset, "connection closed by the server"},
		{"hangs up in the body", serveRaw(t, afterRequest(write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nO"))), ClassReset, "connection closed by the server"},
		{"hangs up in a chunk", serveRaw(t, afterRequest(write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nO"))), ClassReset, "connection closed by the server"},
		{"resets before answering", serveRaw(t, afterRequest(reset)), ClassReset, "connection reset by peer"},
		{"resets in the body", serveRaw(t, afterRequest(func(c net.Conn) {
			c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nO"))
			time.Sleep(50 * time.Millisecond)
			reset(c)
		})), ClassReset, "connection reset by peer"},
		{"wrong status", serveRaw(t, afterRequest(write("HTTP/1.1 503 Busy\r\nContent-Length: 0\r\n\r\n"))), ClassAnswer, "status 503"},
		{"not HTTP", serveRaw(t, afterRequest(write("SSH-2.0-OpenSSH_9.2p1\r\n"))), ClassAnswer, "malformed HTTP response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg, err := config.Parse("t.yaml", []byte(`ipvs: {backend: fake}
virtual_services:
  - address: 10.0.0.100
    port: 80
    check: {type: http, timeout: 300ms, address: 127.0.0.1, port: `+strings.Split(tc.addr, ":")[1]+`}
    real_servers: [{address: 10.0.1.13}]
`))
			if err != nil {
				t.Fatal(err)
			}
			vs := &cfg.VirtualServices[0]
			c := vs.Check
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
			defer cancel()
			err = probe.ProbeServer(ctx, vs, &vs.Reals[0], c)
			if err == nil || !strings.Contains(err.Error(), tc.msgHas) {
				t.Fatalf("ProbeServer = %v, want an error saying %q", err, tc.msgHas)
			}
			if class, _ := classify(err, 0, c.Timeout.D()); class != tc.class {
				t.Fatalf("classify(%v) = %s, want %s", err, class, tc.class)
			}
		})
	}
}
