package checker

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/health"
	"github.com/lvsmon/lvsmon/lvs"
)

// Metrics exports the checker's state per real server (with the table's
// labels, so the series join without relabelling), its inconclusive
// results, its scheduling lag and the mass-failure guard's holds.
type Metrics struct {
	c                                        *Checker
	cfg                                      func() *config.Config
	up, dur, fails, stalled                  *prometheus.Desc
	inconclusive, srvInconclusive, lag, held *prometheus.Desc
	holds, heldTotal, weight                 *prometheus.Desc
}

// NewMetrics exports c; cfg names the servers.
func NewMetrics(c *Checker, cfg func() *config.Config) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{c: c, cfg: cfg,
		up:              n("lvsmon_real_server_up", "1 when the real server's health checks pass (after rise), 0 when they fail (after fall); absent before the first result and for servers without a check.", lvs.RealServerLabels, nil),
		dur:             n("lvsmon_real_server_check_duration_seconds", "How long the real server's last health check took.", lvs.RealServerLabels, nil),
		fails:           n("lvsmon_real_server_check_failures_total", "Failed health checks of the real server.", lvs.RealServerLabels, nil),
		stalled:         n("lvsmon_real_server_check_stalled", "1 when the real server's check loop has not reported for three intervals plus its timeout (a frozen checker).", lvs.RealServerLabels, nil),
		inconclusive:    n("lvsmon_checks_inconclusive_total", "Health check results that said nothing about the real server because of the director's own trouble (reason: fd_exhausted, no_buffers, no_memory, ports_exhausted, exec_failed, scheduling_lag, check_input: a file check's file missing, unreadable or not a number); they change no health and no weight.", []string{"reason"}, nil),
		srvInconclusive: n("lvsmon_real_server_checks_inconclusive_total", "The real server's inconclusive check results (the director's own trouble).", lvs.RealServerLabels, nil),
		lag:             n("lvsmon_checker_scheduling_lag_seconds", "The largest lateness of lvsmon's own timers over the last minute: a starved director (check timeouts during such lag are inconclusive).", nil, nil),
		held:            n("lvsmon_real_server_down_held", "1 while the mass-failure guard holds this real server's down (nothing is written for it).", lvs.RealServerLabels, nil),
		heldTotal:       n("lvsmon_guard_held_servers", "Real servers whose down the mass-failure guard holds now (0 when no hold is in force).", nil, nil),
		weight:          n("lvsmon_real_server_check_weight", "The weight the real server's checks set (an external check's dynamic exit status, a file check's value), written instead of the configured weight while it is up; absent when no check sets one.", lvs.RealServerLabels, nil),
		holds:           n("lvsmon_guard_holds", "Mass-failure holds in force, by scope (a service id, or director) and failure class.", []string{"scope", "class"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.up, m.dur, m.fails, m.stalled, m.inconclusive, m.srvInconclusive, m.lag, m.held, m.holds, m.heldTotal, m.weight} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	cfg := m.cfg()
	byID := map[string][]string{}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		for _, r := range vs.Reals {
			byID[lvs.DestID(vs.Key, r.Key)] = lvs.RealServerLabelValues(vs.Key, vs.Name, r.Key)
		}
	}
	gauge := func(d *prometheus.Desc, on bool, lv ...string) {
		v := 0.0
		if on {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, lv...)
	}
	for _, st := range m.c.Status() {
		lv, ok := byID[st.ID]
		if !ok {
			continue
		}
		if st.Health != health.Unknown {
			gauge(m.up, st.Health == health.Up, lv...)
		}
		if !st.LastTime.IsZero() {
			ch <- prometheus.MustNewConstMetric(m.dur, prometheus.GaugeValue, st.LastDur.Seconds(), lv...)
		}
		ch <- prometheus.MustNewConstMetric(m.fails, prometheus.CounterValue, float64(st.Failures), lv...)
		gauge(m.stalled, st.Stalled, lv...)
		ch <- prometheus.MustNewConstMetric(m.srvInconclusive, prometheus.CounterValue, float64(st.Inconclusive), lv...)
		gauge(m.held, st.Held, lv...)
		if st.CheckWeight != nil {
			ch <- prometheus.MustNewConstMetric(m.weight, prometheus.GaugeValue, float64(*st.CheckWeight), lv...)
		}
	}
	loc := m.c.Local()
	for _, r := range LocalReasons {
		ch <- prometheus.MustNewConstMetric(m.inconclusive, prometheus.CounterValue, float64(loc.Inconclusive[r]), r)
	}
	ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, loc.Lag.Seconds())
	heldServers := 0
	for _, h := range m.c.Holds() {
		heldServers += len(h.Servers)
		scope := h.Scope
		if scope == DirectorScope {
			scope = "director"
		}
		ch <- prometheus.MustNewConstMetric(m.holds, prometheus.GaugeValue, 1, scope, string(h.Class))
	}
	ch <- prometheus.MustNewConstMetric(m.heldTotal, prometheus.GaugeValue, float64(heldServers))
}
