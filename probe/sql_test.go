package probe

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The unit tier's mysql and pgsql servers: just enough of each protocol
// for a login and a one-column query, plus the broken servers every
// probe meets. The real MariaDB and PostgreSQL are in sql_lab_test.go.

// fakeSQL is what a fake database server does after the greeting.
type fakeSQL struct {
	refuse  string   // refuse the login with this message
	rows    []string // the query's rows (one column)
	endless bool     // after rows, send rows until the client leaves
	queries atomic.Int64
}

// mysqlPacket writes one MySQL packet.
func mysqlPacket(w io.Writer, seq byte, body []byte) error {
	h := []byte{byte(len(body)), byte(len(body) >> 8), byte(len(body) >> 16), seq}
	_, err := w.Write(append(h, body...))
	return err
}

func readMySQLPacket(r io.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	b := make([]byte, int(h[0])|int(h[1])<<8|int(h[2])<<16)
	_, err := io.ReadFull(r, b)
	return b, err
}

func lenencStr(s string) []byte { return append([]byte{byte(len(s))}, s...) }

// mysqlGreeting is a MySQL 8 style handshake: protocol 10, version,
// connection id, scramble, capabilities PROTOCOL_41 | SECURE_CONNECTION
// | LONG_PASSWORD | PLUGIN_AUTH, mysql_native_password.
func mysqlGreeting() []byte {
	b := []byte{10}
	b = append(b, "8.0.99-fake\x00"...)
	b = append(b, 1, 0, 0, 0)
	b = append(b, "abcdefgh"...)
	b = append(b, 0)
	b = append(b, 0x01, 0x82)            // capabilities, lower
	b = append(b, 33, 2, 0)              // charset, status
	b = append(b, 0x08, 0x00)            // capabilities, upper
	b = append(b, 21)                    // auth data length
	b = append(b, make([]byte, 10)...)   // reserved
	b = append(b, "ijklmnopqrst\x00"...) // scramble, part 2
	return append(b, "mysql_native_password\x00"...)
}

func (f *fakeSQL) mysql(c net.Conn) {
	r := bufio.NewReader(c)
	if mysqlPacket(c, 0, mysqlGreeting()) != nil {
		return
	}
	if _, err := readMySQLPacket(r); err != nil {
		return
	}
	if f.refuse == "cleartext" { // switch to mysql_clear_password
		mysqlPacket(c, 2, []byte("\xfemysql_clear_password\x00"))
		tarpitHandler(c)
		return
	}
	if f.refuse != "" {
		mysqlPacket(c, 2, append([]byte{0xff, 0x15, 0x04, '#', '2', '8', '0', '0', '0'}, f.refuse...))
		return
	}
	ok := []byte{0, 0, 0, 2, 0, 0, 0}
	if mysqlPacket(c, 2, ok) != nil {
		return
	}
	for {
		q, err := readMySQLPacket(r)
		if err != nil || len(q) == 0 || q[0] == 1 { // COM_QUIT
			return
		}
		f.queries.Add(1)
		eof := []byte{0xfe, 0, 0, 2, 0}
		col := bytes.Join([][]byte{lenencStr("def"), lenencStr(""), lenencStr(""), lenencStr(""), lenencStr("v"), lenencStr(""),
			{0x0c, 33, 0, 0, 1, 0, 0, 0xfd, 0, 0, 0, 0, 0}}, nil)
		seq := byte(1)
		send := func(b []byte) error { err := mysqlPacket(c, seq, b); seq++; return err }
		if send([]byte{1}) != nil || send(col) != nil || send(eof) != nil {
			return
		}
		for _, row := range f.rows {
			if send(lenencStr(row)) != nil {
				return
			}
		}
		for f.endless {
			if send(lenencStr(strings.Repeat("r", 200))) != nil {
				return
			}
		}
		if send(eof) != nil {
			return
		}
	}
}

// pgMsg writes one PostgreSQL message.
func pgMsg(w io.Writer, typ byte, body []byte) error {
	b := []byte{typ, 0, 0, 0, 0}
	binary.BigEndian.PutUint32(b[1:], uint32(len(body)+4))
	_, err := w.Write(append(b, body...))
	return err
}

