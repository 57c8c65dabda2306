// Package probe runs one health check against one real server: the check
// types, one file each (tcp.go, http.go, ...), each registering its name,
// the config keys it reads and its probe function from init (Register),
// so that a new check type is one new file. A probe knows one protocol
// and nothing about schedules, rise and fall: those are package
// checker's, which calls ProbeServer every interval.
//
// Every probe is bounded by its context: the deadline is the check's
// timeout, and a server that accepts and never answers, trickles bytes,
// or sends a hundred megabytes costs at most that long and a bounded
// amount of memory. Each attempt opens its own fresh connection, as
// ldirectord and keepalived do, because a health check must show that
// new connections work (a pooled connection would keep a half-dead
// server looking alive).
package probe

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// Target is what one probe checks: where to connect (the real server, or
// the check's address/port override) and the service it belongs to (for
// external's four arguments and for SNI/Host defaults).
type Target struct {
	Service lvs.ServiceKey // protocol, VIP, port or fwmark
	Addr    netip.Addr     // where to connect
	Port    uint16
	Server  lvs.DestKey // the real server itself (external's RIP/rport even when Addr/Port are overridden)
}

// TargetOf is the target of vs's check of real server r: r itself unless
// the check overrides the address or port. vs and r come from a loaded
// (validated) config.
func TargetOf(vs *config.VirtualService, r *config.RealServer, c *config.Check) Target {
	t := Target{Service: vs.Key, Addr: r.Key.Addr, Port: r.Key.Port, Server: r.Key}
	if c == nil {
		return t
	}
	if c.Address != "" { // not parsed when empty: a parse error is an allocation per check
		if a, err := netip.ParseAddr(c.Address); err == nil {
			t.Addr = a.Unmap()
		}
	}
	if c.Port > 0 && c.Port <= 65535 {
		t.Port = uint16(c.Port)
	}
	return t
}

// AddrPort is where the probe connects.
func (t Target) AddrPort() netip.AddrPort { return netip.AddrPortFrom(t.Addr, t.Port) }

// String is the address probes connect to, as in their messages.
func (t Target) String() string { return t.AddrPort().String() }

// A Probe runs one check attempt. It returns nil when the server is
// healthy and otherwise an error whose text says why in operator terms
// ("http: status 503, want 200-299", "tcp: connect 10.0.1.13:80:
// connection refused"). It returns when ctx is done (the deadline is the
// check's timeout), whatever the server does.
type Probe func(ctx context.Context, t Target, c *config.Check) error

// A WeightProbe is a Probe that may also say what the server's weight
// should be (keepalived's misc_dynamic and FILE_CHECK): the Weight of a
// passing attempt; with an error it is ignored.
type WeightProbe func(ctx context.Context, t Target, c *config.Check) (Weight, error)

// Weight is what a passing check says of the server's weight besides
// its health. The zero Weight says nothing: the configured weight
// stands.
type Weight struct {
	Kind  WeightKind
	Value int64
}

// WeightKind says how a Weight's Value applies.
type WeightKind uint8

// Weight kinds.
const (
	// WeightNone: the check says nothing of the weight.
	WeightNone WeightKind = iota
	// WeightSet: Value is the weight (an external check's dynamic exit
	// status).
	WeightSet
	// WeightAdd: Value is added to the configured weight (a file check,
	// as keepalived adds a tracked file's value).
	WeightAdd
)

// The registry: each check type's file registers it from its init.
var probes = map[string]WeightProbe{}

// Register makes a check type known: to config's validation (its name
// and the keys it reads, config.RegisterCheckType) and to RunCheck (its
// probe). Each check type's file calls it from init, so a new check type
// is one new file. Registering a name twice panics.
func Register(t config.CheckType, p Probe) {
	if p == nil {
		panic("probe: " + t.Name + " registered without a probe")
	}
	RegisterWeight(t, func(ctx context.Context, tg Target, c *config.Check) (Weight, error) {
		return Weight{}, p(ctx, tg, c)
	})
}

// RegisterWeight is Register for a check type whose results may set the
// server's weight.
func RegisterWeight(t config.CheckType, p WeightProbe) {
	if p == nil {
		panic("probe: " + t.Name + " registered without a probe")
	}
	config.RegisterCheckType(t)
	probes[t.Name] = p
}

// Lookup returns the probe of a registered check type, or nil.
func Lookup(name string) Probe {
	p := probes[name]
	if p == nil {
		return nil
	}
	return func(ctx context.Context, t Target, c *config.Check) error {
		_, err := p(ctx, t, c)
		return err
	}
}

// CheckResult is the outcome of one check (all its attempts).
type CheckResult struct {
	OK       bool
	Msg      string        // why it failed (the last attempt's error); empty when OK
	Err      error         // that error, wrapping its cause (a timeout is context.DeadlineExceeded)
	Time     time.Time     // when the check started
	Duration time.Duration // all attempts together
	Attempts int           // 1 + the retries used
	Weight   Weight        // what the passing attempt said of the weight
}

