package importer

import (
	"fmt"
	"os"

	"github.com/lvsmon/lvsmon/config"
)

// Load reads the config file at path, whichever program it was written
// for (Detect): lvsmon's YAML is parsed as config.Load does, and res is
// nil; a keepalived.conf, an ldirectord.cf or a piranha lvs.cf is
// imported, the config carries its Origin and res the import's report.
// This is how lvsmon run
// and check-config read their file, at start and at every reload: an
// edited keepalived.conf reloads as a YAML config does.
func Load(path string, opts Options) (cfg *config.Config, res *Result, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read config: %w", err)
	}
	format, err := Detect(path, b)
	if err != nil {
		return nil, nil, err
	}
	switch format {
	case FormatLvsmon:
		cfg, err := config.Parse(path, b)
		return cfg, nil, err
	case FormatLdirectord:
		res, err = Ldirectord(path, b)
	case FormatKeepalived:
		res, err = importKeepalived(path, b, osSource{}, opts)
	case FormatPiranha:
		res, err = Piranha(path, b)
	default:
		return nil, nil, fmt.Errorf("%s: no reader for format %q", path, format)
	}
	if err != nil {
		return nil, nil, err
	}
	cfg = res.Config
	cfg.File = path
	c := res.Counts()
	cfg.Origin = &config.Origin{Format: format, Files: res.Files, Globs: res.Globs,
		Mapped: c[Mapped], Changed: c[Changed], Unsupported: c[Unsupported], Ignored: c[Ignored]}
	return cfg, res, nil
}