func (f *fakeSQL) pgsql(c net.Conn) {
	r := bufio.NewReader(c)
	var n uint32
	if binary.Read(r, binary.BigEndian, &n) != nil || n < 8 || n > 10000 {
		return
	}
	if _, err := io.ReadFull(r, make([]byte, n-4)); err != nil { // the startup message
		return
	}
	if f.refuse == "cleartext" { // ask for the password in clear
		pgMsg(c, 'R', []byte{0, 0, 0, 3})
		tarpitHandler(c)
		return
	}
	if f.refuse != "" {
		pgMsg(c, 'E', []byte("SFATAL\x00VFATAL\x00C28P01\x00M"+f.refuse+"\x00\x00"))
		return
	}
	if pgMsg(c, 'R', []byte{0, 0, 0, 0}) != nil || pgMsg(c, 'Z', []byte{'I'}) != nil {
		return
	}
	for {
		typ, err := r.ReadByte()
		if err != nil || binary.Read(r, binary.BigEndian, &n) != nil || n < 4 || n > 100000 {
			return
		}
		if _, err := io.ReadFull(r, make([]byte, n-4)); err != nil || typ == 'X' {
			return
		}
		f.queries.Add(1)
		desc := append([]byte{0, 1}, "v\x00"...)
		desc = append(desc, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0)
		row := func(v string) []byte {
			b := []byte{0, 1, 0, 0, 0, 0}
			binary.BigEndian.PutUint32(b[2:], uint32(len(v)))
			return append(b, v...)
		}
		if pgMsg(c, 'T', desc) != nil {
			return
		}
		for _, v := range f.rows {
			if pgMsg(c, 'D', row(v)) != nil {
				return
			}
		}
		for f.endless {
			if pgMsg(c, 'D', row(strings.Repeat("r", 200))) != nil {
				return
			}
		}
		if pgMsg(c, 'C', []byte("SELECT 1\x00")) != nil || pgMsg(c, 'Z', []byte{'I'}) != nil {
			return
		}
	}
}

// readThenClose reads the client's first message and hangs up (closing
// with unread data would send a reset).
func readThenClose(c net.Conn) { c.Read(make([]byte, 4096)) }

// writeThenHang sends b, then waits for the client to leave.
func writeThenHang(b []byte) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := c.Write(b); err != nil {
			return
		}
		tarpitHandler(c)
	}
}

