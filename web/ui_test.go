package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

const rs1ID = "tcp_198.51.100.10_80__10.1.1.2_80"

// uiFixture is a server with users alice and bob, a fake control and
// graphs; anonymous is web.anonymous ("" for the default).
func uiFixture(t *testing.T, anonymous string) (*Server, *fakeControl) {
	t.Helper()
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	extra := ""
	if anonymous != "" {
		extra = ", anonymous: " + anonymous
	}
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {api_token: \"0123456789abcdef-token\""+extra+"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := LoadAccess(writeFile(t, t.TempDir(), "web.yml", "basic_auth_users:\n  alice: "+hash(t, "wonderland")+"\n  bob: "+hash(t, "builder")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeControl{}
	s.src.Config, s.src.Control, s.src.Graphs = func() *config.Config { return cfg }, fc, &fakeGrapher{}
	s.src.Access = func() *Access { return acc }
	// the routes that depend on Graphs and Control are made in New
	s = New(s.src, s.log)
	return s, fc
}

// browser sends requests as a browser would: with its cookies, an
// Accept for HTML, from one address.
type browser struct {
	t      *testing.T
	s      *Server
	remote string
	cookie string
}

func (b *browser) do(method, path string, form url.Values, hdr ...string) *httptest.ResponseRecorder {
	b.t.Helper()
	var req *http.Request
	if form != nil {
		req = httptest.NewRequest(method, path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		req = httptest.NewRequest(method, path, nil)
	}
	req.Host, req.RemoteAddr = "127.0.0.1:9160", b.remote
	req.Header.Set("Accept", "text/html,application/xhtml+xml")
	if b.cookie != "" {
		req.Header.Set("Cookie", sessionCookie+"="+b.cookie)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i] == "Host" {
			req.Host = hdr[i+1]
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	b.s.Handler().ServeHTTP(rec, req)
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie {
			b.cookie = ck.Value
		}
	}
	return rec
}

var csrfRe = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the form token on the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	rec := b.do("GET", path, nil)
	m := csrfRe.FindStringSubmatch(rec.Body.String())
	if m == nil {
		b.t.Fatalf("GET %s: %d, no CSRF token in the page:\n%s", path, rec.Code, rec.Body)
	}
	return m[1]
}

func (b *browser) login(user, pw string) *httptest.ResponseRecorder {
	return b.do("POST", "/login", url.Values{"user": {user}, "password": {pw}, "next": {"/server/" + rs1ID}})
}

func TestLoginAndSession(t *testing.T) {
	s, _ := uiFixture(t, "")
	b := &browser{t: t, s: s, remote: "192.0.2.1:5000"}

	// Without a session a browser is sent to the login page, others get 401.
	rec := b.do("GET", "/service/tcp_198.51.100.10_80?range=day", nil)
	if rec.Code != 303 || rec.Header().Get("Location") != "/login?next=%2Fservice%2Ftcp_198.51.100.10_80%3Frange%3Dday" {
		t.Fatalf("a page without a session: %d %q", rec.Code, rec.Header().Get("Location"))
	}
	if rec := request(s, "GET", "/api/v1/status", "127.0.0.1:9160", "192.0.2.2:1", ""); rec.Code != 401 {
		t.Errorf("the API without credentials: %d", rec.Code)
	}
	if rec := b.do("GET", "/login?next=/x", nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="password"`) {
		t.Fatalf("the login page: %d\n%s", rec.Code, rec.Body)
	}
	for _, h := range []string{"Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options"} {
		if rec.Header().Get(h) == "" {
			t.Errorf("the login page lacks %s", h)
		}
	}
	if rec := b.login("alice", "builder"); rec.Code != 401 || !strings.Contains(rec.Body.String(), "Wrong user or password") || b.cookie != "" {
		t.Fatalf("a wrong password: %d, cookie %q\n%s", rec.Code, b.cookie, rec.Body)
	}
	rec = b.login("alice", "wonderland")
	if rec.Code != 303 || rec.Header().Get("Location") != "/server/"+rs1ID || b.cookie == "" {
		t.Fatalf("sign in: %d %q cookie %q", rec.Code, rec.Header().Get("Location"), b.cookie)
	}
	ck := rec.Result().Cookies()[0]
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Secure || ck.Path != "/" {
		t.Errorf("session cookie %+v: want HttpOnly, SameSite=Strict, not Secure over plain HTTP, Path /", ck)
	}
	page := b.do("GET", "/", nil)
	if page.Code != 200 || !strings.Contains(page.Body.String(), "signed in as <strong>alice</strong>") {
		t.Fatalf("the status page signed in: %d\n%s", page.Code, page.Body)
	}
	// Another site's page cannot sign out the operator.
	if rec := b.do("POST", "/logout", url.Values{"csrf": {"forged"}}); rec.Code != 403 {
		t.Errorf("logout with a forged token: %d", rec.Code)
	}
	if rec := b.do("POST", "/logout", url.Values{"csrf": {b.csrf("/")}}); rec.Code != 303 {
		t.Fatalf("logout: %d %s", rec.Code, rec.Body)
	}
	old := b.cookie
	if rec := b.do("GET", "/", nil); rec.Code != 303 {
		t.Errorf("the old session after logout: %d", rec.Code)
	}
	if s.sessions.get(old) != nil {
		t.Error("the session outlived its logout")
	}
}

func TestLoginRateLimited(t *testing.T) {
	s, _ := uiFixture(t, "")
	b := &browser{t: t, s: s, remote: "192.0.2.9:5000"}
	codes := ""
	for range 6 {
		codes += fmt.Sprint(b.login("alice", "guess").Code, " ")
	}
	if codes != "401 401 401 401 429 429 " {
		t.Errorf("wrong passwords: %s; want 4×401 then 429", codes)
	}
	if rec := b.login("alice", "wonderland"); rec.Code != 429 || b.cookie != "" {
		t.Errorf("the right password during the block: %d; want 429 and no session", rec.Code)
	}
}

func TestActionsFromThePages(t *testing.T) {
	s, fc := uiFixture(t, "")
	b := &browser{t: t, s: s, remote: "192.0.2.3:5000"}
	drain := "/ui/servers/" + rs1ID + "/drain"
	if rec := b.do("POST", drain, url.Values{"confirm": {"yes"}}); rec.Code != 401 && rec.Code != 403 {
		t.Fatalf("an action without a session: %d", rec.Code)
	}
	b.login("alice", "wonderland")
	page := b.do("GET", "/server/"+rs1ID, nil).Body.String()
	if !strings.Contains(page, `action="`+drain+`"`) || !strings.Contains(page, "<th scope=\"row\">health</th>") {
		t.Fatalf("the server page lacks its state or the drain form:\n%s", page)
	}
	tok := b.csrf("/server/" + rs1ID)
	for _, tc := range []struct {
		name string
		form url.Values
		hdr  []string
		code int
	}{
		{"no token", url.Values{"confirm": {"yes"}}, nil, 403},
		{"a wrong token", url.Values{"csrf": {tok + "x"}, "confirm": {"yes"}}, nil, 403},
		{"another site", url.Values{"csrf": {tok}, "confirm": {"yes"}}, []string{"Origin", "http://evil.example"}, 403},
		{"another Host", url.Values{"csrf": {tok}, "confirm": {"yes"}}, []string{"Host", "evil.example"}, 421},
	} {
		rec := b.do("POST", drain, tc.form, tc.hdr...)
		if rec.Code != tc.code {
			t.Errorf("%s: %d %s; want %d", tc.name, rec.Code, rec.Body, tc.code)
		}
	}
	if len(fc.set) != 0 {
		t.Fatalf("refused forms changed something: %v", fc.set)
	}
	// The first POST asks; the confirmed one acts, as alice.
	rec := b.do("POST", drain, url.Values{"csrf": {tok}}, "Origin", "http://127.0.0.1:9160")
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `name="confirm" value="yes"`) || len(fc.set) != 0 {
		t.Fatalf("the confirmation step: %d, set %v\n%s", rec.Code, fc.set, rec.Body)
	}
	if !strings.Contains(rec.Body.String(), `name="comment"`) {
		t.Error("the confirmation has no comment field")
	}
	if rec := b.do("POST", drain, url.Values{"csrf": {tok}, "confirm": {"yes"}, "comment": {"two\nlines"}}); rec.Code != 400 || len(fc.set) != 0 {
		t.Fatalf("a comment of two lines: %d, set %v", rec.Code, fc.set)
	}
	rec = b.do("POST", drain, url.Values{"csrf": {tok}, "confirm": {"yes"}, "comment": {" replacing a disk "}})
	if rec.Code != 303 || rec.Header().Get("Location") != "/server/"+rs1ID {
		t.Fatalf("confirmed drain: %d %q %s", rec.Code, rec.Header().Get("Location"), rec.Body)
	}
	if want := rs1ID + " drain replacing a disk"; len(fc.set) != 1 || fc.set[0] != want {
		t.Errorf("control got %v; want %q", fc.set, want)
	}
	if len(fc.by) != 1 || fc.by[0] != "alice (web, 192.0.2.3)" {
		t.Errorf("the action's actor: %v", fc.by)
	}
	if rec := b.do("POST", "/ui/servers/tcp_198.51.100.10_80__10.9.9.9_80/drain", url.Values{"csrf": {tok}, "confirm": {"yes"}}); rec.Code != 404 {
		t.Errorf("an unknown server: %d", rec.Code)
	}
	if rec := b.do("POST", "/ui/guard/release", url.Values{"csrf": {tok}, "confirm": {"yes"}}); rec.Code != 303 || fc.releases != 1 {
		t.Errorf("release from the page: %d, %d releases", rec.Code, fc.releases)
	}
	if rec := b.do("POST", "/ui/reload", url.Values{"csrf": {tok}, "confirm": {"yes"}}); rec.Code != 303 {
		t.Errorf("reload from the page: %d", rec.Code)
	}
	if rec := b.do("POST", "/ui/test-alert", url.Values{"csrf": {tok}, "confirm": {"yes"}}); rec.Code != 200 || !strings.Contains(rec.Body.String(), "220 relay ESMTP") ||
		len(fc.tests) != 1 || fc.tests[0] != "alice (web, 192.0.2.3)" {
		t.Errorf("a test mail from the page: %d, tests %v\n%s", rec.Code, fc.tests, rec.Body)
	}
	// A session is no bearer token: the API does not take it.
	if rec := b.do("POST", "/api/v1/servers/"+rs1ID+"/enable", nil); rec.Code != 401 {
		t.Errorf("the token API with only a session: %d", rec.Code)
	}
}

func TestAnonymous(t *testing.T) {
	// read: pages and API open, actions still need a session.
	s, fc := uiFixture(t, "read")
	b := &browser{t: t, s: s, remote: "192.0.2.4:1"}
	if rec := b.do("GET", "/", nil); rec.Code != 200 || !strings.Contains(rec.Body.String(), `href="/login"`) {
		t.Errorf("anonymous read: %d, sign-in link %v", rec.Code, strings.Contains(rec.Body.String(), `href="/login"`))
	}
	if rec := b.do("POST", "/ui/servers/"+rs1ID+"/drain", url.Values{"confirm": {"yes"}}); rec.Code != 403 || len(fc.set) != 0 {
		t.Errorf("an anonymous action: %d, set %v", rec.Code, fc.set)
	}
	// none, and the default with users: nothing without credentials.
	for _, anon := range []string{"none", ""} {
		s, _ := uiFixture(t, anon)
		if rec := request(s, "GET", "/api/v1/status", "127.0.0.1:9160", "192.0.2.5:1", ""); rec.Code != 401 {
			t.Errorf("anonymous %q: the API answered %d", anon, rec.Code)
		}
		if rec := request(s, "GET", "/-/healthy", "127.0.0.1:9160", "192.0.2.5:1", ""); rec.Code != 200 {
			t.Errorf("anonymous %q: /-/healthy answered %d", anon, rec.Code)
		}
	}
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {anonymous: none}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAnonymous(cfg, nil); err == nil {
		t.Error("anonymous: none without users accepted")
	}
	if _, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {anonymous: some}\n")); err == nil || !strings.Contains(err.Error(), "web.anonymous") {
		t.Errorf("anonymous: some: %v", err)
	}
}

func TestSessionExpiry(t *testing.T) {
	clk := &fakeClock{t: time.Date(2026, 1, 1, 8, 0, 0, 0, time.UTC)}
	st := newSessions(clk.now)
	a := st.create("alice")
	clk.add(sessionIdle - time.Minute)
	if st.get(a.id) == nil {
		t.Fatal("a session used within the idle time expired")
	}
	for range 3 { // kept in use, it lives to sessionMax, not beyond
		clk.add(sessionIdle - time.Minute)
		if st.get(a.id) == nil && clk.now().Sub(a.created) <= sessionMax {
			t.Fatalf("a session in use expired after %s", clk.now().Sub(a.created))
		}
	}
	if st.get(a.id) != nil {
		t.Errorf("a session outlived sessionMax (%s old)", clk.now().Sub(a.created))
	}
	b := st.create("bob")
	clk.add(sessionIdle + time.Second)
	if st.get(b.id) != nil {
		t.Error("an idle session outlived sessionIdle")
	}
	if st.len() != 0 {
		t.Errorf("%d expired sessions kept", st.len())
	}
}

// A user removed from the web config is signed out at the next request.
func TestRemovedUserSignedOut(t *testing.T) {
	s, _ := uiFixture(t, "")
	b := &browser{t: t, s: s, remote: "192.0.2.6:1"}
	b.login("bob", "builder")
	if rec := b.do("GET", "/", nil); rec.Code != 200 {
		t.Fatalf("bob signed in: %d", rec.Code)
	}
	acc, err := LoadAccess(writeFile(t, t.TempDir(), "web.yml", "basic_auth_users:\n  alice: "+hash(t, "wonderland")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	s.src.Access = func() *Access { return acc }
	if rec := b.do("GET", "/", nil); rec.Code != 303 {
		t.Errorf("bob after his removal: %d", rec.Code)
	}
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/server/x?range=day":   "/server/x?range=day",
		"":                      "/",
		"//evil.example/":       "/",
		"/\\evil.example":       "/",
		"https://evil.example/": "/",
		"javascript:alert(1)":   "/",
		"server/x":              "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q; want %q", in, got, want)
		}
	}
}
