package config

import (
	"net/netip"
	"slices"
	"testing"
	"time"
)

func TestHAAndAlertingErrors(t *testing.T) {
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"act_only_on value", "ha:\n  act_only_on: sometimes\n  vips: [10.0.0.1]\n", []string{`t.yaml:2: ha.act_only_on: "sometimes": want any or master`}},
		{"master without a source", "ha:\n  act_only_on: master\n", []string{"ha.act_only_on: master needs a role source"}},
		{"bad vip", "ha:\n  vips: [10.0.0.1, 10.0.0.x, 10.0.0.1]\n", []string{`t.yaml:2: ha.vips[1]`, `ha.vips[2]: 10.0.0.1 is listed twice`}},
		{"keepalived paths", "ha:\n  keepalived:\n    pid_file: run/k.pid\n    refresh: 10ms\n", []string{`t.yaml:3: ha.keepalived.pid_file: "run/k.pid" must be an absolute path`, `t.yaml:4: ha.keepalived.refresh: 10ms is too short`}},
		{"pacemaker resource", "ha:\n  pacemaker: {crm_mon: /usr/sbin/crm_mon}\n", []string{"ha.pacemaker.resource: required"}},
		{"netns missing", "ha:\n  netns: no-such-ns-here\n  vips: [10.0.0.1]\n", []string{`t.yaml:2: ha.netns: "no-such-ns-here"`}},
		{"typo in ha", "ha:\n  keepalive: {}\n", []string{`unknown key "keepalive" (did you mean "keepalived"?)`}},
		{"alerting basics", "alerting:\n  smtp: {tls: maybe}\n  from: not an address\n", []string{
			`t.yaml:1: alerting.to: required`, `t.yaml:2: alerting.smtp.host: required`, `t.yaml:2: alerting.smtp.tls: "maybe"`, `t.yaml:3: alerting.from: "not an address"`}},
		{"alerting values", `alerting:
  smtp: {host: mail.example.com, password_env: X}
  from: lvsmon@example.com
  to: [ops@example.com, "bad"]
  kinds: [server_down, server_exploded]
  services: [web, nope]
  daemon_states: [running, dancing]
  reminder: 10s
  flap_count: 1
  rate_limit: -1
  digest: "every morning"
virtual_services:
  - {name: web, address: 10.0.0.1, port: 80}
`, []string{
			`t.yaml:2: alerting.smtp.username: a password is set but no username`,
			`t.yaml:4: alerting.to[1]: "bad" is not a mail address`,
			`t.yaml:5: alerting.kinds[1]: unknown event kind "server_exploded"`,
			`t.yaml:6: alerting.services[1]: "nope" is neither the name nor the id`,
			`t.yaml:7: alerting.daemon_states[1]: "dancing"`,
			`t.yaml:8: alerting.reminder: 10s is too short`,
			`t.yaml:9: alerting.flap_count: 1: at least 2`,
			`t.yaml:10: alerting.rate_limit: -1`,
			`t.yaml:11: alerting.digest: "every morning" is not a cron schedule`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectProblems(t, tc.yaml, tc.want) })
	}
}

func TestHAAndAlertingDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`director: dir1
ha:
  act_only_on: master
  keepalived: {notify_fifo: /run/keepalived/vrrp.fifo}
alerting:
  smtp: {host: mail.example.com, tls: tls}
  from: lvsmon@example.com
  to: [ops@example.com]
  services: [tcp_10.0.0.1_80]
virtual_services:
  - {address: 10.0.0.1, port: 80}
  - {address: 10.0.0.1, port: 443}
  - {address: 10.0.0.2, port: 53, protocol: udp}
  - {fwmark: 5}
`))
	if err != nil {
		t.Fatal(err)
	}
	h := c.HA
	if h.ActOnlyOn != "master" || h.Grace.D() != 3*time.Second || h.Keepalived.PIDFile != "/run/keepalived.pid" || h.Keepalived.Refresh.D() != 30*time.Second {
		t.Errorf("ha defaults: %+v %+v", h, h.Keepalived)
	}
	if want := []netip.Addr{netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")}; !slices.Equal(h.Addrs, want) {
		t.Errorf("VIPs default to the service addresses: got %v, want %v", h.Addrs, want)
	}
	a := c.Alerting
	kinds := []string{"server_down", "server_up", "sorry_on", "sorry_off", "role_change", "role_disagreement", "role_agreement",
		"daemon_start", "daemon_stop", "reload_rejected", "guard_hold", "guard_release", "override",
		"peer_drift", "peer_in_sync", "peer_unreachable", "peer_reachable", "other_writer", "other_writer_gone",
		"ha_handover", "ha_handback", "ha_handover_refused"}
	if a.SubjectPrefix != "[lvsmon dir1]" || a.SMTP.Port != 465 || a.GroupWindow.D() != 10*time.Second || !a.IsMasterOnly() ||
		a.RateLimit != 20 || !slices.Equal(a.Kinds, kinds) || !slices.Equal(a.DaemonStates, DaemonStates) {
		t.Errorf("alerting defaults: %+v", a)
	}
	c, err = Parse("t.yaml", []byte("step: 10s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c.Alerting != nil || c.HA.Enabled() || len(c.HA.Addrs) != 0 {
		t.Errorf("absent sections: alerting %v, ha %+v", c.Alerting, c.HA)
	}
}