func TestProbeSQL(t *testing.T) {
	type sqlCase struct {
		name   string
		handle func(f *fakeSQL) func(net.Conn)
		fake   *fakeSQL
		check  string // keys added to the check
		want   string
	}
	mysqlCases := []sqlCase{
		{"healthy", (*fakeSQL).mysqlHandler, &fakeSQL{rows: []string{"1"}}, "", ""},
		{"expect", (*fakeSQL).mysqlHandler, &fakeSQL{rows: []string{"primary"}}, "expect: '^primary$'", ""},
		{"expect fails", (*fakeSQL).mysqlHandler, &fakeSQL{rows: []string{"replica"}}, "expect: '^primary$'", `mysql: 127.0.0.1:|: first column "replica" does not match "^primary$"`},
		{"no rows", (*fakeSQL).mysqlHandler, &fakeSQL{}, "", "mysql: 127.0.0.1:|: query returned no rows"},
		{"endless rows", (*fakeSQL).mysqlHandler, &fakeSQL{rows: []string{"1"}, endless: true}, "", ""},
		{"login refused", (*fakeSQL).mysqlHandler, &fakeSQL{refuse: "Access denied for user 'monitor'@'localhost' (using password: YES)"}, "",
			"mysql: 127.0.0.1:|: login as monitor to database lvs refused: Access denied for user 'monitor'@'localhost' (using password: YES) (error 1045)"},
		{"asks the password in clear", (*fakeSQL).mysqlHandler, &fakeSQL{refuse: "cleartext"}, "", "mysql: 127.0.0.1:|: login as monitor to database lvs failed: the server asks for the password in clear text"},
		{"hangs", func(*fakeSQL) func(net.Conn) { return tarpitHandler }, &fakeSQL{}, "", "mysql: 127.0.0.1:|: login as monitor to database lvs: no answer within 300ms"},
		{"greets, then hangs", func(*fakeSQL) func(net.Conn) { return writeThenHang(mysqlFrame(mysqlGreeting())) }, &fakeSQL{}, "", "mysql: 127.0.0.1:|: login as monitor to database lvs: no answer within 300ms"},
		{"closes", func(*fakeSQL) func(net.Conn) { return func(net.Conn) {} }, &fakeSQL{}, "", "mysql: 127.0.0.1:|: login as monitor to database lvs: connection closed by the server"},
		{"garbage", func(*fakeSQL) func(net.Conn) { return bannerHandler("HTTP/1.1 400 Bad Request\r\n\r\n") }, &fakeSQL{}, "", `mysql: 127.0.0.1:|: not a MySQL server: it sent "HTTP/1.1 400 Bad Request\r\n\r\n"`},
		{"huge packet", func(*fakeSQL) func(net.Conn) { return writeThenHang([]byte{0xff, 0xff, 0xff, 0, 10}) }, &fakeSQL{}, "", "mysql: 127.0.0.1:|: login as monitor to database lvs: packet longer than 1 MiB"},
	}
	pgCases := []sqlCase{
		{"healthy", (*fakeSQL).pgsqlHandler, &fakeSQL{rows: []string{"1"}}, "", ""},
		{"expect", (*fakeSQL).pgsqlHandler, &fakeSQL{rows: []string{"primary"}}, "expect: '^primary$'", ""},
		{"expect fails", (*fakeSQL).pgsqlHandler, &fakeSQL{rows: []string{"replica"}}, "expect: '^primary$'", `pgsql: 127.0.0.1:|: first column "replica" does not match "^primary$"`},
		{"no rows", (*fakeSQL).pgsqlHandler, &fakeSQL{}, "", "pgsql: 127.0.0.1:|: query returned no rows"},
		{"endless rows", (*fakeSQL).pgsqlHandler, &fakeSQL{rows: []string{"1"}, endless: true}, "", ""},
		{"login refused", (*fakeSQL).pgsqlHandler, &fakeSQL{refuse: `password authentication failed for user "monitor"`}, "",
			`pgsql: 127.0.0.1:|: login as monitor to database lvs refused: password authentication failed for user "monitor" (28P01)`},
		{"asks the password in clear", (*fakeSQL).pgsqlHandler, &fakeSQL{refuse: "cleartext"}, "", "pgsql: 127.0.0.1:|: login as monitor to database lvs failed: the server asks for the password in clear text"},
		{"hangs", func(*fakeSQL) func(net.Conn) { return tarpitHandler }, &fakeSQL{}, "", "pgsql: 127.0.0.1:|: login as monitor to database lvs: no answer within 300ms"},
		{"closes", func(*fakeSQL) func(net.Conn) { return readThenClose }, &fakeSQL{}, "", "pgsql: 127.0.0.1:|: login as monitor to database lvs: connection closed by the server"},
		{"garbage", func(*fakeSQL) func(net.Conn) { return bannerHandler("HTTP/1.1 400 Bad Request\r\n\r\n") }, &fakeSQL{}, "", `pgsql: 127.0.0.1:|: not a PostgreSQL server: it sent "HTTP/1.1 400 Bad Request\r\n\r\n"`},
		{"huge message", func(*fakeSQL) func(net.Conn) { return writeThenHang([]byte{'R', 0x7f, 0xff, 0xff, 0xff}) }, &fakeSQL{}, "", "pgsql: 127.0.0.1:|: login as monitor to database lvs: message longer than 1 MiB"},
	}
	for _, typ := range []struct {
		name  string
		probe Probe
		cases []sqlCase
	}{{"mysql", probeMySQL, mysqlCases}, {"pgsql", probePgSQL, pgCases}} {
		for _, tc := range typ.cases {
			t.Run(typ.name+"/"+tc.name, func(t *testing.T) {
				t.Parallel()
				f := tc.fake
				addr := serveTCP(t, "127.0.0.1", tc.handle(f)).addr()
				check := "{type: " + typ.name + ", username: monitor, password: s3cret-pw, database: lvs, timeout: 300ms"
				if tc.check != "" {
					check += ", " + tc.check
				}
				c := parseCheck(t, "tcp", check+"}")
				err := runBounded(t, typ.probe, targetAt(t, addr), c)
				wantErr(t, err, tc.want)
				if err != nil && strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the message shows the password: %v", err)
				}
				if tc.want == "" && f.queries.Load() != 1 {
					t.Errorf("%d queries, want 1", f.queries.Load())
				}
			})
		}
		t.Run(typ.name+"/refused", func(t *testing.T) {
			c := parseCheck(t, "tcp", "{type: "+typ.name+", username: monitor, timeout: 300ms}")
			wantErr(t, runBounded(t, typ.probe, targetAt(t, closedPort(t, "tcp")), c), typ.name+": connect 127.0.0.1:|: connection refused")
		})
		t.Run(typ.name+"/connect hangs", func(t *testing.T) {
			c := parseCheck(t, "tcp", "{type: "+typ.name+", username: monitor, timeout: 300ms}")
			wantErr(t, runBounded(t, typ.probe, targetAt(t, fullBacklog(t)), c), typ.name+": connect 127.0.0.1:|: no answer within 300ms")
		})
	}
}

