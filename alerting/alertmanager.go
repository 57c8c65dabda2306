package alerting

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// Alert names lvsmon sends to the Alertmanager.
const (
	AlertServerDown    = "LVSRealServerDown"
	AlertServiceSorry  = "LVSServiceOnSorryServer"
	AlertServiceNoneUp = "LVSServiceNoRealServers"
	AlertRoleProblem   = "LVSRoleDisagreement"
	AlertDirector      = "LVSDirectorProblem"
)

// AlertNames are every alert name lvsmon sends to the Alertmanager (each
// has its section in RUNBOOK.md).
var AlertNames = []string{AlertServerDown, AlertServiceSorry, AlertServiceNoneUp, AlertRoleProblem, AlertDirector}

// DefaultResendInterval is how often active alerts are sent again, as
// Prometheus does (its --rules.alert.resend-delay).
const DefaultResendInterval = time.Minute

// resolvedRetention is how long a resolved alert is sent again with its
// fixed endsAt, so an Alertmanager that missed the first resolve (down,
// or a cluster peer) learns it: Prometheus keeps them 15 minutes.
const resolvedRetention = 15 * time.Minute

// AlertState is the director's state now as the Alertmanager channel
// reads it: the alerts are derived from it, never from event texts, so
// the set after a restart is the set the state implies.
type AlertState struct {
	// Master says whether this director is the master of its pair.
	Master   bool
	Servers  []ServerState
	Services []ServiceState
	Roles    []RoleProblem
	Problems []DirectorProblem
}

// ServerState is one configured real server.
type ServerState struct {
	Service string // service id (lvs.ServiceKey.ID)
	Server  string // lvs.DestID
	Address string // host:port, as the web shows it
	Down    bool
	Since   time.Time // when it went down
	Reason  string    // the failing check's message
}

// ServiceState is one configured virtual service.
type ServiceState struct {
	Service string // id
	Name    string
	// Up counts the real servers that take connections, of Total.
	Up, Total int
	// Sorry: the sorry server is in use.
	Sorry bool
	Since time.Time // when the service lost its last real server, if known
}

// RoleProblem is one HA disagreement the ha Monitor holds now.
type RoleProblem struct {
	Instance string
	Kind     string // ha.VIPWithoutMaster, ...
}

// DirectorProblem is one of the director's own troubles (the status
// page's problems: a mass-failure hold, a refused IPVS write, ...).
type DirectorProblem struct {
	Source, Kind, Severity, Message string
	Since                           time.Time
}

// Alert is one alert as the Alertmanager's API v2 takes it.
type Alert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// key identifies an alert by its labels, as the Alertmanager does.
func (a *Alert) key() string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(a.Labels)) {
		fmt.Fprintf(&b, "%s=%q,", k, a.Labels[k])
	}
	return b.String()
}

// AlertPolicy says which alerts are derived and how they are labelled.
type AlertPolicy struct {
	Director string
	// Filter: server_down selects LVSRealServerDown, sorry_on the two
	// service alerts, role_disagreement LVSRoleDisagreement; services
	// limit the first three; MasterOnly holds them on a backup. Director
	// problems are always sent.
	Filter Filter
	// Labels are added to every alert (they never replace lvsmon's own).
	Labels map[string]string
	// ExternalURL is lvsmon's web as users reach it; generatorURL points
	// at the alert's page there. None when empty.
	ExternalURL string
	// RunbookBaseURL, when set, gives every alert a runbook_url
	// annotation: the base, "#", and the alert name in lower case.
	RunbookBaseURL string
	// Name is the display name of a service id; may be nil.
	Name func(string) string
}

