package importer

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPiranhaSample imports the hand-written lvs.cf of testdata/piranha
// (no real piranha sample is installed anywhere: the package is gone
// from distributions) and compares the config and report with the
// golden files (-update rewrites them).
func TestPiranhaSample(t *testing.T) {
	b, err := os.ReadFile("testdata/piranha/lvs.cf")
	if err != nil {
		t.Fatal(err)
	}
	if f, err := Detect("lvs.cf", b); err != nil || f != FormatPiranha {
		t.Fatalf("Detect = %q, %v", f, err)
	}
	r, err := Piranha("lvs.cf", b)
	if err != nil {
		t.Fatal(err)
	}
	var rep bytes.Buffer
	for _, e := range r.Report {
		rep.WriteString(e.String() + "\n")
	}
	rep.WriteString(r.Summary() + "\n")
	pGolden(t, "piranha.lvs.cf.yaml", r.YAML)
	pGolden(t, "piranha.lvs.cf.report", rep.Bytes())

	// Every line that is not a comment or a brace is in the report, on
	// its own or in a block left out whole.
	lines := map[int]bool{}
	for _, e := range r.Report {
		for l := e.Line; l <= max(e.Line, e.EndLine); l++ {
			lines[l] = true
		}
	}
	for i, l := range strings.Split(string(b), "\n") {
		if t2 := strings.TrimSpace(l); t2 != "" && t2[0] != '#' && t2 != "}" && !lines[i+1] {
			t.Errorf("line %d (%s) is not in the report", i+1, t2)
		}
	}

	c := r.Config
	if len(c.VirtualServices) != 4 {
		t.Fatalf("%d services, want www, mail, dns and later", len(c.VirtualServices))
	}
	www := c.VirtualServices[0]
	if www.Port != 80 || www.Scheduler != "wrr" || www.Persistence.D().Seconds() != 300 || www.PersistenceNetmask != 24 || len(www.Reals) != 2 ||
		www.Reals[0].Forward != "dr" || *www.Reals[0].Weight != 3 || *www.Reals[1].Weight != 1 || www.OnFailure != "remove" {
		t.Errorf("www: %+v", www)
	}
	ck := www.Check
	if ck.Type != "simpletcp" || ck.Send != "GET /health HTTP/1.0\r\n\r\n" || ck.Expect != `^HTTP/1\.0 200` || ck.Interval.D().Seconds() != 6 || ck.Rise != 5 || ck.Fall != 1 {
		t.Errorf("www check: %+v", ck)
	}
	if ck := c.VirtualServices[1].Check; ck.Type != "simpletcp" || ck.Expect != "^220" || ck.Interval.D().Seconds() != 10 || ck.Rise != 18 {
		t.Errorf("mail check: %+v", ck)
	}
	if ck := c.VirtualServices[2].Check; ck.Type != "none" {
		t.Errorf("dns check (udp without send cannot fail in nanny): %+v", ck)
	}
	if ck := c.VirtualServices[3].Check; ck.Type != "tcp" {
		t.Errorf("later check (send_program: the import does not know it): %+v", ck)
	}
	if !r.Partial() {
		t.Error("not partial")
	}
}

func pGolden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file (run with -update if the change is meant):\n--- got\n%s", path, got)
	}
}

