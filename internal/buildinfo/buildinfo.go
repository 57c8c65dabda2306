// Package buildinfo says which build of lvsmon is running: what the
// Makefile stamps with -ldflags, or else what Go recorded.
package buildinfo

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// Set at build time by the Makefile with -ldflags
// "-X github.com/lvsmon/lvsmon/internal/buildinfo.Version=..." (and
// Revision, Branch, User, Date); what is not set comes from the build
// info Go records (the VCS revision and commit time) or reads "unknown".
var (
	Version  = ""
	Revision = ""
	Branch   = ""
	User     = ""
	Date     = ""
)

// Info describes this binary, as `lvsmon version` prints it and
// lvsmon_build_info labels it.
type Info struct {
	Version, Revision, Branch, User, Date, GoVersion, GoOS, GoArch, Tags string
}

// Read fills what -ldflags left unset from debug.ReadBuildInfo.
func Read() Info {
	b := Info{Version: Version, Revision: Revision, Branch: Branch, User: User, Date: Date,
		GoVersion: runtime.Version(), GoOS: runtime.GOOS, GoArch: runtime.GOARCH}
	var vcsRev, vcsTime, modVersion string
	var modified bool
	if bi, ok := debug.ReadBuildInfo(); ok {
		modVersion = bi.Main.Version
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				vcsRev = s.Value
			case "vcs.time":
				vcsTime = s.Value
			case "vcs.modified":
				modified = s.Value == "true"
			case "-tags":
				b.Tags = s.Value
			}
		}
	}
	if b.Revision == "" && vcsRev != "" {
		b.Revision = vcsRev
		if modified {
			b.Revision += "-modified"
		}
	}
	if b.Date == "" {
		b.Date = vcsTime // the commit's time: the best a plain go build knows
	}
	if b.Version == "" {
		switch {
		case len(vcsRev) >= 12:
			b.Version = vcsRev[:12]
		case modVersion != "" && modVersion != "(devel)":
			b.Version = modVersion
		default:
			b.Version = "devel"
		}
	}
	for _, f := range []*string{&b.Revision, &b.Branch, &b.User, &b.Date} {
		if *f == "" {
			*f = "unknown"
		}
	}
	return b
}

// Print writes the build as Prometheus' tools print theirs (`prometheus
// --version`), so scripts that read one read the other.
func (b Info) Print(w io.Writer) {
	tags := b.Tags
	if tags == "" {
		tags = "none"
	}
	fmt.Fprintf(w, `lvsmon, version %s (branch: %s, revision: %s)
  build user:       %s
  build date:       %s
  go version:       %s
  platform:         %s/%s
  tags:             %s
`, b.Version, b.Branch, b.Revision, b.User, b.Date, b.GoVersion, b.GoOS, b.GoArch, tags)
}
