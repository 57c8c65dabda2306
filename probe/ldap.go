package probe

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/go-ldap/ldap/v3"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	keys := []string{"username", "password", "password_file", "base_dn", "scope", "filter", "expect"}
	Register(config.CheckType{Name: "ldap", Keys: keys, ExpectRegexp: true}, probeLDAP)
	Register(config.CheckType{Name: "ldaps", Keys: append(keys, "tls_verify", "tls_ca", "sni"), ExpectRegexp: true}, probeLDAP)
}

// maxLDAPReply bounds what one ldap check reads: a bind result, one
// entry's DN (no attributes are asked for) and the search's end are a
// few hundred bytes. The BER decoder keeps a copy of a packet per level
// of nesting and slows down more than linearly on a packet of many
// small parts (8 KiB of them cost some 20 ms of CPU, 64 KiB half a
// second), so the cap bounds its memory and its time too.
const maxLDAPReply = 8 << 10

// probeLDAP is the ldap and ldaps check, as ldirectord's check_ldap: a
// fresh connection (TLS from the first byte for ldaps), a simple bind
// (anonymous unless username is set), then one search (base_dn, scope,
// filter; by default the root DSE, which every server answers). The
// server is healthy when the bind is accepted and the search finds an
// entry whose DN matches expect, when set. A refused bind, a failed
// search or no entry is the server's answer, so the check fails:
// ldirectord takes the server out for each, and an LDAP server that
// refuses its monitoring user refuses its clients too.
func probeLDAP(ctx context.Context, t Target, c *config.Check) error {
	typ := c.Type
	if typ == "" {
		typ = "ldap"
	}
	raw, err := dialTarget(ctx, "tcp", t)
	if err != nil {
		return fmt.Errorf("%s: connect %s: %w", typ, t, reason(ctx, err, c))
	}
	conn := raw
	if typ == "ldaps" {
		cfg, err := httpsConfig(t, c)
		if err != nil {
			raw.Close()
			return fmt.Errorf("ldaps: %w", err)
		}
		cfg.NextProtos = nil
		tc := tls.Client(raw, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			raw.Close()
			return fmt.Errorf("ldaps: TLS handshake with %s: %w", t, reason(ctx, err, c))
		}
		conn = tc
	}
	wc := &ldapWire{Conn: conn, left: maxLDAPReply}
	l := ldap.NewConn(wc, typ == "ldaps")
	l.Start()
	ok := false
	defer func() {
		if ok {
			l.Unbind() // polite: the server logs a clean close
		} else {
			l.Close()
		}
	}()
	// failed turns the library's error into the operator's: the
	// server's LDAP result when it sent one (a server may hang up right
	// after refusing a bind), else the connection's own trouble (a
	// timeout, a close, garbage), which the library keeps as text only.
	failed := func(what, refused string, err error) error {
		var le *ldap.Error
		if errors.As(err, &le) && le.ResultCode < ldap.ErrorNetwork && ctx.Err() == nil {
			return fmt.Errorf("%s: %s: %s %s: %w", typ, t, what, refused, ldapResult{le})
		}
		if werr := wc.failure(); werr != nil || ctx.Err() != nil {
			return fmt.Errorf("%s: %s: %s: %w", typ, t, what, reason(ctx, cmp.Or(werr, err), c))
		}
		return fmt.Errorf("%s: %s: %s: %w", typ, t, what, err)
	}

	if c.Username == "" {
		err = l.UnauthenticatedBind("")
		if err != nil {
			return failed("anonymous bind", "refused", err)
		}
	} else if err = l.Bind(c.Username, ldapPassword(c)); err != nil {
		return failed("bind as "+c.Username, "refused", err)
	}

	filter := cmp.Or(c.Filter, config.DefaultLDAPFilter)
	scope := cmp.Or(c.Scope, "base")
	req := &ldap.SearchRequest{
		BaseDN:           c.BaseDN,
		Scope:            ldapScopes[scope],
		DerefAliases:     ldap.NeverDerefAliases,
		SizeLimit:        1,
		EnforceSizeLimit: true,
		Filter:           filter,
		Attributes:       []string{"1.1"}, // RFC 4511: no attributes, the DN is enough
	}
	what := fmt.Sprintf("search %s in %q (scope %s)", filter, c.BaseDN, scope)
	res, err := l.Search(req)
	// One entry is all that is asked: a server that has more says so
	// (sizeLimitExceeded) after sending the first.
	if err != nil && !(res != nil && len(res.Entries) > 0 && (errors.Is(err, ldap.ErrSizeLimitExceeded) || ldap.IsErrorWithCode(err, ldap.LDAPResultSizeLimitExceeded))) {
		return failed(what, "failed", err)
	}
	if len(res.Entries) == 0 {
		return fmt.Errorf("%s: %s: %s found no entry", typ, t, what)
	}
	re, err := expectRegexp(c)
	if err != nil {
		return fmt.Errorf("%s: %w", typ, err)
	}
	if dn := res.Entries[0].DN; re != nil && !re.MatchString(dn) {
		return fmt.Errorf("%s: %s: entry %s does not match %q", typ, t, excerpt([]byte(dn)), re.String())
	}
	ok = true
	return nil
}

