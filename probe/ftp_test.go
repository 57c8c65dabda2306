package probe

import (
	"strings"
	"testing"
)

// bannerCase is one greeting a line-protocol server sends, and what the
// probe must make of it.
type bannerCase struct {
	name, banner, check, want string
}

// runBannerCases serves each case's banner on the loopback and probes it
// with a 300ms timeout.
func runBannerCases(t *testing.T, probe Probe, tests []bannerCase) {
	t.Helper()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := serveTCP(t, "127.0.0.1", bannerHandler(tc.banner)).addr()
			c := parseCheck(t, "tcp", tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probe, targetAt(t, addr), c), tc.want)
		})
	}
}

// An endless line: a server that streams without a newline.
var endlessLine = strings.Repeat("x", 100<<10)

func TestProbeFTP(t *testing.T) {
	runBannerCases(t, probeFTP, []bannerCase{
		{"healthy", "220 (vsFTPd 3.0.3)\r\n", "{type: ftp}", ""},
		{"multi-line", "220-Welcome to ftp.example.org\r\n220-Be nice.\r\n220 Ready\r\n", "{type: ftp, expect: '(?s)Welcome.*Ready'}", ""},
		{"expect", "220 ProFTPD Server\r\n", "{type: ftp, expect: vsFTPd}", `ftp: banner "ProFTPD Server" does not match "vsFTPd"`},
		{"too many users", "421 Too many users, try later\r\n", "{type: ftp}", "ftp: banner from 127.0.0.1:|: 421 Too many users, try later, want 220"},
		{"not FTP", "+OK POP3 ready\r\n", "{type: ftp}", `ftp: banner from 127.0.0.1:|: not a reply: "+OK POP3 ready"`},
		{"silent", "", "{type: ftp}", "ftp: banner from 127.0.0.1:|: no answer within 300ms"},
		{"endless line", endlessLine, "{type: ftp}", "ftp: banner from 127.0.0.1:|: reply longer than 64 KiB"},
	})
	c := parseCheck(t, "tcp", "{type: ftp, timeout: 300ms}")
	wantErr(t, runBounded(t, probeFTP, targetAt(t, closedPort(t, "tcp")), c), "ftp: connect 127.0.0.1:|: connection refused")
}
