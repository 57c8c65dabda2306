package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "imap", Keys: []string{"expect"}, ExpectRegexp: true}, probeIMAP)
}

// probeIMAP is the imap check: the greeting must be "* OK" (or
// "* PREAUTH", a server that trusts the connection) and match expect,
// searched in the text after it. "* BYE" is a server turning clients
// away. No login.
func probeIMAP(ctx context.Context, t Target, c *config.Check) error {
	tc, err := dialText(ctx, t)
	if err != nil {
		return fmt.Errorf("imap: connect %s: %w", t, reason(ctx, err, c))
	}
	defer tc.conn.Close()
	line, err := tc.readLine()
	if err != nil {
		return fmt.Errorf("imap: banner from %s: %w", t, reason(ctx, err, c))
	}
	var text string
	ok := false
	for _, status := range []string{"* OK", "* PREAUTH"} {
		if len(line) >= len(status) && strings.EqualFold(line[:len(status)], status) {
			text, ok = line[len(status):], true
			break
		}
	}
	if !ok {
		return fmt.Errorf("imap: banner from %s is %s, want * OK", t, excerpt([]byte(line)))
	}
	if err := matchBanner(c, strings.TrimSpace(text)); err != nil {
		return fmt.Errorf("imap: %w", err)
	}
	tc.bye("a1 LOGOUT")
	return nil
}
