package probe

import (
	"context"
	"errors"
	"fmt"
	"syscall"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "udp", Keys: []string{"send", "expect"}, ExpectRegexp: true, MaxSend: config.MaxUDPPayload}, probeUDP)
}

// probeUDP is the udp check: send the payload in one datagram and wait
// for a reply that matches expect (any reply when expect is empty).
// The socket is connected, so the kernel hands over only the server's
// datagrams and turns an ICMP port unreachable into an immediate
// "connection refused" instead of a wait for the timeout. Nothing is
// resent within an attempt: a lost datagram is what retries are for.
func probeUDP(ctx context.Context, t Target, c *config.Check) error {
	msg, err := payload(c)
	if err != nil {
		return fmt.Errorf("udp: send: %w", err)
	}
	re, err := expectRegexp(c)
	if err != nil {
		return fmt.Errorf("udp: %w", err)
	}
	conn, err := dialTarget(ctx, "udp", t)
	if err != nil {
		return fmt.Errorf("udp: %s: %w", t, reason(ctx, err, c))
	}
	defer conn.Close()
	if _, err := conn.Write(msg); err != nil {
		return fmt.Errorf("udp: send to %s: %w", t, udpReason(ctx, err, c))
	}
	buf := make([]byte, 64<<10)
	var last []byte
	for {
		n, err := conn.Read(buf)
		if err != nil {
			err = udpReason(ctx, err, c)
			if last != nil && !errors.Is(err, syscall.ECONNREFUSED) {
				return fmt.Errorf("udp: %s: replies do not match %q (last %s): %w", t, re.String(), excerpt(last), err)
			}
			return fmt.Errorf("udp: %s: %w", t, err)
		}
		if re == nil || re.Match(buf[:n]) {
			return nil
		}
		last = append(last[:0], buf[:n]...)
	}
}

// udpReason is reason with the ICMP behind a refusal spelled out: for
// UDP there was no connection to refuse.
func udpReason(ctx context.Context, err error, c *config.Check) error {
	err = reason(ctx, err, c)
	if errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("port unreachable (ICMP): %w", err)
	}
	return err
}
