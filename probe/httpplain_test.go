package probe

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// newPlainScratch is a plain check's scratch with its request written,
// or nil when the check does not take the plain path.
func newPlainScratch(t Target, c *config.Check) *plainScratch {
	head, ok := plainCheck(t, c)
	if !ok {
		return nil
	}
	s := plainPool.Get().(*plainScratch)
	s.request(t, c, head)
	return s
}

// readRequest reads a request's head, as a server does before answering.
func readRequest(c net.Conn) bool {
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return false
		}
		if line == "\r\n" {
			return true
		}
	}
}

// answerWith is a server that reads the request, writes the parts of
// answer one after the other (pausing between them), then does after.
func answerWith(pause time.Duration, after func(net.Conn), answer ...string) func(net.Conn) {
	return func(c net.Conn) {
		if !readRequest(c) {
			return
		}
		for i, part := range answer {
			if i > 0 {
				time.Sleep(pause)
			}
			if _, err := c.Write([]byte(part)); err != nil {
				return
			}
		}
		if after != nil {
			after(c)
		}
	}
}

// hangUp closes at once (the handler's return closes the connection).
func hangUp(net.Conn) {}

// reset closes with a RST.
func reset(c net.Conn) { c.(*net.TCPConn).SetLinger(0) }

// byteByByte sends s one byte at a time.
func byteByByte(s string) []string { return strings.Split(s, "") }

