package config

import (
	"fmt"
	"maps"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lvsmon/lvsmon/events"
)

// Alerting tells people about real servers, sorry servers and the role:
// by mail (smtp, from, to and the settings beside them, as in every
// release), through an Alertmanager, and to webhooks. Each channel is
// optional and has its own filters (kinds, services, master_only);
// without this section lvsmon alerts nobody.
type Alerting struct {
	// Mail is configured when any of smtp, from and to is set; then all
	// three are required.
	SMTP SMTP     `yaml:"smtp"`
	From string   `yaml:"from"`
	To   []string `yaml:"to"`
	// SubjectPrefix starts every subject; default "[lvsmon DIRECTOR]".
	SubjectPrefix string `yaml:"subject_prefix"`
	// Kinds are the event kinds mailed, as events.Selectors names them
	// (reload_rejected: only rejected reloads; "all": every kind);
	// default events.DefaultAlerts.
	Kinds []string `yaml:"kinds"`
	// Services limits real-server and sorry mails to these services
	// (names or ids); default all.
	Services []string `yaml:"services"`
	// DaemonStates are the states of lvsmon in which real-server mails
	// are sent, as ldirectord's emailalertstatus: starting, running,
	// stopping, reloading, or none; default all four.
	DaemonStates []string `yaml:"daemon_states"`
	// GroupWindow collects the events of this long into one mail: 200
	// servers failing in the same second make one mail. Default 10s.
	GroupWindow Duration `yaml:"group_window"`
	// Reminder repeats the mail while a server stays down (ldirectord's
	// emailalertfreq); 0 (default) sends none.
	Reminder Duration `yaml:"reminder"`
	// A server changing state FlapCount times within FlapWindow is
	// flapping: one mail says so, the next when it has been stable for
	// FlapWindow. Defaults 4 and 10m.
	FlapCount  int      `yaml:"flap_count"`
	FlapWindow Duration `yaml:"flap_window"`
	// RateLimit is the most mails per hour; the excess waits and leaves
	// as one digest. Default 20.
	RateLimit int `yaml:"rate_limit"`
	// MasterOnly sends real-server and sorry mails only while this
	// director is MASTER (ha section), so a pair does not mail twice.
	// Default true; role mails are always sent.
	MasterOnly *bool `yaml:"master_only"`
	// Digest is a cron schedule (e.g. "0 7 * * *") for a daily summary:
	// services, availability per real server over the last day, events.
	Digest string `yaml:"digest"`
	// OutboxMax bounds the mails, and each webhook's deliveries, kept
	// while their receivers are unreachable; default 10000.
	OutboxMax int `yaml:"outbox_max"`

	// Alertmanager sends the alerts the director's state implies to
	// Prometheus' Alertmanager.
	Alertmanager *Alertmanager `yaml:"alertmanager"`
	// Webhooks receive events as HTTP requests.
	Webhooks []Webhook `yaml:"webhooks"`
	// ExternalURL is lvsmon's web as people reach it
	// (https://lvs1.example.com:9601); alerts link to their page there.
	ExternalURL string `yaml:"external_url"`
	// RunbookBaseURL gives every Alertmanager alert a runbook_url
	// annotation: this URL, "#", the alert name in lower case. Default
	// DefaultRunbookURL, the RUNBOOK.md the Prometheus rules point at too;
	// point it at your own copy if you keep one.
	RunbookBaseURL string `yaml:"runbook_base_url"`
}

