package alerting

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustFilter(t *testing.T, kinds, services []string, masterOnly bool) Filter {
	t.Helper()
	f, err := NewFilter(kinds, services, masterOnly)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// alertIDs names each alert by its alertname and the labels that tell
// alerts of one name apart.
func alertIDs(as []Alert) []string {
	var out []string
	for _, a := range as {
		s := a.Labels["alertname"]
		for _, k := range []string{"service", "server", "instance", "problem"} {
			if v, ok := a.Labels[k]; ok {
				s += " " + k + "=" + v
			}
		}
		out = append(out, s)
	}
	return out
}

// webState: service web (two servers) with 10.0.1.1 down, service dns
// with its only server down and the sorry server in use, service ftp
// with its only server down and no sorry server.
func webState() AlertState {
	return AlertState{Master: true,
		Servers: []ServerState{
			{Service: "tcp_192.0.2.10_80", Server: "tcp_192.0.2.10_80__10.0.1.1_80", Address: "10.0.1.1:80", Down: true, Since: t0, Reason: "connection refused"},
			{Service: "tcp_192.0.2.10_80", Server: "tcp_192.0.2.10_80__10.0.1.2_80", Address: "10.0.1.2:80"},
			{Service: "udp_192.0.2.53_53", Server: "udp_192.0.2.53_53__10.0.2.1_53", Address: "10.0.2.1:53", Down: true, Since: t0},
			{Service: "tcp_192.0.2.21_21", Server: "tcp_192.0.2.21_21__10.0.3.1_21", Address: "10.0.3.1:21", Down: true},
		},
		Services: []ServiceState{
			{Service: "tcp_192.0.2.10_80", Name: "web", Up: 1, Total: 2},
			{Service: "udp_192.0.2.53_53", Name: "dns", Up: 0, Total: 1, Sorry: true, Since: t0},
			{Service: "tcp_192.0.2.21_21", Name: "ftp", Up: 0, Total: 1},
			{Service: "tcp_192.0.2.99_99", Name: "empty", Total: 0},
		},
	}
}

func amNames(id string) string {
	return map[string]string{"tcp_192.0.2.10_80": "web", "udp_192.0.2.53_53": "dns", "tcp_192.0.2.21_21": "ftp"}[id]
}

func TestDeriveAlerts(t *testing.T) {
	withRole := webState()
	withRole.Roles = []RoleProblem{{Instance: "VI_1", Kind: "two_masters"}}
	withRole.Problems = []DirectorProblem{{Source: "guard", Kind: "mass_failure_hold", Severity: "critical", Message: "held"}}
	backup := withRole
	backup.Master = false
	down := func(svc string) []string {
		return map[string][]string{
			"web": {"LVSRealServerDown service=web server=10.0.1.1:80"},
			"dns": {"LVSRealServerDown service=dns server=10.0.2.1:53"},
			"ftp": {"LVSRealServerDown service=ftp server=10.0.3.1:21"},
		}[svc]
	}
	for _, tc := range []struct {
		name       string
		st         AlertState
		kinds      []string
		services   []string
		masterOnly bool
		want       []string
	}{
		{"nothing wrong", AlertState{Master: true, Services: []ServiceState{{Service: "s", Up: 2, Total: 2}}}, nil, nil, true, nil},
		{"servers and services", webState(), nil, nil, true, slices.Concat(
			down("web"), down("dns"), down("ftp"),
			[]string{"LVSServiceNoRealServers service=ftp", "LVSServiceOnSorryServer service=dns"})},
		{"services filter", webState(), nil, []string{"web", "udp_192.0.2.53_53"}, true, slices.Concat(
			down("web"), down("dns"), []string{"LVSServiceOnSorryServer service=dns"})},
		{"server_down only", webState(), []string{"server_down"}, nil, true, slices.Concat(down("web"), down("dns"), down("ftp"))},
		{"sorry_on only", webState(), []string{"sorry_on"}, nil, true, []string{"LVSServiceNoRealServers service=ftp", "LVSServiceOnSorryServer service=dns"}},
		{"role and director problems", withRole, []string{"role_disagreement"}, nil, true, []string{
			"LVSDirectorProblem problem=mass_failure_hold", "LVSRoleDisagreement instance=VI_1 problem=two_masters"}},
		{"a backup holds server alerts", backup, nil, nil, true, []string{
			"LVSDirectorProblem problem=mass_failure_hold", "LVSRoleDisagreement instance=VI_1 problem=two_masters"}},
		{"a backup without master_only", backup, []string{"server_down", "role_disagreement"}, []string{"web"}, false, slices.Concat(down("web"), []string{
			"LVSDirectorProblem problem=mass_failure_hold", "LVSRoleDisagreement instance=VI_1 problem=two_masters"})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pol := AlertPolicy{Director: "lvs1", Filter: mustFilter(t, tc.kinds, tc.services, tc.masterOnly), Name: amNames}
			got := alertIDs(DeriveAlerts(tc.st, pol))
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("alerts:\n got %q\nwant %q", got, want)
			}
		})
	}
}

