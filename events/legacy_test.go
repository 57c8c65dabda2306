package events

import (
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestUpgrade(t *testing.T) {
	type fields struct{ From, To, Reason string }
	for _, tc := range []struct {
		name string
		in   Event
		want fields
	}{
		{"down", Event{Kind: ServerDown, Message: "web: 10.0.0.2:80 is down: http: status 503"}, fields{To: Down, Reason: "http: status 503"}},
		{"down, reason with the preamble again", Event{Kind: ServerDown, Message: "a: b is down: c is down: d"}, fields{To: Down, Reason: "c is down: d"}},
		{"down without preamble", Event{Kind: ServerDown, Message: "http: status 503"}, fields{To: Down, Reason: "http: status 503"}},
		{"down, empty reason", Event{Kind: ServerDown, Message: "web: x is down: "}, fields{To: Down, Reason: "web: x is down: "}},
		{"down, no message", Event{Kind: ServerDown}, fields{To: Down}},
		{"up", Event{Kind: ServerUp, Message: "web: 10.0.0.2:80 is up"}, fields{To: Up}},
		{"sorry on", Event{Kind: SorryOn, Message: "x"}, fields{To: On}},
		{"sorry off", Event{Kind: SorryOff}, fields{To: Off}},
		{"simulated down", Event{Kind: SimulatedDown}, fields{To: Down}},
		{"simulated up", Event{Kind: SimulatedUp}, fields{To: Up}},
		{"reload rejected", Event{Kind: Reload, Message: "config reload rejected, running config kept: x.yaml:3: bad"}, fields{To: Rejected, Reason: "x.yaml:3: bad"}},
		{"reload rejected, other words", Event{Kind: Reload, Message: "rejected"}, fields{To: Rejected}},
		{"reload applied", Event{Kind: Reload, Message: "config reloaded: 3 virtual services"}, fields{To: Applied}},
		{"role change", Event{Kind: RoleChange, Instance: "VI_1", Message: "VI_1: BACKUP → MASTER (priority 100, keepalived)"}, fields{From: "BACKUP", To: "MASTER"}},
		{"role change, transition", Event{Kind: RoleChange, Instance: "VI_1", Message: "VI_1: MASTER → BACKUP (priority 100, keepalived (transition))"}, fields{From: "MASTER", To: "BACKUP"}},
		{"role at start", Event{Kind: RoleChange, Instance: "VI_1", Message: "VI_1: MASTER at start (priority 150, simulated)"}, fields{To: "MASTER"}},
		{"role without instance", Event{Kind: RoleChange, Message: "BACKUP → MASTER"}, fields{From: "BACKUP", To: "MASTER"}},
		{"role, unreadable", Event{Kind: RoleChange, Instance: "VI_1", Message: "VI_1 BACKUP -> MASTER"}, fields{}},
		{"role, arrow at the end", Event{Kind: RoleChange, Instance: "VI_1", Message: "VI_1: BACKUP →"}, fields{}},
		{"role, nothing before the arrow", Event{Kind: RoleChange, Instance: "VI_1", Message: "VI_1: → MASTER"}, fields{To: "MASTER"}},
		{"structured already", Event{Kind: Reload, To: Applied, Message: "config reload rejected"}, fields{To: Applied}},
		{"structured role", Event{Kind: RoleChange, Instance: "VI_1", From: "FAULT", To: "BACKUP", Message: "VI_1: BACKUP → MASTER"}, fields{From: "FAULT", To: "BACKUP"}},
		{"other kinds untouched", Event{Kind: Override, Message: "web: drain set by 10.0.0.9"}, fields{}},
		{"unknown kind", Event{Kind: "later_kind", Message: "BACKUP → MASTER rejected"}, fields{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Upgrade(tc.in)
			if f := (fields{got.From, got.To, got.Reason}); f != tc.want {
				t.Errorf("Upgrade = %+v, want %+v", f, tc.want)
			}
			if got.Message != tc.in.Message || got.Kind != tc.in.Kind || got.Instance != tc.in.Instance {
				t.Errorf("Upgrade changed the event: %+v", got)
			}
		})
	}
}

// FuzzUpgrade feeds Upgrade any message: it never panics, fills fields
// with parts of the message only, is idempotent, leaves the rest of the
// event alone, and reads back the states of any role change ha.Monitor
// formats.
func FuzzUpgrade(f *testing.F) {
	f.Add(string(RoleChange), "VI_1", "VI_1: BACKUP → MASTER (priority 100, keepalived)")
	f.Add(string(RoleChange), "VI_1", "VI_1: MASTER at start (priority 150, simulated)")
	f.Add(string(RoleChange), "VI_1", "VI_1: → →→ at start")
	f.Add(string(RoleChange), "", "\xff→\xfe")
	f.Add(string(ServerDown), "", "web: 10.0.0.2:80 is down: http: connect: connection refused")
	f.Add(string(Reload), "", "config reload rejected, running config kept: cfg.yaml:13: bad")
	f.Add(string(Reload), "", "config reloaded: 1 virtual services")
	f.Add(string(SorryOn), "", "")
	f.Fuzz(func(t *testing.T, kind, inst, msg string) {
		in := Event{Seq: 7, Kind: Kind(kind), Instance: inst, Service: "s", Server: "r", Message: msg}
		got := Upgrade(in)
		for _, v := range []string{got.From, got.To, got.Reason} {
			if v != "" && !strings.Contains(msg, v) && !isStateWord(v) {
				t.Fatalf("field %q is not from the message %q", v, msg)
			}
			if utf8.ValidString(msg) && !utf8.ValidString(v) {
				t.Fatalf("field %q of valid message %q is not valid UTF-8", v, msg)
			}
		}
		if again := Upgrade(got); again != got {
			t.Fatalf("not idempotent: %+v then %+v", got, again)
		}
		got.From, got.To, got.Reason = "", "", ""
		if got != in {
			t.Fatalf("changed more than the fields: %+v", got)
		}
		// ha.Monitor's forms, with states and instance names as words.
		from, to := firstWord(inst), firstWord(msg)
		if from == "" || to == "" || strings.Contains(from+to, "→") {
			return
		}
		instance := strings.TrimSpace(inst)
		e := Upgrade(Event{Kind: RoleChange, Instance: instance, Message: fmt.Sprintf("%s: %s → %s (priority 100, %s)", instance, from, to, kind)})
		if !strings.Contains(kind, "→") && (e.From != from || e.To != to) {
			t.Fatalf("role change %s → %s read as %q → %q", from, to, e.From, e.To)
		}
		e = Upgrade(Event{Kind: RoleChange, Instance: instance, Message: fmt.Sprintf("%s: %s at start (priority 100, %s)", instance, to, kind)})
		if !strings.Contains(kind+instance, "→") && (e.From != "" || e.To != to) {
			t.Fatalf("role at start %s read as %q → %q", to, e.From, e.To)
		}
	})
}

func isStateWord(v string) bool {
	switch v {
	case Up, Down, On, Off, Applied, Rejected:
		return true
	}
	return false
}

func firstWord(s string) string {
	if f := strings.Fields(s); len(f) > 0 {
		return f[0]
	}
	return ""
}