// TestPlainHTTP runs the plain path and net/http's against the same
// servers, good and broken: the verdicts are the same, to the letter
// and in the errors the checker classifies, and they are what an
// operator should read.
func TestPlainHTTP(t *testing.T) {
	web := httptest.NewServer(healthHandler())
	t.Cleanup(web.Close)
	chunked := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "all ")
		w.(http.Flusher).Flush() // from here the body is chunked
		fmt.Fprint(w, strings.Repeat("good ", 10))
	}))
	t.Cleanup(chunked.Close)
	bigHeader := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Padding", strings.Repeat("x", 3*plainBufSize))
		fmt.Fprint(w, "all good")
	}))
	t.Cleanup(bigHeader.Close)
	ok := "HTTP/1.1 200 OK\r\nContent-Length: 9\r\nConnection: close\r\n\r\nall good\n"

	tests := []struct {
		name   string
		handle func(net.Conn) // nil: the server at url
		url    string
		check  string
		want   string
	}{
		{"healthy", nil, web.URL, "{type: http, expect: 'all go+d'}", ""},
		{"HEAD", nil, web.URL, "{type: http, method: HEAD, path: /huge-length}", ""},
		{"server error", nil, web.URL, "{type: http, path: /503, expect: OK}", "http: status 503, want 200-299"},
		{"body does not match", nil, web.URL, "{type: http, path: /503, status: 503, expect: '^OK$'}", `http: body does not match "^OK$" (it starts "Service Unavailable\n")`},
		{"announced body over max_body", nil, web.URL, "{type: http, path: /huge-length}", "http: body of 104857600 bytes is longer than max_body (1 MiB)"},
		{"chunked body", nil, chunked.URL, "{type: http, expect: '^all (good )+$'}", ""},
		{"chunked body over max_body", nil, chunked.URL, "{type: http, max_body: 20}", "http: body longer than max_body (20 bytes)"},
		{"chunked 100 MB", nil, web.URL, "{type: http, path: /huge, expect: x}", "http: body longer than max_body (1 MiB)"},
		{"head longer than the buffer", nil, bigHeader.URL, "{type: http, expect: 'all good'}", ""},
		{"headers without end", endlessHeaders, "", "{type: http}", "http: read answer from 127.0.0.1:|: answer longer than 1152 KiB"},
		{"not HTTP", bannerHandler("SSH-2.0-OpenSSH_9.2p1\r\n"), "", "{type: http}", `http: read answer from 127.0.0.1:|malformed HTTP response "SSH-2.0-OpenSSH_9.2p1"`},
		{"malformed status", answerWith(0, hangUp, "HTTP/1.1 2OO OK\r\n\r\n"), "", "{type: http}", `malformed HTTP status code "2OO"`},
		{"malformed header", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\n"), "", "{type: http}", `malformed MIME header line`},
		{"two lengths", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nOK"), "", "{type: http}", "multiple Content-Length headers"},
		{"bad length", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n"), "", "{type: http}", `bad Content-Length "-1"`},
		{"unknown transfer encoding", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), "", "{type: http}", `unsupported transfer encoding: "gzip"`},
		{"bare LF lines", answerWith(0, hangUp, "HTTP/1.1 200 OK\nContent-Length: 2\n\nOK"), "", "{type: http, expect: '^OK$'}", ""},
		{"folded header", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nX-A: a\r\n b\r\nContent-Length: 2\r\n\r\nOK"), "", "{type: http, expect: '^OK$'}", ""},
		{"HTTP/1.0, body to the close", answerWith(0, hangUp, "HTTP/1.0 200 OK\r\n\r\nall good"), "", "{type: http, expect: 'good$'}", ""},
		{"no content", answerWith(0, hangUp, "HTTP/1.1 204 No Content\r\n\r\n"), "", "{type: http, status: 204}", ""},
		{"interim answer", answerWith(0, hangUp, "HTTP/1.1 100 Continue\r\n\r\n", ok), "", "{type: http}", "http: status 100, want 200-299"},
		{"slow answer", answerWith(time.Millisecond, hangUp, byteByByte(ok)...), "", "{type: http, expect: 'all good'}", ""},
		{"slow chunks", answerWith(20*time.Millisecond, hangUp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", "4\r\nall \r\n", "4\r\ngood\r\n", "0\r\n\r\n"), "", "{type: http, expect: '^all good$'}", ""},
		{"answer stops in the head", answerWith(0, tarpitHandler, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"), "", "{type: http, timeout: 300ms}", "http: read answer from 127.0.0.1:|: no answer within 300ms"},
		{"answer stops in the body", answerWith(0, tarpitHandler, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall"), "", "{type: http, timeout: 300ms}", "http: read body from 127.0.0.1:|: no answer within 300ms"},
		{"hangs up in the status line", answerWith(0, hangUp, "HTTP/1.1 2"), "", "{type: http}", `malformed HTTP status code "2"`},
		{"hangs up in the head", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n"), "", "{type: http}", "http: read answer from 127.0.0.1:|: connection closed by the server"},
		{"hangs up in a header line", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nContent-Len"), "", "{type: http}", `malformed MIME header: missing colon: "Content-Len"`},
		{"bad header, then nothing", answerWith(0, tarpitHandler, "HTTP/1.1 200 OK\r\nBad Name: x\r\n"), "", "{type: http, timeout: 300ms}", "no answer within 300ms"}, // net/http waits for a folded line
		{"hangs up in the body", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall"), "", "{type: http}", "http: read body from 127.0.0.1:|: connection closed by the server"},
		{"hangs up in a chunk", answerWith(0, hangUp, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nall"), "", "{type: http}", "http: read body from 127.0.0.1:|: connection closed by the server"},
		{"hangs up before answering", closeHandler, "", "{type: http}", "http: read answer from 127.0.0.1:|: connection closed by the server"},
		{"resets in the body", answerWith(50*time.Millisecond, reset, "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nall"), "", "{type: http}", "http: read body from 127.0.0.1:|: connection reset by peer"},
		{"resets before answering", resetHandler, "", "{type: http}", "http: |connection reset by peer"},
		{"tarpit", tarpitHandler, "", "{type: http, timeout: 300ms}", "http: read answer from 127.0.0.1:|: no answer within 300ms"},
		{"nothing listening", nil, "http://" + closedPort(t, "tcp"), "{type: http}", "http: connect 127.0.0.1:|: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := strings.TrimPrefix(tc.url, "http://")
			if tc.handle != nil {
				addr = serveTCP(t, "127.0.0.1", tc.handle).addr()
			}
			c := parseCheck(t, "tcp", tc.check)
			tg := targetAt(t, addr)
			if newPlainScratch(tg, c) == nil {
				t.Fatal("the check does not take the plain path")
			}
			plain := runBounded(t, probeHTTP, tg, c)
			wantErr(t, plain, tc.want)
			std := runBounded(t, func(ctx context.Context, t Target, c *config.Check) error { return stdHTTP(ctx, t, c, "http") }, tg, c)
			sameVerdict(t, plain, std)
		})
	}
}

// Checks the plain path cannot make exactly as net/http does are made by
// net/http.
func TestPlainRequestLeavesTheRest(t *testing.T) {
	tg := targetAt(t, "127.0.0.1:8080")
	for _, check := range []string{
		"{type: http, path: '/a%20b'}",
		"{type: http, path: '/caf\u00e9'}",
		"{type: http, host: 'caf\u00e9.example'}",
		"{type: https}",
	} {
		c := parseCheck(t, "tcp", check)
		if c.Type == "http" && newPlainScratch(tg, c) != nil {
			t.Errorf("%s takes the plain path", check)
		}
	}
	for _, check := range []string{"{type: http}", "{type: http, method: HEAD, path: '/x?a=1&b=2', host: 'www.example.org:8080'}"} {
		if newPlainScratch(tg, parseCheck(t, "tcp", check)) == nil {
			t.Errorf("%s does not take the plain path", check)
		}
	}
}

// The heads real servers send are judged by the plain path itself, not
// handed to net/http; odd ones are handed over.
func TestParsePlainHead(t *testing.T) {
	tests := []struct {
		head string
		ok   bool
		want plainHead
	}{
		{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nConnection: close\r\n\r\n", true, plainHead{200, 3, true}},
		{"HTTP/1.1 200 OK\r\nServer: nginx/1.22.1\r\nContent-Type: text/html\r\nContent-Length: 2\r\nLast-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\nConnection: close\r\nETag: \"659200c0-2\"\r\nAccept-Ranges: bytes\r\n\r\n", true, plainHead{200, 2, true}},
		{"HTTP/1.1 503 Service Unavailable\r\ncontent-length: 0\r\n\r\n", true, plainHead{503, 0, false}},
		{"HTTP/1.0 200 OK\r\n\r\n", true, plainHead{200, -1, true}},
		{"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n\r\n", true, plainHead{200, -1, false}},
		{"HTTP/1.1 204\r\nX-Empty:\r\n\r\n", true, plainHead{204, -1, false}},
		{"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", false, plainHead{}},
		{"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\n", false, plainHead{}},
		{"HTTP/1.1 200 OK\r\nA: b\r\n c\r\n\r\n", false, plainHead{}},
		{"HTTP/1.1 200 OK\nA: b\r\n\r\n", false, plainHead{}},
		{"HTTP/1.1  200 OK\r\n\r\n", false, plainHead{}},
		{"HTTP/2 200\r\n\r\n", false, plainHead{}},
	}
	for _, tc := range tests {
		h, ok := parsePlainHead([]byte(tc.head))
		if ok != tc.ok || ok && h != tc.want {
			t.Errorf("parsePlainHead(%q) = %+v, %v; want %+v, %v", tc.head, h, ok, tc.want, tc.ok)
		}
	}
}

// A failing check whose server keeps the connection open gets the rest
// of the announced body read before the close, as net/http's does: the
// server sees a FIN, not a reset.
func TestPlainHTTPReadsTheRestBeforeClosing(t *testing.T) {
	got := make(chan error, 1)
	body := strings.Repeat("x", 3*plainBufSize)
	s := serveTCP(t, "127.0.0.1", func(c net.Conn) {
		if !readRequest(c) {
			return
		}
		fmt.Fprintf(c, "HTTP/1.1 503 Busy\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
		_, err := c.Read(make([]byte, 1)) // the client's close
		got <- err
	})
	c := parseCheck(t, "tcp", "{type: http}")
	wantErr(t, runBounded(t, probeHTTP, targetAt(t, s.addr()), c), "http: status 503, want 200-299")
	select {
	case err := <-got:
		if err == nil || strings.Contains(err.Error(), "reset") {
			t.Fatalf("server saw %v, want EOF", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the server saw no close")
	}
}

// benchServerEnv makes the test binary a bare HTTP server (for
// BenchmarkHTTPCheck): in its own process, its allocations are not
// counted against the checks.
const benchServerEnv = "LVSMON_PROBE_BENCH_SERVER"

func TestMain(m *testing.M) {
	if os.Getenv(benchServerEnv) != "" {
		benchServer()
		return
	}
	os.Exit(m.Run())
}

// benchServer answers every request with a small health page, prints
// its address and serves until stdin closes.
func benchServer() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(ln.Addr())
	go func() {
		os.Stdin.Read(make([]byte, 1))
		os.Exit(0)
	}()
	answer := []byte("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nConnection: close\r\n\r\nOK\n")
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			buf := make([]byte, 1024)
			n := 0
			for !strings.Contains(string(buf[:n]), "\r\n\r\n") && n < len(buf) {
				m, err := c.Read(buf[n:])
				if err != nil {
					return
				}
				n += m
			}
			c.Write(answer)
		}()
	}
}

// BenchmarkHTTPCheck is one http check (a fresh connection, GET, status,
// body matched) by the plain path and by net/http's, against a server in
// another process: allocs/op are the check's own.
func BenchmarkHTTPCheck(b *testing.B) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), benchServerEnv+"=1")
	in, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer cmd.Wait()
	defer in.Close()
	addr, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		b.Fatal(err)
	}
	tg := targetAt(b, strings.TrimSpace(addr))
	c := parseCheck(b, "tcp", "{type: http, path: /.health.html, expect: OK}")
	for _, p := range []struct {
		name  string
		probe Probe
	}{
		{"plain", probeHTTP},
		{"net-http", func(ctx context.Context, t Target, c *config.Check) error { return stdHTTP(ctx, t, c, "http") }},
	} {
		b.Run(p.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				err := p.probe(ctx, tg, c)
				cancel()
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
