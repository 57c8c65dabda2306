package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/lvsmon/lvsmon/collector"
)

// Set at build time by the Makefile with -ldflags "-X main.version=...
// -X main.revision=... -X main.branch=... -X main.buildUser=...
// -X main.buildDate=..."; what is not set comes from the build info Go
// records (the VCS revision and commit time) or reads "unknown".
var (
	version   = ""
	revision  = ""
	branch    = ""
	buildUser = ""
	buildDate = ""
)

// build describes this binary, as `lvsmon version` prints it and
// lvsmon_build_info labels it.
type build struct {
	Version, Revision, Branch, User, Date, GoVersion, GoOS, GoArch, Tags string
}

// readBuild fills what -ldflags left unset from debug.ReadBuildInfo.
func readBuild() build {
	b := build{Version: version, Revision: revision, Branch: branch, User: buildUser, Date: buildDate,
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

// buildVersion is the version alone, for logs and the status page.
func buildVersion() string { return readBuild().Version }

// metricsInfo is the build as lvsmon_build_info exports it.
func (b build) metricsInfo() collector.BuildInfo {
	return collector.BuildInfo{Version: b.Version, Revision: b.Revision, Branch: b.Branch,
		GoVersion: b.GoVersion, GoOS: b.GoOS, GoArch: b.GoArch, Tags: b.Tags}
}

// print writes the build as Prometheus' tools print theirs (`prometheus
// --version`), so scripts that read one read the other.
func (b build) print(w io.Writer) {
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
