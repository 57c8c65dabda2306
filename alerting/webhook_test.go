package alerting

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/testutil"
)

// hookServer answers from a script of statuses (with Retry-After
// values), then 200, and keeps each request.
type hookServer struct {
	mu     sync.Mutex
	script []struct {
		code       int
		retryAfter string
	}
	reqs []*http.Request
	body []string
}

func (h *hookServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	h.mu.Lock()
	defer h.mu.Unlock()
	h.reqs = append(h.reqs, r)
	h.body = append(h.body, string(b))
	if len(h.script) > 0 {
		s := h.script[0]
		h.script = h.script[1:]
		if s.retryAfter != "" {
			w.Header().Set("Retry-After", s.retryAfter)
		}
		http.Error(w, "scripted "+http.StatusText(s.code)+" token-s3cret", s.code)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (h *hookServer) count() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.reqs)
}

func (h *hookServer) add(code int, retryAfter string) {
	h.script = append(h.script, struct {
		code       int
		retryAfter string
	}{code, retryAfter})
}

func testHook(t *testing.T, url string, mod func(*WebhookConfig)) *WebhookSender {
	t.Helper()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("token-s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := WebhookConfig{Name: "ops", URL: url, Headers: map[string]string{"X-Team": "net"}, HeaderFiles: map[string]string{"X-Token": tok},
		Filter: mustFilter(t, nil, nil, true)}
	if mod != nil {
		mod(&cfg)
	}
	s, err := NewWebhookSender(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A webhook delivery is retried on 5xx and 429 with the backoff, or
// later when the receiver's Retry-After asks so, persisted in the
// outbox; every attempt carries the same delivery id, the headers and
// the secret header read from its file; the secret never reaches the
// log, the outbox or the stats.
func TestWebhookRetriesAndRetryAfter(t *testing.T) {
	hs := &hookServer{}
	hs.add(503, "120")
	hs.add(429, "")
	hs.add(500, "Wed, 21 Oct 2015 07:28:00 GMT") // in the past: the backoff decides
	srv := httptest.NewServer(hs)
	defer srv.Close()
	dir := t.TempDir()
	o, err := OpenOutbox(dir, 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.SyncBuffer
	clk := newFakeClock()
	s := testHook(t, srv.URL, nil)
	d := NewWebhookDispatcher(o, s, DispatcherConfig{Clock: clk, Rand: func() float64 { return 0.5 }, Log: slog.New(slog.NewTextHandler(&logs, nil))})
	// A mail in the same outbox is not this dispatcher's.
	if err := o.Put(testMail(clk.Now())); err != nil {
		t.Fatal(err)
	}
	if err := o.PutWebhook(Delivery{Hook: "ops", Body: `{"x":1}`, EventSeqs: []uint64{7}}); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	for i, want := range []time.Duration{120 * time.Second, 20 * time.Second, 40 * time.Second} {
		if got := clk.nextWait(t); got != want {
			t.Fatalf("wait %d = %v, want %v", i, got, want)
		}
		var p Entry
		for _, e := range o.Pending() {
			if e.Webhook != nil {
				p = e
			}
		}
		if p.Attempts != i+1 || !p.NextAttempt.Equal(clk.Now().Add(want)) || p.Permanent {
			t.Fatalf("after failure %d: %+v", i+1, p)
		}
		// The persisted schedule: a restart reads the same.
		o2, err := OpenOutbox(dir, 10, nil)
		if err != nil {
			t.Fatal(err)
		}
		if q := o2.Pending(); len(q) != 2 || q[1].Attempts != i+1 || !q[1].NextAttempt.Equal(p.NextAttempt) {
			t.Fatalf("reopened outbox: %+v", q)
		}
		clk.Advance(want)
	}
	waitFor(t, "the delivery", func() bool { return d.Stats().Sent == 1 })
	if o.Len() != 1 {
		t.Fatalf("%d entries left, want the mail", o.Len())
	}
	hs.mu.Lock()
	id := hs.reqs[0].Header.Get("X-Lvsmon-Delivery")
	for i, r := range hs.reqs {
		if r.Header.Get("X-Lvsmon-Delivery") != id || id == "" || r.Header.Get("X-Token") != "token-s3cret" ||
			r.Header.Get("X-Team") != "net" || r.Header.Get("Content-Type") != "application/json" || r.Method != "POST" || hs.body[i] != `{"x":1}` {
			t.Errorf("request %d: %v %q", i, r.Header, hs.body[i])
		}
	}
	hs.mu.Unlock()
	st := d.Stats()
	if st.Failed != 3 || st.Queued != 0 {
		t.Errorf("stats %+v", st)
	}
	b, _ := os.ReadFile(filepath.Join(dir, o.Pending()[0].ID+".json"))
	for what, text := range map[string]string{"log": logs.String(), "stats": st.LastError, "outbox": string(b)} {
		if strings.Contains(text, "s3cret") {
			t.Errorf("the secret is in the %s: %s", what, text)
		}
	}
	if !strings.Contains(logs.String(), "webhook:ops") {
		t.Errorf("the log does not name the channel: %s", logs.String())
	}
}

// Which answers are permanent: 4xx but 408 and 429, and redirects
// (never followed); the others are retried.
func TestWebhookPermanentOrNot(t *testing.T) {
	for _, tc := range []struct {
		code      int
		permanent bool
	}{
		{400, true}, {401, true}, {404, true}, {408, false}, {410, true}, {429, false},
		{500, false}, {502, false}, {503, false}, {302, true},
	} {
		hs := &hookServer{}
		hs.add(tc.code, "")
		srv := httptest.NewServer(hs)
		s := testHook(t, srv.URL, nil)
		err := s.Deliver(t.Context(), Delivery{Hook: "ops", ID: "1", Body: "{}"})
		srv.Close()
		if err == nil || IsPermanent(err) != tc.permanent {
			t.Errorf("%d: %v, permanent %v, want %v", tc.code, err, IsPermanent(err), tc.permanent)
		}
		if err != nil && strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%d: the secret is in the error: %v", tc.code, err)
		}
	}
	// No answer at all is temporary, and the error does not quote the
	// URL's path, where receivers put their tokens.
	s := testHook(t, "http://127.0.0.1:1/services/T0/SECRETPATH", func(c *WebhookConfig) { c.Timeout = time.Second })
	err := s.Deliver(t.Context(), Delivery{Hook: "ops", ID: "1"})
	if err == nil || IsPermanent(err) || strings.Contains(err.Error(), "SECRETPATH") || !strings.Contains(err.Error(), "http://127.0.0.1:1/…") {
		t.Errorf("refused connection: %v", err)
	}
}

func TestReadURLFile(t *testing.T) {
	dir := t.TempDir()
	good, bad := filepath.Join(dir, "good"), filepath.Join(dir, "bad")
	os.WriteFile(good, []byte("https://hooks.example.com/services/SECRET\n"), 0o600)
	os.WriteFile(bad, []byte("SECRET not a url\n"), 0o600)
	if u, err := ReadURLFile(good); err != nil || u != "https://hooks.example.com/services/SECRET" {
		t.Errorf("good: %q, %v", u, err)
	}
	if _, err := ReadURLFile(bad); err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("bad: %v", err)
	}
	if _, err := ReadURLFile(filepath.Join(dir, "missing")); err == nil {
		t.Error("a missing file was read")
	}
}

// A permanent failure stays in the outbox, not retried; the next
// delivery goes.
func TestWebhookPermanentKept(t *testing.T) {
	hs := &hookServer{}
	hs.add(400, "")
	srv := httptest.NewServer(hs)
	defer srv.Close()
	o, _ := OpenOutbox(t.TempDir(), 10, nil)
	clk := newFakeClock()
	d := NewWebhookDispatcher(o, testHook(t, srv.URL, nil), DispatcherConfig{Clock: clk})
	o.PutWebhook(Delivery{Hook: "ops", Body: "1"})
	o.PutWebhook(Delivery{Hook: "ops", Body: "2"})
	runDispatcher(t, d)
	waitFor(t, "the second delivery", func() bool { return d.Stats().Sent == 1 })
	p := o.Pending()
	if len(p) != 1 || !p[0].Permanent || p[0].Webhook.Body != "1" {
		t.Fatalf("pending %+v", p)
	}
	if st := d.Stats(); st.Permanent != 1 || st.Queued != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for in, want := range map[string]time.Duration{
		"": 0, "120": 2 * time.Minute, " 5 ": 5 * time.Second, "-3": 0, "soon": 0,
		"Sun, 01 Mar 2026 12:01:30 GMT": 90 * time.Second, "Sun, 01 Mar 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, s := range []string{"", "120", "Sun, 01 Mar 2026 12:01:30 GMT", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, s string) {
		if d := parseRetryAfter(s, now); d < 0 {
			t.Errorf("parseRetryAfter(%q) = %v", s, d)
		}
	})
}

