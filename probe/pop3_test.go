package probe

import (
	"bufio"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

func TestProbePOP3(t *testing.T) {
	runBannerCases(t, probePOP3, []bannerCase{
		{"healthy", "+OK Dovecot ready.\r\n", "{type: pop3}", ""},
		{"expect", "+OK Dovecot ready.\r\n", "{type: pop3, expect: '^Dovecot'}", ""},
		{"expect fails", "+OK Cyrus POP3 ready\r\n", "{type: pop3, expect: '^Dovecot'}", `pop3: banner "Cyrus POP3 ready" does not match "^Dovecot"`},
		{"error greeting", "-ERR [SYS/TEMP] overloaded\r\n", "{type: pop3}", `pop3: banner from 127.0.0.1:|is "-ERR [SYS/TEMP] overloaded", want +OK`},
		{"not POP3", "220 mail.example.org ESMTP\r\n", "{type: pop3}", `pop3: banner from 127.0.0.1:|is "220 mail.example.org ESMTP", want +OK`},
		{"silent", "", "{type: pop3}", "pop3: banner from 127.0.0.1:|: no answer within 300ms"},
		{"unfinished line", "+OK", "{type: pop3}", "pop3: banner from 127.0.0.1:|: no answer within 300ms"},
		{"endless line", endlessLine, "{type: pop3}", "pop3: banner from 127.0.0.1:|: reply longer than 64 KiB"},
	})
	c := parseCheck(t, "tcp", "{type: pop3, timeout: 300ms}")
	wantErr(t, runBounded(t, probePOP3, targetAt(t, closedPort(t, "tcp")), c), "pop3: connect 127.0.0.1:|: connection refused")
	wantErr(t, runBounded(t, probePOP3, targetAt(t, serveTCP(t, "127.0.0.1", func(net.Conn) {}).addr()), c), "pop3: banner from 127.0.0.1:|: connection closed by the server")
}

// pop3Server greets, then answers each command line with what reply
// returns for it ("" hangs, "CLOSE" hangs up), handing the lines to got.
func pop3Server(greeting string, reply func(cmd string) string, got chan<- string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			got <- line
			switch ans := reply(line); ans {
			case "":
				tarpitHandler(c)
				return
			case "CLOSE":
				return
			default:
				io.WriteString(c, ans)
			}
		}
	}
}

