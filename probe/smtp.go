package probe

import (
	"context"
	"fmt"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "smtp", Keys: []string{"ehlo", "expect"}, ExpectRegexp: true}, probeSMTP)
}

// probeSMTP is the smtp check: the greeting must be 220 (and match
// expect, searched in its text), and EHLO must be answered 250. A mail
// server that greets but refuses EHLO (overloaded, misconfigured) takes
// no mail, so the banner alone is not enough.
func probeSMTP(ctx context.Context, t Target, c *config.Check) error {
	tc, err := dialText(ctx, t)
	if err != nil {
		return fmt.Errorf("smtp: connect %s: %w", t, reason(ctx, err, c))
	}
	defer tc.conn.Close()
	banner, err := tc.expectReply(ctx, c, 220)
	if err != nil {
		return fmt.Errorf("smtp: banner from %s: %w", t, err)
	}
	if err := matchBanner(c, banner); err != nil {
		return fmt.Errorf("smtp: %w", err)
	}
	name := c.EHLO
	if name == "" {
		name = "localhost"
	}
	if err := tc.send("EHLO " + name); err != nil {
		return fmt.Errorf("smtp: send EHLO to %s: %w", t, reason(ctx, err, c))
	}
	if _, err := tc.expectReply(ctx, c, 250); err != nil {
		return fmt.Errorf("smtp: EHLO %s: %w", name, err)
	}
	tc.bye("QUIT")
	return nil
}
