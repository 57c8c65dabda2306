package probe

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "pgsql", Keys: []string{"username", "password", "password_file", "database", "query", "expect"}, ExpectRegexp: true}, probePgSQL)
}

// pgTemplate is the client configuration every pgsql attempt copies.
// pgconn builds configurations only by parsing (it refuses one made
// otherwise), and parsing reads the environment and files (PGHOST,
// ~/.pgpass): it is done once, with everything a check sets written
// out, and the check's own values go into the copy. require_auth
// refuses a server that asks for the password in clear text.
var pgTemplate = sync.OnceValues(func() (*pgconn.Config, error) {
	return pgconn.ParseConfig("host=127.0.0.1 port=5432 user=lvsmon dbname=lvsmon passfile='' sslmode=disable " +
		"target_session_attrs=any require_auth=!password connect_timeout=0")
})

// probePgSQL is the pgsql check (PostgreSQL), ldirectord's check_pgsql:
// log in as username to database (default: the user's own, as psql),
// run query (default SELECT 1) and be healthy when it returns a row,
// whose first column must match expect when set. A refused login, a
// failed query and an empty result are the server's answers: down, as
// in ldirectord (a replica can say "SELECT 1 WHERE NOT
// pg_is_in_recovery()" or check its lag). Plain TCP, no TLS, as
// ldirectord's, and the password never in clear text (md5 or SCRAM).
// The query goes as a simple query (one round trip, nothing prepared,
// which poolers like pgbouncer pass through); of several statements,
// the first that returns a row counts. pgconn (pgx's protocol layer)
// speaks the protocol, one fresh connection per attempt, never a pool.
func probePgSQL(ctx context.Context, t Target, c *config.Check) error {
	tmpl, err := pgTemplate()
	if err != nil {
		return fmt.Errorf("pgsql: client configuration: %w", err)
	}
	d := &sqlDialer{t: t, f: &pgFramer{}}
	defer d.close()
	cfg := tmpl.Copy()
	cfg.Host, cfg.Port = t.Addr.String(), t.Port
	cfg.User, cfg.Password, cfg.Database = c.Username, c.Secret, c.Database
	if cfg.Database == "" {
		cfg.Database = c.Username
	}
	cfg.DialFunc = d.dial
	cfg.LookupFunc = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.Fallbacks = nil
	cfg.RuntimeParams = map[string]string{"application_name": "lvsmon"}
	cfg.MaxProtocolMessageBodyLen = maxSQLRead
	login := "login as " + c.Username + " to database " + cfg.Database
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		if f := d.failure(ctx, c, "pgsql", login, err, isPgError(err)); f != nil {
			return f
		}
		return fmt.Errorf("pgsql: %s: %s %s: %s", t, login, refusedOr(isPgError(err)), pgMessage(err))
	}
	// Closing the connection, not the results, ends the attempt: closing
	// a result reads the rest of it, however long.
	defer conn.Close(ctx)
	first, found, err := pgFirstRow(conn.Exec(ctx, c.Query))
	switch {
	case err != nil:
		if f := d.failure(ctx, c, "pgsql", "query", err, isPgError(err)); f != nil {
			return f
		}
		return fmt.Errorf("pgsql: %s: query failed: %s", t, pgMessage(err))
	case !found:
		return fmt.Errorf("pgsql: %s: query returned no rows", t)
	}
	if err := matchFirstColumn(c, first); err != nil {
		return fmt.Errorf("pgsql: %s: %w", t, err)
	}
	return nil
}

// pgFirstRow reads results up to the first row and returns its first
// column (nil for NULL or no column).
func pgFirstRow(mrr *pgconn.MultiResultReader) (first []byte, found bool, err error) {
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		if rr.NextRow() {
			if vals := rr.Values(); len(vals) > 0 {
				first = vals[0]
			}
			return first, true, nil
		}
		if _, err := rr.Close(); err != nil {
			return nil, false, err
		}
	}
	return nil, false, mrr.Close()
}

func isPgError(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe)
}

// isRequireAuth is a server that asked for an authentication lvsmon
// refuses (the password in clear text); pgconn has no error type for it.
func isRequireAuth(err error) bool { return strings.Contains(err.Error(), "require_auth") }

// pgMessage is the server's error: "password authentication failed for
// user "monitor" (28P01)". The server's messages never hold the
// password, and pgx's own (which name the user and database) are not
// shown.
func pgMessage(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s (%s)", pe.Message, pe.Code)
	}
	if isRequireAuth(err) {
		return "the server asks for the password in clear text, which lvsmon does not send (pg_hba.conf: use scram-sha-256 or md5)"
	}
	var ce *pgconn.ConnectError
	if errors.As(err, &ce) && errors.Unwrap(ce) != nil {
		return errors.Unwrap(ce).Error()
	}
	return err.Error()
}

// pgFramer follows PostgreSQL's messages: a type byte and a 4-byte
// big-endian length that counts itself, then the body. The first answer
// to the client's startup message is an authentication request (R), an
// error (E) or a protocol version negotiation (v).
type pgFramer struct {
	hdr   [5]byte
	nhdr  int
	left  int
	first bool
}

func (f *pgFramer) feed(b []byte) error {
	for len(b) > 0 {
		if f.left > 0 {
			n := min(f.left, len(b))
			f.left -= n
			b = b[n:]
			continue
		}
		if !f.first && f.nhdr == 0 && b[0] != 'R' && b[0] != 'E' && b[0] != 'v' {
			return errNotServer{proto: "PostgreSQL"}
		}
		n := copy(f.hdr[f.nhdr:], b)
		f.nhdr += n
		b = b[n:]
		if f.nhdr < len(f.hdr) {
			return nil
		}
		f.nhdr = 0
		size := int64(f.hdr[1])<<24 | int64(f.hdr[2])<<16 | int64(f.hdr[3])<<8 | int64(f.hdr[4])
		switch {
		case size < 4 && !f.first:
			return errNotServer{proto: "PostgreSQL"}
		case size < 4:
			return fmt.Errorf("malformed message (length %d)", size)
		case size-4 > maxSQLRead:
			return errTooLong{"message", maxSQLRead}
		}
		f.first = true
		f.left = int(size - 4)
	}
	return nil
}
