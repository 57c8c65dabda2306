package reconcile

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// Metrics exports the reconciler's writes and which sorry servers are in.
type Metrics struct {
	r                      *Reconciler
	cfg                    func() *config.Config
	sorry, failed, applied *prometheus.Desc
}

// NewMetrics exports r; cfg names the services.
func NewMetrics(r *Reconciler, cfg func() *config.Config) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{r: r, cfg: cfg,
		sorry:   n("lvsmon_sorry_server_active", "1 while the virtual service's sorry server takes the traffic.", lvs.ServiceLabels, nil),
		failed:  n("lvsmon_reconcile_failed_actions_total", "IPVS writes the reconciler tried and the kernel refused; each is retried from fresh state.", nil, nil),
		applied: n("lvsmon_reconcile_applied_actions_total", "IPVS writes the reconciler made.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.sorry
	ch <- m.failed
	ch <- m.applied
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	cfg := m.cfg()
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if vs.Sorry == nil || !vs.IsManaged() {
			continue
		}
		v := 0.0
		if m.r.SorryActive(vs.Key.ID()) {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(m.sorry, prometheus.GaugeValue, v, lvs.ServiceLabelValues(vs.Key, vs.Name)...)
	}
	s := m.r.Stats()
	ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(m.applied, prometheus.CounterValue, float64(s.Applied))
}
