package graphs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
)

// ArchiveDir is where files of vanished objects go, under the RRD root.
const ArchiveDir = "archive"

// Archive moves the files of real servers and services that have not been
// updated for olderThan (they left the kernel table) into
// archive/<date>/<service id>/, keeping their history out of the live
// graphs without deleting it. An lvs-rrd user who pulls a server for a
// month gets its graphs back by moving the file home. It returns how many
// files moved.
func (s *Store) Archive(now time.Time, olderThan time.Duration) (int, error) {
	root := s.opt.Dir
	dest := filepath.Join(root, ArchiveDir, now.Format("2006-01-02"))
	ents, err := os.ReadDir(root)
	if err != nil {
		return 0, fmt.Errorf("graphs: archive: %w", err)
	}
	moved := 0
	var errs []error
	for _, e := range ents {
		if !e.IsDir() || e.Name() == ArchiveDir || !validID(e.Name()) {
			continue
		}
		dir := filepath.Join(root, e.Name())
		files, err := os.ReadDir(dir)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, f := range files {
			if f.IsDir() || !strings.HasSuffix(f.Name(), ".rrd") {
				continue
			}
			fi, err := f.Info()
			if err != nil || now.Sub(fi.ModTime()) < olderThan {
				continue
			}
			from := filepath.Join(dir, f.Name())
			to := filepath.Join(dest, e.Name(), f.Name())
			if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
				errs = append(errs, err)
				continue
			}
			if err := os.Rename(from, to); err != nil {
				errs = append(errs, err)
				continue
			}
			s.forget(from)
			moved++
			s.log.Info("archived the RRD file of an object gone from the table", "file", from, "to", to, "last_update", fi.ModTime())
		}
		os.Remove(dir) // only succeeds once the directory is empty
	}
	return moved, errors.Join(errs...)
}

// forget drops what the store remembers of a file, so that an object
// that comes back starts a new file.
func (s *Store) forget(path string) {
	s.mu.Lock()
	delete(s.files, path)
	s.mu.Unlock()
}

// RunArchiver runs Archive on a cron schedule (robfig/cron syntax, e.g.
// "17 3 * * *") until ctx ends.
func (s *Store) RunArchiver(ctx context.Context, schedule string, olderThan time.Duration, log *slog.Logger) error {
	c := cron.New()
	_, err := c.AddFunc(schedule, func() {
		n, err := s.Archive(time.Now(), olderThan)
		if err != nil {
			log.Error("archiving RRD files failed in part", "moved", n, "err", err)
			return
		}
		log.Info("RRD archive run", "moved", n, "older_than", olderThan)
	})
	if err != nil {
		return fmt.Errorf("graphs: archive schedule %q: %w", schedule, err)
	}
	c.Start()
	<-ctx.Done()
	<-c.Stop().Done()
	return nil
}