// Alertmanager is the Alertmanager channel: state-based alerts (one per
// real server down, service without servers, HA disagreement, director
// problem), re-sent every resend_interval and resolved when the state
// mends.
type Alertmanager struct {
	// URLs are the Alertmanagers' base URLs; with an HA cluster, list
	// every member: each gets every alert.
	URLs            []string  `yaml:"urls"`
	Timeout         Duration  `yaml:"timeout"`         // default 10s
	ResendInterval  Duration  `yaml:"resend_interval"` // default 1m
	TLS             ClientTLS `yaml:"tls"`
	BasicAuth       BasicAuth `yaml:"basic_auth"`
	BearerTokenFile string    `yaml:"bearer_token_file"`
	// Labels are added to every alert; lvsmon's own labels win.
	Labels map[string]string `yaml:"labels"`
	// Kinds: server_down selects the real-server alerts, sorry_on the
	// service ones, role_disagreement the HA ones (default: all three);
	// services and master_only as for mail. Director problems always go.
	Kinds      []string `yaml:"kinds"`
	Services   []string `yaml:"services"`
	MasterOnly *bool    `yaml:"master_only"`
}

// Webhook is one HTTP receiver of events.
type Webhook struct {
	// Name names the hook in logs, metrics and the outbox; letters,
	// digits, - and _.
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	// URLFile holds the URL instead, for receivers whose URL is the
	// secret (Slack's, Teams'): read at start and at each reload, never
	// logged.
	URLFile string `yaml:"url_file"`
	Method  string `yaml:"method"` // POST (default), PUT or PATCH
	// Headers are sent as they are; HeaderFiles' values are read from
	// files at each send (tokens: never in the config, never logged).
	Headers         map[string]string `yaml:"headers"`
	HeaderFiles     map[string]string `yaml:"header_files"`
	BearerTokenFile string            `yaml:"bearer_token_file"`
	TLS             ClientTLS         `yaml:"tls"`
	Timeout         Duration          `yaml:"timeout"` // default 10s
	// BodyTemplate is a Go text/template over events.Batch (version,
	// director, events, service_names) with json and join; default the
	// batch as JSON.
	BodyTemplate string `yaml:"body_template"`
	// ContentType defaults to application/json (text/plain with a
	// template).
	ContentType string   `yaml:"content_type"`
	Kinds       []string `yaml:"kinds"`
	Services    []string `yaml:"services"`
	MasterOnly  *bool    `yaml:"master_only"`
}

// ClientTLS is how lvsmon checks an HTTPS receiver.
type ClientTLS struct {
	CAFile             string `yaml:"ca_file"`
	InsecureSkipVerify bool   `yaml:"insecure_skip_verify"`
}

// BasicAuth is a user name and the file holding its password.
type BasicAuth struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
}

// MailEnabled says whether the section configures mail.
func (a *Alerting) MailEnabled() bool { return a.SMTP != (SMTP{}) || a.From != "" || len(a.To) > 0 }

// IsMasterOnly reads MasterOnly with its default (true).
func (a *Alertmanager) IsMasterOnly() bool { return a.MasterOnly == nil || *a.MasterOnly }

// IsMasterOnly reads MasterOnly with its default (true).
func (w *Webhook) IsMasterOnly() bool { return w.MasterOnly == nil || *w.MasterOnly }

// SMTP is the mail server.
type SMTP struct {
	Host string `yaml:"host"`
	// Port defaults to 587 (starttls, opportunistic), 465 (tls), 25 (none).
	Port int `yaml:"port"`
	// TLS: starttls (default, required), opportunistic, tls (implicit,
	// port 465) or none.
	TLS          string   `yaml:"tls"`
	Username     string   `yaml:"username"`
	PasswordFile string   `yaml:"password_file"`
	PasswordEnv  string   `yaml:"password_env"`
	HELO         string   `yaml:"helo"`
	CAFile       string   `yaml:"ca_file"`
	Timeout      Duration `yaml:"timeout"` // default 30s
}

// DefaultRunbookURL is lvsmon's RUNBOOK.md, where every shipped alert
// has its section.
const DefaultRunbookURL = "https://github.com/lvsmon/lvsmon/blob/main/RUNBOOK.md"

// IsMasterOnly reads MasterOnly with its default.
func (a *Alerting) IsMasterOnly() bool { return a.MasterOnly == nil || *a.MasterOnly }

// DaemonStates are ldirectord's emailalertstatus values.
var DaemonStates = []string{"starting", "running", "stopping", "reloading"}

