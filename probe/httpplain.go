package probe

// The plain path of the http check: a GET or HEAD over plain HTTP, the
// check of nearly every director, done with one pooled buffer instead of
// net/http's request, header map, bufio reader and writer and body
// wrappers per check. At thousands of checks a second that garbage, and
// the deeper stacks it takes, cost more CPU than the connections.
//
// It answers exactly as stdHTTP does: the request bytes are the same
// (plainCheck takes only a method, path and Host that net/http writes
// unchanged), and an answer is judged here only when its head is of a
// strict, common form (status line and headers with CRLF line ends,
// token names, valid values, at most one Content-Length, no
// Transfer-Encoding) that fits the buffer. Anything else (chunked
// bodies, folded headers, bare LF, a head longer than the buffer, an
// error before the head ends) goes to stdAnswer with the bytes already
// read put back in front of the connection, so net/http sees the very
// stream it would have read. FuzzPlainAnswer holds the two paths to the
// same verdicts.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"sync"

	"github.com/lvsmon/lvsmon/config"
)

// plainBufSize is the plain path's buffer: a health answer's head and
// short body fit, and thousands of checks in flight (tarpits) cost a
// few megabytes.
const plainBufSize = 4096

// plainScratch is one plain check's memory, pooled: nothing of a check
// outlives it.
type plainScratch struct {
	buf  [plainBufSize]byte
	req  []byte
	head bool
	cr   capReader
	src  bodySource
}

var plainPool = sync.Pool{New: func() any { return &plainScratch{req: make([]byte, 0, 256)} }}

// plainCheck reports whether the plain path can make check c's
// request to t, and whether it is a HEAD.
func plainCheck(t Target, c *config.Check) (head, ok bool) {
	method := c.Method
	if method == "" {
		method = config.DefaultMethod
	}
	switch {
	case strings.EqualFold(method, "GET"):
	case strings.EqualFold(method, "HEAD"):
		head = true
	default:
		return false, false
	}
	path := c.Path
	if path == "" {
		path = "/"
	}
	return head, plainPath(path) && plainHost(c.Host) && t.Addr.Zone() == "" && t.Addr.IsValid()
}

