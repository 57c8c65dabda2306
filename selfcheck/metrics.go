package selfcheck

import "github.com/prometheus/client_golang/prometheus"

// Metrics exports the self checks and the hand-over.
type Metrics struct {
	r                        *Runner
	up, active, refused, act *prometheus.Desc
}

// NewMetrics exports r.
func NewMetrics(r *Runner) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{r: r,
		up:      n("lvsmon_ha_self_check_up", "1 while the self check of the director is up (after rise and fall).", []string{"check"}, nil),
		active:  n("lvsmon_ha_handover_active", "1 while this director hands its VIPs to the peer because its self checks fail.", nil, nil),
		refused: n("lvsmon_ha_handover_refused", "1 while the self checks fail but the hand-over is refused (the peer is not healthy).", nil, nil),
		act:     n("lvsmon_ha_handover_action_failing", "1 while the last hand-over action (track_file write...) failed.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.up, m.active, m.refused, m.act} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	v := m.r.Status()
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	for _, c := range v.Checks {
		ch <- prometheus.MustNewConstMetric(m.up, prometheus.GaugeValue, b(c.Up), c.Name)
	}
	ch <- prometheus.MustNewConstMetric(m.active, prometheus.GaugeValue, b(v.HandedOver))
	ch <- prometheus.MustNewConstMetric(m.refused, prometheus.GaugeValue, b(v.Refused != ""))
	ch <- prometheus.MustNewConstMetric(m.act, prometheus.GaugeValue, b(v.ActionError != ""))
}
