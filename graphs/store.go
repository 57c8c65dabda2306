package graphs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ziutek/rrd"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
	"github.com/lvsmon/lvsmon/lvs"
)

// StoreOptions configure a Store.
type StoreOptions struct {
	Dir  string        // root of the RRD tree (DATA_DIR/rrd)
	Step time.Duration // RRD step; whole seconds, at least 1 s
	// Rrdcached, when set ("unix:/path" or "host:port"), sends updates
	// through rrdcached instead of writing the files directly.
	Rrdcached string
	// Workers update files in parallel (librrd's update is reentrant);
	// default: the number of CPUs.
	Workers int
	// Batch > 1 writes each file every Batch steps, several rows in one
	// librrd call, with the files spread evenly over the steps. Opening
	// and mapping a file costs far more than writing a row, so this
	// divides the store's cost per step by about Batch, as rrdcached does,
	// at the price of up to Batch steps lost in a crash. Graphs flush the
	// files they draw first, so they are never behind. Ignored with
	// Rrdcached (the daemon batches).
	Batch int
	// Archives override DefaultArchives (benchmarks use shorter spans to
	// keep 50,000 files on a test disk; the update cost per file is the
	// same, since it depends on the number of RRAs, not their length).
	Archives []Archive
	Log      *slog.Logger
}

// FileError is a file that failed its last update or creation.
type FileError struct {
	Path  string    `json:"path"`
	Error string    `json:"error"`
	Since time.Time `json:"since"`
	Count uint64    `json:"count"`
}

// StoreHealth is what the status API and metrics show about the store.
type StoreHealth struct {
	Files        int           `json:"files"`
	LastUpdate   time.Time     `json:"last_update,omitzero"`
	LastDuration time.Duration `json:"last_duration_ns"`
	Updates      uint64        `json:"updates"`
	Errors       uint64        `json:"errors"` // failed file updates, all time
	Skipped      uint64        `json:"skipped"`
	FailingFiles []FileError   `json:"failing_files,omitempty"`
	// Damaged counts the files found damaged (empty, truncated, not RRD)
	// and replaced by new ones, all time; each is counted in Errors too.
	Damaged uint64 `json:"damaged"`
	// DamagedFiles are the latest of them (at most maxDamagedShown), where
	// each damaged file was moved, newest last.
	DamagedFiles []DamagedFile `json:"damaged_files,omitempty"`
}

// DamagedFile is a file that could not be read as an RRD file, moved
// aside (never deleted: rrdtool dump may save some of it) and replaced.
type DamagedFile struct {
	Path  string    `json:"path"`
	To    string    `json:"moved_to"`
	Error string    `json:"error"`
	Time  time.Time `json:"time"`
}

const maxDamagedShown = 20

// fileState is what the store remembers about one file.
type fileState struct {
	last int64 // unix second of the last accepted update
	err  *FileError
	slot int // the step (mod Batch) at which this file is written

	fm      sync.Mutex // guards pending and the file's writes
	pending []string   // accepted rows not yet written
}

// Store writes snapshots into RRD files. Update is meant to be called from
// one goroutine (the store's own, see Run); Health and Files are safe from
// any goroutine.
type Store struct {
	opt  StoreOptions
	log  *slog.Logger
	rras []rra
	cd   *rrdcachedClient

	mu    sync.Mutex
	files map[string]*fileState
	h     StoreHealth
	steps int // snapshots written, for spreading batched writes

	errors atomic.Uint64
	// updated is the unix second of the newest snapshot written, for the
	// renderer's cache.
	updated atomic.Int64
}