// RunCheck runs check c against t with its retries: attempts run one
// after the other, each with the full timeout, and the first success
// ends the check. Retrying at once (rather than at the next interval)
// is what makes retries useful: one lost SYN or datagram is not an
// outage, and the next interval may be far away. ctx bounds the whole;
// when it ends, no further attempt starts.
func RunCheck(ctx context.Context, t Target, c *config.Check) CheckResult {
	res := CheckResult{Time: time.Now()}
	probe := probes[c.Type]
	if probe == nil {
		res.Err = fmt.Errorf("unknown check type %q", c.Type)
		res.Msg = res.Err.Error()
		return res
	}
	timeout := c.Timeout.D()
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	var err error
	for res.Attempts < 1+max(0, c.Retries) {
		if res.Attempts > 0 {
			slog.Debug("check attempt failed, retrying", "type", c.Type, "target", t.String(), "attempt", res.Attempts, "err", err)
		}
		res.Attempts++
		// An attempt the caller's deadline already bounds as tightly
		// (the checker's budget without retries) needs no context of
		// its own: one less timer and allocation per check.
		actx, cancel := ctx, func() {}
		if dl, ok := ctx.Deadline(); !ok || !dl.Before(time.Now().Add(timeout)) {
			actx, cancel = context.WithTimeout(ctx, timeout)
		}
		res.Weight, err = probe(actx, t, c)
		cancel()
		if err == nil || ctx.Err() != nil {
			break
		}
	}
	res.Duration = time.Since(res.Time)
	res.OK, res.Err = err == nil, err
	if err != nil {
		res.Msg = err.Error()
		res.Weight = Weight{}
	}
	return res
}

// ProbeServer runs check c of real server r of vs once, with the check's
// retries: the checker.ProbeFunc of the real check types. A nil check
// passes.
func ProbeServer(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) error {
	_, err := ProbeServerWeight(ctx, vs, r, c)
	return err
}

// ProbeServerWeight is ProbeServer with what a passing check said of
// the weight: the checker.WeightProbeFunc of the real check types.
func ProbeServerWeight(ctx context.Context, vs *config.VirtualService, r *config.RealServer, c *config.Check) (Weight, error) {
	if c == nil {
		return Weight{}, nil
	}
	res := RunCheck(ctx, TargetOf(vs, r, c), c)
	if !res.OK && res.Attempts > 1 {
		return Weight{}, fmt.Errorf("%w (%d attempts)", res.Err, res.Attempts)
	}
	return res.Weight, res.Err
}

// TimeoutError is a probe that ran out of time; its text names the
// check's timeout (After), which is what an operator can change. It
// unwraps to context.DeadlineExceeded.
type TimeoutError struct{ After time.Duration }

func (e TimeoutError) Error() string {
	if e.After <= 0 {
		return "timed out"
	}
	return "no answer within " + e.After.String()
}
func (TimeoutError) Timeout() bool { return true }
func (TimeoutError) Unwrap() error { return context.DeadlineExceeded }

// errCanceled is a probe stopped from outside (shutdown, reload).
var errCanceled = fmt.Errorf("check canceled: %w", context.Canceled)

// ErrClosed is a server that hung up before answering in full (the
// classification of failures takes it for a reset).
var ErrClosed = errors.New("connection closed by the server")

// reason reduces a network error to the part an operator needs: the
// kernel's reason ("connection refused", "no route to host"), a timeout
// naming the check's timeout, or "connection closed by the server";
// Go's "dial tcp 10.0.1.13:80: connect:" prefixes repeat what the
// probe's message already says. Callers can still tell the kinds apart:
// errors.Is works for syscall errnos, context.DeadlineExceeded and
// context.Canceled.
func reason(ctx context.Context, err error, c *config.Check) error {
	if err == nil {
		return nil
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return errCanceled
	case ctx.Err() != nil, errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded):
		return TimeoutError{After: c.Timeout.D()}
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return ErrClosed
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno
	}
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err
	}
	return err
}

// pastDeadline unblocks every pending read and write of a connection.
var pastDeadline = time.Unix(1, 0)

// bindDeadline ties a connection to ctx: its deadline becomes ctx's, and
// a cancellation unblocks any read or write at once. Call the returned
// stop when done with the connection.
func bindDeadline(ctx context.Context, c interface{ SetDeadline(time.Time) error }) (stop func() bool) {
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	return context.AfterFunc(ctx, func() { c.SetDeadline(pastDeadline) })
}

// boundConn is a connection watched by its probe's context.
type boundConn struct {
	net.Conn
	stop func() bool
}

func (c *boundConn) Close() error {
	c.stop()
	return c.Conn.Close()
}

// dialTarget opens a fresh connection to t ("tcp" or "udp") bounded by ctx.
func dialTarget(ctx context.Context, network string, t Target) (net.Conn, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, network, t.String())
	if err != nil {
		return nil, err
	}
	return &boundConn{Conn: conn, stop: bindDeadline(ctx, conn)}, nil
}

// errTooLong is an answer longer than the probe reads.
type errTooLong struct {
	what string
	max  int64
}

func (e errTooLong) Error() string {
	return fmt.Sprintf("%s longer than %s", e.what, byteSize(e.max))
}

