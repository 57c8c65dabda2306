package probe

import (
	"crypto/tls"
	"net"
	"os"
	"testing"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// testPKI is a CA made for one test and a server certificate it signed,
// valid for mail.test, 127.0.0.1 and ::1, as files (for daemons and
// tls_ca) and as a tls.Certificate (for fake servers).
type testPKI struct {
	dir                       string
	caFile, certFile, keyFile string
	cert                      tls.Certificate
}

func newTestPKI(t testing.TB) *testPKI {
	t.Helper()
	ca := testutil.NewPKI(t, "lvsmon test CA")
	p := &testPKI{dir: ca.Dir, caFile: ca.CA}
	p.certFile, p.keyFile = ca.Issue("mail.test", testutil.CertOptions{})
	// A daemon's unprivileged workers read them too.
	for _, f := range []string{p.caFile, p.certFile, p.keyFile} {
		if err := os.Chmod(f, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	p.cert = ca.KeyPair(p.certFile, p.keyFile)
	return p
}

// overTLS wraps a fake server's handler in a TLS server handshake.
func (p *testPKI) overTLS(handle func(net.Conn)) func(net.Conn) {
	return func(c net.Conn) {
		tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{p.cert}})
		defer tc.Close()
		if err := tc.Handshake(); err != nil {
			return
		}
		handle(tc)
	}
}
