package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPeersErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"url required", "peers:\n  - name: lvs2\n", []string{`t.yaml:2: peers[0].url: required`}},
		{"url scheme", "peers:\n  - {url: ftp://lvs2:9160}\n", []string{`peers[0].url: "ftp://lvs2:9160" is not an http:// or https:// URL`}},
		{"credentials in url", "peers:\n  - {url: 'http://u:p@lvs2:9160'}\n", []string{`peers[0].url: no credentials in the URL`}},
		{"names twice", "peers:\n  - {name: b, url: 'http://a:1'}\n  - {name: b, url: 'http://c:1'}\n", []string{`t.yaml:3: peers[1].name: "b" is the name of peers[0] too`}},
		{"timing", "peers:\n  - {url: 'http://a:1', timeout: 10ms, interval: 2h}\n  - {url: 'http://b:1', timeout: 20s, interval: 10s}\n", []string{
			`peers[0].timeout: 10ms: want 100ms to 1m`, `peers[0].interval: 2h0m0s: want 1s to 1h`, `peers[1].timeout: 20s is longer than the interval (10s)`}},
		{"tls files", "peers:\n  - {url: 'https://a:1', ca_file: rel.pem, cert_file: /no/such/cert.pem}\n", []string{
			`peers[0].cert_file: cert_file and key_file go together`, `peers[0].ca_file: "rel.pem" must be an absolute path`, `peers[0].cert_file: open /no/such/cert.pem`}},
		{"auth", "peers:\n  - {url: 'https://a:1', basic_auth: {password_file: /etc/hostname}}\n  - {url: 'https://b:1', basic_auth: {username: u}, bearer_token_file: /etc/hostname}\n", []string{
			`peers[0].basic_auth.username: a password_file is set but no username`,
			`peers[1].basic_auth.password_file: required with a username`, `peers[1].bearer_token_file: set basic_auth or bearer_token_file, not both`}},
		{"insecure and ca", "peers:\n  - {url: 'https://a:1', ca_file: /etc/hostname, insecure_skip_verify: true}\n", []string{`peers[0].insecure_skip_verify: set ca_file or insecure_skip_verify, not both`}},
		{"typo", "peers:\n  - {url: 'https://a:1', intervall: 1s}\n", []string{`unknown key "intervall" (did you mean "interval"?)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectProblems(t, tc.yaml, tc.want) })
	}
}

func TestPeersDefaults(t *testing.T) {
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	if err := os.WriteFile(pw, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Parse("t.yaml", []byte("peers:\n  - url: https://lvs2.example.com:9160\n    basic_auth: {username: lvsmon, password_file: "+pw+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	p := c.Peers[0]
	if p.Name != "lvs2.example.com:9160" || p.Timeout.D() != DefaultPeerTimeout || p.Interval.D() != DefaultPeerInterval {
		t.Errorf("defaults: %+v", p)
	}
}

func TestCheckSettings(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`virtual_services:
  - address: 10.0.0.1
    port: 80
    check: {type: http, path: /health, expect: OK, interval: 2s}
    real_servers: [{address: 10.0.1.1}]
  - address: 10.0.0.2
    port: 80
    checks:
      - {type: tcp}
      - {type: external, command: /bin/true, env: {TOKEN: secret, A: b}}
    real_servers: [{address: 10.0.1.1}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got := CheckSettings(&c.VirtualServices[0])
	if !strings.HasPrefix(got, `type=http interval=2s timeout=3s rise=1 fall=1`) || !strings.Contains(got, `path="/health"`) || !strings.Contains(got, `expect="OK"`) {
		t.Errorf("one check: %s", got)
	}
	got = CheckSettings(&c.VirtualServices[1])
	if !strings.HasPrefix(got, "[0] type=tcp") || !strings.Contains(got, `; [1] type=external`) || !strings.Contains(got, `env="A,TOKEN"`) || strings.Contains(got, "secret") {
		t.Errorf("two checks: %s", got)
	}
	c.VirtualServices[0].Check.Rise = 3
	if CheckSettings(&c.VirtualServices[0]) == CheckSettings(&c.VirtualServices[1]) {
		t.Error("different checks, same settings")
	}
	if CheckSettings(&VirtualService{}) != "" {
		t.Error("no check: want empty")
	}
}
