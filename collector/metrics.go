package collector

// This file is lvsmon's Prometheus exporter. It turns the collector's
// latest Snapshot (never a kernel read) into metric families, two ways
// that give the same result:
//
//   - Metrics is a prometheus.Collector whose descriptors are built once,
//     emitting const metrics through client_golang. It is the reference:
//     tests lint it with testutil and compare the HTTP output against it,
//     and a program embedding lvsmon can register it like any collector.
//   - Metrics.Handler serves /metrics. A director with 1000 services of 50
//     real servers has half a million series; client_golang's registry and
//     text encoder take over a second for that (consistency checks, sorting
//     and per-series allocations), and gzip at its default level another
//     few. So the handler writes the table's families itself, from label
//     text built once per snapshot, gzips them once per snapshot, and per
//     scrape only adds the small families (self-metrics, Go and process)
//     gathered through client_golang.

import (
	"bufio"
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/common/expfmt"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// node_exporter's ipvs collector labels, for --metrics.node-exporter-compatible.
var nodeBackendLabels = []string{"local_address", "local_mark", "local_port", "proto", "remote_address", "remote_port"}

// MetricsOptions are what the exporter cannot learn from the collector or
// the config.
type MetricsOptions struct {
	// Build is reported by lvsmon_build_info.
	Build BuildInfo
	// Extra collectors of other parts of lvsmon (the RRD store, the
	// checker), gathered on every scrape beside the self-metrics.
	Extra []prometheus.Collector
}

// BuildInfo says which build of lvsmon runs: lvsmon_build_info's labels,
// the ones every Prometheus exporter's *_build_info has, so dashboards
// that join on them work for lvsmon too.
type BuildInfo struct {
	Version, Revision, Branch string
	// GoVersion, GoOS and GoArch are the running binary's when empty.
	GoVersion, GoOS, GoArch string
	// Tags are the build tags ("" when none or unknown).
	Tags string
	// Date is when it was built (RFC 3339; "unknown" when not stamped):
	// with the version, it tells an operator how old the running binary is.
	Date string
}

// labels returns the label values in buildInfoLabels' order, with the
// running binary's Go version and platform for those not set.
func (b BuildInfo) labels() []string {
	or := func(s, def string) string {
		if s == "" {
			return def
		}
		return s
	}
	return []string{or(b.Version, "unknown"), or(b.Revision, "unknown"), or(b.Branch, "unknown"),
		or(b.GoVersion, runtime.Version()), or(b.GoOS, runtime.GOOS), or(b.GoArch, runtime.GOARCH), b.Tags, or(b.Date, "unknown")}
}

var buildInfoLabels = []string{"version", "revision", "branch", "goversion", "goos", "goarch", "tags", "builddate"}

// Metrics exports a Collector's snapshots for Prometheus. It is safe for
// concurrent use.
type Metrics struct {
	c    *Collector
	cfg  func() *config.Config
	opts MetricsOptions

	fams []*family // the table's families, in exposition order
	self struct {
		lastSample, lastDuration, samples, errors, step, build, director *prometheus.Desc
	}
	selfReg *prometheus.Registry // holds selfCollector, for the handler

	mu    sync.Mutex
	cur   *view
	cfgIx cfgIndex
	// builds counts view builds, so tests can see the cache work without
	// timing anything.
	builds int
}

// NewMetrics returns the exporter of c's snapshots; cfg returns the config
// in force (service names and configured weights come from it, and it can
// change on reload).
func NewMetrics(c *Collector, cfg func() *config.Config, opts MetricsOptions) *Metrics {
	m := &Metrics{c: c, cfg: cfg, opts: opts, fams: tableFamilies()}
	for _, f := range m.fams {
		var labels []string
		switch f.level {
		case levelService:
			labels = lvs.ServiceLabels
		case levelReal:
			labels = lvs.RealServerLabels
		case levelNodeBackend:
			labels = nodeBackendLabels
		}
		f.desc = prometheus.NewDesc(f.name, f.help, labels, nil)
	}
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	m.self.lastSample = d("lvsmon_collector_last_sample_timestamp_seconds",
		"Unix time when the last successful read of the IPVS table started; 0 before the first.")
	m.self.lastDuration = d("lvsmon_collector_last_sample_duration_seconds",
		"How long the last successful read of the IPVS table took.")
	m.self.samples = d("lvsmon_collector_samples_total",
		"Successful reads of the IPVS table.")
	m.self.errors = d("lvsmon_collector_sample_errors_total",
		"Failed reads of the IPVS table; each is logged and retried on the next step.")
	m.self.step = d("lvsmon_collector_step_seconds",
		"The sampling interval: a last sample older than a few steps means the collector is stuck or failing.")
	m.self.build = d("lvsmon_build_info",
		"Always 1; the labels say which lvsmon build runs.", buildInfoLabels...)
	m.self.director = d("lvsmon_director_info",
		"Always 1; names the director this lvsmon watches, for joining on instance.", "backend", "director")
	m.selfReg = prometheus.NewPedanticRegistry()
	m.selfReg.MustRegister(selfCollector{m})
	return m
}

// Describe sends every descriptor lvsmon can export (those of
// node_exporter-compatible families too: the config decides per scrape).
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	for _, f := range m.fams {
		ch <- f.desc
	}
	selfCollector{m}.Describe(ch)
}

