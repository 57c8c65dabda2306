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
	other, held            *prometheus.Desc
	procs, strays          *prometheus.Desc
}

// NewMetrics exports r; cfg names the services.
func NewMetrics(r *Reconciler, cfg func() *config.Config) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{r: r, cfg: cfg,
		sorry:   n("lvsmon_sorry_server_active", "1 while the virtual service's sorry server takes the traffic.", lvs.ServiceLabels, nil),
		failed:  n("lvsmon_reconcile_failed_actions_total", "IPVS writes the reconciler tried and the kernel refused; each is retried from fresh state.", nil, nil),
		applied: n("lvsmon_reconcile_applied_actions_total", "IPVS writes the reconciler made.", nil, nil),
		other:   n("lvsmon_ipvs_other_writer", "1 while another program writes (or may write) the managed virtual service's IPVS table.", lvs.ServiceLabels, nil),
		held:    n("lvsmon_reconcile_held", "1 while lvsmon does not write the managed virtual service because another program does (ipvs.takeover: when_gone).", lvs.ServiceLabels, nil),
		procs:   n("lvsmon_ipvs_other_writer_processes", "Processes on the director that write IPVS tables (keepalived with virtual_server blocks, ldirectord, pulse, nanny).", nil, nil),
		strays:  n("lvsmon_reconcile_stray_changes_total", "Changes to managed services' IPVS tables that lvsmon did not make.", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	ch <- m.sorry
	ch <- m.failed
	ch <- m.applied
	ch <- m.other
	ch <- m.held
	ch <- m.procs
	ch <- m.strays
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
	seen, held := map[string]float64{}, map[string]float64{}
	procs := 0
	for _, w := range m.r.OtherWriters(cfg) {
		if w.Kind == WriterProcess {
			procs++
		}
		for _, id := range w.Services {
			seen[id] = 1
			if w.Held {
				held[id] = 1
			}
		}
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if !vs.IsManaged() {
			continue
		}
		l := lvs.ServiceLabelValues(vs.Key, vs.Name)
		ch <- prometheus.MustNewConstMetric(m.other, prometheus.GaugeValue, seen[vs.Key.ID()], l...)
		ch <- prometheus.MustNewConstMetric(m.held, prometheus.GaugeValue, held[vs.Key.ID()], l...)
	}
	if m.r.procs != nil { // no scan, no count (an in-memory table)
		ch <- prometheus.MustNewConstMetric(m.procs, prometheus.GaugeValue, float64(procs))
	}
	ch <- prometheus.MustNewConstMetric(m.strays, prometheus.CounterValue, float64(m.r.StrayChanges()))
	s := m.r.Stats()
	ch <- prometheus.MustNewConstMetric(m.failed, prometheus.CounterValue, float64(s.Failed))
	ch <- prometheus.MustNewConstMetric(m.applied, prometheus.CounterValue, float64(s.Applied))
}
