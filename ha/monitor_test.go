package ha

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// scenario drives a Monitor with a fake clock and records its changes.
type scenario struct {
	t       *testing.T
	m       *Monitor
	now     time.Time
	changes []Change
}

func newScenario(t *testing.T, sources ...string) *scenario {
	s := &scenario{t: t, now: time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)}
	addrs := []netip.Addr{netip.MustParseAddr("198.51.100.100")}
	s.m = NewMonitor(MonitorConfig{VIPs: addrs, Sources: sources, Grace: 3 * time.Second, OnChange: func(c Change) { s.changes = append(s.changes, c) }})
	return s
}

func (s *scenario) advance(d time.Duration) {
	for end := s.now.Add(d); s.now.Before(end); {
		s.now = s.now.Add(time.Second)
		s.m.Tick(s.now)
	}
}

func (s *scenario) update(r Report) {
	r.Time = s.now
	s.m.Update(r)
}

// take returns the changes since the last call as "kind instance: message" lines.
func (s *scenario) take() []string {
	var out []string
	for _, c := range s.changes {
		out = append(out, string(c.Kind)+" "+c.Message)
	}
	s.changes = nil
	return out
}

func (s *scenario) expect(what string, want ...string) {
	s.t.Helper()
	got := s.take()
	if len(got) != len(want) {
		s.t.Fatalf("%s: changes\n%s\nwant %d matching %q", what, strings.Join(got, "\n"), len(want), want)
	}
	for i := range want {
		if !strings.Contains(got[i], want[i]) {
			s.t.Fatalf("%s: change %d = %q, want it to contain %q", what, i, got[i], want[i])
		}
	}
}

func ka(running bool, state State, prio int) Report {
	r := Report{Source: SourceKeepalived, Running: running}
	if running {
		r.Instances = []InstanceReport{{Name: "VI_LVS", VRID: 51, State: state, Priority: prio, VIPs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}}}
	}
	return r
}

func vip(present bool) Report {
	return Report{Source: SourceVIP, Running: true, VIPs: []VIPPresence{{Addr: netip.MustParseAddr("198.51.100.100"), Present: present, Interface: "eth0"}}}
}

func wire(masters ...WireMaster) Report {
	return Report{Source: SourceVRRP, Running: true, Routers: []RouterReport{{VRID: 51, Version: 2, Masters: masters}}}
}

var (
	wireA = WireMaster{Addr: netip.MustParseAddr("198.51.100.11"), Priority: 150, Interval: time.Second, Local: true}
	wireB = WireMaster{Addr: netip.MustParseAddr("198.51.100.12"), Priority: 100, Interval: time.Second}
)

func TestMonitorKeepalivedLifecycle(t *testing.T) {
	s := newScenario(t, SourceKeepalived, SourceVIP, SourceVRRP)
	s.update(vip(false))
	s.update(ka(true, StateBackup, 150))
	s.expect("start", "role_change VI_LVS: BACKUP at start")
	if s.m.Acting() {
		t.Fatal("a BACKUP acts")
	}
	s.advance(3 * time.Second)
	s.update(Report{Source: SourceKeepalived, Running: true, Transition: true, Instances: []InstanceReport{{Name: "VI_LVS", VRID: 51, State: StateMaster, Priority: 150}}})
	s.expect("election", "role_change VI_LVS: BACKUP → MASTER (priority 150, keepalived (transition))")
	// The VIP comes a moment later: no disagreement within the grace.
	s.advance(time.Second)
	s.update(vip(true))
	s.update(wire(wireA))
	s.advance(10 * time.Second)
	s.expect("master settled")
	if !s.m.Acting() || s.m.Status().Role != "MASTER" {
		t.Fatalf("status %+v", s.m.Status())
	}
	// SIGKILL: keepalived gone, the VIP stays, b takes over on the wire.
	s.update(ka(false, 0, 0))
	s.expect("kill", "role_change VI_LVS: MASTER → STOP")
	s.update(wire(wireB))
	s.advance(2 * time.Second)
	s.expect("within grace")
	s.advance(2 * time.Second)
	s.expect("stale VIP", "role_disagreement VI_LVS: VIP 198.51.100.100 on this director while the instance is STOP")
	st := s.m.Status()
	if st.Disagreements != 1 || !slices.Equal(st.Instances[0].Disagreements, []string{VIPWithoutMaster}) || st.Acting {
		t.Fatalf("status %+v", st)
	}
	// Restart: keepalived removes the stale VIP, comes up BACKUP.
	s.update(vip(false))
	s.update(ka(true, StateBackup, 150))
	s.expect("restart", "role_agreement VI_LVS: vip_without_master is over", "role_change VI_LVS: STOP → BACKUP")
	if got := s.m.Status().Instances[0].Changes; got != 3 {
		t.Errorf("changes = %d, want 3", got)
	}
}

