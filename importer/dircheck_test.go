package importer

import (
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

// ldirectord's ldap, ldaps and radius services become lvsmon's checks of
// those types, with what ldirectord's check_ldap and check_radius read.
func TestLdirectordDirectoryServices(t *testing.T) {
	conf := `virtual=192.0.2.10:389
	real=10.0.0.1:389 gate
	service=ldap
	request="dc=upmc, dc=fr"
	receive="dc=upmc"
	login="cn=monitor,dc=upmc,dc=fr"
	passwd="s3cret"
virtual=192.0.2.10:636
	real=10.0.0.1:636 gate
	login="cn=monitor,dc=upmc,dc=fr"
virtual=192.0.2.10:1812
	real=10.0.0.2:1812 gate
	protocol=udp
	service=radius
	login="readuser"
	passwd="genericpassword"
	secret="somesecret"
	request="ignored"
virtual=192.0.2.11:1812
	real=10.0.0.3:1812 gate
	protocol=udp
	service=radius
	login="readuser"
virtual=192.0.2.12:389
	real=10.0.0.4:389 gate
	request="not a dn"
`
	r, err := Ldirectord("ldirectord.cf", []byte(conf))
	if err != nil {
		t.Fatal(err)
	}
	vs := r.Config.VirtualServices
	if len(vs) != 5 {
		t.Fatalf("%d services:\n%s", len(vs), r.YAML)
	}
	if c := vs[0].Check; c.Type != "ldap" || c.BaseDN != "dc=upmc, dc=fr" || c.Expect != "dc=upmc" || c.Username != "cn=monitor,dc=upmc,dc=fr" || c.Password != "s3cret" {
		t.Errorf("ldap: %+v", c)
	}
	for _, line := range []int{6, 7} {
		if e := entry(r, line, ldCreds); e == nil || e.Status != Mapped {
			t.Errorf("line %d: %+v\n%s", line, e, reportText(r))
		}
	}
	// By the port; a login without passwd: ldirectord binds anonymously.
	if c := vs[1].Check; c.Type != "ldaps" || c.Username != "" || c.BaseDN != "" {
		t.Errorf("ldaps: %+v", c)
	}
	if e := entry(r, 10, ldCreds); e == nil || e.Status != Changed || !strings.Contains(e.Note, "binds anonymously") {
		t.Errorf("a login alone: %+v", e)
	}
	if c := vs[2].Check; c.Type != "radius" || c.Username != "readuser" || c.Password != "genericpassword" || c.RADIUSSecret != "somesecret" {
		t.Errorf("radius: %+v", c)
	}
	if e := entry(r, 17, ldCreds); e == nil || e.Status != Mapped {
		t.Errorf("secret: %+v", e)
	}
	if e := entry(r, 18, "request"); e == nil || e.Status != Ignored {
		t.Errorf("radius request: %+v", e)
	}
	// Without passwd and secret ldirectord's radius check cannot pass.
	if c := vs[3].Check; c.Type != "ping" {
		t.Errorf("radius without a secret: %+v", c)
	}
	if e := entry(r, 22, "service"); e == nil || e.Status != Unsupported || !strings.Contains(e.Note, "without login, passwd and secret") {
		t.Errorf("radius without a secret: %+v\n%s", e, reportText(r))
	}
	if e := entry(r, 23, "login, passwd, database, secret"); e == nil {
		t.Errorf("the unused login: %+v\n%s", e, reportText(r))
	}
	if c := vs[4].Check; c.Type != "ldap" || c.BaseDN != "" {
		t.Errorf("ldap with a request that is no DN: %+v", c)
	}
	if e := entry(r, 26, "request"); e == nil || e.Status != Unsupported || !strings.Contains(e.Note, `"not a dn" is not a DN`) {
		t.Errorf("request not a DN: %+v", e)
	}
	c, err := config.Parse("again", r.YAML)
	if err != nil {
		t.Fatalf("the output does not parse: %v\n%s", err, r.YAML)
	}
	if got := c.VirtualServices[2].Check; got.SharedSecret != "somesecret" || got.Secret != "genericpassword" {
		t.Errorf("radius read back: %+v", got)
	}
}
