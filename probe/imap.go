package probe

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "imap", Keys: mailKeys, ExpectRegexp: true}, probeIMAP)
	Register(config.CheckType{Name: "imaps", Keys: slices.Concat(mailKeys, tlsKeys), ExpectRegexp: true}, probeIMAPS)
}

// probeIMAP is the imap check: the greeting must be "* OK" (or
// "* PREAUTH", a server that trusts the connection) and match expect,
// searched in the text after it. "* BYE" is a server turning clients
// away. With a username, LOGIN must be answered OK, as ldirectord's
// check (Net::IMAP::Simple's login) wants; a PREAUTH connection is
// logged in already.
func probeIMAP(ctx context.Context, t Target, c *config.Check) error {
	return imapCheck(ctx, t, c, "imap", false)
}

// probeIMAPS is probeIMAP over implicit TLS (port 993), with https's
// tls_verify, tls_ca and sni.
func probeIMAPS(ctx context.Context, t Target, c *config.Check) error {
	return imapCheck(ctx, t, c, "imaps", true)
}

func imapCheck(ctx context.Context, t Target, c *config.Check, name string, useTLS bool) error {
	tc, err := openText(ctx, t, c, name, useTLS)
	if err != nil {
		return err
	}
	defer tc.conn.Close()
	line, err := tc.readLine()
	if err != nil {
		return fmt.Errorf("%s: banner from %s: %w", name, t, reason(ctx, err, c))
	}
	preauth, text, ok := imapGreeting(line)
	if !ok {
		return fmt.Errorf("%s: banner from %s is %s, want * OK", name, t, excerpt([]byte(line)))
	}
	if err := matchBanner(c, text); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if c.Username != "" && !preauth {
		if err := imapLogin(tc, c); err != nil {
			return fmt.Errorf("%s: %s: %w", name, t, reason(ctx, err, c))
		}
	}
	tc.bye("a2 LOGOUT")
	return nil
}

// imapGreeting reads a greeting line: "* OK text" or "* PREAUTH text"
// (any case).
func imapGreeting(line string) (preauth bool, text string, ok bool) {
	for _, status := range []string{"* OK", "* PREAUTH"} {
		if len(line) >= len(status) && strings.EqualFold(line[:len(status)], status) {
			return status == "* PREAUTH", strings.TrimSpace(line[len(status):]), true
		}
	}
	return false, "", false
}

// imapArg is one argument of a command: quoted text, or a literal.
type imapArg struct {
	text    string // the quoted string, or the literal's bytes
	literal bool
}

// imapString encodes s as an IMAP string (RFC 3501 astring): quoted,
// with \ and " escaped, when it is 7-bit without CR or LF; else a
// literal, which carries any byte but NUL. NUL cannot be sent at all.
func imapString(s string) (imapArg, error) {
	if strings.IndexByte(s, 0) >= 0 {
		return imapArg{}, errNUL
	}
	if strings.IndexFunc(s, func(r rune) bool { return r == '\r' || r == '\n' || r > 0x7f }) >= 0 {
		return imapArg{text: s, literal: true}, nil
	}
	var b strings.Builder
	b.Grow(len(s) + 2)
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return imapArg{text: b.String()}, nil
}

var errNUL = fmt.Errorf("a NUL byte")

// imapLogin sends "a1 LOGIN user password" and wants a1 OK. A literal
// argument is sent as "{n}", then its bytes after the server's "+"
// continuation (synchronizing literals: every server takes them).
func imapLogin(tc *textConn, c *config.Check) error {
	user, err := imapString(c.Username)
	if err != nil {
		return errUnsendable{"username", "IMAP"}
	}
	pass, err := imapString(c.Secret)
	if err != nil {
		return errUnsendable{"password", "IMAP"}
	}
	pending := "a1 LOGIN"
	for _, a := range []imapArg{user, pass} {
		if !a.literal {
			pending += " " + a.text
			continue
		}
		if err := tc.send(pending + " {" + strconv.Itoa(len(a.text)) + "}"); err != nil {
			return err
		}
		if err := imapContinue(tc, c.Username); err != nil {
			return err
		}
		pending = a.text
	}
	if err := tc.send(pending); err != nil {
		return err
	}
	for {
		line, err := tc.readLine()
		if err != nil {
			return err
		}
		switch kind, status, text := parseIMAPLine(line, "a1"); {
		case kind == imapUntagged:
		case kind == imapTagged && status == "OK":
			return nil
		case kind == imapTagged:
			return errLoginRefused{c.Username, status + " " + text}
		default:
			return fmt.Errorf("login as %s: not an IMAP reply: %s", c.Username, excerpt([]byte(line)))
		}
	}
}

// imapContinue waits for the "+" that asks for a literal's bytes.
func imapContinue(tc *textConn, user string) error {
	for {
		line, err := tc.readLine()
		if err != nil {
			return err
		}
		switch kind, status, text := parseIMAPLine(line, "a1"); kind {
		case imapContinuation:
			return nil
		case imapUntagged:
		case imapTagged:
			return errLoginRefused{user, status + " " + text}
		default:
			return fmt.Errorf("login as %s: not an IMAP reply: %s", user, excerpt([]byte(line)))
		}
	}
}

// The kinds of line an IMAP server sends.
const (
	imapOther        = iota // not IMAP
	imapUntagged            // "* ..."
	imapContinuation        // "+ ..."
	imapTagged              // "tag OK|NO|BAD ..."
)

// parseIMAPLine sorts one server line: untagged, a continuation
// request, or the tagged status of command tag (OK, NO or BAD, upper
// case, and the text after it).
func parseIMAPLine(line, tag string) (kind int, status, text string) {
	switch {
	case strings.HasPrefix(line, "* ") || line == "*":
		return imapUntagged, "", ""
	case strings.HasPrefix(line, "+"):
		return imapContinuation, "", ""
	}
	rest, ok := strings.CutPrefix(line, tag+" ")
	if !ok {
		return imapOther, "", ""
	}
	word, text, _ := strings.Cut(rest, " ")
	switch status = strings.ToUpper(word); status {
	case "OK", "NO", "BAD":
		return imapTagged, status, text
	}
	return imapOther, "", ""
}
