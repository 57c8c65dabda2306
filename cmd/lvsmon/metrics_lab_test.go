//go:build lab

// Lab tier (README, Tests): promtool (Debian's prometheus package) checks
// lvsmon's /metrics.

package main

import (
	"bytes"
	"os/exec"
	"testing"
)

// TestMetricsPromtool: the whole /metrics of every golden case (volatile
// lines included) passes promtool check metrics.
func TestMetricsPromtool(t *testing.T) {
	for _, tc := range metricsCases() {
		t.Run(tc.name(), func(t *testing.T) {
			check := exec.Command("promtool", "check", "metrics")
			check.Stdin = bytes.NewReader(tc.metrics(t))
			if out, err := check.CombinedOutput(); err != nil {
				t.Errorf("promtool check metrics: %v\n%s", err, out)
			}
		})
	}
}
