package app

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

// The self checks never hand the VIPs to a peer that cannot be reached
// or that fails its own self checks; without peers they leave the choice
// to the HA stack.
func TestPeerHealth(t *testing.T) {
	var problems atomic.Value
	problems.Store([]map[string]string{})
	peer := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"director": "lvs2", "version": "t", "problems": problems.Load(),
			"virtual_services": []any{}, "page": map[string]int{"offset": 0, "returned": 0, "total_services": 0}})
	}))
	defer peer.Close()

	a, _, _ := newTestApp(t, testConfig(t, "127.0.0.1:0"))
	if _, known, _ := a.peerHealth(); known {
		t.Error("without peers the peer's health is known")
	}
	cfg, err := config.Parse("t.yaml", []byte("ipvs: {backend: fake}\npeers: [{name: lvs2, url: \""+peer.URL+"\"}]\n"))
	if err != nil {
		t.Fatal(err)
	}
	a.peers.Apply(cfg.Peers)
	if ok, known, why := a.peerHealth(); ok || !known || !strings.Contains(why, "not pulled yet") {
		t.Errorf("before the first pull: %v %v %q", ok, known, why)
	}
	a.peers.PollOnce(t.Context())
	if ok, known, why := a.peerHealth(); !ok || !known {
		t.Errorf("a healthy peer: %v %v %q", ok, known, why)
	}
	problems.Store([]map[string]string{{"source": "selfcheck", "kind": "handover", "severity": "critical", "message": "sshd down"}})
	a.peers.PollOnce(t.Context())
	if ok, _, why := a.peerHealth(); ok || !strings.Contains(why, "fails its own self checks") {
		t.Errorf("a peer handing over itself: %v %q", ok, why)
	}
	peer.Close()
	a.peers.PollOnce(t.Context())
	if ok, _, why := a.peerHealth(); ok || !strings.Contains(why, "cannot be reached") {
		t.Errorf("an unreachable peer: %v %q", ok, why)
	}
}
