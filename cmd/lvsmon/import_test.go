package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

// TestImportExitStatus: 0 for a faithful import, 3 for a partial one
// (the report on stderr says why), 1 for a file that cannot be imported,
// 2 for a usage error; -o writes a config check-config accepts.
func TestImportExitStatus(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	faithful := write("faithful.cf", "quiescent=yes\ncleanstop=no\nvirtual=192.0.2.1:80\n\treal=10.0.0.1:80 gate\n\tservice=http\n")
	partial := write("partial.cf", "virtual=192.0.2.1:1521\n\treal=10.0.0.1:1521 gate\n\tservice=oracle\n")
	broken := write("broken.conf", "virtual_server 192.0.2.1 80 {\n")
	out := filepath.Join(dir, "out.yaml")
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"import", "ldirectord", "-o", out, faithful}, 0, "faithful"},
		{[]string{"import", "ldirectord", partial}, 3, "partial.cf:3: unsupported: service"},
		{[]string{"import", "keepalived", broken}, 1, "broken.conf:1: unbalanced braces"},
		{[]string{"import", "piranha", faithful}, 1, `faithful.cf:1: unknown directive "quiescent" here (piranha refuses it too)`},
		{[]string{"import", "piranha", write("lvs.cf", "network = direct\nvirtual www {\n address = 192.0.2.1 eth0:1\n load_monitor = none\n server a {\n  address = 10.0.0.1\n }\n}\n")}, 0, "faithful"},
		{[]string{"import", "heartbeat", faithful}, 2, "usage"},
		{[]string{"import", "ldirectord"}, 2, "usage"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.stderr) {
			t.Errorf("%v: exit %d, want %d; stderr %q lacks %q", tc.args, code, tc.code, stderr.String(), tc.stderr)
		}
	}
	c, err := config.Load(out)
	if err != nil {
		t.Fatalf("-o wrote a config check-config refuses: %v", err)
	}
	if vs := c.VirtualServices[0]; vs.OnFailure != "quiescent" || vs.Check.Type != "http" {
		t.Errorf("got %+v", vs)
	}
}