// Collect sends every series of the latest snapshot as const metrics. It
// is the reference path; Handler produces the same series faster.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	if v := m.view(); v != nil {
		v.collect(m.fams, ch)
	}
	selfCollector{m}.Collect(ch)
}

// selfCollector exports lvsmon's own state: small families that change
// between snapshots (errors) or with the config, gathered on every scrape.
type selfCollector struct{ m *Metrics }

func (s selfCollector) Describe(ch chan<- *prometheus.Desc) {
	d := &s.m.self
	for _, x := range []*prometheus.Desc{d.lastSample, d.lastDuration, d.samples, d.errors, d.step, d.build, d.director} {
		ch <- x
	}
}

func (s selfCollector) Collect(ch chan<- prometheus.Metric) {
	d := &s.m.self
	h := s.m.c.Health()
	last := 0.0
	if !h.LastSample.IsZero() {
		last = float64(h.LastSample.UnixNano()) / 1e9
	}
	ch <- prometheus.MustNewConstMetric(d.lastSample, prometheus.GaugeValue, last)
	ch <- prometheus.MustNewConstMetric(d.lastDuration, prometheus.GaugeValue, h.LastDuration.Seconds())
	ch <- prometheus.MustNewConstMetric(d.samples, prometheus.CounterValue, float64(h.Samples))
	ch <- prometheus.MustNewConstMetric(d.errors, prometheus.CounterValue, float64(h.Errors))
	ch <- prometheus.MustNewConstMetric(d.step, prometheus.GaugeValue, h.Step.Seconds())
	ch <- prometheus.MustNewConstMetric(d.build, prometheus.GaugeValue, 1, s.m.opts.Build.labels()...)
	cfg := s.m.cfg()
	ch <- prometheus.MustNewConstMetric(d.director, prometheus.GaugeValue, 1, cfg.IPVS.Backend, cfg.Director)
}

// ---------------------------------------------------------------------------
// Families

type level uint8

const (
	levelDirector    level = iota // no labels: the kernel's global counters
	levelService                  // one series per virtual service
	levelReal                     // one series per real server
	levelNodeTotal                // node_exporter's global counters
	levelNodeBackend              // node_exporter's per-backend gauges
)

// family is one metric family of the table. Exactly one of the value
// functions is set, for its level; it reports false when the object has no
// such value (a real server missing from the kernel has no weight).
type family struct {
	name, help string
	typ        prometheus.ValueType
	level      level
	// perObjectCounter: the value is a per-service or per-real-server
	// counter the procfs backend cannot read (the kernel prints none
	// there), so the family is left out rather than exported as zeros.
	perObjectCounter bool
	// nodeCompat: exported only in node_exporter-compatible mode.
	nodeCompat bool

	dir  func(t *lvs.Table) float64
	svc  func(s *svcView) (float64, bool)
	real func(r *realView) (float64, bool)
	node func(b *nodeBackend) float64

	desc *prometheus.Desc
}

