package probe

import (
	"context"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

// TestMailSIPCancel: a probe stopped from outside (shutdown, reload) in
// the middle of a login or an OPTIONS says so: a cancellation, never a
// timeout or a verdict on the server.
func TestMailSIPCancel(t *testing.T) {
	pki := newTestPKI(t)
	never := func(string) string { return "" }
	pc, err := net.ListenPacket("udp", "127.0.0.1:0") // takes the request, never answers
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	for _, tc := range []struct {
		name  string
		probe Probe
		proto lvs.Protocol
		addr  string
		check string
	}{
		{"imap login", probeIMAP, lvs.TCP, serveTCP(t, "127.0.0.1", imapServer("* OK\r\n", never, make(chan string, 1))).addr(), "{type: imap, username: u, password: p}"},
		{"pop3 login", probePOP3, lvs.TCP, serveTCP(t, "127.0.0.1", pop3Server("+OK\r\n", never, make(chan string, 10))).addr(), "{type: pop3, username: u, password: p}"},
		{"imaps handshake", probeIMAPS, lvs.TCP, serveTCP(t, "127.0.0.1", tarpitHandler).addr(), "{type: imaps}"},
		{"pop3s login", probePOP3S, lvs.TCP, serveTCP(t, "127.0.0.1", pki.overTLS(pop3Server("+OK\r\n", never, make(chan string, 10)))).addr(), "{type: pop3s, username: u, password: p}"},
		{"sip udp", probeSIP, lvs.UDP, pc.LocalAddr().String(), "{type: sip}"},
		{"sip tcp", probeSIP, lvs.TCP, serveTCP(t, "127.0.0.1", tarpitHandler).addr(), "{type: sip}"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			proto := "tcp"
			if tc.proto == lvs.UDP {
				proto = "udp"
			}
			c := parseCheck(t, proto, tc.check[:len(tc.check)-1]+", timeout: 10s}")
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
			defer cancel()
			time.AfterFunc(200*time.Millisecond, cancel)
			start := time.Now()
			err := tc.probe(ctx, targetFor(t, tc.proto, tc.addr), c)
			if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("err = %v, want a cancellation", err)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("returned %s after the cancellation", d)
			}
		})
	}
}
