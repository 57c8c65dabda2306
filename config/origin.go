package config

// Origin says where a config came from when lvsmon read another program's
// file rather than its own YAML (lvsmon run --config keepalived.conf): the
// import made it, and the status API, the status page and the log say so.
// It is nil for lvsmon's YAML.
type Origin struct {
	// Format is the other program's: keepalived, ldirectord.
	Format string
	// Files are every file read, the named one first (keepalived's
	// includes after it), and Globs the include patterns: a reload is
	// due when any of them changes or a pattern matches other files.
	Files []string
	Globs []string
	// Mapped, Changed, Unsupported and Ignored count the directives by
	// what became of them.
	Mapped, Changed, Unsupported, Ignored int
}

// Partial reports whether something changed meaning or was left out.
func (o *Origin) Partial() bool { return o != nil && (o.Changed > 0 || o.Unsupported > 0) }