// tableFamilies lists the families computed from the IPVS table, in the
// order they are exposed.
func tableFamilies() []*family {
	var fs []*family
	counters := []struct {
		what, help string
		get        func(s *lvs.Stats) uint64
	}{
		{"connections", "connections scheduled", func(s *lvs.Stats) uint64 { return s.Conns }},
		{"in_packets", "packets received from clients", func(s *lvs.Stats) uint64 { return s.InPkts }},
		{"out_packets", "packets sent to clients through the director (replies of DR and tunnelled real servers bypass it)", func(s *lvs.Stats) uint64 { return s.OutPkts }},
		{"in_bytes", "bytes received from clients", func(s *lvs.Stats) uint64 { return s.InBytes }},
		{"out_bytes", "bytes sent to clients through the director (replies of DR and tunnelled real servers bypass it)", func(s *lvs.Stats) uint64 { return s.OutBytes }},
	}
	for _, c := range counters {
		fs = append(fs, &family{
			name: "lvsmon_director_" + c.what + "_total", typ: prometheus.CounterValue, level: levelDirector,
			help: "IPVS " + c.help + ", over the whole director (the kernel's global counter).",
			dir:  func(t *lvs.Table) float64 { return float64(c.get(&t.Totals)) },
		})
	}
	for _, c := range counters {
		fs = append(fs, &family{
			name: "lvsmon_virtual_service_" + c.what + "_total", typ: prometheus.CounterValue, level: levelService, perObjectCounter: true,
			help: "IPVS " + c.help + " by the virtual service.",
			svc: func(s *svcView) (float64, bool) {
				if s.svc == nil {
					return 0, false
				}
				return float64(c.get(&s.svc.Stats)), true
			},
		})
	}
	svcGauge := func(name, help string, perObject bool, get func(s *svcView) int64) *family {
		return &family{
			name: "lvsmon_virtual_service_" + name, typ: prometheus.GaugeValue, level: levelService, perObjectCounter: perObject, help: help,
			svc: func(s *svcView) (float64, bool) {
				if s.svc == nil {
					return 0, false
				}
				return float64(get(s)), true
			},
		}
	}
	fs = append(fs,
		svcGauge("active_connections", "Established connections of the virtual service (sum over its real servers).", false,
			func(s *svcView) int64 { return s.active }),
		svcGauge("inactive_connections", "Connections of the virtual service in any other state, UDP included (sum over its real servers).", false,
			func(s *svcView) int64 { return s.inactive }),
		svcGauge("persistent_connections", "Persistence templates of the virtual service (sum over its real servers).", true,
			func(s *svcView) int64 { return s.persistent }),
		svcGauge("weight", "Sum of the kernel weights of the virtual service's real servers; 0 means new connections have nowhere to go.", false,
			func(s *svcView) int64 { return s.weight }),
		&family{
			name: "lvsmon_virtual_service_configured_weight", typ: prometheus.GaugeValue, level: levelService,
			help: "Sum of the weights the config gives the virtual service's real servers (the sorry server not included); only for configured services, also when the kernel lacks the service.",
			svc: func(s *svcView) (float64, bool) {
				return float64(s.cfgWeight), s.configured
			},
		},
	)
	for _, c := range counters {
		fs = append(fs, &family{
			name: "lvsmon_real_server_" + c.what + "_total", typ: prometheus.CounterValue, level: levelReal, perObjectCounter: true,
			help: "IPVS " + c.help + " by the real server for this virtual service.",
			real: func(r *realView) (float64, bool) {
				if r.d == nil {
					return 0, false
				}
				return float64(c.get(&r.d.Stats)), true
			},
		})
	}
	realGauge := func(name, help string, perObject bool, get func(d *lvs.Dest) float64) *family {
		return &family{
			name: "lvsmon_real_server_" + name, typ: prometheus.GaugeValue, level: levelReal, perObjectCounter: perObject, help: help,
			real: func(r *realView) (float64, bool) {
				if r.d == nil {
					return 0, false
				}
				return get(r.d), true
			},
		}
	}
	fs = append(fs,
		realGauge("active_connections", "Established connections of the real server for this virtual service.", false,
			func(d *lvs.Dest) float64 { return float64(d.ActiveConns) }),
		realGauge("inactive_connections", "Connections of the real server for this virtual service in any other state, UDP included.", false,
			func(d *lvs.Dest) float64 { return float64(d.InactiveConns) }),
		realGauge("persistent_connections", "Persistence templates pointing at the real server for this virtual service.", true,
			func(d *lvs.Dest) float64 { return float64(d.PersistentConns) }),
		realGauge("weight", "The real server's weight in the kernel (0: quiesced, gets no new connections); absent when the kernel does not have the real server.", false,
			func(d *lvs.Dest) float64 { return float64(d.Weight) }),
		&family{
			name: "lvsmon_real_server_configured_weight", typ: prometheus.GaugeValue, level: levelReal,
			help: "The weight the config gives the real server, whether or not the kernel has it: configured weight without a positive lvsmon_real_server_weight means the server is not serving.",
			real: func(r *realView) (float64, bool) {
				return float64(r.cfgWeight), r.configured
			},
		},
	)
	nodeTotals := []struct{ name, help string }{
		{"connections_total", "connections"},
		{"incoming_packets_total", "incoming packets"},
		{"outgoing_packets_total", "outgoing packets"},
		{"incoming_bytes_total", "incoming bytes"},
		{"outgoing_bytes_total", "outgoing bytes"},
	}
	for i, n := range nodeTotals {
		get := counters[i].get
		fs = append(fs, &family{
			name: "node_ipvs_" + n.name, typ: prometheus.CounterValue, level: levelNodeTotal, nodeCompat: true,
			help: "IPVS " + n.help + " of the whole director, as node_exporter names it (lvsmon: lvsmon_director_*).",
			dir:  func(t *lvs.Table) float64 { return float64(get(&t.Totals)) },
		})
	}
	fs = append(fs,
		&family{
			name: "node_ipvs_backend_connections_active", typ: prometheus.GaugeValue, level: levelNodeBackend, nodeCompat: true,
			help: "Established connections per backend, as node_exporter names them (lvsmon: lvsmon_real_server_active_connections).",
			node: func(b *nodeBackend) float64 { return b.active },
		},
		&family{
			name: "node_ipvs_backend_connections_inactive", typ: prometheus.GaugeValue, level: levelNodeBackend, nodeCompat: true,
			help: "Other connections per backend, as node_exporter names them (lvsmon: lvsmon_real_server_inactive_connections).",
			node: func(b *nodeBackend) float64 { return b.inactive },
		},
		&family{
			name: "node_ipvs_backend_weight", typ: prometheus.GaugeValue, level: levelNodeBackend, nodeCompat: true,
			help: "Kernel weight per backend, as node_exporter names it (lvsmon: lvsmon_real_server_weight).",
			node: func(b *nodeBackend) float64 { return b.weight },
		},
	)
	return fs
}

