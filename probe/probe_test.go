package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// The probes' tests run real servers on the loopback (or in network
// namespaces they create): a probe is only as good as its behaviour
// against what servers really do, including the broken ones.

// parseCheck loads a one-service config whose check is the YAML flow
// mapping check, so tests go through validation and defaults as a
// director's config does. proto is the service's protocol.
func parseCheck(t testing.TB, proto, check string) *config.Check {
	t.Helper()
	y := fmt.Sprintf("ipvs: {backend: fake}\nvirtual_services:\n  - protocol: %s\n    address: 10.0.0.100\n    port: 80\n    check: %s\n    real_servers: [{address: 10.0.1.13}]\n", proto, check)
	cfg, err := config.Parse("probe_test.yaml", []byte(y))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	return cfg.VirtualServices[0].Check
}

// targetAt is a Target connecting to addr ("127.0.0.1:8080") for a TCP
// service 10.0.0.100:80 whose real server is 10.0.1.13:80.
func targetAt(t testing.TB, addr string) Target {
	return targetFor(t, lvs.TCP, addr)
}

func targetFor(t testing.TB, proto lvs.Protocol, addr string) Target {
	t.Helper()
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	return Target{
		Service: lvs.AddrKey(proto, netip.MustParseAddr("10.0.0.100"), 80),
		Addr:    ap.Addr().Unmap(),
		Port:    ap.Port(),
		Server:  lvs.DestKey{Addr: netip.MustParseAddr("10.0.1.13"), Port: 80},
	}
}

// runBounded runs one probe attempt under the check's timeout, as
// RunCheck does, and fails the test if the probe outlives its deadline
// by more than a generous margin: returning at the timeout whatever the
// server does is part of every probe's contract.
func runBounded(t testing.TB, p Probe, tg Target, c *config.Check) error {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- p(ctx, tg, c) }()
	select {
	case err := <-done:
		return err
	case <-time.After(c.Timeout.D() + 2*time.Second):
		t.Fatalf("probe still running %s after its %s timeout", 2*time.Second, c.Timeout.D())
		return nil
	}
}

// wantErr checks a probe's error against want: "" means healthy, else
// each "|"-separated part must appear in the message.
func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unhealthy: %v", err)
		}
		return
	}
	if err == nil {
		t.Fatalf("healthy, want an error containing %q", want)
	}
	for part := range strings.SplitSeq(want, "|") {
		if !strings.Contains(err.Error(), part) {
			t.Fatalf("error %q does not contain %q", err, part)
		}
	}
}

// tcpServer is a loopback TCP server running handle on every
// connection; everything it opened is closed when the test ends.
type tcpServer struct {
	ln    net.Listener
	wg    sync.WaitGroup
	mu    sync.Mutex
	conns map[net.Conn]bool
	n     atomic.Int64 // connections accepted
}

// serveTCP starts a server on host ("127.0.0.1" or "::1").
func serveTCP(t testing.TB, host string, handle func(net.Conn)) *tcpServer {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	s := &tcpServer{ln: ln, conns: map[net.Conn]bool{}}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.n.Add(1)
			s.mu.Lock()
			s.conns[c] = true
			s.mu.Unlock()
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				handle(c)
				s.mu.Lock()
				delete(s.conns, c)
				s.mu.Unlock()
				c.Close()
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			c.Close()
		}
		s.mu.Unlock()
		s.wg.Wait()
	})
	return s
}

func (s *tcpServer) addr() string { return s.ln.Addr().String() }

// tarpitHandler accepts and never answers: it waits for the client to
// go away (or the test to end, which closes the connection).
func tarpitHandler(c net.Conn) {
	buf := make([]byte, 4096)
	for {
		if _, err := c.Read(buf); err != nil {
			return
		}
	}
}

// resetHandler reads what the client sends, then closes with SO_LINGER
// 0, which sends a RST instead of a FIN.
func resetHandler(c net.Conn) {
	buf := make([]byte, 1)
	c.Read(buf)
	c.(*net.TCPConn).SetLinger(0)
}

