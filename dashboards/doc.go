// Package dashboards holds no code. Its directory has lvsmon's Grafana
// dashboards (grafana/dashboards), Grafana provisioning files
// (grafana/provisioning), and Prometheus' config, recording and alerting
// rules and their unit tests (prometheus/), which docker-compose.yml mounts.
//
// The package exists for its tests: they lint those files and the
// deployment files at the repository root (docker-compose.yml, Dockerfile),
// run promtool over the rules, and fail when a dashboard or rule names a
// metric lvsmon does not export, as read from the golden /metrics files of
// cmd/lvsmon's end-to-end test. A new metric family becomes usable here as
// soon as it is in those golden files.
package dashboards