// ---------------------------------------------------------------------------
// Views: one snapshot joined with one config, labels rendered once

// view is everything the exporter needs from one snapshot and one config,
// with label values and label text computed once and shared by every
// family and scrape of that snapshot.
type view struct {
	snap      *Snapshot
	cfg       *config.Config
	counters  bool // the backend reads per-object counters
	nodeCompt bool
	services  []svcView
	nodes     []nodeBackend // node_exporter rows, when nodeCompt

	// The table's compressed exposition, per format (text, OpenMetrics),
	// made on first use.
	gz [numFormats]struct {
		once  sync.Once
		chunk gzChunk
		err   error
	}
}

// format is an exposition format lvsmon writes itself.
type format uint8

const (
	formatText        format = iota // text/plain; version=0.0.4
	formatOpenMetrics               // application/openmetrics-text
	numFormats
)

// svcView is one virtual service: in the kernel, in the config, or both.
type svcView struct {
	key        lvs.ServiceKey
	svc        *lvs.Service // nil when only configured
	configured bool
	cfgWeight  int64
	active     int64
	inactive   int64
	persistent int64
	weight     int64
	values     [6]string // in lvs.ServiceLabels order
	// open is `{address="…",…,protocol="…"` and close is `service="…"}`:
	// a service series is open+","+close, a real server's open+its
	// labels+close (the label names sort that way).
	open, close string
	reals       []realView
}

// realView is one real server of a service: in the kernel, in the
// config, or both. Its labels are written from key when needed: a big
// table has tens of thousands of real servers, and label strings kept for
// each would be most of the exporter's memory.
type realView struct {
	key        lvs.DestKey
	d          *lvs.Dest // nil when only configured
	configured bool
	cfgWeight  int32
}

// nodeBackend is one node_exporter backend row. node_exporter sums real
// servers whose labels coincide (an IPv4 and an IPv6 fwmark service with
// the same mark and real server), and so does lvsmon.
type nodeBackend struct {
	values                   [6]string
	text                     string
	active, inactive, weight float64
}

// cfgIndex maps a config's services and real servers for lookups by key.
type cfgIndex struct {
	cfg   *config.Config
	svcs  map[lvs.ServiceKey]*config.VirtualService
	reals map[*config.VirtualService]map[lvs.DestKey]*config.RealServer
}

func (m *Metrics) index(cfg *config.Config) *cfgIndex {
	if m.cfgIx.cfg == cfg {
		return &m.cfgIx
	}
	ix := cfgIndex{cfg: cfg, svcs: make(map[lvs.ServiceKey]*config.VirtualService, len(cfg.VirtualServices)),
		reals: make(map[*config.VirtualService]map[lvs.DestKey]*config.RealServer, len(cfg.VirtualServices))}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		ix.svcs[vs.Key] = vs
		rm := make(map[lvs.DestKey]*config.RealServer, len(vs.Reals))
		for j := range vs.Reals {
			rm[vs.Reals[j].Key] = &vs.Reals[j]
		}
		ix.reals[vs] = rm
	}
	m.cfgIx = ix
	return &m.cfgIx
}

// view returns the view of the latest snapshot under the config in force,
// building it on the first call for that pair; nil before the first sample.
func (m *Metrics) view() *view {
	snap, cfg := m.c.Snapshot(), m.cfg()
	if snap == nil {
		return nil
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if v := m.cur; v != nil && v.snap == snap && v.cfg == cfg {
		return v
	}
	// Let the old view (and the snapshot it holds) go before building the
	// new one: scrapes still writing it keep their own reference.
	m.cur = nil
	v := buildView(snap, cfg, m.index(cfg))
	m.cur = v
	m.builds++
	return v
}

func buildView(snap *Snapshot, cfg *config.Config, ix *cfgIndex) *view {
	v := &view{snap: snap, cfg: cfg, counters: cfg.IPVS.Backend != config.BackendProcfs, nodeCompt: cfg.Metrics.NodeExporterCompatible}
	tab := &snap.Table
	v.services = make([]svcView, 0, len(tab.Services))
	inKernel := make(map[lvs.ServiceKey]bool, len(tab.Services))
	var ports portNames
	for i := range tab.Services {
		svc := &tab.Services[i]
		inKernel[svc.Key] = true
		sv := svcView{key: svc.Key, svc: svc}
		vs := ix.svcs[svc.Key]
		cfgReals := ix.reals[vs]
		sv.reals = make([]realView, 0, len(svc.Dests))
		for j := range svc.Dests {
			d := &svc.Dests[j]
			rv := realView{key: d.Key, d: d}
			if r := cfgReals[d.Key]; r != nil {
				rv.configured, rv.cfgWeight = true, r.ConfiguredWeight()
			}
			sv.active += int64(d.ActiveConns)
			sv.inactive += int64(d.InactiveConns)
			sv.persistent += int64(d.PersistentConns)
			sv.weight += int64(d.Weight)
			sv.reals = append(sv.reals, rv)
		}
		if vs != nil {
			sv.addMissingReals(vs)
		}
		sv.finish(vs, &ports)
		v.services = append(v.services, sv)
	}
	missing := false
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if inKernel[vs.Key] {
			continue
		}
		missing = true
		sv := svcView{key: vs.Key}
		sv.addMissingReals(vs)
		sv.finish(vs, &ports)
		v.services = append(v.services, sv)
	}
	if missing {
		slices.SortStableFunc(v.services, func(a, b svcView) int {
			switch {
			case a.key.Less(b.key):
				return -1
			case b.key.Less(a.key):
				return 1
			}
			return 0
		})
	}
	if v.nodeCompt {
		v.buildNode(&ports)
	}
	return v
}

