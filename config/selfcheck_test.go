package config

import (
	"testing"
	"time"
)

func TestSelfCheckErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"unknown type", "ha:\n  self_checks:\n    - {type: telepathy}\n", []string{`t.yaml:3: ha.self_checks[0].type: unknown check type "telepathy"`}},
		{"tcp needs a port", "ha:\n  self_checks:\n    - {type: tcp}\n", []string{`ha.self_checks[0].port: a tcp self check needs the port`}},
		{"key of another type", "ha:\n  self_checks:\n    - {type: tcp, port: 22, method: GET}\n", []string{`t.yaml:3: ha.self_checks[0].method: method does nothing for a tcp check`}},
		{"weights mean nothing here", "ha:\n  self_checks:\n    - {type: external, command: /bin/true, dynamic: true}\n    - {type: file, file: /etc/hostname}\n", []string{
			`t.yaml:3: ha.self_checks[0].dynamic: sets a real server's weight, and this check has none`,
			`t.yaml:4: ha.self_checks[1].weight: a file check with a weight sets a real server's weight`}},
		{"builtin with a port", "ha:\n  self_checks:\n    - {type: collector, port: 80, fall: 0}\n    - {type: reconciler, interval: 10ms}\n", []string{
			`t.yaml:3: ha.self_checks[0].port: does nothing for the built-in collector check`,
			`t.yaml:4: ha.self_checks[1].interval: 10ms is too short`}},
		{"names twice", "ha:\n  self_checks:\n    - {type: tcp, port: 22}\n    - {type: tcp, port: 22}\n    - {name: \"bad\\tname\", type: collector}\n", []string{
			`t.yaml:4: ha.self_checks[1].name: "tcp:22" is used twice`, `t.yaml:5: ha.self_checks[2].name: "bad\tname"`}},
		{"rise range", "ha:\n  self_checks:\n    - {type: tcp, port: 22, rise: 101}\n", []string{`ha.self_checks[0].rise: rise 101 is out of range 1-100`}},
		{"handover without checks", "ha:\n  handover: {keepalived: {track_file: /run/t}}\n", []string{`ha.handover: needs ha.self_checks`}},
		{"handover values", `ha:
  self_checks: [{type: collector}]
  handover:
    state_file: run/state
    keepalived: {track_file: run/track, weight: 5}
    peer_check: {type: tcp}
`, []string{
			`t.yaml:4: ha.handover.state_file: "run/state" must be an absolute path`,
			`t.yaml:5: ha.handover.keepalived.track_file: "run/track" must be an absolute path`,
			`t.yaml:5: ha.handover.keepalived.weight: 5: want -1 to -254`,
			`t.yaml:6: ha.handover.peer_check.address: required`,
			`t.yaml:6: ha.handover.peer_check.port: a tcp check needs the port`}},
		{"track file missing", "ha:\n  self_checks: [{type: collector}]\n  handover: {keepalived: {weight: -300}}\n", []string{
			`ha.handover.keepalived.track_file: required`, `ha.handover.keepalived.weight: -300`}},
		{"heartbeat values", "ha:\n  self_checks: [{type: collector}]\n  handover:\n    heartbeat: {hb_standby: hb_standby, resources: foreign, timeout: 10ms}\n", []string{
			`t.yaml:4: ha.handover.heartbeat.hb_standby: "hb_standby" must be an absolute path`,
			`t.yaml:4: ha.handover.heartbeat.resources: "foreign": want all or local`,
			`t.yaml:4: ha.handover.heartbeat.timeout: 10ms: want 1s to 10m`}},
		{"pacemaker values", "ha:\n  self_checks: [{type: collector}]\n  handover:\n    pacemaker: {attribute: \"bad name\", crm_attribute: bin/crm_attribute, timeout: 1h}\n", []string{
			`t.yaml:4: ha.handover.pacemaker.attribute: "bad name" is not a node attribute name`,
			`t.yaml:4: ha.handover.pacemaker.crm_attribute: "bin/crm_attribute": use an absolute path`,
			`t.yaml:4: ha.handover.pacemaker.timeout: 1h0m0s: want 1s to 10m`}},
		{"typo", "ha:\n  self_checks: [{type: tcp, port: 22, fal: 2}]\n", []string{`unknown key "fal" (did you mean "fall"?)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectProblems(t, tc.yaml, tc.want) })
	}
}

func TestSelfCheckDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`data_dir: /var/lib/x
ha:
  self_checks:
    - {type: tcp, port: 22, fall: 3, rise: 2}
    - {type: http, address: 10.0.0.9, port: 80, name: sorry}
    - {type: collector}
  handover:
    keepalived: {track_file: /run/lvsmon/track}
    peer_check: {type: tcp, address: 10.0.0.2, port: 9160}
    heartbeat: {}
    pacemaker: {}
  pacemaker: {resource: vip, node: lvs1}
`))
	if err != nil {
		t.Fatal(err)
	}
	sc := c.HA.SelfChecks
	if len(sc) != 3 {
		t.Fatalf("got %d self checks", len(sc))
	}
	for i, want := range []struct {
		name, addr string
		rise, fall int
	}{{"tcp:22", "127.0.0.1", 2, 3}, {"sorry", "10.0.0.9", 1, 1}, {"collector", "", 1, 1}} {
		if got := sc[i]; got.Name != want.name || got.Address != want.addr || got.Rise != want.rise || got.Fall != want.fall {
			t.Errorf("self check %d = %q %q rise %d fall %d, want %+v", i, got.Name, got.Address, got.Rise, got.Fall, want)
		}
	}
	if sc[1].Path != "/" || sc[1].Statuses == nil || sc[0].Interval.D() != DefaultInterval || sc[0].Timeout.D() != DefaultTimeout {
		t.Errorf("type defaults not applied: %+v", sc[1].Check)
	}
	ho := c.HA.Handover
	if ho.StateFile != "/var/lib/x/self-check" || ho.Keepalived.Weight != DefaultHandoverWeight || ho.PeerCheck.Timeout.D() != DefaultTimeout {
		t.Errorf("handover defaults: %+v %+v", ho, ho.Keepalived)
	}
	if hb := ho.Heartbeat; hb.HBStandby != "/usr/share/heartbeat/hb_standby" || hb.Resources != "all" || !*hb.Failback || hb.Timeout.D() != 30*time.Second {
		t.Errorf("heartbeat defaults: %+v", hb)
	}
	if p := ho.Pacemaker; p.Attribute != "lvsmon-sick" || p.CrmAttribute != "crm_attribute" || p.Node != "lvs1" || p.Timeout.D() != 30*time.Second {
		t.Errorf("pacemaker defaults: %+v", p)
	}
}
