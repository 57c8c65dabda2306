package probe

import (
	"bufio"
	"io"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

func TestProbeIMAP(t *testing.T) {
	runBannerCases(t, probeIMAP, []bannerCase{
		{"healthy", "* OK [CAPABILITY IMAP4rev1 STARTTLS] Dovecot ready.\r\n", "{type: imap}", ""},
		{"preauth", "* PREAUTH IMAP4rev1 server logged in as admin\r\n", "{type: imap}", ""},
		{"any case", "* ok hello\r\n", "{type: imap}", ""},
		{"expect", "* OK [CAPABILITY IMAP4rev1] Dovecot ready.\r\n", "{type: imap, expect: 'IMAP4rev1.*Dovecot'}", ""},
		{"expect fails", "* OK Courier-IMAP ready.\r\n", "{type: imap, expect: Dovecot}", `imap: banner "Courier-IMAP ready." does not match "Dovecot"`},
		{"turned away", "* BYE Too many connections\r\n", "{type: imap}", `imap: banner from 127.0.0.1:|is "* BYE Too many connections", want * OK`},
		{"not IMAP", "+OK POP3 ready\r\n", "{type: imap}", `imap: banner from 127.0.0.1:|is "+OK POP3 ready", want * OK`},
		{"silent", "", "{type: imap}", "imap: banner from 127.0.0.1:|: no answer within 300ms"},
		{"endless line", endlessLine, "{type: imap}", "imap: banner from 127.0.0.1:|: reply longer than 64 KiB"},
	})
	c := parseCheck(t, "tcp", "{type: imap, timeout: 300ms}")
	wantErr(t, runBounded(t, probeIMAP, targetAt(t, closedPort(t, "tcp")), c), "imap: connect 127.0.0.1:|: connection refused")
}

// imapServer greets, reads one LOGIN command, literals included (each
// asked for with a "+"), hands the whole command to got, and answers
// what reply returns for it: "" hangs, "CLOSE" hangs up. An "a1 NO"
// reply refuses the first literal already.
func imapServer(greeting string, reply func(cmd string) string, got chan<- string) func(net.Conn) {
	return func(c net.Conn) {
		if _, err := io.WriteString(c, greeting); err != nil {
			return
		}
		r := bufio.NewReader(c)
		var cmd strings.Builder
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			cmd.WriteString(line)
			m := literalRe.FindStringSubmatch(line)
			if m == nil {
				break
			}
			n, _ := strconv.Atoi(m[1])
			if r := reply(cmd.String()); strings.HasPrefix(r, "a1 NO") {
				got <- cmd.String()
				io.WriteString(c, r) // a refused literal
				tarpitHandler(c)
				return
			}
			io.WriteString(c, "+ go ahead\r\n")
			b := make([]byte, n)
			if _, err := io.ReadFull(r, b); err != nil {
				return
			}
			cmd.Write(b)
		}
		got <- cmd.String()
		switch ans := reply(cmd.String()); ans {
		case "":
			tarpitHandler(c)
		case "CLOSE":
		default:
			io.WriteString(c, ans)
			tarpitHandler(c)
		}
	}
}

var literalRe = regexp.MustCompile(`\{(\d+)\}\r\n$`)