// DeriveAlerts is the set of alerts the state implies: one per real
// server down, per service on its sorry server or without any real
// server, per HA disagreement and per director problem. Their StartsAt
// is the state's since when it knows one. The order is stable.
func DeriveAlerts(st AlertState, pol AlertPolicy) []Alert {
	var out []Alert
	svcName := func(id string) string {
		if pol.Name != nil {
			if n := pol.Name(id); n != "" {
				return n
			}
		}
		return id
	}
	gen := func(path string) string {
		if pol.ExternalURL == "" {
			return ""
		}
		return strings.TrimRight(pol.ExternalURL, "/") + path
	}
	add := func(name, severity string, labels map[string]string, ann map[string]string, since time.Time, path string) {
		l := map[string]string{}
		for k, v := range pol.Labels {
			l[k] = v
		}
		for k, v := range labels {
			l[k] = v
		}
		l["alertname"], l["director"], l["severity"] = name, pol.Director, severity
		if pol.RunbookBaseURL != "" {
			ann["runbook_url"] = strings.TrimRight(pol.RunbookBaseURL, "#") + "#" + strings.ToLower(name)
		}
		out = append(out, Alert{Labels: l, Annotations: ann, StartsAt: since, GeneratorURL: gen(path)})
	}
	held := pol.Filter.MasterOnly && !st.Master
	svcOK := func(id string) bool { return pol.Filter.Service(id, pol.Name) }
	if pol.Filter.HasKind(events.ServerDown) && !held {
		for _, s := range st.Servers {
			if !s.Down || !svcOK(s.Service) {
				continue
			}
			desc := fmt.Sprintf("Real server %s of %s is down", s.Address, svcName(s.Service))
			if s.Reason != "" {
				desc += ": " + s.Reason
			}
			add(AlertServerDown, "warning", map[string]string{"service": svcName(s.Service), "service_id": s.Service, "server": s.Address},
				map[string]string{"summary": fmt.Sprintf("%s: real server %s down", svcName(s.Service), s.Address), "description": desc},
				s.Since, "/server/"+s.Server)
		}
	}
	if pol.Filter.HasKind(events.SorryOn) && !held {
		for _, s := range st.Services {
			if !svcOK(s.Service) || s.Total == 0 || s.Up > 0 {
				continue
			}
			labels := map[string]string{"service": svcName(s.Service), "service_id": s.Service}
			if s.Sorry {
				add(AlertServiceSorry, "critical", labels, map[string]string{
					"summary":     svcName(s.Service) + ": on its sorry server",
					"description": fmt.Sprintf("None of the %d real servers of %s is up; clients get the sorry server.", s.Total, svcName(s.Service))},
					s.Since, "/service/"+s.Service)
			} else {
				add(AlertServiceNoneUp, "critical", labels, map[string]string{
					"summary":     svcName(s.Service) + ": no real server up",
					"description": fmt.Sprintf("None of the %d real servers of %s is up and it has no sorry server: clients get no answer.", s.Total, svcName(s.Service))},
					s.Since, "/service/"+s.Service)
			}
		}
	}
	if pol.Filter.HasKind(events.Disagreement) {
		for _, r := range st.Roles {
			add(AlertRoleProblem, "critical", map[string]string{"instance": r.Instance, "problem": r.Kind},
				map[string]string{"summary": fmt.Sprintf("HA instance %s: %s", r.Instance, r.Kind),
					"description": fmt.Sprintf("The role sources of instance %s disagree (%s) for longer than the grace period.", r.Instance, r.Kind)},
				time.Time{}, "/")
		}
	}
	for _, p := range st.Problems {
		sev := p.Severity
		if sev == "" {
			sev = "warning"
		}
		add(AlertDirector, sev, map[string]string{"source": p.Source, "problem": p.Kind},
			map[string]string{"summary": fmt.Sprintf("%s: %s", p.Source, p.Kind), "description": p.Message}, p.Since, "/")
	}
	slices.SortStableFunc(out, func(a, b Alert) int { return strings.Compare(a.key(), b.key()) })
	return out
}

// AlertmanagerConfig is the Alertmanager channel.
type AlertmanagerConfig struct {
	// URLs are the Alertmanagers' base URLs (http://am:9093); every
	// alert goes to each, as Prometheus sends to every member of an HA
	// cluster.
	URLs           []string
	Timeout        time.Duration // 10s when zero
	ResendInterval time.Duration // DefaultResendInterval when zero
	TLS            TLSConfig
	// Username and PasswordFile make basic auth; BearerTokenFile a
	// bearer token. Read at each send, never logged.
	Username, PasswordFile, BearerTokenFile string
	Policy                                  AlertPolicy
}

// AlertmanagerStats are the channel's counters.
type AlertmanagerStats struct {
	Active    int               `json:"active"`
	Resolved  int               `json:"resolved"` // still being sent as resolved
	Sends     map[string]uint64 `json:"sends"`    // by result: success, failure
	LastError string            `json:"last_error,omitempty"`
	LastSent  time.Time         `json:"last_sent,omitzero"`
}

