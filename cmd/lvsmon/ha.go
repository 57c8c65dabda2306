package main

import (
	"context"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/ha/sources"
	"github.com/lvsmon/lvsmon/web"
)

// haRole runs the role sources of the ha section and their Monitor. A
// reload that changes the section restarts the sources with the new
// settings (a source holds a FIFO, a socket in a namespace, child
// processes) and reconfigures the Monitor, which keeps what it knows of
// the instances that remain.
type haRole struct {
	mon       *ha.Monitor
	actOnlyOn atomic.Pointer[string]
	log       *slog.Logger
	// changed, when set, is called after each role event (alerting's
	// master-only gate and the reconciler want to know at once).
	changed func()
	// extra are sources not from the config (the demo's simulated pair).
	extra []roleSource

	mu      sync.Mutex
	stopSrc func() // stops the running sources and waits for them
}

// newHARole builds the Monitor; the events it finds go to the event log.
func newHARole(cfg *config.Config, ev *events.Log, log *slog.Logger, extra []roleSource) *haRole {
	h := &haRole{log: log, extra: extra}
	h.actOnlyOn.Store(&cfg.HA.ActOnlyOn)
	h.mon = ha.NewMonitor(ha.MonitorConfig{
		VIPs: cfg.HA.Addrs, Grace: cfg.HA.Grace.D(), Sources: sourceNames(h.sources(cfg)),
		OnChange: func(c ha.Change) {
			e, err := ev.Append(c)
			if err != nil {
				log.Error("writing a role event failed", "err", err)
			}
			lvl := slog.LevelInfo
			if c.Kind == events.Disagreement {
				lvl = slog.LevelWarn
			}
			log.Log(context.Background(), lvl, "role event", "kind", c.Kind, "instance", c.Instance, "message", c.Message, "seq", e.Seq)
			if h.changed != nil {
				h.changed()
			}
		},
	})
	return h
}

// sources are the configured sources and the extra ones.
func (h *haRole) sources(cfg *config.Config) []roleSource {
	return append(configuredRoleSources(cfg, h.log), h.extra...)
}

func sourceNames(srcs []roleSource) []string {
	var names []string
	for _, s := range srcs {
		names = append(names, s.name)
	}
	return names
}

// start runs the sources of cfg until ctx ends or the next reload.
func (h *haRole) start(ctx context.Context, cfg *config.Config) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for _, s := range h.sources(cfg) {
		if s.run == nil {
			continue // reported by another source's goroutine
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.run(ctx, h.report); err != nil && ctx.Err() == nil {
				h.log.Error("role source stopped", "source", s.name, "err", err)
			}
		}()
	}
	h.mu.Lock()
	h.stopSrc = func() { cancel(); wg.Wait() }
	h.mu.Unlock()
}

// stop stops the sources and waits for them.
func (h *haRole) stop() {
	h.mu.Lock()
	stop := h.stopSrc
	h.stopSrc = nil
	h.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// reload applies a changed ha section: the old sources stop, the Monitor
// takes the new VIPs, grace and source list, the new sources start.
func (h *haRole) reload(ctx context.Context, cfg *config.Config) {
	h.stop()
	h.actOnlyOn.Store(&cfg.HA.ActOnlyOn)
	h.mon.Reconfigure(ha.MonitorConfig{VIPs: cfg.HA.Addrs, Grace: cfg.HA.Grace.D(), Sources: sourceNames(h.sources(cfg))})
	h.start(ctx, cfg)
	h.log.Info("ha section reloaded", "sources", sourceNames(h.sources(cfg)), "act_only_on", cfg.HA.ActOnlyOn)
}

// tick re-evaluates the grace periods once a second.
func (h *haRole) tick(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			h.mon.Tick(now)
		}
	}
}

// report feeds one source report to the Monitor, logging source trouble.
func (h *haRole) report(r ha.Report) {
	if r.Err != nil {
		h.log.Warn("role source failing", "source", r.Source, "err", r.Err)
	}
	h.mon.Update(r)
}

// acting is the reconciler's gate.
func (h *haRole) acting() bool {
	return *h.actOnlyOn.Load() != "master" || h.mon.Acting()
}

// isMaster is alerting's master-only gate: a director holding no instance
// as MASTER leaves real-server mails to its peer.
func (h *haRole) isMaster() bool { return h.mon.Acting() }

// status converts the Monitor's view for the web.
func (h *haRole) status() *web.Role {
	st := h.mon.Status()
	out := &web.Role{Role: st.Role, Acting: h.acting(), ActOnlyOn: *h.actOnlyOn.Load(), Disagreements: st.Disagreements,
		Instances: []web.RoleInstance{}, Sources: []web.RoleSource{}}
	for _, in := range st.Instances {
		ri := web.RoleInstance{Instance: in.Instance, VRID: in.VRID, State: in.State.String(), Priority: in.Priority,
			Source: in.Source, Since: in.Since, Changes: in.Changes, Disagreements: in.Disagreements}
		for _, v := range in.VIPs {
			ri.VIPs = append(ri.VIPs, web.RoleVIP{Address: v.Addr.String(), Present: v.Present, Interface: v.Interface})
		}
		for _, w := range in.WireMasters {
			ri.WireMasters = append(ri.WireMasters, web.RoleWire{Address: w.Addr.String(), Priority: w.Priority,
				Interval: w.Interval.Seconds(), LastSeen: w.LastSeen, Local: w.Local})
		}
		out.Instances = append(out.Instances, ri)
	}
	for _, s := range st.Sources {
		out.Sources = append(out.Sources, web.RoleSource{Name: s.Name, Up: s.Up, Running: s.Running, LastReport: s.LastReport, Error: s.Error})
	}
	return out
}

