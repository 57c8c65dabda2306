//go:build lab

// Lab tier (README, Tests): the mail checks against a private dovecot
// (dovecot-imapd, dovecot-pop3d) and the sip check against a private
// kamailio, both on loopback ports of their own; needs root (dovecot's
// master drops its login processes to dovenull).

package probe

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/lvsmon/lvsmon/lvs"
)

// startServer runs name (of Debian package pkg) with args and waits
// until every address in ready accepts TCP connections; a missing binary
// fails the test (scripts/deps.sh test installs it).
func startServer(t *testing.T, pkg, name string, ready []string, args ...string) *daemon {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("%s runs as root in the lab tier (go test -tags lab as root)", name)
	}
	path, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%v: scripts/deps.sh test installs %s", err, pkg)
	}
	serves := func(d *daemon) bool {
		for _, addr := range ready {
			if !tcpServes(addr)(d) {
				return false
			}
		}
		return true
	}
	return startDaemon(t, serves, append([]string{path}, args...)...)
}

// freeTCPUDPPort is a loopback port free for TCP and UDP both.
func freeTCPUDPPort(t *testing.T) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		pc, err := net.ListenPacket("udp", "127.0.0.1:"+strconv.Itoa(port))
		ln.Close()
		if err == nil {
			pc.Close()
			return port
		}
	}
	t.Fatal("no loopback port free for TCP and UDP")
	return 0
}