func (c *Config) alertingDefaults() {
	a := c.Alerting
	if a == nil {
		return
	}
	if a.RunbookBaseURL == "" {
		a.RunbookBaseURL = DefaultRunbookURL
	}
	if a.SubjectPrefix == "" {
		a.SubjectPrefix = "[lvsmon " + c.Director + "]"
	}
	a.Kinds = defaultKinds(a.Kinds)
	if len(a.DaemonStates) == 0 {
		a.DaemonStates = slices.Clone(DaemonStates)
	}
	if a.GroupWindow == 0 {
		a.GroupWindow = Duration(10 * time.Second)
	}
	if a.FlapCount == 0 {
		a.FlapCount = 4
	}
	if a.FlapWindow == 0 {
		a.FlapWindow = Duration(10 * time.Minute)
	}
	if a.RateLimit == 0 {
		a.RateLimit = 20
	}
	if a.OutboxMax == 0 {
		a.OutboxMax = 10000
	}
	if am := a.Alertmanager; am != nil {
		am.Kinds = defaultKinds(am.Kinds)
		if am.Timeout == 0 {
			am.Timeout = Duration(10 * time.Second)
		}
		if am.ResendInterval == 0 {
			am.ResendInterval = Duration(time.Minute)
		}
	}
	for i := range a.Webhooks {
		w := &a.Webhooks[i]
		w.Kinds = defaultKinds(w.Kinds)
		if w.Method == "" {
			w.Method = "POST"
		}
		if w.Timeout == 0 {
			w.Timeout = Duration(10 * time.Second)
		}
	}
	if !a.MailEnabled() {
		return
	}
	if a.SMTP.TLS == "" {
		a.SMTP.TLS = "starttls"
	}
	if a.SMTP.Port == 0 {
		switch a.SMTP.TLS {
		case "tls":
			a.SMTP.Port = 465
		case "none":
			a.SMTP.Port = 25
		default:
			a.SMTP.Port = 587
		}
	}
	if a.SMTP.Timeout == 0 {
		a.SMTP.Timeout = Duration(30 * time.Second)
	}
}

// defaultKinds is a channel's kinds, events.DefaultAlerts when unset.
func defaultKinds(kinds []string) []string {
	if len(kinds) > 0 {
		return kinds
	}
	for _, k := range events.DefaultAlerts() {
		kinds = append(kinds, string(k))
	}
	return kinds
}

func (v *validator) alerting(c *Config) {
	a := c.Alerting
	if a == nil {
		return
	}
	if !a.MailEnabled() && a.Alertmanager == nil && len(a.Webhooks) == 0 {
		v.errf("alerting", "no channel: configure mail (smtp, from, to), alertmanager or webhooks, or remove the section")
	}
	v.httpURL("alerting.external_url", a.ExternalURL, false)
	v.httpURL("alerting.runbook_base_url", a.RunbookBaseURL, false)
	if am := a.Alertmanager; am != nil {
		v.alertmanager(c, am)
	}
	names := map[string]int{}
	for i := range a.Webhooks {
		path := fmt.Sprintf("alerting.webhooks[%d]", i)
		w := &a.Webhooks[i]
		if j, ok := names[w.Name]; ok && w.Name != "" {
			v.errf(path+".name", "%q is the name of webhooks[%d] too", w.Name, j)
		}
		names[w.Name] = i
		v.webhook(c, path, w)
	}
	v.channelFilter(c, "alerting", a.Kinds, a.Services)
	if a.MailEnabled() {
		v.mail(a)
	}
	if a.OutboxMax < 10 {
		v.errf("alerting.outbox_max", "%d: at least 10", a.OutboxMax)
	}
}

