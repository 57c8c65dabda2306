package config

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCheckTypeDefaults(t *testing.T) {
	host, _ := os.Hostname()
	c, err := Parse("d.yaml", []byte(`virtual_services:
  - {address: 10.0.0.1, port: 80, check: {type: http}}
  - {address: 10.0.0.2, port: 53, protocol: udp, check: {type: dns, query_name: www.example.org, query_type: aaaa}}
  - {address: 10.0.0.3, port: 25, check: {type: smtp}}
  - {address: 10.0.0.4, port: 7, check: {type: simpletcp, send: 'PING\r\n', expect: PONG}}
  - {address: 10.0.0.5, port: 80, check: {type: tcp}}
  - {address: 10.0.0.6, port: 53, protocol: udp, check: {type: dns, query_name: ., query_type: soa}}
`))
	if err != nil {
		t.Fatal(err)
	}
	http := c.VirtualServices[0].Check
	if http.Method != "GET" || http.Status != "200-299" || http.MaxBody != 1<<20 || http.TLSVerify || http.Retries != 0 || http.Path != "/" {
		t.Errorf("http defaults: %+v", http)
	}
	if !slices.Equal(http.Statuses, []StatusRange{{200, 299}}) {
		t.Errorf("http statuses: %v", http.Statuses)
	}
	if root := c.VirtualServices[5].Check; root.QueryName != "." || root.QueryType != "SOA" {
		t.Errorf("the root (keepalived's DNS_CHECK default): %+v", root)
	}
	if dns := c.VirtualServices[1].Check; dns.QueryType != "AAAA" {
		t.Errorf("dns query type: %q", dns.QueryType)
	}
	if smtp := c.VirtualServices[2].Check; smtp.EHLO == "" || (host != "" && smtp.EHLO != host) {
		t.Errorf("smtp EHLO %q, want the host name %q", smtp.EHLO, host)
	}
	st := c.VirtualServices[3].Check
	if !bytes.Equal(st.Payload, []byte("PING\r\n")) || st.ExpectRE == nil || st.ExpectRE.String() != "PONG" || st.MaxBody != DefaultMaxBody {
		t.Errorf("simpletcp derived: %+v", st)
	}
	// Defaults belong to the types that read them.
	if tcp := c.VirtualServices[4].Check; tcp.Method != "" || tcp.Status != "" || tcp.MaxBody != 0 || tcp.Path != "" {
		t.Errorf("tcp got another type's defaults: %+v", tcp)
	}
}

