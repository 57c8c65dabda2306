//go:build lab

// Lab tier (README, Tests): promtool (Debian's prometheus package) checks
// the rules, their tests, the Prometheus config and the dashboards'
// queries.

package dashboards

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// promtool runs promtool, which a missing install fails (make test's
// scripts/deps.sh installs Debian's prometheus package).
func promtool(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("promtool", args...).CombinedOutput()
	if err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func TestRulesWithPromtool(t *testing.T) {
	rules, _ := filepath.Glob("prometheus/rules/*.yml")
	tests, _ := filepath.Glob("prometheus/tests/*.yml")
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("rules %v, tests %v", rules, tests)
	}
	t.Run("check rules", func(t *testing.T) { promtool(t, append([]string{"check", "rules"}, rules...)...) })
	t.Run("test rules", func(t *testing.T) { promtool(t, append([]string{"test", "rules"}, tests...)...) })
	t.Run("check config", func(t *testing.T) { promtool(t, "check", "config", "prometheus/prometheus.yml") })
}

// TestDashboardQueriesWithPromtool has promtool parse every dashboard
// query (variables and panels, made concrete) as a recording rule, with
// Prometheus' own parser.
func TestDashboardQueriesWithPromtool(t *testing.T) {
	exprs := lintDashboards(t)
	var rf struct {
		Groups []struct {
			Name  string `yaml:"name"`
			Rules []rule `yaml:"rules"`
		} `yaml:"groups"`
	}
	rf.Groups = append(rf.Groups, struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	}{"dashboard-queries", exprs})
	b, err := yaml.Marshal(rf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "dashboard-queries.yml")
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	promtool(t, "check", "rules", path)
}
