package demo

import (
	"net"
	"testing"
	"time"
)

func TestDemoTimeline(t *testing.T) {
	tests := []struct {
		at   time.Duration
		down []string
	}{
		{0, nil},
		{2*time.Minute + time.Second, []string{"web2"}},
		{5*time.Minute + 30*time.Second, []string{"api1"}},
		{7 * time.Minute, []string{"web1", "web2", "web3"}},
		{8 * time.Minute, nil},
		{Cycle + 3*time.Minute, []string{"web2"}},
	}
	for _, tc := range tests {
		got := downAt(tc.at)
		if len(got) != len(tc.down) {
			t.Errorf("at %v: down %v, want %v", tc.at, got, tc.down)
			continue
		}
		for _, s := range tc.down {
			if _, ok := got[s]; !ok {
				t.Errorf("at %v: %s not down", tc.at, s)
			}
		}
	}
}

func TestBrowserURL(t *testing.T) {
	for _, tc := range []struct {
		addr *net.TCPAddr
		want string
	}{
		{&net.TCPAddr{IP: net.IPv4zero, Port: 9160}, "http://localhost:9160/"},
		{&net.TCPAddr{IP: net.IPv6unspecified, Port: 9160}, "http://localhost:9160/"},
		{&net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 80}, "http://127.0.0.1:80/"},
		{&net.TCPAddr{IP: net.ParseIP("::1"), Port: 9160}, "http://[::1]:9160/"},
	} {
		if got := BrowserURL(tc.addr); got != tc.want {
			t.Errorf("BrowserURL(%v) = %q, want %q", tc.addr, got, tc.want)
		}
	}
	if got := YAMLList([]string{":9160", `a"b`}); got != `[":9160", "a\"b"]` {
		t.Errorf("YAMLList = %s", got)
	}
}
