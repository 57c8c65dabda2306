package web

import (
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// Status is the body of GET /api/v1/status: the latest snapshot of the
// kernel table joined with the config, so an operator sees both what is
// and what should be (a configured server missing from the kernel is
// listed with in_kernel false). The API pages its services (Page); the
// status page has them all.
type Status struct {
	StatusHead
	Services []ServiceStatus `json:"virtual_services"`
}

// StatusHead is the status without its services: the director's own
// state, which every page of the API repeats.
type StatusHead struct {
	Director    string              `json:"director"`
	Version     string              `json:"version"`
	Backend     string              `json:"backend"`
	SampledAt   *time.Time          `json:"sampled_at"`
	StepSeconds float64             `json:"step_seconds"`
	Collector   lvs.CollectorHealth `json:"collector"`
	RRD         *RRDStatus          `json:"rrd,omitempty"`
	Reconciler  *ReconcilerStatus   `json:"reconciler,omitempty"`
	Role        *Role               `json:"role,omitempty"`
	Alerting    *AlertingStatus     `json:"alerting,omitempty"`
	// Peers are the other directors of the pair and their drift (peer.go).
	Peers []PeerStatus `json:"peers,omitempty"`
	// Config says where the running config came from when it was
	// imported from another program's file; absent for lvsmon's YAML.
	Config *ConfigSource `json:"config,omitempty"`
	// Problems are the director's own troubles (never nil: [] when none).
	Problems []Problem `json:"problems"`
	// Mail is the outbox's delivery summary for the status page.
	Mail   *MailSummary `json:"-"`
	Totals Counters     `json:"totals"`
	// GraphTemplates give every object's graph URLs once, by kind
	// (director, service, server): replace {id} with the object's id,
	// {graph} with one of GraphNames[kind] and {range} with one of
	// GraphRanges. Absent when graphs are off.
	GraphTemplates map[string]string   `json:"graph_templates,omitempty"`
	GraphNames     map[string][]string `json:"graph_names,omitempty"`
	GraphRanges    []string            `json:"graph_ranges,omitempty"`
	// Page says which services this answer holds and how to get the
	// next ones (API only).
	Page *Page `json:"page,omitempty"`
}

// Page is where an answer of the status API lies among all services that
// match its filters.
type Page struct {
	Offset int `json:"offset"`
	Limit  int `json:"limit"`
	// Returned services are in this answer.
	Returned int `json:"returned"`
	// TotalServices and TotalRealServers match the filters, over all
	// pages.
	TotalServices    int `json:"total_services"`
	TotalRealServers int `json:"total_real_servers"`
	// Next is the URL of the next page; absent on the last.
	Next string `json:"next,omitempty"`
}

// Problem is a trouble of the director itself rather than of a real
// server: checks failing locally, a hold on mass failures, a damaged
// overrides file.
type Problem struct {
	Source   string    `json:"source"`
	Kind     string    `json:"kind"`
	Severity string    `json:"severity"` // "warning" or "critical"
	Message  string    `json:"message"`
	Since    time.Time `json:"since,omitzero"`
}

// ConfigSource is an imported config's origin: the file lvsmon reads
// (a keepalived.conf, an ldirectord.cf) and what became of its directives.
type ConfigSource struct {
	File         string   `json:"file"`
	ImportedFrom string   `json:"imported_from"`
	Files        []string `json:"files"`
	Mapped       int      `json:"mapped"`
	Changed      int      `json:"changed"`
	Unsupported  int      `json:"unsupported"`
	Ignored      int      `json:"ignored"`
	// Partial: something changed meaning or was left out.
	Partial bool `json:"partial"`
}

// configSource is cfg's ConfigSource, nil for lvsmon's YAML.
func configSource(cfg *config.Config) *ConfigSource {
	o := cfg.Origin
	if o == nil {
		return nil
	}
	return &ConfigSource{File: cfg.File, ImportedFrom: o.Format, Files: o.Files, Mapped: o.Mapped, Changed: o.Changed,
		Unsupported: o.Unsupported, Ignored: o.Ignored, Partial: o.Partial()}
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
	ID                 string  `json:"id"`
	Name               string  `json:"name,omitempty"`
	Protocol           string  `json:"protocol,omitempty"`
	Address            string  `json:"address,omitempty"`
	Port               *uint16 `json:"port,omitempty"`
	FWMark             uint32  `json:"fwmark,omitempty"`
	Family             string  `json:"family"`
	Scheduler          string  `json:"scheduler"`
	PersistenceSeconds float64 `json:"persistence_seconds"`
	Configured         bool    `json:"configured"`
	Managed            bool    `json:"managed"`
	InKernel           bool    `json:"in_kernel"`
	SorryActive        bool    `json:"sorry_active"`
	ActiveConns        uint64  `json:"active_conns"`
	InactiveConns      uint64  `json:"inactive_conns"`
	// Stats are the kernel's counters; absent when not in the kernel.
	Stats       *Counters          `json:"stats,omitempty"`
	RealServers []RealServerStatus `json:"real_servers"`
	// Config is what the config asks for (peer.go); absent when the
	// service is not configured.
	Config *ServiceConfig `json:"config,omitempty"`
}

// RealServerStatus is one real server of a service.
type RealServerStatus struct {
	ID               string `json:"id"`
	Address          string `json:"address"`
	Port             uint16 `json:"port"`
	Forward          string `json:"forward"`
	Weight           *int32 `json:"weight"` // nil when not in the kernel
	ConfiguredWeight *int32 `json:"configured_weight"`
	// CheckWeight is the weight the server's checks set (an external
	// check's dynamic exit status, a file check's value), written
	// instead of ConfiguredWeight while it is up; absent when none does.
	CheckWeight     *int32 `json:"check_weight,omitempty"`
	Sorry           bool   `json:"sorry_server,omitempty"`
	Configured      bool   `json:"configured"`
	InKernel        bool   `json:"in_kernel"`
	Health          string `json:"health,omitempty"` // up, down, unknown; empty without a check
	Check           any    `json:"check,omitempty"`  // the checker\'s last result and counts
	Override        any    `json:"override,omitempty"`
	ActiveConns     uint32 `json:"active_conns"`
	InactiveConns   uint32 `json:"inactive_conns"`
	PersistentConns uint32 `json:"persistent_conns"`
	// Stats are the kernel's counters; absent when not in the kernel.
	Stats *Counters `json:"stats,omitempty"`
	// mode is the operator override ("drain", "disable" or ""); the
	// rest is the checker's and the override's detail for the pages.
	mode, message, overrideBy string
	since, overrideSince      time.Time
}

// builder joins a snapshot (possibly nil, before the first sample) with
// the config and the checker's view, one service at a time, so that a
// page of the API never builds the services it does not return.
type builder struct {
	cfg  *config.Config
	snap *lvs.Snapshot
	info func(id string, check bool) (ServerInfo, bool) // nil: no checker
	// light leaves out the checker's full status (RealServerStatus.Check),
	// which the overview does not show.
	light bool
	sorry func(serviceID string) bool
	ids   *idCache // nil: names are made afresh
}

// idCache keeps real servers' ids and address strings between builds: at
// 1,000 services of 50 servers, making them afresh is 200,000 small
// allocations per status page, for strings that never change.
type idCache struct {
	mu sync.Mutex
	m  map[destRef]destNames
}

type destRef struct {
	svc  lvs.ServiceKey
	dest lvs.DestKey
}

type destNames struct{ id, addr string }

// maxIDCache bounds the cache; past it, it starts again (servers come
// and go over a director's life).
const maxIDCache = 200_000

// names returns the id and address string of dest d of service k.
func (c *idCache) names(k lvs.ServiceKey, d lvs.DestKey) (id, addr string) {
	if c == nil {
		return lvs.DestID(k, d), d.Addr.String()
	}
	ref := destRef{k, d}
	c.mu.Lock()
	defer c.mu.Unlock()
	if n, ok := c.m[ref]; ok {
		return n.id, n.addr
	}
	if c.m == nil || len(c.m) >= maxIDCache {
		c.m = map[destRef]destNames{}
	}
	n := destNames{lvs.DestID(k, d), d.Addr.String()}
	c.m[ref] = n
	return n.id, n.addr
}

// svcRef is one service of the status: the kernel's i-th (kernel >= 0)
// and its config (vs, nil when unconfigured).
type svcRef struct {
	id     string
	kernel int
	vs     *config.VirtualService
}

// refs lists the services in status order: the kernel's, then the
// configured ones the kernel lacks.
func (b *builder) refs() []svcRef {
	var out []svcRef
	seen := map[lvs.ServiceKey]bool{}
	if b.snap != nil {
		for i := range b.snap.Table.Services {
			k := b.snap.Table.Services[i].Key
			seen[k] = true
			out = append(out, svcRef{id: k.ID(), kernel: i, vs: b.cfg.Service(k)})
		}
	}
	for i := range b.cfg.VirtualServices {
		vs := &b.cfg.VirtualServices[i]
		if !seen[vs.Key] {
			out = append(out, svcRef{id: vs.Key.ID(), kernel: -1, vs: vs})
		}
	}
	return out
}

// numReals is how many real servers service builds for ref.
func (b *builder) numReals(ref svcRef) int {
	if ref.kernel < 0 {
		return len(ref.vs.Reals)
	}
	svc := &b.snap.Table.Services[ref.kernel]
	n := len(svc.Dests)
	if ref.vs != nil {
		for i := range ref.vs.Reals {
			if svc.Dest(ref.vs.Reals[i].Key) == nil {
				n++
			}
		}
	}
	return n
}

// service builds one service with its real servers.
func (b *builder) service(ref svcRef) ServiceStatus {
	vs := ref.vs
	var ss ServiceStatus
	if ref.kernel < 0 {
		ss = serviceHead(vs.Key, vs)
		ss.Scheduler = vs.Scheduler
		ss.PersistenceSeconds = vs.Persistence.D().Seconds()
		ss.RealServers = missingReals(vs.Key, vs, nil)
	} else {
		i, snap := ref.kernel, b.snap
		svc := &snap.Table.Services[i]
		ss = serviceHead(svc.Key, vs)
		ss.InKernel = true
		ss.Scheduler = svc.Scheduler
		ss.PersistenceSeconds = svc.Persistence.Seconds()
		ss.Stats = &Counters{Stats: svc.Stats, Rates: snap.ServiceRates[i]}
		listed := make(map[lvs.DestKey]bool, len(svc.Dests))
		ss.RealServers = make([]RealServerStatus, 0, len(svc.Dests))
		// One allocation each for the service's weights and counters,
		// which the servers point into.
		weights := make([]int32, 2*len(svc.Dests))
		counters := make([]Counters, len(svc.Dests))
		for j := range svc.Dests {
			d := &svc.Dests[j]
			listed[d.Key] = true
			w := &weights[2*j]
			*w = d.Weight
			counters[j] = Counters{Stats: d.Stats, Rates: snap.DestRates[i][j]}
			id, addr := b.ids.names(svc.Key, d.Key)
			rs := RealServerStatus{
				ID: id, Address: addr, Port: d.Key.Port,
				Forward: d.Forward.String(), Weight: w, InKernel: true,
				ActiveConns: d.ActiveConns, InactiveConns: d.InactiveConns, PersistentConns: d.PersistentConns,
				Stats: &counters[j],
			}
			if vs != nil {
				if r := vs.Real(d.Key); r != nil {
					cw := &weights[2*j+1]
					*cw = r.ConfiguredWeight()
					rs.ConfiguredWeight, rs.Configured = cw, true
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
	}
	if b.sorry != nil {
		ss.SorryActive = b.sorry(ss.ID)
	}
	for j := range ss.RealServers {
		rs := &ss.RealServers[j]
		if b.info == nil {
			break
		}
		if in, ok := b.info(rs.ID, !b.light); ok {
			rs.Health, rs.Check, rs.Override, rs.mode = in.Health, in.Check, in.Override, in.Mode
			rs.CheckWeight = in.CheckWeight
			rs.message, rs.since, rs.overrideBy, rs.overrideSince = in.Message, in.Since, in.OverrideBy, in.OverrideSince
		}
	}
	return ss
}

// ServerStates are the values of the status API's state filter: the
// checker's health (up, down, unknown; unchecked without a check), the
// operator's override (drained, disabled), quiesced (in the kernel with
// weight 0, whatever the reason), missing (configured, not in the
// kernel), unconfigured (in the kernel, not in the config) and sorry
// (the sorry server).
var ServerStates = []string{"up", "down", "unknown", "unchecked", "drained", "disabled", "quiesced", "missing", "unconfigured", "sorry"}

// is reports whether the real server is in state (one of ServerStates).
func (rs *RealServerStatus) is(state string) bool {
	switch state {
	case "up", "down", "unknown":
		return rs.Health == state
	case "unchecked":
		return rs.Health == ""
	case "drained":
		return rs.mode == "drain"
	case "disabled":
		return rs.mode == "disable"
	case "quiesced":
		return rs.InKernel && rs.Weight != nil && *rs.Weight == 0
	case "missing":
		return !rs.InKernel
	case "unconfigured":
		return !rs.Configured
	case "sorry":
		return rs.Sorry
	}
	return false
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
		ss.Config = serviceConfig(vs)
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
