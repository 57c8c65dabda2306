package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// self-check exits 1 while the daemon hands over, 0 otherwise, and 1 when
// there is no verdict to read.
func TestSelfCheckCommand(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, content string // content "": no file
		args          []string
		code          int
		out, errOut   string
	}{
		{name: "ok", content: "ok\n", code: 0, out: "ok"},
		{name: "refused", content: "ok hand-over refused: peer check fails\n", code: 0, out: "refused"},
		{name: "handover", content: "handover sshd: connection refused\n", code: 1, out: "handover sshd"},
		{name: "quiet", content: "handover x: y\n", args: []string{"--quiet"}, code: 1},
		{name: "garbage", content: "what\n", code: 1, errOut: "not a self-check state"},
		{name: "missing", code: 1, errOut: "no verdict"},
		{name: "extra args", content: "ok\n", args: []string{"now"}, code: 2, errOut: "unexpected arguments"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if tc.content != "" {
				if err := os.WriteFile(path, []byte(tc.content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"self-check", "--state-file", path}, tc.args...), &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.out) || !strings.Contains(errb.String(), tc.errOut) {
				t.Errorf("exit %d, stdout %q, stderr %q; want %d, %q, %q", code, out.String(), errb.String(), tc.code, tc.out, tc.errOut)
			}
			if tc.out == "" && out.Len() > 0 {
				t.Errorf("printed %q", out.String())
			}
		})
	}
}
