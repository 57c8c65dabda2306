package probe

import (
	"bufio"
	"net"
	"strings"
	"sync"
	"testing"
)

// smtpServer greets with banner, answers EHLO with ehloReply and
// remembers the names it was greeted with.
type smtpServer struct {
	banner, ehloReply string
	mu                sync.Mutex
	greeted           []string
}

func (s *smtpServer) handle(c net.Conn) {
	if _, err := c.Write([]byte(s.banner)); err != nil {
		return
	}
	r := bufio.NewReader(c)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return
		}
		verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
		switch strings.ToUpper(verb) {
		case "EHLO":
			s.mu.Lock()
			s.greeted = append(s.greeted, arg)
			s.mu.Unlock()
			c.Write([]byte(s.ehloReply))
		case "QUIT":
			c.Write([]byte("221 2.0.0 Bye\r\n"))
			return
		default:
			c.Write([]byte("502 5.5.2 Error: command not recognized\r\n"))
		}
	}
}

func (s *smtpServer) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.greeted...)
}

const goodEHLO = "250-mail.example.org\r\n250-PIPELINING\r\n250-SIZE 10240000\r\n250 8BITMIME\r\n"

func TestProbeSMTP(t *testing.T) {
	tests := []struct {
		name, banner, ehloReply, check, want string
		greeted                              string // the EHLO name the server must have seen
	}{
		{"healthy", "220 mail.example.org ESMTP Postfix\r\n", goodEHLO, "{type: smtp, ehlo: director.example.org}", "", "director.example.org"},
		{"multi-line banner and expect", "220-mail.example.org ESMTP\r\n220 Postfix ready\r\n", goodEHLO, "{type: smtp, expect: 'ESMTP\\nPostfix'}", "", ""},
		{"banner does not match", "220 mail.example.org ESMTP Exim\r\n", goodEHLO, "{type: smtp, expect: Postfix}", `smtp: banner "mail.example.org ESMTP Exim" does not match "Postfix"`, ""},
		{"refuses service", "554 5.3.2 mail.example.org no service, try later\r\n", goodEHLO, "{type: smtp}", "smtp: banner from 127.0.0.1:|: 554 5.3.2 mail.example.org no service, try later, want 220", ""},
		{"rejects EHLO", "220 mail.example.org ESMTP\r\n", "502 5.5.2 Error: command not recognized\r\n", "{type: smtp, ehlo: director.example.org}", "smtp: EHLO director.example.org: 502 5.5.2 Error: command not recognized, want 250", "director.example.org"},
		{"not SMTP", "SSH-2.0-OpenSSH_9.2p1\r\n", goodEHLO, "{type: smtp}", `smtp: banner from 127.0.0.1:|: not a reply: "SSH-2.0-OpenSSH_9.2p1"`, ""},
		{"never greets", "", goodEHLO, "{type: smtp}", "smtp: banner from 127.0.0.1:|: no answer within 300ms", ""},
		{"greets, never answers EHLO", "220 mail.example.org ESMTP\r\n", "", "{type: smtp}", "smtp: EHLO |: no answer within 300ms", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s := &smtpServer{banner: tc.banner, ehloReply: tc.ehloReply}
			addr := serveTCP(t, "127.0.0.1", s.handle).addr()
			c := parseCheck(t, "tcp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probeSMTP, targetAt(t, addr), c), tc.want)
			if tc.greeted != "" {
				if got := s.names(); len(got) != 1 || got[0] != tc.greeted {
					t.Errorf("server was greeted with %q, want %q", got, tc.greeted)
				}
			}
		})
	}
}

func TestProbeSMTPDefaultsAndFailures(t *testing.T) {
	// The EHLO name defaults to the host name.
	s := &smtpServer{banner: "220 ok\r\n", ehloReply: goodEHLO}
	addr := serveTCP(t, "127.0.0.1", s.handle).addr()
	c := parseCheck(t, "tcp", "{type: smtp}")
	wantErr(t, runBounded(t, probeSMTP, targetAt(t, addr), c), "")
	if got := s.names(); len(got) != 1 || got[0] == "" || got[0] != c.EHLO {
		t.Errorf("greeted as %q, want the default %q", got, c.EHLO)
	}
	c = parseCheck(t, "tcp", "{type: smtp, timeout: 300ms}")
	wantErr(t, runBounded(t, probeSMTP, targetAt(t, closedPort(t, "tcp")), c), "smtp: connect 127.0.0.1:|: connection refused")
	wantErr(t, runBounded(t, probeSMTP, targetAt(t, serveTCP(t, "127.0.0.1", resetHandler).addr()), c), "smtp: ")
}