// bannerHandler sends banner, then reads lines until the client leaves.
func bannerHandler(banner string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write([]byte(banner)); err != nil {
			return
		}
		tarpitHandler(c)
	}
}

// closedPort is a loopback port with nothing listening.
func closedPort(t testing.TB, network string) string {
	t.Helper()
	host := "127.0.0.1"
	if strings.HasSuffix(network, "6") {
		host = "::1"
	}
	switch {
	case strings.HasPrefix(network, "udp"):
		c, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.LocalAddr().String()
	default:
		ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		return ln.Addr().String()
	}
}

func TestProbesCoverCheckTypes(t *testing.T) {
	got := slices.Sorted(maps.Keys(probes))
	want := config.CheckTypes()
	if !slices.Equal(got, want) {
		t.Fatalf("probes has %v, config.CheckTypes %v", got, want)
	}
	keys := config.CheckKeys()
	for _, typ := range want {
		if _, ok := keys[typ]; !ok {
			t.Errorf("config.CheckKeys lacks %s", typ)
		}
	}
}

// Every key a check type registers is a key of config.Check, and none of
// the keys every type has: a typo in a registration would make config
// refuse a key no check could then be given.
func TestRegisteredKeysAreCheckKeys(t *testing.T) {
	fields := map[string]bool{}
	ct := reflect.TypeFor[config.Check]()
	for i := range ct.NumField() {
		if tag, _, _ := strings.Cut(ct.Field(i).Tag.Get("yaml"), ","); tag != "" && tag != "-" {
			fields[tag] = true
		}
	}
	common := []string{"type", "interval", "timeout", "rise", "fall", "retries", "address", "port"}
	for typ, keys := range config.CheckKeys() {
		for _, k := range keys {
			if !fields[k] || slices.Contains(common, k) {
				t.Errorf("check type %s registers key %q, which is not a type-specific key of config.Check", typ, k)
			}
		}
	}
}

func TestProbeNoneIsAlwaysUp(t *testing.T) {
	c := parseCheck(t, "tcp", "{type: none}")
	// Even with nothing listening anywhere.
	wantErr(t, runBounded(t, Lookup("none"), targetAt(t, closedPort(t, "tcp")), c), "")
}

// flakyServer answers "no" to its first bad connections, then "yes".
func flakyServer(t *testing.T, bad int64) *tcpServer {
	var seen atomic.Int64
	return serveTCP(t, "127.0.0.1", func(c net.Conn) {
		if seen.Add(1) <= bad {
			c.Write([]byte("no\n"))
		} else {
			c.Write([]byte("yes\n"))
		}
	})
}

func TestRunCheckRetries(t *testing.T) {
	tests := []struct {
		name     string
		retries  int
		bad      int64
		ok       bool
		attempts int
	}{
		{"healthy at once", 0, 0, true, 1},
		{"no retries, one failure", 0, 1, false, 1},
		{"second attempt passes", 2, 1, true, 2},
		{"third attempt passes", 2, 2, true, 3},
		{"retries used up", 1, 2, false, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := flakyServer(t, tc.bad)
			c := parseCheck(t, "tcp", fmt.Sprintf("{type: simpletcp, expect: '^yes', timeout: 5s, retries: %d}", tc.retries))
			res := RunCheck(context.Background(), targetAt(t, s.addr()), c)
			if res.OK != tc.ok || res.Attempts != tc.attempts {
				t.Fatalf("RunCheck = %+v, want ok %v after %d attempts", res, tc.ok, tc.attempts)
			}
			if s.n.Load() != int64(tc.attempts) {
				t.Errorf("server saw %d connections, want one per attempt (%d)", s.n.Load(), tc.attempts)
			}
			if !tc.ok && !strings.Contains(res.Msg, `does not match "^yes"`) {
				t.Errorf("Msg = %q", res.Msg)
			}
			if tc.ok && res.Msg != "" {
				t.Errorf("Msg = %q on success", res.Msg)
			}
			if res.Time.IsZero() || res.Duration <= 0 {
				t.Errorf("no time or duration: %+v", res)
			}
		})
	}
}

