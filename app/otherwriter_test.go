package app

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/lvsmon/lvsmon/lvs"
)

// A change to the table lvsmon did not make is a critical problem on the
// status page while the service is held, and a warning with
// ipvs.takeover: always.
func TestOtherWriterProblem(t *testing.T) {
	for _, tc := range []struct {
		takeover, severity, says string
	}{
		{"when_gone", "critical", "lvsmon does not write these services"},
		{"always", "warning", "lvsmon writes them anyway"},
	} {
		t.Run(tc.takeover, func(t *testing.T) {
			cfg := testConfig(t, "127.0.0.1:0")
			cfg.IPVS.Takeover = tc.takeover
			a, fake, _ := newTestApp(t, cfg)
			for range 2 {
				if err := a.rec.Round(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			for _, p := range a.problems() {
				t.Errorf("problem before any other writer: %+v", p)
			}
			k := lvs.AddrKey(lvs.TCP, netip.MustParseAddr("192.0.2.10"), 80)
			fake.Mutate(func(tab *lvs.Table) { tab.Service(k).Dests[0].Weight = 9 })
			if err := a.rec.Round(t.Context()); err != nil {
				t.Fatal(err)
			}
			ps := a.problems()
			if len(ps) != 1 || ps[0].Kind != "other_writer" || ps[0].Severity != tc.severity || ps[0].Since.IsZero() ||
				!strings.Contains(ps[0].Message, "tcp_192.0.2.10_80: weight of 10.0.1.1:80 1 -> 9") || !strings.Contains(ps[0].Message, tc.says) {
				t.Errorf("problems = %+v", ps)
			}
		})
	}
}
