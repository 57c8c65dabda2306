package alerting

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// release1State is a pipeline state saved by release 1 (before events
// had structured fields): a server down, a rejected reload and a role
// change held in the grouping window, and the down server in memory for
// reminders, all with their meaning in message text only.
const release1State = "testdata/release-1-state.json"

// replayRelease1State starts a pipeline on the release-1 state and
// returns the mails it makes: the grouped mail when the window ends and
// a reminder an hour later (subjects and bodies).
func replayRelease1State(t *testing.T) string {
	r := newRig(t, func(c *PipelineConfig) { c.Reminder = time.Hour })
	// The log the state was saved against (its cursor is 3).
	r.log.add(r.g.down(0, r.clk.peek()))
	r.log.add(r.g.ev("reload", "", "", r.clk.peek(), "config reload rejected, running config kept: cfg.yaml:13: bad"))
	r.log.add(r.g.role("VI_1", "VI_1: BACKUP → MASTER (priority 100, keepalived)", r.clk.peek()))
	b, err := os.ReadFile(release1State)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(r.stateDir, stateFile), b, 0o640); err != nil {
		t.Fatal(err)
	}
	p, o := r.start()
	r.clk.Advance(10 * time.Second)
	mustStep(t, p)
	r.clk.Advance(time.Hour)
	mustStep(t, p) // the reminder joins the window
	r.clk.Advance(10 * time.Second)
	mustStep(t, p)
	var out strings.Builder
	for _, e := range o.Pending() {
		fmt.Fprintf(&out, "-- mail %s\n%s", e.Mail.Subject, e.Mail.Body)
	}
	return out.String()
}

// The state release 1 saved makes the mails release 1 made from it
// (testdata/release-1-state.golden, written by release 1's alerting):
// the down server's reason, the rejected reload and the new role come
// out of the old items and memory.
func TestRelease1State(t *testing.T) {
	got := replayRelease1State(t)
	want, err := os.ReadFile("testdata/release-1-state.golden")
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("mails from the release-1 state:\n%s\nwant release 1's:\n%s", got, want)
	}
}
