package graphs

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ziutek/rrd"

	"github.com/lvsmon/lvsmon/lvs"
)

var (
	quiet = slog.New(slog.NewTextHandler(io.Discard, nil))
	web   = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("198.51.100.10"), 80)
	web6  = lvs.AddrKey(lvs.TCP, netip.MustParseAddr("2001:db8::10"), 443)
	rs1   = lvs.DestKey{Addr: netip.MustParseAddr("10.1.1.2"), Port: 80}
	rs2   = lvs.DestKey{Addr: netip.MustParseAddr("10.1.2.2"), Port: 80}
	rs6   = lvs.DestKey{Addr: netip.MustParseAddr("2001:db8::1:2"), Port: 443}
)

// snap builds a snapshot at unix second t where every counter of rs1 is
// c and of rs2 is 2c.
func snap(t int64, c uint64) *lvs.Snapshot {
	st := func(n uint64) lvs.Stats {
		return lvs.Stats{Conns: n, InPkts: 10 * n, OutPkts: 12 * n, InBytes: 1000 * n, OutBytes: 9000 * n}
	}
	tab := lvs.Table{Services: []lvs.Service{
		{Key: web, Scheduler: "wrr", Stats: st(3 * c), Dests: []lvs.Dest{
			{Key: rs1, Weight: 2, ActiveConns: 5, InactiveConns: 1, Stats: st(c)},
			{Key: rs2, Weight: 1, ActiveConns: 7, InactiveConns: 2, Stats: st(2 * c)},
		}},
		{Key: web6, Scheduler: "rr", Stats: st(c), Dests: []lvs.Dest{{Key: rs6, Weight: 1, ActiveConns: 1, Stats: st(c)}}},
	}}
	tab.SumTotals()
	return &lvs.Snapshot{Time: time.Unix(t, 0), Table: tab}
}

