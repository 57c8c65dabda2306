package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/lvsmon/lvsmon/web"
)

func TestHashPassword(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		args     []string
		err      string // "" for success
	}{
		{"a line", "wonderland\n", []string{"--cost", "4"}, ""},
		{"no newline", "wonderland", []string{"--cost", "4"}, ""},
		{"crlf", "wonderland\r\n", []string{"--cost", "4"}, ""},
		{"empty", "\n", nil, "empty password"},
		{"too long", strings.Repeat("x", 73) + "\n", nil, "only the first 72"},
		{"on the command line", "", []string{"wonderland"}, "never from the command line"},
		{"cost too low", "wonderland\n", []string{"--cost", "3"}, "--cost 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := cmdHashPassword(strings.NewReader(tc.in), tc.args, &out, &errb)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error()+errb.String(), tc.err) {
					t.Fatalf("err %v, stderr %q; want %q", err, errb.String(), tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			h := strings.TrimSpace(out.String())
			if bcrypt.CompareHashAndPassword([]byte(h), []byte("wonderland")) != nil {
				t.Fatalf("%q is not the hash of the password", h)
			}
			// What it prints is what the web config takes.
			f := filepath.Join(t.TempDir(), "web.yml")
			os.WriteFile(f, []byte("basic_auth_users:\n  alice: "+h+"\n"), 0o600)
			if _, err := web.LoadAccess(f); err != nil {
				t.Errorf("the web config refuses the hash: %v", err)
			}
		})
	}
}