func TestPOP3Login(t *testing.T) {
	const greeting = "+OK Dovecot ready.\r\n"
	ok := func(string) string { return "+OK\r\n" }
	refusePass := func(cmd string) string {
		if strings.HasPrefix(cmd, "PASS ") {
			return "-ERR [AUTH] Authentication failed.\r\n"
		}
		return "+OK\r\n"
	}
	for _, tc := range []struct {
		name, check string
		reply       func(string) string
		wantCmds    []string
		want        string
	}{
		{"healthy", "{type: pop3, username: monitor, password: s3cret}", ok, []string{"USER monitor\r\n", "PASS s3cret\r\n", "QUIT\r\n"}, ""},
		{"spaces and quotes", `{type: pop3, username: monitor, password: 'a "b" c\'}`, ok, []string{"USER monitor\r\n", `PASS a "b" c\` + "\r\n"}, ""},
		{"refused", "{type: pop3, username: monitor, password: s3cret}", refusePass, []string{"USER monitor\r\n", "PASS s3cret\r\n"},
			"pop3: 127.0.0.1:|: login as monitor refused: -ERR [AUTH] Authentication failed."},
		{"user refused", "{type: pop3, username: monitor, password: s3cret}", func(string) string { return "-ERR no\r\n" }, []string{"USER monitor\r\n"},
			"login as monitor refused: -ERR no"},
		{"hangs after PASS", "{type: pop3, username: monitor, password: s3cret}", func(cmd string) string {
			if strings.HasPrefix(cmd, "PASS") {
				return ""
			}
			return "+OK\r\n"
		}, []string{"USER monitor\r\n", "PASS s3cret\r\n"}, "pop3: 127.0.0.1:|: no answer within 300ms"},
		{"closes", "{type: pop3, username: monitor, password: s3cret}", func(string) string { return "CLOSE" }, []string{"USER monitor\r\n"},
			"pop3: 127.0.0.1:|: connection closed by the server"},
		{"garbage", "{type: pop3, username: monitor, password: s3cret}", func(string) string { return "* OK what\r\n" }, []string{"USER monitor\r\n"},
			`login as monitor: not a POP3 reply: "* OK what"`},
		{"endless", "{type: pop3, username: monitor, password: s3cret}", func(string) string { return endlessLine }, []string{"USER monitor\r\n"},
			"reply longer than 64 KiB"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 10)
			addr := serveTCP(t, "127.0.0.1", pop3Server(greeting, tc.reply, got)).addr()
			c := parseCheck(t, "tcp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			err := runBounded(t, probePOP3, targetAt(t, addr), c)
			wantErr(t, err, tc.want)
			if err != nil && strings.Contains(err.Error(), c.Secret) {
				t.Errorf("the message shows the password: %v", err)
			}
			for _, want := range tc.wantCmds {
				select {
				case cmd := <-got:
					if cmd != want {
						t.Errorf("server got %q, want %q", cmd, want)
					}
				case <-time.After(2 * time.Second):
					t.Fatalf("server got no %q", want)
				}
			}
		})
	}
	c := &config.Check{Type: "pop3", Username: "monitor", Secret: "a\r\nDELE 1", Timeout: config.Duration(300 * time.Millisecond)}
	addr := serveTCP(t, "127.0.0.1", pop3Server(greeting, ok, make(chan string, 10))).addr()
	wantErr(t, runBounded(t, probePOP3, targetAt(t, addr), c), "pop3: 127.0.0.1:|: the password holds a NUL or line break, which POP3 cannot send")
}

func TestPOP3S(t *testing.T) {
	pki := newTestPKI(t)
	got := make(chan string, 100)
	tlsAddr := serveTCP(t, "127.0.0.1", pki.overTLS(pop3Server("+OK ready\r\n", func(string) string { return "+OK\r\n" }, got))).addr()
	for _, tc := range []struct{ name, addr, check, want string }{
		{"unverified", tlsAddr, "{type: pop3s}", ""},
		{"login verified", tlsAddr, "{type: pop3s, username: monitor, password: s3cret, tls_verify: true, tls_ca: '" + pki.caFile + "', sni: mail.test}", ""},
		{"unknown authority", tlsAddr, "{type: pop3s, tls_verify: true}", "pop3s: TLS handshake with 127.0.0.1:|certificate signed by unknown authority"},
		{"plain server", serveTCP(t, "127.0.0.1", bannerHandler("+OK ready\r\n")).addr(), "{type: pop3s}", "pop3s: TLS handshake with 127.0.0.1:"},
		{"refused", closedPort(t, "tcp"), "{type: pop3s}", "pop3s: connect 127.0.0.1:|: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "tcp", tc.check[:len(tc.check)-1]+", timeout: 5s}")
			wantErr(t, runBounded(t, probePOP3S, targetAt(t, tc.addr), c), tc.want)
		})
	}
}

// FuzzPOP3Reply: any line sorts without panicking; only +OK and -ERR
// lines are replies.
func FuzzPOP3Reply(f *testing.F) {
	for _, s := range []string{"+OK", "+OK Dovecot ready.", "-ERR [AUTH] failed", "-ERRx", "+ok", "", "220 smtp"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		ok, text, known := parsePOP3Reply(line)
		switch {
		case known && ok && !strings.HasPrefix(line, "+OK"), known && !ok && !strings.HasPrefix(line, "-ERR"):
			t.Fatalf("%q: ok %v", line, ok)
		case !known && (ok || text != ""):
			t.Fatalf("%q: not a reply, yet ok %v text %q", line, ok, text)
		case known && !strings.Contains(line, text):
			t.Fatalf("%q: text %q", line, text)
		}
	})
}
