package config

import (
	"fmt"
	"net/mail"
	"slices"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lvsmon/lvsmon/events"
)

// Alerting sends mail about real servers, sorry servers and the role.
// Without this section lvsmon sends no mail.
type Alerting struct {
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
	// OutboxMax bounds the mails kept while the server is unreachable;
	// default 10000.
	OutboxMax int `yaml:"outbox_max"`
}

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

// IsMasterOnly reads MasterOnly with its default.
func (a *Alerting) IsMasterOnly() bool { return a.MasterOnly == nil || *a.MasterOnly }

// DaemonStates are ldirectord's emailalertstatus values.
var DaemonStates = []string{"starting", "running", "stopping", "reloading"}

func (c *Config) alertingDefaults() {
	a := c.Alerting
	if a == nil {
		return
	}
	if a.SubjectPrefix == "" {
		a.SubjectPrefix = "[lvsmon " + c.Director + "]"
	}
	if len(a.Kinds) == 0 {
		for _, k := range events.DefaultAlerts() {
			a.Kinds = append(a.Kinds, string(k))
		}
	}
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

func (v *validator) alerting(c *Config) {
	a := c.Alerting
	if a == nil {
		return
	}
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
	for i, k := range a.Kinds {
		if !slices.Contains(events.Selectors(), events.Kind(k)) {
			v.errf(fmt.Sprintf("alerting.kinds[%d]", i), "unknown event kind %q (known: %v)", k, events.Selectors())
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
	known := map[string]bool{}
	for _, vs := range c.VirtualServices {
		known[vs.Name] = true
		if vs.Key.Addr.IsValid() || vs.Key.IsFWMark() {
			known[vs.Key.ID()] = true
		}
	}
	for i, s := range a.Services {
		if !known[s] {
			v.errf(fmt.Sprintf("alerting.services[%d]", i), "%q is neither the name nor the id of a virtual service", s)
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
	if a.OutboxMax < 10 {
		v.errf("alerting.outbox_max", "%d: at least 10", a.OutboxMax)
	}
	if a.Digest != "" {
		if _, err := cron.ParseStandard(a.Digest); err != nil {
			v.errf("alerting.digest", "%q is not a cron schedule: %v", a.Digest, err)
		}
	}
}
