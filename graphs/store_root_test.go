//go:build lab

// Tests that need root, in the lab tier (make test runs it as root):
// they mount a small tmpfs to fill a disk for real.

package graphs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ziutek/rrd"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// smallDisk mounts a tmpfs of size bytes on a new directory and
// unmounts it at cleanup.
func smallDisk(t *testing.T, size int) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("this test needs root (mount -t tmpfs); make test runs the lab tier as root")
	}
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0750", size), "lvsmon-test", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// fill writes 16 KiB files into dir until the disk is full and returns
// them.
func fill(t *testing.T, dir string) []string {
	t.Helper()
	chunk := make([]byte, 16<<10)
	var files []string
	for i := 0; ; i++ {
		p := filepath.Join(dir, fmt.Sprintf("filler-%04d", i))
		err := os.WriteFile(p, chunk, 0o600)
		if err == nil {
			files = append(files, p)
			continue
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("filling the disk: %v", err)
		}
		os.Remove(p) // the partial one
		return files
	}
}

// rrdFiles lists the RRD tree: files named *.rrd and temporaries.
func rrdFiles(t *testing.T, root string) (real, temps []string) {
	t.Helper()
	filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		switch {
		case strings.HasSuffix(p, ".rrd"):
			real = append(real, p)
		case atomicfile.IsTemp(d.Name()):
			temps = append(temps, p)
		}
		return nil
	})
	return real, temps
}

// TestRootFullDisk: on a full disk no RRD file is created with its real
// name, half-written or empty; once space returns, the files are created
// and updated, without a restart. Before, a full disk left 0-byte files
// that failed every update, even after a restart.
func TestRootFullDisk(t *testing.T) {
	disk := smallDisk(t, 1<<20)
	// One hour at the step: about 46 KB per file, six files.
	archives := []Archive{{0, time.Hour}}
	s, err := NewStore(StoreOptions{Dir: filepath.Join(disk, "rrd"), Step: 10 * time.Second, Archives: archives, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t0 := int64(1_800_000_000)

	filler := fill(t, disk)
	s.Update(snap(t0, 1))
	h := s.Health()
	if len(h.FailingFiles) != 6 || h.Errors != 6 {
		t.Fatalf("on a full disk: %+v", h)
	}
	if real, temps := rrdFiles(t, s.Dir()); len(real)+len(temps) != 0 {
		t.Fatalf("a full disk left files: %v %v", real, temps)
	}

	// Room for about two files: some are created, the one that runs out
	// of space midway is not, and nothing half-written has a real name.
	for _, f := range filler[len(filler)-6:] {
		os.Remove(f)
	}
	filler = filler[:len(filler)-6]
	s.Update(snap(t0+10, 2))
	h = s.Health()
	real, temps := rrdFiles(t, s.Dir())
	if len(temps) != 0 {
		t.Errorf("temporaries left: %v", temps)
	}
	if len(real) == 0 || len(real) == 6 || len(real)+len(h.FailingFiles) != 6 {
		t.Errorf("with room for two files: %d created (%v), %d failing", len(real), real, len(h.FailingFiles))
	}
	for _, f := range real {
		if _, err := rrd.Info(f); err != nil {
			t.Errorf("a created file is not whole: %v", err)
		}
	}

	// Space returns: every file is created, the next step updates all.
	for _, f := range filler {
		os.Remove(f)
	}
	s.Update(snap(t0+20, 3))
	s.Update(snap(t0+30, 4))
	h = s.Health()
	if len(h.FailingFiles) != 0 || h.Damaged != 0 {
		t.Fatalf("after space returned: %+v", h)
	}
	real, _ = rrdFiles(t, s.Dir())
	if len(real) != 6 {
		t.Fatalf("files after space returned: %v", real)
	}
	for _, f := range real {
		info, err := rrd.Info(f)
		if err != nil {
			t.Fatal(err)
		}
		if last := int64(info["last_update"].(uint)); last != t0+30 {
			t.Errorf("%s last updated at %d, want %d", f, last, t0+30)
		}
	}
	if v := fetch(t, serverFile(s.Dir(), web, rs1), "conns", t0+20, t0+30, 10*time.Second)[0]; v != 0.1 {
		t.Errorf("rs1 conns/s = %v, want 0.1", v)
	}
}
