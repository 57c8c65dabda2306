package config

import (
	"strings"
	"testing"
)

// The mysql and pgsql checks' keys: the account is required, the query
// defaulted and bounded, a query that returns no rows warned about.
func TestSQLCheckKeys(t *testing.T) {
	for _, typ := range []string{"mysql", "pgsql"} {
		for _, tc := range []struct {
			name, check string
			query, err  string // err: "" valid
			warn        string // "" no warning
		}{
			{"defaults", "username: monitor", DefaultQuery, "", ""},
			{"all keys", "username: monitor, password: pw, database: lvs, query: 'SELECT state FROM health WHERE id = 1', expect: '^ok$'", "SELECT state FROM health WHERE id = 1", "", ""},
			{"blank query", "username: monitor, query: '  '", DefaultQuery, "", ""},
			{"show", "username: monitor, query: 'show slave status'", "show slave status", "", ""},
			{"with, on lines", "username: monitor, query: \"WITH x AS (SELECT 1)\\nSELECT * FROM x\"", "WITH x AS (SELECT 1)\nSELECT * FROM x", "", ""},
			{"parenthesized", "username: monitor, query: '(SELECT 1)'", "(SELECT 1)", "", ""},
			{"update warns", "username: monitor, query: 'UPDATE t SET x = 1'", "UPDATE t SET x = 1", "", `check.query: "UPDATE t SET x = 1" does not start like a query that returns rows`},
			{"no username", "password: pw", "", "check.username: a password is set but no username", ""},
			{"no account", "database: lvs", "", "check.username: a " + typ + " check logs in: set the username", ""},
			{"NUL in query", `username: monitor, query: "SELECT 1\0"`, "", "check.query: the query holds a NUL byte", ""},
			{"long query", "username: monitor, query: 'SELECT " + strings.Repeat("1", MaxQuery) + "'", "", "check.query: 16391 bytes is over 16384", ""},
			{"newline in database", `username: monitor, database: "a\nb"`, "", `check.database: "a\nb" holds a NUL or line break`, ""},
			{"bad expect", "username: monitor, expect: '('", "", "check.expect: \"(\" is not a regular expression", ""},
			{"key of another type", "username: monitor, path: /x", "", "check.path: path does nothing for a " + typ + " check", ""},
		} {
			t.Run(typ+"/"+tc.name, func(t *testing.T) {
				c, err := Parse("t.yaml", []byte("virtual_services:\n  - address: 10.0.0.1\n    port: 3306\n    check: {type: "+typ+", "+tc.check+"}\n"))
				if tc.err != "" {
					if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "t.yaml:4:") {
						t.Fatalf("err = %v, want one naming t.yaml:4 and %q", err, tc.err)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if got := c.VirtualServices[0].Check.Query; got != tc.query {
					t.Errorf("query = %q, want %q", got, tc.query)
				}
				switch {
				case tc.warn == "" && len(c.Warnings) > 0:
					t.Errorf("warnings: %v", c.Warnings)
				case tc.warn != "" && (len(c.Warnings) != 1 || !strings.Contains(c.Warnings[0].String(), tc.warn)):
					t.Errorf("warnings = %v, want one with %q", c.Warnings, tc.warn)
				}
			})
		}
	}
}

// database and query belong to the SQL checks only.
func TestSQLKeysOnOtherTypes(t *testing.T) {
	_, err := Parse("t.yaml", []byte("virtual_services:\n  - address: 10.0.0.1\n    port: 80\n    check: {type: http, query: 'SELECT 1'}\n"))
	if err == nil || !strings.Contains(err.Error(), "query does nothing for a http check (it is read by mysql, pgsql)") {
		t.Errorf("err = %v", err)
	}
}
