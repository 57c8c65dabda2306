package sources

import (
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/ha"
)

// The fake keepalived is this test binary, started through a symlink
// named "keepalived" (so /proc/PID/comm reads keepalived) with these
// variables set.
const (
	fakeEnv     = "LVSMON_FAKE_KEEPALIVED" // the pid file to write
	fakeDumpEnv = "LVSMON_FAKE_DUMPDIR"    // where keepalived.json goes
	fakeFixEnv  = "LVSMON_FAKE_FIXTURE"    // file copied into the dump, read at every signal
	fakeModeEnv = "LVSMON_FAKE_MODE"       // "", "nodump", "slow", "chown"
)

// fakeKeepalived acts like keepalived's parent for the dump signal: it
// writes its pid file, and on signal 36 copies the fixture to
// DUMPDIR/keepalived.json, mode 0600, as keepalived does. Every signal is
// counted in DUMPDIR/../signals.
func fakeKeepalived() {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, syscall.Signal(36))
	pidFile, dumpDir := os.Getenv(fakeEnv), os.Getenv(fakeDumpEnv)
	tmp := pidFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		panic(err)
	}
	if err := os.Rename(tmp, pidFile); err != nil {
		panic(err)
	}
	for range ch {
		f, err := os.OpenFile(filepath.Join(dumpDir, "..", "signals"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err == nil {
			f.WriteString("36\n")
			f.Close()
		}
		mode := os.Getenv(fakeModeEnv)
		if mode == "nodump" {
			continue
		}
		data, err := os.ReadFile(os.Getenv(fakeFixEnv))
		if err != nil {
			panic(err)
		}
		out := filepath.Join(dumpDir, "keepalived.json")
		f, err = os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			panic(err)
		}
		if mode == "slow" {
			// Half now, half later: the reader must retry a partial file.
			f.Write(data[:len(data)/2])
			time.Sleep(150 * time.Millisecond)
			f.Write(data[len(data)/2:])
		} else {
			f.Write(data)
		}
		f.Close()
		if mode == "chown" {
			os.Chown(out, 65534, 65534)
		}
	}
}

// fakeKA is one running fake keepalived.
type fakeKA struct {
	dir, pidFile, dumpDir, fixture, fifo string
	cmd                                  *exec.Cmd
}

// startFake starts the fake keepalived with a fixture from
// ../testdata/keepalived and waits for its pid file.
func startFake(t *testing.T, fixture, mode string) *fakeKA {
	t.Helper()
	dir := t.TempDir()
	f := &fakeKA{
		dir:     dir,
		pidFile: filepath.Join(dir, "keepalived.pid"),
		dumpDir: filepath.Join(dir, "tmp"),
		fixture: filepath.Join(dir, "fixture.json"),
		fifo:    filepath.Join(dir, "vrrp.fifo"),
	}
	if err := os.Mkdir(f.dumpDir, 0o700); err != nil {
		t.Fatal(err)
	}
	f.setFixture(t, fixture)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "keepalived")
	if err := os.Symlink(exe, link); err != nil {
		t.Fatal(err)
	}
	f.cmd = exec.Command(link, "-test.run=^$")
	f.cmd.Env = append(os.Environ(), fakeEnv+"="+f.pidFile, fakeDumpEnv+"="+f.dumpDir, fakeFixEnv+"="+f.fixture, fakeModeEnv+"="+mode)
	f.cmd.Stdout, f.cmd.Stderr = os.Stderr, os.Stderr
	if err := f.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.kill() })
	for start := time.Now(); ; time.Sleep(5 * time.Millisecond) {
		if _, err := os.Stat(f.pidFile); err == nil {
			break
		}
		if time.Since(start) > 10*time.Second {
			t.Fatal("fake keepalived wrote no pid file")
		}
	}
	return f
}

