package importer

import (
	"flag"
	"os"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden and the README's mapping tables")

// TestReadmeTables: the README's mapping tables are the importer's, so
// the documentation cannot drift from what the import does.
func TestReadmeTables(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(b)
	for _, f := range Formats() {
		begin, end := "<!-- import table "+f+" (generated: go test ./importer -run TestReadmeTables -update) -->\n", "<!-- end import table "+f+" -->"
		i, j := strings.Index(readme, begin), strings.Index(readme, end)
		if i < 0 || j < i {
			t.Fatalf("README.md lacks the markers %q and %q", begin, end)
		}
		got, want := readme[i+len(begin):j], MarkdownTable(f)
		if got == want {
			continue
		}
		if *update {
			readme = readme[:i+len(begin)] + want + readme[j:]
			continue
		}
		t.Errorf("README.md's %s table differs from the importer's (go test ./importer -run TestReadmeTables -update)", f)
	}
	if *update {
		if err := os.WriteFile("../README.md", []byte(readme), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestRulesComplete: every rule has a status and a note or a mapping,
// and no directive is listed twice.
func TestRulesComplete(t *testing.T) {
	for _, f := range Formats() {
		seen := map[string]bool{}
		for _, r := range Rules(f) {
			if seen[r.Directive] {
				t.Errorf("%s: %s is listed twice", f, r.Directive)
			}
			seen[r.Directive] = true
			if r.Status == "" || (r.Note == "" && r.Maps == "") {
				t.Errorf("%s: %s has no status or no explanation", f, r.Directive)
			}
		}
	}
}
