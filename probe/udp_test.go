package probe

import (
	"net"
	"testing"
)

// serveUDP runs a loopback UDP server answering each datagram with
// reply(datagram), or nothing when reply returns nil.
func serveUDP(t *testing.T, host string, reply func([]byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if out := reply(buf[:n]); out != nil {
				pc.WriteTo(out, from)
			}
		}
	}()
	t.Cleanup(func() {
		pc.Close()
		<-done
	})
	return pc.LocalAddr().String()
}

func echo(b []byte) []byte { return b }

func TestProbeUDP(t *testing.T) {
	echo4 := serveUDP(t, "127.0.0.1", echo)
	echo6 := serveUDP(t, "::1", echo)
	// busy answers everything, never with what the check expects.
	busy := serveUDP(t, "127.0.0.1", func([]byte) []byte { return []byte("busy") })
	silent := serveUDP(t, "127.0.0.1", func([]byte) []byte { return nil })
	tests := []struct {
		name, addr, check, want string
	}{
		{"echo matches", echo4, `{type: udp, send: 'PING\n', expect: '^PING\n$'}`, ""},
		{"any reply will do", echo4, `{type: udp, send: hello}`, ""},
		{"empty datagram", echo4, `{type: udp}`, ""},
		{"binary payload", echo4, `{type: udp, send: '\x00\x01\x7f', expect: '^\x00\x01\x7f$'}`, ""},
		{"echo on ::1", echo6, `{type: udp, send: PING, expect: PING}`, ""},
		{"wrong reply", busy, `{type: udp, send: PING, expect: PONG}`, `udp: 127.0.0.1:|: replies do not match "PONG" (last "busy"): no answer within 300ms`},
		{"silence", silent, `{type: udp, send: PING}`, "udp: 127.0.0.1:|: no answer within 300ms"},
		{"port unreachable", closedPort(t, "udp"), `{type: udp, send: PING}`, "udp: 127.0.0.1:|: port unreachable (ICMP): connection refused"},
		{"port unreachable on ::1", closedPort(t, "udp6"), `{type: udp, send: PING}`, "udp: [::1]:|: port unreachable (ICMP): connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parseCheck(t, "udp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probeUDP, targetFor(t, 17, tc.addr), c), tc.want)
		})
	}
}
