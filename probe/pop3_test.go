package probe

import (
	"net"
	"testing"
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