// capReader reads at most n bytes from r, then fails with errTooLong: a
// server that sends without end costs a probe a bounded amount of
// memory, never a hang or an out-of-memory kill.
type capReader struct {
	r    io.Reader
	n    int64
	max  int64
	what string
}

func newCapReader(r io.Reader, max int64, what string) *capReader {
	return &capReader{r: r, n: max, max: max, what: what}
}

func (c *capReader) Read(p []byte) (int, error) {
	if c.n <= 0 {
		return 0, errTooLong{c.what, c.max}
	}
	if int64(len(p)) > c.n {
		p = p[:c.n]
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

// byteSize renders a size the way config values are written.
func byteSize(n int64) string {
	switch {
	case n >= 1<<20 && n%(1<<20) == 0:
		return strconv.FormatInt(n>>20, 10) + " MiB"
	case n >= 1<<10 && n%(1<<10) == 0:
		return strconv.FormatInt(n>>10, 10) + " KiB"
	}
	return strconv.FormatInt(n, 10) + " bytes"
}

// excerpt quotes the start of what a server sent, for error messages.
func excerpt(b []byte) string {
	const max = 80
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// expectRegexp is c's expect as a regular expression (compiled at load,
// or here for a Check built in code); nil when there is none.
func expectRegexp(c *config.Check) (*regexp.Regexp, error) {
	if c.ExpectRE != nil || c.Expect == "" {
		return c.ExpectRE, nil
	}
	re, err := regexp.Compile(c.Expect)
	if err != nil {
		return nil, fmt.Errorf("expect %q: %w", c.Expect, err)
	}
	return re, nil
}

// payload is what a udp or simpletcp check sends.
func payload(c *config.Check) ([]byte, error) {
	if c.Payload != nil || c.Send == "" {
		return c.Payload, nil
	}
	return config.ParsePayload(c.Send)
}

// maxReply bounds what a line-protocol probe reads: greetings and
// replies are lines, and a server that streams without a newline must
// not grow a buffer until the timeout.
const maxReply = 64 << 10

// textConn is one conversation in a line protocol (SMTP, FTP, POP3,
// IMAP): a fresh connection bounded by the probe's context, read through
// a cap. net/textproto is not used: it takes a line cut off by the
// timeout for a whole one, and waits for more lines after a garbage
// first line that happens to have a dash in its fourth byte.
type textConn struct {
	conn net.Conn
	r    *bufio.Reader
}

func dialText(ctx context.Context, t Target) (*textConn, error) {
	conn, err := dialTarget(ctx, "tcp", t)
	if err != nil {
		return nil, err
	}
	return &textConn{conn: conn, r: bufio.NewReader(newCapReader(conn, maxReply, "reply"))}, nil
}

// readLine reads one whole line, without its CR LF. A line the server
// did not finish (it stopped sending, or hung up) is an error, not a
// line.
func (tc *textConn) readLine() (string, error) {
	line, err := tc.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// errNotReply is a line that is not an SMTP or FTP reply ("250 ok",
// "220-first of several").
type errNotReply struct{ line string }

func (e errNotReply) Error() string { return "not a reply: " + excerpt([]byte(e.line)) }

// readReply reads one SMTP or FTP reply, one line or several with the
// same code ("250-first", "250 last"), and returns its code and its
// text, lines joined by newlines.
func (tc *textConn) readReply() (int, string, error) {
	var text []string
	code := 0
	for {
		line, err := tc.readLine()
		if err != nil {
			return 0, "", err
		}
		c, err := strconv.Atoi(line[:min(3, len(line))])
		if err != nil || c < 100 || c > 599 || (len(line) > 3 && line[3] != ' ' && line[3] != '-') || (code != 0 && c != code) {
			return 0, "", errNotReply{line}
		}
		code = c
		text = append(text, strings.TrimSpace(line[min(4, len(line)):]))
		if len(line) == 3 || line[3] == ' ' {
			return code, strings.Join(text, "\n"), nil
		}
	}
}

// send writes one command line.
func (tc *textConn) send(cmd string) error {
	_, err := tc.conn.Write([]byte(cmd + "\r\n"))
	return err
}

// bye sends a polite goodbye (QUIT, LOGOUT) and closes without waiting
// for the answer: a passed check does not wait on a slow farewell.
func (tc *textConn) bye(cmd string) {
	tc.send(cmd)
	tc.conn.Close()
}

// expectReply reads a reply and wants code; it says what came instead.
func (tc *textConn) expectReply(ctx context.Context, c *config.Check, want int) (string, error) {
	code, text, err := tc.readReply()
	switch {
	case err != nil:
		return "", reason(ctx, err, c)
	case code != want:
		return "", fmt.Errorf("%d %s, want %d", code, strings.ReplaceAll(text, "\n", " "), want)
	}
	return text, nil
}

// matchBanner applies expect to a greeting's text.
func matchBanner(c *config.Check, text string) error {
	re, err := expectRegexp(c)
	if err != nil {
		return err
	}
	if re != nil && !re.MatchString(text) {
		return fmt.Errorf("banner %s does not match %q", excerpt([]byte(text)), re.String())
	}
	return nil
}
