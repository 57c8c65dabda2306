//go:build lab

// Lab tier (README, Tests): Debian's rrdtool program reads the files
// lvsmon writes through librrd.

package graphs

import (
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestLayoutWithRrdtoolInfo(t *testing.T) {
	s := newStore(t, 10*time.Second)
	s.Update(snap(1_800_000_000, 1))
	out, err := exec.Command("rrdtool", "info", directorFile(s.Dir())).Output()
	if err != nil {
		t.Fatalf("rrdtool info: %v", err)
	}
	info := string(out)
	for _, want := range []string{
		"step = 10", `ds[active].type = "GAUGE"`, `ds[weight].type = "GAUGE"`, `ds[conns].type = "DERIVE"`,
		`ds[outbytes].type = "DERIVE"`, "ds[conns].min = 0.0000000000e+00", "ds[conns].minimal_heartbeat = 20",
		// step for a day, 1 min for a week, 5 min for a month, 1 h for 13 months, 1 day for 5 years
		"rra[0].cf = \"AVERAGE\"", "rra[0].rows = 8640", "rra[0].pdp_per_row = 1", "rra[1].cf = \"MAX\"",
		"rra[2].rows = 10080", "rra[2].pdp_per_row = 6",
		"rra[4].rows = 8928", "rra[4].pdp_per_row = 30",
		"rra[6].rows = 9504", "rra[6].pdp_per_row = 360",
		"rra[8].rows = 1830", "rra[8].pdp_per_row = 8640", `rra[9].cf = "MAX"`,
	} {
		if !strings.Contains(info, want+"\n") {
			t.Errorf("rrdtool info lacks %q", want)
		}
	}
	if strings.Contains(info, "rra[10]") {
		t.Error("more RRAs than asked for")
	}
}
