package probe

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	ber "github.com/go-asn1-ber/asn1-ber"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

// ldapFake is an LDAP server that knows two operations, bind and
// search, answering with the codes and entries it is given: enough to
// see what the probe sends and how it judges the answers. It speaks the
// wire format (BER) itself, so the client under test is not checked
// against its own encoder.
type ldapFake struct {
	bindCode   int64    // the bind's result code (0: success, 49: invalid credentials)
	entries    []string // the DNs a search returns
	searchCode int64    // the search's result code (0, 4: size limit exceeded, 32: no such object)
	hangUp     bool     // close the connection after refusing a bind

	mu       sync.Mutex
	binds    []string // "DN password" of each bind
	searches []string // "base scope filter-tag sizelimit" of each search
	unbinds  int
}

func (f *ldapFake) handle(c net.Conn) {
	r := bufio.NewReader(c)
	for {
		p, err := ber.ReadPacket(r)
		if err != nil || len(p.Children) < 2 {
			return
		}
		id, _ := p.Children[0].Value.(int64)
		op := p.Children[1]
		switch op.Tag {
		case 0: // BindRequest: version, name, [0] simple password
			if len(op.Children) < 3 {
				return
			}
			f.mu.Lock()
			f.binds = append(f.binds, op.Children[1].Data.String()+" "+op.Children[2].Data.String())
			f.mu.Unlock()
			c.Write(ldapResultPacket(id, 1, f.bindCode, "").Bytes())
			if f.hangUp && f.bindCode != 0 {
				return
			}
		case 3: // SearchRequest: base, scope, deref, size, time, typesOnly, filter, attributes
			if len(op.Children) < 8 {
				return
			}
			f.mu.Lock()
			filter := op.Children[6] // present: the attribute; equality and others: a sequence led by it
			attr := filter.Data.String()
			if len(filter.Children) > 0 {
				attr = filter.Children[0].Data.String()
			}
			f.searches = append(f.searches, fmt.Sprintf("%s|%v|%v|%s", op.Children[0].Data.String(), op.Children[1].Value, op.Children[3].Value, attr))
			f.mu.Unlock()
			for _, dn := range f.entries {
				e := ber.Encode(ber.ClassApplication, ber.TypeConstructed, 4, nil, "")
				e.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, dn, ""))
				e.AppendChild(ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, ""))
				c.Write(ldapEnvelope(id, e).Bytes())
			}
			c.Write(ldapResultPacket(id, 5, f.searchCode, "").Bytes())
		case 2: // UnbindRequest
			f.mu.Lock()
			f.unbinds++
			f.mu.Unlock()
			return
		}
	}
}

func (f *ldapFake) seen() (binds, searches []string, unbinds int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.binds...), append([]string(nil), f.searches...), f.unbinds
}

func ldapEnvelope(id int64, op *ber.Packet) *ber.Packet {
	p := ber.Encode(ber.ClassUniversal, ber.TypeConstructed, ber.TagSequence, nil, "")
	p.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagInteger, id, ""))
	p.AppendChild(op)
	return p
}

// ldapResultPacket is an LDAPResult of application tag (1: bind, 5:
// search done).
func ldapResultPacket(id int64, tag ber.Tag, code int64, diag string) *ber.Packet {
	r := ber.Encode(ber.ClassApplication, ber.TypeConstructed, tag, nil, "")
	r.AppendChild(ber.NewInteger(ber.ClassUniversal, ber.TypePrimitive, ber.TagEnumerated, code, ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, "", ""))
	r.AppendChild(ber.NewString(ber.ClassUniversal, ber.TypePrimitive, ber.TagOctetString, diag, ""))
	return ldapEnvelope(id, r)
}