// setFixture replaces what the next dump will contain. Fixture names
// without a slash are read from ../testdata/keepalived.
func (f *fakeKA) setFixture(t *testing.T, name string) {
	t.Helper()
	var data []byte
	if strings.HasPrefix(name, "raw:") {
		data = []byte(strings.TrimPrefix(name, "raw:"))
	} else {
		var err error
		if data, err = os.ReadFile(filepath.Join("..", "testdata", "keepalived", name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(f.fixture, data, 0o600); err != nil {
		t.Fatal(err)
	}
}

// signals is how many dump signals the fake got.
func (f *fakeKA) signals() int {
	b, _ := os.ReadFile(filepath.Join(f.dir, "signals"))
	return strings.Count(string(b), "\n")
}

func (f *fakeKA) kill() {
	if f.cmd.ProcessState == nil {
		f.cmd.Process.Kill()
		f.cmd.Wait()
	}
}

func instance(r ha.Report, name string) (ha.InstanceReport, bool) {
	for _, in := range r.Instances {
		if in.Name == name {
			return in, true
		}
	}
	return ha.InstanceReport{}, false
}

func hasState(r ha.Report, name string, st ha.State, prio int) bool {
	in, ok := instance(r, name)
	return ok && reportedState(in) == st && (prio < 0 || in.Priority == prio)
}

// stateByVIPs stands, in tests, for an instance whose source leaves the
// state to the VIPs (InstanceReport.VIPsDecide).
const stateByVIPs ha.State = 200

// reportedState is in's state, or stateByVIPs when the VIPs decide it.
func reportedState(in ha.InstanceReport) ha.State {
	if in.VIPsDecide {
		return stateByVIPs
	}
	return in.State
}

// TestKeepalivedDumpAndFIFO walks one source through the life of a
// keepalived: first dump, FIFO transitions (known and unknown instance,
// malformed and overlong lines), EOF leading to a new dump, the FIFO
// coming back, Refresh, and the process going away.
func TestKeepalivedDumpAndFIFO(t *testing.T) {
	fk := startFake(t, "master.json", "")
	if err := unix.Mkfifo(fk.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	log, logBuf := testLogger(t)
	ka := &Keepalived{PIDFile: fk.pidFile, DumpDir: fk.dumpDir, FIFO: fk.fifo, Interval: time.Hour, Log: log,
		pollEvery: 200 * time.Millisecond}
	rec, stop := runSource(t, ka.Run)

	// 1. The first report is the dump.
	_, first := rec.waitFor(t, 0, "the first dump", func(r ha.Report) bool { return true })
	if first.Err != nil || !first.Running || first.Transition || first.Source != ha.SourceKeepalived {
		t.Fatalf("first report: %s", describe(first.Report))
	}
	lvs, ok := instance(first.Report, "VI_LVS")
	want := ha.InstanceReport{Name: "VI_LVS", VRID: 51, State: ha.StateMaster, Priority: 150,
		VIPs: []netip.Addr{netip.MustParseAddr("198.51.100.100")}, Since: time.Unix(1795304741, 903117000).UTC()}
	if !ok || lvs.Name != want.Name || lvs.VRID != want.VRID || lvs.State != want.State || lvs.Priority != want.Priority ||
		len(lvs.VIPs) != 1 || lvs.VIPs[0] != want.VIPs[0] || !lvs.Since.Equal(want.Since) {
		t.Errorf("VI_LVS = %+v, want %+v", lvs, want)
	}
	if !hasState(first.Report, "VI_V6", ha.StateMaster, 150) {
		t.Errorf("VI_V6 missing or wrong: %s", describe(first.Report))
	}
	if _, err := os.Stat(filepath.Join(fk.dumpDir, "keepalived.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dump left behind after reading (it holds the password): %v", err)
	}

	// 2. A FIFO line updates one instance of the last picture.
	w, err := os.OpenFile(fk.fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { w.Close() }()
	n := rec.len()
	sent := time.Now()
	fmt.Fprintln(w, `INSTANCE "VI_LVS" BACKUP 100`)
	i, got := rec.waitFor(t, n, "VI_LVS BACKUP from the FIFO", func(r ha.Report) bool { return r.Transition })
	t.Logf("FIFO line -> report: %v", got.At.Sub(sent))
	if !hasState(got.Report, "VI_LVS", ha.StateBackup, 100) || !hasState(got.Report, "VI_V6", ha.StateMaster, 150) ||
		!got.Running || got.Err != nil || len(got.Instances) != 2 {
		t.Errorf("after BACKUP line: %s", describe(got.Report))
	}
	if in, _ := instance(got.Report, "VI_LVS"); in.VRID != 51 || len(in.VIPs) != 1 {
		t.Errorf("the line lost the dump's VRID/VIPs: %+v", in)
	}

	// 3. A malformed line and an overlong one are skipped; an unknown
	// instance is added.
	sent = time.Now()
	fmt.Fprintln(w, "garbage line from nowhere")
	fmt.Fprintln(w, strings.Repeat("x", 3*fifoLineMax))
	fmt.Fprintln(w, `GROUP "VG_1" MASTER`)
	fmt.Fprintln(w, `INSTANCE "NEW one" FAULT 42`)
	j, got := rec.waitFor(t, i+1, "the new instance", func(r ha.Report) bool { return r.Transition })
	t.Logf("FIFO lines -> report, follower already connected: %v", got.At.Sub(sent))
	if j != i+1 {
		t.Errorf("%d extra reports for skipped lines", j-i-1)
	}
	if !hasState(got.Report, "NEW one", ha.StateFault, 42) || !hasState(got.Report, "VI_LVS", ha.StateBackup, 100) || len(got.Instances) != 3 {
		t.Errorf("after the new instance: %s", describe(got.Report))
	}
	if l := logBuf.String(); !strings.Contains(l, "garbage line from nowhere") || !strings.Contains(l, "longer than the limit") {
		t.Errorf("skipped lines not logged:\n%s", l)
	}

	// 4. EOF (keepalived closed the FIFO) reads the dump again at once.
	fk.setFixture(t, "backup.json")
	before := fk.signals()
	n = rec.len()
	closed := time.Now()
	w.Close()
	_, got = rec.waitFor(t, n, "a dump after EOF", func(r ha.Report) bool { return !r.Transition })
	t.Logf("FIFO EOF -> new dump reported: %v", got.At.Sub(closed))
	if !hasState(got.Report, "VI_LVS", ha.StateBackup, 100) || len(got.Instances) != 1 || got.Err != nil {
		t.Errorf("dump after EOF: %s", describe(got.Report))
	}
	if s := fk.signals(); s != before+1 {
		t.Errorf("signals after EOF: %d, want %d", s, before+1)
	}

	// 5. The follower opens the FIFO again and reads the next writer.
	w, err = os.OpenFile(fk.fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	n = rec.len()
	sent = time.Now()
	fmt.Fprintln(w, `INSTANCE "VI_LVS" MASTER 100`)
	_, got = rec.waitFor(t, n, "a line after reopening", func(r ha.Report) bool { return r.Transition })
	t.Logf("line after EOF -> report (includes the reopen back-off): %v", got.At.Sub(sent))
	if !hasState(got.Report, "VI_LVS", ha.StateMaster, 100) {
		t.Errorf("after reopen: %s", describe(got.Report))
	}

	// 6. Refresh asks for a dump now.
	fk.setFixture(t, "master.json")
	n = rec.len()
	ka.Refresh()
	ka.Refresh() // merged into the first
	_, got = rec.waitFor(t, n, "a dump after Refresh", func(r ha.Report) bool { return !r.Transition })
	if !hasState(got.Report, "VI_LVS", ha.StateMaster, 150) || len(got.Instances) != 2 {
		t.Errorf("after Refresh: %s", describe(got.Report))
	}

	// 7. The process goes away: Running false, no error.
	n = rec.len()
	killed := time.Now()
	fk.kill()
	_, got = rec.waitFor(t, n, "Running false", func(r ha.Report) bool { return !r.Running })
	t.Logf("process killed -> Running false: %v", got.At.Sub(killed))
	if got.Err != nil || len(got.Instances) != 0 {
		t.Errorf("after the process went away: %s", describe(got.Report))
	}
	stop()

	// The password in the fixtures never shows, in reports or logs.
	for _, r := range rec.all() {
		if s := fmt.Sprintf("%+v %v", r.Report, r.Err); strings.Contains(s, "s3cr3t") {
			t.Errorf("password in a report: %s", s)
		}
	}
	if strings.Contains(logBuf.String(), "s3cr3t") {
		t.Errorf("password in the log")
	}
}

// TestKeepalivedNotRunning: every way of "keepalived is not there" is
// Running false without Err, and a pid file naming another program does
// not get the signal (its default action would kill that program).
func TestKeepalivedNotRunning(t *testing.T) {
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	other := exec.Command("sleep", "60")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Process.Kill(); other.Wait() })

	tests := []struct {
		name    string
		pid     string // pid file content; "-" for no file
		wantErr bool
		wantLog string
	}{
		{name: "no pid file", pid: "-"},
		{name: "pid of a process that is gone", pid: strconv.Itoa(dead.Process.Pid) + "\n"},
		{name: "pid of another program", pid: strconv.Itoa(other.Process.Pid) + "\n", wantLog: "not keepalived"},
		{name: "empty pid file", pid: "", wantErr: true},
		{name: "garbage pid file", pid: "twelve\n", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			pidFile := filepath.Join(dir, "keepalived.pid")
			if tt.pid != "-" {
				if err := os.WriteFile(pidFile, []byte(tt.pid), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			log, logBuf := testLogger(t)
			ka := &Keepalived{PIDFile: pidFile, DumpDir: dir, Log: log}
			r := firstReport(t, ka.Run)
			if r.Running || len(r.Instances) != 0 || (r.Err != nil) != tt.wantErr {
				t.Errorf("report %s, want Running false, err %v", describe(r), tt.wantErr)
			}
			if r.Err != nil && !strings.Contains(r.Err.Error(), pidFile) {
				t.Errorf("error %q does not name the pid file", r.Err)
			}
			if tt.wantLog != "" && !strings.Contains(logBuf.String(), tt.wantLog) {
				t.Errorf("log lacks %q:\n%s", tt.wantLog, logBuf.String())
			}
		})
	}
	if err := other.Process.Signal(syscall.Signal(0)); err != nil {
		t.Errorf("the unrelated process is gone: %v", err)
	}
}

// dumpCase is a dump that does not come, cannot be read or is written
// slowly.
type dumpCase struct {
	name, fixture, mode string
	wantIs              error  // nil: want success
	wantText            string // in the error
}

// run starts the fake keepalived in the case's mode and checks the
// source's first report.
func (tt dumpCase) run(t *testing.T) {
	fk := startFake(t, tt.fixture, tt.mode)
	ka := &Keepalived{PIDFile: fk.pidFile, DumpDir: fk.dumpDir, dumpTimeout: 500 * time.Millisecond}
	start := time.Now()
	r := firstReport(t, ka.Run)
	t.Logf("first report after %v: %s", time.Since(start).Round(time.Millisecond), describe(r))
	if tt.wantIs == nil && tt.wantText == "" {
		if r.Err != nil || !r.Running || !hasState(r, "VI_LVS", ha.StateBackup, 100) {
			t.Errorf("report %s, want VI_LVS BACKUP", describe(r))
		}
		return
	}
	if r.Err == nil || !r.Running {
		t.Fatalf("report %s, want an error with Running true", describe(r))
	}
	if tt.wantIs != nil && !errors.Is(r.Err, tt.wantIs) {
		t.Errorf("error %q is not %v", r.Err, tt.wantIs)
	}
	if !strings.Contains(r.Err.Error(), tt.wantText) || !strings.HasPrefix(r.Err.Error(), "keepalived: ") {
		t.Errorf("error %q lacks %q or the source name", r.Err, tt.wantText)
	}
	if strings.Contains(r.Err.Error(), "s3cr3t") {
		t.Errorf("error shows the password: %q", r.Err)
	}
	if _, err := os.Stat(filepath.Join(fk.dumpDir, "keepalived.json")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("dump left behind: %v", err)
	}
}

// TestKeepalivedDumpErrors: a dump that does not come or cannot be read
// is an Err naming the file; a dump written slowly is still read. (A dump
// owned by another user, which needs root to make, is in the lab tier:
// TestKeepalivedDumpOwnedByAnotherUser.)
func TestKeepalivedDumpErrors(t *testing.T) {
	for _, tt := range []dumpCase{
		{name: "no dump", fixture: "master.json", mode: "nodump", wantIs: fs.ErrNotExist, wantText: "no dump"},
		{name: "unparsable dump", fixture: "raw:[{\"data\": {\"iname\": \"VI_1\", \"auth_data\": \"s3cr3t\"", wantIs: ha.ErrInvalid, wantText: "keepalived.json"},
		{name: "slowly written dump", fixture: "backup.json", mode: "slow"},
	} {
		t.Run(tt.name, tt.run)
	}
}

// TestKeepalivedFIFOAppears: the FIFO does not exist when the source
// starts (keepalived creates it); the follower waits and picks it up.
func TestKeepalivedFIFOAppears(t *testing.T) {
	fk := startFake(t, "master.json", "")
	ka := &Keepalived{PIDFile: fk.pidFile, DumpDir: fk.dumpDir, FIFO: fk.fifo, Interval: time.Hour, pollEvery: 100 * time.Millisecond}
	rec, _ := runSource(t, ka.Run)
	rec.waitFor(t, 0, "the first dump", func(r ha.Report) bool { return r.Running })
	if err := unix.Mkfifo(fk.fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(fk.fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	sent := time.Now()
	fmt.Fprintln(w, `INSTANCE "VI_V6" STOP 150`)
	_, got := rec.waitFor(t, 0, "the line", func(r ha.Report) bool { return r.Transition })
	t.Logf("FIFO created -> line reported: %v", got.At.Sub(sent))
	if !hasState(got.Report, "VI_V6", ha.StateStop, 150) || !hasState(got.Report, "VI_LVS", ha.StateMaster, 150) {
		t.Errorf("report %s", describe(got.Report))
	}
}