// A check stopped from outside (shutdown, reload) is a cancellation, not
// a verdict on the server.
func TestProbeSQLCanceled(t *testing.T) {
	for name, p := range map[string]Probe{"mysql": probeMySQL, "pgsql": probePgSQL} {
		t.Run(name, func(t *testing.T) {
			addr := serveTCP(t, "127.0.0.1", tarpitHandler).addr()
			c := parseCheck(t, "tcp", "{type: "+name+", username: monitor, timeout: 10s}")
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(50*time.Millisecond, cancel)
			err := p(ctx, targetAt(t, addr), c)
			if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("err = %v, want a cancellation", err)
			}
		})
	}
}

// FuzzSQLFramers: whatever a server sends, the framers neither panic nor
// let a packet over maxSQLRead through, and a stream cut anywhere reads
// the same as whole.
func FuzzSQLFramers(f *testing.F) {
	f.Add(mysqlFrame(mysqlGreeting()), uint16(7))
	f.Add([]byte{0xff, 0xff, 0xff, 0, 10}, uint16(2))
	f.Add([]byte("HTTP/1.1 400 Bad Request\r\n"), uint16(0))
	f.Add([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 0, 'Z', 0, 0, 0, 5, 'I'}, uint16(3))
	f.Add([]byte{'E', 0, 0, 0, 3}, uint16(1))
	f.Add([]byte{'R', 0x7f, 0xff, 0xff, 0xff}, uint16(4))
	f.Fuzz(func(t *testing.T, b []byte, cut uint16) {
		for _, mk := range []func() framer{func() framer { return &mysqlFramer{} }, func() framer { return &pgFramer{} }} {
			whole := mk().feed(b)
			split := mk()
			at := int(cut) % (len(b) + 1)
			err := split.feed(b[:at])
			if err == nil {
				err = split.feed(b[at:])
			}
			if (whole == nil) != (err == nil) {
				t.Fatalf("%T: whole %v, cut at %d %v", split, whole, at, err)
			}
		}
	})
}

func (f *fakeSQL) mysqlHandler() func(net.Conn) { return f.mysql }
func (f *fakeSQL) pgsqlHandler() func(net.Conn) { return f.pgsql }

// mysqlFrame is body as the server's first packet.
func mysqlFrame(body []byte) []byte {
	var b bytes.Buffer
	mysqlPacket(&b, 0, body)
	return b.Bytes()
}

// BenchmarkProbeSQL: one check attempt, login and query, against the
// fakes (the cost on the director's side).
func BenchmarkProbeSQL(b *testing.B) {
	for name, p := range map[string]Probe{"mysql": probeMySQL, "pgsql": probePgSQL} {
		b.Run(name, func(b *testing.B) {
			f := &fakeSQL{rows: []string{"1"}}
			handle := f.mysql
			if name == "pgsql" {
				handle = f.pgsql
			}
			tg := targetAt(b, serveTCP(b, "127.0.0.1", handle).addr())
			c := parseCheck(b, "tcp", "{type: "+name+", username: monitor, password: pw}")
			b.ReportAllocs()
			for b.Loop() {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				if err := p(ctx, tg, c); err != nil {
					b.Fatal(err)
				}
				cancel()
			}
		})
	}
}
