package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The credentials are read by check types that log in; this test type
// reads them so the validation is tested apart from any probe.
func init() {
	RegisterCheckType(CheckType{Name: "credtest", Keys: []string{"username", "password", "password_file"}})
}

func TestCheckCredentials(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good", "s3cret\n")
	empty := write("empty", "\n")
	twoLines := write("two", "a\nb\n")
	big := write("big", strings.Repeat("x", maxPasswordFile+1))
	for _, tc := range []struct {
		name, check, secret, err string
	}{
		{"inline", "{type: credtest, username: u, password: pw}", "pw", ""},
		{"file", "{type: credtest, username: u, password_file: " + good + "}", "s3cret", ""},
		{"no password", "{type: credtest, username: u}", "", ""},
		{"both", "{type: credtest, username: u, password: pw, password_file: " + good + "}", "", "check.password_file: set password or password_file, not both"},
		{"no user", "{type: credtest, password: pw}", "", "check.username: a password is set but no username"},
		{"missing file", "{type: credtest, username: u, password_file: " + dir + "/nope}", "", "no such file"},
		{"empty file", "{type: credtest, username: u, password_file: " + empty + "}", "", "is empty"},
		{"two lines", "{type: credtest, username: u, password_file: " + twoLines + "}", "", "holds more than one line"},
		{"too big", "{type: credtest, username: u, password_file: " + big + "}", "", "not a password"},
		{"other type", "{type: tcp, username: u}", "", "username does nothing for a tcp check (it is read by credtest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := Parse("t.yaml", []byte("virtual_services:\n  - address: 10.0.0.1\n    port: 3306\n    check: "+tc.check+"\n"))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "t.yaml:4:") {
					t.Fatalf("err = %v, want one naming t.yaml:4 and %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.VirtualServices[0].Check.Secret; got != tc.secret {
				t.Errorf("Secret = %q, want %q", got, tc.secret)
			}
		})
	}
}
