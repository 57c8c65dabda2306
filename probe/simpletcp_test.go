package probe

import (
	"bufio"
	"net"
	"strings"
	"testing"
)

// statusServer answers a request line "STATUS" with "200 " and, in a
// second write, "OK\r\n"; anything else with "500 what?\r\n".
func statusServer(c net.Conn) {
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return
	}
	if strings.TrimSpace(line) != "STATUS" {
		c.Write([]byte("500 what?\r\n"))
		return
	}
	c.Write([]byte("200 "))
	c.Write([]byte("OK\r\n"))
	tarpitHandler(c)
}

// streamer sends without end.
func streamer(c net.Conn) {
	chunk := []byte(strings.Repeat("x", 64<<10))
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

func TestProbeSimpleTCP(t *testing.T) {
	status := serveTCP(t, "127.0.0.1", statusServer).addr()
	status6 := serveTCP(t, "::1", statusServer).addr()
	tests := []struct {
		name   string
		handle func(net.Conn) // nil: the status server
		addr   string
		check  string
		want   string
	}{
		{"send and expect", nil, status, `{type: simpletcp, send: 'STATUS\r\n', expect: '^200 OK\r\n'}`, ""},
		{"send and expect on ::1", nil, status6, `{type: simpletcp, send: "STATUS\n", expect: 'OK'}`, ""},
		{"send only", nil, status, `{type: simpletcp, send: 'STATUS\n'}`, ""},
		{"connect only", nil, status, `{type: simpletcp}`, ""},
		{"wrong answer, then hang-up", nil, status, `{type: simpletcp, send: 'HELLO\n', expect: '^200'}`, `simpletcp: answer from 127.0.0.1:|does not match "^200": connection closed by the server (got "500 what?\r\n")`},
		{"wrong answer, then silence", bannerHandler("500 busy\r\n"), "", `{type: simpletcp, expect: '^200'}`, `simpletcp: answer from 127.0.0.1:|does not match "^200": no answer within 300ms (got "500 busy\r\n")`},
		{"hang-up without a word", func(net.Conn) {}, "", `{type: simpletcp, expect: OK}`, `simpletcp: 127.0.0.1:|closed the connection without answering, want "OK"`},
		{"tarpit", tarpitHandler, "", `{type: simpletcp, send: 'STATUS\n', expect: OK}`, "simpletcp: 127.0.0.1:|: no answer within 300ms"},
		{"endless answer", streamer, "", `{type: simpletcp, expect: OK, max_body: 100000}`, `simpletcp: answer from 127.0.0.1:|longer than max_body (100000 bytes) without matching "OK"`},
		{"reset", resetHandler, "", `{type: simpletcp, send: 'STATUS\n', expect: OK}`, "simpletcp: |connection reset by peer"},
		{"nothing listening", nil, closedPort(t, "tcp"), `{type: simpletcp}`, "simpletcp: connect 127.0.0.1:|: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := tc.addr
			if tc.handle != nil {
				addr = serveTCP(t, "127.0.0.1", tc.handle).addr()
			}
			c := parseCheck(t, "tcp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probeSimpleTCP, targetAt(t, addr), c), tc.want)
		})
	}
}
