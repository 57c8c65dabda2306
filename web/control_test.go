package web

import (
	"context"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"bEaReR abc", "abc", true},
		{"Bearer   abc", "abc", true}, // 1*SP
		{"Bearer abc def", "abc def", true},
		{"Bearer ABC", "ABC", true}, // the token keeps its case
		{"", "", false},
		{"Bearer", "", false},
		{"Bearer ", "", false},
		{"Basic YWJjOmRlZg==", "", false},
		{"Bearerabc", "", false},
		{"Token abc", "", false},
		{" Bearer abc", "", false},
	} {
		got, ok := bearerToken(tc.header)
		if got != tc.token || ok != tc.ok {
			t.Errorf("bearerToken(%q) = %q, %v; want %q, %v", tc.header, got, ok, tc.token, tc.ok)
		}
	}
}

type fakeControl struct {
	set      []string
	by       []string
	tests    []string
	releases int
}

func (f *fakeControl) SetOverride(id, mode, by, comment string) error {
	if id != "tcp_198.51.100.10_80__10.1.1.2_80" {
		return ErrUnknownServer
	}
	f.set = append(f.set, strings.TrimSpace(id+" "+mode+" "+comment))
	f.by = append(f.by, by)
	return nil
}
func (f *fakeControl) Reload() error { return nil }
func (f *fakeControl) TestAlert(_ context.Context, by string) ([]string, error) {
	f.tests = append(f.tests, by)
	return []string{"220 relay ESMTP", "250 OK"}, nil
}
func (f *fakeControl) ReleaseHolds(by string) int {
	f.releases++
	return 2
}

// writeAPIFixture is a server with a write API token and a fake control.
func writeAPIFixture(t *testing.T) (*Server, *fakeControl) {
	t.Helper()
	s, _, _ := fixture(t)
	cfg, err := config.Parse("t.yaml", []byte(cfgYAML+"web: {api_token: \"0123456789abcdef-token\"}\n"))
	if err != nil {
		t.Fatal(err)
	}
	fc := &fakeControl{}
	s.src.Config, s.src.Control = func() *config.Config { return cfg }, fc
	return s, fc
}

// postAuth POSTs to path with an Authorization header (none when "").
func postAuth(s *Server, path, auth string) *httptest.ResponseRecorder {
	req := httptest.NewRequest("POST", path, nil)
	req.Host = "127.0.0.1:9160"
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	s.Handler().ServeHTTP(rec, req)
	return rec
}

// The guard's holds end on an operator's word, with the token only.
func TestGuardReleaseAPI(t *testing.T) {
	s, fc := writeAPIFixture(t)
	for _, tc := range []struct {
		auth string
		code int
		body string
	}{
		{"", 401, "bearer token"},
		{"Bearer 0123456789abcdef-token", 200, `"released":2`},
	} {
		rec := postAuth(s, "/api/v1/guard/release", tc.auth)
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("Authorization %q: %d %s, want %d with %s", tc.auth, rec.Code, rec.Body.String(), tc.code, tc.body)
		}
	}
	if fc.releases != 1 {
		t.Errorf("released %d times", fc.releases)
	}
}

// TestWriteAPIAuth: the token is checked whatever the scheme's case.
func TestWriteAPIAuth(t *testing.T) {
	s, fc := writeAPIFixture(t)
	for _, tc := range []struct {
		auth string
		code int
	}{
		{"Bearer 0123456789abcdef-token", 200},
		{"bearer 0123456789abcdef-token", 200},
		{"BEARER  0123456789abcdef-token", 200},
		{"Bearer 0123456789ABCDEF-token", 401},
		{"Basic 0123456789abcdef-token", 401},
		{"", 401},
	} {
		rec := postAuth(s, "/api/v1/servers/tcp_198.51.100.10_80__10.1.1.2_80/drain", tc.auth)
		if rec.Code != tc.code {
			t.Errorf("Authorization %q: %d %s, want %d", tc.auth, rec.Code, rec.Body.String(), tc.code)
		}
		if rec.Code == 401 && rec.Header().Get("WWW-Authenticate") == "" {
			t.Errorf("Authorization %q: 401 without WWW-Authenticate", tc.auth)
		}
	}
	if len(fc.set) != 3 {
		t.Errorf("overrides set: %q", fc.set)
	}
}

// An override may carry a comment in a JSON body: one line, bounded;
// anything else is refused 400 and sets nothing.
func TestOverrideComment(t *testing.T) {
	s, fc := writeAPIFixture(t)
	const path = "/api/v1/servers/tcp_198.51.100.10_80__10.1.1.2_80/drain"
	for _, tc := range []struct {
		name, body string
		code       int
		set, err   string
	}{
		{"no body", "", 200, "tcp_198.51.100.10_80__10.1.1.2_80 drain", ""},
		{"empty object", "{}", 200, "tcp_198.51.100.10_80__10.1.1.2_80 drain", ""},
		{"comment", `{"comment": "kernel upgrade, OPS-123"}`, 200, "tcp_198.51.100.10_80__10.1.1.2_80 drain kernel upgrade, OPS-123", ""},
		{"unknown key", `{"reason": "x"}`, 400, "", "unknown field"},
		{"not JSON", `drain it`, 400, "", "the body is not"},
		{"newline", `{"comment": "a\nb"}`, 400, "", "one line"},
		{"too long", `{"comment": "` + strings.Repeat("x", MaxOverrideComment+1) + `"}`, 400, "", "at most 1024"},
		{"far too long", `{"comment": "` + strings.Repeat("x", 10*MaxOverrideComment) + `"}`, 400, "", "the body is not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fc.set = nil
			req := httptest.NewRequest("POST", path, strings.NewReader(tc.body))
			req.Host = "127.0.0.1:9160"
			req.Header.Set("Authorization", "Bearer 0123456789abcdef-token")
			rec := httptest.NewRecorder()
			s.Handler().ServeHTTP(rec, req)
			if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.err) {
				t.Errorf("%d %s, want %d with %q", rec.Code, rec.Body.String(), tc.code, tc.err)
			}
			if got := strings.Join(fc.set, "|"); got != tc.set {
				t.Errorf("set %q, want %q", got, tc.set)
			}
		})
	}
}
