package atomicfile

import (
	"os"
	"path/filepath"
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
