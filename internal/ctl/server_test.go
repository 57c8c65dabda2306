package ctl

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func TestParseServerArg(t *testing.T) {
	for _, tc := range []struct {
		in      string
		id      string
		addr    string
		wantErr string
	}{
		{"tcp_10.0.0.1_80__10.0.1.1_80", "tcp_10.0.0.1_80__10.0.1.1_80", "", ""},
		{"fwm_10_inet__10.0.1.1_80", "fwm_10_inet__10.0.1.1_80", "", ""},
		{"tcp_2001-db8--1_80__--1_80", "tcp_2001-db8--1_80__--1_80", "", ""},
		{"10.0.1.1:80", "", "10.0.1.1:80", ""},
		{"[::1]:80", "", "[::1]:80", ""},
		{"[2001:DB8::10]:80", "", "[2001:db8::10]:80", ""},
		{"[::ffff:10.0.1.1]:80", "", "10.0.1.1:80", ""},
		{"10.0.3.1:0", "", "10.0.3.1:0", ""},
		{"", "", "", "no real server given"},
		{"10.0.1.1", "", "", "want its id"},
		{"::1:80", "", "", "want its id"},
		{"web1:80", "", "", "want its id"},
		{"10.0.1.1:99999", "", "", "want its id"},
		{"[fe80::1%eth0]:80", "", "", "has no zone"},
		{"TCP_10.0.0.1_80__10.0.1.1_80", "", "", "an id is made of"},
		{"tcp_10.0.0.1_80__", "", "", "an id is made of"},
		{"__10.0.1.1_80", "", "", "an id is made of"},
		{"tcp_10.0.0.1_80__10.0.1.1_80/../x", "", "", "an id is made of"},
	} {
		got, err := ParseServerArg(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.Is(err, ErrUsage) {
				t.Errorf("ParseServerArg(%q) = %+v, %v; want a usage error with %q", tc.in, got, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got.ID != tc.id || tc.addr != "" && got.Addr.String() != tc.addr || tc.addr == "" && got.Addr.IsValid() {
			t.Errorf("ParseServerArg(%q) = %+v, %v; want id %q addr %q", tc.in, got, err, tc.id, tc.addr)
		}
	}
}

// FuzzParseServerArg: any argument is taken or refused without a panic;
// one taken names a well-formed id or an address:port that reads back
// as itself.
func FuzzParseServerArg(f *testing.F) {
	for _, s := range []string{"tcp_10.0.0.1_80__10.0.1.1_80", "10.0.1.1:80", "[::1]:80", "[fe80::1%eth0]:80", "fwm_10_inet__10.0.1.1_80", "__", ":", "[]:0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseServerArg(s)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("%q: an error that is not a usage error: %v", s, err)
			}
			return
		}
		switch {
		case a.ID != "":
			svc, dest, ok := strings.Cut(a.ID, "__")
			if !ok || !idChars(svc) || !idChars(dest) || a.Addr.IsValid() {
				t.Fatalf("%q: taken as %+v", s, a)
			}
		default:
			back, err := netip.ParseAddrPort(a.Addr.String())
			if err != nil || back != a.Addr || a.Addr.Addr().Is4In6() || a.Addr.Addr().Zone() != "" {
				t.Fatalf("%q: taken as %v, which reads back as %v, %v", s, a.Addr, back, err)
			}
		}
	})
}

// TestResolve names real servers of the daemon's own status every way an
// operator may.
func TestResolve(t *testing.T) {
	st := startDaemon(t, "").settled(t, nil)
	for _, tc := range []struct {
		name, arg, service string
		id                 string   // the match
		err                []string // or the error's parts
	}{
		{"id", "tcp_10.0.0.1_80__10.0.1.2_80", "", "tcp_10.0.0.1_80__10.0.1.2_80", nil},
		{"address:port in one service", "10.0.1.3:80", "", "tcp_10.0.0.1_80__10.0.1.3_80", nil},
		{"IPv6 loopback", "[::1]:80", "", "tcp_2001-db8--1_80__--1_80", nil},
		{"IPv6", "[2001:db8::10]:80", "", "tcp_2001-db8--1_80__2001-db8--10_80", nil},
		{"fwmark service by id", "fwm_10_inet__10.0.1.1_80", "", "fwm_10_inet__10.0.1.1_80", nil},
		{"same address:port in two services", "10.0.1.1:80", "", "", []string{
			"10.0.1.1:80 is a real server of 2 services; pick one with --service",
			"tcp_10.0.0.1_80__10.0.1.1_80  --service web (tcp_10.0.0.1_80)",
			"fwm_10_inet__10.0.1.1_80  --service marked (fwm_10_inet)"}},
		{"--service by name", "10.0.1.1:80", "marked", "fwm_10_inet__10.0.1.1_80", nil},
		{"--service by id", "10.0.1.1:80", "tcp_10.0.0.1_80", "tcp_10.0.0.1_80__10.0.1.1_80", nil},
		{"same address, other port", "10.0.1.1:443", "", "tcp_10.0.0.1_443__10.0.1.1_443", nil},
		{"--service without it", "10.0.1.1:443", "web", "", []string{"no configured real server 10.0.1.1:443 in service web", "did you mean",
			"tcp_10.0.0.1_443__10.0.1.1_443 (service api TCP 10.0.0.1:443, 10.0.1.1:443)"}},
		{"unknown --service", "10.0.1.1:80", "mail", "", []string{`no virtual service "mail"`, "web (tcp_10.0.0.1_80)", "fwm_20_inet"}},
		{"unknown port: near matches", "10.0.1.2:8080", "", "", []string{"no configured real server 10.0.1.2:8080", "did you mean",
			"tcp_10.0.0.1_80__10.0.1.2_80 (service web TCP 10.0.0.1:80, 10.0.1.2:80)"}},
		{"unknown id: near matches", "tcp_10.0.0.1_80__10.0.1.9_80", "", "", []string{"no configured real server tcp_10.0.0.1_80__10.0.1.9_80", "did you mean",
			"tcp_10.0.0.1_80__10.0.1.1_80"}},
		{"nothing near", "192.0.2.1:80", "", "", []string{"no configured real server 192.0.2.1:80"}},
		{"only in the kernel", "10.0.3.1:0", "", "", []string{"fwm_20_inet__10.0.3.1_0", "not in the config"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arg, err := ParseServerArg(tc.arg)
			if err != nil {
				t.Fatal(err)
			}
			m, err := Resolve(st.Services, arg, tc.service)
			if tc.err == nil {
				if err != nil || m.Server.ID != tc.id {
					t.Fatalf("Resolve(%s, %q) = %v, %v; want %s", tc.arg, tc.service, m.Server, err, tc.id)
				}
				return
			}
			if err == nil {
				t.Fatalf("Resolve(%s, %q) = %s; want an error", tc.arg, tc.service, m.Server.ID)
			}
			for _, w := range tc.err {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tc.name == "nothing near" && strings.Contains(err.Error(), "did you mean") {
				t.Errorf("near matches for nothing near:\n%v", err)
			}
		})
	}
}