// addMissingReals adds the configured real servers the kernel lacks, in
// real server order among the others.
func (sv *svcView) addMissingReals(vs *config.VirtualService) {
	sv.configured = true
	have := len(sv.reals)
	for j := range vs.Reals {
		r := &vs.Reals[j]
		sv.cfgWeight += int64(r.ConfiguredWeight())
		if sv.svc != nil && sv.svc.Dest(r.Key) != nil {
			continue
		}
		sv.reals = append(sv.reals, realView{key: r.Key, configured: true, cfgWeight: r.ConfiguredWeight()})
	}
	if len(sv.reals) > have {
		slices.SortFunc(sv.reals, func(a, b realView) int {
			switch {
			case a.key.Less(b.key):
				return -1
			case b.key.Less(a.key):
				return 1
			}
			return 0
		})
	}
}

// finish renders the service's labels.
func (sv *svcView) finish(vs *config.VirtualService, ports *portNames) {
	k := sv.key
	var addr, fwmark, name, port, proto string
	if k.IsFWMark() {
		fwmark = strconv.FormatUint(uint64(k.FWMark), 10)
	} else {
		addr, port, proto = k.Addr.String(), ports.get(k.Port), k.Protocol.String()
	}
	if vs != nil {
		name = vs.Name
	}
	sv.values = [6]string{addr, fwmark, name, port, proto, k.ID()}
	var b []byte
	for i, l := range lvs.ServiceLabels[:5] {
		if i == 0 {
			b = append(b, '{')
		} else {
			b = append(b, ',')
		}
		b = appendLabel(b, l, sv.values[i])
	}
	sv.open = string(b)
	sv.close = string(appendLabel(nil, "service", sv.values[5])) + "}"
}

// appendRealLabels appends `,real_address="…",real_port="…",`: the real
// server's labels between its service's. Addresses and ports need no
// escaping.
func appendRealLabels(b []byte, k lvs.DestKey) []byte {
	b = append(b, `,real_address="`...)
	b = k.Addr.AppendTo(b)
	b = append(b, `",real_port="`...)
	b = strconv.AppendUint(b, uint64(k.Port), 10)
	return append(b, `",`...)
}

// buildNode computes node_exporter's backend rows: its labels, and sums
// where they coincide.
func (v *view) buildNode(ports *portNames) {
	n := 0
	for i := range v.services {
		if v.services[i].svc != nil {
			n += len(v.services[i].svc.Dests)
		}
	}
	v.nodes = make([]nodeBackend, 0, n)
	seen := make(map[[6]string]int, n)
	var b []byte
	for i := range v.services {
		s := v.services[i].svc
		if s == nil {
			continue
		}
		var laddr, lport, mark, proto string
		if s.Key.IsFWMark() {
			lport, mark, proto = "0", fmt.Sprintf("%08X", s.Key.FWMark), "FWM"
		} else {
			laddr, lport, proto = s.Key.Addr.String(), ports.get(s.Key.Port), strings.ToUpper(s.Key.Protocol.String())
		}
		for j := range s.Dests {
			d := &s.Dests[j]
			vals := [6]string{laddr, mark, lport, proto, d.Key.Addr.String(), ports.get(d.Key.Port)}
			if k, ok := seen[vals]; ok {
				nb := &v.nodes[k]
				nb.active += float64(d.ActiveConns)
				nb.inactive += float64(d.InactiveConns)
				nb.weight += float64(d.Weight)
				continue
			}
			seen[vals] = len(v.nodes)
			b = b[:0]
			for li, l := range nodeBackendLabels {
				if li == 0 {
					b = append(b, '{')
				} else {
					b = append(b, ',')
				}
				b = appendLabel(b, l, vals[li])
			}
			b = append(b, '}')
			v.nodes = append(v.nodes, nodeBackend{values: vals, text: string(b),
				active: float64(d.ActiveConns), inactive: float64(d.InactiveConns), weight: float64(d.Weight)})
		}
	}
}

// portNames interns port numbers as strings: a big table has thousands of
// real servers on a handful of ports.
type portNames map[uint16]string

