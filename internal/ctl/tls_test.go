package ctl

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testCA is a CA made for one test, with the certificates it signs.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	dir  string
}

func newTestCA(t *testing.T, name string) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	ca := &testCA{cert: cert, key: key, dir: t.TempDir()}
	ca.write(t, name+".pem", "CERTIFICATE", der)
	return ca
}

func (ca *testCA) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	p := filepath.Join(ca.dir, name)
	if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func (ca *testCA) file() string { return filepath.Join(ca.dir, ca.cert.Subject.CommonName+".pem") }

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// issue signs a certificate (a server's for 127.0.0.1, or a client's)
// and returns its tls.Certificate and the files of cert and key.
func (ca *testCA) issue(t *testing.T, name string, server bool) (tls.Certificate, string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	if server {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	} else {
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cf, kf := ca.write(t, name+".crt", "CERTIFICATE", der), ca.write(t, name+".key", "EC PRIVATE KEY", kder)
	pair, err := tls.LoadX509KeyPair(cf, kf)
	if err != nil {
		t.Fatal(err)
	}
	return pair, cf, kf
}

// tlsFront serves the daemon's API over TLS, as --web.config.file's
// tls_server_config makes the daemon do: a server certificate of ca, and
// client certificates of ca required.
func tlsFront(t *testing.T, d *daemon, ca *testCA, h func(http.Handler) http.Handler) string {
	t.Helper()
	target, _ := url.Parse(d.URL)
	var handler http.Handler = httputil.NewSingleHostReverseProxy(target)
	if h != nil {
		handler = h(handler)
	}
	srv := httptest.NewUnstartedServer(handler)
	cert, _, _ := ca.issue(t, "server", true)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: ca.pool(), MinVersion: tls.VersionTLS12}
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshakes are the test's
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestTLS: https with a private CA and a client certificate; each TLS
// mistake is explained.
func TestTLS(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	ca := newTestCA(t, "test-ca")
	u := tlsFront(t, d, ca, nil)
	_, cert, key := ca.issue(t, "operator", false)
	other := newTestCA(t, "other-ca")
	_, otherCert, otherKey := other.issue(t, "stranger", false)

	out, _, err := run(t, t.Context(), "status", "--url", u, "--ca-file", ca.file(), "--cert-file", cert, "--key-file", key)
	if err != nil || !strings.Contains(out, "director ctltest") {
		t.Fatalf("status over TLS: %q, %v", out, err)
	}
	out, _, err = run(t, t.Context(), "drain", "10.0.1.3:80", "--url", u, "--ca-file", ca.file(), "--cert-file", cert, "--key-file", key, "--token-file", d.TokenFile)
	if err != nil || !strings.Contains(out, "drained tcp_10.0.0.1_80__10.0.1.3_80") {
		t.Fatalf("drain over TLS: %q, %v", out, err)
	}
	out, _, err = run(t, t.Context(), "status", "--url", u, "--insecure-skip-verify", "--cert-file", cert, "--key-file", key)
	if err != nil || !strings.Contains(out, "director ctltest") {
		t.Errorf("status with --insecure-skip-verify: %q, %v", out, err)
	}
	for _, tc := range []struct {
		name string
		args []string
		err  string
	}{
		{"no CA", []string{"--cert-file", cert, "--key-file", key}, "give --ca-file"},
		{"no client certificate", []string{"--ca-file", ca.file()}, "give --cert-file and --key-file"},
		{"a stranger's client certificate", []string{"--ca-file", ca.file(), "--cert-file", otherCert, "--key-file", otherKey}, "give --cert-file and --key-file"},
		{"the wrong CA", []string{"--ca-file", other.file(), "--cert-file", cert, "--key-file", key}, "give --ca-file"},
		{"http to TLS", []string{"--url", strings.Replace(u, "https:", "http:", 1)}, "the daemon speaks TLS: use an https:// --url"},
		{"https to http", []string{"--url", strings.Replace(d.URL, "http:", "https:", 1)}, "the server speaks plain HTTP: use an http:// --url"},
		{"CA file of no certificate", []string{"--ca-file", key}, "unable to use specified CA cert file " + key},
		{"key of another certificate", []string{"--ca-file", ca.file(), "--cert-file", cert, "--key-file", otherKey}, "--cert-file/--key-file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"status", "--url", u}, tc.args...)
			_, _, err := run(t, t.Context(), args...)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%v, want an error with %q", err, tc.err)
			}
		})
	}
}

// TestBasicAuth: reads present the basic auth user when one is given,
// writes the bearer token (which a basic auth gate lets through); a
// refused password says which credentials were wrong. The gate here
// stands in for the daemon's --web.config.file basic_auth_users.
func TestBasicAuth(t *testing.T) {
	d := startDaemon(t, "")
	d.settled(t, nil)
	ca := newTestCA(t, "test-ca")
	var mu sync.Mutex
	var seen []string
	gate := func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			user, pass, basic := r.BasicAuth()
			mu.Lock()
			seen = append(seen, r.Method+" "+strings.SplitN(r.Header.Get("Authorization"), " ", 2)[0])
			mu.Unlock()
			if basic && (user != "ops" || pass != "s3cret") || !basic && r.Header.Get("Authorization") != "Bearer "+testToken {
				w.Header().Set("WWW-Authenticate", `Basic realm="lvsmon"`)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusUnauthorized)
				w.Write([]byte(`{"error":"authentication required: wrong user or password","status":401}`))
				return
			}
			r.Header.Del("Authorization")
			if !basic {
				r.Header.Set("Authorization", "Bearer "+testToken)
			}
			next.ServeHTTP(w, r)
		})
	}
	u := tlsFront(t, d, ca, gate)
	_, cert, key := ca.issue(t, "operator", false)
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	bad := filepath.Join(t.TempDir(), "bad")
	os.WriteFile(bad, []byte("guess\n"), 0o600)
	tlsArgs := []string{"--url", u, "--ca-file", ca.file(), "--cert-file", cert, "--key-file", key}
	out, _, err := run(t, t.Context(), append([]string{"drain", "10.0.1.3:80", "--basic-auth-user", "ops", "--basic-auth-password-file", pw, "--token-file", d.TokenFile}, tlsArgs...)...)
	if err != nil || !strings.Contains(out, "drained") {
		t.Fatalf("drain behind basic auth: %q, %v", out, err)
	}
	mu.Lock()
	got := strings.Join(seen, ", ")
	mu.Unlock()
	if got != "GET Basic, POST Bearer" {
		t.Errorf("credentials sent: %s", got)
	}
	_, _, err = run(t, t.Context(), append([]string{"status", "--basic-auth-user", "ops", "--basic-auth-password-file", bad}, tlsArgs...)...)
	if err == nil || !strings.Contains(err.Error(), "the basic auth user or password was refused") {
		t.Errorf("a wrong password: %v", err)
	}
	// Without a password or a readable token: what to give.
	_, _, err = run(t, t.Context(), append([]string{"status", "--token-file", bad + ".missing"}, tlsArgs...)...)
	if err == nil || !strings.Contains(err.Error(), "give --basic-auth-user and --basic-auth-password-file") {
		t.Errorf("no credentials: %v", err)
	}
}
