//go:build lab

// Lab tier (README, Tests): the ldap, ldaps and radius checks against
// Debian's real servers, slapd 2.5 and freeradius 3.2, each run by the
// test in the foreground on free loopback ports with a config of its
// own in a temporary directory (scripts/deps.sh test installs them).

package probe

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

// lookDaemon finds a server binary; a missing one fails the test.
func lookDaemon(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, serr := os.Stat(filepath.Join(dir, name)); serr == nil {
				return filepath.Join(dir, name)
			}
		}
		t.Fatalf("%s not found (scripts/deps.sh test installs it): %v", name, err)
	}
	return p
}

// freePort is a loopback port nothing listens on now (network "tcp" or
// "udp").
func freePort(t *testing.T, network string) int {
	t.Helper()
	_, port, _ := net.SplitHostPort(closedPort(t, network))
	var n int
	fmt.Sscan(port, &n)
	return n
}

// daemon is a server process run by a test, its output kept for
// failure messages.
type daemon struct {
	cmd  *exec.Cmd
	mu   sync.Mutex
	out  bytes.Buffer
	done chan struct{}
}

func (d *daemon) Write(p []byte) (int, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.out.Len() < 1<<20 {
		d.out.Write(p)
	}
	return len(p), nil
}

func (d *daemon) output() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.out.String()
}

// startDaemon runs argv in the foreground and kills it when the test
// ends; ready reports when it serves.
func startDaemon(t *testing.T, ready func(*daemon) bool, argv ...string) *daemon {
	t.Helper()
	d := &daemon{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{})}
	d.cmd.Stdout, d.cmd.Stderr = d, d
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatalf("%s: %v", argv[0], err)
	}
	go func() { d.cmd.Wait(); close(d.done) }()
	t.Cleanup(d.stop)
	deadline := time.Now().Add(20 * time.Second)
	for !ready(d) {
		select {
		case <-d.done:
			t.Fatalf("%s exited: %v\n%s", argv[0], d.cmd.ProcessState, d.output())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is not serving after 20s:\n%s", argv[0], d.output())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return d
}

// stop kills the daemon's process group and waits for it.
func (d *daemon) stop() {
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.done
}

func tcpServes(addr string) func(*daemon) bool {
	return func(*daemon) bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	}
}

