package probe

import (
	"context"
	"fmt"
	"strings"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "pop3", Keys: []string{"expect"}, ExpectRegexp: true}, probePOP3)
}

// probePOP3 is the pop3 check: the greeting must be "+OK" and match
// expect, searched in the text after it. No login.
func probePOP3(ctx context.Context, t Target, c *config.Check) error {
	tc, err := dialText(ctx, t)
	if err != nil {
		return fmt.Errorf("pop3: connect %s: %w", t, reason(ctx, err, c))
	}
	defer tc.conn.Close()
	line, err := tc.readLine()
	if err != nil {
		return fmt.Errorf("pop3: banner from %s: %w", t, reason(ctx, err, c))
	}
	text, ok := strings.CutPrefix(line, "+OK")
	if !ok {
		return fmt.Errorf("pop3: banner from %s is %s, want +OK", t, excerpt([]byte(line)))
	}
	if err := matchBanner(c, strings.TrimSpace(text)); err != nil {
		return fmt.Errorf("pop3: %w", err)
	}
	tc.bye("QUIT")
	return nil
}