func (p *portNames) get(port uint16) string {
	if *p == nil {
		*p = portNames{}
	}
	s, ok := (*p)[port]
	if !ok {
		s = strconv.Itoa(int(port))
		(*p)[port] = s
	}
	return s
}

// exported reports whether family f is part of this view's output.
func (v *view) exported(f *family) bool {
	if f.nodeCompat && !v.nodeCompt {
		return false
	}
	return !f.perObjectCounter || v.counters
}

// collect sends the view's series as client_golang const metrics.
func (v *view) collect(fams []*family, ch chan<- prometheus.Metric) {
	send := func(f *family, val float64, labels ...string) {
		m, err := prometheus.NewConstMetric(f.desc, f.typ, val, labels...)
		if err != nil {
			m = prometheus.NewInvalidMetric(f.desc, err)
		}
		ch <- m
	}
	for _, f := range fams {
		if !v.exported(f) {
			continue
		}
		switch f.level {
		case levelDirector, levelNodeTotal:
			send(f, f.dir(&v.snap.Table))
		case levelService:
			for i := range v.services {
				s := &v.services[i]
				if val, ok := f.svc(s); ok {
					send(f, val, s.values[:]...)
				}
			}
		case levelReal:
			for i := range v.services {
				s := &v.services[i]
				for j := range s.reals {
					r := &s.reals[j]
					if val, ok := f.real(r); ok {
						send(f, val, s.values[0], s.values[1], s.values[2], s.values[3], s.values[4],
							r.key.Addr.String(), strconv.Itoa(int(r.key.Port)), s.values[5])
					}
				}
			}
		case levelNodeBackend:
			for i := range v.nodes {
				send(f, f.node(&v.nodes[i]), v.nodes[i].values[:]...)
			}
		}
	}
}

// ---------------------------------------------------------------------------
// Text exposition of the table families

// writeText writes the view's families in the text exposition format
// (version 0.0.4) or in OpenMetrics (without the closing # EOF: the small
// families follow), as expfmt would write the same families: HELP, TYPE,
// then one line per series, values formatted alike.
func (v *view) writeText(fams []*family, w io.Writer, f format) error {
	tw := textWriter{w: w, buf: make([]byte, 0, 64<<10), om: f == formatOpenMetrics}
	for _, f := range fams {
		if !v.exported(f) {
			continue
		}
		tw.family(f)
		switch f.level {
		case levelDirector, levelNodeTotal:
			tw.series(f, "", "", "", f.dir(&v.snap.Table))
		case levelService:
			for i := range v.services {
				s := &v.services[i]
				if val, ok := f.svc(s); ok {
					tw.series(f, s.open, ",", s.close, val)
				}
			}
		case levelReal:
			for i := range v.services {
				s := &v.services[i]
				for j := range s.reals {
					r := &s.reals[j]
					if val, ok := f.real(r); ok {
						tw.real(f, s.open, r.key, s.close, val)
					}
				}
			}
		case levelNodeBackend:
			for i := range v.nodes {
				tw.series(f, v.nodes[i].text, "", "", f.node(&v.nodes[i]))
			}
		}
		if tw.err != nil {
			return tw.err
		}
	}
	return tw.flush()
}

// textWriter buffers exposition lines and writes the header of a family
// only with its first series: a family without series is left out, as
// client_golang's registry leaves it out.
type textWriter struct {
	w       io.Writer
	buf     []byte
	pending *family
	err     error
	// om writes OpenMetrics: a counter's HELP and TYPE name it without
	// _total, HELP escapes quotes, and values always look like floats.
	om bool
}

func (t *textWriter) family(f *family) { t.pending = f }

func (t *textWriter) series(f *family, a, b, c string, val float64) {
	t.header()
	t.buf = append(t.buf, f.name...)
	t.buf = append(t.buf, a...)
	t.buf = append(t.buf, b...)
	t.buf = append(t.buf, c...)
	t.value(val)
}

// real writes a real server's series: its service's labels around its own.
func (t *textWriter) real(f *family, open string, k lvs.DestKey, close string, val float64) {
	t.header()
	t.buf = append(t.buf, f.name...)
	t.buf = append(t.buf, open...)
	t.buf = appendRealLabels(t.buf, k)
	t.buf = append(t.buf, close...)
	t.value(val)
}

func (t *textWriter) header() {
	if t.pending != nil {
		p := t.pending
		t.pending = nil
		name, typ := p.name, " gauge\n"
		if p.typ == prometheus.CounterValue {
			typ = " counter\n"
			if t.om {
				// OpenMetrics names the family, not its _total sample; a
				// counter without the suffix is unknown (as expfmt says).
				var ok bool
				if name, ok = strings.CutSuffix(name, "_total"); !ok {
					typ = " unknown\n"
				}
			}
		}
		t.buf = append(t.buf, "# HELP "...)
		t.buf = append(t.buf, name...)
		t.buf = append(t.buf, ' ')
		t.buf = appendEscaped(t.buf, p.help, t.om)
		t.buf = append(t.buf, "\n# TYPE "...)
		t.buf = append(t.buf, name...)
		t.buf = append(t.buf, typ...)
	}
}