// NewStore prepares a store; it creates the root directory.
func NewStore(opt StoreOptions) (*Store, error) {
	if opt.Step < time.Second || opt.Step%time.Second != 0 {
		return nil, fmt.Errorf("graphs: step %s is not a whole number of seconds", opt.Step)
	}
	if opt.Workers <= 0 {
		opt.Workers = runtime.NumCPU()
	}
	if opt.Batch < 1 || opt.Rrdcached != "" {
		opt.Batch = 1
	}
	if opt.Archives == nil {
		opt.Archives = DefaultArchives
	}
	if opt.Log == nil {
		opt.Log = slog.Default()
	}
	if err := os.MkdirAll(opt.Dir, 0o750); err != nil {
		return nil, fmt.Errorf("graphs: %w", err)
	}
	s := &Store{opt: opt, log: opt.Log, rras: rras(opt.Step, opt.Archives), files: map[string]*fileState{}}
	s.cleanTemps()
	if opt.Rrdcached != "" {
		cd, err := dialRrdcached(opt.Rrdcached)
		if err != nil {
			return nil, err
		}
		s.cd = cd
	}
	return s, nil
}

// Close releases the rrdcached connection, if any.
func (s *Store) Close() error {
	if s.cd != nil {
		return s.cd.close()
	}
	return nil
}

// Dir is the root of the RRD tree.
func (s *Store) Dir() string { return s.opt.Dir }

// Daemon is the rrdcached address graphs must flush through, or "".
func (s *Store) Daemon() string { return s.opt.Rrdcached }

// Updated is the unix second of the newest snapshot written.
func (s *Store) Updated() int64 { return s.updated.Load() }

// Errors counts failed file updates since start (for metrics).
func (s *Store) Errors() uint64 { return s.errors.Load() }

// job is one file's update.
type job struct {
	path     string
	t        int64
	active   uint64
	inactive uint64
	weight   int64
	stats    lvs.Stats
}

// Run writes every snapshot the collector publishes, in the store's own
// goroutine, so a slow disk never delays sampling. When the store falls
// behind, it skips to the newest snapshot (the skipped steps become
// unknown in the RRDs, which is what they are).
//
// subscribe registers a callback for new snapshots (the collector's
// Subscribe); graphs does not import the collector itself.
func (s *Store) Run(ctx context.Context, subscribe func(func(*lvs.Snapshot))) {
	ch := make(chan *lvs.Snapshot, 1)
	subscribe(func(snap *lvs.Snapshot) {
		for {
			select {
			case ch <- snap:
				return
			default:
			}
			select { // drop the older waiting snapshot
			case old := <-ch:
				s.mu.Lock()
				s.h.Skipped++
				s.mu.Unlock()
				s.log.Warn("RRD store is behind; skipping a step", "step_time", old.Time)
			default:
			}
		}
	})
	for {
		select {
		case <-ctx.Done():
			if err := s.Flush(); err != nil {
				s.log.Error("writing pending RRD rows at shutdown failed", "err", err)
			}
			return
		case snap := <-ch:
			s.Update(snap)
		}
	}
}

