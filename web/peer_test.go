package web

import (
	"encoding/json"
	"testing"
	"time"
)

// TestStatusConfigAndPeers: every configured service carries its config
// section (what a peer compares), an unconfigured one none, and the
// peers section is the Source's, with an unreachable peer's drift
// unknown rather than empty.
func TestStatusConfigAndPeers(t *testing.T) {
	s, c, _ := fixture(t)
	c.Sample(t.Context())
	last := time.Date(2026, 12, 3, 14, 0, 0, 0, time.UTC)
	s.src.Peers = func() []PeerStatus {
		return []PeerStatus{
			{Name: "lvs2", URL: "http://lvs2:9160", Up: true, Role: "BACKUP", LastSuccess: last, DriftKnown: true,
				Drift: []Drift{{Table: "kernel", Kind: "weight", Service: "tcp_198.51.100.10_80", Server: "tcp_198.51.100.10_80__10.1.1.2_80", Local: "3", Peer: "1"}}},
			{Name: "lvs3", URL: "http://lvs3:9160", LastError: "connection refused"},
		}
	}
	rec := get(t, s.Handler(), "GET", "/api/v1/status")
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	want := map[string]*ServiceConfig{
		"tcp_198.51.100.10_80": {Scheduler: "wrr", SorryServer: "127.0.0.1:80 dr"},
		"fwm_7_inet":           nil,
		"tcp_2001-db8--10_443": {Scheduler: "wlc"},
	}
	for _, ss := range st.Services {
		w, ok := want[ss.ID]
		switch {
		case !ok:
			t.Errorf("unexpected service %s", ss.ID)
		case w == nil && ss.Config != nil:
			t.Errorf("%s: config %+v, want none", ss.ID, ss.Config)
		case w != nil && (ss.Config == nil || *ss.Config != *w):
			t.Errorf("%s: config %+v, want %+v", ss.ID, ss.Config, w)
		}
	}
	if len(st.Peers) != 2 || !st.Peers[0].Up || len(st.Peers[0].Drift) != 1 || st.Peers[0].Drift[0].Local != "3" || !st.Peers[0].LastSuccess.Equal(last) {
		t.Fatalf("peers = %+v", st.Peers)
	}
	var raw struct {
		Peers []map[string]any `json:"peers"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &raw); err != nil {
		t.Fatal(err)
	}
	if p := raw.Peers[1]; p["up"] != false || p["drift_known"] != false || p["last_error"] != "connection refused" {
		t.Errorf("unreachable peer = %v", p)
	}
}
