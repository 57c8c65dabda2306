package sources

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

func fixture(parts ...string) string {
	p, err := filepath.Abs(filepath.Join(append([]string{"..", "testdata"}, parts...)...))
	if err != nil {
		panic(err)
	}
	return p
}

// TestHeartbeat runs the source against a fake cl_status that prints the
// recorded outputs with their exit codes.
func TestHeartbeat(t *testing.T) {
	type out struct {
		file   string // fixture under testdata/clstatus; "" prints nothing
		stderr bool
		exit   int
	}
	tests := []struct {
		name        string
		hb, rsc     out
		script      string // replaces the fake when set
		timeout     time.Duration
		wantRunning bool
		wantState   ha.State
		wantErrIs   error
		wantErrText string
	}{
		{name: "running, local", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "rscstatus-local.txt"}, wantRunning: true, wantState: stateByVIPs},
		{name: "running, all", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "rscstatus-all.txt"}, wantRunning: true, wantState: stateByVIPs},
		{name: "running, none", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "rscstatus-none.txt"}, wantRunning: true, wantState: ha.StateBackup},
		{name: "running, foreign", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "rscstatus-foreign.txt"}, wantRunning: true, wantState: stateByVIPs},
		{name: "running, transition", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "rscstatus-transition.txt"}, wantRunning: true, wantState: stateByVIPs},
		{name: "died during rscstatus", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "rscstatus-gone.txt", stderr: true, exit: 13}, wantErrIs: ha.ErrNotReachable, wantErrText: "Cannot get cluster resource status"},
		{name: "running, rscstatus empty", hb: out{file: "hbstatus-running.txt"}, rsc: out{}, wantRunning: true, wantState: ha.StateUnknown},
		{name: "stopped", hb: out{file: "hbstatus-stopped.txt", exit: 1}, wantState: ha.StateStop},
		{name: "stopped between the calls", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "signon-error.txt", stderr: true, exit: 1}, wantState: ha.StateStop},
		{name: "cannot sign on", hb: out{file: "signon-error.txt", stderr: true, exit: 1}, wantState: ha.StateStop},
		{name: "running text with exit 1", hb: out{file: "hbstatus-running.txt", exit: 1}, wantErrIs: ha.ErrInvalid, wantErrText: "hbstatus"},
		{name: "unknown rscstatus", hb: out{file: "hbstatus-running.txt"}, rsc: out{file: "hbstatus-stopped.txt"}, wantErrIs: ha.ErrInvalid, wantErrText: "rscstatus"},
		{name: "cl_status missing", script: "bin:lvsmon-test-no-such-cl_status", wantErrIs: exec.ErrNotFound, wantErrText: "no-such-cl_status hbstatus"},
		{name: "cl_status hangs", script: "sleep 30\n", timeout: 200 * time.Millisecond, wantErrText: "no answer within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			print := func(o out) string {
				if o.file == "" {
					return fmt.Sprintf("exit %d", o.exit)
				}
				redir := ""
				if o.stderr {
					redir = " >&2"
				}
				return fmt.Sprintf("cat %q%s; exit %d", fixture("clstatus", o.file), redir, o.exit)
			}
			bin := writeScript(t, dir, "cl_status", fmt.Sprintf("case \"$1\" in\nhbstatus) %s;;\nrscstatus) %s;;\nesac\necho \"bad arguments: $*\" >&2; exit 2\n",
				print(tt.hb), print(tt.rsc)))
			switch {
			case strings.HasPrefix(tt.script, "bin:"):
				bin = strings.TrimPrefix(tt.script, "bin:")
			case tt.script != "":
				bin = writeScript(t, dir, "cl_status", tt.script)
			}
			h := &Heartbeat{ClStatus: bin, Interval: time.Hour, Timeout: tt.timeout}
			checkClusterReport(t, firstReport(t, h.Run), ha.SourceHeartbeat, tt.wantErrIs, tt.wantErrText, tt.wantRunning, HeartbeatInstance, tt.wantState)
		})
	}
}

