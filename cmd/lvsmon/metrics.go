package main

import (
	"log/slog"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/lvsmon/lvsmon/collector"
	"github.com/lvsmon/lvsmon/config"
)

// metricsHandler builds /metrics: lvsmon's exporter over the collector's
// snapshots, plus the Go runtime and process collectors. They live in a
// registry of the daemon's own rather than the global one, so that
// nothing a library registers as a side effect ends up on a director's
// dashboards.
func metricsHandler(coll *collector.Collector, cfg func() *config.Config, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m := collector.NewMetrics(coll, cfg, collector.MetricsOptions{Version: buildVersion()})
	return m.Handler(reg, log)
}
