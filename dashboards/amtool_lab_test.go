//go:build lab

// Lab tier (README, Tests): amtool (Debian's prometheus-alertmanager
// package) checks the compose file's Alertmanager config.

package dashboards

import (
	"os/exec"
	"testing"
)

func TestAlertmanagerConfigWithAmtool(t *testing.T) {
	out, err := exec.Command("amtool", "check-config", "alertmanager/alertmanager.yml").CombinedOutput()
	if err != nil {
		t.Errorf("amtool check-config: %v\n%s", err, out)
	}
}