func writeFile(t *testing.T, path, body string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startSlapd runs a private slapd with dc=example,dc=org holding
// cn=monitor (password monitor-pw), on plain LDAP and LDAPS ports, its
// certificate made by testCA. It returns both addresses and the CA file.
func startSlapd(t *testing.T) (ldapAddr, ldapsAddr, ca string, d *daemon) {
	slapd, slapadd := lookDaemon(t, "slapd"), lookDaemon(t, "slapadd")
	dir := t.TempDir()
	pki := testutil.NewPKI(t, "lvsmon test CA")
	certFile, keyFile := pki.Issue("ldap.example", testutil.CertOptions{})
	ca = pki.CA
	if err := os.Mkdir(filepath.Join(dir, "db"), 0o700); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(dir, "slapd.conf")
	writeFile(t, conf, fmt.Sprintf(`include /etc/ldap/schema/core.schema
pidfile %[1]s/slapd.pid
argsfile %[1]s/slapd.args
modulepath /usr/lib/ldap
moduleload back_mdb
TLSCertificateFile %[2]s
TLSCertificateKeyFile %[3]s
database mdb
maxsize 10485760
suffix "dc=example,dc=org"
rootdn "cn=admin,dc=example,dc=org"
directory %[1]s/db
`, dir, certFile, keyFile))
	ldif := filepath.Join(dir, "data.ldif")
	writeFile(t, ldif, `dn: dc=example,dc=org
objectClass: dcObject
objectClass: organization
o: Example
dc: example

dn: cn=monitor,dc=example,dc=org
objectClass: person
cn: monitor
sn: monitor
userPassword: monitor-pw
`)
	if out, err := exec.Command(slapadd, "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
	ldapAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	ldapsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	d = startDaemon(t, func(d *daemon) bool { return tcpServes(ldapAddr)(d) && tcpServes(ldapsAddr)(d) },
		slapd, "-d", "0", "-f", conf, "-h", "ldap://"+ldapAddr+"/ ldaps://"+ldapsAddr+"/")
	return ldapAddr, ldapsAddr, ca, d
}

func TestLabLDAP(t *testing.T) {
	ldapAddr, ldapsAddr, ca, d := startSlapd(t)
	otherCA := testutil.NewPKI(t, "another CA").CA
	const monitor = "username: 'cn=monitor,dc=example,dc=org', "
	tests := []struct {
		name, addr, check, want string
	}{
		{"anonymous, root DSE", ldapAddr, "{type: ldap}", ""},
		{"bind and search", ldapAddr, "{type: ldap, " + monitor + "password: monitor-pw, base_dn: 'dc=example,dc=org', expect: '^dc=example,dc=org$'}", ""},
		{"subtree search", ldapAddr, "{type: ldap, " + monitor + "password: monitor-pw, base_dn: 'dc=example,dc=org', scope: sub, filter: '(cn=monitor)', expect: '^cn=monitor,'}", ""},
		{"more entries than one", ldapAddr, "{type: ldap, base_dn: 'dc=example,dc=org', scope: sub}", ""},
		{"wrong password", ldapAddr, "{type: ldap, " + monitor + "password: wrong}", "ldap: " + ldapAddr + ": bind as cn=monitor,dc=example,dc=org refused: Invalid Credentials (49)"},
		{"no such base", ldapAddr, "{type: ldap, base_dn: 'ou=missing,dc=example,dc=org'}", `ldap: ` + ldapAddr + `: search (objectClass=*) in "ou=missing,dc=example,dc=org" (scope base) failed: No Such Object (32)`},
		{"no entry", ldapAddr, "{type: ldap, base_dn: 'dc=example,dc=org', scope: sub, filter: '(cn=nobody)'}", `ldap: ` + ldapAddr + `: search (cn=nobody) in "dc=example,dc=org" (scope sub) found no entry`},
		{"entry does not match", ldapAddr, "{type: ldap, base_dn: 'dc=example,dc=org', expect: 'dc=upmc'}", `entry "dc=example,dc=org" does not match "dc=upmc"`},
		{"ldaps", ldapsAddr, "{type: ldaps, " + monitor + "password: monitor-pw, base_dn: 'dc=example,dc=org'}", ""},
		{"ldaps verified", ldapsAddr, "{type: ldaps, tls_verify: true, tls_ca: '" + ca + "', sni: ldap.example}", ""},
		{"ldaps verified address", ldapsAddr, "{type: ldaps, tls_verify: true, tls_ca: '" + ca + "'}", ""},
		{"ldaps other CA", ldapsAddr, "{type: ldaps, tls_verify: true, tls_ca: '" + otherCA + "'}", "ldaps: TLS handshake with " + ldapsAddr + ": |certificate signed by unknown authority"},
		{"ldaps wrong name", ldapsAddr, "{type: ldaps, tls_verify: true, tls_ca: '" + ca + "', sni: other.example}", "ldaps: TLS handshake with " + ldapsAddr + ": |not other.example"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "tcp", tc.check)
			if err := runBounded(t, Lookup(c.Type), targetAt(t, tc.addr), c); tc.want == "" && err != nil {
				t.Fatalf("%v\nslapd:\n%s", err, d.output())
			} else {
				wantErr(t, err, tc.want)
			}
		})
	}
	t.Run("server stopped", func(t *testing.T) {
		d.stop()
		c := parseCheck(t, "tcp", "{type: ldap, timeout: 2s}")
		err := runBounded(t, probeLDAP, targetAt(t, ldapAddr), c)
		wantErr(t, err, "ldap: connect "+ldapAddr+": connection refused")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v is not ECONNREFUSED for the checker's classification", err)
		}
	})
}