// The JSON posted to the Alertmanager: labels (the extra ones beside
// lvsmon's, which win), annotations with the runbook, startsAt from the
// state, endsAt four resend intervals ahead, generatorURL on the
// external URL.
func TestAlertmanagerJSONGolden(t *testing.T) {
	st := webState()
	st.Roles = []RoleProblem{{Instance: "VI_1", Kind: "two_masters"}}
	cfg := AlertmanagerConfig{URLs: []string{"http://127.0.0.1:9093"}, Policy: AlertPolicy{Director: "lvs1", Filter: mustFilter(t, nil, nil, true),
		Labels: map[string]string{"team": "net", "severity": "ignored"}, ExternalURL: "https://lvs1.example.com:9601/",
		RunbookBaseURL: "https://git.example.com/lvsmon/RUNBOOK.md", Name: amNames}}
	m, err := NewAlertmanager(cfg, t.TempDir(), func() AlertState { return st }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(time.Minute)
	m.Evaluate(now)
	b, err := json.MarshalIndent(m.Payload(now), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	golden(t, filepath.Join("testdata", "alertmanager.golden.json"), append(b, '\n'))
}

// golden compares got with the file, rewriting it with -update.
func golden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != string(want) {
		out := filepath.Join(t.TempDir(), filepath.Base(path))
		os.WriteFile(out, got, 0o644)
		t.Errorf("%s differs: diff %s %s", path, path, out)
	}
}

// amRecorder is a fake Alertmanager: it keeps every post, and fails
// while fail is set.
type amRecorder struct {
	mu    sync.Mutex
	posts [][]Alert
	auth  []string
	fail  bool
}

func (r *amRecorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || req.URL.Path != "/api/v2/alerts" || req.Header.Get("Content-Type") != "application/json" {
		http.Error(w, "bad request "+req.Method+" "+req.URL.Path, http.StatusNotFound)
		return
	}
	if r.fail {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	b, _ := io.ReadAll(req.Body)
	var as []Alert
	if err := json.Unmarshal(b, &as); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.posts = append(r.posts, as)
	r.auth = append(r.auth, req.Header.Get("Authorization"))
}

func (r *amRecorder) last(t *testing.T) []Alert {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.posts) == 0 {
		t.Fatal("nothing posted")
	}
	return r.posts[len(r.posts)-1]
}

func (r *amRecorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.posts)
}

// tick is one round of Run at now: evaluate, send when due.
func tick(t *testing.T, m *Alertmanager, now time.Time) bool {
	t.Helper()
	m.Evaluate(now)
	if !m.due(now) {
		return false
	}
	m.Send(context.Background(), now)
	return true
}