// openDir makes a test directory and its parent searchable by the
// unprivileged processes a daemon drops to.
func openDir(t *testing.T) string {
	dir := t.TempDir()
	for _, d := range []string{dir, filepath.Dir(dir)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// The password of a second user needs IMAP quoting (quotes, a
// backslash, a space) and a literal (8-bit).
const awkwardPassword = `p"a\ss wörd`

// startDovecot runs a private dovecot: IMAP, IMAPS, POP3 and POP3S on
// free loopback ports, users from a passwd-file, the certificate of pki.
func startDovecot(t *testing.T, pki *testPKI) (d *daemon, imap, imaps, pop3, pop3s string) {
	dir := openDir(t)
	home := filepath.Join(dir, "home")
	if err := os.Mkdir(home, 0o1777); err != nil {
		t.Fatal(err)
	}
	os.Chmod(home, 0o1777)
	users := fmt.Sprintf("monitor:{PLAIN}s3cret:65534:65534::%[1]s/monitor::\nawkward:{PLAIN}%[2]s:65534:65534::%[1]s/awkward::\n", home, awkwardPassword)
	if err := os.WriteFile(filepath.Join(dir, "passwd"), []byte(users), 0o644); err != nil {
		t.Fatal(err)
	}
	ports := [4]int{}
	for i := range ports {
		ports[i] = freeTCPUDPPort(t)
	}
	conf := fmt.Sprintf(`protocols = imap pop3
listen = 127.0.0.1
base_dir = %[1]s/run
state_dir = %[1]s/state
log_path = /dev/stderr
ssl = yes
ssl_cert = <%[2]s
ssl_key = <%[3]s
disable_plaintext_auth = no
auth_failure_delay = 0
mail_location = maildir:~/Maildir
pop3_uidl_format = %%08Xu%%08Xv
passdb {
  driver = passwd-file
  args = %[1]s/passwd
}
userdb {
  driver = passwd-file
  args = %[1]s/passwd
}
service imap-login {
  inet_listener imap {
    port = %[4]d
  }
  inet_listener imaps {
    port = %[5]d
    ssl = yes
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[6]d
  }
  inet_listener pop3s {
    port = %[7]d
    ssl = yes
  }
}
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`, dir, pki.certFile, pki.keyFile, ports[0], ports[1], ports[2], ports[3])
	cf := filepath.Join(dir, "dovecot.conf")
	if err := os.WriteFile(cf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, p := range ports {
		addrs = append(addrs, "127.0.0.1:"+strconv.Itoa(p))
	}
	d = startServer(t, "dovecot-imapd and dovecot-pop3d", "dovecot", addrs, "-F", "-c", cf)
	return d, addrs[0], addrs[1], addrs[2], addrs[3]
}

// TestMailLab: imap, imaps, pop3 and pop3s against a real dovecot.
func TestMailLab(t *testing.T) {
	pki := newTestPKI(t)
	d, imap, imaps, pop3, pop3s := startDovecot(t, pki)
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte(awkwardPassword+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ca := pki.caFile
	type tc struct{ name, addr, check, want string }
	var cases []tc
	for _, s := range []struct{ typ, addr, refused string }{
		{"imap", imap, "login as monitor refused: NO [AUTHENTICATIONFAILED] Authentication failed."},
		{"imaps", imaps, "login as monitor refused: NO [AUTHENTICATIONFAILED] Authentication failed."},
		{"pop3", pop3, "login as monitor refused: -ERR [AUTH] Authentication failed."},
		{"pop3s", pop3s, "login as monitor refused: -ERR [AUTH] Authentication failed."},
	} {
		cases = append(cases,
			tc{s.typ + " greeting", s.addr, "{type: " + s.typ + ", expect: Dovecot}", ""},
			tc{s.typ + " login", s.addr, "{type: " + s.typ + ", username: monitor, password: s3cret}", ""},
			tc{s.typ + " awkward password", s.addr, "{type: " + s.typ + ", username: awkward, password_file: '" + pwFile + "'}", ""},
			tc{s.typ + " wrong password", s.addr, "{type: " + s.typ + ", username: monitor, password: wrong}", s.typ + ": 127.0.0.1:|: " + s.refused},
			tc{s.typ + " unknown user", s.addr, "{type: " + s.typ + ", username: nobody, password: s3cret}", "login as nobody refused"},
		)
		if strings.HasSuffix(s.typ, "s") {
			cases = append(cases,
				tc{s.typ + " verified", s.addr, "{type: " + s.typ + ", username: monitor, password: s3cret, tls_verify: true, tls_ca: '" + ca + "', sni: mail.test}", ""},
				tc{s.typ + " verified by address", s.addr, "{type: " + s.typ + ", tls_verify: true, tls_ca: '" + ca + "'}", ""},
				tc{s.typ + " wrong name", s.addr, "{type: " + s.typ + ", tls_verify: true, tls_ca: '" + ca + "', sni: other.test}", "certificate is valid for localhost, mail.test, not other.test"},
				tc{s.typ + " unknown authority", s.addr, "{type: " + s.typ + ", tls_verify: true}", s.typ + ": TLS handshake with 127.0.0.1:|certificate signed by unknown authority"},
			)
		}
	}
	cases = append(cases, tc{"imaps on the imap port", imap, "{type: imaps}", "imaps: TLS handshake with 127.0.0.1:"})
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			check := parseCheck(t, "tcp", c.check[:len(c.check)-1]+", timeout: 10s}")
			p := Lookup(check.Type)
			err := runBounded(t, p, targetAt(t, c.addr), check)
			wantErr(t, err, c.want)
			if err != nil && (strings.Contains(err.Error(), "s3cret") || strings.Contains(err.Error(), awkwardPassword)) {
				t.Errorf("the message shows the password: %v", err)
			}
		})
	}
	if t.Failed() {
		t.Logf("dovecot's log:\n%s", d.output())
	}
	d.stop()
	for typ, addr := range map[string]string{"imap": imap, "imaps": imaps, "pop3": pop3, "pop3s": pop3s} {
		t.Run(typ+" stopped", func(t *testing.T) {
			check := parseCheck(t, "tcp", "{type: "+typ+", username: monitor, password: s3cret, timeout: 5s}")
			wantErr(t, runBounded(t, Lookup(typ), targetAt(t, addr), check), typ+": connect 127.0.0.1:|: connection refused")
		})
	}
}

// kamailioCfg answers OPTIONS 200, but 503 to sip:busy@...: the sl
// module's stateless replies, nothing else loaded.
const kamailioCfg = `#!KAMAILIO
debug=2
log_stderror=yes
children=1
tcp_children=1
auto_aliases=no
listen=udp:127.0.0.1:%[1]d
listen=tcp:127.0.0.1:%[1]d
mpath="/usr/lib/x86_64-linux-gnu/kamailio/modules/"
loadmodule "sl.so"
request_route {
	if (method=="OPTIONS") {
		if (uri=~"^sip:busy@") {
			sl_send_reply("503", "Service Unavailable");
			exit;
		}
		sl_send_reply("200", "OK");
		exit;
	}
	sl_send_reply("405", "Method Not Allowed");
}
`

// TestSIPLab: the sip check against a real kamailio, over UDP and TCP.
func TestSIPLab(t *testing.T) {
	dir := openDir(t)
	port := freeTCPUDPPort(t)
	cf := filepath.Join(dir, "kamailio.cfg")
	if err := os.WriteFile(cf, fmt.Appendf(nil, kamailioCfg, port), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	d := startServer(t, "kamailio", "kamailio", []string{addr}, "-f", cf, "-DD", "-E", "-Y", dir, "-P", filepath.Join(dir, "pid"), "-m", "32", "-M", "8")
	for _, c := range []struct {
		name  string
		proto lvs.Protocol
		check string
		want  string
	}{
		{"udp", lvs.UDP, "{type: sip}", ""},
		{"tcp", lvs.TCP, "{type: sip}", ""},
		{"tcp by sip_transport", lvs.UDP, "{type: sip, sip_transport: tcp}", ""},
		{"ldirectord's uri", lvs.UDP, "{type: sip, sip_uri: 'sip:ldirectord@lvs.example.org'}", ""},
		{"503 over udp", lvs.UDP, "{type: sip, sip_uri: 'sip:busy@127.0.0.1'}", "sip: 127.0.0.1:|(udp): status 503 Service Unavailable"},
		{"503 over tcp", lvs.TCP, "{type: sip, sip_uri: 'sip:busy@127.0.0.1'}", "sip: 127.0.0.1:|(tcp): status 503 Service Unavailable"},
	} {
		t.Run(c.name, func(t *testing.T) {
			proto := "udp"
			if c.proto == lvs.TCP {
				proto = "tcp"
			}
			check := parseCheck(t, proto, c.check[:len(c.check)-1]+", timeout: 5s}")
			wantErr(t, runBounded(t, probeSIP, targetFor(t, c.proto, addr), check), c.want)
		})
	}
	if t.Failed() {
		t.Logf("kamailio's log:\n%s", d.output())
	}
	d.stop()
	for _, c := range []struct {
		proto lvs.Protocol
		name  string
		want  string
	}{
		{lvs.UDP, "udp", "sip: 127.0.0.1:|(udp): port unreachable (ICMP): connection refused"},
		{lvs.TCP, "tcp", "sip: connect 127.0.0.1:|(tcp): connection refused"},
	} {
		t.Run("stopped "+c.name, func(t *testing.T) {
			check := parseCheck(t, c.name, "{type: sip, timeout: 5s}")
			err := runBounded(t, probeSIP, targetFor(t, c.proto, addr), check)
			wantErr(t, err, c.want)
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("%v is not a refusal to the checker", err)
			}
		})
	}
}
