package ctl

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/web"
)

// TestRenderPair: a director with a peer that drifts and one that cannot
// be reached (drift UNKNOWN, never "none"), then the same pair in sync.
func TestRenderPair(t *testing.T) {
	at := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	st := &web.Status{StatusHead: web.StatusHead{Director: "lvs1", SampledAt: &at, Problems: []web.Problem{{Kind: "kernel_weight_drift"}},
		Role: &web.Role{Role: "MASTER", Instances: []web.RoleInstance{{Instance: "VI_1", VIPs: []web.RoleVIP{{Address: "10.0.0.100", Present: true}, {Address: "10.0.0.53", Present: false}}}}},
		Peers: []web.PeerStatus{
			{Name: "lvs2", URL: "https://lvs2:9160", Up: true, Director: "lvs2", Role: "BACKUP", VIPs: []string{"10.0.0.53"}, SampledAt: at.Add(-time.Second),
				LastSuccess: at, DriftKnown: true, Drift: []web.Drift{
					{Table: "config", Kind: "scheduler", Service: "tcp_10.0.0.100_80", Local: "wrr", Peer: "wlc"},
					{Table: "config", Kind: "check", Service: "tcp_10.0.0.100_80", Local: "type=tcp interval=1s timeout=3s rise=1 fall=1", Peer: "none"},
					{Table: "kernel", Kind: "weight", Service: "tcp_10.0.0.100_80", Server: "tcp_10.0.0.100_80__10.0.1.1_80", Local: "1", Peer: "0"},
					{Table: "kernel", Kind: "service", Service: "udp_10.0.0.53_53", Local: "present", Peer: "absent"}}},
			{Name: "lvs3", URL: "https://lvs3:9160", LastError: "dial tcp 192.0.2.3:9160: connect: connection refused", LastErrorTime: at},
		}}}
	var b bytes.Buffer
	if err := RenderPair(&b, st, time.UTC); err != nil {
		t.Fatal(err)
	}
	st.Peers = st.Peers[:1]
	st.Peers[0].Drift = []web.Drift{}
	b.WriteString("\n---- in sync\n\n")
	if err := RenderPair(&b, st, time.UTC); err != nil {
		t.Fatal(err)
	}
	golden(t, "pair.golden", b.Bytes())
}

// TestPairWithoutPeers: `ctl pair` against a daemon without peers says so.
func TestPairWithoutPeers(t *testing.T) {
	d := startDaemon(t, "")
	out, errb, err := run(t, t.Context(), "pair", "--url", d.URL)
	if err != nil || errb != "" || !strings.Contains(out, "has no peers") {
		t.Fatalf("pair: %v %q %q", err, out, errb)
	}
}
