package graphs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ziutek/rrd"

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
}

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
		return fmt.Errorf("update %s (%d rows lost): %w", path, len(rows), err)
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
// before a restart, or be damaged, which is reported here).
func (s *Store) open(path string, t int64) (int64, error) {
	info, err := rrd.Info(path)
	if err == nil {
		last, ok := info["last_update"].(uint)
		if !ok {
			return 0, fmt.Errorf("open %s: no last_update in its header (damaged?)", path)
		}
		types, _ := info["ds.type"].(map[string]interface{})
		for _, ds := range dataSources {
			if got, _ := types[ds.name].(string); got != ds.kind {
				return 0, fmt.Errorf("open %s: not an lvsmon RRD file (data source %s is %q, want %s)", path, ds.name, got, ds.kind)
			}
		}
		return int64(last), nil
	}
	if _, statErr := os.Stat(path); !errors.Is(statErr, os.ErrNotExist) {
		return 0, fmt.Errorf("open %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	start := t - 1
	c := rrd.NewCreator(path, time.Unix(start, 0), uint(s.opt.Step/time.Second))
	hb := uint(max(2*s.opt.Step, 2*time.Second) / time.Second)
	for _, ds := range dataSources {
		c.DS(ds.name, ds.kind, hb, 0, "U") // min 0 makes a DERIVE reset unknown
	}
	for _, r := range s.rras {
		c.RRA("AVERAGE", 0.5, r.steps, r.rows)
		c.RRA("MAX", 0.5, r.steps, r.rows)
	}
	if err := c.Create(false); err != nil {
		// Create leaves an empty file behind when librrd fails after the
		// exclusive open; remove it, or every later attempt says "exists".
		if fi, serr := os.Stat(path); serr == nil && fi.Size() == 0 {
			os.Remove(path)
		}
		return 0, fmt.Errorf("create %s: %w", path, err)
	}
	return start, nil
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
