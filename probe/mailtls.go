package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"strings"

	"github.com/lvsmon/lvsmon/config"
)

// The parts imap, imaps, pop3 and pop3s share: implicit TLS and the login
// conversation's guards. ldirectord's imaps and pops are implicit TLS
// (Net::IMAP::Simple::SSL, Mail::POP3Client USESSL) and it speaks no
// STARTTLS, so neither does lvsmon.

// mailKeys are the keys the mail checks read; the TLS ones are https's,
// with the same meaning.
var (
	mailKeys = []string{"expect", "username", "password", "password_file"}
	tlsKeys  = []string{"tls_verify", "tls_ca", "sni"}
)

// openText opens a line conversation for check type name, over TLS when
// useTLS. Its errors are whole messages ("imaps: connect ...: connection
// refused", "imaps: TLS handshake with ...: x509: ...").
func openText(ctx context.Context, t Target, c *config.Check, name string, useTLS bool) (*textConn, error) {
	var cfg *tls.Config
	if useTLS {
		var err error
		// https's TLS settings (tls_verify, tls_ca, sni) without ALPN:
		// no mail server needs it.
		if cfg, err = httpsConfig(t, c); err != nil {
			return nil, fmt.Errorf("%s: tls_ca: %w", name, err)
		}
		cfg.NextProtos = nil
	}
	tc, err := dialText(ctx, t)
	if err != nil {
		return nil, fmt.Errorf("%s: connect %s: %w", name, t, reason(ctx, err, c))
	}
	if !useTLS {
		return tc, nil
	}
	conn := tls.Client(tc.conn, cfg)
	if err := conn.HandshakeContext(ctx); err != nil {
		tc.conn.Close()
		return nil, fmt.Errorf("%s: TLS handshake with %s: %w", name, t, reason(ctx, err, c))
	}
	return &textConn{conn: conn, r: bufio.NewReader(newCapReader(conn, maxReply, "reply"))}, nil
}

// maxShown bounds the server text quoted in a message.
const maxShown = 200

// shown is a server's reply text as a message quotes it: as it is when
// it is short printable ASCII, else quoted and cut.
func shown(s string) string {
	s = strings.TrimSpace(s)
	if len(s) > maxShown || strings.IndexFunc(s, func(r rune) bool { return r < ' ' || r > '~' }) >= 0 {
		return excerpt([]byte(s))
	}
	return s
}

// errLoginRefused is a server that answered a login with a refusal: the
// server's answer, so a failure. It names the user, never the password.
type errLoginRefused struct{ user, reply string }

func (e errLoginRefused) Error() string {
	return "login as " + e.user + " refused: " + shown(e.reply)
}

// errUnsendable is a credential the protocol cannot carry (config
// refuses them at load; a Check built in code may still hold one).
type errUnsendable struct{ what, proto string }

func (e errUnsendable) Error() string {
	return fmt.Sprintf("the %s holds a NUL or line break, which %s cannot send", e.what, e.proto)
}
