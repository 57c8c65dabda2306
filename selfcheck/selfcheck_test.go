package selfcheck

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lvsmon/lvsmon/events"
)

// fakeAction records what it was set to.
type fakeAction struct {
	sets []bool
	fail error
}

func (f *fakeAction) Name() string { return "fake" }
func (f *fakeAction) Set(_ context.Context, sick bool) error {
	f.sets = append(f.sets, sick)
	return f.fail
}
func (f *fakeAction) Reset(ctx context.Context) error { return f.Set(ctx, false) }

// step is one result fed to the runner: check name and whether it passed.
type step struct {
	check string
	ok    bool
}

func steps(s string) []step {
	var out []step
	for f := range strings.FieldsSeq(s) {
		name, res, _ := strings.Cut(f, "=")
		out = append(out, step{name, res == "ok"})
	}
	return out
}

func TestRunnerRiseFallAndHandOver(t *testing.T) {
	tests := []struct {
		name     string
		peer     bool // a peer check "peer" with rise 1 fall 1
		results  string
		wantSets []bool // after Start's false
		wantKind []events.Kind
		handed   bool
		refused  bool
	}{
		{name: "one failure below fall does nothing", results: "port=fail port=ok port=fail", wantSets: nil, handed: false},
		{name: "fall failures hand over", results: "port=fail port=fail", wantSets: []bool{true}, wantKind: []events.Kind{events.HandOver}, handed: true},
		{name: "rise successes hand back", results: "port=fail port=fail port=ok port=ok port=ok",
			wantSets: []bool{true, false}, wantKind: []events.Kind{events.HandOver, events.HandBack}},
		{name: "successes below rise keep the hand-over", results: "port=fail port=fail port=ok port=ok port=fail port=ok port=ok",
			wantSets: []bool{true}, wantKind: []events.Kind{events.HandOver}, handed: true},
		{name: "a port flapping faster than fall never hands over", results: strings.Repeat("port=fail port=ok ", 20)},
		{name: "builtin down too", results: "collector=fail", wantSets: []bool{true}, wantKind: []events.Kind{events.HandOver}, handed: true},
		{name: "sick peer refuses once", peer: true, results: "peer=fail port=fail port=fail port=fail",
			wantKind: []events.Kind{events.HandOverRefused}, refused: true},
		{name: "peer healthy again hands over", peer: true, results: "peer=fail port=fail port=fail peer=ok",
			wantSets: []bool{true}, wantKind: []events.Kind{events.HandOverRefused, events.HandOver}, handed: true},
		{name: "refusal ends when healthy", peer: true, results: "peer=fail port=fail port=fail port=ok port=ok port=ok",
			wantKind: []events.Kind{events.HandOverRefused}},
		{name: "unknown check ignored", results: "nope=fail nope=fail nope=fail"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			act := &fakeAction{}
			var evs []events.Event
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			o := Options{
				Checks: []Check{
					{Name: "port", Type: "tcp", Interval: time.Second, Rise: 3, Fall: 2},
					{Name: "collector", Type: "collector", Interval: time.Second, Rise: 1, Fall: 1},
				},
				Actions: []Action{act},
				Event:   func(e events.Event) { evs = append(evs, e) },
				Now:     func() time.Time { return now },
			}
			if tc.peer {
				o.PeerCheck = &Check{Name: "peer", Type: "tcp", Interval: time.Second, Rise: 1, Fall: 1}
			}
			r := New(o)
			ctx := context.Background()
			r.Start(ctx)
			for _, s := range steps(tc.results) {
				now = now.Add(time.Second)
				var err error
				if !s.ok {
					err = errors.New("connection refused")
				}
				r.Result(ctx, s.check, err)
			}
			if want := append([]bool{false}, tc.wantSets...); !slices.Equal(act.sets, want) {
				t.Errorf("action set %v, want %v", act.sets, want)
			}
			var kinds []events.Kind
			for _, e := range evs {
				kinds = append(kinds, e.Kind)
				if e.Actor != Actor || e.Message == "" {
					t.Errorf("event %+v lacks actor or message", e)
				}
			}
			if !slices.Equal(kinds, tc.wantKind) {
				t.Errorf("events %v, want %v", kinds, tc.wantKind)
			}
			v := r.Status()
			if v.HandedOver != tc.handed || (v.Refused != "") != tc.refused {
				t.Errorf("status %+v, want handed %v refused %v", v, tc.handed, tc.refused)
			}
			if tc.peer && v.Peer == nil {
				t.Error("status lacks the peer check")
			}
		})
	}
}

