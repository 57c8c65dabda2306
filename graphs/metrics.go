package graphs

import "github.com/prometheus/client_golang/prometheus"

// Metrics exports the RRD store's health: a damaged or unwritable
// file is logged and shown in the status, and counted here for alerts.
// With the renderer, also its image cache and draws.
type Metrics struct {
	s                               *Store
	r                               *Renderer
	files, updates, errors, failing *prometheus.Desc
	cacheBytes, graphRequests       *prometheus.Desc
}

// NewMetrics exports s and, when r is not nil, r.
func NewMetrics(s *Store, r *Renderer) *Metrics {
	return &Metrics{s: s, r: r,
		cacheBytes: prometheus.NewDesc("lvsmon_graph_cache_bytes", "Bytes of graph images cached (bounded by web.graph_cache_mb).", nil, nil),
		graphRequests: prometheus.NewDesc("lvsmon_graph_requests_total",
			"Graph images asked for, by answer: cached, stale (cached of an earlier step, every draw slot busy), shared (another request's draw of the same image), drawn, failed (librrd error).", []string{"answer"}, nil),
		files:   prometheus.NewDesc("lvsmon_rrd_files", "RRD files the store writes (director, services, real servers).", nil, nil),
		updates: prometheus.NewDesc("lvsmon_rrd_updates_total", "Rows accepted into RRD files.", nil, nil),
		errors:  prometheus.NewDesc("lvsmon_rrd_update_errors_total", "Failed RRD file updates or creations; each failing file is in the status API.", nil, nil),
		failing: prometheus.NewDesc("lvsmon_rrd_failing_files", "RRD files whose last update failed (damaged, unwritable, disk full).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.files
	ch <- m.updates
	ch <- m.errors
	ch <- m.failing
	if m.r != nil {
		ch <- m.cacheBytes
		ch <- m.graphRequests
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	h := m.s.Health()
	ch <- prometheus.MustNewConstMetric(m.files, prometheus.GaugeValue, float64(h.Files))
	ch <- prometheus.MustNewConstMetric(m.updates, prometheus.CounterValue, float64(h.Updates))
	ch <- prometheus.MustNewConstMetric(m.errors, prometheus.CounterValue, float64(h.Errors))
	ch <- prometheus.MustNewConstMetric(m.failing, prometheus.GaugeValue, float64(len(h.FailingFiles)))
	if m.r == nil {
		return
	}
	st := m.r.Stats()
	ch <- prometheus.MustNewConstMetric(m.cacheBytes, prometheus.GaugeValue, float64(st.Bytes))
	for _, a := range []struct {
		answer string
		n      uint64
	}{{"cached", st.Hits}, {"stale", st.Stale}, {"shared", st.Shared}, {"drawn", st.Draws}, {"failed", st.DrawErrors}} {
		ch <- prometheus.MustNewConstMetric(m.graphRequests, prometheus.CounterValue, float64(a.n), a.answer)
	}
}
