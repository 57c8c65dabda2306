package layout

import (
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/lvsmon/lvsmon/"

// layers ranks the packages: a package may import only packages of a
// lower layer (or its own subpackages). Packages not listed (bench,
// dashboards, internal helpers of tests) are not checked.
var layers = map[string]int{
	"lvs": 0, "config": 0, "events": 0, "health": 0, "internal/atomicfile": 0, "internal/buildinfo": 0, "internal/netns": 0,
	"web": 1, "collector": 1, "checker": 1, "probe": 1, "reconcile": 1, "ha": 1, "ha/sources": 1, "alerting": 1, "graphs": 1,
	"importer": 1, "peers": 1, "selfcheck": 1,
	"internal/demo": 2, "internal/ctl": 2,
	"app":        3,
	"cmd/lvsmon": 4,
}

// allowed are the imports between packages of one layer.
var allowed = map[[2]string]bool{
	{"checker", "probe"}:              true, // the scheduler classifies the probes' errors
	{"ha/sources", "ha"}:              true, // the readers fill the model's reports
	{"config", "lvs"}:                 true,
	{"events", "internal/atomicfile"}: true,
	{"config", "events"}:              true,
	{"lvs", "internal/atomicfile"}:    true,
}

func TestImportsFlowOneWay(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	imports := map[string]map[string]bool{}
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n == ".git" || n == "testdata" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		rel, _ := filepath.Rel(root, filepath.Dir(path))
		f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
		if err != nil {
			return err
		}
		for _, im := range f.Imports {
			p, _ := strconv.Unquote(im.Path.Value)
			if !strings.HasPrefix(p, module) {
				continue
			}
			if imports[rel] == nil {
				imports[rel] = map[string]bool{}
			}
			imports[rel][strings.TrimPrefix(p, module)] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for pkg := range layers {
		if _, err := os.Stat(filepath.Join(root, pkg)); err != nil {
			t.Errorf("layers names %s, which does not exist", pkg)
		}
	}
	for pkg, ims := range imports {
		from, ok := layers[pkg]
		if !ok {
			continue
		}
		for im := range ims {
			to, ok := layers[im]
			switch {
			case !ok:
				t.Errorf("%s imports %s, which has no layer", pkg, im)
			case to < from, allowed[[2]string{pkg, im}]:
			default:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports flow one way, down", pkg, from, im, to)
			}
		}
	}
}
