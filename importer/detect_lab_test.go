//go:build lab

package importer

import (
	"os"
	"path/filepath"
	"testing"
)

// TestDetectSamples: every sample Debian's keepalived and ldirectord
// ship is detected as what it is (the real files, read at test time).
func TestDetectSamples(t *testing.T) {
	samples, err := filepath.Glob(filepath.Join(keepalivedSamples, "keepalived.conf.*"))
	if err != nil || len(samples) < 20 {
		t.Fatalf("keepalived's samples are missing (%d found, %v): scripts/deps.sh test installs keepalived", len(samples), err)
	}
	want := map[string]string{ldirectordExample: FormatLdirectord}
	for _, s := range samples {
		want[s] = FormatKeepalived
	}
	for path, format := range want {
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := Detect(path, b); err != nil || got != format {
			t.Errorf("Detect = %q, %v; want %q", got, err, format)
		}
	}
}
