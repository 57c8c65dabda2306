package app

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	// Written beside and renamed, as editors do: the watcher never reads
	// half a file.
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// runImported starts an App on the foreign config file at path, read as
// lvs run reads it (LoadConfig at start and at every reload), with the
// fake kernel, checks that always pass, a data dir and port of the
// test's own. It returns the App, the fake kernel, the log and the
// status API's address.
func runImported(t *testing.T, path string) (*App, *lvs.Fake, *testutil.SyncBuffer, string) {
	t.Helper()
	logBuf := &testutil.SyncBuffer{}
	log := slog.New(slog.NewTextHandler(logBuf, nil))
	dataDir := t.TempDir()
	load := func() (*config.Config, error) {
		cfg, err := LoadConfig(path, importer.Options{ConfigID: "lvs1"}, log)
		if err != nil {
			return nil, err
		}
		cfg.DataDir, cfg.Listen, cfg.IPVS.Backend = dataDir, config.Addresses{"127.0.0.1:0"}, config.BackendFake
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		t.Fatalf("load %s: %v\n%s", path, err, logBuf)
	}
	fake := lvs.NewFake(lvs.Table{})
	up := func(context.Context, *config.VirtualService, *config.RealServer, *config.Check) error { return nil }
	a, err := New(Options{Config: cfg, Reader: fake, Load: load, ConfigPath: path, Log: log, Version: "t", Probe: up})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(a.Close)
	ready := make(chan []net.Addr, 1)
	a.ready = func(addrs []net.Addr) { ready <- addrs }
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	return a, fake, logBuf, (<-ready)[0].String()
}

func kernelServices(t *testing.T, fake *lvs.Fake) []string {
	t.Helper()
	tab, err := fake.Table(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range tab.Services {
		out = append(out, s.Key.String())
	}
	return out
}

// statusConfig is the status API's config section.
func statusConfig(t *testing.T, addr string) map[string]any {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/api/v1/status")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st struct {
		Config   map[string]any `json:"config"`
		Problems []any          `json:"problems"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		t.Fatal(err)
	}
	if st.Config != nil {
		st.Config["problems"] = st.Problems
	}
	return st.Config
}

// lvsmon run on a keepalived.conf: the import's services reach the
// kernel, the report is logged line by line with a warning summary, the
// status API and its problems say the config is imported and partial;
// an included file edited is picked up by the watcher, a new file
// matching the include too; an edit that does not import is refused
// whole and the running config kept.
func TestRunKeepalivedConf(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keepalived.conf")
	write(t, path, "global_defs {\n  router_id lvs1\n}\ninclude conf.d/*.conf\n")
	write(t, filepath.Join(dir, "conf.d", "web.conf"), "virtual_server 192.0.2.10 80 {\n  lb_kind DR\n  omega\n"+
		"  real_server 10.0.1.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n")
	a, fake, logBuf, addr := runImported(t, path)
	testutil.WaitFor(t, "the imported service in the kernel", func() bool { return len(kernelServices(t, fake)) == 1 })
	log := logBuf.String()
	for _, want := range []string{
		`level=WARN msg="imported config: unsupported" where=` + filepath.Join(dir, "conf.d", "web.conf") + `:3 directive=omega`,
		`level=WARN msg="config imported from keepalived: `, `files=2 mapped=`, "unsupported=1",
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %q:\n%s", want, log)
		}
	}
	sc := statusConfig(t, addr)
	if sc["imported_from"] != "keepalived" || sc["file"] != path || sc["unsupported"] != 1.0 || sc["partial"] != true {
		t.Errorf("status config: %v", sc)
	}
	if p := sc["problems"].([]any); len(p) != 1 || !strings.Contains(p[0].(map[string]any)["message"].(string), "imported from keepalived's "+path+": 1 directives are not supported") {
		t.Errorf("problems: %v", p)
	}

	// An included file edited: the watcher reloads.
	write(t, filepath.Join(dir, "conf.d", "web.conf"), "virtual_server 192.0.2.10 80 {\n  lb_kind DR\n"+
		"  real_server 10.0.1.1 80 {\n    TCP_CHECK {\n    }\n  }\n}\n"+
		"virtual_server 192.0.2.10 443 {\n  lb_kind DR\n  real_server 10.0.1.1 443 {\n    TCP_CHECK {\n    }\n  }\n}\n")
	testutil.WaitFor(t, "the included file's new service in the kernel", func() bool { return len(kernelServices(t, fake)) == 2 })
	if o := a.cur.Load().Origin; o.Partial() || o.Unsupported != 0 {
		t.Errorf("after the edit: %+v", o)
	}
	if sc := statusConfig(t, addr); sc["partial"] != false || len(sc["problems"].([]any)) != 0 {
		t.Errorf("status config after the edit: %v", sc)
	}
	// A new file matching the include: the watcher reloads.
	write(t, filepath.Join(dir, "conf.d", "dns.conf"), "virtual_server 192.0.2.11 53 {\n  protocol UDP\n  real_server 10.0.1.2 53 {\n  }\n}\n")
	testutil.WaitFor(t, "the new file's service in the kernel", func() bool { return len(kernelServices(t, fake)) == 3 })

	// A bad edit: refused whole, the running config kept.
	write(t, filepath.Join(dir, "conf.d", "dns.conf"), "virtual_server 192.0.2.11 53 {\n  protocol UDP\n")
	err := a.Reload()
	if err == nil || !strings.Contains(err.Error(), "dns.conf:1: unbalanced braces") {
		t.Fatalf("Reload of a broken include: %v", err)
	}
	if n := len(a.cur.Load().VirtualServices); n != 3 {
		t.Errorf("%d services running after a refused reload, want the 3 of before", n)
	}
	if !strings.Contains(logBuf.String(), `msg="config reload rejected"`) || !strings.Contains(logBuf.String(), `msg="keeping the running config" file=`+path) {
		t.Errorf("the log does not say the reload was refused:\n%s", logBuf)
	}
	if got := kernelServices(t, fake); len(got) != 3 {
		t.Errorf("kernel after a refused reload: %v", got)
	}
}