func (t *textWriter) value(val float64) {
	t.buf = append(t.buf, ' ')
	if t.om {
		t.buf = appendOMValue(t.buf, val)
	} else {
		t.buf = appendValue(t.buf, val)
	}
	t.buf = append(t.buf, '\n')
	if len(t.buf) > cap(t.buf)-1024 {
		t.flush()
	}
}

func (t *textWriter) flush() error {
	if t.err == nil && len(t.buf) > 0 {
		_, t.err = t.w.Write(t.buf)
	}
	t.buf = t.buf[:0]
	return t.err
}

// appendLabel appends name="value" with the value escaped.
func appendLabel(b []byte, name, value string) []byte {
	b = append(b, name...)
	b = append(b, '=', '"')
	b = appendEscaped(b, value, true)
	return append(b, '"')
}

// appendEscaped escapes as the text format requires: backslash and
// newline always, the double quote in label values.
func appendEscaped(b []byte, s string, quote bool) []byte {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '"' && quote:
			b = append(b, '\\', '"')
		default:
			b = append(b, c)
		}
	}
	return b
}

// appendValue formats a sample value exactly as expfmt does.
func appendValue(b []byte, f float64) []byte {
	switch {
	case f == 0:
		return append(b, '0')
	case f == 1:
		return append(b, '1')
	case f == -1:
		return append(b, '-', '1')
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f > 0 && f < 1e6 && f == math.Trunc(f):
		// What 'g' gives for these, without the float algorithm.
		return strconv.AppendInt(b, int64(f), 10)
	}
	return strconv.AppendFloat(b, f, 'g', -1, 64)
}

// appendOMValue formats a sample value exactly as expfmt's OpenMetrics
// encoder does: as a float, so integers get a ".0".
func appendOMValue(b []byte, f float64) []byte {
	switch {
	case f == 0:
		return append(b, "0.0"...)
	case f == 1:
		return append(b, "1.0"...)
	case f == -1:
		return append(b, "-1.0"...)
	case math.IsNaN(f):
		return append(b, "NaN"...)
	case math.IsInf(f, 1):
		return append(b, "+Inf"...)
	case math.IsInf(f, -1):
		return append(b, "-Inf"...)
	case f > 0 && f < 1e6 && f == math.Trunc(f):
		b = strconv.AppendInt(b, int64(f), 10)
		return append(b, '.', '0')
	}
	start := len(b)
	b = strconv.AppendFloat(b, f, 'g', -1, 64)
	if !bytes.ContainsAny(b[start:], "e.") {
		b = append(b, '.', '0')
	}
	return b
}

// ---------------------------------------------------------------------------
// Compression

// gzChunk is the table's text compressed once per view: raw deflate blocks
// ending in a sync flush (byte-aligned, not final), so the small families
// of each scrape can follow as the final blocks of the same gzip member.
type gzChunk struct {
	deflate []byte
	crc     uint32
	size    int64
}

// gzipped returns the view's compressed exposition in format f,
// compressing it on first use. Scrapes of one snapshot share it; without
// it every scrape of a big table would spend most of its time in gzip.
func (v *view) gzipped(fams []*family, f format) (*gzChunk, error) {
	g := &v.gz[f]
	g.once.Do(func() {
		var out bytes.Buffer
		fw, err := flate.NewWriter(&out, flate.BestSpeed)
		if err != nil {
			g.err = fmt.Errorf("metrics: deflate: %w", err)
			return
		}
		cw := &crcWriter{w: fw}
		if err := v.writeText(fams, cw, f); err != nil {
			g.err = err
			return
		}
		if err := fw.Flush(); err != nil {
			g.err = fmt.Errorf("metrics: deflate: %w", err)
			return
		}
		g.chunk = gzChunk{deflate: out.Bytes(), crc: cw.crc, size: cw.n}
	})
	return &g.chunk, g.err
}

type crcWriter struct {
	w   io.Writer
	crc uint32
	n   int64
}

func (c *crcWriter) Write(p []byte) (int, error) {
	c.crc = crc32.Update(c.crc, crc32.IEEETable, p)
	c.n += int64(len(p))
	return c.w.Write(p)
}

// flatePool keeps compressors between scrapes: each holds about a
// megabyte of state.
var flatePool = sync.Pool{New: func() any {
	fw, err := flate.NewWriter(nil, flate.BestSpeed)
	if err != nil {
		panic(err) // only for an invalid level
	}
	return fw
}}

// gzipHeader is a gzip member header: deflate, no name, no time, unknown OS.
var gzipHeader = []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}

// ---------------------------------------------------------------------------
// HTTP

// The exposition formats lvsmon serves: the text format, which every
// Prometheus version and most other scrapers read, and OpenMetrics to a
// scraper that asks for it (Prometheus does by default). Protocol
// buffers are not offered: a scraper asking for them gets text.
var (
	textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)
	offered    = []expfmt.Format{expfmt.FmtOpenMetrics_1_0_0, expfmt.FmtOpenMetrics_0_0_1, textFormat}
)