// An alert is sent when it starts, again every resend interval with the
// same startsAt and endsAt four intervals ahead, resolved (endsAt now)
// when the state mends, sent as resolved for 15 minutes, then
// forgotten. Both Alertmanagers of a pair get every post; one that fails
// is counted and gets the next resend.
func TestAlertmanagerResendAndResolve(t *testing.T) {
	rec1, rec2 := &amRecorder{}, &amRecorder{}
	s1, s2 := httptest.NewServer(rec1), httptest.NewServer(rec2)
	defer s1.Close()
	defer s2.Close()
	pw := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pw, []byte("s3cret\n"), 0o600)
	var mu sync.Mutex
	st := AlertState{Master: true, Servers: []ServerState{{Service: "svc", Server: "svc__a", Address: "10.0.1.1:80"}}}
	state := func() AlertState { mu.Lock(); defer mu.Unlock(); return st }
	set := func(down bool) { mu.Lock(); st.Servers[0].Down = down; mu.Unlock() }
	dir := t.TempDir()
	cfg := AlertmanagerConfig{URLs: []string{s1.URL, s2.URL + "/"}, ResendInterval: time.Minute, Username: "lvsmon", PasswordFile: pw,
		Policy: AlertPolicy{Director: "lvs1", Filter: mustFilter(t, nil, nil, true)}}
	m, err := NewAlertmanager(cfg, dir, state, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tick(t, m, t0) {
		t.Fatal("sent with no alert")
	}
	set(true)
	down := t0.Add(5 * time.Second)
	if !tick(t, m, down) {
		t.Fatal("a new alert was not sent at once")
	}
	for _, r := range []*amRecorder{rec1, rec2} {
		a := r.last(t)
		if len(a) != 1 || !a[0].StartsAt.Equal(down) || !a[0].EndsAt.Equal(down.Add(4*time.Minute)) || a[0].Labels["server"] != "10.0.1.1:80" {
			t.Fatalf("first post: %+v", a)
		}
	}
	if rec1.auth[0] != "Basic bHZzbW9uOnMzY3JldA==" {
		t.Errorf("basic auth %q", rec1.auth[0])
	}
	if tick(t, m, down.Add(59*time.Second)) {
		t.Fatal("sent again before the resend interval")
	}
	rec2.mu.Lock()
	rec2.fail = true
	rec2.mu.Unlock()
	again := down.Add(time.Minute)
	if !tick(t, m, again) {
		t.Fatal("not re-sent after the resend interval")
	}
	if a := rec1.last(t); !a[0].StartsAt.Equal(down) || !a[0].EndsAt.Equal(again.Add(4*time.Minute)) {
		t.Fatalf("resend: %+v", a)
	}
	if s := m.Stats(); s.Sends["success"] != 3 || s.Sends["failure"] != 1 || s.Active != 1 || !strings.Contains(s.LastError, "503") {
		t.Errorf("stats after a failed post: %+v", s)
	}
	rec2.mu.Lock()
	rec2.fail = false
	rec2.mu.Unlock()
	set(false)
	up := again.Add(10 * time.Second)
	if !tick(t, m, up) {
		t.Fatal("the resolve was not sent at once")
	}
	for _, r := range []*amRecorder{rec1, rec2} {
		if a := r.last(t); len(a) != 1 || !a[0].StartsAt.Equal(down) || !a[0].EndsAt.Equal(up) {
			t.Fatalf("resolve: %+v", a)
		}
	}
	if s := m.Stats(); s.Active != 0 || s.Resolved != 1 {
		t.Errorf("stats after the resolve: %+v", s)
	}
	// Resolved alerts go again with the resends, their endsAt fixed.
	if !tick(t, m, up.Add(time.Minute)) || !rec1.last(t)[0].EndsAt.Equal(up) {
		t.Fatalf("resolved resend: %+v", rec1.last(t))
	}
	n := rec1.count()
	tick(t, m, up.Add(16*time.Minute))
	if s := m.Stats(); s.Resolved != 0 || rec1.count() != n {
		t.Errorf("16 minutes after the resolve: stats %+v, %d posts (want %d)", s, rec1.count(), n)
	}
}

