package probe

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"errors"
	"io"
	"log"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// radiusFake is a RADIUS server made with the library's server side: it
// knows one user and answers as its mode says. It checks the request's
// Message-Authenticator as a hardened server does, and drops a request
// whose signature is wrong.
type radiusFake struct {
	secret     string // the server's secret for this client
	user, pass string
	mode       string // "": Accept the user, Reject others; "challenge"; "drop"; "other-id"
	lax        bool   // answer requests whose Message-Authenticator is wrong, as servers that do not check it

	mu    sync.Mutex
	seen  []string // "user nas-identifier" of each request
	macOK []bool   // whether each request's Message-Authenticator was right
}

func (f *radiusFake) serve(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte(f.secret)),
		Handler:      radius.HandlerFunc(f.handle),
		ErrorLog:     log.New(io.Discard, "", 0),
	}
	go srv.Serve(pc)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	return pc.LocalAddr().String()
}

// macValid checks a request's Message-Authenticator: the HMAC-MD5 of
// the packet with the attribute's value zeroed.
func macValid(p *radius.Packet) bool {
	got := p.Get(msgAuthType)
	if len(got) != md5.Size {
		return false
	}
	q := *p
	q.Attributes = nil
	for _, a := range p.Attributes {
		v := a.Attribute
		if a.Type == msgAuthType {
			v = make(radius.Attribute, md5.Size)
		}
		q.Attributes = append(q.Attributes, &radius.AVP{Type: a.Type, Attribute: v})
	}
	b, err := q.MarshalBinary()
	if err != nil {
		return false
	}
	mac := hmac.New(md5.New, p.Secret)
	mac.Write(b)
	return hmac.Equal(mac.Sum(nil), got)
}

func (f *radiusFake) handle(w radius.ResponseWriter, r *radius.Request) {
	ok := macValid(r.Packet)
	user := rfc2865.UserName_GetString(r.Packet)
	f.mu.Lock()
	f.seen = append(f.seen, user+" "+rfc2865.NASIdentifier_GetString(r.Packet))
	f.macOK = append(f.macOK, ok)
	f.mu.Unlock()
	if !ok && !f.lax || f.mode == "drop" {
		return
	}
	switch f.mode {
	case "challenge":
		resp := r.Response(radius.CodeAccessChallenge)
		rfc2865.ReplyMessage_SetString(resp, "Enter your one-time code")
		w.Write(resp)
	default:
		code := radius.CodeAccessReject
		if user == f.user && rfc2865.UserPassword_GetString(r.Packet) == f.pass {
			code = radius.CodeAccessAccept
		}
		resp := r.Response(code)
		if code == radius.CodeAccessReject {
			rfc2865.ReplyMessage_SetString(resp, "Login incorrect")
		}
		if f.mode == "other-id" {
			resp.Identifier++
		}
		w.Write(resp)
	}
}

func (f *radiusFake) requests() ([]string, []bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.seen...), append([]bool(nil), f.macOK...)
}