func TestProbeLDAP(t *testing.T) {
	pwFile := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(pwFile, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		fake  *ldapFake
		check string
		want  string
		bind  string // what the server saw bound, "" for anonymous
		query string // base|scope|sizelimit|filter's attribute
	}{
		{"anonymous, root DSE", &ldapFake{entries: []string{""}}, "{type: ldap}", "", " ", "|0|1|objectClass"},
		{"bind and search", &ldapFake{entries: []string{"dc=example,dc=org"}},
			"{type: ldap, username: 'cn=monitor,dc=example,dc=org', password: s3cret, base_dn: 'dc=example,dc=org', expect: '^dc=example'}",
			"", "cn=monitor,dc=example,dc=org s3cret", "dc=example,dc=org|0|1|objectClass"},
		{"password file, subtree search", &ldapFake{entries: []string{"uid=probe,ou=people,dc=example,dc=org"}},
			"{type: ldap, username: 'cn=monitor,dc=example,dc=org', password_file: '" + pwFile + "', base_dn: 'dc=example,dc=org', scope: sub, filter: '(uid=probe)'}",
			"", "cn=monitor,dc=example,dc=org from-file", "dc=example,dc=org|2|1|uid"},
		{"more entries than asked", &ldapFake{entries: []string{"ou=a,dc=example,dc=org"}, searchCode: 4}, "{type: ldap, base_dn: 'dc=example,dc=org', scope: one}", "", " ", "dc=example,dc=org|1|1|objectClass"},
		{"wrong password", &ldapFake{bindCode: 49}, "{type: ldap, username: 'cn=monitor,dc=example,dc=org', password: s3cret}",
			"ldap: 127.0.0.1:|: bind as cn=monitor,dc=example,dc=org refused: Invalid Credentials (49)", "cn=monitor,dc=example,dc=org s3cret", ""},
		{"refuses and hangs up", &ldapFake{bindCode: 49, hangUp: true}, "{type: ldap, username: 'cn=monitor,dc=example,dc=org', password: s3cret}",
			"ldap: 127.0.0.1:|: bind as cn=monitor,dc=example,dc=org refused: Invalid Credentials (49)", "cn=monitor,dc=example,dc=org s3cret", ""},
		{"anonymous bind refused", &ldapFake{bindCode: 48}, "{type: ldap}", "ldap: 127.0.0.1:|: anonymous bind refused: Inappropriate Authentication (48)", " ", ""},
		{"no such base", &ldapFake{searchCode: 32}, "{type: ldap, base_dn: 'dc=nope'}", `ldap: 127.0.0.1:|: search (objectClass=*) in "dc=nope" (scope base) failed: No Such Object (32)`, " ", "dc=nope|0|1|objectClass"},
		{"no entry", &ldapFake{}, "{type: ldap, base_dn: 'dc=example,dc=org', scope: sub, filter: '(uid=gone)'}", `ldap: 127.0.0.1:|: search (uid=gone) in "dc=example,dc=org" (scope sub) found no entry`, " ", "dc=example,dc=org|2|1|uid"},
		{"entry does not match", &ldapFake{entries: []string{"dc=other,dc=org"}}, "{type: ldap, base_dn: 'dc=other,dc=org', expect: 'dc=example'}", `ldap: 127.0.0.1:|: entry "dc=other,dc=org" does not match "dc=example"`, " ", "dc=other,dc=org|0|1|objectClass"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			f := tc.fake
			addr := serveTCP(t, "127.0.0.1", f.handle).addr()
			c := parseCheck(t, "tcp", tc.check)
			err := runBounded(t, probeLDAP, targetAt(t, addr), c)
			wantErr(t, err, tc.want)
			if err != nil && strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the message shows the password: %v", err)
			}
			binds, searches, _ := f.seen()
			if len(binds) != 1 || binds[0] != tc.bind {
				t.Errorf("binds %q, want [%q]", binds, tc.bind)
			}
			if tc.query == "" && len(searches) != 0 || tc.query != "" && (len(searches) != 1 || searches[0] != tc.query) {
				t.Errorf("searches %q, want [%q]", searches, tc.query)
			}
		})
	}
}

// A passed check says goodbye (unbind), so the server logs a clean close.
func TestProbeLDAPUnbinds(t *testing.T) {
	f := &ldapFake{entries: []string{""}}
	s := serveTCP(t, "127.0.0.1", f.handle)
	wantErr(t, runBounded(t, probeLDAP, targetAt(t, s.addr()), parseCheck(t, "tcp", "{type: ldap}")), "")
	testutil.WaitFor(t, "the server sees an unbind", func() bool { _, _, n := f.seen(); return n == 1 })
}

