package probe

import "testing"

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
