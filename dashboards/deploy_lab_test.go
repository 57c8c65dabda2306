//go:build lab

// Lab tier (README, Tests): Debian's docker-compose validates
// docker-compose.yml.

package dashboards

import (
	"os/exec"
	"testing"
)

// TestComposeConfig has docker-compose itself validate the file (Debian's
// docker-compose parses and resolves it without a Docker engine).
func TestComposeConfig(t *testing.T) {
	cmd := exec.Command("docker-compose", "-f", "docker-compose.yml", "config", "--quiet")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("docker-compose config: %v\n%s", err, out)
	}
}
