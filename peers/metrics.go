package peers

import "github.com/prometheus/client_golang/prometheus"

// Metrics exports whether each peer answers, when it last did, and its
// drift by table and kind. Drift series exist only while the peer is up:
// an unreachable peer's drift is unknown, never 0.
type Metrics struct {
	mon               *Monitor
	up, drift, lastOK *prometheus.Desc
}

// NewMetrics exports mon.
func NewMetrics(mon *Monitor) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{mon: mon,
		up:     n("lvsmon_peer_up", "1 when the peer director's status API answered the last pull.", []string{"peer"}, nil),
		drift:  n("lvsmon_peer_drift", "Differences between this director and the peer, by table (config, kernel) and kind; absent while the peer is unreachable.", []string{"peer", "table", "kind"}, nil),
		lastOK: n("lvsmon_peer_last_success_timestamp_seconds", "When the peer's status was last pulled, in seconds since the epoch.", []string{"peer"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.up
	ch <- m.drift
	ch <- m.lastOK
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	for _, st := range m.mon.Status() {
		up := 0.0
		if st.Up {
			up = 1
		}
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, up, st.Name)
		if !st.LastSuccess.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.lastOK, prometheus.GaugeValue, float64(st.LastSuccess.UnixNano())/1e9, st.Name)
		}
		if !st.DriftKnown {
			continue
		}
		n := Count(st.Drift)
		for _, table := range []string{TableConfig, TableKernel} {
			for _, k := range Kinds[table] {
				ch <- prometheus.MustNewConstMetric(m.drift, prometheus.GaugeValue, float64(n[[2]string{table, k}]), st.Name, table, k)
			}
		}
	}
}
