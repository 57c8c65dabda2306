//go:build lab

package importer

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

// The fixtures are the sample configs Debian's keepalived and ldirectord
// packages ship (scripts/deps.sh test installs both), read at test time:
// text no one here wrote. Only our output is committed, as golden files.
const (
	keepalivedSamples = "/usr/share/doc/keepalived/samples"
	ldirectordExample = "/usr/share/doc/ldirectord/examples/ldirectord.cf"
)

// TestImportSamples imports every sample: no error, every line that is
// not a comment accounted for in the report, output that validates, and
// output and report as the golden files say.
func TestImportSamples(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join(keepalivedSamples, "keepalived.conf.*"))
	if err != nil || len(samples) < 20 {
		t.Fatalf("keepalived's samples are missing (%d found, %v): scripts/deps.sh test installs keepalived", len(samples), err)
	}
	for _, path := range samples {
		name := filepath.Base(path)
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			// Read under its base name, so the golden files do not
			// depend on where the package put it.
			r, err := importKeepalived(name, b, osSource{}, Options{ConfigID: "high"})
			if err != nil {
				t.Fatal(err)
			}
			checkSample(t, name, string(b), r, keepalivedComment)
		})
	}
	b, err := os.ReadFile(ldirectordExample)
	if err != nil {
		t.Fatalf("%v: scripts/deps.sh test installs ldirectord", err)
	}
	t.Run("ldirectord.cf", func(t *testing.T) {
		r, err := Ldirectord("ldirectord.cf", b)
		if err != nil {
			t.Fatal(err)
		}
		checkSample(t, "ldirectord.cf", string(b), r, ldirectordComment)
	})
	// Most of the example's virtuals are commented out: the same file with
	// its sample blocks switched on tests them too.
	on := uncommentLdirectord(string(b))
	t.Run("ldirectord.cf-uncommented", func(t *testing.T) {
		r, err := Ldirectord("ldirectord.cf-uncommented", []byte(on))
		if err != nil {
			t.Fatal(err)
		}
		if len(r.Config.VirtualServices) < 15 {
			t.Errorf("only %d virtual services from the uncommented example", len(r.Config.VirtualServices))
		}
		checkSample(t, "ldirectord.cf-uncommented", on, r, ldirectordComment)
	})
}

var (
	keepalivedComment = regexp.MustCompile(`^\s*([!#].*)?$`)
	ldirectordComment = regexp.MustCompile(`^\s*(#.*)?$`)
)

// uncommentLdirectord switches on the example's commented virtual
// blocks: "#virtual=", "#\treal=" and so on lose their "#" (a doubled
// "##" or "#\t#" stays a comment, as the authors meant).
func uncommentLdirectord(s string) string {
	lines := strings.Split(s, "\n")
	in := false
	for i, l := range lines {
		switch {
		case strings.HasPrefix(l, "#virtual"):
			lines[i], in = l[1:], true
		case in && strings.HasPrefix(l, "#\t") && !strings.HasPrefix(l, "#\t#"):
			lines[i] = l[1:]
		case in && strings.HasPrefix(l, "#\t#"):
			lines[i] = l[1:]
		default:
			in = false
		}
	}
	return strings.Join(lines, "\n")
}

func checkSample(t *testing.T, name, src string, r *Result, comment *regexp.Regexp) {
	t.Helper()
	for i, line := range strings.Split(src, "\n") {
		no := i + 1
		if comment.MatchString(line) || strings.TrimSpace(line) == "}" {
			continue
		}
		named := false
		for _, e := range r.Report {
			if e.File == name && (e.Line == no || e.Line < no && no <= e.EndLine) {
				named = true
				break
			}
		}
		if !named {
			t.Errorf("%s:%d: %q is named by no report entry", name, no, line)
		}
	}
	if _, err := config.Parse(name, r.YAML); err != nil {
		t.Errorf("the output does not validate: %v", err)
	}
	var rep strings.Builder
	for _, e := range r.Report {
		rep.WriteString(e.String() + "\n")
	}
	rep.WriteString(r.Summary() + "\n")
	golden(t, name+".yaml", r.YAML)
	golden(t, name+".report", []byte(rep.String()))
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if string(want) != string(got) {
		t.Errorf("%s differs from the golden file (run with -update if the change is meant):\n--- got\n%s", path, got)
	}
}
