package app

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/web"
)

// LoadConfig reads the config file at path at start and at every reload,
// whichever program wrote it (importer.Load: lvsmon's YAML, or a
// keepalived.conf, ldirectord.cf or piranha lvs.cf imported, detected by content). An
// import's report is logged: one line per directive that is not simply
// mapped, with its file:line and status, then a summary with the counts,
// a warning when something changed meaning or was left out.
func LoadConfig(path string, opts importer.Options, log *slog.Logger) (*config.Config, error) {
	cfg, res, err := importer.Load(path, opts)
	if err != nil {
		return nil, err
	}
	if res != nil {
		logImport(log, res)
	}
	return cfg, nil
}

func logImport(log *slog.Logger, res *importer.Result) {
	for _, e := range res.Report {
		lvl := slog.LevelWarn
		switch e.Status {
		case importer.Mapped:
			continue
		case importer.Ignored:
			lvl = slog.LevelInfo
		}
		where := e.File + ":" + strconv.Itoa(e.Line)
		if e.EndLine > e.Line {
			where += "-" + strconv.Itoa(e.EndLine)
		}
		log.Log(context.Background(), lvl, "imported config: "+string(e.Status), "where", where, "directive", e.Directive, "note", e.Note)
	}
	c := res.Counts()
	lvl := slog.LevelInfo
	if res.Partial() {
		lvl = slog.LevelWarn
	}
	log.Log(context.Background(), lvl, "config imported from "+res.Format+": "+res.Summary(), "file", res.Source, "files", len(res.Files),
		"mapped", c[importer.Mapped], "changed", c[importer.Changed], "unsupported", c[importer.Unsupported], "ignored", c[importer.Ignored])
}

// fingerprint hashes what the config at path was read from, for the
// file watcher: the file itself, and for an imported keepalived.conf
// every file its includes read and what each include pattern matches
// now (a new file in conf.d/ counts). Zero when path cannot be read.
func fingerprint(path string, o *config.Origin) [32]byte {
	b, err := os.ReadFile(path)
	if err != nil {
		return [32]byte{}
	}
	if o == nil || (len(o.Files) <= 1 && len(o.Globs) == 0) {
		return sha256.Sum256(b)
	}
	h := sha256.New()
	h.Write(b)
	for _, f := range o.Files {
		if f == path {
			continue
		}
		fb, err := os.ReadFile(f)
		if err != nil {
			fb = []byte("unreadable: " + err.Error())
		}
		fmt.Fprintf(h, "\x00%s\x00%d\x00", f, len(fb))
		h.Write(fb)
	}
	for _, g := range o.Globs {
		m, _ := filepath.Glob(g)
		fmt.Fprintf(h, "\x00glob %s\x00%q", g, m)
	}
	var sum [32]byte
	h.Sum(sum[:0])
	return sum
}

// originProblem is the status page's notice that the running config was
// imported and not everything in it is lvsmon's to do.
func originProblem(cfg *config.Config) (web.Problem, bool) {
	o := cfg.Origin
	if !o.Partial() {
		return web.Problem{}, false
	}
	return web.Problem{Source: "config", Kind: "partial_import", Severity: "warning",
		Message: fmt.Sprintf("the config is imported from %s's %s: %d directives are not supported and %d changed meaning; "+
			"the log at the last load lists them, and lvsmon check-config %s prints them", o.Format, cfg.File, o.Unsupported, o.Changed, cfg.File)}, true
}
