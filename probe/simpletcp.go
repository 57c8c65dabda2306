package probe

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "simpletcp", Keys: []string{"send", "expect", "max_body"}, ExpectRegexp: true}, probeSimpleTCP)
}

// probeSimpleTCP is the simpletcp check (ldirectord's send/receive):
// connect, send the payload if there is one, and read until what the
// server sent matches expect. Without expect, a connection that takes
// the payload is enough. The server may answer in pieces; it is read
// until a match, its close, max_body, or the timeout.
func probeSimpleTCP(ctx context.Context, t Target, c *config.Check) error {
	msg, err := payload(c)
	if err != nil {
		return fmt.Errorf("simpletcp: send: %w", err)
	}
	re, err := expectRegexp(c)
	if err != nil {
		return fmt.Errorf("simpletcp: %w", err)
	}
	conn, err := dialTarget(ctx, "tcp", t)
	if err != nil {
		return fmt.Errorf("simpletcp: connect %s: %w", t, reason(ctx, err, c))
	}
	defer conn.Close()
	if len(msg) > 0 {
		if _, err := conn.Write(msg); err != nil {
			return fmt.Errorf("simpletcp: send to %s: %w", t, reason(ctx, err, c))
		}
	}
	if re == nil {
		return nil
	}
	maxBody := c.MaxBody
	if maxBody <= 0 {
		maxBody = config.DefaultMaxBody
	}
	r := newCapReader(conn, maxBody, "answer")
	var got []byte
	buf := make([]byte, 4096)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if n > 0 && re.Match(got) {
			return nil
		}
		var tooLong errTooLong
		switch {
		case errors.As(err, &tooLong):
			return fmt.Errorf("simpletcp: answer from %s longer than max_body (%s) without matching %q", t, byteSize(maxBody), re.String())
		case errors.Is(err, io.EOF) && len(got) == 0:
			return fmt.Errorf("simpletcp: %s closed the connection without answering, want %q", t, re.String())
		case err != nil && len(got) == 0:
			return fmt.Errorf("simpletcp: %s: %w", t, reason(ctx, err, c))
		case err != nil:
			return fmt.Errorf("simpletcp: answer from %s does not match %q: %w (got %s)", t, re.String(), reason(ctx, err, c), excerpt(got))
		}
	}
}
