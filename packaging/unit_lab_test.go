//go:build lab

package packaging

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// lookTool finds a program the lab tier installs (scripts/deps.sh test):
// a missing one fails the test.
func lookTool(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is missing (scripts/deps.sh test installs it): %v", name, err)
	}
	return p
}

// unitRoot builds a root for `systemd-analyze verify --root`: the host's
// unit directory (for the targets the unit names), /bin/kill, the unit
// and an executable /usr/bin/lvsmon, so every path of the unit resolves
// inside it (systemd 252 resolves ExecStart= and the units under --root).
func unitRoot(t *testing.T, unit []byte) string {
	t.Helper()
	root := t.TempDir()
	sys := filepath.Join(root, "usr/lib/systemd/system")
	if err := os.MkdirAll(filepath.Dir(sys), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("cp", "-a", "/usr/lib/systemd/system", sys).CombinedOutput(); err != nil {
		t.Fatalf("copying the host's units: %v: %s", err, out)
	}
	if err := os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, l := range [][2]string{{"usr/bin", "bin"}, {"usr/lib", "lib"}, {"usr/sbin", "sbin"}} {
		if err := os.Symlink(l[0], filepath.Join(root, l[1])); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("cp", lookTool(t, "kill"), filepath.Join(root, "usr/bin/kill")).CombinedOutput(); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/bin/lvsmon"), []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(sys, "lvsmon.service"), unit, 0o644); err != nil {
		t.Fatal(err)
	}
	return root
}

// verifyUnit runs systemd-analyze verify on unit inside a root and
// returns what it printed (nothing for a good unit).
func verifyUnit(t *testing.T, unit []byte) (string, error) {
	t.Helper()
	root := unitRoot(t, unit)
	out, err := exec.Command(lookTool(t, "systemd-analyze"), "verify", "--man=no", "--root="+root, "lvsmon.service").CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// The shipped unit passes systemd-analyze verify with no complaint; a unit
// with a misspelt directive does not (the check can fail).
func TestUnitVerifies(t *testing.T) {
	unit, err := os.ReadFile("lvsmon.service")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := verifyUnit(t, unit); err != nil || out != "" {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
	bad := strings.Replace(string(unit), "WatchdogSec=", "WatchdogSecs=", 1)
	if out, _ := verifyUnit(t, []byte(bad)); !strings.Contains(out, "WatchdogSecs") {
		t.Errorf("a misspelt directive passed verify: %q", out)
	}
}

// maxExposure is the exposure `systemd-analyze security` may give the unit
// (a margin over the measured score for other systemd versions);
// measured 2.5 ("OK") on systemd 252 (root with CAP_NET_ADMIN and
// CAP_NET_RAW, the host's network, packet and netlink sockets are most of
// it).
const maxExposure = 2.8

var exposureRe = regexp.MustCompile(`Overall exposure level for lvsmon\.service: ([0-9.]+) (\S+)`)

// The unit's exposure score is at most maxExposure.
func TestUnitSecurityScore(t *testing.T) {
	out, err := exec.Command(lookTool(t, "systemd-analyze"), "security", "--offline=yes", "--no-pager", "lvsmon.service").CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRe.FindStringSubmatch(string(out))
	if m == nil {
		t.Fatalf("no exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(m[1], 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: lvsmon.service exposure %.1f %s (at most %.1f allowed)", score, m[2], maxExposure)
	if score > maxExposure {
		t.Errorf("exposure %.1f > %.1f; the directives that cost most:\n%s", score, maxExposure, out)
	}
}