func TestHandOverReasonAndRetry(t *testing.T) {
	act := &fakeAction{fail: errors.New("disk full")}
	var evs []events.Event
	r := New(Options{Checks: []Check{{Name: "sshd", Rise: 1, Fall: 1}}, Actions: []Action{act}, Event: func(e events.Event) { evs = append(evs, e) }})
	ctx := context.Background()
	r.Result(ctx, "sshd", errors.New("tcp: connect 127.0.0.1:22: connection refused"))
	if len(evs) != 1 || evs[0].Kind != events.HandOver || !strings.Contains(evs[0].Reason, "sshd: tcp: connect 127.0.0.1:22: connection refused") {
		t.Fatalf("events %+v", evs)
	}
	if v := r.Status(); !strings.Contains(v.ActionError, "disk full") || v.Healthy {
		t.Errorf("status %+v", v)
	}
	act.fail = nil
	r.Result(ctx, "sshd", errors.New("still refused"))
	if !slices.Equal(act.sets, []bool{true, true}) || r.Status().ActionError != "" {
		t.Errorf("the failed action was not retried: %v %+v", act.sets, r.Status())
	}
}

func TestPeerHook(t *testing.T) {
	var healthy, known bool
	var evs []events.Event
	r := New(Options{Checks: []Check{{Name: "c", Rise: 1, Fall: 1}}, Event: func(e events.Event) { evs = append(evs, e) },
		Peer: func() (bool, bool, string) { return healthy, known, "its collector fails" }})
	ctx := context.Background()
	known = true
	r.Result(ctx, "c", errors.New("x"))
	if v := r.Status(); v.HandedOver || !strings.Contains(v.Refused, "its collector fails") {
		t.Fatalf("a known-sick peer got the VIPs: %+v", v)
	}
	known = false // lvsmon cannot tell: the stack's election decides
	r.Result(ctx, "c", errors.New("x"))
	if v := r.Status(); !v.HandedOver {
		t.Fatalf("an unknown peer blocked the hand-over: %+v", v)
	}
	if len(evs) != 2 || evs[0].Kind != events.HandOverRefused || evs[1].Kind != events.HandOver {
		t.Errorf("events %+v", evs)
	}
}

func TestStateFileAndTrackFile(t *testing.T) {
	dir := t.TempDir()
	state, track := filepath.Join(dir, "state"), filepath.Join(dir, "track")
	r := New(Options{Checks: []Check{{Name: "web", Rise: 2, Fall: 1}}, Actions: []Action{TrackFile{Path: track, Weight: -100}}, StateFile: state})
	ctx := context.Background()
	read := func(p string) string {
		t.Helper()
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	r.Start(ctx)
	if read(track) != "0\n" || read(state) != "ok\n" {
		t.Fatalf("start: track %q state %q", read(track), read(state))
	}
	r.Result(ctx, "web", errors.New("http: status 503, want 200-299"))
	if read(track) != "-100\n" || read(state) != "handover web: http: status 503, want 200-299\n" {
		t.Fatalf("sick: track %q state %q", read(track), read(state))
	}
	if h, line, err := ReadState([]byte(read(state))); err != nil || !h || !strings.Contains(line, "503") {
		t.Errorf("ReadState = %v %q %v", h, line, err)
	}
	r.Result(ctx, "web", nil)
	r.Result(ctx, "web", nil)
	if read(track) != "0\n" || read(state) != "ok\n" {
		t.Fatalf("healthy: track %q state %q", read(track), read(state))
	}
	m := NewMetrics(r)
	if n := testutil.CollectAndCount(m); n != 4 {
		t.Errorf("%d series, want 4", n)
	}
	if err := testutil.CollectAndCompare(m, strings.NewReader(`# HELP lvsmon_ha_handover_active 1 while this director hands its VIPs to the peer because its self checks fail.
# TYPE lvsmon_ha_handover_active gauge
lvsmon_ha_handover_active 0
# HELP lvsmon_ha_self_check_up 1 while the self check of the director is up (after rise and fall).
# TYPE lvsmon_ha_self_check_up gauge
lvsmon_ha_self_check_up{check="web"} 1
`), "lvsmon_ha_handover_active", "lvsmon_ha_self_check_up"); err != nil {
		t.Error(err)
	}
}

func TestReadState(t *testing.T) {
	tests := []struct {
		in      string
		handed  bool
		wantErr bool
	}{
		{"ok\n", false, false},
		{"ok hand-over refused: peer\n", false, false},
		{"handover sshd: refused\n", true, false},
		{"", false, true},
		{"maybe\n", false, true},
	}
	for _, tc := range tests {
		h, _, err := ReadState([]byte(tc.in))
		if h != tc.handed || (err != nil) != tc.wantErr {
			t.Errorf("ReadState(%q) = %v, %v", tc.in, h, err)
		}
	}
}

func FuzzReadState(f *testing.F) {
	for _, s := range []string{"ok\n", "handover x: y\n", "", "\x00"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, line, err := ReadState(b)
		if err == nil && h != strings.HasPrefix(line, StateHandover) {
			t.Errorf("ReadState(%q) = %v for line %q", b, h, line)
		}
	})
}