func newStore(t *testing.T, step time.Duration) *Store {
	t.Helper()
	s, err := NewStore(StoreOptions{Dir: filepath.Join(t.TempDir(), "rrd"), Step: step, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// fetch reads one data source of a file at the step resolution.
func fetch(t *testing.T, path, ds string, from, to int64, step time.Duration) []float64 {
	t.Helper()
	r, err := rrd.Fetch(path, "AVERAGE", time.Unix(from, 0), time.Unix(to, 0), step)
	if err != nil {
		t.Fatalf("fetch %s: %v", path, err)
	}
	defer r.FreeValues()
	idx := -1
	for i, n := range r.DsNames {
		if n == ds {
			idx = i
		}
	}
	if idx < 0 {
		t.Fatalf("no ds %s in %v", ds, r.DsNames)
	}
	var out []float64
	for row := 0; row < r.RowCnt; row++ {
		out = append(out, r.ValueAt(idx, row))
	}
	return out
}

func TestValuesComeBackOut(t *testing.T) {
	s := newStore(t, 10*time.Second)
	t0 := int64(1_800_000_000) // a multiple of 10
	// 10 new connections per step on rs1 (1/s), a reset at step 4.
	counts := []uint64{100, 110, 120, 130, 5, 15, 25}
	for i, c := range counts {
		s.Update(snap(t0+int64(i)*10, c))
	}
	h := s.Health()
	if h.Errors != 0 || h.Files != 6 || len(h.FailingFiles) != 0 {
		t.Fatalf("health = %+v", h)
	}
	f := serverFile(s.Dir(), web, rs1)
	conns := fetch(t, f, "conns", t0+10, t0+60, 10*time.Second)
	// A fetch from t0+10 returns rows ending at t0+20, t0+30...: rates
	// of 1/s, except the step of the reset (t0+40), which is unknown.
	want := []float64{1, 1, math.NaN(), 1, 1}
	if len(conns) < len(want) {
		t.Fatalf("rows = %v", conns)
	}
	for i, w := range want {
		g := conns[i]
		if math.IsNaN(w) != math.IsNaN(g) || (!math.IsNaN(w) && math.Abs(g-w) > 1e-9) {
			t.Errorf("conns row %d = %v, want %v (all %v)", i, g, w, conns)
		}
	}
	if v := fetch(t, f, "inbytes", t0+20, t0+30, 10*time.Second)[0]; v != 1000 {
		t.Errorf("inbytes/s = %v, want 1000", v)
	}
	if v := fetch(t, f, "active", t0+20, t0+30, 10*time.Second)[0]; v != 5 {
		t.Errorf("active = %v, want 5", v)
	}
	if v := fetch(t, serviceFile(s.Dir(), web), "weight", t0+20, t0+30, 10*time.Second)[0]; v != 3 {
		t.Errorf("service weight = %v, want 3", v)
	}
	if v := fetch(t, serviceFile(s.Dir(), web), "active", t0+20, t0+30, 10*time.Second)[0]; v != 12 {
		t.Errorf("service active = %v, want 12", v)
	}
	if v := fetch(t, directorFile(s.Dir()), "conns", t0+20, t0+30, 10*time.Second)[0]; v != 4 {
		t.Errorf("director conns/s = %v, want 4 (3 web + 1 web6)", v)
	}
	if _, err := os.Stat(serverFile(s.Dir(), web6, rs6)); err != nil {
		t.Errorf("IPv6 server file: %v", err)
	}
	if !strings.Contains(serverFile(s.Dir(), web6, rs6), "tcp_2001-db8--10_443/2001-db8--1-2_443.rrd") {
		t.Errorf("IPv6 file name %s", serverFile(s.Dir(), web6, rs6))
	}
}

// TestLayoutWithLibrrdInfo reads a new file's layout back through
// librrd's info (TestLayoutWithRrdtoolInfo, lab tier, has Debian's rrdtool
// program read it).
func TestLayoutWithLibrrdInfo(t *testing.T) {
	s := newStore(t, 10*time.Second)
	s.Update(snap(1_800_000_000, 1))
	info, err := rrd.Info(directorFile(s.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	for key, want := range map[string]string{
		"step":                 "10",
		"ds.type":              "map[active:GAUGE conns:DERIVE inactive:GAUGE inbytes:DERIVE inpkts:DERIVE outbytes:DERIVE outpkts:DERIVE weight:GAUGE]",
		"ds.min":               "map[active:0 conns:0 inactive:0 inbytes:0 inpkts:0 outbytes:0 outpkts:0 weight:0]",
		"ds.minimal_heartbeat": "map[active:20 conns:20 inactive:20 inbytes:20 inpkts:20 outbytes:20 outpkts:20 weight:20]",
		// step for a day, 1 min for a week, 5 min for a month, 1 h for
		// 13 months, 1 day for 5 years; each as AVERAGE and MAX
		"rra.cf":          "[AVERAGE MAX AVERAGE MAX AVERAGE MAX AVERAGE MAX AVERAGE MAX]",
		"rra.rows":        "[8640 8640 10080 10080 8928 8928 9504 9504 1830 1830]",
		"rra.pdp_per_row": "[1 1 6 6 30 30 360 360 8640 8640]",
	} {
		if got := fmt.Sprint(info[key]); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
}

func TestRRAsPerStep(t *testing.T) {
	tests := []struct {
		step time.Duration
		want []rra
	}{
		{time.Second, []rra{{1, 86400}, {60, 10080}, {300, 8928}, {3600, 9504}, {86400, 1830}}},
		{60 * time.Second, []rra{{1, 10080}, {5, 8928}, {60, 9504}, {1440, 1830}}},
		{7 * time.Second, []rra{{1, 12343}, {9, 9600}, {43, 8899}, {514, 9510}, {12343, 1830}}},
	}
	for _, tc := range tests {
		got := rras(tc.step, DefaultArchives)
		if len(got) != len(tc.want) {
			t.Errorf("step %v: %v, want %v", tc.step, got, tc.want)
			continue
		}
		for i := range got {
			if got[i] != tc.want[i] {
				t.Errorf("step %v: rra %d = %v, want %v", tc.step, i, got[i], tc.want[i])
			}
		}
	}
}

func TestSameSecondAndClockJumps(t *testing.T) {
	s := newStore(t, time.Second)
	t0 := int64(1_800_000_000)
	s.Update(snap(t0, 1))
	s.Update(snap(t0, 2))   // same second: rrdtool would refuse it
	s.Update(snap(t0-5, 3)) // the clock jumped back
	if h := s.Health(); h.Errors != 0 || h.Updates != 6 {
		t.Fatalf("health = %+v", h)
	}
	s.Update(snap(t0+1, 4))
	if h := s.Health(); h.Errors != 0 || h.Updates != 12 {
		t.Fatalf("health after time moved on = %+v", h)
	}
}

func TestDamagedFilesAreReportedAndTheRestUpdate(t *testing.T) {
	s := newStore(t, 10*time.Second)
	t0 := int64(1_800_000_000)
	s.Update(snap(t0, 1))
	bad := serverFile(s.Dir(), web, rs1)
	// Truncate one file (it is replaced, see TestDamagedFilesAreReplaced)
	// and make another service's directory unwritable by replacing it
	// with a file.
	if err := os.Truncate(bad, 100); err != nil {
		t.Fatal(err)
	}
	s2 := newStore(t, 10*time.Second) // a restart: files are opened anew
	s2.opt.Dir = s.Dir()
	os.RemoveAll(filepath.Join(s.Dir(), web6.ID()))
	os.WriteFile(filepath.Join(s.Dir(), web6.ID()), []byte("not a directory"), 0o644)
	s2.Update(snap(t0+10, 2))
	h := s2.Health()
	if h.Errors != 3 || len(h.FailingFiles) != 2 || h.Damaged != 1 || len(h.DamagedFiles) != 1 || h.DamagedFiles[0].Path != bad {
		t.Fatalf("health = %+v", h)
	}
	var paths []string
	for _, f := range h.FailingFiles {
		paths = append(paths, f.Path)
	}
	joined := strings.Join(paths, " ")
	for _, want := range []string{serviceFile(s.Dir(), web6), serverFile(s.Dir(), web6, rs6)} {
		if !strings.Contains(joined, want) {
			t.Errorf("failing files %v lack %s", paths, want)
		}
	}
	// rs2, the web service and the director kept updating.
	if v := fetch(t, serverFile(s.Dir(), web, rs2), "conns", t0, t0+10, 10*time.Second)[0]; v != 0.2 {
		t.Errorf("rs2 conns/s = %v, want 0.2", v)
	}
	// Mending the disk mends the store on the next step.
	os.Remove(filepath.Join(s.Dir(), web6.ID()))
	s2.Update(snap(t0+20, 3))
	if h := s2.Health(); len(h.FailingFiles) != 0 || h.Errors != 3 {
		t.Errorf("after repair: %+v", h)
	}
}

// lastUpdate reads a file's last update time.
func lastUpdate(t *testing.T, path string) int64 {
	t.Helper()
	info, err := rrd.Info(path)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return int64(info["last_update"].(uint))
}

// TestDamagedFilesAreReplaced: a file librrd cannot read (emptied by a
// crash or a full disk, truncated, overwritten) is moved aside to
// <name>.damaged-<unix time> at start, counted as an error, and replaced
// by a new file that updates from this step on. Before, such a file
// failed every update until an operator removed it.
func TestDamagedFilesAreReplaced(t *testing.T) {
	t0 := int64(1_800_000_000)
	good := newStore(t, 10*time.Second)
	good.Update(snap(t0, 1))
	whole, err := os.ReadFile(directorFile(good.Dir()))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		content []byte
		reason  string
	}{
		{"empty (0 bytes)", nil, "the file is empty"},
		{"header cut", whole[:100], "reached EOF while loading header"},
		{"half the file", whole[:len(whole)/2], "is too small"},
		{"one byte short", whole[:len(whole)-1], "is too small"},
		{"not RRD at all", []byte("<html>disk full</html>\n"), "not an RRD file"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var logBuf bytes.Buffer
			s, err := NewStore(StoreOptions{Dir: filepath.Join(t.TempDir(), "rrd"), Step: 10 * time.Second, Log: slog.New(slog.NewTextHandler(&logBuf, nil))})
			if err != nil {
				t.Fatal(err)
			}
			f := serverFile(s.Dir(), web, rs1)
			os.MkdirAll(filepath.Dir(f), 0o750)
			if err := os.WriteFile(f, tc.content, 0o644); err != nil {
				t.Fatal(err)
			}
			s.Update(snap(t0+10, 2))
			h := s.Health()
			if h.Damaged != 1 || h.Errors != 1 || len(h.FailingFiles) != 0 || len(h.DamagedFiles) != 1 {
				t.Fatalf("health = %+v", h)
			}
			d := h.DamagedFiles[0]
			if d.Path != f || !strings.HasPrefix(d.To, f+".damaged-") || !strings.Contains(d.Error, tc.reason) {
				t.Errorf("damaged file = %+v, want %s moved to %s.damaged-<time> for %q", d, f, f, tc.reason)
			}
			if b, err := os.ReadFile(d.To); err != nil || !bytes.Equal(b, tc.content) {
				t.Errorf("the moved file: %v, %d bytes", err, len(b))
			}
			if got := lastUpdate(t, f); got != t0+10 {
				t.Errorf("new file last_update %d, want %d", got, t0+10)
			}
			if !strings.Contains(logBuf.String(), "level=WARN") || !strings.Contains(logBuf.String(), "moved_to="+d.To) {
				t.Errorf("no warning naming the file: %s", logBuf.String())
			}
			s.Update(snap(t0+20, 3))
			if h := s.Health(); h.Damaged != 1 || h.Errors != 1 || lastUpdate(t, f) != t0+20 {
				t.Errorf("next step: %+v", h)
			}
		})
	}
}

// A file damaged while lvsmon runs fails its update; it is moved aside
// then, and the next step starts a new one.
func TestFileDamagedWhileRunning(t *testing.T) {
	s := newStore(t, 10*time.Second)
	t0 := int64(1_800_000_000)
	s.Update(snap(t0, 1))
	f := serviceFile(s.Dir(), web)
	fi, _ := os.Stat(f)
	if err := os.Truncate(f, fi.Size()/2); err != nil {
		t.Fatal(err)
	}
	s.Update(snap(t0+10, 2))
	h := s.Health()
	if h.Errors != 1 || h.Damaged != 1 || len(h.FailingFiles) != 1 || !strings.Contains(h.FailingFiles[0].Error, "is too small") {
		t.Fatalf("health = %+v", h)
	}
	if _, err := os.Stat(h.DamagedFiles[0].To); err != nil {
		t.Errorf("moved file: %v", err)
	}
	s.Update(snap(t0+20, 3))
	h = s.Health()
	if h.Errors != 1 || len(h.FailingFiles) != 0 || lastUpdate(t, f) != t0+20 {
		t.Errorf("after the next step: %+v", h)
	}
}

// Transient failures are not damage: a file that cannot be opened
// (permissions) stays where it is.
func TestUnreadableFileIsNotDamage(t *testing.T) {
	f := filepath.Join(t.TempDir(), "x.rrd")
	os.WriteFile(f, []byte("RRD\x000003"), 0o644)
	if got := damage(f, errors.New("mmaping file: Cannot allocate memory")); got != "" {
		t.Errorf("damage = %q for a memory error", got)
	}
	if got := damage(filepath.Join(t.TempDir(), "missing.rrd"), errors.New("opening: No such file")); got != "" {
		t.Errorf("damage = %q for a missing file", got)
	}
	if got := damage(t.TempDir(), errors.New("mmaping file: No such device")); got != "" {
		t.Errorf("damage = %q for a directory", got)
	}
	if got := damage(f, errors.New("'x.rrd' is too small (should be 4999376 bytes)")); !strings.Contains(got, "too small") {
		t.Errorf("damage = %q for a short file", got)
	}
}

// A crash while a file was created leaves temporaries, never a file
// with the real name: the next start removes them.
func TestCreationLeftoversRemovedAtStart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rrd")
	svc := filepath.Join(dir, web.ID())
	arch := filepath.Join(dir, ArchiveDir, "2026-11-01", web.ID())
	for _, d := range []string{svc, arch} {
		os.MkdirAll(d, 0o750)
	}
	leftovers := []string{
		filepath.Join(dir, ".director.rrd.tmp-123"),
		filepath.Join(svc, ".10.1.1.2_80.rrd.tmp-456"),
		filepath.Join(svc, ".10.1.1.2_80.rrd.tmp-456AbC123"), // librrd's own, beside ours
	}
	keep := []string{filepath.Join(svc, "10.1.2.2_80.rrd.damaged-1796286918"), filepath.Join(arch, ".x.rrd.tmp-1")}
	for _, f := range append(leftovers, keep...) {
		os.WriteFile(f, []byte("partial"), 0o640)
	}
	if _, err := NewStore(StoreOptions{Dir: dir, Step: 10 * time.Second, Log: quiet}); err != nil {
		t.Fatal(err)
	}
	for _, f := range leftovers {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s is still there", f)
		}
	}
	for _, f := range keep {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("%s was removed: %v", f, err)
		}
	}
}

func TestValidID(t *testing.T) {
	for id, ok := range map[string]bool{
		"tcp_198.51.100.10_80": true, "tcp_2001-db8--10_443": true, "fwm_7_inet6": true,
		"": false, "..": false, "../etc": false, "a/b": false, "TCP": false, "a..b": false, "x\x00": false,
	} {
		if validID(id) != ok {
			t.Errorf("validID(%q) = %v", id, !ok)
		}
	}
}

func TestArchive(t *testing.T) {
	s := newStore(t, 10*time.Second)
	now := time.Now()
	s.Update(snap(now.Unix()-10, 1))
	old := serverFile(s.Dir(), web, rs2)
	gone := serviceFile(s.Dir(), web6)
	gone2 := serverFile(s.Dir(), web6, rs6)
	for _, f := range []string{old, gone, gone2} {
		if err := os.Chtimes(f, now.Add(-40*24*time.Hour), now.Add(-40*24*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.Archive(now, 30*24*time.Hour)
	if err != nil || n != 3 {
		t.Fatalf("Archive = %d, %v", n, err)
	}
	day := now.Format("2006-01-02")
	for _, f := range []string{old, gone, gone2} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s still in place", f)
		}
		rel, _ := filepath.Rel(s.Dir(), f)
		if _, err := os.Stat(filepath.Join(s.Dir(), ArchiveDir, day, rel)); err != nil {
			t.Errorf("%s not archived: %v", rel, err)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), web6.ID())); !os.IsNotExist(err) {
		t.Error("the emptied service directory was kept")
	}
	for _, f := range []string{serverFile(s.Dir(), web, rs1), serviceFile(s.Dir(), web), directorFile(s.Dir())} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("a live file was archived: %s", f)
		}
	}
	// The server returns: a new file starts.
	s.Update(snap(now.Unix(), 2))
	if _, err := os.Stat(old); err != nil {
		t.Errorf("returning server has no new file: %v", err)
	}
	if err := s.RunArchiver(t.Context(), "every day", time.Hour, quiet); err == nil {
		t.Error("a bad schedule was accepted")
	}
}

