package dashboards

import (
	"path/filepath"
	"slices"
	"testing"

	"github.com/lvsmon/lvsmon/config"
)

// The compose file's Alertmanager: its config from the repository, its
// port published on the host where lvsmon (host network) reaches it as
// the example config says, and Prometheus sending its alerts there by
// the service's name.
func TestComposeAlertmanager(t *testing.T) {
	var c struct {
		Services map[string]struct {
			Image   string   `yaml:"image"`
			Command []string `yaml:"command"`
			Ports   []string `yaml:"ports"`
			Volumes []string `yaml:"volumes"`
		} `yaml:"services"`
	}
	readYAML(t, filepath.Join(root, "docker-compose.yml"), &c)
	am, ok := c.Services["alertmanager"]
	if !ok {
		t.Fatal("no alertmanager service")
	}
	if !slices.Contains(am.Volumes, "./dashboards/alertmanager:/etc/alertmanager:ro") ||
		!slices.Contains(am.Command, "--config.file=/etc/alertmanager/alertmanager.yml") || !slices.Contains(am.Ports, "9093:9093") {
		t.Errorf("alertmanager must load dashboards/alertmanager/alertmanager.yml and publish 9093: %+v", am)
	}
	var prom struct {
		Alerting struct {
			Alertmanagers []struct {
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"alertmanagers"`
		} `yaml:"alerting"`
	}
	readYAML(t, filepath.Join("prometheus", "prometheus.yml"), &prom)
	if a := prom.Alerting.Alertmanagers; len(a) != 1 || len(a[0].StaticConfigs) != 1 || !slices.Equal(a[0].StaticConfigs[0].Targets, []string{"alertmanager:9093"}) {
		t.Errorf("prometheus.yml alerting: %+v", prom.Alerting)
	}
	cfg, err := config.Load(filepath.Join(root, "etc", "lvsmon.example.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if a := cfg.Alerting; a == nil || a.Alertmanager == nil || !slices.Equal(a.Alertmanager.URLs, []string{"http://localhost:9093"}) || a.MailEnabled() {
		t.Errorf("the example config's alerting: %+v", a)
	}
	var amc struct {
		Route struct {
			Receiver string   `yaml:"receiver"`
			GroupBy  []string `yaml:"group_by"`
		} `yaml:"route"`
		Receivers []struct {
			Name string `yaml:"name"`
		} `yaml:"receivers"`
	}
	readYAML(t, filepath.Join("alertmanager", "alertmanager.yml"), &amc)
	if !slices.Equal(amc.Route.GroupBy, []string{"alertname", "director", "service"}) || len(amc.Receivers) != 1 || amc.Receivers[0].Name != amc.Route.Receiver {
		t.Errorf("alertmanager.yml: %+v", amc)
	}
}
