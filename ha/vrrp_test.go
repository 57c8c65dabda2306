package ha

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// vrrpFixture is one testdata/vrrp/*.txt file: "src", "dst" and "hex"
// lines, '#' comments.
type vrrpFixture struct {
	src, dst netip.Addr
	pkt      []byte
}

func readVRRPFixture(t testing.TB, path string) vrrpFixture {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var fx vrrpFixture
	for line := range strings.Lines(string(b)) {
		key, val, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch key {
		case "src":
			fx.src = netip.MustParseAddr(val)
		case "dst":
			fx.dst = netip.MustParseAddr(val)
		case "hex":
			if fx.pkt, err = hex.DecodeString(strings.ReplaceAll(val, " ", "")); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		case "#", "":
		default:
			t.Fatalf("%s: unknown line %q", path, line)
		}
	}
	return fx
}

func addrs(s ...string) []netip.Addr {
	var a []netip.Addr
	for _, x := range s {
		a = append(a, netip.MustParseAddr(x))
	}
	return a
}

func TestParseVRRP(t *testing.T) {
	pass := AuthData{'s', '3', 'c', 'r', '3', 't'}
	tests := []struct {
		file string
		want Advert
	}{
		{"v2-master", Advert{Version: 2, VRID: 51, Priority: 150, Interval: time.Second, Addrs: addrs("192.0.2.100"), AuthType: 1, Auth: pass}},
		{"v2-resign", Advert{Version: 2, VRID: 51, Priority: 0, Interval: time.Second, Addrs: addrs("198.51.100.100"), AuthType: 1, Auth: pass}},
		{"v2-noauth", Advert{Version: 2, VRID: 60, Priority: 255, Interval: 3 * time.Second, Addrs: addrs("198.51.100.100", "198.51.100.101")}},
		{"v3-unicast", Advert{Version: 3, VRID: 52, Priority: 150, Interval: 500 * time.Millisecond, Addrs: addrs("192.0.2.101")}},
		{"v3-multicast", Advert{Version: 3, VRID: 53, Priority: 100, Interval: time.Second, Addrs: addrs("198.51.100.100", "198.51.100.101", "198.51.100.102")}},
		{"v3-ipv6", Advert{Version: 3, VRID: 54, Priority: 120, Interval: 2 * time.Second, Addrs: addrs("2001:db8:51::100", "fe80::51:1")}},
		{"v3-zero-vips", Advert{Version: 3, VRID: 55, Priority: 100, Interval: time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fx := readVRRPFixture(t, filepath.Join("testdata", "vrrp", tt.file+".txt"))
			got, err := ParseVRRP(fx.pkt, fx.src, fx.dst)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if enc := EncodeVRRP(got, fx.src, fx.dst); !bytes.Equal(enc, fx.pkt) {
				t.Errorf("re-encoded\n%x\nwant\n%x", enc, fx.pkt)
			}
			// IPv4-mapped header addresses are the same as IPv4 ones.
			if fx.src.Is4() {
				m, err := ParseVRRP(fx.pkt, netip.AddrFrom16(fx.src.As16()), netip.AddrFrom16(fx.dst.As16()))
				if err != nil || !reflect.DeepEqual(m, tt.want) {
					t.Errorf("with mapped addresses: %+v, %v", m, err)
				}
			}
		})
	}
}

func TestParseVRRPErrors(t *testing.T) {
	tests := []struct {
		file     string
		sentinel error
		want     string
	}{
		{"bad-short-header", ErrTruncated, "ha: vrrp: offset 6: invalid: truncated: 6 bytes, need 8 for the 8-byte VRRP header"},
		{"bad-v2-no-auth-data", ErrTruncated, "12 bytes, need 20 for header, 1 IPv4 addresses and 8 bytes of auth data"},
		{"bad-v3-short-addr", ErrTruncated, "16 bytes, need 20 for header and 3 IPv4 addresses"},
		{"bad-v2-checksum", ErrChecksum, "offset 6: invalid: bad checksum: 0x7b4b, want 0x7b4a"},
		{"bad-v3-checksum-dst", ErrChecksum, "bad checksum: 0xf19d, want 0xd397"},
		{"bad-version", ErrInvalid, "offset 0: invalid: version 1, want 2 or 3"},
		{"bad-type", ErrInvalid, "type 2, want 1 (advertisement)"},
		{"bad-vrid", ErrInvalid, "offset 1: invalid: VRID 0"},
		{"bad-trailing", ErrInvalid, "offset 20: invalid: 4 bytes after the advert (count says 1 addresses)"},
		{"bad-authtype", ErrInvalid, "auth type 3, want 0..2"},
		{"bad-interval", ErrInvalid, "advert interval 0"},
		{"bad-v3-family", ErrInvalid, "12 bytes after the advert"},
		{"bad-v2-over-ipv6", ErrInvalid, "VRRPv2 over IPv6 (fe80::11 > ff02::12)"},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			fx := readVRRPFixture(t, filepath.Join("testdata", "vrrp", tt.file+".txt"))
			got, err := ParseVRRP(fx.pkt, fx.src, fx.dst)
			if err == nil {
				t.Fatalf("accepted: %+v", got)
			}
			if !errors.Is(err, tt.sentinel) || !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q, want %v and %q", err, tt.sentinel, tt.want)
			}
			var e *Error
			if !errors.As(err, &e) || e.Source != "vrrp" {
				t.Errorf("error %T is not an *Error from vrrp", err)
			}
		})
	}
}