func TestPiranhaErrors(t *testing.T) {
	for _, tc := range []struct{ name, src, want string }{
		{"unknown directive", "service = lvs\ncolour = red\n", `l.cf:2: unknown directive "colour" here`},
		{"unclosed", "virtual a {\n address = 192.0.2.1\n", "l.cf:1: unbalanced braces"},
		{"stray brace", "}\n", "l.cf:1: a } that closes no block"},
		{"server at the top", "server a {\n}\n", "l.cf:1: a server block cannot stand here"},
		{"no address", "virtual a {\n active = 1\n}\n", "l.cf:1: virtual a has no address"},
		{"host name", "virtual a {\n address = www.example.org eth0:1\n}\n", `l.cf:2: address "www.example.org eth0:1": want an IPv4 address`},
		{"bad scheduler", "virtual a {\n address = 192.0.2.1\n scheduler = sed\n}\n", `l.cf:3: scheduler "sed"`},
		{"bad network", "network = bridge\n", `l.cf:1: network "bridge"`},
		{"twice", "virtual a {\n address = 192.0.2.1\n}\nvirtual b {\n address = 192.0.2.1\n}\n", "l.cf:4: tcp 192.0.2.1:80 is defined twice"},
		{"server twice", "virtual a {\n address = 192.0.2.1\n server x {\n  address = 10.0.0.1\n }\n server y {\n  address = 10.0.0.1\n }\n}\n", "l.cf:6: server y: 10.0.0.1 is in virtual a twice"},
		{"binary", "service = lvs\x00\n", "NUL"},
	} {
		if _, err := Piranha("l.cf", []byte(tc.src)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v; want %q", tc.name, err, tc.want)
		} else if _, ok := err.(*Error); !ok {
			t.Errorf("%s: not an *Error: %v", tc.name, err)
		}
	}
}

// service = fos: piranha runs the failover services, not the virtual
// servers; the import makes none and says so.
func TestPiranhaFos(t *testing.T) {
	r, err := Piranha("l.cf", []byte("service = fos\nvirtual a {\n address = 192.0.2.1\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Config.VirtualServices) != 0 || entry(r, 1, "service").Status != Unsupported || entry(r, 2, "virtual").Status != Ignored {
		t.Errorf("fos: %d services, report %v", len(r.Config.VirtualServices), r.Report)
	}
}

// FuzzPiranha is FuzzLdirectord for lvs.cf.
func FuzzPiranha(f *testing.F) {
	for _, s := range []string{
		"service = lvs\nnetwork = nat\nvirtual a {\n address = 192.0.2.1 eth0:1\n send = \"x\\r\\n\"\n expect = \"*\"\n server b {\n  address = 10.0.0.1\n  weight = 2\n }\n}\n",
		"virtual a {\n address = 192.0.2.1\n protocol = udp\n send = \"\\x\"\n timeout = 1\n reentry = 0\n}\n",
		"service = fos\nfailover f {\n start_cmd = \"a\"\n}\n",
		"virtual a {\n address = 192.0.2.1\n send_program = \"x %h\"\n persistent = 5\n pmask = 255.255.0.0\n}\n",
	} {
		f.Add(s)
	}
	fuzzImport(f, func(s string) (*Result, error) {
		return Piranha("p.cf", []byte(s))
	})
}

// A reentry of more than 100 checks is cut to lvsmon's rise of 100, and
// the report says so; numbers past the import's bounds are errors.
func TestPiranhaBounds(t *testing.T) {
	r, err := Piranha("l.cf", []byte("virtual a {\n address = 192.0.2.1\n timeout = 2\n reentry = 1000\n load_monitor = none\n}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Config.VirtualServices[0].Check; c.Rise != 100 {
		t.Errorf("rise %d, want 100", c.Rise)
	}
	if e := entry(r, 4, "reentry"); e == nil || e.Status != Changed || !strings.Contains(e.Note, "500 checks of 2s: lvsmon's rise stops at 100, so 3m20s") {
		t.Errorf("reentry: %+v", e)
	}
	for _, src := range []string{
		"virtual a {\n address = 192.0.2.1\n timeout = 9999999999999\n}\n",
		"virtual a {\n address = 192.0.2.1\n persistent = 99999999\n}\n",
		"virtual a {\n address = 192.0.2.1\n server b {\n  address = 10.0.0.1\n  weight = 70000\n }\n}\n",
	} {
		if _, err := Piranha("l.cf", []byte(src)); err == nil || !strings.Contains(err.Error(), "more than the import takes") && !strings.Contains(err.Error(), "not a whole number") {
			t.Errorf("%q: %v", src, err)
		}
	}
}