// TestIMAPLogin: with a username, the check logs in; what the server
// answers decides, and the password never shows in a message.
func TestIMAPLogin(t *testing.T) {
	const greeting = "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] Dovecot ready.\r\n"
	ok := func(string) string { return "a1 OK [CAPABILITY IMAP4rev1] Logged in\r\n" }
	for _, tc := range []struct {
		name, greeting, check string
		reply                 func(string) string
		wantCmd, want         string
	}{
		{"healthy", greeting, "{type: imap, username: monitor, password: s3cret}", ok, "a1 LOGIN \"monitor\" \"s3cret\"\r\n", ""},
		{"refused", greeting, "{type: imap, username: monitor, password: s3cret}",
			func(string) string { return "a1 NO [AUTHENTICATIONFAILED] Authentication failed.\r\n" }, "a1 LOGIN",
			"imap: 127.0.0.1:|: login as monitor refused: NO [AUTHENTICATIONFAILED] Authentication failed."},
		{"bad", greeting, "{type: imap, username: monitor, password: s3cret}",
			func(string) string { return "a1 BAD Error in IMAP command\r\n" }, "a1 LOGIN", "login as monitor refused: BAD Error in IMAP command"},
		{"quotes and backslashes", greeting, `{type: imap, username: 'mon "it" or', password: 'p"a\ss word'}`, ok,
			`a1 LOGIN "mon \"it\" or" "p\"a\\ss word"` + "\r\n", ""},
		{"empty password", greeting, `{type: imap, username: monitor}`, ok, "a1 LOGIN \"monitor\" \"\"\r\n", ""},
		{"8-bit password as a literal", greeting, "{type: imap, username: monitor, password: 'pässwörd'}", ok,
			"a1 LOGIN \"monitor\" {10}\r\npässwörd\r\n", ""},
		{"8-bit user and password", greeting, "{type: imap, username: 'jürgen', password: 'pässwörd'}", ok,
			"a1 LOGIN {7}\r\njürgen {10}\r\npässwörd\r\n", ""},
		{"literal refused", greeting, "{type: imap, username: monitor, password: 'pässwörd'}",
			func(string) string { return "a1 NO literal too long\r\n" }, "a1 LOGIN \"monitor\" {10}\r\n", "login as monitor refused: NO literal too long"},
		{"untagged first", greeting, "{type: imap, username: monitor, password: s3cret}",
			func(string) string { return "* CAPABILITY IMAP4rev1\r\n* OK still here\r\na1 ok done\r\n" }, "a1 LOGIN", ""},
		{"preauth needs no login", "* PREAUTH ready\r\n", "{type: imap, username: monitor, password: s3cret}", ok, "", ""},
		{"hangs after LOGIN", greeting, "{type: imap, username: monitor, password: s3cret}", func(string) string { return "" }, "a1 LOGIN",
			"imap: 127.0.0.1:|: no answer within 300ms"},
		{"closes after LOGIN", greeting, "{type: imap, username: monitor, password: s3cret}", func(string) string { return "CLOSE" }, "a1 LOGIN",
			"imap: 127.0.0.1:|: connection closed by the server"},
		{"garbage", greeting, "{type: imap, username: monitor, password: s3cret}", func(string) string { return "HTTP/1.1 400 Bad Request\r\n" }, "a1 LOGIN",
			`login as monitor: not an IMAP reply: "HTTP/1.1 400 Bad Request"`},
		{"endless", greeting, "{type: imap, username: monitor, password: s3cret}", func(string) string { return "* " + endlessLine }, "a1 LOGIN",
			"reply longer than 64 KiB"},
		{"no login without username", greeting, "{type: imap}", ok, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			got := make(chan string, 1)
			addr := serveTCP(t, "127.0.0.1", imapServer(tc.greeting, tc.reply, got)).addr()
			c := parseCheck(t, "tcp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			err := runBounded(t, probeIMAP, targetAt(t, addr), c)
			wantErr(t, err, tc.want)
			if err != nil && c.Secret != "" && strings.Contains(err.Error(), c.Secret) {
				t.Errorf("the message shows the password: %v", err)
			}
			select {
			case cmd := <-got:
				if tc.wantCmd == "" && strings.Contains(cmd, "LOGIN") || !strings.HasPrefix(cmd, tc.wantCmd) {
					t.Errorf("server got %q, want %q", cmd, tc.wantCmd)
				}
			default:
				if tc.wantCmd != "" {
					t.Errorf("server got no command, want %q", tc.wantCmd)
				}
			}
		})
	}
}