// channelFilter checks a channel's kinds and services (path is the
// channel's; the keys are its kinds and services).
func (v *validator) channelFilter(c *Config, path string, kinds, services []string) {
	for i, k := range kinds {
		if !slices.Contains(events.Selectors(), events.Kind(k)) {
			v.errf(fmt.Sprintf("%s.kinds[%d]", path, i), "unknown event kind %q (known: %v)", k, events.Selectors())
		}
	}
	known := map[string]bool{}
	for _, vs := range c.VirtualServices {
		known[vs.Name] = true
		if vs.Key.Addr.IsValid() || vs.Key.IsFWMark() {
			known[vs.Key.ID()] = true
		}
	}
	for i, s := range services {
		if !known[s] {
			v.errf(fmt.Sprintf("%s.services[%d]", path, i), "%q is neither the name nor the id of a virtual service", s)
		}
	}
}

// httpURL checks an http(s) URL; empty is an error only when required.
func (v *validator) httpURL(path, s string, required bool) {
	if s == "" {
		if required {
			v.errf(path, "required: an http:// or https:// URL")
		}
		return
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		v.errf(path, "%q is not an http:// or https:// URL", s)
		return
	}
	if u.User != nil {
		v.errf(path, "no credentials in the URL: they would be logged; use basic_auth, header_files or bearer_token_file")
	}
}

func (v *validator) timeout(path string, d Duration) {
	if t := d.D(); t < time.Second || t > 5*time.Minute {
		v.errf(path, "%s: want 1s to 5m", t)
	}
}

var labelName = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// ownLabels are the labels lvsmon sets on its alerts.
var ownLabels = []string{"alertname", "director", "severity", "service", "service_id", "server", "instance", "problem", "source"}

func (v *validator) alertmanager(c *Config, am *Alertmanager) {
	const p = "alerting.alertmanager"
	if len(am.URLs) == 0 {
		v.errf(p+".urls", "required: at least one Alertmanager (http://host:9093)")
	}
	for i, u := range am.URLs {
		v.httpURL(fmt.Sprintf("%s.urls[%d]", p, i), u, true)
		if slices.Index(am.URLs, u) < i {
			v.errf(fmt.Sprintf("%s.urls[%d]", p, i), "%q is listed twice", u)
		}
	}
	v.timeout(p+".timeout", am.Timeout)
	if r := am.ResendInterval.D(); r < 10*time.Second || r > time.Hour {
		v.errf(p+".resend_interval", "%s: want 10s to 1h", r)
	}
	if am.BasicAuth.PasswordFile != "" && am.BasicAuth.Username == "" {
		v.errf(p+".basic_auth.username", "a password_file is set but no username")
	}
	if am.BasicAuth.Username != "" && am.BearerTokenFile != "" {
		v.errf(p+".bearer_token_file", "set basic_auth or bearer_token_file, not both")
	}
	for _, k := range slices.Sorted(maps.Keys(am.Labels)) {
		switch {
		case !labelName.MatchString(k):
			v.errf(p+".labels."+k, "%q is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)", k)
		case slices.Contains(ownLabels, k):
			v.errf(p+".labels."+k, "%q is one of lvsmon's own labels (%s)", k, strings.Join(ownLabels, ", "))
		}
	}
	v.channelFilter(c, p, am.Kinds, am.Services)
}

var (
	hookName   = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)
	headerName = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

func (v *validator) webhook(c *Config, p string, w *Webhook) {
	if !hookName.MatchString(w.Name) {
		v.errf(p+".name", "%q: want 1 to 64 letters, digits, - and _", w.Name)
	}
	switch {
	case w.URL != "" && w.URLFile != "":
		v.errf(p+".url_file", "set url or url_file, not both")
	case w.URLFile == "":
		v.httpURL(p+".url", w.URL, true)
	}
	switch w.Method {
	case "POST", "PUT", "PATCH":
	default:
		v.errf(p+".method", "%q: want POST, PUT or PATCH", w.Method)
	}
	for _, k := range slices.Sorted(maps.Keys(w.Headers)) {
		if !headerName.MatchString(k) {
			v.errf(p+".headers."+k, "%q is not a header name", k)
		}
		if strings.ContainsAny(w.Headers[k], "\r\n") {
			v.errf(p+".headers."+k, "a header value cannot hold a line break")
		}
		if _, ok := w.HeaderFiles[k]; ok {
			v.errf(p+".headers."+k, "set in headers and in header_files")
		}
	}
	for _, k := range slices.Sorted(maps.Keys(w.HeaderFiles)) {
		if !headerName.MatchString(k) {
			v.errf(p+".header_files."+k, "%q is not a header name", k)
		}
		if w.HeaderFiles[k] == "" {
			v.errf(p+".header_files."+k, "required: the file holding the value")
		}
	}
	if w.BearerTokenFile != "" && (w.Headers["Authorization"] != "" || w.HeaderFiles["Authorization"] != "") {
		v.errf(p+".bearer_token_file", "an Authorization header is set too")
	}
	v.timeout(p+".timeout", w.Timeout)
	if w.BodyTemplate != "" {
		if _, err := events.ParseTemplate(p+".body_template", w.BodyTemplate); err != nil {
			v.errf(p+".body_template", "%v", err)
		}
	}
	v.channelFilter(c, p, w.Kinds, w.Services)
}