func TestMonitorDisagreements(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reports []Report
		want    string // disagreement kind, "" for none
	}{
		{"agree master", []Report{ka(true, StateMaster, 150), vip(true), wire(wireA)}, ""},
		{"agree backup", []Report{ka(true, StateBackup, 100), vip(false), wire(wireB)}, ""},
		{"master without vip", []Report{ka(true, StateMaster, 150), vip(false)}, MasterWithoutVIP},
		{"vip on backup", []Report{ka(true, StateBackup, 100), vip(true)}, VIPWithoutMaster},
		{"two masters", []Report{ka(true, StateBackup, 100), wire(wireA, wireB)}, TwoMasters},
		{"master elsewhere", []Report{ka(true, StateMaster, 150), vip(true), wire(wireB)}, WireElsewhere},
		{"fault holds vip", []Report{ka(true, StateFault, 100), vip(true)}, VIPWithoutMaster},
		{"vip source failing", []Report{ka(true, StateMaster, 150), vip(false), {Source: SourceVIP, Err: errString("netlink: boom")}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newScenario(t)
			for _, r := range tc.reports {
				s.update(r)
			}
			s.take()
			s.advance(5 * time.Second)
			got := s.take()
			if tc.want == "" {
				if len(got) != 0 {
					t.Fatalf("unexpected changes %q", got)
				}
				return
			}
			if len(got) != 1 || !strings.HasPrefix(got[0], "role_disagreement") {
				t.Fatalf("changes %q, want one disagreement %s", got, tc.want)
			}
			if d := s.m.Status().Instances[0].Disagreements; !slices.Equal(d, []string{tc.want}) {
				t.Fatalf("disagreements %v, want %s", d, tc.want)
			}
		})
	}
}

type errString string

func (e errString) Error() string { return string(e) }