var ldapScopes = map[string]int{"base": ldap.ScopeBaseObject, "one": ldap.ScopeSingleLevel, "sub": ldap.ScopeWholeSubtree}

// ldapPassword is the bind password: the one read at load, or Password
// for a Check built in code.
func ldapPassword(c *config.Check) string { return cmp.Or(c.Secret, c.Password) }

// ldapResult is an LDAP result code from the server, in the words of
// RFC 4511 and with the server's diagnostic message: "Invalid
// Credentials (49)".
type ldapResult struct{ e *ldap.Error }

func (r ldapResult) Error() string {
	s := ldap.LDAPResultCodeMap[r.e.ResultCode]
	if s == "" {
		s = "result"
	}
	s += " (" + strconv.Itoa(int(r.e.ResultCode)) + ")"
	if r.e.Err != nil && r.e.Err.Error() != "" {
		s += ": " + excerpt([]byte(r.e.Err.Error()))
	}
	return s
}

func (r ldapResult) Unwrap() error { return r.e }

// errNotLDAP is a server that answered with something that cannot be an
// LDAP message: every one starts with a BER SEQUENCE (0x30).
type errNotLDAP struct{ start []byte }

func (e errNotLDAP) Error() string { return "not an LDAP server: it sent " + excerpt(e.start) }

// ldapWire is the connection under the LDAP client. It keeps the first
// read error, which the client reduces to a string, so that a timeout, a
// close or a reset reach the check's result as themselves; it refuses a
// stream that does not start as LDAP does, and it caps what is read.
type ldapWire struct {
	net.Conn
	mu      sync.Mutex
	err     error
	started bool
	left    int
}

func (w *ldapWire) Read(p []byte) (int, error) {
	w.mu.Lock()
	err, left, started := w.err, w.left, w.started
	w.mu.Unlock()
	switch {
	case err != nil:
		return 0, err
	case left <= 0:
		return 0, w.fail(errTooLong{"LDAP replies", maxLDAPReply})
	}
	// Only the client's reader goroutine reads: the state read above
	// cannot change under it, and the lock is not held while blocked.
	n, err := w.Conn.Read(p[:min(len(p), left)])
	w.mu.Lock()
	w.left -= n
	w.started = started || n > 0
	w.mu.Unlock()
	if n > 0 && !started && p[0] != 0x30 {
		return 0, w.fail(errNotLDAP{append([]byte(nil), p[:min(n, 80)]...)})
	}
	if err != nil {
		w.fail(err)
	}
	return n, err
}

// fail keeps the first read error and returns it.
func (w *ldapWire) fail(err error) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err == nil {
		w.err = err
	}
	return err
}

// failure is the first read error, or nil.
func (w *ldapWire) failure() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
