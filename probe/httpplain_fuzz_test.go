package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"os"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// The plain path's fuzz targets hold it to net/http's: the same request
// bytes, and the same verdict on any answer. Their seed corpora run in
// go test; run them longer with
//
//	go test -run='^$' -fuzz='^FuzzPlainAnswer$' -fuzztime=60s ./probe/
//	go test -run='^$' -fuzz='^FuzzPlainRequest$' -fuzztime=60s ./probe/

// streamConn is a connection's read side from memory: data in reads of
// sizes drawn from seed, then end for ever, as a socket repeats its EOF
// or its deadline; a reset is reported once, then EOF, as Linux does.
// A deadline is the probe's context expiring (ctx): a path that reads
// on where the other would have stopped gets a timeout the other does
// not, and the verdicts differ.
type streamConn struct {
	data []byte
	seed uint64
	end  error
	ctx  *expiringCtx
}

// expiringCtx is a probe's context whose deadline passes when the
// stream reaches its deadline.
type expiringCtx struct {
	context.Context
	expired bool
}

func (c *expiringCtx) Err() error {
	if c.expired {
		return context.DeadlineExceeded
	}
	return nil
}

func (s *streamConn) Read(p []byte) (int, error) {
	if len(s.data) == 0 {
		err := s.end
		switch {
		case errors.Is(err, syscall.ECONNRESET):
			s.end = io.EOF
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.ctx.expired = true
		}
		return 0, err
	}
	s.seed = s.seed*6364136223846793005 + 1442695040888963407
	n := min(len(p), len(s.data), 1+int(s.seed>>33)%64)
	if s.seed>>62 == 0 { // sometimes a long read
		n = min(len(p), len(s.data))
	}
	copy(p, s.data[:n])
	s.data = s.data[n:]
	return n, nil
}

// streamEnds are the ways an answer's stream ends.
var streamEnds = []error{
	io.EOF,
	&os.PathError{Op: "read", Path: "tcp", Err: os.ErrDeadlineExceeded},
	syscall.ECONNRESET,
}

// fuzzExpects are the expect settings the answer fuzzer tries.
var fuzzExpects = []string{"", "OK", "^$", "a.c", `\x00`, "(?s)^.{5}$"}

// answerSeeds are answers servers really send, and broken ones.
var answerSeeds = []string{
	"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\r\nOK\n",
	"HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 01 Jan 2024 00:00:00 GMT\r\nContent-Type: text/html\r\nContent-Length: 2\r\nConnection: close\r\nETag: \"x\"\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: keep-alive\r\n\r\nOKextra",
	"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 20\r\n\r\nService Unavailable\n",
	"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 20\r\n\r\nService",
	"HTTP/1.0 200 OK\r\n\r\nabc",
	"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 3\r\n\r\nabc",
	"HTTP/1.1 200 OK\r\n\r\nclose-delimited body",
	"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
	"HTTP/1.1 304 Not Modified\r\n\r\n",
	"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\nX-Trailer: 1\r\n\r\n",
	"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
	"HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nOK\r\n0\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length:\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: 007\r\n\r\n1234567",
	"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort",
	"HTTP/1.1 200 OK\nContent-Length: 2\n\nOK",
	"HTTP/1.1 200 OK\r\n\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\nOK",
	"HTTP/1.1 200 OK\r\nX-Folded: a\r\n b\r\nContent-Length: 2\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\n X-Leading: space\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nNoColon\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nX: a\x01b\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nX: caf\xc3\xa9\r\nContent-Length: 2\r\n\r\nOK",
	"HTTP/1.1  200 OK\r\n\r\n",
	"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n",
	"HTTP/1.1 2000 OK\r\n\r\n",
	"HTTP/1.1 +20 OK\r\n\r\n",
	"HTTP/1.1 -20 OK\r\n\r\n",
	"HTTP/2.0 200 OK\r\n\r\n",
	"HTTP/1.2 200 OK\r\n\r\n",
	"http/1.1 200 OK\r\n\r\n",
	"HTTP/1.1 200 OK",
	"HTTP/1.1 200 OK\r\n",
	"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n",
	"SSH-2.0-OpenSSH_9.2p1\r\n",
	"",
	"\r\n\r\n",
	"HTTP/1.1 200 OK\r\nX-Padding: " + strings.Repeat("x", 5000) + "\r\nContent-Length: 2\r\n\r\nOK",
	"HTTP/1.1 200 OK\r\nContent-Length: 5000\r\n\r\n" + strings.Repeat("OK", 2500),
	"HTTP/1.1 200 OK\r\nConnection: Keep-Alive, CLOSE\r\nContent-Length: 2\r\n\r\nOK",
}

