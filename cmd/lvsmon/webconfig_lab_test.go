//go:build lab

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

// TestPrometheusScrapesThroughTLSAndBasicAuth: a real Prometheus scrapes
// a demo whose port needs TLS, a client certificate and a password, with
// the tls_config and basic_auth a node_exporter user already writes; a
// job with the wrong password, or without the client certificate, is
// refused (its target is down, with the reason).
func TestPrometheusScrapesThroughTLSAndBasicAuth(t *testing.T) {
	pki := testutil.NewPKI(t, "lvsmon-lab")
	cert, key := pki.Issue("director", testutil.CertOptions{})
	ccert, ckey := pki.Issue("prometheus", testutil.CertOptions{Client: true})
	h, err := bcrypt.GenerateFromPassword([]byte("scrape-secret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	web := filepath.Join(dir, "web.yml")
	os.WriteFile(web, []byte(fmt.Sprintf(`tls_server_config:
  cert_file: %s
  key_file: %s
  client_auth_type: RequireAndVerifyClientCert
  client_ca_file: %s
basic_auth_users:
  prometheus: %s
`, cert, key, pki.CA, h)), 0o600)
	good, wrong := filepath.Join(dir, "good"), filepath.Join(dir, "wrong")
	os.WriteFile(good, []byte("scrape-secret\n"), 0o600)
	os.WriteFile(wrong, []byte("guess\n"), 0o600)

	d := startDaemon(t, "demo", "--web.listen-address", "127.0.0.1:0", "--web.config.file", web, "--step", "2s")
	target := strings.TrimPrefix(d.url(t), "http://")
	job := func(name, pwFile string, clientCert bool) string {
		s := fmt.Sprintf(`  - job_name: %s
    scheme: https
    tls_config:
      ca_file: %s
`, name, pki.CA)
		if clientCert {
			s += fmt.Sprintf("      cert_file: %s\n      key_file: %s\n", ccert, ckey)
		}
		return s + fmt.Sprintf(`    basic_auth:
      username: prometheus
      password_file: %s
    static_configs:
      - targets: [%q]
`, pwFile, target)
	}
	p := startPrometheusWith(t, job("lvsmon", good, true)+job("wrong-password", wrong, true)+job("no-client-cert", good, false))
	want := map[string]float64{"lvsmon": 1, "wrong-password": 0, "no-client-cert": 0}
	p.waitFor(t, "all three jobs scraped", func() (bool, error) {
		got := map[string]float64{}
		for _, s := range p.query(t, "up") {
			got[s.Metric["job"]] = s.float(t)
		}
		for j, v := range want {
			if g, ok := got[j]; !ok || g != v {
				return false, fmt.Errorf("up = %v; want %v", got, want)
			}
		}
		return true, nil
	})
	// What lvsmon served through TLS is its own metrics.
	if n := len(p.query(t, `lvsmon_build_info{job="lvsmon"}`)); n != 1 {
		t.Errorf("lvsmon_build_info through TLS: %d series; want 1", n)
	}
	if !strings.Contains(d.logText(), "wrong user or password") {
		t.Errorf("the wrong password was not logged:\n%s", d.logText())
	}
}