// Update writes one snapshot: one line into the director's file, each
// service's and each real server's, creating files on first sight.
func (s *Store) Update(snap *lvs.Snapshot) {
	start := time.Now()
	t := snap.Time.Unix()
	s.mu.Lock()
	s.steps++
	seq := s.steps
	s.mu.Unlock()
	jobs := make([]job, 0, 1+len(snap.Table.Services)*8)
	var dirActive, dirInactive uint64
	var dirWeight int64
	for i := range snap.Table.Services {
		svc := &snap.Table.Services[i]
		var act, inact uint64
		var w int64
		for j := range svc.Dests {
			d := &svc.Dests[j]
			act += uint64(d.ActiveConns)
			inact += uint64(d.InactiveConns)
			w += int64(d.Weight)
			jobs = append(jobs, job{serverFile(s.opt.Dir, svc.Key, d.Key), t, uint64(d.ActiveConns), uint64(d.InactiveConns), int64(d.Weight), d.Stats})
		}
		jobs = append(jobs, job{serviceFile(s.opt.Dir, svc.Key), t, act, inact, w, svc.Stats})
		dirActive += act
		dirInactive += inact
		dirWeight += w
	}
	jobs = append(jobs, job{directorFile(s.opt.Dir), t, dirActive, dirInactive, dirWeight, snap.Table.Totals})

	var next atomic.Int64
	var wg sync.WaitGroup
	var failed, done atomic.Uint64
	for range min(s.opt.Workers, len(jobs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 0, 160)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(jobs) {
					return
				}
				ok, err := s.write(&jobs[i], buf, seq)
				s.record(jobs[i].path, t, ok, err)
				if err != nil {
					failed.Add(1)
				} else if ok {
					done.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		s.errors.Add(n)
	}
	s.updated.Store(t)
	s.mu.Lock()
	s.h.Updates += done.Load()
	s.h.Errors += failed.Load()
	s.h.LastUpdate = snap.Time
	s.h.LastDuration = time.Since(start)
	s.h.Files = len(s.files)
	s.mu.Unlock()
}

// write updates one file, creating it if needed. It reports false without
// an error when the update is skipped: rrdtool refuses two updates in one
// second, and after the clock jumps back the time must first pass the
// last update again.
func (s *Store) write(j *job, buf []byte, seq int) (bool, error) {
	s.mu.Lock()
	st := s.files[j.path]
	if st == nil {
		st = &fileState{slot: len(s.files) % s.opt.Batch}
		s.files[j.path] = st
	}
	s.mu.Unlock()
	st.fm.Lock()
	defer st.fm.Unlock()
	if st.last == 0 {
		l, err := s.open(j.path, j.t)
		if err != nil {
			return false, err
		}
		st.last = l
	}
	if j.t <= st.last {
		return false, nil
	}
	st.pending = append(st.pending, string(updateLine(buf, j.t, j.active, j.inactive, j.weight, j.stats)))
	st.last = j.t
	if len(st.pending) >= s.opt.Batch || seq%s.opt.Batch == st.slot {
		if err := s.flushLocked(j.path, st); err != nil {
			return false, err
		}
	}
	return true, nil
}

// flushLocked writes a file's pending rows, with st.fm held. On failure
// the rows are dropped (the error says how many) and the file is opened
// anew next time, since its real last update is then unknown.
func (s *Store) flushLocked(path string, st *fileState) error {
	if len(st.pending) == 0 {
		return nil
	}
	rows := st.pending
	st.pending = st.pending[:0]
	var err error
	if s.cd != nil {
		for _, r := range rows {
			if err = s.cd.update(path, r); err != nil {
				break
			}
		}
	} else {
		u := rrd.NewUpdater(path)
		for _, r := range rows {
			u.Cache(r)
		}
		err = u.Update()
	}
	if err != nil {
		st.last = 0
		werr := fmt.Errorf("update %s (%d rows lost): %w", path, len(rows), err)
		// A file that librrd cannot read (truncated by a full disk, emptied
		// by a crash) never heals: it is moved aside, and the next step
		// creates a new one. The failed update is the error counted.
		if s.cd == nil {
			if reason := damage(path, err); reason != "" {
				if _, merr := s.moveAside(path, reason, false); merr != nil {
					return fmt.Errorf("%w; moving the damaged file aside failed: %v", werr, merr)
				}
			}
		}
		return werr
	}
	return nil
}

// Flush writes the pending rows of the given files (graphs call it on the
// files they draw) or, with no paths, of every file (on shutdown).
func (s *Store) Flush(paths ...string) error {
	s.mu.Lock()
	var sts []*fileState
	var ps []string
	if len(paths) == 0 {
		for p, st := range s.files {
			sts, ps = append(sts, st), append(ps, p)
		}
	} else {
		for _, p := range paths {
			if st := s.files[p]; st != nil {
				sts, ps = append(sts, st), append(ps, p)
			}
		}
	}
	s.mu.Unlock()
	var errs []error
	for i, st := range sts {
		st.fm.Lock()
		if err := s.flushLocked(ps[i], st); err != nil {
			errs = append(errs, err)
		}
		st.fm.Unlock()
		if s.cd != nil {
			if err := s.cd.flush(ps[i]); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// open makes sure the file exists and returns its last update time: a new
// file starts just before t; an existing one is read (it may come from
// before a restart). A damaged one (see damage) is moved aside and
// replaced by a new file.
func (s *Store) open(path string, t int64) (int64, error) {
	info, err := rrd.Info(path)
	if err == nil {
		last, ok := info["last_update"].(uint)
		if !ok {
			err = errors.New("no last_update in its header")
		} else {
			types, _ := info["ds.type"].(map[string]interface{})
			for _, ds := range dataSources {
				if got, _ := types[ds.name].(string); got != ds.kind {
					// Someone else's file: not lvsmon's to move.
					return 0, fmt.Errorf("open %s: not an lvsmon RRD file (data source %s is %q, want %s)", path, ds.name, got, ds.kind)
				}
			}
			return int64(last), nil
		}
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		reason := damage(path, err)
		if reason == "" {
			return 0, fmt.Errorf("open %s: %w", path, err)
		}
		if _, merr := s.moveAside(path, reason, true); merr != nil {
			return 0, fmt.Errorf("open %s: %w; moving the damaged file aside failed: %v", path, err, merr)
		}
	}
	return s.create(path, t)
}

// create makes a new file for path whose first row follows t. librrd
// writes it under a temporary name beside path (atomicfile's, so a crash
// leaves nothing with the real name and cleanTemps finds the leftover),
// it is read back, fsynced, and only then renamed to path: a disk that
// fills up while librrd writes leaves no half-created file in place,
// and the next step tries again. (Before, librrd's silent failure left
// an empty file with the real name that failed every update.)
func (s *Store) create(path string, t int64) (int64, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	tmp, err := atomicfile.CreateTemp(path)
	if err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	name := tmp.Name()
	tmp.Close()
	fail := func(step string, err error) (int64, error) {
		os.Remove(name)
		return 0, fmt.Errorf("create %s: %s: %w", path, step, err)
	}
	start := t - 1
	c := rrd.NewCreator(name, time.Unix(start, 0), uint(s.opt.Step/time.Second))
	hb := uint(max(2*s.opt.Step, 2*time.Second) / time.Second)
	for _, ds := range dataSources {
		c.DS(ds.name, ds.kind, hb, 0, "U") // min 0 makes a DERIVE reset unknown
	}
	for _, r := range s.rras {
		c.RRA("AVERAGE", 0.5, r.steps, r.rows)
		c.RRA("MAX", 0.5, r.steps, r.rows)
	}
	// Overwrite the empty temporary file (librrd writes its own temporary
	// beside it and renames it over).
	if err := c.Create(true); err != nil {
		return fail("librrd", err)
	}
	// librrd 1.7 returns success without an error message when a write
	// of the new file fails (a full disk), and does not check its final
	// fclose: read the file back.
	if _, err := rrd.Info(name); err != nil {
		return fail("librrd reported success but the new file is not readable (a full disk?)", err)
	}
	if err := syncFile(name); err != nil {
		return fail("sync", err)
	}
	if err := os.Rename(name, path); err != nil {
		return fail("rename", err)
	}
	if err := atomicfile.SyncDir(dir); err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	return start, nil
}

func syncFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// damageMarks are librrd's errors about a file's content, as opposed to
// its access (permissions, descriptors, memory), which may pass.
var damageMarks = []string{
	"reached EOF while loading header", "short read while reading header",
	"is not an RRD file", "is too small", "created on another architecture",
	"can't handle RRD file version", "no last_update in its header",
}

// damage says why the file at path, which librrd failed to read with err,
// is damaged beyond use, or "" when it is not known to be (it cannot be
// opened, or librrd failed for a reason that may pass).
func damage(path string, err error) string {
	f, oerr := os.Open(path)
	if oerr != nil {
		return ""
	}
	defer f.Close()
	fi, serr := f.Stat()
	switch {
	case serr != nil || !fi.Mode().IsRegular():
		return ""
	case fi.Size() == 0:
		return "the file is empty"
	}
	head := make([]byte, 4)
	if _, rerr := io.ReadFull(f, head); rerr != nil || string(head) != "RRD\x00" {
		return "not an RRD file (no RRD header)"
	}
	if err != nil {
		for _, m := range damageMarks {
			if strings.Contains(err.Error(), m) {
				return err.Error()
			}
		}
	}
	return ""
}

// moveAside renames a damaged file to <path>.damaged-<unix time>, beside
// it (graphs and the archive job read only *.rrd), counts it as a damaged
// file in the health, and as an error unless the caller counts one
// already (a failed update), and logs it. It returns the new name.
func (s *Store) moveAside(path, reason string, countError bool) (string, error) {
	now := time.Now()
	to := path + ".damaged-" + strconv.FormatInt(now.Unix(), 10)
	if _, err := os.Lstat(to); err == nil {
		to += "-" + strconv.FormatInt(now.UnixNano(), 10)
	}
	if err := os.Rename(path, to); err != nil {
		return "", err
	}
	atomicfile.SyncDir(filepath.Dir(path))
	s.mu.Lock()
	if countError {
		s.errors.Add(1)
		s.h.Errors++
	}
	s.h.Damaged++
	s.h.DamagedFiles = append(s.h.DamagedFiles, DamagedFile{Path: path, To: to, Error: reason, Time: now})
	if n := len(s.h.DamagedFiles); n > maxDamagedShown {
		s.h.DamagedFiles = append([]DamagedFile(nil), s.h.DamagedFiles[n-maxDamagedShown:]...)
	}
	s.mu.Unlock()
	s.log.Warn("RRD file damaged; moved aside, a new one is created (its history starts again)", "file", path, "moved_to", to, "err", reason)
	return to, nil
}

// cleanTemps removes what file creations and atomic writes interrupted by
// a crash left in the tree (not in the archive).
func (s *Store) cleanTemps() {
	dirs := []string{s.opt.Dir}
	if ents, err := os.ReadDir(s.opt.Dir); err == nil {
		for _, e := range ents {
			if e.IsDir() && e.Name() != ArchiveDir {
				dirs = append(dirs, filepath.Join(s.opt.Dir, e.Name()))
			}
		}
	}
	removed := 0
	for _, d := range dirs {
		n, err := atomicfile.CleanTemps(d, "")
		removed += n
		if err != nil {
			s.log.Warn("cannot remove the temporary files of interrupted RRD creations", "dir", d, "err", err)
		}
	}
	if removed > 0 {
		s.log.Info("removed the temporary files of interrupted RRD creations", "dir", s.opt.Dir, "files", removed)
	}
}

// record keeps each file's error state, logging the first failure of a
// file and its recovery, not every step in between.
func (s *Store) record(path string, t int64, ok bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.files[path]
	if err == nil {
		if st.err != nil {
			s.log.Info("RRD file updates again", "file", path, "after_failures", st.err.Count)
			st.err = nil
		}
		return
	}
	if st.err == nil {
		st.err = &FileError{Path: path, Error: err.Error(), Since: time.Unix(t, 0)}
		s.log.Error("RRD file update failed; the other files keep updating", "file", path, "err", err)
	}
	st.err.Count++
	st.err.Error = err.Error()
}

// Health returns the store's health with the failing files (at most 50,
// the oldest failures first).
func (s *Store) Health() StoreHealth {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.h
	h.DamagedFiles = slices.Clone(s.h.DamagedFiles)
	h.Files = len(s.files)
	for _, st := range s.files {
		if st.err != nil {
			h.FailingFiles = append(h.FailingFiles, *st.err)
		}
	}
	sort.Slice(h.FailingFiles, func(i, j int) bool { return h.FailingFiles[i].Since.Before(h.FailingFiles[j].Since) })
	if len(h.FailingFiles) > 50 {
		h.FailingFiles = h.FailingFiles[:50]
	}
	return h
}
