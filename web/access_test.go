package web

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

// hash is a bcrypt hash at the lowest cost, so the tests stay fast.
func hash(t *testing.T, pw string) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	f := filepath.Join(dir, name)
	if err := os.WriteFile(f, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

func TestLoadAccessErrors(t *testing.T) {
	pki := testutil.NewPKI(t, "test")
	cert, key := pki.Issue("server", testutil.CertOptions{})
	empty := writeFile(t, t.TempDir(), "empty.pem", "no certificate here\n")
	good := hash(t, "secret")
	for _, tc := range []struct {
		name, body string
		want       string // in the error; "" for none
	}{
		{"empty file", "", ""},
		{"users only", "basic_auth_users:\n  alice: " + good + "\n", ""},
		{"tls", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n", cert, key), ""},
		{"client certs", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n", cert, key, pki.CA), ""},
		{"unknown key", "basic_auth_user:\n  alice: x\n", "field basic_auth_user not found"},
		{"not bcrypt", "basic_auth_users:\n  alice: secret\n", "basic_auth_users.alice: not a bcrypt hash"},
		{"colon in name", "basic_auth_users:\n  'a:b': " + good + "\n", `"a:b" is not a usable user name`},
		{"rate limit", "rate_limit:\n  burst: 5\n  interval: 1s\n", "rate_limit: not supported"},
		{"no key file", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n", cert), "missing one of key or key_file"},
		{"missing cert", "tls_server_config:\n  cert_file: /nonexistent/c.pem\n  key_file: /nonexistent/k.pem\n", "cert_file"},
		{"ca without policy", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_ca_file: %s\n", cert, key, pki.CA), "without a Client Auth Policy"},
		{"ca without certs", fmt.Sprintf("tls_server_config:\n  cert_file: %s\n  key_file: %s\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: %s\n", cert, key, empty), "client_ca_file: " + empty + " holds no PEM certificate"},
		{"bad header", "http_server_config:\n  headers:\n    X-Powered-By: me\n", `"X-Powered-By" can not be configured`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := writeFile(t, t.TempDir(), "web.yml", tc.body)
			_, err := LoadAccess(f)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("LoadAccess: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("LoadAccess: no error; want one with %q", tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), f)):
				t.Fatalf("LoadAccess: %v\nwant the file and %q in it", err, tc.want)
			}
		})
	}
	if _, err := LoadAccess(filepath.Join(t.TempDir(), "none.yml")); err == nil || !strings.Contains(err.Error(), "none.yml") {
		t.Errorf("a missing file: %v", err)
	}
}

// accessFixture is the test server with a token and the given web config.
func accessFixture(t *testing.T, body string) *Server {
	t.Helper()
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {api_token: \"0123456789abcdef-token\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := LoadAccess(writeFile(t, t.TempDir(), "web.yml", body))
	if err != nil {
		t.Fatal(err)
	}
	s.src.Config = func() *config.Config { return cfg }
	s.src.Access = func() *Access { return acc }
	return s
}

func TestBasicAuth(t *testing.T) {
	s := accessFixture(t, "basic_auth_users:\n  alice: "+hash(t, "wonderland")+"\n  bob: "+hash(t, "builder")+
		"\nhttp_server_config:\n  headers:\n    X-Frame-Options: deny\n")
	basic := func(u, p string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	for _, tc := range []struct {
		name, path, auth string
		code             int
	}{
		{"no credentials", "/api/v1/status", "", 401},
		{"no credentials, page", "/", "", 401},
		{"no credentials, metrics", "/metrics", "", 401},
		{"no credentials, unknown page", "/nothing", "", 401},
		{"wrong password", "/api/v1/status", basic("alice", "builder"), 401},
		{"unknown user", "/api/v1/status", basic("carol", "wonderland"), 401},
		{"empty password", "/api/v1/status", basic("alice", ""), 401},
		{"right password", "/api/v1/status", basic("alice", "wonderland"), 200},
		{"the other user", "/api/v1/status", basic("bob", "builder"), 200},
		{"the token", "/api/v1/status", "Bearer 0123456789abcdef-token", 200},
		{"a wrong token", "/api/v1/status", "Bearer 0123456789abcdef-nope", 401},
		{"liveness is open", "/-/healthy", "", 200},
		{"readiness is open", "/-/ready", "", 503}, // not serving: answered, not refused
	} {
		t.Run(tc.name, func(t *testing.T) {
			// each case from its own address: the failure limit is per client
			rec := request(s, "GET", tc.path, "127.0.0.1:9160", "192.0.2."+fmt.Sprint(len(tc.name))+":5000", tc.auth)
			if rec.Code != tc.code {
				t.Fatalf("%s: %d %s; want %d", tc.path, rec.Code, rec.Body, tc.code)
			}
			if tc.code == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
				t.Errorf("401 without a Basic challenge: %q", rec.Header().Get("WWW-Authenticate"))
			}
			if got := rec.Header().Get("X-Frame-Options"); got != "deny" {
				t.Errorf("X-Frame-Options = %q; want the configured header on every answer", got)
			}
		})
	}
	// Wrong passwords block the client, as wrong tokens do.
	codes := ""
	for range 7 {
		codes += fmt.Sprint(request(s, "GET", "/api/v1/status", "127.0.0.1:9160", "198.51.100.7:1", basic("alice", "guess")).Code, " ")
	}
	if codes != "401 401 401 401 429 429 429 " {
		t.Errorf("wrong passwords from one client: %s; want 4×401 then 429", codes)
	}
	if rec := request(s, "GET", "/api/v1/status", "127.0.0.1:9160", "198.51.100.7:1", basic("alice", "wonderland")); rec.Code != 429 {
		t.Errorf("a blocked client with the right password: %d; want 429 until the block ends", rec.Code)
	}
}

func TestTLSAndClientCertificates(t *testing.T) {
	pki := testutil.NewPKI(t, "lvsmon-test")
	other := testutil.NewPKI(t, "someone-else")
	cert, key := pki.Issue("server", testutil.CertOptions{})
	goodC, goodK := pki.Issue("prometheus", testutil.CertOptions{Client: true})
	oldC, oldK := pki.Issue("old", testutil.CertOptions{Client: true, Expired: true})
	strangerC, strangerK := other.Issue("stranger", testutil.CertOptions{Client: true})
	s := accessFixture(t, fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  prometheus: %s
`, cert, key, pki.CA, hash(t, "scrape")))
	addr := serveGuarded(t, s) // Serve speaks TLS when the web config has it

	get := func(scheme string, certs []tls.Certificate, user string) (int, error) {
		tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool(), Certificates: certs}}
		defer tr.CloseIdleConnections()
		req, _ := http.NewRequest("GET", scheme+"://"+addr+"/api/v1/status", nil)
		if user != "" {
			req.SetBasicAuth(user, "scrape")
		}
		resp, err := (&http.Client{Transport: tr}).Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if scheme == "http" && !strings.Contains(string(b), "HTTPS server") {
			t.Errorf("plain HTTP answer: %s", b)
		}
		return resp.StatusCode, nil
	}
	for _, tc := range []struct {
		name, scheme string
		certs        []tls.Certificate
		user         string
		code         int // 0: the handshake fails
	}{
		{"plain HTTP to the TLS port", "http", nil, "prometheus", 400},
		{"no client certificate", "https", nil, "prometheus", 0},
		{"an untrusted client certificate", "https", []tls.Certificate{other.KeyPair(strangerC, strangerK)}, "prometheus", 0},
		{"an expired client certificate", "https", []tls.Certificate{pki.KeyPair(oldC, oldK)}, "prometheus", 0},
		{"a good certificate without a password", "https", []tls.Certificate{pki.KeyPair(goodC, goodK)}, "", 401},
		{"a good certificate and password", "https", []tls.Certificate{pki.KeyPair(goodC, goodK)}, "prometheus", 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, err := get(tc.scheme, tc.certs, tc.user)
			if tc.code == 0 {
				if err == nil {
					t.Fatalf("answered %d; want the handshake refused", code)
				}
				return
			}
			if err != nil || code != tc.code {
				t.Fatalf("got %d, %v; want %d", code, err, tc.code)
			}
		})
	}
	// A client that does not trust lvsmon's CA refuses lvsmon.
	tr := &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{pki.KeyPair(goodC, goodK)}}}
	if _, err := (&http.Client{Transport: tr}).Get("https://" + addr + "/-/healthy"); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v; want a certificate error", err)
	}
}

func TestAccessReloadKeepsTLSOnOrOff(t *testing.T) {
	pki := testutil.NewPKI(t, "test")
	cert, key := pki.Issue("server", testutil.CertOptions{})
	plain, err := LoadAccess(writeFile(t, t.TempDir(), "a.yml", "basic_auth_users: {}\n"))
	if err != nil {
		t.Fatal(err)
	}
	withTLS, err := LoadAccess(writeFile(t, t.TempDir(), "b.yml", fmt.Sprintf("tls_server_config: {cert_file: %s, key_file: %s}\n", cert, key)))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name          string
		running, next *Access
		ok            bool
	}{
		{"none to plain", nil, plain, true},
		{"plain to none", plain, nil, true},
		{"tls to tls", withTLS, withTLS, true},
		{"none to tls", nil, withTLS, false},
		{"plain to tls", plain, withTLS, false},
		{"tls to plain", withTLS, plain, false},
	} {
		if err := CheckAccessReload(tc.running, tc.next); (err == nil) != tc.ok {
			t.Errorf("%s: %v; want ok=%v", tc.name, err, tc.ok)
		}
	}
}