// request writes into s.req the request of check c to t, which
// plainCheck has allowed: the bytes checkRequest's http.Request writes
// (FuzzPlainRequest compares them).
func (s *plainScratch) request(t Target, c *config.Check, head bool) {
	s.head = head
	b := s.req[:0]
	if head {
		b = append(b, "HEAD "...)
	} else {
		b = append(b, "GET "...)
	}
	if c.Path == "" {
		b = append(b, '/')
	}
	b = append(b, c.Path...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	switch {
	case c.Host != "":
		b = append(b, c.Host...)
	case t.Port == 80 && t.Addr.Is6():
		b = append(b, '[')
		b = t.Addr.AppendTo(b)
		b = append(b, ']')
	case t.Port == 80:
		b = t.Addr.AppendTo(b)
	default:
		b = netip.AddrPortFrom(t.Addr, t.Port).AppendTo(b)
	}
	s.req = append(b, "\r\nUser-Agent: lvsmon-check\r\nConnection: close\r\n\r\n"...)
}

// plainPath reports whether net/http writes path unchanged as the
// request target: an absolute path and query of unreserved characters
// and sub-delimiters, nothing to escape, no fragment.
func plainPath(p string) bool {
	if len(p) == 0 || p[0] != '/' {
		return false
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("-._~!$&'()*+,;=:@/?", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// plainHost reports whether net/http sends h as the Host header
// unchanged: ASCII name or address characters (no zone, no escapes).
func plainHost(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case c == '-', c == '.', c == '_', c == ':', c == '[', c == ']':
		default:
			return false
		}
	}
	return true
}

// plainHTTP runs the check. Its buffer is taken once connected: a
// check waiting for a connection (thousands, when servers drop SYNs)
// holds none.
func plainHTTP(ctx context.Context, t Target, c *config.Check, head bool) error {
	conn, err := dialTarget(ctx, "tcp", t)
	if err != nil {
		return fmt.Errorf("http: connect %s: %w", t, reason(ctx, err, c))
	}
	defer conn.Close()
	s := plainPool.Get().(*plainScratch)
	defer func() {
		s.cr, s.src = capReader{}, bodySource{} // keep no connection
		plainPool.Put(s)
	}()
	s.request(t, c, head)
	if _, err := conn.Write(s.req); err != nil {
		return fmt.Errorf("http: send request to %s: %w", t, reason(ctx, err, c))
	}
	n := answerCap(c)
	s.cr = capReader{r: conn, n: n, max: n, what: "answer"}
	return s.answer(ctx, &s.cr, t, c)
}

// answer reads and judges the answer from r (the capped connection).
// It reads only while net/http would: each line of the head is
// checked as it arrives, and the first one outside the plain form goes
// to net/http at once, which may fail it without waiting for more.
func (s *plainScratch) answer(ctx context.Context, r io.Reader, t Target, c *config.Check) error {
	buf := s.buf[:]
	var p headParser
	n, pos := 0, 0
	var rerr error
	for {
		i := bytes.IndexByte(buf[pos:n], '\n')
		if i >= 0 {
			end := pos + i
			if end == pos || buf[end-1] != '\r' || !p.line(buf[pos:end-1]) {
				break
			}
			pos = end + 1
			if p.done {
				s.src = bodySource{rest: buf[pos:n], err: rerr, r: r}
				return s.judge(ctx, p.head(), t, c)
			}
			continue
		}
		if rerr != nil || n == len(buf) {
			break
		}
		var m int
		m, rerr = r.Read(buf[n:])
		n += m
	}
	// Not ours to judge: net/http reads the same stream.
	req, err := checkRequest(ctx, t, c, "http")
	if err != nil {
		return err
	}
	s.src = bodySource{rest: buf[:n], err: rerr, r: r}
	return stdAnswer(ctx, &s.src, req, t, c, "http")
}

// judge is stdAnswer's verdict on an answer whose head is h, its body
// to come from s.src.
func (s *plainScratch) judge(ctx context.Context, h plainHead, t Target, c *config.Check) error {
	// length is the body's: none after HEAD or for 1xx, 204 and 304,
	// else Content-Length, or -1 for up to the server's close.
	length, announced := h.length, h.length
	switch {
	case s.head:
		length = 0
	case h.code/100 == 1, h.code == 204, h.code == 304:
		length, announced = 0, 0
	}
	// net/http's Body.Close, on the way out without the whole body,
	// reads the rest of a Content-Length body unless the server said it
	// closes: the server then sees a FIN, not a reset.
	var n int64 // body bytes read
	defer func() {
		if length > 0 && !h.closing && n < length {
			s.src.discard(length-n, s.buf[:])
		}
	}()

	ranges, status, err := statusRanges(c, "http")
	if err != nil {
		return err
	}
	if !config.StatusIn(h.code, ranges) {
		return fmt.Errorf("http: status %d, want %s", h.code, status)
	}
	maxBody := maxBody(c)
	if !s.head && announced > maxBody {
		return fmt.Errorf("http: body of %d bytes is longer than max_body (%s)", announced, byteSize(maxBody))
	}
	re, err := expectRegexp(c)
	if err != nil {
		return fmt.Errorf("http: %w", err)
	}
	if length == 0 {
		return judgeBody(ctx, t, c, "http", re, []byte{}, 0, nil)
	}
	limit := maxBody + 1
	if length > 0 {
		limit = length // at most maxBody, checked above
	}
	var got []byte
	if re != nil {
		got = s.buf[:0] // the head is done with
	}
	for n < limit {
		var p []byte
		switch {
		case re == nil:
			p = s.buf[:min(int64(len(s.buf)), limit-n)]
		case len(got) == cap(got):
			got = append(got, 0)[:len(got)]
			fallthrough
		default:
			p = got[len(got):min(int64(cap(got)), limit)]
		}
		m, err := s.src.Read(p)
		n += int64(m)
		if re != nil {
			got = got[:len(got)+m]
		}
		if err == io.EOF && length < 0 {
			err = nil
			break
		}
		if err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF // a Content-Length body cut short
			}
			return judgeBody(ctx, t, c, "http", re, got, n, err)
		}
	}
	return judgeBody(ctx, t, c, "http", re, got, n, nil)
}

// plainHead is what the plain path needs of an answer's head.
type plainHead struct {
	code    int
	length  int64 // Content-Length, -1 without one
	closing bool  // the server closes after this answer
}

