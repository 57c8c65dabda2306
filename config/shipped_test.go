package config

import (
	"testing"
)

// TestShippedConfig loads the config the packages install as
// /etc/lvsmon/lvsmon.yaml with the loader lvsmon uses, so that it cannot
// rot, and holds it to its promise: observe only (no virtual service to
// check or write, no HA source, no mail, no write API), on the paths the
// unit allows.
func TestShippedConfig(t *testing.T) {
	cfg, err := Load("../packaging/lvsmon.yaml")
	if err != nil {
		t.Fatalf("the shipped config does not load: %v", err)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("warnings: %v", cfg.Warnings)
	}
	for _, c := range []struct {
		what string
		ok   bool
	}{
		{"no virtual services (nothing checked or written)", len(cfg.VirtualServices) == 0},
		{"no alerting section (no mail)", cfg.Alerting == nil},
		{"no ha section", !cfg.HA.Enabled()},
		{"no write API token", cfg.Web.APITokenFile == "" && cfg.Web.APIToken == ""},
		{"data_dir is the unit's StateDirectory", cfg.DataDir == "/var/lib/lvsmon"},
		{"the netlink backend", cfg.IPVS.Backend == BackendNetlink},
		{"listens on :9160", len(cfg.Listen) == 1 && cfg.Listen[0] == ":9160"},
		{"rrdcached unset", cfg.Graphs.Rrdcached == ""},
	} {
		if !c.ok {
			t.Errorf("the shipped config breaks its promise: %s", c.what)
		}
	}
}