// After a restart the alert set is the state's: an alert still implied
// keeps firing, one that ended while lvsmon was stopped is resolved
// rather than left to expire.
func TestAlertmanagerRestart(t *testing.T) {
	rec := &amRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	st := AlertState{Master: true, Servers: []ServerState{
		{Service: "svc", Server: "svc__a", Address: "10.0.1.1:80", Down: true},
		{Service: "svc", Server: "svc__b", Address: "10.0.1.2:80", Down: true}}}
	dir := t.TempDir()
	cfg := AlertmanagerConfig{URLs: []string{srv.URL}, Policy: AlertPolicy{Director: "lvs1", Filter: mustFilter(t, nil, nil, true)}}
	m, err := NewAlertmanager(cfg, dir, func() AlertState { return st }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tick(t, m, t0)
	st.Servers[1].Down = false
	later := t0.Add(10 * time.Minute)
	m2, err := NewAlertmanager(cfg, dir, func() AlertState { return st }, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !tick(t, m2, later) {
		t.Fatal("nothing sent after the restart")
	}
	got := map[string]Alert{}
	for _, a := range rec.last(t) {
		got[a.Labels["server"]] = a
	}
	if a := got["10.0.1.1:80"]; !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(later.Add(4*DefaultResendInterval)) {
		t.Errorf("the alert still firing: %+v", a)
	}
	if a := got["10.0.1.2:80"]; !a.StartsAt.Equal(t0) || !a.EndsAt.Equal(later) {
		t.Errorf("the alert that ended during the restart: %+v", a)
	}
}

func TestAlertmanagerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  AlertmanagerConfig
		want string
	}{
		{"no url", AlertmanagerConfig{}, "no url"},
		{"not http", AlertmanagerConfig{URLs: []string{"ftp://x"}}, "not an http(s) URL"},
		{"token file", AlertmanagerConfig{URLs: []string{"http://x"}, BearerTokenFile: "/nonexistent/token"}, "bearer_token_file"},
		{"ca file", AlertmanagerConfig{URLs: []string{"http://x"}, TLS: TLSConfig{CAFile: "/nonexistent/ca"}}, "ca_file"},
	} {
		if _, err := NewAlertmanager(tc.cfg, t.TempDir(), nil, nil, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}
}

// Run on a fake clock: it posts a new alert at once, then every resend
// interval and not between, and a resolve at the next evaluation.
func TestAlertmanagerRunFakeClock(t *testing.T) {
	rec := &amRecorder{}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	var mu sync.Mutex
	st := AlertState{Master: true, Servers: []ServerState{{Service: "svc", Server: "svc__a", Address: "10.0.1.1:80", Down: true}}}
	state := func() AlertState { mu.Lock(); defer mu.Unlock(); return st }
	clk := newFakeClock()
	cfg := AlertmanagerConfig{URLs: []string{srv.URL}, ResendInterval: 10 * time.Second, Policy: AlertPolicy{Director: "lvs1", Filter: mustFilter(t, nil, nil, true)}}
	m, err := NewAlertmanager(cfg, t.TempDir(), state, clk, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx, nil); close(done) }()
	defer func() { cancel(); <-done }()
	// settled waits until Run sleeps on the clock again: its pass is over.
	settled := func() { waitFor(t, "Run to sleep", func() bool { return clk.waiting() == 1 }) }
	settled()
	start := clk.Now()
	var at []time.Duration
	seen := 0
	for i := 0; i < 25; i++ {
		if n := rec.count(); n > seen {
			at = append(at, clk.Now().Sub(start))
			seen = n
		}
		clk.Advance(evalEvery)
		settled()
	}
	if want := []time.Duration{0, 10 * time.Second, 20 * time.Second}; !slices.Equal(at, want) {
		t.Fatalf("posts at %v, want %v", at, want)
	}
	mu.Lock()
	st.Servers[0].Down = false
	mu.Unlock()
	clk.Advance(evalEvery)
	settled()
	if a := rec.last(t); rec.count() != 4 || len(a) != 1 || !a[0].EndsAt.Equal(clk.Now()) {
		t.Fatalf("after the server came back: %d posts, last %+v", rec.count(), a)
	}
}