// TestIMAPS: implicit TLS with https's keys, and the login over it.
func TestIMAPS(t *testing.T) {
	pki := newTestPKI(t)
	got := make(chan string, 100)
	ok := func(string) string { return "a1 OK Logged in\r\n" }
	tlsAddr := serveTCP(t, "127.0.0.1", pki.overTLS(imapServer("* OK ready\r\n", ok, got))).addr()
	plainAddr := serveTCP(t, "127.0.0.1", bannerHandler("* OK ready\r\n")).addr()
	silentAddr := serveTCP(t, "127.0.0.1", tarpitHandler).addr()
	for _, tc := range []struct{ name, addr, check, want string }{
		{"unverified", tlsAddr, "{type: imaps}", ""},
		{"login", tlsAddr, "{type: imaps, username: monitor, password: s3cret}", ""},
		{"verified by name", tlsAddr, "{type: imaps, tls_verify: true, tls_ca: '" + pki.caFile + "', sni: mail.test}", ""},
		{"verified by address", tlsAddr, "{type: imaps, tls_verify: true, tls_ca: '" + pki.caFile + "'}", ""},
		{"wrong name", tlsAddr, "{type: imaps, tls_verify: true, tls_ca: '" + pki.caFile + "', sni: other.test}",
			"imaps: TLS handshake with 127.0.0.1:|certificate is valid for localhost, mail.test, not other.test"},
		{"unknown authority", tlsAddr, "{type: imaps, tls_verify: true}", "imaps: TLS handshake with 127.0.0.1:|certificate signed by unknown authority"},
		{"plain server", plainAddr, "{type: imaps}", "imaps: TLS handshake with 127.0.0.1:"},
		{"silent", silentAddr, "{type: imaps, timeout: 300ms}", "imaps: TLS handshake with 127.0.0.1:|: no answer within 300ms"},
		{"refused", closedPort(t, "tcp"), "{type: imaps}", "imaps: connect 127.0.0.1:|: connection refused"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			// Loading the system's roots may take a while under -race.
			if !strings.Contains(tc.check, "timeout") {
				tc.check = tc.check[:len(tc.check)-1] + ", timeout: 5s}"
			}
			wantErr(t, runBounded(t, probeIMAPS, targetAt(t, tc.addr), parseCheck(t, "tcp", tc.check)), tc.want)
		})
	}
}

// TestIMAPStringRefusesNUL: a NUL cannot be sent in any IMAP string.
func TestIMAPStringRefusesNUL(t *testing.T) {
	c := &config.Check{Type: "imap", Username: "monitor", Secret: "a\x00b", Timeout: config.Duration(300 * time.Millisecond)}
	got := make(chan string, 1)
	addr := serveTCP(t, "127.0.0.1", imapServer("* OK\r\n", func(string) string { return "a1 OK\r\n" }, got)).addr()
	wantErr(t, runBounded(t, probeIMAP, targetAt(t, addr), c), "imap: 127.0.0.1:|: the password holds a NUL or line break, which IMAP cannot send")
}

// FuzzIMAPString: whatever the string, the quoted form is one line that
// reads back as the string, and a literal carries it byte for byte.
func FuzzIMAPString(f *testing.F) {
	for _, s := range []string{"", "monitor", `p"a\ss`, "pässwörd", "a\r\nb", "a\x00b", `\`, `"`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := imapString(s)
		switch {
		case strings.IndexByte(s, 0) >= 0:
			if err == nil {
				t.Fatalf("%q: a NUL was not refused", s)
			}
			return
		case err != nil:
			t.Fatalf("%q: %v", s, err)
		case a.literal:
			if a.text != s {
				t.Fatalf("literal %q, want %q", a.text, s)
			}
			return
		}
		if strings.ContainsAny(a.text, "\r\n") || len(a.text) < 2 || a.text[0] != '"' || a.text[len(a.text)-1] != '"' {
			t.Fatalf("%q quoted as %q", s, a.text)
		}
		var back strings.Builder
		in := a.text[1 : len(a.text)-1]
		for i := 0; i < len(in); i++ {
			switch {
			case in[i] == '\\' && i+1 < len(in) && (in[i+1] == '\\' || in[i+1] == '"'):
				i++
			case in[i] == '\\' || in[i] == '"':
				t.Fatalf("%q: unescaped %c in %q", s, in[i], a.text)
			}
			back.WriteByte(in[i])
		}
		if back.String() != s {
			t.Fatalf("%q quoted as %q reads back as %q", s, a.text, back.String())
		}
	})
}

// FuzzIMAPLine: the line sorter takes any line without panicking, and
// only "a1 OK|NO|BAD ..." is the tagged status.
func FuzzIMAPLine(f *testing.F) {
	for _, s := range []string{"a1 OK Logged in", "a1 no [AUTHENTICATIONFAILED] x", "* OK", "+ go", "a1", "a1 ", "a10 OK", "a1 OKAY", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, line string) {
		kind, status, text := parseIMAPLine(line, "a1")
		if kind == imapTagged {
			if !strings.HasPrefix(line, "a1 ") || (status != "OK" && status != "NO" && status != "BAD") || !strings.HasSuffix(line, text) {
				t.Fatalf("%q: tagged %q %q", line, status, text)
			}
		} else if status != "" || text != "" {
			t.Fatalf("%q: kind %d with status %q", line, kind, status)
		}
	})
}