type amAlert struct {
	Alert
	Resolved bool `json:"resolved,omitempty"`
}

const amStateFile = "alertmanager-state.json"

// Alertmanager sends the alert set the state implies to the
// Alertmanagers, state-based as Prometheus does: every active alert is
// sent at each change and again every ResendInterval, with its startsAt
// fixed and endsAt four resend intervals ahead, so an alert whose
// sender vanished resolves by itself; an alert that is no longer implied
// is sent with endsAt now (resolved) and again at each send for 15
// minutes. The active set is saved, so an alert that ended while lvsmon
// was stopped is resolved after the restart rather than left to expire.
// A failed send is logged, counted, and repeated at the next resend.
type Alertmanager struct {
	state func() AlertState
	clock Clock
	log   *slog.Logger
	path  string

	mu     sync.Mutex
	cfg    AlertmanagerConfig
	client *http.Client
	alerts map[string]*amAlert
	last   time.Time // last send (any outcome)
	dirty  bool      // the set changed since the last send
	stats  AlertmanagerStats
}

// NewAlertmanager checks cfg and loads the alerts saved in stateDir.
func NewAlertmanager(cfg AlertmanagerConfig, stateDir string, state func() AlertState, clock Clock, log *slog.Logger) (*Alertmanager, error) {
	if clock == nil {
		clock = realClock{}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	m := &Alertmanager{state: state, clock: clock, log: log, path: filepath.Join(stateDir, amStateFile),
		alerts: map[string]*amAlert{}, stats: AlertmanagerStats{Sends: map[string]uint64{}}}
	if err := m.Configure(cfg); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(stateDir, 0o750); err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	b, err := os.ReadFile(m.path)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("alertmanager: %w", err)
	default:
		var saved []*amAlert
		if err := json.Unmarshal(b, &saved); err != nil {
			log.Warn("alertmanager: the saved alerts are unreadable; starting from the state alone", "file", m.path, "err", err)
		}
		for _, a := range saved {
			m.alerts[a.key()] = a
		}
	}
	return m, nil
}

// Configure swaps in cfg (a reload).
func (m *Alertmanager) Configure(cfg AlertmanagerConfig) error {
	if len(cfg.URLs) == 0 {
		return errors.New("alertmanager: no url")
	}
	for _, u := range cfg.URLs {
		if p, err := url.Parse(u); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			return fmt.Errorf("alertmanager: %q is not an http(s) URL", u)
		}
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ResendInterval <= 0 {
		cfg.ResendInterval = DefaultResendInterval
	}
	c, err := cfg.TLS.client(cfg.Timeout)
	if err != nil {
		return fmt.Errorf("alertmanager: %w", err)
	}
	if _, err := authHeader(cfg); err != nil {
		return err
	}
	m.mu.Lock()
	m.cfg, m.client, m.dirty = cfg, c, true
	m.mu.Unlock()
	return nil
}

func authHeader(cfg AlertmanagerConfig) (string, error) {
	switch {
	case cfg.BearerTokenFile != "":
		t, err := readSecret(cfg.BearerTokenFile)
		if err != nil {
			return "", fmt.Errorf("alertmanager: bearer_token_file: %w", err)
		}
		return "Bearer " + t, nil
	case cfg.Username != "":
		p := ""
		if cfg.PasswordFile != "" {
			var err error
			if p, err = readSecret(cfg.PasswordFile); err != nil {
				return "", fmt.Errorf("alertmanager: password_file: %w", err)
			}
		}
		r := http.Request{Header: http.Header{}}
		r.SetBasicAuth(cfg.Username, p)
		return r.Header.Get("Authorization"), nil
	}
	return "", nil
}