func TestMonitorOtherStacks(t *testing.T) {
	t.Run("vip only", func(t *testing.T) {
		s := newScenario(t, SourceVIP)
		s.update(vip(false))
		s.expect("start", "role_change vip: BACKUP at start")
		s.update(vip(true))
		s.expect("takeover", "role_change vip: BACKUP → MASTER (priority 0, vip)")
		if !s.m.Acting() {
			t.Fatal("holding every VIP does not act")
		}
	})
	t.Run("wire only", func(t *testing.T) {
		s := newScenario(t, SourceVRRP, SourceVIP)
		s.update(wire(wireB))
		s.expect("start", "role_change vrid-51: BACKUP at start")
		s.update(wire(wireA))
		s.expect("local adverts", "role_change vrid-51: BACKUP → MASTER")
	})
	t.Run("heartbeat: the VIPs decide", func(t *testing.T) {
		hb := func(running bool, st State, byVIPs bool) Report {
			r := Report{Source: SourceHeartbeat, Running: running}
			if running {
				r.Instances = []InstanceReport{{Name: "heartbeat", State: st, VIPsDecide: byVIPs}}
			}
			return r
		}
		s := newScenario(t, SourceHeartbeat, SourceVIP)
		// rscstatus "local" on the node that holds nothing: BACKUP.
		s.update(vip(false))
		s.update(hb(true, StateUnknown, true))
		s.expect("start", "role_change heartbeat: BACKUP at start (priority 0, heartbeat)")
		s.advance(5 * time.Second)
		s.expect("no disagreement while local without the VIP")
		// The VIP arrives (takeover, rscstatus "all"): MASTER.
		s.update(vip(true))
		s.expect("takeover", "role_change heartbeat: BACKUP → MASTER (priority 0, heartbeat + VIPs)")
		if !s.m.Acting() {
			t.Fatal("a heartbeat node holding the VIP does not act")
		}
		// heartbeat killed, the VIP left behind: STOP, then flagged.
		s.update(Report{Source: SourceHeartbeat})
		s.expect("crash", "role_change heartbeat: MASTER → STOP")
		s.advance(4 * time.Second)
		s.expect("stale VIP", "role_disagreement heartbeat: ")
		if st := s.m.Status(); st.Instances[0].Disagreements[0] != VIPWithoutMaster {
			t.Fatalf("status %+v", st)
		}
		// Restarted and holding nothing ("none") while the VIP is still here.
		s.update(hb(true, StateBackup, false))
		s.expect("restart", "role_change heartbeat: STOP → BACKUP")
		s.update(vip(false))
		s.expect("stale VIP removed", "role_agreement heartbeat: ")
	})
	t.Run("heartbeat without VIP presence", func(t *testing.T) {
		s := newScenario(t, SourceHeartbeat)
		s.update(Report{Source: SourceHeartbeat, Running: true, Instances: []InstanceReport{{Name: "heartbeat", VIPsDecide: true}}})
		s.expect("start", "role_change heartbeat: UNKNOWN at start")
		if s.m.Acting() {
			t.Fatal("an unknown role acts")
		}
	})
	t.Run("pacemaker and keepalived differ", func(t *testing.T) {
		s := newScenario(t)
		s.update(ka(true, StateMaster, 150))
		s.update(Report{Source: SourcePacemaker, Running: true, Instances: []InstanceReport{{Name: "VI_LVS", State: StateBackup}}})
		s.take()
		s.advance(4 * time.Second)
		s.expect("differ", "role_disagreement VI_LVS: role sources disagree (keepalived says MASTER)")
	})
	t.Run("failed read keeps the role", func(t *testing.T) {
		s := newScenario(t)
		s.update(ka(true, StateMaster, 150))
		s.take()
		s.update(Report{Source: SourceKeepalived, Err: errString("dump did not come")})
		s.expect("error")
		st := s.m.Status()
		if st.Role != "MASTER" || st.Sources[0].Up || st.Sources[0].Error == "" {
			t.Fatalf("status %+v", st)
		}
	})
	t.Run("a polled source that stops answering", func(t *testing.T) {
		s := newScenario(t, SourcePacemaker, SourceVIP)
		pm := Report{Source: SourcePacemaker, Running: true, Instances: []InstanceReport{{Name: "vip", State: StateMaster}}}
		s.update(vip(true))
		s.update(pm)
		s.expect("start", "role_change vip: MASTER at start")
		// corosync killed: crm_mon cannot reach the CIB, poll after poll.
		fail := Report{Source: SourcePacemaker, Err: errString("pacemaker is not reachable")}
		for range 2 {
			s.update(fail)
			s.advance(2 * time.Second)
		}
		s.expect("two failures keep the role")
		s.update(fail)
		s.expect("the third, 4 s after the first", "role_change vip: MASTER → UNKNOWN (priority 0, pacemaker not answering)")
		if s.m.Acting() {
			t.Fatal("a director whose cluster manager does not answer acts")
		}
		s.update(pm)
		s.expect("answering again", "role_change vip: UNKNOWN → MASTER")
		// Failures spread over a long time but interrupted by a good read
		// start counting again.
		s.update(fail)
		s.advance(5 * time.Second)
		s.update(pm)
		s.update(fail)
		s.update(fail)
		s.expect("not three in a row")
	})
	t.Run("no sources", func(t *testing.T) {
		s := newScenario(t)
		if st := s.m.Status(); st.Role != "UNKNOWN" || st.Acting || len(st.Instances) != 0 {
			t.Fatalf("status %+v", st)
		}
	})
}

