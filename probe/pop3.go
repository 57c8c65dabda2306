package probe

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "pop3", Keys: mailKeys, ExpectRegexp: true}, probePOP3)
	Register(config.CheckType{Name: "pop3s", Keys: slices.Concat(mailKeys, tlsKeys), ExpectRegexp: true}, probePOP3S)
}

// probePOP3 is the pop3 check: the greeting must be "+OK" and match
// expect, searched in the text after it. With a username, USER and PASS
// must be answered +OK, as ldirectord's check (Mail::POP3Client's
// login) wants.
func probePOP3(ctx context.Context, t Target, c *config.Check) error {
	return pop3Check(ctx, t, c, "pop3", false)
}

// probePOP3S is probePOP3 over implicit TLS (port 995; ldirectord's
// pops), with https's tls_verify, tls_ca and sni.
func probePOP3S(ctx context.Context, t Target, c *config.Check) error {
	return pop3Check(ctx, t, c, "pop3s", true)
}

func pop3Check(ctx context.Context, t Target, c *config.Check, name string, useTLS bool) error {
	tc, err := openText(ctx, t, c, name, useTLS)
	if err != nil {
		return err
	}
	defer tc.conn.Close()
	line, err := tc.readLine()
	if err != nil {
		return fmt.Errorf("%s: banner from %s: %w", name, t, reason(ctx, err, c))
	}
	ok, text, known := parsePOP3Reply(line)
	if !ok || !known {
		return fmt.Errorf("%s: banner from %s is %s, want +OK", name, t, excerpt([]byte(line)))
	}
	if err := matchBanner(c, text); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if c.Username != "" {
		if err := pop3Login(tc, c); err != nil {
			return fmt.Errorf("%s: %s: %w", name, t, reason(ctx, err, c))
		}
	}
	tc.bye("QUIT")
	return nil
}

// pop3Login sends USER and PASS (RFC 1939); each must be answered +OK.
// A line break or NUL cannot be sent in either.
func pop3Login(tc *textConn, c *config.Check) error {
	if strings.ContainsAny(c.Username, "\x00\r\n") {
		return errUnsendable{"username", "POP3"}
	}
	if strings.ContainsAny(c.Secret, "\x00\r\n") {
		return errUnsendable{"password", "POP3"}
	}
	for _, cmd := range []string{"USER " + c.Username, "PASS " + c.Secret} {
		if err := tc.send(cmd); err != nil {
			return err
		}
		line, err := tc.readLine()
		if err != nil {
			return err
		}
		switch ok, text, known := parsePOP3Reply(line); {
		case !known:
			return fmt.Errorf("login as %s: not a POP3 reply: %s", c.Username, excerpt([]byte(line)))
		case !ok:
			return errLoginRefused{c.Username, "-ERR " + text}
		}
	}
	return nil
}

// parsePOP3Reply reads a status line: "+OK text" or "-ERR text" (known
// false for anything else).
func parsePOP3Reply(line string) (ok bool, text string, known bool) {
	if rest, found := strings.CutPrefix(line, "+OK"); found {
		return true, strings.TrimSpace(rest), true
	}
	if rest, found := strings.CutPrefix(line, "-ERR"); found {
		return false, strings.TrimSpace(rest), true
	}
	return false, "", false
}
