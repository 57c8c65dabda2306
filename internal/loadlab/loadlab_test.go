package loadlab

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	m, err := ParseMetrics(strings.NewReader(`# HELP x y
# TYPE go_goroutines gauge
go_goroutines 42
lvsmon_checks_inconclusive_total{reason="fd_exhausted"} 7
lvsmon_checks_inconclusive_total{reason="scheduling_lag"} 3
lvsmon_real_server_weight{address="10.0.0.1",real_address="127.0.0.1",real_port="80"} 1
`), "go_goroutines", "lvsmon_checks_inconclusive_total")
	if err != nil {
		t.Fatal(err)
	}
	if got := m.Sum("go_goroutines", nil); got != 42 {
		t.Errorf("go_goroutines = %v", got)
	}
	if got := m.Sum("lvsmon_checks_inconclusive_total", nil); got != 10 {
		t.Errorf("inconclusive = %v", got)
	}
	if got := m.Sum("lvsmon_checks_inconclusive_total", map[string]string{"reason": "scheduling_lag"}); got != 3 {
		t.Errorf("scheduling_lag = %v", got)
	}
	if _, ok := m["lvsmon_real_server_weight"]; ok {
		t.Error("a family not asked for was kept")
	}
}

// TestServers: the helper process's servers answer, refuse, hang and come
// back on command.
func TestServers(t *testing.T) {
	s, err := StartServers(t.Context(), []string{os.Args[0]}, []string{serversEnv + "=http:127.0.0.1 tcp:127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if len(s.Addrs) != 2 {
		t.Fatalf("addrs %v", s.Addrs)
	}
	c := &http.Client{Timeout: 500 * time.Millisecond, Transport: &http.Transport{DisableKeepAlives: true}}
	get := func() error {
		resp, err := c.Get("http://" + s.Addrs[0] + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if string(b) != "OK\n" {
			t.Errorf("body %q", b)
		}
		return nil
	}
	if err := get(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Down(0); err != nil {
		t.Fatal(err)
	}
	if err := get(); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("down: %v, want refused", err)
	}
	if _, err := s.Up(0); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Hang(0); err != nil {
		t.Fatal(err)
	}
	var ne net.Error
	if err := get(); !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("hang: %v, want a timeout", err)
	}
	if _, err := s.Up(0); err != nil {
		t.Fatal(err)
	}
	if err := get(); err != nil {
		t.Errorf("up again: %v", err)
	}
	conn, err := net.Dial("tcp", s.Addrs[1])
	if err != nil {
		t.Fatal(err)
	}
	conn.Close()
	if _, err := s.Hang(1); err == nil {
		t.Error("a tcp server hangs")
	}
	hits, _, err := s.Stats()
	if err != nil || hits < 3 {
		t.Errorf("stats: %d hits, %v", hits, err)
	}
}
