package config

import (
	"slices"
	"testing"
	"time"
)

// The alerting channels beside mail: each problem is named by its path
// and line, body templates are parsed (and tried) at load.
func TestAlertingChannelErrors(t *testing.T) {
	vs := "virtual_services:\n  - {name: web, address: 10.0.0.1, port: 80}\n"
	tests := []struct {
		name, yaml string
		want       []string
	}{
		{"no channel", "alerting: {kinds: [server_down]}\n", []string{"t.yaml:1: alerting: no channel"}},
		{"mail half set", "alerting:\n  from: lvsmon@example.com\n  webhooks: [{name: a, url: 'http://h/'}]\n", []string{
			"alerting.smtp.host: required", "alerting.to: required"}},
		{"alertmanager", `alerting:
  external_url: lvs1.example.com
  alertmanager:
    urls: [http://am1:9093, "ftp://am2", http://am1:9093, "http://user:pw@am3/"]
    timeout: 100ms
    resend_interval: 2s
    basic_auth: {password_file: /etc/pw}
    labels: {team: net, "bad-name": x, alertname: y}
    kinds: [server_exploded]
    services: [nope]
` + vs, []string{
			`t.yaml:2: alerting.external_url: "lvs1.example.com" is not an http:// or https:// URL`,
			`t.yaml:4: alerting.alertmanager.urls[1]: "ftp://am2" is not an http`,
			`t.yaml:4: alerting.alertmanager.urls[2]: "http://am1:9093" is listed twice`,
			`t.yaml:4: alerting.alertmanager.urls[3]: no credentials in the URL`,
			`t.yaml:5: alerting.alertmanager.timeout: 100ms: want 1s to 5m`,
			`t.yaml:6: alerting.alertmanager.resend_interval: 2s: want 10s to 1h`,
			`t.yaml:7: alerting.alertmanager.basic_auth.username: a password_file is set but no username`,
			`t.yaml:8: alerting.alertmanager.labels.alertname: "alertname" is one of lvsmon's own labels`,
			`t.yaml:8: alerting.alertmanager.labels.bad-name: "bad-name" is not a label name`,
			`t.yaml:9: alerting.alertmanager.kinds[0]: unknown event kind "server_exploded"`,
			`t.yaml:10: alerting.alertmanager.services[0]: "nope" is neither the name nor the id`}},
		{"alertmanager without urls", "alerting:\n  alertmanager: {bearer_token_file: /t, basic_auth: {username: u}}\n", []string{
			"alerting.alertmanager.urls: required",
			"alerting.alertmanager.bearer_token_file: set basic_auth or bearer_token_file, not both"}},
		{"webhooks", `alerting:
  webhooks:
    - name: chat
      url: https://chat.example.com/hook
      body_template: '{{range .Events}}{{.Nope}}{{end}}'
    - name: chat
      url: /relative
      method: GET
      headers: {"Bad Header": x, Authorization: y}
      header_files: {Authorization: /etc/token, X-Key: ""}
      timeout: 1h
    - {name: "no spaces", url: "http://h/", body_template: "{{.Director"}
`, []string{
			`t.yaml:5: alerting.webhooks[0].body_template: the template does not render`,
			`t.yaml:6: alerting.webhooks[1].name: "chat" is the name of webhooks[0] too`,
			`t.yaml:7: alerting.webhooks[1].url: "/relative" is not an http`,
			`t.yaml:8: alerting.webhooks[1].method: "GET": want POST, PUT or PATCH`,
			`t.yaml:9: alerting.webhooks[1].headers.Authorization: set in headers and in header_files`,
			`t.yaml:9: alerting.webhooks[1].headers.Bad Header: "Bad Header" is not a header name`,
			`t.yaml:10: alerting.webhooks[1].header_files.X-Key: required`,
			`t.yaml:11: alerting.webhooks[1].timeout: 1h0m0s: want 1s to 5m`,
			`t.yaml:12: alerting.webhooks[2].name: "no spaces": want 1 to 64 letters`,
			`t.yaml:12: alerting.webhooks[2].body_template: template: alerting.webhooks[2].body_template:1: unclosed action`}},
		{"url and url_file", "alerting:\n  webhooks: [{name: a, url: 'http://h/', url_file: /etc/lvsmon/hook-url}, {name: b}]\n", []string{
			"alerting.webhooks[0].url_file: set url or url_file, not both", "alerting.webhooks[1].url: required"}},
		{"typo in a webhook", "alerting:\n  webhooks: [{name: a, url: 'http://h/', header: {}}]\n", []string{`unknown key "header" (did you mean "headers"?)`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { expectProblems(t, tc.yaml, tc.want) })
	}
}

// Without smtp, from and to there is no mail and none of its settings
// is required; the channels get their defaults.
func TestAlertingChannelDefaults(t *testing.T) {
	c, err := Parse("t.yaml", []byte(`alerting:
  alertmanager: {urls: [http://127.0.0.1:9093]}
  webhooks:
    - {name: chat, url: https://chat.example.com/hook, kinds: [server_down], master_only: false}
    - {name: slack, url_file: /etc/lvsmon/slack-url}
`))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Alerting
	if a.MailEnabled() || a.SMTP != (SMTP{}) {
		t.Errorf("mail: enabled %v, smtp %+v", a.MailEnabled(), a.SMTP)
	}
	am := a.Alertmanager
	if am.Timeout.D() != 10*time.Second || am.ResendInterval.D() != time.Minute || !am.IsMasterOnly() || !slices.Contains(am.Kinds, "sorry_on") {
		t.Errorf("alertmanager defaults: %+v", am)
	}
	w := a.Webhooks[0]
	if w.Method != "POST" || w.Timeout.D() != 10*time.Second || w.IsMasterOnly() || !slices.Equal(w.Kinds, []string{"server_down"}) {
		t.Errorf("webhook defaults: %+v", w)
	}
}