// headParser reads an answer's head line by line (without CR LF),
// refusing anything outside the strict form the plain path judges,
// which net/http then reads.
type headParser struct {
	h                           plainHead
	lines, lengths              int
	http10, closeTok, keepAlive bool
	done                        bool // the blank line ending the head was read
}

// line takes the next line; false: not of the plain form.
func (p *headParser) line(line []byte) bool {
	p.lines++
	if p.lines == 1 {
		p.h.length = -1
		if len(line) < len("HTTP/1.1 200") || string(line[:7]) != "HTTP/1." || (line[7] != '0' && line[7] != '1') || line[8] != ' ' {
			return false
		}
		if len(line) > 12 && line[12] != ' ' {
			return false
		}
		p.http10 = line[7] == '0'
		for _, d := range line[9:12] {
			if d < '0' || d > '9' {
				return false
			}
			p.h.code = p.h.code*10 + int(d-'0')
		}
		return true
	}
	if len(line) == 0 {
		p.done = true
		p.h.closing = p.closeTok || p.http10 && !p.keepAlive
		return true
	}
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return false
	}
	name, value := line[:colon], line[colon+1:]
	for _, b := range name {
		if !tokenByte(b) {
			return false
		}
	}
	for _, b := range value {
		if b != '\t' && (b < ' ' || b == 0x7f) {
			return false
		}
	}
	value = bytes.Trim(value, " \t")
	switch {
	case asciiEqualFold(name, "Content-Length"):
		p.lengths++
		if p.lengths > 1 || len(value) == 0 || len(value) > 18 {
			return false
		}
		p.h.length = 0
		for _, d := range value {
			if d < '0' || d > '9' {
				return false
			}
			p.h.length = p.h.length*10 + int64(d-'0')
		}
	case asciiEqualFold(name, "Transfer-Encoding"):
		return false
	case asciiEqualFold(name, "Connection"):
		p.closeTok = p.closeTok || hasToken(value, "close")
		p.keepAlive = p.keepAlive || hasToken(value, "keep-alive")
	}
	return true
}

func (p *headParser) head() plainHead { return p.h }

// parsePlainHead parses a whole head (ending with its blank line), for
// tests: false for anything the plain path hands to net/http.
func parsePlainHead(head []byte) (plainHead, bool) {
	var p headParser
	for len(head) > 0 && !p.done {
		line, rest, ok := cutCRLF(head)
		if !ok || !p.line(line) {
			return plainHead{}, false
		}
		head = rest
	}
	return p.h, p.done && len(head) == 0
}

// cutCRLF cuts the first line, which must end in CR LF with no other
// LF before it.
func cutCRLF(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 1 || b[i-1] != '\r' {
		return nil, nil, false
	}
	return b[:i-1], b[i+1:], true
}

// tokenByte reports whether b may be in a header name (RFC 9110 tchar),
// as net/textproto takes them.
func tokenByte(b byte) bool {
	switch {
	case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		return true
	}
	return b < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0
}

// asciiEqualFold compares a header name with a canonical one.
func asciiEqualFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// hasToken reports whether the comma-separated value v holds tok, in
// any case, as net/http reads Connection.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var el []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			el, v = v[:i], v[i+1:]
		} else {
			el, v = v, nil
		}
		if asciiEqualFold(bytes.Trim(el, " \t"), tok) {
			return true
		}
	}
	return false
}

// bodySource is the rest of an answer: bytes read with its head, the
// error that read ended with, then the connection. Read gives them back
// in that order, as a reader that had never read ahead would.
type bodySource struct {
	rest []byte
	err  error
	r    io.Reader
}

func (b *bodySource) Read(p []byte) (int, error) {
	if len(b.rest) > 0 {
		n := copy(p, b.rest)
		b.rest = b.rest[n:]
		return n, nil
	}
	if b.err != nil {
		err := b.err
		b.err = nil
		return 0, err
	}
	return b.r.Read(p)
}

// discard reads up to n bytes of body and drops them, as net/http's
// Body.Close does (until an error, the connection's cap, or the
// deadline).
func (b *bodySource) discard(n int64, scratch []byte) {
	for n > 0 {
		m, err := b.Read(scratch[:min(n, int64(len(scratch)))])
		n -= int64(m)
		if err != nil {
			return
		}
	}
}