// mail checks the mail settings (smtp, from, to, ...).
func (v *validator) mail(a *Alerting) {
	if a.SMTP.Host == "" {
		v.errf("alerting.smtp.host", "required: the mail server (relay) to send through")
	}
	if a.SMTP.Port < 1 || a.SMTP.Port > 65535 {
		v.errf("alerting.smtp.port", "%d: want 1-65535", a.SMTP.Port)
	}
	switch a.SMTP.TLS {
	case "starttls", "opportunistic", "tls", "none":
	default:
		v.errf("alerting.smtp.tls", "%q: want starttls, opportunistic, tls or none", a.SMTP.TLS)
	}
	if a.SMTP.PasswordFile != "" && a.SMTP.PasswordEnv != "" {
		v.errf("alerting.smtp.password_file", "set password_file or password_env, not both")
	}
	if (a.SMTP.PasswordFile != "" || a.SMTP.PasswordEnv != "") && a.SMTP.Username == "" {
		v.errf("alerting.smtp.username", "a password is set but no username")
	}
	if t := a.SMTP.Timeout.D(); t < time.Second || t > 10*time.Minute {
		v.errf("alerting.smtp.timeout", "%s: want 1s to 10m", t)
	}
	if _, err := mail.ParseAddress(a.From); err != nil {
		v.errf("alerting.from", "%q is not a mail address: %v", a.From, err)
	}
	if len(a.To) == 0 {
		v.errf("alerting.to", "required: at least one recipient")
	}
	for i, t := range a.To {
		if _, err := mail.ParseAddress(t); err != nil {
			v.errf(fmt.Sprintf("alerting.to[%d]", i), "%q is not a mail address: %v", t, err)
		}
	}
	for i, s := range a.DaemonStates {
		if s == "none" && len(a.DaemonStates) == 1 {
			continue
		}
		if !slices.Contains(DaemonStates, s) {
			v.errf(fmt.Sprintf("alerting.daemon_states[%d]", i), "%q: want starting, running, stopping, reloading (or none alone)", s)
		}
	}
	if g := a.GroupWindow.D(); g < 0 || g > 10*time.Minute {
		v.errf("alerting.group_window", "%s: want 0 to 10m", g)
	}
	if r := a.Reminder.D(); r != 0 && r < time.Minute {
		v.errf("alerting.reminder", "%s is too short: at least 1m (or 0 for none)", r)
	}
	if a.FlapCount < 2 {
		v.errf("alerting.flap_count", "%d: at least 2", a.FlapCount)
	}
	if w := a.FlapWindow.D(); w < time.Minute || w > 24*time.Hour {
		v.errf("alerting.flap_window", "%s: want 1m to 24h", w)
	}
	if a.RateLimit < 1 {
		v.errf("alerting.rate_limit", "%d: at least 1 mail per hour", a.RateLimit)
	}
	if a.Digest != "" {
		if _, err := cron.ParseStandard(a.Digest); err != nil {
			v.errf("alerting.digest", "%q is not a cron schedule: %v", a.Digest, err)
		}
	}
}