// TestParseVRRPTruncations cuts every valid fixture at every length.
func TestParseVRRPTruncations(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "vrrp", "v*.txt"))
	if len(files) == 0 {
		t.Fatal("no fixtures")
	}
	for _, f := range files {
		fx := readVRRPFixture(t, f)
		for n := range len(fx.pkt) {
			if _, err := ParseVRRP(fx.pkt[:n], fx.src, fx.dst); !errors.Is(err, ErrTruncated) {
				t.Errorf("%s cut to %d bytes: %v, want ErrTruncated", f, n, err)
			}
		}
	}
}

// TestParseVRRPChecksumNegativeZero: 0xffff is the other ones' complement
// zero; a receiver summing the packet accepts it (found by the fuzzer).
func TestParseVRRPChecksumNegativeZero(t *testing.T) {
	a := Advert{Version: 2, VRID: 220, Priority: 29, Interval: 48 * time.Second, Addrs: addrs("48.48.48.48")}
	a.Auth = AuthData{'0', '2', 0, '0', 0xff, 0xff, '0', '0'}
	pkt := EncodeVRRP(a, netip.Addr{}, netip.Addr{})
	if pkt == nil || pkt[6] != 0 || pkt[7] != 0 {
		t.Fatalf("want an advert whose checksum is 0x0000, have %x", pkt)
	}
	pkt[6], pkt[7] = 0xff, 0xff
	got, err := ParseVRRP(pkt, netip.Addr{}, netip.Addr{})
	if err != nil || !reflect.DeepEqual(got, a) {
		t.Fatalf("got %+v, %v; want %+v", got, err, a)
	}
}

func TestParseVRRPv3NeedsAddresses(t *testing.T) {
	fx := readVRRPFixture(t, filepath.Join("testdata", "vrrp", "v3-unicast.txt"))
	for _, c := range [][2]netip.Addr{{}, {fx.src, netip.Addr{}}, {fx.src, netip.MustParseAddr("ff02::12")}} {
		if _, err := ParseVRRP(fx.pkt, c[0], c[1]); err == nil || !strings.Contains(err.Error(), "needs IP source and destination") {
			t.Errorf("%v > %v: %v", c[0], c[1], err)
		}
	}
}

func TestEncodeVRRPRejects(t *testing.T) {
	v4, m := netip.MustParseAddr("198.51.100.11"), netip.MustParseAddr("224.0.0.18")
	v6, m6 := netip.MustParseAddr("fe80::11"), netip.MustParseAddr("ff02::12")
	ok2 := Advert{Version: 2, VRID: 1, Priority: 100, Interval: time.Second, Addrs: addrs("198.51.100.100")}
	ok3 := Advert{Version: 3, VRID: 1, Priority: 100, Interval: 10 * time.Millisecond, Addrs: addrs("198.51.100.100")}
	if EncodeVRRP(ok2, v4, m) == nil || EncodeVRRP(ok2, netip.Addr{}, netip.Addr{}) == nil || EncodeVRRP(ok3, v4, m) == nil {
		t.Fatal("valid adverts rejected")
	}
	with := func(a Advert, f func(*Advert)) Advert { f(&a); return a }
	tests := []struct {
		name     string
		a        Advert
		src, dst netip.Addr
	}{
		{"version 4", with(ok2, func(a *Advert) { a.Version = 4 }), v4, m},
		{"vrid 0", with(ok2, func(a *Advert) { a.VRID = 0 }), v4, m},
		{"v2 half second", with(ok2, func(a *Advert) { a.Interval = 1500 * time.Millisecond }), v4, m},
		{"v2 256 s", with(ok2, func(a *Advert) { a.Interval = 256 * time.Second }), v4, m},
		{"v2 0 s", with(ok2, func(a *Advert) { a.Interval = 0 }), v4, m},
		{"v2 auth 3", with(ok2, func(a *Advert) { a.AuthType = 3 }), v4, m},
		{"v2 ipv6 vip", with(ok2, func(a *Advert) { a.Addrs = addrs("2001:db8::1") }), v4, m},
		{"v2 over ipv6", ok2, v6, m6},
		{"v3 5 ms", with(ok3, func(a *Advert) { a.Interval = 5 * time.Millisecond }), v4, m},
		{"v3 41 s", with(ok3, func(a *Advert) { a.Interval = 41 * time.Second }), v4, m},
		{"v3 auth", with(ok3, func(a *Advert) { a.Auth[0] = 1 }), v4, m},
		{"v3 no header", ok3, netip.Addr{}, netip.Addr{}},
		{"v3 mixed header", ok3, v4, m6},
		{"v3 family", ok3, v6, m6},
		{"v3 zone", with(ok3, func(a *Advert) { a.Addrs = addrs("fe80::1%eth0") }), v6, m6},
		{"256 addresses", with(ok3, func(a *Advert) { a.Addrs = make([]netip.Addr, 256) }), v4, m},
	}
	for _, tt := range tests {
		if b := EncodeVRRP(tt.a, tt.src, tt.dst); b != nil {
			t.Errorf("%s: encoded %x", tt.name, b)
		}
	}
}

func TestAuthDataNeverPrints(t *testing.T) {
	a := Advert{Version: 2, VRID: 1, AuthType: 1, Auth: AuthData{'s', '3', 'c', 'r', '3', 't'}}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%x", "%q", "%d"} {
		for _, v := range []any{a, &a, a.Auth} {
			if s := fmt.Sprintf(verb, v); strings.Contains(s, fixturePassword) || strings.Contains(s, "733363") ||
				strings.Contains(s, "115 51") {
				t.Errorf("%s of %T shows the password: %s", verb, v, s)
			}
		}
	}
}
