package probe

import (
	"context"
	"fmt"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "tcp"}, probeTCP)
}

// probeTCP is the tcp check: the server is healthy when a new connection
// completes its handshake. Nothing is sent; the connection is closed at
// once.
func probeTCP(ctx context.Context, t Target, c *config.Check) error {
	conn, err := dialTarget(ctx, "tcp", t)
	if err != nil {
		return fmt.Errorf("tcp: connect %s: %w", t, reason(ctx, err, c))
	}
	conn.Close()
	return nil
}