// TestPacemaker runs the source against a fake crm_mon printing recorded
// XML (or text) with an exit code.
func TestPacemaker(t *testing.T) {
	tests := []struct {
		name          string
		file          string // under testdata/crm_mon
		exit          int
		script        string
		resource      string
		node          string
		timeout       time.Duration
		wantRunning   bool
		wantState     ha.State
		wantErrIs     error
		wantErrText   string
		wantRunFailed bool
	}{
		{name: "resource here", file: "two-node.xml", resource: "vip", node: "pc-a", wantRunning: true, wantState: ha.StateMaster},
		{name: "resource on the peer", file: "two-node.xml", resource: "vip", node: "pc-b", wantRunning: true, wantState: ha.StateBackup},
		{name: "group here", file: "failover-group.xml", resource: "lvs", node: "pc-b", wantRunning: true, wantState: ha.StateMaster},
		{name: "group on the peer", file: "failover-group.xml", resource: "lvs", node: "pc-a", wantRunning: true, wantState: ha.StateBackup},
		{name: "member of a group", file: "failover-group.xml", resource: "vip", node: "pc-b", wantRunning: true, wantState: ha.StateMaster},
		{name: "pacemaker not running", file: "not-connected.xml", exit: 102, resource: "vip", node: "pc-a", wantState: ha.StateStop},
		{name: "CIB gone, XML, exit 0", file: "cib-gone.xml", resource: "vip", node: "pc-a", wantErrIs: ha.ErrNotReachable, wantErrText: "Could not connect to the CIB"},
		{name: "CIB gone, exit 0", file: "cib-gone.txt", resource: "vip", node: "pc-a", wantErrIs: ha.ErrNotReachable, wantErrText: "not reachable"},
		{name: "unknown resource", file: "two-node.xml", resource: "nope", node: "pc-a", wantErrText: `"nope"`},
		{name: "broken XML", script: "echo '<pacemaker-result><summary>'\n", resource: "vip", node: "pc-a", wantErrIs: ha.ErrInvalid},
		{name: "crm_mon missing", script: "bin:lvsmon-test-no-such-crm_mon", resource: "vip", node: "pc-a", wantErrIs: exec.ErrNotFound, wantErrText: "no-such-crm_mon"},
		{name: "crm_mon hangs", script: "sleep 30\n", timeout: 200 * time.Millisecond, resource: "vip", node: "pc-a", wantErrText: "no answer"},
		{name: "no resource", file: "two-node.xml", wantRunFailed: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			var bin string
			switch {
			case strings.HasPrefix(tt.script, "bin:"):
				bin = strings.TrimPrefix(tt.script, "bin:")
			case tt.script != "":
				bin = writeScript(t, dir, "crm_mon", tt.script)
			default:
				bin = writeScript(t, dir, "crm_mon", fmt.Sprintf("[ \"$*\" = \"-1 --output-as=xml\" ] || { echo \"bad arguments: $*\" >&2; exit 2; }\ncat %q\nexit %d\n",
					fixture("crm_mon", tt.file), tt.exit))
			}
			p := &Pacemaker{CrmMon: bin, Resource: tt.resource, Node: tt.node, Interval: time.Hour, Timeout: tt.timeout}
			if tt.wantRunFailed {
				if err := p.Run(t.Context(), func(ha.Report) { t.Error("report from a source without Resource") }); err == nil {
					t.Error("Run without Resource returned nil")
				}
				return
			}
			checkClusterReport(t, firstReport(t, p.Run), ha.SourcePacemaker, tt.wantErrIs, tt.wantErrText, tt.wantRunning, tt.resource, tt.wantState)
		})
	}
}

// TestPollingRepeats: the polling sources report again every Interval
// even when nothing changed.
func TestPollingRepeats(t *testing.T) {
	dir := t.TempDir()
	bin := writeScript(t, dir, "cl_status", fmt.Sprintf("case \"$1\" in\nhbstatus) cat %q;;\nrscstatus) echo local;;\nesac\n", fixture("clstatus", "hbstatus-running.txt")))
	h := &Heartbeat{ClStatus: bin, Interval: 50 * time.Millisecond}
	rec, stop := runSource(t, h.Run)
	rec.waitFor(t, 3, "a fourth report", func(ha.Report) bool { return true })
	stop()
	for _, r := range rec.all() {
		if r.Err != nil || !hasState(r.Report, HeartbeatInstance, stateByVIPs, -1) {
			t.Errorf("report %s", describe(r.Report))
		}
	}
}

// checkClusterReport checks a heartbeat or pacemaker report: from its
// source, timed, and either the expected error (wrapping wantErrIs, naming
// the source, containing wantErrText) or one instance in the expected
// state.
func checkClusterReport(t *testing.T, r ha.Report, source string, wantErrIs error, wantErrText string, wantRunning bool, instance string, wantState ha.State) {
	t.Helper()
	if r.Source != source || r.Time.IsZero() {
		t.Errorf("source %q, time %v", r.Source, r.Time)
	}
	if wantErrIs != nil || wantErrText != "" {
		if r.Err == nil {
			t.Fatalf("report %s, want an error", describe(r))
		}
		if wantErrIs != nil && !errors.Is(r.Err, wantErrIs) {
			t.Errorf("error %q is not %v", r.Err, wantErrIs)
		}
		if !strings.HasPrefix(r.Err.Error(), source+": ") || !strings.Contains(r.Err.Error(), wantErrText) {
			t.Errorf("error %q lacks the source or %q", r.Err, wantErrText)
		}
		return
	}
	if r.Err != nil || r.Running != wantRunning || len(r.Instances) != 1 ||
		r.Instances[0].Name != instance || reportedState(r.Instances[0]) != wantState {
		t.Errorf("report %s, want running=%v [%s %v]", describe(r), wantRunning, instance, wantState)
	}
}
