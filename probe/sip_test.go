package probe

import (
	"bufio"
	"fmt"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/lvs"
)

var callIDRe = regexp.MustCompile(`(?m)^Call-ID: (\S+)\r$`)

// sipAnswer builds the answers a fake SIP server sends to a request:
// each is a status line and extra text ("" for none), completed with
// the request's Call-ID (or another, when callID is set). A "RAW"
// status sends extra as it is, with {CALLID} replaced.
type sipAnswer struct{ status, extra, callID string }

func (a sipAnswer) bytes(req string) []byte {
	id := a.callID
	if id == "" {
		if m := callIDRe.FindStringSubmatch(req); m != nil {
			id = m[1]
		}
	}
	if a.status == "RAW" {
		return []byte(strings.ReplaceAll(a.extra, "{CALLID}", id))
	}
	return fmt.Appendf(nil, "%s\r\nVia: SIP/2.0/UDP x;branch=z9hG4bK1\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n%sContent-Length: 0\r\n\r\n", a.status, id, a.extra)
}

// serveSIPUDP answers each request datagram with answers; the requests
// go to got.
func serveSIPUDP(t *testing.T, answers []sipAnswer, got chan<- string) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 64<<10)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			req := string(buf[:n])
			got <- req
			for _, a := range answers {
				pc.WriteTo(a.bytes(req), from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

// sipTCPHandler reads one request head and sends answers (then waits);
// "CLOSE" as the status hangs up instead.
func sipTCPHandler(answers []sipAnswer, got chan<- string) func(net.Conn) {
	return func(c net.Conn) {
		r := bufio.NewReader(c)
		var req strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			req.WriteString(line)
			if line == "\r\n" {
				break
			}
		}
		got <- req.String()
		for _, a := range answers {
			if a.status == "CLOSE" {
				return
			}
			c.Write(a.bytes(req.String()))
		}
		tarpitHandler(c)
	}
}

func TestProbeSIP(t *testing.T) {
	ok := sipAnswer{status: "SIP/2.0 200 OK"}
	trying := sipAnswer{status: "SIP/2.0 100 Trying"}
	for _, tc := range []struct {
		name, check string
		answers     []sipAnswer
		want        string
	}{
		{"healthy", "{type: sip}", []sipAnswer{ok}, ""},
		{"any 2xx", "{type: sip}", []sipAnswer{{status: "SIP/2.0 202 Accepted"}}, ""},
		{"trying first", "{type: sip}", []sipAnswer{trying, ok}, ""},
		{"unavailable", "{type: sip}", []sipAnswer{{status: "SIP/2.0 503 Service Unavailable"}}, "sip: 127.0.0.1:|(udp): status 503 Service Unavailable"},
		{"not found", "{type: sip, sip_uri: 'sip:nobody@example.org'}", []sipAnswer{{status: "SIP/2.0 404 Not Found"}}, "(udp): status 404 Not Found"},
		{"no reason phrase", "{type: sip}", []sipAnswer{{status: "SIP/2.0 486"}}, "status 486"},
		{"only trying", "{type: sip}", []sipAnswer{trying}, "sip: 127.0.0.1:|(udp): no answer within 300ms"},
		{"silent", "{type: sip}", nil, "sip: 127.0.0.1:|(udp): no answer within 300ms"},
		{"another call", "{type: sip}", []sipAnswer{{status: "SIP/2.0 200 OK", callID: "other@x"}},
			`no answer within 300ms (and before it an answer to another request (Call-ID "other@x"))`},
		{"garbage", "{type: sip}", []sipAnswer{{status: "RAW", extra: "HTTP/1.1 200 OK\r\n\r\n"}},
			`no answer within 300ms (and before it not a SIP response: "HTTP/1.1 200 OK")`},
		{"no head end", "{type: sip}", []sipAnswer{{status: "RAW", extra: "SIP/2.0 200 OK\r\n"}}, "not a SIP response"},
		{"bad code", "{type: sip}", []sipAnswer{{status: "SIP/2.0 2000 OK"}}, "not a SIP response"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 10)
			addr := serveSIPUDP(t, tc.answers, got)
			c := parseCheck(t, "udp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probeSIP, targetFor(t, lvs.UDP, addr), c), tc.want)
			req := <-got
			uri := "sip:" + addr
			if c.SIPURI != "" {
				uri = c.SIPURI
			}
			for _, want := range []string{"OPTIONS " + uri + " SIP/2.0\r\n", "\r\nVia: SIP/2.0/UDP 127.0.0.1:", ";branch=z9hG4bK", "\r\nTo: <" + uri + ">\r\n",
				"\r\nFrom: <sip:lvsmon@127.0.0.1>;tag=", "\r\nCSeq: 1 OPTIONS\r\n", "\r\nMax-Forwards: 70\r\n", "\r\nContent-Length: 0\r\n\r\n"} {
				if !strings.Contains(req, want) {
					t.Errorf("request lacks %q:\n%s", want, req)
				}
			}
		})
	}
	c := parseCheck(t, "udp", "{type: sip, timeout: 300ms}")
	wantErr(t, runBounded(t, probeSIP, targetFor(t, lvs.UDP, closedPort(t, "udp")), c), "sip: 127.0.0.1:|(udp): port unreachable (ICMP): connection refused")
}