// endlessLDAP answers with the start of an LDAP message that never ends.
func endlessLDAP(c net.Conn) {
	buf := make([]byte, 512)
	c.Read(buf)
	c.Write([]byte{0x30, 0x84, 0x7f, 0xff, 0xff, 0xff}) // a SEQUENCE of 2 GiB
	chunk := []byte(strings.Repeat("\x04\x01x", 1000))
	for {
		if _, err := c.Write(chunk); err != nil {
			return
		}
	}
}

func TestProbeLDAPBadServers(t *testing.T) {
	tests := []struct {
		name   string
		handle func(net.Conn) // nil: nothing listens
		want   string
	}{
		{"tarpit", tarpitHandler, "ldap: 127.0.0.1:|: anonymous bind: no answer within 300ms"},
		{"hangs up", func(c net.Conn) { c.Read(make([]byte, 512)) }, "ldap: 127.0.0.1:|: anonymous bind: connection closed by the server"},
		{"reset", resetHandler, "ldap: 127.0.0.1:|: anonymous bind: connection reset by peer"},
		{"not LDAP", bannerHandler("SSH-2.0-OpenSSH_9.2p1\r\n"), `ldap: 127.0.0.1:|: anonymous bind: not an LDAP server: it sent "SSH-2.0-OpenSSH_9.2p1\r\n"`},
		{"HTTP", func(c net.Conn) { c.Read(make([]byte, 512)); c.Write([]byte("HTTP/1.1 400 Bad Request\r\n\r\n")) }, `not an LDAP server: it sent "HTTP/1.1 400`},
		{"reply without end", endlessLDAP, "ldap: 127.0.0.1:|: anonymous bind: LDAP replies longer than 8 KiB"},
		{"nothing listening", nil, "ldap: connect 127.0.0.1:|: connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			addr := closedPort(t, "tcp")
			if tc.handle != nil {
				addr = serveTCP(t, "127.0.0.1", tc.handle).addr()
			}
			timeout := "300ms"
			if tc.name == "reply without end" {
				timeout = "5s" // the race detector slows the decoder down
			}
			c := parseCheck(t, "tcp", "{type: ldap, timeout: "+timeout+"}")
			err := runBounded(t, probeLDAP, targetAt(t, addr), c)
			wantErr(t, err, tc.want)
			if tc.name == "tarpit" && !errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("a timeout that is not context.DeadlineExceeded: %v", err)
			}
		})
	}
}

// A check stopped from outside (shutdown, reload) says so: it is not
// the server's timeout.
func TestProbeLDAPCanceled(t *testing.T) {
	addr := serveTCP(t, "127.0.0.1", tarpitHandler).addr()
	c := parseCheck(t, "tcp", "{type: ldap, timeout: 10s}")
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	err := probeLDAP(ctx, targetAt(t, addr), c)
	if !errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a cancellation", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("returned %s after the cancellation", d)
	}
}