// FuzzPlainAnswer: on any answer, however it is cut into reads and
// however its stream ends, the plain path's verdict is stdAnswer's, to
// the letter and in the errors the checker classifies.
func FuzzPlainAnswer(f *testing.F) {
	for i, a := range answerSeeds {
		for end := range streamEnds {
			f.Add([]byte(a), uint64(i), uint8(end), uint32(0), i%2 == 1 && i%5 == 0, uint16(i%7*3), uint8(i))
		}
	}
	f.Add([]byte(answerSeeds[0]), uint64(1), uint8(0), uint32(40), false, uint16(0), uint8(1))
	f.Add([]byte(answerSeeds[0]), uint64(1), uint8(0), uint32(200), false, uint16(2), uint8(0))
	tg := Target{Addr: netip.MustParseAddr("127.0.0.1"), Port: 8080}
	f.Fuzz(func(t *testing.T, answer []byte, seed uint64, end uint8, capAt uint32, head bool, maxBody uint16, expect uint8) {
		c := &config.Check{Type: "http", Timeout: config.Duration(time.Second), Expect: fuzzExpects[int(expect)%len(fuzzExpects)]}
		if head {
			c.Method = "HEAD"
		}
		if maxBody > 0 {
			c.MaxBody = int64(maxBody % 4096)
		}
		limit := answerCap(c)
		if capAt > 0 {
			limit = int64(capAt % 8192)
		}
		stream := func() (*expiringCtx, io.Reader) {
			ctx := &expiringCtx{Context: context.Background()}
			return ctx, newCapReader(&streamConn{data: answer, seed: seed, end: streamEnds[int(end)%len(streamEnds)], ctx: ctx}, limit, "answer")
		}
		s := newPlainScratch(tg, c)
		if s == nil {
			t.Fatal("a plain GET or HEAD check has no plain request")
		}
		ctx, r := stream()
		got := s.answer(ctx, r, tg, c)
		plainPool.Put(s)
		ctx, r = stream()
		req, err := checkRequest(ctx, tg, c, "http")
		if err != nil {
			t.Fatal(err)
		}
		want := stdAnswer(ctx, r, req, tg, c, "http")
		sameVerdict(t, got, want)
	})
}

// sameVerdict fails unless two probe errors say the same thing and
// classify the same (checker's classify tells them apart by these).
func sameVerdict(t *testing.T, got, want error) {
	t.Helper()
	if (got == nil) != (want == nil) || got != nil && got.Error() != want.Error() {
		t.Fatalf("plain path: %v\nnet/http:   %v", got, want)
	}
	for _, target := range []error{ErrClosed, context.DeadlineExceeded, os.ErrDeadlineExceeded, context.Canceled,
		syscall.ECONNRESET, syscall.ECONNREFUSED, syscall.EPIPE, io.EOF, io.ErrUnexpectedEOF} {
		if errors.Is(got, target) != errors.Is(want, target) {
			t.Fatalf("errors.Is(%v): plain path %v, net/http %v (%q)", target, errors.Is(got, target), errors.Is(want, target), got)
		}
	}
}

// FuzzPlainRequest: whenever the plain path makes a check's request,
// its bytes are those net/http writes for it.
func FuzzPlainRequest(f *testing.F) {
	for _, s := range []struct {
		method, path, host, addr string
	}{
		{"", "", "", "127.0.0.1:8080"},
		{"GET", "/.health.html", "", "10.0.1.13:80"},
		{"HEAD", "/", "www.example.org", "[::1]:80"},
		{"get", "/a/b?c=d&e=f", "www.example.org:8080", "[2001:db8::1]:8443"},
		{"GET", "/x?", "", "[::ffff:10.0.0.1]:80"},
		{"GET", "//double", "[::1]:80", "127.0.0.1:80"},
		{"GET", "/!$&'()*+,;=:@~", "", "127.0.0.1:1"},
		{"GET", "/a?b?c/d", "", "127.0.0.1:1"},
		{"GET", "/%41", "", "127.0.0.1:1"},
		{"GET", "/a b", "", "127.0.0.1:1"},
		{"GET", "/a#b", "", "127.0.0.1:1"},
		{"GET", "relative", "", "127.0.0.1:1"},
		{"POST", "/", "", "127.0.0.1:1"},
		{"GET", "/", "bad host", "127.0.0.1:1"},
		{"GET", "/", "", "[fe80::1%eth0]:80"},
	} {
		f.Add(s.method, s.path, s.host, s.addr)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, method, path, host, addr string) {
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return
		}
		tg := Target{Addr: ap.Addr(), Port: ap.Port()}
		c := &config.Check{Type: "http", Method: method, Path: path, Host: host}
		s := newPlainScratch(tg, c)
		if s == nil {
			return
		}
		got := string(s.req)
		plainPool.Put(s)
		req, err := checkRequest(ctx, tg, c, "http")
		if err != nil {
			t.Fatalf("plain request %q for a check net/http cannot make: %v", got, err)
		}
		var b bytes.Buffer
		w := bufio.NewWriter(&b)
		if err := req.Write(w); err != nil {
			t.Fatalf("plain request %q for a check net/http cannot write: %v", got, err)
		}
		w.Flush()
		if got != b.String() {
			t.Fatalf("plain request\n%q\nnet/http writes\n%q", got, b.String())
		}
	})
}

// FuzzMatchBody: matchBody's shortcut for literal expects agrees with
// the regexp on any body.
func FuzzMatchBody(f *testing.F) {
	for _, s := range [][2]string{
		{"OK", "all OK\n"}, {"OK", "ok"}, {"^OK", "xOK"}, {"OK$", "OK\n"}, {"(?i)ok", "OK"}, {"a.c", "abc"},
		{"caf\u00e9", "caf\xc3\xa9"}, {"\ufffd", "\xff"}, {"\ufffd", "\xef\xbf\xbd"}, {"\u00e9", "\xc3\xc3\xa9"},
		{"A", "\xf0A"}, {"", "x"}, {"a|b", "b"}, {"\\.", "."},
	} {
		f.Add(s[0], []byte(s[1]))
	}
	f.Fuzz(func(t *testing.T, expect string, body []byte) {
		re, err := regexp.Compile(expect)
		if err != nil {
			return
		}
		if got, want := matchBody(re, body), re.Match(body); got != want {
			t.Fatalf("matchBody(%q, %q) = %v, the regexp says %v", expect, body, got, want)
		}
	})
}
