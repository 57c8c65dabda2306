package probe

// What the mysql and pgsql checks share. Both use the database's own Go
// client for the protocol (handshakes, authentication methods, result
// sets), given a connection of the probe's: bound to the check's
// context, read through a cap and a framer that knows the protocol's
// packet headers, and keeping the first I/O error. The clients turn
// every I/O failure into a generic one ("invalid connection"); the kept
// error is what the operator needs ("connection closed by the server",
// "no answer within 5s").

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"

	"github.com/lvsmon/lvsmon/config"
)

// maxSQLRead bounds what one mysql or pgsql attempt reads from the
// server, and each packet or message in it: a greeting, a login and the
// first row of a health query take a few hundred bytes, and a server
// that sends without end costs a probe this much at most (the clients
// size their buffers by the lengths the server announces, so the
// framers refuse a longer one before the client allocates it).
const maxSQLRead = 1 << 20

// errNotServer is a peer whose first bytes are not the protocol's.
type errNotServer struct {
	proto string // "MySQL", "PostgreSQL"
	head  []byte
}

func (e errNotServer) Error() string {
	return fmt.Sprintf("not a %s server: it sent %s", e.proto, excerpt(e.head))
}

// framer follows the packet headers of what a server sends and fails on
// a stream that is not the protocol or announces a packet over
// maxSQLRead.
type framer interface {
	feed(b []byte) error
}

// sqlConn is the connection a database client speaks through.
type sqlConn struct {
	net.Conn // a boundConn: closing it stops its context watch
	r        *capReader
	f        framer
	head     []byte // the first bytes read, for errNotServer

	mu  sync.Mutex
	err error // the first read or write error
}

func (c *sqlConn) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		if len(c.head) < 80 {
			c.head = append(c.head, p[:min(n, 80-len(c.head))]...)
		}
		if ferr := c.f.feed(p[:n]); ferr != nil {
			var ns errNotServer
			if errors.As(ferr, &ns) {
				ns.head = c.head
				ferr = ns
			}
			c.keep(ferr)
			return 0, ferr
		}
	}
	if err != nil {
		c.keep(err)
	}
	return n, err
}

func (c *sqlConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	if err != nil {
		c.keep(err)
	}
	return n, err
}

func (c *sqlConn) keep(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.err = err
	}
}

// ioErr is the first read or write error, or nil.
func (c *sqlConn) ioErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// sqlDialer opens the connection of one attempt for a client and
// remembers it (a client's errors are then read through it).
type sqlDialer struct {
	t Target
	f framer

	mu      sync.Mutex
	dialed  bool
	conn    *sqlConn
	dialErr error
}

// errOneConn refuses a client's second connection in one attempt: pgconn
// opens one to send a cancel request when a query times out, which
// would outlive the probe (up to 15 s) for a server that is stuck
// anyway; closing the connection is enough.
var errOneConn = errors.New("one connection per check attempt")

// dial is the client's dial function: it connects to the target,
// whatever address the client was given, once.
func (d *sqlDialer) dial(ctx context.Context, _, _ string) (net.Conn, error) {
	d.mu.Lock()
	again := d.dialed
	d.dialed = true
	d.mu.Unlock()
	if again {
		return nil, errOneConn
	}
	conn, err := dialTarget(ctx, "tcp", d.t)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.dialErr = err
		return nil, err
	}
	d.conn = &sqlConn{Conn: conn, r: newCapReader(conn, maxSQLRead, "answer"), f: d.f}
	return d.conn, nil
}

// state is what dial left.
func (d *sqlDialer) state() (*sqlConn, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.conn, d.dialErr
}

// failure explains a client's error in operator terms when it was not
// the server's answer: the probe's deadline or cancellation, a refused
// connection, an I/O error or a stream that is not the protocol. It
// returns nil when the client's own error is the explanation (the
// server's error message, say). stage says what was under way ("login
// as monitor", "query"); answered: err is the server's own error
// message, which only a cancellation overrides.
func (d *sqlDialer) failure(ctx context.Context, c *config.Check, name, stage string, err error, answered bool) error {
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return fmt.Errorf("%s: %s: %s: %w", name, d.t, stage, errCanceled)
	case answered:
		return nil
	}
	conn, dialErr := d.state()
	switch {
	case dialErr != nil:
		return fmt.Errorf("%s: connect %s: %w", name, d.t, reason(ctx, dialErr, c))
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %s: %s: %w", name, d.t, stage, reason(ctx, err, c))
	case conn == nil:
		return nil
	}
	ioErr := conn.ioErr()
	var ns errNotServer
	switch {
	case ioErr == nil:
		return nil
	case errors.As(ioErr, &ns):
		return fmt.Errorf("%s: %s: %w", name, d.t, ioErr)
	}
	return fmt.Errorf("%s: %s: %s: %w", name, d.t, stage, reason(ctx, ioErr, c))
}

// close closes the attempt's connection, whatever state the client left
// it in (a result set read only to its first row).
func (d *sqlDialer) close() {
	if conn, _ := d.state(); conn != nil {
		conn.Close()
	}
}

// matchFirstColumn applies expect to the first column of the first row.
func matchFirstColumn(c *config.Check, v []byte) error {
	re, err := expectRegexp(c)
	if err != nil {
		return err
	}
	if re != nil && !re.Match(v) {
		return fmt.Errorf("first column %s does not match %q", excerpt(v), re.String())
	}
	return nil
}
