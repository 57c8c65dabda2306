package alerting

import (
	"flag"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestRelease1Decisions replays the event log written by release 1
// (events/testdata/release-1.jsonl, lines without structured fields)
// through the pipeline's decisions under three kind filters and compares
// what it decides with what release 1 decided (testdata/release-1.golden,
// written by release 1's own alerting): each event mailed or suppressed
// and why, the daemon state it implies (a rejected reload is no
// "reloading"), the role it remembers per instance, and the mails.
func TestRelease1Decisions(t *testing.T) {
	b, err := os.ReadFile("../events/testdata/release-1.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "events.jsonl"), b, 0o640); err != nil {
		t.Fatal(err)
	}
	l, err := events.Open(dir, 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	evs := l.Since(0, 0)
	var out strings.Builder
	for _, tc := range []struct {
		name  string
		kinds []string
	}{
		{"default", nil},
		{"reload_rejected, role_change", []string{"reload_rejected", "role_change"}},
		{"all", []string{"all"}},
	} {
		pol := testPolicy(t, func(c *PipelineConfig) { c.Kinds = tc.kinds })
		e := newEngine(pol, newState(), testName)
		var mails []Mail
		flush := func(now time.Time) { mails = append(mails, composeAll(e, tickAll(e, now, true), now)...) }
		fmt.Fprintf(&out, "== kinds: %s\n", tc.name)
		for _, ev := range evs {
			flush(ev.Time)
			reason := e.observe(ev, ev.Time, true)
			if reason == "" {
				reason = "held"
			}
			fmt.Fprintf(&out, "%d %s: %s; daemon %s", ev.Seq, ev.Kind, reason, e.st.Daemon.state(ev.Time, pol.settle))
			if r := e.st.Roles[ev.Instance]; ev.Instance != "" && r != nil {
				fmt.Fprintf(&out, "; role %q, disagreement %q", r.Role, r.Disagree)
			}
			out.WriteString("\n")
		}
		flush(evs[len(evs)-1].Time.Add(time.Hour))
		for _, m := range mails {
			fmt.Fprintf(&out, "-- mail %s\n%s", m.Subject, m.Body)
		}
	}
	golden := filepath.Join("testdata", "release-1.golden")
	if *update {
		if err := os.WriteFile(golden, []byte(out.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatal(err)
	}
	if out.String() != string(want) {
		got := filepath.Join(t.TempDir(), "release-1.got")
		os.WriteFile(got, []byte(out.String()), 0o644)
		t.Errorf("the decisions differ from release 1's: diff %s %s", golden, got)
	}
}