func TestProbeRADIUS(t *testing.T) {
	secretFile := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(secretFile, []byte("testing123\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		fake  *radiusFake
		check string
		want  string
		seen  int // requests the server must have seen
	}{
		{"accept", &radiusFake{secret: "testing123", user: "probe", pass: "pw"}, "{type: radius, username: probe, password: pw, secret: testing123}", "", 1},
		{"secret from a file", &radiusFake{secret: "testing123", user: "probe", pass: "pw"}, "{type: radius, username: probe, password: pw, secret_file: '" + secretFile + "'}", "", 1},
		{"reject", &radiusFake{secret: "testing123", user: "probe", pass: "pw"}, "{type: radius, username: probe, password: wrong, secret: testing123}", `radius: 127.0.0.1:|: Access-Reject: "Login incorrect"`, 1},
		{"challenge", &radiusFake{secret: "testing123", user: "probe", pass: "pw", mode: "challenge"}, "{type: radius, username: probe, password: pw, secret: testing123}", `radius: 127.0.0.1:|: Access-Challenge: "Enter your one-time code" (the server asks for more than a password`, 1},
		{"answers with another secret", &radiusFake{secret: "other", user: "probe", pass: "pw", lax: true}, "{type: radius, username: probe, password: pw, secret: testing123}", "radius: 127.0.0.1:|: reply authenticator does not match: wrong secret?", 1},
		{"reply to another request", &radiusFake{secret: "testing123", user: "probe", pass: "pw", mode: "other-id"}, "{type: radius, username: probe, password: pw, secret: testing123}", "radius: 127.0.0.1:|: reply to another request (identifier", 1},
		{"drops a request with another secret", &radiusFake{secret: "other", user: "probe", pass: "pw"}, "{type: radius, username: probe, password: pw, secret: testing123}", "radius: 127.0.0.1:|: no answer within 300ms (a server drops a request it cannot authenticate: wrong secret", 1},
		{"no answer", &radiusFake{secret: "testing123", mode: "drop"}, "{type: radius, username: probe, password: pw, secret: testing123}", "radius: 127.0.0.1:|: no answer within 300ms (a server drops a request it cannot authenticate: wrong secret, or a client it does not know?)", 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.fake
			addr := f.serve(t)
			c := parseCheck(t, "udp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			err := runBounded(t, probeRADIUS, targetFor(t, lvs.UDP, addr), c)
			wantErr(t, err, tc.want)
			if err != nil && strings.Contains(err.Error(), "testing123") {
				t.Errorf("the message shows the secret: %v", err)
			}
			seen, macs := f.requests()
			if len(seen) != tc.seen {
				t.Fatalf("the server saw %d requests, want %d", len(seen), tc.seen)
			}
			for i := range seen {
				if seen[i] != "probe lvsmon" {
					t.Errorf("request from %q, want user probe from NAS lvsmon", seen[i])
				}
				if f.secret == "testing123" && !macs[i] {
					t.Errorf("request %d: its Message-Authenticator does not verify", i)
				}
			}
		})
	}
}

// rawUDP is a UDP server answering every datagram with reply(request).
func rawUDP(t *testing.T, reply func([]byte) []byte) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if b := reply(buf[:n]); b != nil {
				pc.WriteTo(b, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func TestProbeRADIUSBadServers(t *testing.T) {
	tests := []struct {
		name string
		addr func(t *testing.T) string
		want string
	}{
		{"nothing listening", func(t *testing.T) string { return closedPort(t, "udp") }, "radius: 127.0.0.1:|: connection refused"},
		{"not RADIUS", func(t *testing.T) string {
			return rawUDP(t, func([]byte) []byte { return []byte("SSH-2.0-OpenSSH_9.2p1\r\n") })
		}, `radius: 127.0.0.1:|: reply is not a RADIUS packet (length field 18477, 23 bytes came): "SSH-2.0`},
		{"short", func(t *testing.T) string { return rawUDP(t, func([]byte) []byte { return []byte("hi") }) }, `radius: 127.0.0.1:|: reply of 2 bytes is not a RADIUS packet: "hi"`},
		{"malformed attributes", func(t *testing.T) string {
			return rawUDP(t, func(req []byte) []byte {
				b := append([]byte{2, req[1], 0, 23}, make([]byte, 16)...)
				b = append(b, 18, 9, 'x') // an attribute longer than the packet
				return signReply(b, req, "testing123")
			})
		}, "radius: 127.0.0.1:|: malformed reply"},
		{"accounting answer", func(t *testing.T) string {
			return rawUDP(t, func(req []byte) []byte {
				return signReply(append([]byte{5, req[1], 0, 20}, make([]byte, 16)...), req, "testing123")
			})
		}, "radius: 127.0.0.1:|: unexpected reply Accounting-Response"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parseCheck(t, "udp", "{type: radius, username: probe, password: pw, secret: testing123, timeout: 300ms}")
			wantErr(t, runBounded(t, probeRADIUS, targetFor(t, lvs.UDP, tc.addr(t)), c), tc.want)
		})
	}
}

// signReply sets a reply's response authenticator for request req.
func signReply(b, req []byte, secret string) []byte {
	h := md5.New()
	h.Write(b[:4])
	h.Write(req[4:20])
	h.Write(b[20:])
	h.Write([]byte(secret))
	copy(b[4:20], h.Sum(nil))
	return b
}

func TestProbeRADIUSCanceled(t *testing.T) {
	f := &radiusFake{secret: "testing123", mode: "drop"}
	addr := f.serve(t)
	c := parseCheck(t, "udp", "{type: radius, username: probe, password: pw, secret: testing123, timeout: 10s}")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := probeRADIUS(ctx, targetFor(t, lvs.UDP, addr), c)
	if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "wrong secret") {
		t.Fatalf("err = %v, want a cancellation", err)
	}
}

// The check's retries are the retransmissions: each attempt is one
// request from a fresh socket.
func TestProbeRADIUSRetries(t *testing.T) {
	f := &radiusFake{secret: "testing123", mode: "drop"}
	addr := f.serve(t)
	c := parseCheck(t, "udp", "{type: radius, username: probe, password: pw, secret: testing123, timeout: 200ms, retries: 2}")
	res := RunCheck(context.Background(), targetFor(t, lvs.UDP, addr), c)
	if res.OK || res.Attempts != 3 {
		t.Fatalf("result %+v, want 3 failed attempts", res)
	}
	if seen, _ := f.requests(); len(seen) != 3 {
		t.Errorf("the server saw %d requests, want 3", len(seen))
	}
}

// A check built in code (no validation) works the same.
func TestProbeRADIUSCheckBuiltInCode(t *testing.T) {
	f := &radiusFake{secret: "s", user: "u", pass: "p"}
	addr := f.serve(t)
	c := &config.Check{Type: "radius", Timeout: config.Duration(config.DefaultTimeout), Username: "u", Password: "p", RADIUSSecret: "s"}
	wantErr(t, runBounded(t, probeRADIUS, targetFor(t, lvs.UDP, addr), c), "")
}

func FuzzRADIUSReply(f *testing.F) {
	secret := []byte("testing123")
	req, err := radiusRequest("probe", "pw", secret, nil)
	if err != nil {
		f.Fatal(err)
	}
	p, _ := radius.Parse(req, secret)
	for _, code := range []radius.Code{radius.CodeAccessAccept, radius.CodeAccessReject, radius.CodeAccessChallenge} {
		r := p.Response(code)
		rfc2865.ReplyMessage_SetString(r, "hello")
		b, _ := r.Encode()
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add(bytes.Repeat([]byte{0xff}, 40))
	f.Fuzz(func(t *testing.T, reply []byte) {
		err := checkRADIUSReply(reply, req, secret)
		if err == nil && (len(reply) < 20 || reply[0] != byte(radius.CodeAccessAccept) || !radius.IsAuthenticResponse(reply[:int(reply[2])<<8|int(reply[3])], req, secret)) {
			t.Fatalf("accepted %x", reply)
		}
	})
}

// BenchmarkProbeRADIUS is checks per second of the radius check (a
// fresh socket, one Access-Request, the Accept) against the fake server.
func BenchmarkProbeRADIUS(b *testing.B) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	srv := &radius.PacketServer{
		SecretSource: radius.StaticSecretSource([]byte("testing123")),
		Handler: radius.HandlerFunc(func(w radius.ResponseWriter, r *radius.Request) {
			w.Write(r.Response(radius.CodeAccessAccept))
		}),
	}
	go srv.Serve(pc)
	defer srv.Shutdown(context.Background())
	c := parseCheck(b, "udp", "{type: radius, username: probe, password: pw, secret: testing123}")
	tg := targetFor(b, lvs.UDP, pc.LocalAddr().String())
	b.ReportAllocs()
	for b.Loop() {
		if res := RunCheck(b.Context(), tg, c); !res.OK {
			b.Fatal(res.Msg)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