func TestCheckTLSCA(t *testing.T) {
	dir := t.TempDir()
	// A certificate makes a pool; a PEM file without one is refused.
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lvsmon test CA"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	good, bad := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "empty.pem")
	os.WriteFile(good, certPEM, 0o644)
	os.WriteFile(bad, []byte("not a certificate\n"), 0o644)
	c, err := Parse("t.yaml", []byte("virtual_services:\n  - {address: 10.0.0.1, port: 443, check: {type: https, tls_verify: true, tls_ca: '"+good+"'}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.VirtualServices[0].Check.TLSRoots == nil {
		t.Error("no CA pool derived")
	}
	_, err = Parse("t.yaml", []byte("virtual_services:\n  - {address: 10.0.0.1, port: 443, check: {type: https, tls_verify: true, tls_ca: '"+bad+"'}}\n"))
	if err == nil || !strings.Contains(err.Error(), "t.yaml:2: virtual_services[0].check.tls_ca: "+bad+" holds no PEM certificate") {
		t.Errorf("bad CA file: %v", err)
	}
}

func TestExternalCommandWarning(t *testing.T) {
	c, err := Parse("t.yaml", []byte("virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    check: {type: external, command: /nonexistent/check_web}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), "t.yaml:4: virtual_services[0].check.command: stat /nonexistent/check_web: no such file or directory") {
		t.Errorf("warnings = %v", c.Warnings)
	}
}

func TestParseStatus(t *testing.T) {
	tests := []struct {
		in   string
		want []StatusRange
		err  string
	}{
		{"200-299", []StatusRange{{200, 299}}, ""},
		{"200-299,301, 302 ,404-404", []StatusRange{{200, 299}, {301, 301}, {302, 302}, {404, 404}}, ""},
		{"200,", nil, "has an empty entry"},
		{"2xx", nil, `"2xx" is not a status code`},
		{"99", nil, `"99" is not a range of status codes within 100-599`},
		{"500-600", nil, "within 100-599"},
		{"", nil, "has an empty entry"},
	}
	for _, tc := range tests {
		got, err := ParseStatus(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParseStatus(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ParseStatus(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
	r, _ := ParseStatus("200-204,301")
	for code, want := range map[int]bool{199: false, 200: true, 204: true, 205: false, 301: true, 302: false} {
		if StatusIn(code, r) != want {
			t.Errorf("StatusIn(%d) = %v", code, !want)
		}
	}
}

func TestParsePayload(t *testing.T) {
	tests := []struct {
		in, want, err string
	}{
		{"plain", "plain", ""},
		{`GET / HTTP/1.0\r\n\r\n`, "GET / HTTP/1.0\r\n\r\n", ""},
		{`a\tb\\c\0\x41\xff`, "a\tb\\c\x00A\xff", ""},
		{"already\nescaped by YAML", "already\nescaped by YAML", ""},
		{`trailing\`, "", "lone backslash"},
		{`\x4`, "", `\x needs two hex digits`},
		{`\xzz`, "", `\xzz is not two hex digits`},
		{`\q`, "", `unknown escape \q`},
	}
	for _, tc := range tests {
		got, err := ParsePayload(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePayload(%q) error = %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || string(got) != tc.want {
			t.Errorf("ParsePayload(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func TestExternalCheckEnv(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`virtual_services:
  - address: 10.0.0.1
    port: 80
    check:
      type: external
      command: /usr/local/bin/check-db
      env: {DB_ROLE: replica, PATH: "/opt/checks/bin:/usr/bin:/bin"}
      pass_env: [TZ, http_proxy]
`))
	if err != nil {
		t.Fatal(err)
	}
	chk := c.VirtualServices[0].Check
	if chk.Env["DB_ROLE"] != "replica" || chk.Env["PATH"] != "/opt/checks/bin:/usr/bin:/bin" || !slices.Equal(chk.PassEnv, []string{"TZ", "http_proxy"}) {
		t.Errorf("env %v, pass_env %v", chk.Env, chk.PassEnv)
	}

	_, err = Parse("t.yaml", []byte(`virtual_services:
  - address: 10.0.0.1
    port: 80
    check:
      type: external
      command: /usr/local/bin/check-db
      env:
        GOOD: "1"
        1BAD: x
        "A-B": x
        NUL: "a\0b"
        BOTH: x
      pass_env: [SMTP_PASSWORD, SMTP_PASSWORD, BOTH, "x y"]
  - address: 10.0.0.2
    port: 80
    check: {type: http, env: {A: b}, pass_env: [HOME]}
`))
	want := []string{
		`t.yaml:9: virtual_services[0].check.env.1BAD: "1BAD" is not an environment variable name`,
		`t.yaml:10: virtual_services[0].check.env.A-B: "A-B" is not an environment variable name`,
		`t.yaml:11: virtual_services[0].check.env.NUL: the value holds a NUL byte`,
		`t.yaml:13: virtual_services[0].check.pass_env[1]: SMTP_PASSWORD is listed twice`,
		`t.yaml:13: virtual_services[0].check.pass_env[2]: BOTH is also set in env: set it or pass it, not both`,
		`t.yaml:13: virtual_services[0].check.pass_env[3]: "x y" is not an environment variable name`,
		`t.yaml:16: virtual_services[1].check.env: env does nothing for a http check (it is read by external)`,
		`t.yaml:16: virtual_services[1].check.pass_env: pass_env does nothing for a http check (it is read by external)`,
	}
	var errs Errors
	if !errors.As(err, &errs) {
		t.Fatalf("err = %v", err)
	}
	got := strings.Split(errs.Error(), "\n")
	for _, w := range want {
		if !slices.ContainsFunc(got, func(g string) bool { return strings.HasPrefix(g, w) }) {
			t.Errorf("missing %q in:\n%s", w, errs)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d problems, want %d:\n%s", len(got), len(want), errs)
	}
}