// lvsmon run on an ldirectord.cf: the service appears; an edit of the
// file reloads; an edit ldirectord itself would refuse (an unknown
// directive), or one that makes the file look like two formats, is
// refused with the running config kept.
func TestRunLdirectordCf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ldirectord.cf")
	write(t, path, "checkinterval=5\n\nvirtual=192.0.2.20:80\n\treal=10.0.2.1:80 gate\n\tservice=http\n\trequest=\"/\"\n\treceive=\"ok\"\n")
	a, fake, logBuf, addr := runImported(t, path)
	testutil.WaitFor(t, "the imported service in the kernel", func() bool { return len(kernelServices(t, fake)) == 1 })
	if !strings.Contains(logBuf.String(), `msg="config imported from ldirectord: `) {
		t.Errorf("the log lacks the summary:\n%s", logBuf)
	}
	if sc := statusConfig(t, addr); sc["imported_from"] != "ldirectord" {
		t.Errorf("status config: %v", sc)
	}

	write(t, path, "checkinterval=5\n\nvirtual=192.0.2.20:80\n\treal=10.0.2.1:80 gate\n\tservice=http\n\nvirtual=192.0.2.21:25\n\treal=10.0.2.2:25 gate\n\tservice=smtp\n")
	testutil.WaitFor(t, "the new service in the kernel", func() bool { return len(kernelServices(t, fake)) == 2 })

	for name, bad := range map[string]string{
		"unknown directive": "virtual=192.0.2.20:80\n\treal=10.0.2.1:80 gate\n\tcolour=red\n",
		"two formats":       "virtual=192.0.2.20:80\n\treal=10.0.2.1:80 gate\nvirtual_server 192.0.2.1 80 {\n}\n",
	} {
		write(t, path, bad)
		if err := a.Reload(); err == nil {
			t.Errorf("%s: the reload was applied", name)
		}
		if n := len(a.cur.Load().VirtualServices); n != 2 {
			t.Errorf("%s: %d services running after a refused reload, want 2", name, n)
		}
	}
}

// The watcher's fingerprint covers a keepalived.conf's includes and
// what its patterns match; for lvsmon's YAML it is the file's hash.
func TestFingerprint(t *testing.T) {
	dir := t.TempDir()
	main, inc := filepath.Join(dir, "k.conf"), filepath.Join(dir, "d", "a.conf")
	write(t, main, "include d/*.conf\n")
	write(t, inc, "virtual_server 192.0.2.1 80 {\n}\n")
	o := &config.Origin{Format: "keepalived", Files: []string{main, inc}, Globs: []string{filepath.Join(dir, "d", "*.conf")}}
	first := fingerprint(main, o)
	if first == ([32]byte{}) || fingerprint(main, o) != first {
		t.Fatal("the fingerprint is zero or unstable")
	}
	write(t, inc, "virtual_server 192.0.2.1 81 {\n}\n")
	second := fingerprint(main, o)
	if second == first {
		t.Error("an edited include does not change the fingerprint")
	}
	write(t, filepath.Join(dir, "d", "b.conf"), "")
	if fingerprint(main, o) == second {
		t.Error("a new file matching the include does not change the fingerprint")
	}
	if fingerprint(filepath.Join(dir, "missing"), o) != ([32]byte{}) {
		t.Error("a missing file has a fingerprint")
	}
}

// lvsmon run on piranha's lvs.cf: the service appears, the status says
// where the config came from.
func TestRunPiranhaLvsCf(t *testing.T) {
	path := filepath.Join(t.TempDir(), "lvs.cf")
	write(t, path, "service = lvs\nnetwork = direct\nvirtual www {\n  address = 192.0.2.30 eth0:1\n  active = 1\n  send = \"GET / HTTP/1.0\\r\\n\\r\\n\"\n  expect = \"HTTP\"\n"+
		"  server a {\n    address = 10.0.3.1\n    active = 1\n  }\n}\n")
	_, fake, logBuf, addr := runImported(t, path)
	testutil.WaitFor(t, "the imported service in the kernel", func() bool { return len(kernelServices(t, fake)) == 1 })
	if !strings.Contains(logBuf.String(), `level=WARN msg="imported config: unsupported" where=`+path+`:3 directive=load_monitor`) {
		t.Errorf("the log lacks load_monitor's line:\n%s", logBuf)
	}
	if sc := statusConfig(t, addr); sc["imported_from"] != "piranha" || sc["partial"] != true {
		t.Errorf("status config: %v", sc)
	}
}