func TestMonitorReconfigure(t *testing.T) {
	s := newScenario(t, SourceKeepalived, SourceVIP, SourcePacemaker)
	s.update(ka(true, StateMaster, 150))
	s.update(vip(true))
	s.update(Report{Source: SourcePacemaker, Running: true, Instances: []InstanceReport{{Name: "lvs-vip", State: StateBackup}}})
	s.take()
	// pacemaker leaves the config: its instance goes; keepalived's stays
	// without a new role event.
	s.m.Reconfigure(MonitorConfig{VIPs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}, Sources: []string{SourceKeepalived, SourceVIP}})
	s.expect("reconfigured")
	st := s.m.Status()
	if len(st.Instances) != 1 || st.Instances[0].Instance != "VI_LVS" || st.Instances[0].State != StateMaster || len(st.Sources) != 2 {
		t.Fatalf("status %+v", st)
	}
	// OnChange survives the reconfiguration.
	s.update(ka(true, StateBackup, 150))
	s.expect("after", "role_change VI_LVS: MASTER → BACKUP")
}

// OnChange runs after the monitor's lock is released: a callback that
// reads the monitor (the reconciler's gate does) does not deadlock, and
// the changes of several instances come in a stable order.
func TestMonitorCallbackOutsideTheLock(t *testing.T) {
	for range 20 { // map order would show within a few runs
		var m *Monitor
		var got []string
		m = NewMonitor(MonitorConfig{Grace: time.Second, OnChange: func(c Change) {
			_ = m.Acting()
			_ = m.Status()
			got = append(got, c.Instance)
		}})
		var ins []InstanceReport
		for _, n := range []string{"VI_c", "VI_a", "VI_d", "VI_b"} {
			ins = append(ins, InstanceReport{Name: n, State: StateMaster, Priority: 100})
		}
		m.Update(Report{Source: SourceKeepalived, Running: true, Instances: ins, Time: time.Now()})
		if strings.Join(got, " ") != "VI_a VI_b VI_c VI_d" {
			t.Fatalf("changes in order %v", got)
		}
	}
}

// Role events carry their meaning in fields: the states before and
// after, the source that set the role, the disagreement's kind.
func TestMonitorChangeFields(t *testing.T) {
	s := newScenario(t, SourceKeepalived, SourceVIP)
	s.update(vip(false))
	s.update(ka(true, StateBackup, 150))
	s.advance(time.Second)
	s.update(Report{Source: SourceKeepalived, Running: true, Transition: true, Instances: []InstanceReport{{Name: "VI_LVS", VRID: 51, State: StateMaster, Priority: 150}}})
	s.update(vip(true))
	s.advance(2 * time.Second)
	s.update(ka(false, 0, 0))
	s.advance(5 * time.Second)
	s.update(vip(false))
	type fields struct {
		Kind                    events.Kind
		Instance                string
		From, To, Reason, Actor string
	}
	var got []fields
	for _, c := range s.changes {
		got = append(got, fields{c.Kind, c.Instance, c.From, c.To, c.Reason, c.Actor})
	}
	want := []fields{
		{events.RoleChange, "VI_LVS", "", "BACKUP", "", SourceKeepalived},
		{events.RoleChange, "VI_LVS", "BACKUP", "MASTER", "", SourceKeepalived},
		{events.RoleChange, "VI_LVS", "MASTER", "STOP", "", SourceKeepalived},
		{events.Disagreement, "VI_LVS", "", "", VIPWithoutMaster, ""},
		{events.Agreement, "VI_LVS", "", "", VIPWithoutMaster, ""},
	}
	if !slices.Equal(got, want) {
		t.Errorf("changes\n%+v\nwant\n%+v", got, want)
	}
	// What the old message-reading code (events.Upgrade) reads from the
	// messages agrees with the fields.
	for _, c := range s.changes {
		if c.Kind != events.RoleChange {
			continue
		}
		old := events.Upgrade(events.Event{Kind: c.Kind, Instance: c.Instance, Message: c.Message})
		if old.From != c.From || old.To != c.To {
			t.Errorf("%q reads as %s → %s, the fields say %s → %s", c.Message, old.From, old.To, c.From, c.To)
		}
	}
}