func TestProbeLDAPS(t *testing.T) {
	pki := testutil.NewPKI(t, "lvsmon test CA")
	cert, ca := pki.KeyPair(pki.Issue("ldap.example", testutil.CertOptions{})), pki.CA
	otherCA := testutil.NewPKI(t, "another CA").CA
	var mu sync.Mutex
	var snis []string
	f := &ldapFake{entries: []string{""}}
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}, GetConfigForClient: func(hi *tls.ClientHelloInfo) (*tls.Config, error) {
		mu.Lock()
		snis = append(snis, hi.ServerName)
		mu.Unlock()
		return nil, nil
	}}
	addr := serveTCP(t, "127.0.0.1", func(c net.Conn) {
		tc := tls.Server(c, cfg)
		if tc.Handshake() == nil {
			f.handle(tc)
		}
	}).addr()
	tests := []struct {
		name, check, want, sni string
	}{
		{"no verify", "{type: ldaps}", "", ""},
		{"verified address", "{type: ldaps, tls_verify: true, tls_ca: '" + ca + "'}", "", ""},
		{"verified name", "{type: ldaps, tls_verify: true, tls_ca: '" + ca + "', sni: ldap.example}", "", "ldap.example"},
		{"wrong name", "{type: ldaps, tls_verify: true, tls_ca: '" + ca + "', sni: other.example}", "ldaps: TLS handshake with 127.0.0.1:|not other.example", "other.example"},
		{"other CA", "{type: ldaps, tls_verify: true, tls_ca: '" + otherCA + "'}", "ldaps: TLS handshake with 127.0.0.1:|certificate signed by unknown authority", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := parseCheck(t, "tcp", tc.check)
			wantErr(t, runBounded(t, probeLDAP, targetAt(t, addr), c), tc.want)
			mu.Lock()
			defer mu.Unlock()
			if len(snis) == 0 || snis[len(snis)-1] != tc.sni {
				t.Errorf("SNIs seen %q, want the last %q", snis, tc.sni)
			}
		})
	}
	// Plain LDAP to a TLS port, and TLS to a plain port.
	c := parseCheck(t, "tcp", "{type: ldap, timeout: 300ms}")
	wantErr(t, runBounded(t, probeLDAP, targetAt(t, addr), c), "ldap: 127.0.0.1:|: anonymous bind: ")
	plain := serveTCP(t, "127.0.0.1", (&ldapFake{entries: []string{""}}).handle).addr()
	c = parseCheck(t, "tcp", "{type: ldaps, timeout: 300ms}")
	wantErr(t, runBounded(t, probeLDAP, targetAt(t, plain), c), "ldaps: TLS handshake with 127.0.0.1:")
}

// A check built in code (no validation, no defaults) works the same.
func TestProbeLDAPCheckBuiltInCode(t *testing.T) {
	f := &ldapFake{entries: []string{""}}
	addr := serveTCP(t, "127.0.0.1", f.handle).addr()
	c := &config.Check{Type: "ldap", Timeout: config.Duration(config.DefaultTimeout), Username: "cn=a", Password: "pw"}
	wantErr(t, runBounded(t, probeLDAP, targetAt(t, addr), c), "")
	if binds, searches, _ := f.seen(); len(binds) != 1 || binds[0] != "cn=a pw" || len(searches) != 1 || searches[0] != "|0|1|objectClass" {
		t.Errorf("binds %q, searches %q", binds, searches)
	}
}

// Every way a check ends closes its connection and ends the client's
// goroutines: thousands of checks a minute must not leak.
func TestProbeLDAPLeavesNoGoroutines(t *testing.T) {
	ok := serveTCP(t, "127.0.0.1", (&ldapFake{entries: []string{""}}).handle).addr()
	refused := serveTCP(t, "127.0.0.1", (&ldapFake{bindCode: 49}).handle).addr()
	garbage := serveTCP(t, "127.0.0.1", bannerHandler("SSH-2.0-OpenSSH_9.2p1\r\n")).addr()
	tarpit := serveTCP(t, "127.0.0.1", tarpitHandler).addr()
	c := parseCheck(t, "tcp", "{type: ldap, username: 'cn=a', password: pw, timeout: 100ms}")
	run := func() {
		for _, addr := range []string{ok, refused, garbage, tarpit} {
			runBounded(t, probeLDAP, targetAt(t, addr), c)
		}
	}
	run() // the first run starts what stays (the servers' accept loops)
	before := runtime.NumGoroutine()
	for range 5 {
		run()
	}
	testutil.Eventually(t, 5*time.Second, func() bool { return runtime.NumGoroutine() <= before+4 }, func() string {
		return fmt.Sprintf("%d goroutines after 20 checks, %d before", runtime.NumGoroutine(), before)
	})
}

// BenchmarkProbeLDAP is checks per second of the ldap check (a fresh
// connection, bind, search, unbind) against the fake server, its work
// included.
func BenchmarkProbeLDAP(b *testing.B) {
	addr := serveTCP(b, "127.0.0.1", (&ldapFake{entries: []string{"dc=example,dc=org"}}).handle).addr()
	c := parseCheck(b, "tcp", "{type: ldap, username: 'cn=monitor,dc=example,dc=org', password: pw, base_dn: 'dc=example,dc=org'}")
	tg := targetAt(b, addr)
	b.ReportAllocs()
	for b.Loop() {
		if res := RunCheck(b.Context(), tg, c); !res.OK {
			b.Fatal(res.Msg)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
}
