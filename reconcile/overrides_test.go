package reconcile

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestOverridesSurviveDamage: a damaged overrides.json never stops a
// start. What can be read is kept, the rest is named, the damaged file
// is kept in corrupt/ and the file is rewritten, so the next start is
// clean.
func TestOverridesSurviveDamage(t *testing.T) {
	since := `"since":"2026-11-01T12:00:00Z"`
	valid := `{
  "a": {"mode":"drain",` + since + `,"by":"10.9.9.9"},
  "b": {"mode":"disable",` + since + `},
  "c": {"mode":"drain",` + since + `}
}
`
	tests := []struct {
		name    string
		content string
		kept    []string
		problem []string // "" when the file is fine
	}{
		{"fine", valid, []string{"a", "b", "c"}, nil},
		{"null", "null\n", nil, nil},
		{"truncated: complete entries kept", valid[:strings.Index(valid, `"c"`)+12], []string{"a", "b"}, []string{"unexpected EOF", "2 override(s) kept"}},
		{"cut after a comma", valid[:strings.Index(valid, `"b"`)], []string{"a"}, []string{"1 override(s) kept"}},
		{"unknown mode dropped and named", `{"a":{"mode":"drain"},"x":{"mode":"explode"},"b":{"mode":"disable"}}`, []string{"a", "b"}, []string{`server x dropped: unknown mode "explode"`}},
		{"entry of the wrong type dropped", `{"a":{"mode":"drain"},"y":5,"z":{"mode":"drain","since":"yesterday"}}`, []string{"a"}, []string{"server y dropped: json: cannot unmarshal number", "server z dropped"}},
		{"garbage", "\x00\x00\x00garbage", nil, []string{"invalid character", "0 override(s) kept"}},
		{"empty file (a full disk)", "", nil, []string{"the file is empty"}},
		{"a list", `["a","b"]`, nil, []string{"not a JSON object"}},
		{"data after the object", `{"a":{"mode":"drain"}}{"b":{"mode":"drain"}}`, []string{"a"}, []string{"data after the end"}},
		{"syntax error mid-way", `{"a":{"mode":"drain"}, "b" {"mode":"drain"}}`, []string{"a"}, []string{"expected colon after object key"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, "overrides.json")
			if err := os.WriteFile(p, []byte(tc.content), 0o640); err != nil {
				t.Fatal(err)
			}
			var logBuf bytes.Buffer
			o, err := OpenOverridesLog(dir, slog.New(slog.NewTextHandler(&logBuf, nil)))
			if err != nil {
				t.Fatalf("OpenOverrides failed: %v", err)
			}
			ids := func(o *Overrides) []string {
				var out []string
				for id := range o.All() {
					out = append(out, id)
				}
				slices.Sort(out)
				return out
			}
			if got := ids(o); !slices.Equal(got, tc.kept) {
				t.Errorf("kept %v, want %v", got, tc.kept)
			}
			copies, _ := filepath.Glob(filepath.Join(dir, "corrupt", "overrides.json.*"))
			if tc.problem == nil {
				if o.Problem() != "" || len(copies) != 0 || logBuf.Len() != 0 {
					t.Errorf("a fine file: problem %q, copies %v, log %q", o.Problem(), copies, logBuf.String())
				}
				return
			}
			for _, w := range append(tc.problem, p) {
				if !strings.Contains(o.Problem(), w) {
					t.Errorf("Problem() = %q, want it to say %q", o.Problem(), w)
				}
			}
			if !strings.Contains(logBuf.String(), "level=ERROR") || !strings.Contains(logBuf.String(), "file="+p) {
				t.Errorf("no error logged naming the file: %q", logBuf.String())
			}
			if len(copies) != 1 {
				t.Fatalf("copies of the damaged file: %v", copies)
			}
			if b, _ := os.ReadFile(copies[0]); string(b) != tc.content {
				t.Errorf("the copy holds %q", b)
			}
			if !strings.Contains(o.Problem(), copies[0]) {
				t.Errorf("Problem() = %q does not name the copy", o.Problem())
			}
			// Rewritten with what was kept: the next start is clean and
			// keeps the same overrides.
			o2, err := OpenOverridesLog(dir, quiet)
			if err != nil || o2.Problem() != "" || !slices.Equal(ids(o2), tc.kept) {
				t.Errorf("next start: %v, problem %q, err %v", ids(o2), o2.Problem(), err)
			}
		})
	}
}

func TestOverridesKeepEntryDetails(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "overrides.json"), []byte(`{"a":{"mode":"drain","since":"2026-11-01T12:00:00Z","by":"10.9.9.9"},"b":`), 0o640)
	o, err := OpenOverridesLog(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	e := o.Entries()["a"]
	if e.Mode != Drain || e.By != "10.9.9.9" || !e.Since.Equal(time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)) {
		t.Errorf("entry = %+v", e)
	}
}

// An override's comment is kept across a restart.
func TestOverridesKeepComment(t *testing.T) {
	dir := t.TempDir()
	o, err := OpenOverridesLog(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.SetWithComment("a", Drain, "10.9.9.9", "kernel upgrade"); err != nil {
		t.Fatal(err)
	}
	if err := o.Set("b", Disable, "10.9.9.9"); err != nil {
		t.Fatal(err)
	}
	again, err := OpenOverridesLog(dir, quiet)
	if err != nil {
		t.Fatal(err)
	}
	if a, b := again.Entries()["a"], again.Entries()["b"]; a.Comment != "kernel upgrade" || a.Mode != Drain || b.Comment != "" || b.Mode != Disable {
		t.Errorf("after a restart: a %+v, b %+v", a, b)
	}
}

func TestOverridesRemoveTemporaries(t *testing.T) {
	dir := t.TempDir()
	leftover := filepath.Join(dir, ".overrides.json.tmp-4242")
	os.WriteFile(leftover, []byte(`{"half":`), 0o640)
	o, err := OpenOverridesLog(dir, quiet)
	if err != nil || len(o.All()) != 0 || o.Problem() != "" {
		t.Fatalf("open: %v %v %q", o.All(), err, o.Problem())
	}
	if _, err := os.Stat(leftover); !os.IsNotExist(err) {
		t.Errorf("leftover still there: %v", err)
	}
	if err := o.Set("a", Drain, "test"); err != nil {
		t.Fatal(err)
	}
	if o2, err := OpenOverrides(dir); err != nil || o2.All()["a"] != Drain {
		t.Errorf("reopened: %v, %v", o2.All(), err)
	}
}

// A file that cannot be read at all stops the start: without the
// operators' drains, drained servers would come back.
func TestOverridesUnreadableFileFails(t *testing.T) {
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "overrides.json"), 0o750)
	if _, err := OpenOverridesLog(dir, quiet); err == nil {
		t.Error("an unreadable overrides file was ignored")
	}
}