// startFreeradius runs a private freeradius (-X: foreground, one
// thread, debug output kept) on a free loopback port, with client
// 127.0.0.1 known by secret testing123 and one user, probe with password
// probe-pw, whom it checks by PAP.
func startFreeradius(t *testing.T) (string, *daemon) {
	bin := lookDaemon(t, "freeradius")
	dir := t.TempDir()
	port := freePort(t, "udp")
	writeFile(t, filepath.Join(dir, "users"), "probe Cleartext-Password := \"probe-pw\"\n")
	writeFile(t, filepath.Join(dir, "radiusd.conf"), fmt.Sprintf(`prefix = /usr
exec_prefix = /usr
sysconfdir = /etc
localstatedir = /var
sbindir = /usr/sbin
logdir = %[1]s
raddbdir = %[1]s
radacctdir = %[1]s
name = radiusd
confdir = %[1]s
modconfdir = %[1]s
run_dir = %[1]s
db_dir = %[1]s
libdir = /usr/lib/freeradius
pidfile = %[1]s/radiusd.pid
max_request_time = 30
cleanup_delay = 5
max_requests = 1024
hostname_lookups = no
log {
	destination = stderr
	auth = yes
}
security {
	allow_core_dumps = no
	max_attributes = 200
	reject_delay = 0
	status_server = no
}
client local {
	ipaddr = 127.0.0.1
	secret = testing123
}
modules {
	files {
		filename = %[1]s/users
	}
	pap {
	}
}
server default {
	listen {
		type = auth
		ipaddr = 127.0.0.1
		port = %[2]d
	}
	authorize {
		files
		pap
	}
	authenticate {
		Auth-Type PAP {
			pap
		}
	}
}
`, dir, port))
	d := startDaemon(t, func(d *daemon) bool { return strings.Contains(d.output(), "Ready to process requests") }, bin, "-X", "-d", dir)
	return fmt.Sprintf("127.0.0.1:%d", port), d
}

func TestLabRADIUS(t *testing.T) {
	addr, d := startFreeradius(t)
	tests := []struct {
		name, check, want string
	}{
		{"accept", "{type: radius, username: probe, password: probe-pw, secret: testing123}", ""},
		{"wrong password", "{type: radius, username: probe, password: wrong, secret: testing123}", "radius: " + addr + ": Access-Reject"},
		{"unknown user", "{type: radius, username: nobody, password: probe-pw, secret: testing123}", "radius: " + addr + ": Access-Reject"},
		// freeradius checks the Message-Authenticator and drops a request
		// signed with another secret without a word.
		{"wrong secret", "{type: radius, username: probe, password: probe-pw, secret: wrong, timeout: 1s}", "radius: " + addr + ": no answer within 1s (a server drops a request it cannot authenticate: wrong secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "udp", tc.check)
			err := runBounded(t, probeRADIUS, targetFor(t, lvs.UDP, addr), c)
			if tc.want == "" && err != nil {
				t.Fatalf("%v\nfreeradius:\n%s", err, d.output())
			}
			wantErr(t, err, tc.want)
		})
	}
	if out := d.output(); !strings.Contains(out, "invalid Message-Authenticator") {
		t.Errorf("freeradius did not say why it dropped the wrong secret's request:\n%s", out)
	}
	t.Run("server stopped", func(t *testing.T) {
		d.stop()
		c := parseCheck(t, "udp", "{type: radius, username: probe, password: probe-pw, secret: testing123, timeout: 2s}")
		err := runBounded(t, probeRADIUS, targetFor(t, lvs.UDP, addr), c)
		wantErr(t, err, "radius: "+addr+": connection refused")
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("%v is not ECONNREFUSED for the checker's classification", err)
		}
	})
}
