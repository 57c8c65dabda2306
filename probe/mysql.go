package probe

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"

	"github.com/go-sql-driver/mysql"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "mysql", Keys: []string{"username", "password", "password_file", "database", "query", "expect"}, ExpectRegexp: true}, probeMySQL)
}

// probeMySQL is the mysql check (MySQL, MariaDB), ldirectord's
// check_mysql: log in as username to database, run query (default
// SELECT 1) and be healthy when it returns a row, whose first column
// must match expect when set. A refused login, a failed query and an
// empty result are the server's answers: down, as in ldirectord (which
// a replica can use: "SELECT 1 FROM ... WHERE lag < 10"). Plain TCP, no
// TLS, as ldirectord's; the password goes out hashed or encrypted
// (mysql_native_password, caching_sha2_password, MariaDB's ed25519),
// never in clear text (the driver refuses mysql_clear_password).
// go-sql-driver/mysql speaks the protocol, one fresh connection per
// attempt, never a pool.
func probeMySQL(ctx context.Context, t Target, c *config.Check) error {
	d := &sqlDialer{t: t, f: &mysqlFramer{}}
	defer d.close()
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr = "tcp", t.String()
	cfg.User, cfg.Passwd, cfg.DBName = c.Username, c.Secret, c.Database
	cfg.DialFunc = d.dial
	cfg.Logger = &mysql.NopLogger{} // its messages are the failures below
	cfg.ConnectionAttributes = "program_name:lvsmon"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return fmt.Errorf("mysql: %w", err)
	}
	dc, err := conn.Connect(ctx)
	login := "login as " + c.Username
	if c.Database != "" {
		login += " to database " + c.Database
	}
	if err != nil {
		if f := d.failure(ctx, c, "mysql", login, err, isMySQLError(err)); f != nil {
			return f
		}
		return fmt.Errorf("mysql: %s: %s %s: %s", t, login, refusedOr(isMySQLError(err)), mysqlMessage(err))
	}
	defer dc.Close()
	q, ok := dc.(driver.QueryerContext)
	if !ok { // every version of the driver has it
		return errors.New("mysql: the driver cannot run queries")
	}
	rows, err := q.QueryContext(ctx, c.Query, nil)
	if err != nil {
		if f := d.failure(ctx, c, "mysql", "query", err, isMySQLError(err)); f != nil {
			return f
		}
		return fmt.Errorf("mysql: %s: query failed: %s", t, mysqlMessage(err))
	}
	row := make([]driver.Value, len(rows.Columns()))
	err = rows.Next(row)
	switch {
	case errors.Is(err, io.EOF):
		return fmt.Errorf("mysql: %s: query returned no rows", t)
	case err != nil:
		if f := d.failure(ctx, c, "mysql", "query", err, isMySQLError(err)); f != nil {
			return f
		}
		return fmt.Errorf("mysql: %s: query failed: %s", t, mysqlMessage(err))
	}
	var first []byte
	if len(row) > 0 {
		switch v := row[0].(type) {
		case []byte:
			first = v
		case nil:
		default: // the text protocol gives bytes; a later driver may not
			first = fmt.Append(nil, v)
		}
	}
	if err := matchFirstColumn(c, first); err != nil {
		return fmt.Errorf("mysql: %s: %w", t, err)
	}
	return nil
}

func isMySQLError(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me)
}

// mysqlMessage is the server's error as its manual lists it: "Access
// denied for user 'monitor'@'10.0.0.1' (using password: YES) (error
// 1045)", or the driver's, in lvsmon's terms. The server's messages
// never hold the password.
func mysqlMessage(err error) string {
	var me *mysql.MySQLError
	switch {
	case errors.As(err, &me):
		return fmt.Sprintf("%s (error %d)", me.Message, me.Number)
	case errors.Is(err, mysql.ErrCleartextPassword):
		return "the server asks for the password in clear text, which lvsmon does not send"
	case errors.Is(err, mysql.ErrOldPassword):
		return "the account has a pre-4.1 password hash, which lvsmon does not use (set a new password)"
	}
	return err.Error()
}

// refusedOr is how a login ended: refused by the server, or failed on
// the client's side (an authentication method it does not speak).
func refusedOr(answered bool) string {
	if answered {
		return "refused"
	}
	return "failed"
}

// mysqlFramer follows MySQL's packets: a 3-byte little-endian length and
// a sequence number, then the body. The first packet is the server's
// greeting, sequence 0, protocol version 10, or an error packet (0xff:
// "Host is not allowed to connect", "Too many connections").
type mysqlFramer struct {
	hdr   [4]byte
	nhdr  int
	left  int  // body bytes left in the current packet
	first bool // the greeting's header was read
	body  bool // the greeting's first body byte was checked
}

func (f *mysqlFramer) feed(b []byte) error {
	for len(b) > 0 {
		if f.left > 0 {
			if f.first && !f.body {
				f.body = true
				if b[0] != 10 && b[0] != 0xff {
					return errNotServer{proto: "MySQL"}
				}
			}
			n := min(f.left, len(b))
			f.left -= n
			b = b[n:]
			continue
		}
		n := copy(f.hdr[f.nhdr:], b)
		f.nhdr += n
		b = b[n:]
		if f.nhdr < len(f.hdr) {
			return nil
		}
		f.nhdr = 0
		size := int(f.hdr[0]) | int(f.hdr[1])<<8 | int(f.hdr[2])<<16
		if !f.first {
			f.first = true
			if f.hdr[3] != 0 || size == 0 {
				return errNotServer{proto: "MySQL"}
			}
		}
		if size > maxSQLRead {
			return errTooLong{"packet", maxSQLRead}
		}
		f.left = size
	}
	return nil
}
