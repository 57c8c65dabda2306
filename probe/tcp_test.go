package probe

import (
	"net"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestProbeTCP(t *testing.T) {
	v4 := serveTCP(t, "127.0.0.1", func(net.Conn) {})
	v6 := serveTCP(t, "::1", func(net.Conn) {})
	tests := []struct {
		name, addr, want string
	}{
		{"listening", v4.addr(), ""},
		{"listening on ::1", v6.addr(), ""},
		{"nothing listening", closedPort(t, "tcp"), "tcp: connect 127.0.0.1:|: connection refused"},
		{"nothing listening on ::1", closedPort(t, "tcp6"), "tcp: connect [::1]:|: connection refused"},
		{"SYNs dropped", fullBacklog(t), "tcp: connect 127.0.0.1:|: no answer within 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parseCheck(t, "tcp", "{type: tcp, timeout: 300ms}")
			wantErr(t, runBounded(t, probeTCP, targetAt(t, tc.addr), c), tc.want)
		})
	}
}

// fullBacklog is a loopback listener whose accept queue is full: the
// kernel drops further SYNs, so a connect hangs as it does to a host
// that is down (without sending a packet off this machine).
func fullBacklog(t *testing.T) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(fd, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(sa.(*unix.SockaddrInet4).Port))
	// Fill the queue (never accepted) until a connect no longer completes.
	for i := 0; ; i++ {
		if i == 8 {
			t.Fatal("the accept queue never filled")
		}
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			break
		}
		t.Cleanup(func() { c.Close() })
	}
	return addr
}

func BenchmarkProbeTCP(b *testing.B) {
	s := serveTCP(b, "127.0.0.1", func(net.Conn) {})
	c := parseCheck(b, "tcp", "{type: tcp}")
	tg := targetAt(b, s.addr())
	for b.Loop() {
		if res := RunCheck(b.Context(), tg, c); !res.OK {
			b.Fatal(res.Msg)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
