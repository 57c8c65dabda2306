package app

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// The web config is read at New (a bad one fails the start) and again on
// every reload: new users take effect, a bad file or a TLS switch refuses
// the whole reload and keeps both the running config and web config.
func TestWebConfigReload(t *testing.T) {
	dir := t.TempDir()
	webFile := filepath.Join(dir, "web.yml")
	write := func(body string) {
		if err := os.WriteFile(webFile, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	cfg := testConfig(t, "127.0.0.1:0")
	opts := Options{Config: cfg, Reader: lvs.NewFake(lvs.Table{}), Log: slog.New(slog.DiscardHandler), WebConfigFile: webFile}

	write("basic_auth_users:\n  alice: plain\n")
	if _, err := New(opts); err == nil || !strings.Contains(err.Error(), "--web.config.file") || !strings.Contains(err.Error(), "basic_auth_users.alice") {
		t.Fatalf("New with a bad web config: %v", err)
	}

	write("basic_auth_users:\n  alice: $2a$04$t8sqcnquhdceJHwdKdqW9e8vLgc7WoKv4PbX1y7XvYZ5sWITvuakC\n")
	loads := 0
	opts.Load = func() (*config.Config, error) { loads++; return testConfig(t, "127.0.0.1:0"), nil }
	a, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	users := func() string { return strings.Join(a.access.Load().Users(), ",") }
	if users() != "alice" {
		t.Fatalf("users at start: %q", users())
	}

	write("basic_auth_users:\n  alice: $2a$04$t8sqcnquhdceJHwdKdqW9e8vLgc7WoKv4PbX1y7XvYZ5sWITvuakC\n  bob: $2a$04$t8sqcnquhdceJHwdKdqW9e8vLgc7WoKv4PbX1y7XvYZ5sWITvuakC\n")
	if err := a.Reload(); err != nil {
		t.Fatalf("Reload: %v", err)
	}
	if users() != "alice,bob" {
		t.Errorf("users after a reload: %q; want alice,bob", users())
	}

	running := a.cur.Load()
	write("basic_auth_users: [\n")
	if err := a.Reload(); err == nil || !strings.Contains(err.Error(), webFile) {
		t.Errorf("Reload with a broken web config: %v; want an error naming it", err)
	}
	pki := testutil.NewPKI(t, "t")
	cert, key := pki.Issue("s", testutil.CertOptions{})
	write("tls_server_config: {cert_file: " + cert + ", key_file: " + key + "}\n")
	err = a.Reload()
	if err == nil || !strings.Contains(err.Error(), "takes a restart") {
		t.Errorf("Reload turning TLS on: %v; want it refused", err)
	}
	var errs config.Errors
	if errors.As(err, &errs) {
		t.Errorf("a web config problem reported as config errors: %v", errs)
	}
	if a.cur.Load() != running || users() != "alice,bob" {
		t.Errorf("a refused reload changed the running config or users (%q)", users())
	}
	if loads != 3 {
		t.Errorf("config loads: %d; want 3", loads)
	}
}

// The pages' test mail needs mail in the config.
func TestTestAlertWithoutMail(t *testing.T) {
	a, _, _ := newTestApp(t, testConfig(t, "127.0.0.1:0"))
	if _, err := a.TestAlert(t.Context(), "alice"); !errors.Is(err, web.ErrNoMail) {
		t.Errorf("TestAlert without mail: %v", err)
	}
}