func TestBatchedWrites(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "rrd")
	s, err := NewStore(StoreOptions{Dir: dir, Step: 10 * time.Second, Batch: 3, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t0 := int64(1_800_000_000)
	for i := range 3 {
		s.Update(snap(t0+int64(i)*10, uint64(100+10*i)))
	}
	f := serverFile(s.Dir(), web, rs1)
	info, err := rrd.Info(f)
	if err != nil {
		t.Fatal(err)
	}
	last := int64(info["last_update"].(uint))
	// With three steps per write, some rows may still wait in memory.
	if last > t0+20 || last < t0-1 {
		t.Fatalf("last_update = %d", last)
	}
	if err := s.Flush(f); err != nil {
		t.Fatal(err)
	}
	info, _ = rrd.Info(f)
	if got := int64(info["last_update"].(uint)); got != t0+20 {
		t.Fatalf("after Flush last_update = %d, want %d", got, t0+20)
	}
	if v := fetch(t, f, "conns", t0+10, t0+20, 10*time.Second)[0]; v != 1 {
		t.Errorf("conns/s = %v, want 1", v)
	}
	// Every file is written at least once every Batch steps.
	for i := 3; i < 6; i++ {
		s.Update(snap(t0+int64(i)*10, uint64(100+10*i)))
	}
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		info, _ := rrd.Info(p)
		if got := int64(info["last_update"].(uint)); got < t0+30 {
			t.Errorf("%s last written at %d: more than Batch steps behind", p, got)
		}
		return nil
	})
	if h := s.Health(); h.Errors != 0 || h.Updates != 36 {
		t.Errorf("health = %+v", h)
	}
}