// negotiate picks the format of a scrape from its Accept header, and the
// Content-Type that names it.
func negotiate(h http.Header) (format, string) {
	f := expfmt.NegotiateAccept(h, offered...)
	if f.FormatType() != expfmt.TypeOpenMetrics {
		return formatText, string(textFormat)
	}
	if f.Version() == expfmt.OpenMetricsVersion_0_0_1 {
		return formatOpenMetrics, string(expfmt.FmtOpenMetrics_0_0_1)
	}
	return formatOpenMetrics, string(expfmt.FmtOpenMetrics_1_0_0)
}

// MetricsHandler is the /metrics handler lvsmon serves: the exporter of
// c's snapshots plus the Go runtime and process collectors. These live in
// a registry of the handler's own rather than the global one, so that
// nothing a library registers as a side effect ends up on a director's
// dashboards.
func MetricsHandler(c *Collector, cfg func() *config.Config, opts MetricsOptions, log *slog.Logger) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	reg.MustRegister(opts.Extra...)
	return NewMetrics(c, cfg, opts).Handler(reg, log)
}

// Handler serves /metrics: the table's families, lvsmon's self-metrics,
// and every family extra gathers (the Go and process collectors; it must
// not include m itself). A failing extra gatherer is logged and its
// families are left out; the table is still served.
func (m *Metrics) Handler(extra prometheus.Gatherer, log *slog.Logger) http.Handler {
	gs := prometheus.Gatherers{m.selfReg}
	if extra != nil {
		gs = append(gs, extra)
	}
	own := map[string]bool{}
	for _, f := range m.fams {
		own[f.name] = true
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f, contentType := negotiate(r.Header)
		v := m.view()
		mfs, err := gs.Gather()
		if err != nil {
			log.Warn("gathering self-metrics failed; serving what was gathered", "err", err)
		}
		// The small families, encoded per scrape by expfmt.
		var small bytes.Buffer
		for _, mf := range mfs {
			if own[mf.GetName()] {
				continue // m registered in extra as well: the table is served below
			}
			var err error
			if f == formatOpenMetrics {
				_, err = expfmt.MetricFamilyToOpenMetrics(&small, mf)
			} else {
				_, err = expfmt.MetricFamilyToText(&small, mf)
			}
			if err != nil {
				log.Warn("encoding a metric family failed", "family", mf.GetName(), "err", err)
			}
		}
		if f == formatOpenMetrics {
			small.WriteString("# EOF\n")
		}
		h := w.Header()
		h.Set("Content-Type", contentType)
		h.Add("Vary", "Accept, Accept-Encoding")
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			if err := m.writeGzip(w, v, f, small.Bytes()); err != nil {
				log.Warn("writing /metrics failed", "err", err, "remote", r.RemoteAddr)
			}
			return
		}
		if v != nil {
			if err := v.writeText(m.fams, w, f); err != nil {
				log.Warn("writing /metrics failed", "err", err, "remote", r.RemoteAddr)
				return
			}
		}
		if _, err := w.Write(small.Bytes()); err != nil {
			log.Warn("writing /metrics failed", "err", err, "remote", r.RemoteAddr)
		}
	})
}

// writeGzip writes one gzip member: the view's cached deflate blocks, then
// the scrape's own text as the final blocks, and the trailer over both.
func (m *Metrics) writeGzip(w http.ResponseWriter, v *view, f format, small []byte) error {
	var chunk gzChunk
	if v != nil {
		c, err := v.gzipped(m.fams, f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return err
		}
		chunk = *c
	}
	w.Header().Set("Content-Encoding", "gzip")
	bw := bufio.NewWriterSize(w, 32<<10)
	bw.Write(gzipHeader)
	bw.Write(chunk.deflate)
	fw := flatePool.Get().(*flate.Writer)
	defer flatePool.Put(fw)
	fw.Reset(bw)
	fw.Write(small)
	if err := fw.Close(); err != nil {
		return fmt.Errorf("metrics: deflate: %w", err)
	}
	var trailer [8]byte
	binary.LittleEndian.PutUint32(trailer[:4], crc32.Update(chunk.crc, crc32.IEEETable, small))
	binary.LittleEndian.PutUint32(trailer[4:], uint32(chunk.size+int64(len(small))))
	bw.Write(trailer[:])
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("metrics: write: %w", err)
	}
	return nil
}

// acceptsGzip reads an Accept-Encoding header: gzip (or *) listed without
// q=0.
func acceptsGzip(h string) bool {
	for part := range strings.SplitSeq(h, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		coding = strings.ToLower(strings.TrimSpace(coding))
		if coding != "gzip" && coding != "x-gzip" && coding != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if strings.HasPrefix(q, "q=0") && strings.Trim(q[2:], "0.") == "" {
			continue
		}
		return true
	}
	return false
}
