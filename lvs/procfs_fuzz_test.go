package lvs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// The fuzz targets work on the parsing functions, not on files. Their seed
// corpus is every fixture under testdata/procfs plus the committed entries
// under testdata/fuzz/<target>; run them with
//
//	go test -run='^$' -fuzz=FuzzParseIPVS$ -fuzztime=60s ./lvs/
//	go test -run='^$' -fuzz=FuzzParseIPVSStats -fuzztime=60s ./lvs/

// procfsSeeds adds every fixture file with the given base name (ip_vs,
// ip_vs_stats) and every file of the malformed directory.
func procfsSeeds(f *testing.F, base, malformed string) {
	paths, _ := filepath.Glob(filepath.Join("testdata", "procfs", "*", "net", base))
	more, _ := filepath.Glob(filepath.Join("testdata", "procfs", malformed, "*"))
	for _, p := range append(paths, more...) {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

// procfsCheckFuzzError checks what any failure must be: a procfs *OpError
// wrapping ErrInvalid, since reading from memory cannot fail otherwise.
func procfsCheckFuzzError(t *testing.T, err error) {
	t.Helper()
	var oe *OpError
	if !errors.As(err, &oe) || oe.Backend != "procfs" || oe.Op != "parse" || !errors.Is(err, ErrInvalid) {
		t.Fatalf("error %q (%T) is not a procfs parse error wrapping ErrInvalid", err, err)
	}
}

// FuzzParseIPVS: parsing never panics; what parses is sorted, renders, and
// reads back equal; and rendering is a fixed point.
func FuzzParseIPVS(f *testing.F) {
	procfsSeeds(f, "ip_vs", "malformed")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, data []byte) {
		tab, err := ParseProcfs(ctx, bytes.NewReader(data), "fuzz", 0)
		if err != nil {
			procfsCheckFuzzError(t, err)
			return
		}
		if !procfsSorted(tab) {
			t.Fatalf("parsed table is not sorted: %s", procfsKeys(tab))
		}
		var out bytes.Buffer
		if err := WriteProcfs(&out, tab); err != nil {
			t.Fatalf("parsed table does not render: %v", err)
		}
		text := out.String()
		again, err := ParseProcfs(ctx, &out, "rendered", 0)
		if err != nil {
			t.Fatalf("rendering does not parse: %v\n%s", err, text)
		}
		if d := procfsDiff(again, tab); d != "" {
			t.Fatalf("round trip: %s\n%s", d, text)
		}
		out.Reset()
		if err := WriteProcfs(&out, again); err != nil || out.String() != text {
			t.Fatalf("rendering is not a fixed point (%v):\n%s\n%s", err, text, out.String())
		}
	})
}

// FuzzParseIPVSStats: parsing never panics; what parses renders and reads
// back equal.
func FuzzParseIPVSStats(f *testing.F) {
	procfsSeeds(f, "ip_vs_stats", "malformed_stats")
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseProcfsStats(bytes.NewReader(data), "fuzz")
		if err != nil {
			procfsCheckFuzzError(t, err)
			return
		}
		var out bytes.Buffer
		if err := WriteProcfsStats(&out, st); err != nil {
			t.Fatal(err)
		}
		again, err := ParseProcfsStats(&out, "rendered")
		if err != nil || again != st {
			t.Fatalf("round trip: got %+v, %v; want %+v\n%s", again, err, st, out.String())
		}
	})
}
