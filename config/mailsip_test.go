package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMailAndSIPKeys validates the keys of imaps, pop3s and sip: the TLS
// keys mean what they mean for https, sip_uri and sip_transport are
// checked at load.
func TestMailAndSIPKeys(t *testing.T) {
	ca := writeTestCA(t)
	for _, tc := range []struct {
		name, proto, check, err string
	}{
		{"imaps verified", "tcp", "{type: imaps, username: monitor, password: pw, tls_verify: true, tls_ca: '" + ca + "', sni: mail.example.org}", ""},
		{"pop3s plain", "tcp", "{type: pop3s}", ""},
		{"imap login", "tcp", "{type: imap, username: monitor, password_file: '" + ca + "'}", "holds more than one line"},
		{"imaps ca without verify", "tcp", "{type: imaps, tls_ca: '" + ca + "'}", "check.tls_ca: a CA file does nothing without tls_verify: true"},
		{"pop3s sni address", "tcp", "{type: pop3s, sni: 10.0.0.5}", "check.sni: 10.0.0.5 is an address"},
		{"pop3s missing ca", "tcp", "{type: pop3s, tls_verify: true, tls_ca: /nonexistent/ca.pem}", "check.tls_ca: open /nonexistent/ca.pem"},
		{"imap has no tls", "tcp", "{type: imap, tls_verify: true}", "tls_verify does nothing for a imap check"},
		{"sip defaults", "udp", "{type: sip}", ""},
		{"sip uri", "udp", "{type: sip, sip_uri: 'sip:ldirectord@lvs.example.org', sip_transport: tcp}", ""},
		{"sip not a uri", "udp", "{type: sip, sip_uri: 'http://x'}", `check.sip_uri: "http://x" is not a sip: URI`},
		{"sip empty uri", "udp", "{type: sip, sip_uri: 'sip:'}", "is not a sip: URI"},
		{"sip uri with space", "udp", "{type: sip, sip_uri: 'sip:a b@host'}", "holds a space"},
		{"sip uri with CRLF", "udp", `{type: sip, sip_uri: "sip:a@host\r\nX: y"}`, "holds a space, a control character"},
		{"sip uri too long", "udp", "{type: sip, sip_uri: 'sip:" + strings.Repeat("a", 300) + "'}", "longer than a Request-URI needs"},
		{"sip transport", "udp", "{type: sip, sip_transport: tls}", `check.sip_transport: unknown transport "tls" (want udp or tcp)`},
		{"sip has no username", "udp", "{type: sip, username: u}", "username does nothing for a sip check"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("t.yaml", []byte("virtual_services:\n  - address: 10.0.0.1\n    port: 5060\n    protocol: "+tc.proto+"\n    check: "+tc.check+"\n"))
			if tc.err == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), "t.yaml:5:") || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("err = %v, want one naming t.yaml:5 and %q", err, tc.err)
			}
		})
	}
}

// writeTestCA writes a self-signed CA certificate as a PEM file.
func writeTestCA(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
