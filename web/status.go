package web

import (
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// Status is the body of GET /api/v1/status: the latest snapshot of the
// kernel table joined with the config, so an operator sees both what is
// and what should be (a configured server missing from the kernel is
// listed with in_kernel false).
type Status struct {
	Director    string              `json:"director"`
	Version     string              `json:"version"`
	Backend     string              `json:"backend"`
	SampledAt   *time.Time          `json:"sampled_at"`
	StepSeconds float64             `json:"step_seconds"`
	Collector   lvs.CollectorHealth `json:"collector"`
	RRD         any                 `json:"rrd,omitempty"`
	Reconciler  any                 `json:"reconciler,omitempty"`
	Role        *Role               `json:"role,omitempty"`
	Alerting    any                 `json:"alerting,omitempty"`
	// Mail is the outbox's delivery summary for the status page.
	Mail   *MailSummary `json:"-"`
	Totals Counters     `json:"totals"`
	// Graphs are the director's graph URLs: range -> graph -> URL.
	Graphs   map[string]map[string]string `json:"graphs,omitempty"`
	Services []ServiceStatus              `json:"virtual_services"`
}

// MailSummary is what the status page says about alert mail.
type MailSummary struct {
	Sent      uint64
	Queued    int
	LastError string
}

// Role is the director's place in its HA pair, merged from every
// configured source (keepalived, heartbeat, pacemaker, VIPs, the wire).
type Role struct {
	// Role is MASTER or BACKUP when every instance agrees, FAULT, MIXED
	// or UNKNOWN.
	Role string `json:"role"`
	// Acting says whether this director writes IPVS (ha.act_only_on).
	Acting        bool           `json:"acting"`
	ActOnlyOn     string         `json:"act_only_on"`
	Disagreements int            `json:"disagreements"`
	Instances     []RoleInstance `json:"instances"`
	Sources       []RoleSource   `json:"sources"`
}

// RoleInstance is one VRRP instance or resource group.
type RoleInstance struct {
	Instance      string     `json:"instance"`
	VRID          int        `json:"vrid,omitempty"`
	State         string     `json:"state"`
	Priority      int        `json:"priority,omitempty"`
	Source        string     `json:"source"`
	Since         time.Time  `json:"since,omitzero"`
	Changes       uint64     `json:"changes"`
	VIPs          []RoleVIP  `json:"vips,omitempty"`
	WireMasters   []RoleWire `json:"wire_masters,omitempty"`
	Disagreements []string   `json:"disagreements,omitempty"`
}

// RoleVIP is one VIP and whether it is on a local interface.
type RoleVIP struct {
	Address   string `json:"address"`
	Present   bool   `json:"present"`
	Interface string `json:"interface,omitempty"`
}

// RoleWire is one router seen advertising as master.
type RoleWire struct {
	Address  string    `json:"address"`
	Priority int       `json:"priority"`
	Interval float64   `json:"interval_seconds"`
	LastSeen time.Time `json:"last_seen"`
	Local    bool      `json:"local"`
}

// RoleSource is one role source's health.
type RoleSource struct {
	Name       string    `json:"name"`
	Up         bool      `json:"up"`
	Running    bool      `json:"running"`
	LastReport time.Time `json:"last_report,omitzero"`
	Error      string    `json:"error,omitempty"`
}

// Counters are cumulative counters with their latest per-second rates.
type Counters struct {
	lvs.Stats
	Rates lvs.Rates `json:"rates"`
}

// ServiceStatus is one virtual service.
type ServiceStatus struct {
	ID                 string                       `json:"id"`
	Name               string                       `json:"name,omitempty"`
	Protocol           string                       `json:"protocol,omitempty"`
	Address            string                       `json:"address,omitempty"`
	Port               *uint16                      `json:"port,omitempty"`
	FWMark             uint32                       `json:"fwmark,omitempty"`
	Family             string                       `json:"family"`
	Scheduler          string                       `json:"scheduler"`
	PersistenceSeconds float64                      `json:"persistence_seconds"`
	Configured         bool                         `json:"configured"`
	Managed            bool                         `json:"managed"`
	InKernel           bool                         `json:"in_kernel"`
	SorryActive        bool                         `json:"sorry_active"`
	ActiveConns        uint64                       `json:"active_conns"`
	InactiveConns      uint64                       `json:"inactive_conns"`
	Stats              Counters                     `json:"stats"`
	Graphs             map[string]map[string]string `json:"graphs,omitempty"`
	RealServers        []RealServerStatus           `json:"real_servers"`
}

// RealServerStatus is one real server of a service.
type RealServerStatus struct {
	ID               string                       `json:"id"`
	Address          string                       `json:"address"`
	Port             uint16                       `json:"port"`
	Forward          string                       `json:"forward"`
	Weight           *int32                       `json:"weight"` // nil when not in the kernel
	ConfiguredWeight *int32                       `json:"configured_weight"`
	Sorry            bool                         `json:"sorry_server,omitempty"`
	Configured       bool                         `json:"configured"`
	InKernel         bool                         `json:"in_kernel"`
	Health           string                       `json:"health,omitempty"` // up, down, unknown; empty without a check
	Check            any                          `json:"check,omitempty"`  // the checker\'s last result and counts
	Override         any                          `json:"override,omitempty"`
	ActiveConns      uint32                       `json:"active_conns"`
	InactiveConns    uint32                       `json:"inactive_conns"`
	PersistentConns  uint32                       `json:"persistent_conns"`
	Stats            Counters                     `json:"stats"`
	Graphs           map[string]map[string]string `json:"graphs,omitempty"`
}

// buildStatus joins a snapshot (possibly nil, before the first sample)
// with the config.
// urls gives graph URLs (range -> graph -> URL) of a kind and id; nil
// when graphs are off.
func buildStatus(cfg *config.Config, snap *lvs.Snapshot, h lvs.CollectorHealth, version string, urls func(kind, id string) map[string]map[string]string) Status {
	st := Status{
		Director: cfg.Director, Version: version, Backend: cfg.IPVS.Backend,
		StepSeconds: h.Step.Seconds(), Collector: h,
		Services: []ServiceStatus{}, Graphs: urls("director", ""),
	}

	var tab lvs.Table
	if snap != nil {
		t := snap.Time
		st.SampledAt = &t
		tab = snap.Table
		st.Totals = Counters{Stats: tab.Totals, Rates: snap.TotalRates}
	}
	seen := map[lvs.ServiceKey]bool{}
	for i := range tab.Services {
		svc := &tab.Services[i]
		seen[svc.Key] = true
		vs := cfg.Service(svc.Key)
		ss := serviceHead(svc.Key, vs)
		ss.InKernel = true
		ss.Scheduler = svc.Scheduler
		ss.PersistenceSeconds = svc.Persistence.Seconds()
		ss.Stats = Counters{Stats: svc.Stats, Rates: snap.ServiceRates[i]}
		listed := map[lvs.DestKey]bool{}
		for j := range svc.Dests {
			d := &svc.Dests[j]
			listed[d.Key] = true
			w := d.Weight
			rs := RealServerStatus{
				ID: lvs.DestID(svc.Key, d.Key), Address: d.Key.Addr.String(), Port: d.Key.Port,
				Forward: d.Forward.String(), Weight: &w, InKernel: true,
				ActiveConns: d.ActiveConns, InactiveConns: d.InactiveConns, PersistentConns: d.PersistentConns,
				Stats: Counters{Stats: d.Stats, Rates: snap.DestRates[i][j]},
			}
			if vs != nil {
				if r := vs.Real(d.Key); r != nil {
					cw := r.ConfiguredWeight()
					rs.ConfiguredWeight, rs.Configured = &cw, true
				} else if vs.Sorry != nil && vs.Sorry.Key == d.Key {
					rs.Sorry, rs.Configured = true, true
				}
			}
			ss.ActiveConns += uint64(d.ActiveConns)
			ss.InactiveConns += uint64(d.InactiveConns)
			ss.RealServers = append(ss.RealServers, rs)
		}
		if vs != nil {
			ss.RealServers = append(ss.RealServers, missingReals(svc.Key, vs, listed)...)
		}
		st.Services = append(st.Services, ss)
	}
	// Configured services the kernel does not have, after the rest.
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if seen[vs.Key] {
			continue
		}
		ss := serviceHead(vs.Key, vs)
		ss.Scheduler = vs.Scheduler
		ss.PersistenceSeconds = vs.Persistence.D().Seconds()
		ss.RealServers = missingReals(vs.Key, vs, nil)
		st.Services = append(st.Services, ss)
	}
	for i := range st.Services {
		ss := &st.Services[i]
		ss.Graphs = urls("service", ss.ID)
		for j := range ss.RealServers {
			ss.RealServers[j].Graphs = urls("server", ss.RealServers[j].ID)
		}
	}
	return st
}

func serviceHead(k lvs.ServiceKey, vs *config.VirtualService) ServiceStatus {
	ss := ServiceStatus{ID: k.ID(), Family: k.Family.String(), RealServers: []RealServerStatus{}}
	if k.IsFWMark() {
		ss.FWMark = k.FWMark
	} else {
		port := k.Port
		ss.Protocol, ss.Address, ss.Port = k.Protocol.String(), k.Addr.String(), &port
	}
	if vs != nil {
		ss.Name, ss.Configured, ss.Managed = vs.Name, true, vs.IsManaged()
	}
	return ss
}

// missingReals lists the configured real servers not in the kernel.
func missingReals(k lvs.ServiceKey, vs *config.VirtualService, listed map[lvs.DestKey]bool) []RealServerStatus {
	var out []RealServerStatus
	for i := range vs.Reals {
		r := &vs.Reals[i]
		if listed[r.Key] {
			continue
		}
		cw := r.ConfiguredWeight()
		out = append(out, RealServerStatus{
			ID: lvs.DestID(k, r.Key), Address: r.Key.Addr.String(), Port: r.Key.Port,
			Forward: r.Fwd.String(), ConfiguredWeight: &cw, Configured: true,
		})
	}
	return out
}