// TestRunSchedules runs the real scheduler with fast checks: the
// failing check hands over within fall intervals.
func TestRunSchedules(t *testing.T) {
	act := &fakeAction{}
	done := make(chan struct{})
	fails := false
	r := New(Options{Checks: []Check{{Name: "c", Interval: 10 * time.Millisecond, Rise: 1, Fall: 2, Run: func(context.Context) error {
		if fails {
			return errors.New("down")
		}
		return nil
	}}}, Actions: []Action{act}, Event: func(e events.Event) {
		if e.Kind == events.HandOver {
			close(done)
		}
	}})
	fails = true
	ctx, cancel := context.WithCancel(context.Background())
	stopped := make(chan struct{})
	go func() { r.Run(ctx); close(stopped) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("no hand-over")
	}
	cancel()
	<-stopped
}

// The heartbeat action runs hb_standby RESOURCES when sick and, with
// failback, hb_takeover local when healthy; scripts stand in for them.
func TestHeartbeatAction(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	script := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	standby := script("hb_standby", `echo "standby $*" >> `+log)
	takeover := script("hb_takeover", `echo "takeover $*" >> `+log)
	broken := script("broken", `echo "heartbeat is not running" >&2; exit 1`)
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		h        Heartbeat
		want     string
		wantErrs string
	}{
		{"failback", Heartbeat{Standby: standby, Takeover: takeover, Resources: "all", Failback: true, Timeout: 5 * time.Second}, "standby all\ntakeover local\n", ""},
		{"no failback", Heartbeat{Standby: standby, Takeover: takeover, Resources: "local", Timeout: 5 * time.Second}, "standby local\n", ""},
		{"broken", Heartbeat{Standby: broken, Takeover: takeover, Resources: "all", Timeout: 5 * time.Second}, "", "heartbeat is not running"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			os.Remove(log)
			err1 := tc.h.Set(ctx, true)
			err2 := tc.h.Set(ctx, false)
			b, _ := os.ReadFile(log)
			if string(b) != tc.want {
				t.Errorf("ran %q, want %q", b, tc.want)
			}
			if tc.wantErrs == "" && (err1 != nil || err2 != nil) {
				t.Errorf("errors %v %v", err1, err2)
			}
			if tc.wantErrs != "" && (err1 == nil || !strings.Contains(err1.Error(), tc.wantErrs)) {
				t.Errorf("error %v, want %q", err1, tc.wantErrs)
			}
			if _, ok := any(tc.h).(Resetter); ok {
				t.Error("a command action must not run at start")
			}
		})
	}
}

// The pacemaker action runs crm_attribute with the node attribute's
// value: 1 while sick, 0 when healthy.
func TestPacemakerAction(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "log")
	tool := filepath.Join(dir, "crm_attribute")
	if err := os.WriteFile(tool, []byte("#!/bin/sh\necho \"$*\" >> "+log+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	p := Pacemaker{CrmAttribute: tool, Attribute: "lvsmon-sick", Node: "lvs1", Timeout: 5 * time.Second}
	ctx := context.Background()
	if err := p.Set(ctx, true); err != nil {
		t.Fatal(err)
	}
	if err := p.Set(ctx, false); err != nil {
		t.Fatal(err)
	}
	if err := Resetter(p).Reset(ctx); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(log)
	want := "--node lvs1 --name lvsmon-sick --update 1 --lifetime reboot\n--node lvs1 --name lvsmon-sick --update 0 --lifetime reboot\n" +
		"--node lvs1 --name lvsmon-sick --update 0 --lifetime reboot\n"
	if string(b) != want {
		t.Errorf("ran %q, want %q", b, want)
	}
}

// blockingAction holds Set until released.
type blockingAction struct{ entered, release chan struct{} }

func (b blockingAction) Name() string { return "slow" }
func (b blockingAction) Set(context.Context, bool) error {
	b.entered <- struct{}{}
	<-b.release
	return nil
}

// Status answers while an action runs (an hb_standby takes seconds).
func TestStatusWhileActing(t *testing.T) {
	b := blockingAction{entered: make(chan struct{}), release: make(chan struct{})}
	r := New(Options{Checks: []Check{{Name: "c", Rise: 1, Fall: 1}}, Actions: []Action{b}})
	done := make(chan struct{})
	go func() { r.Result(context.Background(), "c", errors.New("down")); close(done) }()
	<-b.entered
	got := make(chan Verdict)
	go func() { got <- r.Status() }()
	select {
	case v := <-got:
		if !v.HandedOver || v.Healthy {
			t.Errorf("status %+v", v)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Status waited for the action")
	}
	close(b.release)
	<-done
}
