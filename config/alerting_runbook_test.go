package config

import "testing"

// The Alertmanager alerts point at lvsmon's runbook unless told
// otherwise.
func TestRunbookBaseURLDefault(t *testing.T) {
	base := "director: d\nalerting:\n  alertmanager: {urls: [http://127.0.0.1:9093]}\n"
	for _, tc := range []struct{ extra, want string }{
		{"", DefaultRunbookURL},
		{"  runbook_base_url: https://wiki.example.com/lvs\n", "https://wiki.example.com/lvs"},
	} {
		c, err := Parse("t.yaml", []byte(base+tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Alerting.RunbookBaseURL; got != tc.want {
			t.Errorf("runbook_base_url %q; want %q", got, tc.want)
		}
	}
}
