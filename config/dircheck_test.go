package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The ldap, ldaps and radius checks' keys: defaults, what is read at
// load, and the errors, each naming its line.
func TestDirectoryCheckKeys(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	secret := write("secret", "s3cret-shared\n")
	empty := write("empty", "")
	twoLines := write("two", "a\nb\n")
	pw := write("pw", "pw-from-file\n")
	for _, tc := range []struct {
		name, check, err string
		want             func(*Check) bool
	}{
		{"ldap defaults", "{type: ldap}", "", func(c *Check) bool {
			return c.BaseDN == "" && c.Scope == "base" && c.Filter == "(objectClass=*)" && c.Username == ""
		}},
		{"ldap search", "{type: ldap, base_dn: 'ou=people, dc=example,dc=org', scope: SUB, filter: '(&(uid=probe)(objectClass=person))', expect: '^uid='}", "", func(c *Check) bool {
			return c.Scope == "sub" && c.ExpectRE != nil
		}},
		{"ldap bind", "{type: ldap, username: 'cn=monitor,dc=example,dc=org', password_file: " + pw + "}", "", func(c *Check) bool { return c.Secret == "pw-from-file" }},
		{"ldaps verify", "{type: ldaps, tls_verify: true, sni: ldap.example.org}", "", func(c *Check) bool { return c.TLSVerify && c.SNI == "ldap.example.org" }},
		{"ldap user without password", "{type: ldap, username: 'cn=monitor,dc=example,dc=org'}", `check.username: a bind as "cn=monitor,dc=example,dc=org" needs its password`, nil},
		{"ldap bad base", "{type: ldap, base_dn: 'example.org'}", `check.base_dn: "example.org" is not a DN`, nil},
		{"ldap bad scope", "{type: ldap, scope: tree}", `check.scope: unknown scope "tree" (want base, one or sub)`, nil},
		{"ldap bad filter", "{type: ldap, filter: 'uid=probe'}", `check.filter: "uid=probe" is not an LDAP filter`, nil},
		{"ldap bad expect", "{type: ldap, expect: '('}", "check.expect:", nil},
		{"tls on plain ldap", "{type: ldap, tls_verify: true}", "tls_verify does nothing for a ldap check (it is read by https, imaps, ldaps, pop3s)", nil},
		{"ldaps CA without verify", "{type: ldaps, tls_ca: " + secret + "}", "check.tls_ca: a CA file does nothing without tls_verify: true", nil},
		{"ldaps CA not PEM", "{type: ldaps, tls_verify: true, tls_ca: " + secret + "}", "holds no PEM certificate", nil},
		{"ldaps address as SNI", "{type: ldaps, sni: 10.0.0.5}", "check.sni: 10.0.0.5 is an address", nil},
		{"radius inline", "{type: radius, username: probe, password: pw, secret: s3cret-shared}", "", func(c *Check) bool {
			return c.SharedSecret == "s3cret-shared" && c.Secret == "pw"
		}},
		{"radius secret file", "{type: radius, username: probe, password: pw, secret_file: " + secret + "}", "", func(c *Check) bool { return c.SharedSecret == "s3cret-shared" }},
		{"radius without secret", "{type: radius, username: probe, password: pw}", "check.secret: a radius check needs the shared secret", nil},
		{"radius both secrets", "{type: radius, username: probe, password: pw, secret: a, secret_file: " + secret + "}", "check.secret_file: set secret or secret_file, not both", nil},
		{"radius empty secret file", "{type: radius, username: probe, password: pw, secret_file: " + empty + "}", "is empty", nil},
		{"radius secret file of two lines", "{type: radius, username: probe, password: pw, secret_file: " + twoLines + "}", "holds more than one line", nil},
		{"radius missing secret file", "{type: radius, username: probe, password: pw, secret_file: " + dir + "/nope}", "no such file", nil},
		{"radius without user", "{type: radius, secret: s}", "check.username: a radius check asks the server to accept a test user", nil},
		{"radius without password", "{type: radius, username: probe, secret: s}", `check.password: a radius check asks the server to accept "probe": set its password`, nil},
		{"radius password too long", "{type: radius, username: probe, password: " + strings.Repeat("p", 129) + ", secret: s}", "check.password: 129 bytes: RADIUS carries a password of at most 128", nil},
		{"secret on ldap", "{type: ldap, secret: s}", "secret does nothing for a ldap check (it is read by radius)", nil},
		{"base_dn on radius", "{type: radius, username: probe, password: pw, secret: s, base_dn: 'dc=x'}", "base_dn does nothing for a radius check (it is read by ldap, ldaps)", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse("t.yaml", []byte("virtual_services:\n  - address: 10.0.0.1\n    port: 389\n    check: "+tc.check+"\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "t.yaml:4:") {
					t.Fatalf("err = %v, want one naming t.yaml:4 and %q", err, tc.err)
				}
				if strings.Contains(err.Error(), "s3cret-shared") {
					t.Errorf("the error shows the secret: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c := cfg.VirtualServices[0].Check; !tc.want(c) {
				t.Errorf("check %+v", c)
			}
		})
	}
}
