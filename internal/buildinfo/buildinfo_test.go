package buildinfo

import (
	"runtime"
	"testing"
)

// Without -ldflags the build info falls back to what Go recorded, and
// "unknown" where it recorded nothing.
func TestReadFallbacks(t *testing.T) {
	saved := []string{Version, Revision, Branch, User, Date}
	defer func() {
		Version, Revision, Branch, User, Date = saved[0], saved[1], saved[2], saved[3], saved[4]
	}()

	Version, Revision, Branch, User, Date = "1.0", "abc", "main", "u@h", "2025-01-01T00:00:00Z"
	if b := Read(); b.Version != "1.0" || b.Revision != "abc" || b.Branch != "main" || b.User != "u@h" || b.Date != "2025-01-01T00:00:00Z" ||
		b.GoVersion != runtime.Version() || b.GoOS != runtime.GOOS || b.GoArch != runtime.GOARCH {
		t.Errorf("with -ldflags: %+v", b)
	}
	Version, Revision, Branch, User, Date = "", "", "", "", ""
	b := Read()
	if b.Version == "" || b.Branch != "unknown" || b.User != "unknown" || b.Revision == "" || b.Date == "" {
		t.Errorf("without -ldflags: %+v", b)
	}
}