// Each attempt has the whole timeout: three attempts at a tarpit take at
// least three timeouts (a deadline never fires early, so the lower
// bound is exact; the upper one is runBounded's kind of margin).
func TestRunCheckEachAttemptGetsTheTimeout(t *testing.T) {
	s := serveTCP(t, "127.0.0.1", tarpitHandler)
	c := parseCheck(t, "tcp", "{type: simpletcp, expect: x, timeout: 150ms, retries: 2}")
	res := RunCheck(context.Background(), targetAt(t, s.addr()), c)
	if res.OK || res.Attempts != 3 || !strings.Contains(res.Msg, "no answer within 150ms") {
		t.Fatalf("RunCheck = %+v", res)
	}
	if res.Duration < 3*150*time.Millisecond || res.Duration > 3*150*time.Millisecond+3*time.Second {
		t.Errorf("took %s for 3 attempts of 150ms", res.Duration)
	}
}

func TestRunCheckStopsWhenCanceled(t *testing.T) {
	s := serveTCP(t, "127.0.0.1", tarpitHandler)
	c := parseCheck(t, "tcp", "{type: tcp, retries: 5}")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	res := RunCheck(ctx, targetAt(t, s.addr()), c)
	if res.OK || res.Attempts != 1 || !strings.Contains(res.Msg, "canceled") {
		t.Fatalf("RunCheck = %+v, want one canceled attempt", res)
	}
}

func TestRunCheckUnknownType(t *testing.T) {
	res := RunCheck(context.Background(), Target{}, &config.Check{Type: "gopher"})
	if res.OK || !strings.Contains(res.Msg, `unknown check type "gopher"`) {
		t.Fatalf("RunCheck = %+v", res)
	}
}

func TestTargetOfAndProbeServer(t *testing.T) {
	s := serveTCP(t, "127.0.0.1", func(net.Conn) {})
	_, port, _ := net.SplitHostPort(s.addr())
	cfg, err := config.Parse("t.yaml", []byte(`ipvs: {backend: fake}
virtual_services:
  - address: 10.0.0.100
    port: 80
    check: {type: tcp, address: 127.0.0.1, port: `+port+`}
    real_servers: [{address: 10.0.1.13}]
  - address: 10.0.0.101
    port: 80
    real_servers: [{address: 10.0.1.14}]
`))
	if err != nil {
		t.Fatal(err)
	}
	vs, r := &cfg.VirtualServices[0], &cfg.VirtualServices[0].Reals[0]
	tg := TargetOf(vs, r, vs.Check)
	if tg.String() != s.addr() || tg.Server != r.Key || tg.Service != vs.Key {
		t.Fatalf("TargetOf = %+v", tg)
	}
	if err := ProbeServer(context.Background(), vs, r, vs.Check); err != nil {
		t.Fatalf("ProbeServer through the override: %v", err)
	}
	// Without a check a server is up, and nothing is dialled.
	if err := ProbeServer(context.Background(), &cfg.VirtualServices[1], &cfg.VirtualServices[1].Reals[0], cfg.VirtualServices[1].Check); err != nil {
		t.Fatalf("ProbeServer without a check: %v", err)
	}
	// Without overrides the real server itself is the target.
	plain := *vs
	plain.Check = &config.Check{Type: "tcp"}
	if got := TargetOf(&plain, r, plain.Check); got.AddrPort() != netip.MustParseAddrPort("10.0.1.13:80") {
		t.Fatalf("TargetOf without override = %s", got)
	}
}

func TestCapReader(t *testing.T) {
	r := newCapReader(strings.NewReader(strings.Repeat("x", 100)), 10, "answer")
	b := bufio.NewReader(r)
	var n int
	var err error
	for err == nil {
		_, err = b.ReadByte()
		if err == nil {
			n++
		}
	}
	var tl errTooLong
	if n != 10 || !errors.As(err, &tl) || err.Error() != "answer longer than 10 bytes" {
		t.Fatalf("read %d bytes, then %v", n, err)
	}
}