func TestProbeSIPTCP(t *testing.T) {
	ok := sipAnswer{status: "SIP/2.0 200 OK"}
	for _, tc := range []struct {
		name, proto, check string
		answers            []sipAnswer
		want               string
	}{
		{"healthy by the service's protocol", "tcp", "{type: sip}", []sipAnswer{ok}, ""},
		{"by sip_transport", "udp", "{type: sip, sip_transport: tcp}", []sipAnswer{ok}, ""},
		{"trying with a body", "tcp", "{type: sip}", []sipAnswer{{status: "RAW", extra: "SIP/2.0 180 Ringing\r\ni: {CALLID}\r\nl: 5\r\n\r\nhello"}, ok}, ""},
		{"busy", "tcp", "{type: sip}", []sipAnswer{{status: "SIP/2.0 486 Busy Here"}}, "sip: 127.0.0.1:|(tcp): status 486 Busy Here"},
		{"another call", "tcp", "{type: sip}", []sipAnswer{{status: "SIP/2.0 200 OK", callID: "x"}}, `(tcp): an answer to another request (Call-ID "x")`},
		{"closes", "tcp", "{type: sip}", []sipAnswer{{status: "CLOSE"}}, "sip: 127.0.0.1:|(tcp): connection closed by the server"},
		{"silent", "tcp", "{type: sip}", nil, "(tcp): no answer within 300ms"},
		{"endless line", "tcp", "{type: sip}", []sipAnswer{{status: "RAW", extra: endlessLine}}, "(tcp): answer line longer than 4 KiB"},
		{"endless head", "tcp", "{type: sip}", []sipAnswer{{status: "RAW", extra: "SIP/2.0 200 OK\r\n" + strings.Repeat("X: y\r\n", 20000)}}, "(tcp): answer longer than 64 KiB"},
		{"too many headers", "tcp", "{type: sip}", []sipAnswer{{status: "RAW", extra: "SIP/2.0 200 OK\r\n" + strings.Repeat("X: y\r\n", 200) + "\r\n"}}, "more than 128 header lines"},
		{"bad length", "tcp", "{type: sip}", []sipAnswer{{status: "SIP/2.0 100 Trying", extra: "Content-Length: -1\r\n"}}, `Content-Length "-1" is not a length`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 10)
			addr := serveTCP(t, "127.0.0.1", sipTCPHandler(tc.answers, got)).addr()
			proto := lvs.TCP
			if tc.proto == "udp" {
				proto = lvs.UDP
			}
			c := parseCheck(t, tc.proto, tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probeSIP, targetFor(t, proto, addr), c), tc.want)
			select {
			case req := <-got:
				if !strings.Contains(req, "\r\nVia: SIP/2.0/TCP 127.0.0.1:") || !strings.Contains(req, ";transport=tcp>") {
					t.Errorf("request over TCP:\n%s", req)
				}
			case <-time.After(2 * time.Second):
				t.Fatal("the server got no request")
			}
		})
	}
	c := parseCheck(t, "tcp", "{type: sip, timeout: 300ms}")
	wantErr(t, runBounded(t, probeSIP, targetAt(t, closedPort(t, "tcp")), c), "sip: connect 127.0.0.1:|(tcp): connection refused")
}

// TestSIPOverIPv6: the addresses in the request are bracketed.
func TestSIPOverIPv6(t *testing.T) {
	got := make(chan string, 1)
	ln, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		buf := make([]byte, 65536)
		n, from, err := ln.ReadFrom(buf)
		if err != nil {
			return
		}
		got <- string(buf[:n])
		ln.WriteTo(sipAnswer{status: "SIP/2.0 200 OK"}.bytes(string(buf[:n])), from)
	}()
	c := parseCheck(t, "udp", "{type: sip, timeout: 2s}")
	wantErr(t, runBounded(t, probeSIP, targetFor(t, lvs.UDP, ln.LocalAddr().String()), c), "")
	req := <-got
	port := ln.LocalAddr().(*net.UDPAddr).Port
	for _, want := range []string{fmt.Sprintf("OPTIONS sip:[::1]:%d SIP/2.0", port), "Via: SIP/2.0/UDP [::1]:", "From: <sip:lvsmon@[::1]>"} {
		if !strings.Contains(req, want) {
			t.Errorf("request lacks %q:\n%s", want, req)
		}
	}
}

// FuzzSIPResponse: any datagram parses or is refused without panicking;
// what parses has a status line with a code of 100-699 and a bounded
// length.
func FuzzSIPResponse(f *testing.F) {
	for _, s := range []string{
		"SIP/2.0 200 OK\r\nCall-ID: a@b\r\nContent-Length: 0\r\n\r\n",
		"SIP/2.0 100 Trying\r\ni: x\r\nl: 12\r\n\r\n",
		"SIP/2.0 503\r\n\r\n",
		"SIP/2.0 20 OK\r\n\r\n", "SIP/2.0 +20 x\r\n\r\n", "HTTP/1.1 200 OK\r\n\r\n", "SIP/2.0 200 OK\r\n", "",
		"SIP/2.0 200 OK\r\n folded\r\nCall-ID:\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseSIPResponse(b)
		if err != nil {
			return
		}
		if r.code < 100 || r.code > 699 || r.length < 0 || r.length > maxReply || !strings.HasPrefix(string(b), fmt.Sprintf("SIP/2.0 %03d", r.code)) {
			t.Fatalf("%q: parsed as %+v", b, r)
		}
	})
}
