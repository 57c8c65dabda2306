package probe

import (
	"context"
	"fmt"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "ftp", Keys: []string{"expect"}, ExpectRegexp: true}, probeFTP)
}

// probeFTP is the ftp check: the greeting (one line or several, "220-")
// must be 220 and match expect, searched in its text. No login: a
// health check carries no credentials.
func probeFTP(ctx context.Context, t Target, c *config.Check) error {
	tc, err := dialText(ctx, t)
	if err != nil {
		return fmt.Errorf("ftp: connect %s: %w", t, reason(ctx, err, c))
	}
	defer tc.conn.Close()
	banner, err := tc.expectReply(ctx, c, 220)
	if err != nil {
		return fmt.Errorf("ftp: banner from %s: %w", t, err)
	}
	if err := matchBanner(c, banner); err != nil {
		return fmt.Errorf("ftp: %w", err)
	}
	tc.bye("QUIT")
	return nil
}