// hookEvents opens an event log in a temporary directory.
func hookEvents(t *testing.T) *events.Log {
	t.Helper()
	l, err := events.Open(t.TempDir(), 0, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func appendAll(t *testing.T, l *events.Log, evs ...events.Event) {
	t.Helper()
	for _, e := range evs {
		if _, err := l.Append(e); err != nil {
			t.Fatal(err)
		}
	}
}

func deliveries(o *Outbox, hook string) []Delivery {
	var out []Delivery
	for _, e := range o.Pending() {
		if e.Webhook != nil && e.Webhook.Hook == hook {
			out = append(out, *e.Webhook)
		}
	}
	return out
}

// The feeder: each hook takes the events its filter passes (a backup
// takes no real-server events when master only), the default body is the
// Batch JSON, a template renders its own; cursors survive a restart, and
// a delivery queued before a crash that lost the cursor's save is not
// queued twice.
func TestHookFeeder(t *testing.T) {
	l := hookEvents(t)
	appendAll(t, l, events.Event{Kind: events.ServerDown, Service: svcWeb, Server: web(0), Message: "history"})
	dir := t.TempDir()
	o, _ := OpenOutbox(filepath.Join(dir, "outbox"), 100, nil)
	all := testHook(t, "http://127.0.0.1:1/", func(c *WebhookConfig) { c.Name = "all"; c.Filter = mustFilter(t, []string{"all"}, nil, false) })
	tmpl, err := events.ParseTemplate("chat", `{"text": {{json (printf "%s: %d events, first %s" .Director (len .Events) (index .Events 0).Kind)}}}`)
	if err != nil {
		t.Fatal(err)
	}
	chat := testHook(t, "http://127.0.0.1:1/", func(c *WebhookConfig) {
		c.Name, c.Template, c.ContentType = "chat", tmpl, "application/json"
		c.Filter = mustFilter(t, []string{"server_down", "role_change"}, []string{"web"}, true)
	})
	master := true
	var kicked []string
	deps := HookDeps{Outbox: o, Events: l, Name: testName, IsMaster: func() bool { return master }, Kick: func(h string) { kicked = append(kicked, h) }}
	f, err := NewHookFeeder("lvs1", dir, []*WebhookSender{all, chat}, deps)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, l,
		events.Event{Kind: events.ServerDown, Service: svcWeb, Server: web(1), From: events.Up, To: events.Down, Reason: "refused", Actor: events.ActorChecker, Message: "m1"},
		events.Event{Kind: events.ServerDown, Service: svcDNS, Server: "dns1", Message: "m2"},
		events.Event{Kind: events.Reload, To: events.Applied, Message: "m3"},
	)
	if err := f.Step(); err != nil {
		t.Fatal(err)
	}
	da, dc := deliveries(o, "all"), deliveries(o, "chat")
	if len(da) != 1 || !slices.Equal(da[0].EventSeqs, []uint64{2, 3, 4}) || len(dc) != 1 || !slices.Equal(dc[0].EventSeqs, []uint64{2}) {
		t.Fatalf("deliveries: all %+v, chat %+v", da, dc)
	}
	var b events.Batch
	if err := json.Unmarshal([]byte(da[0].Body), &b); err != nil {
		t.Fatal(err)
	}
	if b.Version != 1 || b.Director != "lvs1" || len(b.Events) != 3 || b.Events[0].Reason != "refused" || b.Events[0].From != events.Up ||
		b.Events[0].Actor != events.ActorChecker || b.ServiceNames[svcWeb] != "web" || da[0].ContentType != "application/json" {
		t.Errorf("default body: %s", da[0].Body)
	}
	if dc[0].Body != `{"text": "lvs1: 1 events, first server_down"}` {
		t.Errorf("template body: %s", dc[0].Body)
	}
	if !slices.Equal(kicked, []string{"all", "chat"}) {
		t.Errorf("kicked %v", kicked)
	}
	// A backup: chat is master only and takes the role change only.
	master = false
	appendAll(t, l,
		events.Event{Kind: events.ServerDown, Service: svcWeb, Server: web(2), Message: "m5"},
		events.Event{Kind: events.RoleChange, Instance: "VI_1", From: "MASTER", To: "BACKUP", Message: "m6"})
	f.Step()
	if dc := deliveries(o, "chat"); len(dc) != 2 || !slices.Equal(dc[1].EventSeqs, []uint64{6}) {
		t.Fatalf("chat on a backup: %+v", dc)
	}
	// A crash after the Put and before the cursor's save: the state file
	// still has the old cursors.
	st, _ := os.ReadFile(filepath.Join(dir, hookStateFile))
	appendAll(t, l, events.Event{Kind: events.ServerDown, Service: svcWeb, Server: web(3), Message: "m7"})
	f.Step()
	os.WriteFile(filepath.Join(dir, hookStateFile), st, 0o640)
	n := len(o.Pending())
	f2, err := NewHookFeeder("lvs1", dir, []*WebhookSender{all, chat}, deps)
	if err != nil {
		t.Fatal(err)
	}
	if err := f2.Step(); err != nil {
		t.Fatal(err)
	}
	if len(o.Pending()) != n {
		t.Errorf("a restart queued again: %d entries, want %d", len(o.Pending()), n)
	}
	// A removed hook forgets its cursor; one added starts at the end.
	added := testHook(t, "http://127.0.0.1:1/", func(c *WebhookConfig) { c.Name = "new"; c.Filter = mustFilter(t, []string{"all"}, nil, false) })
	if err := f2.SetHooks([]*WebhookSender{all, added}); err != nil {
		t.Fatal(err)
	}
	f2.Step()
	if len(deliveries(o, "new")) != 0 {
		t.Errorf("a new hook got history")
	}
	appendAll(t, l, events.Event{Kind: events.Reload, To: events.Rejected, Message: "m8"})
	f2.Step()
	if d := deliveries(o, "new"); len(d) != 1 || !slices.Equal(d[0].EventSeqs, []uint64{8}) {
		t.Errorf("the new hook: %+v", d)
	}
	b2, _ := os.ReadFile(filepath.Join(dir, hookStateFile))
	if bytes.Contains(b2, []byte(`"chat"`)) {
		t.Errorf("the removed hook's cursor is kept: %s", b2)
	}
}

// A long backlog makes deliveries of at most MaxHookEvents events.
func TestHookFeederSplits(t *testing.T) {
	l := hookEvents(t)
	dir := t.TempDir()
	o, _ := OpenOutbox(filepath.Join(dir, "outbox"), 100, nil)
	h := testHook(t, "http://127.0.0.1:1/", func(c *WebhookConfig) { c.Filter = mustFilter(t, []string{"all"}, nil, false) })
	f, err := NewHookFeeder("lvs1", dir, []*WebhookSender{h}, HookDeps{Outbox: o, Events: l})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2*MaxHookEvents+5; i++ {
		appendAll(t, l, events.Event{Kind: events.ServerDown, Service: svcWeb, Server: web(i), Message: "m"})
	}
	f.Step()
	var sizes []int
	for _, d := range deliveries(o, "ops") {
		sizes = append(sizes, len(d.EventSeqs))
	}
	if !slices.Equal(sizes, []int{MaxHookEvents, MaxHookEvents, 5}) {
		t.Errorf("delivery sizes %v", sizes)
	}
}
