package atomicfile

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemporaries(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	for _, content := range []string{"one\n", "two, longer\n"} {
		if err := Write(p, []byte(content), 0o640); err != nil {
			t.Fatal(err)
		}
		b, _ := os.ReadFile(p)
		if string(b) != content {
			t.Fatalf("content %q, want %q", b, content)
		}
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o640 {
		t.Errorf("mode %v", fi.Mode())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

func TestWriteFailureKeepsTheOldFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	Write(p, []byte("old"), 0o640)
	// A directory in the way of the rename: the write fails, the old
	// content (here, the directory) and no temporary stay.
	q := filepath.Join(dir, "sub")
	os.Mkdir(q, 0o755)
	os.WriteFile(filepath.Join(q, "x"), []byte("x"), 0o644)
	if err := Write(q, []byte("new"), 0o640); err == nil {
		t.Fatal("a write over a non-empty directory succeeded")
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 2 {
		t.Errorf("directory holds %d entries after a failed write, want 2", len(ents))
	}
	if err := Write(filepath.Join(dir, "missing", "f"), nil, 0o640); err == nil {
		t.Error("a write into a missing directory succeeded")
	}
}

func TestIsTemp(t *testing.T) {
	for name, want := range map[string]bool{".state.json.tmp-123": true, "state.json": false, "state.tmp-1": false} {
		if IsTemp(name) != want {
			t.Errorf("IsTemp(%q) = %v", name, !want)
		}
	}
}

func TestCleanTemps(t *testing.T) {
	dir := t.TempDir()
	touch := func(name string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o640); err != nil {
			t.Fatal(err)
		}
	}
	// What crashes leave: Write's and CreateTemp's temporaries of two
	// files, next to files that must stay.
	for _, n := range []string{".state.json.tmp-123", ".state.json.tmp-456", ".other.json.tmp-9", "state.json", "other.json", "state.json.tmp-1", ".hidden"} {
		touch(n)
	}
	f, err := CreateTemp(filepath.Join(dir, "state.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := os.Mkdir(filepath.Join(dir, ".state.json.tmp-dir"), 0o750); err != nil {
		t.Fatal(err)
	}
	names := func() []string {
		var out []string
		ents, _ := os.ReadDir(dir)
		for _, e := range ents {
			out = append(out, e.Name())
		}
		return out
	}

	n, err := CleanTemps(dir, "state.json")
	if err != nil || n != 3 {
		t.Fatalf("CleanTemps(state.json) = %d, %v; left %v", n, err, names())
	}
	want := []string{".hidden", ".other.json.tmp-9", ".state.json.tmp-dir", "other.json", "state.json", "state.json.tmp-1"}
	if got := names(); !slices.Equal(got, want) {
		t.Errorf("left %v, want %v", got, want)
	}
	n, err = CleanTemps(dir, "")
	if err != nil || n != 1 {
		t.Fatalf("CleanTemps(all) = %d, %v", n, err)
	}
	if n, err := CleanTemps(filepath.Join(dir, "missing"), ""); n != 0 || err != nil {
		t.Errorf("CleanTemps of a missing directory = %d, %v", n, err)
	}
}

func TestMoveAside(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	os.WriteFile(p, []byte("{damaged"), 0o640)
	to, err := MoveAside(p)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(to) != filepath.Join(dir, "corrupt") || !strings.HasPrefix(filepath.Base(to), "state.json.") {
		t.Errorf("moved to %s, want corrupt/state.json.<nanoseconds>", to)
	}
	if b, err := os.ReadFile(to); err != nil || string(b) != "{damaged" {
		t.Errorf("moved file: %q, %v", b, err)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("the damaged file is still in place: %v", err)
	}
	if _, err := MoveAside(p); err == nil {
		t.Error("moving a missing file aside succeeded")
	}
}

func TestKeepAside(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "events.jsonl")
	os.WriteFile(p, []byte("damaged\n"), 0o640)
	to, err := KeepAside(p)
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Dir(to) != filepath.Join(dir, "corrupt") {
		t.Errorf("copy at %s", to)
	}
	// The file stays; rewriting it (atomically) leaves the copy alone.
	if err := Write(p, []byte("repaired\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(to); string(b) != "damaged\n" {
		t.Errorf("copy holds %q", b)
	}
	if b, _ := os.ReadFile(p); string(b) != "repaired\n" {
		t.Errorf("file holds %q", b)
	}
}
