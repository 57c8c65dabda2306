package ha

import (
	"strconv"

	"github.com/prometheus/client_golang/prometheus"
)

// Metrics exports the role per instance, the disagreements, the sources
// and whether this director acts.
type Metrics struct {
	mon                                                 *Monitor
	acting                                              func() bool
	state, prio, vips, vipsHere, disagree, changes, src *prometheus.Desc
	wire, actingDesc                                    *prometheus.Desc
}

var metricStates = []State{StateMaster, StateBackup, StateFault, StateStop, StateUnknown}

// NewMetrics exports mon; acting is the reconciler's gate (ha_acting).
func NewMetrics(mon *Monitor, acting func() bool) *Metrics {
	n := prometheus.NewDesc
	return &Metrics{mon: mon, acting: acting,
		state:      n("lvsmon_ha_instance_state", "1 for the HA instance's current state (MASTER, BACKUP, FAULT, STOP, UNKNOWN), 0 for the others.", []string{"ha_instance", "state"}, nil),
		prio:       n("lvsmon_ha_instance_priority", "Effective VRRP priority of the instance as its source reports it.", []string{"ha_instance"}, nil),
		vips:       n("lvsmon_ha_instance_vips", "VIPs of the instance that lvsmon watches.", []string{"ha_instance"}, nil),
		vipsHere:   n("lvsmon_ha_instance_vips_present", "VIPs of the instance present on a local interface.", []string{"ha_instance"}, nil),
		disagree:   n("lvsmon_ha_disagreement", "1 while the role sources disagree in this way for longer than the grace period (stale VIP, master without VIP, two masters...).", []string{"ha_instance", "kind"}, nil),
		changes:    n("lvsmon_ha_role_changes_total", "Role changes of the instance since lvsmon started.", []string{"ha_instance"}, nil),
		src:        n("lvsmon_ha_source_up", "1 when the role source's last read succeeded.", []string{"source"}, nil),
		wire:       n("lvsmon_ha_wire_masters", "Routers advertising as master for the instance's VRID on the wire (more than 1: two masters).", []string{"ha_instance", "vrid"}, nil),
		actingDesc: n("lvsmon_ha_acting", "1 when this director writes IPVS (always 1 unless ha.act_only_on is master).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.state, m.prio, m.vips, m.vipsHere, m.disagree, m.changes, m.src, m.wire, m.actingDesc} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	st := m.mon.Status()
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	b := func(ok bool) float64 {
		if ok {
			return 1
		}
		return 0
	}
	for _, in := range st.Instances {
		for _, s := range metricStates {
			g(m.state, b(in.State == s), in.Instance, s.String())
		}
		g(m.prio, float64(in.Priority), in.Instance)
		here := 0
		for _, v := range in.VIPs {
			if v.Present {
				here++
			}
		}
		g(m.vips, float64(len(in.VIPs)), in.Instance)
		g(m.vipsHere, float64(here), in.Instance)
		for _, k := range DisagreementKinds {
			active := false
			for _, d := range in.Disagreements {
				active = active || d == k
			}
			g(m.disagree, b(active), in.Instance, k)
		}
		ch <- prometheus.MustNewConstMetric(m.changes, prometheus.CounterValue, float64(in.Changes), in.Instance)
		if in.VRID != 0 {
			g(m.wire, float64(len(in.WireMasters)), in.Instance, strconv.Itoa(in.VRID))
		}
	}
	for _, s := range st.Sources {
		g(m.src, b(s.Up), s.Name)
	}
	g(m.actingDesc, b(m.acting()))
}
