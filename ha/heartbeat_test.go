package ha

import (
	"errors"
	"strings"
	"testing"
)

func TestParseClStatus(t *testing.T) {
	running := readFixture(t, "clstatus", "hbstatus-running.txt")
	stopped := readFixture(t, "clstatus", "hbstatus-stopped.txt")
	signon := readFixture(t, "clstatus", "signon-error.txt")
	rsc := func(w string) string { return readFixture(t, "clstatus", "rscstatus-"+w+".txt") }
	tests := []struct {
		name         string
		hb, rsc      string
		exit         int
		want         Heartbeat
		err          string
		notReachable bool
	}{
		{name: "running local", hb: running, rsc: rsc("local"), want: Heartbeat{true, ResourcesLocal}},
		{name: "running foreign", hb: running, rsc: rsc("foreign"), want: Heartbeat{true, ResourcesForeign}},
		{name: "running all", hb: running, rsc: rsc("all"), want: Heartbeat{true, ResourcesAll}},
		{name: "running none", hb: running, rsc: rsc("none"), want: Heartbeat{true, ResourcesNone}},
		{name: "running, rscstatus not run", hb: running, want: Heartbeat{Running: true}},
		{name: "stopped", hb: stopped, rsc: signon, exit: 1, want: Heartbeat{}},
		{name: "stopped, no rscstatus", hb: stopped, exit: 1, want: Heartbeat{}},
		{name: "cannot signon", hb: signon, exit: 1, want: Heartbeat{}},
		{name: "stopped between the calls", hb: running, rsc: signon, want: Heartbeat{}},
		{name: "running but exit 1", hb: running, rsc: rsc("local"), exit: 1, err: "says running but exited 1"},
		{name: "stopped but exit 0", hb: stopped, err: "says stopped but exited 0"},
		{name: "signon exit 2", hb: signon, exit: 2, err: "says stopped but exited 2"},
		{name: "not installed", hb: "sh: 1: cl_status: not found\n", exit: 127, err: `unexpected output (exit 127): "sh: 1: cl_status: not found"`},
		{name: "empty", hb: "", exit: 0, err: "unexpected output (exit 0)"},
		{name: "running, in transition", hb: running, rsc: rsc("transition"), want: Heartbeat{true, ResourcesTransition}},
		{name: "died during rscstatus", hb: running, rsc: rsc("gone"), err: "rscstatus: heartbeat is not reachable: ", notReachable: true},
		{name: "refuses the connection", hb: "Heartbeat is apparently running on this machine, but refuses my connection.\n", err: "hbstatus: heartbeat is not reachable", notReachable: true},
		{name: "odd rscstatus", hb: running, rsc: "busy\n", err: `rscstatus: invalid: unexpected output "busy"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseClStatus(tt.hb, tt.rsc, tt.exit)
			if tt.err == "" {
				if err != nil || got != tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
				return
			}
			want := ErrInvalid
			if tt.notReachable {
				want = ErrNotReachable
			}
			if err == nil || !errors.Is(err, want) || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("error %v, want %v and %q", err, want, tt.err)
			}
		})
	}
}

func TestResourcesString(t *testing.T) {
	for r, w := range map[Resources]string{ResourcesUnknown: "unknown", ResourcesNone: "none", ResourcesLocal: "local", ResourcesForeign: "foreign", ResourcesAll: "all", ResourcesTransition: "transition", 99: "unknown"} {
		if r.String() != w {
			t.Errorf("%d: %q, want %q", r, r.String(), w)
		}
	}
}
