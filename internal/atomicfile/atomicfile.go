// Package atomicfile writes a file so that a crash leaves either the old
// content or the new, never a mix: lvsmon's state files (overrides, the
// mail outbox, the compacted event log) must survive power loss intact.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Write replaces path with data: a temporary file beside it, fsync,
// rename, then fsync of the directory so the rename itself is durable.
// On failure the temporary file is removed and path is untouched.
func Write(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	tmp, err := CreateTemp(path)
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	name := tmp.Name()
	fail := func(step string, err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("write %s: %s: %w", path, step, err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail("write", err)
	}
	if err := tmp.Chmod(perm); err != nil {
		return fail("chmod", err)
	}
	if err := tmp.Sync(); err != nil {
		return fail("sync", err)
	}
	if err := tmp.Close(); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: close: %w", path, err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("write %s: rename: %w", path, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("write %s: open directory: %w", path, err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("write %s: sync directory: %w", path, err)
	}
	return nil
}

const tempMark = ".tmp-"

// CreateTemp creates a new, empty temporary file beside path, named
// ".<base of path>.tmp-<random>" like Write's own, so that CleanTemps
// finds it when a crash leaves it behind. Callers that produce a file
// some other way (librrd writes RRD files itself) build it under this
// name and rename it over path only when it is complete.
func CreateTemp(path string) (*os.File, error) {
	return os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+tempMark+"*")
}

// CleanTemps removes the temporary files that a crash in the middle of a
// write (Write, or a CreateTemp user) left in dir: those of the file
// named base, or every one when base is "". Call it when the owner of
// the files starts, before it writes: a temporary file is never the
// current content of anything, only a write that never finished. A
// missing dir holds nothing to remove. It returns how many files it
// removed; a file it cannot remove is in the error and the others are
// still removed.
func CleanTemps(dir, base string) (removed int, err error) {
	des, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("remove temporary files: %w", err)
	}
	var errs []error
	for _, de := range des {
		name := de.Name()
		if de.IsDir() || !IsTemp(name) || base != "" && !strings.HasPrefix(name, "."+base+tempMark) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, fmt.Errorf("remove temporary file: %w", err))
			continue
		}
		removed++
	}
	return removed, errors.Join(errs...)
}

// IsTemp reports whether a file name is one of Write's temporary files,
// left behind only by a crash in the middle of a write: a directory's
// owner removes them when it starts.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempMark)
}

// CorruptDir is the directory, beside a damaged file, that MoveAside
// moves it into.
const CorruptDir = "corrupt"

// AsideName is where MoveAside puts path: dir/corrupt/<base>.<unix
// nanoseconds>, the convention of lvsmon's state files (the mail outbox
// started it), so an operator finds every damaged file the same way.
func AsideName(path string, now time.Time) string {
	return filepath.Join(filepath.Dir(path), CorruptDir, filepath.Base(path)+"."+strconv.FormatInt(now.UnixNano(), 10))
}

// MoveAside moves a damaged file out of the way, never deleting it, to
// AsideName (creating the corrupt directory), and makes the move durable.
// It returns the new path.
func MoveAside(path string) (string, error) {
	to, err := PrepareAside(path)
	if err != nil {
		return "", err
	}
	if err := os.Rename(path, to); err != nil {
		return "", fmt.Errorf("move %s aside: %w", path, err)
	}
	if err := SyncDir(filepath.Dir(to)); err != nil {
		return to, err
	}
	return to, SyncDir(filepath.Dir(path))
}

// PrepareAside creates the corrupt directory beside path and returns a
// free AsideName, for callers that keep a copy (a hard link) of a file
// they then rewrite in place.
func PrepareAside(path string) (string, error) {
	to := AsideName(path, time.Now())
	if err := os.MkdirAll(filepath.Dir(to), 0o750); err != nil {
		return "", fmt.Errorf("move %s aside: %w", path, err)
	}
	return to, nil
}

// KeepAside puts a copy of a damaged file in corrupt/ beside it (a hard
// link, or a copy where links are not possible) and leaves the file in
// place, for owners that rewrite it next with what they could read: the
// file is never absent, whatever a crash interrupts. It returns the
// copy's path.
func KeepAside(path string) (string, error) {
	to, err := PrepareAside(path)
	if err != nil {
		return "", err
	}
	if err := os.Link(path, to); err != nil {
		if err := copyFile(path, to); err != nil {
			os.Remove(to)
			return "", fmt.Errorf("keep a copy of %s: %w", path, err)
		}
	}
	return to, SyncDir(filepath.Dir(to))
}

func copyFile(from, to string) error {
	src, err := os.Open(from)
	if err != nil {
		return err
	}
	defer src.Close()
	dst, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return err
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return err
	}
	if err := dst.Sync(); err != nil {
		dst.Close()
		return err
	}
	return dst.Close()
}

// SyncDir fsyncs a directory, making the renames and removals in it
// durable.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("sync directory: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync directory %s: %w", dir, err)
	}
	return nil
}