// Evaluate derives the alert set from the state at now and updates the
// known alerts: new ones start, gone ones resolve (endsAt now), those
// resolved longer than 15 minutes are forgotten. It says whether the
// set changed.
func (m *Alertmanager) Evaluate(now time.Time) bool {
	m.mu.Lock()
	pol := m.cfg.Policy
	m.mu.Unlock()
	cur := DeriveAlerts(m.state(), pol)
	m.mu.Lock()
	defer m.mu.Unlock()
	seen := map[string]bool{}
	changed := false
	for _, a := range cur {
		k := a.key()
		seen[k] = true
		old := m.alerts[k]
		if old == nil || old.Resolved {
			if a.StartsAt.IsZero() || a.StartsAt.After(now) {
				a.StartsAt = now
			}
			m.alerts[k] = &amAlert{Alert: a}
			changed = true
			continue
		}
		// Annotations follow the state (a new reason); startsAt stays.
		old.Annotations, old.GeneratorURL = a.Annotations, a.GeneratorURL
	}
	for k, a := range m.alerts {
		switch {
		case !a.Resolved && !seen[k]:
			a.Resolved, a.EndsAt = true, now
			changed = true
		case a.Resolved && now.Sub(a.EndsAt) > resolvedRetention:
			delete(m.alerts, k)
			changed = true
		}
	}
	if changed {
		m.dirty = true
		m.save()
	}
	return changed
}

// save writes the alert set; a failure is logged (the state rebuilds the
// active alerts after a restart anyway).
func (m *Alertmanager) save() {
	list := make([]*amAlert, 0, len(m.alerts))
	for _, k := range slices.Sorted(maps.Keys(m.alerts)) {
		list = append(list, m.alerts[k])
	}
	b, err := json.Marshal(list)
	if err == nil {
		err = atomicfile.Write(m.path, append(b, '\n'), 0o640)
	}
	if err != nil {
		m.log.Warn("alertmanager: cannot save the alert set", "err", err)
	}
}

// Payload is what a send at now posts: every active alert with endsAt
// four resend intervals ahead, every recently resolved one with its
// endsAt, in label order.
func (m *Alertmanager) Payload(now time.Time) []Alert {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.payload(now)
}

func (m *Alertmanager) payload(now time.Time) []Alert {
	out := []Alert{}
	for _, k := range slices.Sorted(maps.Keys(m.alerts)) {
		a := m.alerts[k].Alert
		if !m.alerts[k].Resolved {
			a.EndsAt = now.Add(4 * m.cfg.ResendInterval)
		}
		out = append(out, a)
	}
	return out
}

// due says whether a send is due at now: the set changed, or a resend
// interval passed since the last send.
func (m *Alertmanager) due(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.alerts) > 0 && (m.dirty || !now.Before(m.last.Add(m.cfg.ResendInterval)))
}

// Send posts the payload to every Alertmanager. It returns the first
// failure, after trying them all.
func (m *Alertmanager) Send(ctx context.Context, now time.Time) error {
	m.mu.Lock()
	cfg, client := m.cfg, m.client
	alerts := m.payload(now)
	m.last, m.dirty = now, false
	m.mu.Unlock()
	body, err := json.Marshal(alerts)
	if err != nil {
		return err
	}
	var first error
	for _, u := range cfg.URLs {
		err := postAlerts(ctx, client, cfg, u, body)
		m.mu.Lock()
		if err != nil {
			m.stats.Sends["failure"]++
			m.stats.LastError = err.Error()
		} else {
			m.stats.Sends["success"]++
			m.stats.LastSent = now
		}
		m.mu.Unlock()
		if err != nil {
			m.log.Warn("alertmanager: sending the alerts failed; they go again at the next resend", "url", u, "alerts", len(alerts), "err", err)
			if first == nil {
				first = err
			}
		}
	}
	return first
}

func postAlerts(ctx context.Context, client *http.Client, cfg AlertmanagerConfig, base string, body []byte) error {
	auth, err := authHeader(cfg)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(base, "/")+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lvsmon")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	text, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s: %s", resp.Status, strings.TrimSpace(string(text)))
	}
	return nil
}

// Stats returns the channel's counters.
func (m *Alertmanager) Stats() AlertmanagerStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.stats
	s.Sends = maps.Clone(m.stats.Sends)
	s.Active, s.Resolved = 0, 0
	for _, a := range m.alerts {
		if a.Resolved {
			s.Resolved++
		} else {
			s.Active++
		}
	}
	return s
}

// evalEvery is how often Run reads the state.
const evalEvery = time.Second

// Run evaluates every second and on wake, and sends when due, until ctx
// ends.
func (m *Alertmanager) Run(ctx context.Context, wake <-chan struct{}) error {
	for {
		now := m.clock.Now()
		m.Evaluate(now)
		if m.due(now) {
			m.Send(ctx, now)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-wake:
		case <-m.clock.After(evalEvery):
		}
	}
}