// roleMetrics exports the role per instance.
type roleMetrics struct {
	h                                                   *haRole
	state, prio, vips, vipsHere, disagree, changes, src *prometheus.Desc
	wire, acting                                        *prometheus.Desc
}

var roleStates = []ha.State{ha.StateMaster, ha.StateBackup, ha.StateFault, ha.StateStop, ha.StateUnknown}

func newRoleMetrics(h *haRole) *roleMetrics {
	n := prometheus.NewDesc
	return &roleMetrics{h: h,
		state:    n("lvsmon_ha_instance_state", "1 for the HA instance's current state (MASTER, BACKUP, FAULT, STOP, UNKNOWN), 0 for the others.", []string{"ha_instance", "state"}, nil),
		prio:     n("lvsmon_ha_instance_priority", "Effective VRRP priority of the instance as its source reports it.", []string{"ha_instance"}, nil),
		vips:     n("lvsmon_ha_instance_vips", "VIPs of the instance that lvsmon watches.", []string{"ha_instance"}, nil),
		vipsHere: n("lvsmon_ha_instance_vips_present", "VIPs of the instance present on a local interface.", []string{"ha_instance"}, nil),
		disagree: n("lvsmon_ha_disagreement", "1 while the role sources disagree in this way for longer than the grace period (stale VIP, master without VIP, two masters...).", []string{"ha_instance", "kind"}, nil),
		changes:  n("lvsmon_ha_role_changes_total", "Role changes of the instance since lvsmon started.", []string{"ha_instance"}, nil),
		src:      n("lvsmon_ha_source_up", "1 when the role source's last read succeeded.", []string{"source"}, nil),
		wire:     n("lvsmon_ha_wire_masters", "Routers advertising as master for the instance's VRID on the wire (more than 1: two masters).", []string{"ha_instance", "vrid"}, nil),
		acting:   n("lvsmon_ha_acting", "1 when this director writes IPVS (always 1 unless ha.act_only_on is master).", nil, nil),
	}
}

func (m *roleMetrics) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{m.state, m.prio, m.vips, m.vipsHere, m.disagree, m.changes, m.src, m.wire, m.acting} {
		ch <- d
	}
}

func (m *roleMetrics) Collect(ch chan<- prometheus.Metric) {
	st := m.h.mon.Status()
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
		for _, s := range roleStates {
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
		for _, k := range ha.DisagreementKinds {
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
	g(m.acting, b(m.h.acting()))
}

// configuredRoleSources returns the sources the ha section configures.
func configuredRoleSources(cfg *config.Config, log *slog.Logger) []roleSource {
	h := &cfg.HA
	l := func(name string) *slog.Logger { return log.With("component", "ha", "source", name) }
	var out []roleSource
	if k := h.Keepalived; k != nil {
		src := &sources.Keepalived{PIDFile: k.PIDFile, DumpDir: k.DumpDir, FIFO: k.NotifyFIFO, Interval: k.Refresh.D(), Log: l(ha.SourceKeepalived)}
		out = append(out, roleSource{ha.SourceKeepalived, src.Run})
	}
	if hb := h.Heartbeat; hb != nil {
		src := &sources.Heartbeat{ClStatus: hb.ClStatus, Interval: h.Interval.D(), Timeout: hb.Timeout.D(), Log: l(ha.SourceHeartbeat)}
		out = append(out, roleSource{ha.SourceHeartbeat, src.Run})
	}
	if p := h.Pacemaker; p != nil {
		src := &sources.Pacemaker{CrmMon: p.CrmMon, Resource: p.Resource, Node: p.Node, Interval: h.Interval.D(), Timeout: p.Timeout.D(), Log: l(ha.SourcePacemaker)}
		out = append(out, roleSource{ha.SourcePacemaker, src.Run})
	}
	if len(h.Addrs) > 0 {
		src := &sources.VIP{Addrs: h.Addrs, NetNS: h.NetNSPath(), Interval: h.Interval.D(), Log: l(ha.SourceVIP)}
		out = append(out, roleSource{ha.SourceVIP, src.Run})
	}
	if v := h.VRRP; v != nil {
		src := &sources.VRRP{Interface: v.Interface, NetNS: h.NetNSPath(), Log: l(ha.SourceVRRP)}
		out = append(out, roleSource{ha.SourceVRRP, src.Run})
	}
	return out
}
