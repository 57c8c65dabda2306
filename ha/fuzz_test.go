package ha

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// The fuzz targets' seed corpus is the fixtures under testdata plus the
// committed entries under testdata/fuzz/<target>; run them with
//
//	go test -run='^$' -fuzz=FuzzParseVRRP -fuzztime=60s ./ha/
//	go test -run='^$' -fuzz=FuzzParseNotifyLine -fuzztime=60s ./ha/
//	go test -run='^$' -fuzz=FuzzParseKeepalivedJSON -fuzztime=60s ./ha/

// checkFuzzError checks what any failure of a parser must be: an *Error
// wrapping ErrInvalid, since parsing from memory cannot fail otherwise.
func checkFuzzError(t *testing.T, err error, source string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || e.Source != source || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %q (%T) is not a %s *Error wrapping ErrInvalid", err, err, source)
	}
}

// FuzzParseVRRP: never panics; what parses is valid, re-encodes to an equal
// Advert, and (the ignored v3 reserved bits aside) to the same bytes.
func FuzzParseVRRP(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "vrrp", "*.txt"))
	for _, p := range files {
		fx := readVRRPFixture(f, p)
		f.Add(fx.pkt, fx.src.AsSlice(), fx.dst.AsSlice())
	}
	f.Fuzz(func(t *testing.T, pkt, srcb, dstb []byte) {
		src, _ := netip.AddrFromSlice(srcb)
		dst, _ := netip.AddrFromSlice(dstb)
		a, err := ParseVRRP(pkt, src, dst)
		if err != nil {
			checkFuzzError(t, err, "vrrp")
			return
		}
		if a.VRID == 0 || (a.Version != 2 && a.Version != 3) || a.Interval <= 0 || len(a.Addrs) != int(pkt[3]) {
			t.Fatalf("accepted an invalid advert %+v from %x", a, pkt)
		}
		enc := EncodeVRRP(a, src, dst)
		if enc == nil {
			t.Fatalf("accepted advert %+v does not encode (%v > %v)", a, src, dst)
		}
		again, err := ParseVRRP(enc, src, dst)
		if err != nil {
			t.Fatalf("encoding %x of %+v does not parse: %v", enc, a, err)
		}
		if !reflect.DeepEqual(again, a) || again.Auth != a.Auth {
			t.Fatalf("round trip: %+v, want %+v", again, a)
		}
		if a.Version == 2 || pkt[4]&0xf0 == 0 {
			// 0x0000 and 0xffff are the two ones' complement zeros: both
			// verify, the encoder writes 0x0000 (as every sender does).
			got := bytes.Clone(pkt)
			if got[6] == 0xff && got[7] == 0xff {
				got[6], got[7] = 0, 0
			}
			if !bytes.Equal(enc, got) {
				t.Fatalf("re-encoded\n%x\nwant\n%x", enc, pkt)
			}
		}
	})
}

// FuzzParseNotifyLine: never panics; what parses renders back as the line
// and parses again equal.
func FuzzParseNotifyLine(f *testing.F) {
	for _, file := range []string{"fifo-a.txt", "fifo-b.txt"} {
		for line := range strings.Lines(readFixture(f, "notify", file)) {
			f.Add(line)
		}
	}
	f.Fuzz(func(t *testing.T, line string) {
		n, err := ParseNotifyLine(line)
		if err != nil {
			checkFuzzError(t, err, "notify fifo")
			return
		}
		want := strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		if s := n.String(); s != want {
			t.Fatalf("String() = %q, want %q", s, want)
		}
		again, err := ParseNotifyLine(n.String())
		if err != nil || again != n {
			t.Fatalf("round trip: %+v, %v; want %+v", again, err, n)
		}
		if n.Name == "" || n.State == StateUnknown || (n.Kind == NotifyInstance && !n.HasPriority) {
			t.Fatalf("accepted an invalid line: %+v", n)
		}
	})
}

// FuzzParseKeepalivedJSON: never panics; what parses is valid; and a
// password placed as auth_data shows up neither in the result nor in an
// error.
func FuzzParseKeepalivedJSON(f *testing.F) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "keepalived", "*.json"))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := ParseKeepalivedJSON(bytes.NewReader(data))
		// The check is meaningful when the password occurs only as the
		// value of auth_data (else it is legitimately, e.g., a name).
		secret := bytes.Count(data, []byte(fixturePassword)) == 1 &&
			bytes.Count(data, []byte(`"auth_data": "`+fixturePassword+`"`)) == 1
		if err != nil {
			checkFuzzError(t, err, "keepalived.json")
			if secret && strings.Contains(err.Error(), fixturePassword) {
				t.Fatalf("the password is in the error: %v", err)
			}
			return
		}
		if secret {
			if s := fmt.Sprintf("%+v", got); strings.Contains(s, fixturePassword) {
				t.Fatalf("the password is in the result: %s", s)
			}
		}
		seen := map[string]bool{}
		for _, in := range got {
			if in.Name == "" || seen[in.Name] || in.VRID == 0 || (in.Version != 2 && in.Version != 3) || in.AdvertInterval < 0 {
				t.Fatalf("accepted an invalid instance %+v", in)
			}
			seen[in.Name] = true
			for _, p := range in.VIPs {
				if !p.IsValid() {
					t.Fatalf("invalid VIP in %+v", in)
				}
			}
		}
	})
}
