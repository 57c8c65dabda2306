package app

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

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
	// changed is called after each role event (the reconciler wants to
	// know at once).
	changed func()
	// extra are sources not from the config (the demo's simulated pair).
	extra []RoleSource

	mu      sync.Mutex
	stopSrc func() // stops the running sources and waits for them
}

// newHARole builds the Monitor; the events it finds go to the event log,
// and changed is called after each.
func newHARole(cfg *config.Config, ev *events.Log, log *slog.Logger, extra []RoleSource, changed func()) *haRole {
	h := &haRole{log: log, extra: extra, changed: changed}
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
			h.changed()
		},
	})
	return h
}

// sources are the configured sources and the extra ones.
func (h *haRole) sources(cfg *config.Config) []RoleSource {
	return append(configuredRoleSources(cfg, h.log), h.extra...)
}

func sourceNames(srcs []RoleSource) []string {
	var names []string
	for _, s := range srcs {
		names = append(names, s.Name)
	}
	return names
}

// start runs the sources of cfg until stop (the daemon's end, or a
// reload that replaces them): their lifetime is the role's own, so a
// reload needs no context of the daemon's.
func (h *haRole) start(cfg *config.Config) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, s := range h.sources(cfg) {
		if s.Run == nil {
			continue // reported by another source's goroutine
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.Run(ctx, h.report); err != nil && ctx.Err() == nil {
				h.log.Error("role source stopped", "source", s.Name, "err", err)
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
func (h *haRole) reload(cfg *config.Config) {
	h.stop()
	h.actOnlyOn.Store(&cfg.HA.ActOnlyOn)
	h.mon.Reconfigure(ha.MonitorConfig{VIPs: cfg.HA.Addrs, Grace: cfg.HA.Grace.D(), Sources: sourceNames(h.sources(cfg))})
	h.start(cfg)
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

// configuredRoleSources returns the sources the ha section configures.
func configuredRoleSources(cfg *config.Config, log *slog.Logger) []RoleSource {
	h := &cfg.HA
	l := func(name string) *slog.Logger { return log.With("component", "ha", "source", name) }
	var out []RoleSource
	if k := h.Keepalived; k != nil {
		src := &sources.Keepalived{PIDFile: k.PIDFile, DumpDir: k.DumpDir, FIFO: k.NotifyFIFO, Interval: k.Refresh.D(), Log: l(ha.SourceKeepalived)}
		out = append(out, RoleSource{ha.SourceKeepalived, src.Run})
	}
	if hb := h.Heartbeat; hb != nil {
		src := &sources.Heartbeat{ClStatus: hb.ClStatus, Interval: h.Interval.D(), Timeout: hb.Timeout.D(), Log: l(ha.SourceHeartbeat)}
		out = append(out, RoleSource{ha.SourceHeartbeat, src.Run})
	}
	if p := h.Pacemaker; p != nil {
		src := &sources.Pacemaker{CrmMon: p.CrmMon, Resource: p.Resource, Node: p.Node, Interval: h.Interval.D(), Timeout: p.Timeout.D(), Log: l(ha.SourcePacemaker)}
		out = append(out, RoleSource{ha.SourcePacemaker, src.Run})
	}
	if len(h.Addrs) > 0 {
		src := &sources.VIP{Addrs: h.Addrs, NetNS: h.NetNSPath(), Interval: h.Interval.D(), Log: l(ha.SourceVIP)}
		out = append(out, RoleSource{ha.SourceVIP, src.Run})
	}
	if v := h.VRRP; v != nil {
		src := &sources.VRRP{Interface: v.Interface, NetNS: h.NetNSPath(), Log: l(ha.SourceVRRP)}
		out = append(out, RoleSource{ha.SourceVRRP, src.Run})
	}
	return out
}
