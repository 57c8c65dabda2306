// Package peers compares this director with the other director(s) of its
// pair. It pulls each peer's status API (config peers: URL, TLS, basic
// auth or a bearer token), keeps the last good answer with its time and
// the last error, and computes the drift between the two configs and the
// two kernel tables: the backup's table is what a failover would serve,
// so a difference there is found before it matters. A peer that cannot
// be pulled has an unknown drift, never an empty one.
//
// The package reads the status API's JSON into types of its own (only
// the fields it compares): it is a feature package, and feature packages
// do not import web, whose types define that JSON; app's two-daemon test
// holds both ends together.
package peers

import (
	"cmp"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

// Tables compared.
const (
	TableConfig = "config"
	TableKernel = "kernel"
)

// Kinds of drift.
const (
	KindService     = "service"      // a service on one side only
	KindRealServer  = "real_server"  // a real server on one side only
	KindWeight      = "weight"       // configured (config) or live (kernel) weight
	KindScheduler   = "scheduler"    // the service's scheduler
	KindPersistence = "persistence"  // the service's persistence timeout
	KindSorryServer = "sorry_server" // the configured sorry server
	KindCheck       = "check"        // the configured check settings
)

// Kinds lists every kind of drift, per table, in the order they are
// reported.
var Kinds = map[string][]string{
	TableConfig: {KindService, KindRealServer, KindWeight, KindScheduler, KindPersistence, KindSorryServer, KindCheck},
	TableKernel: {KindService, KindRealServer, KindWeight, KindScheduler, KindPersistence},
}

// Absent is the value of a side that lacks the object.
const Absent = "absent"

// Drift is one difference between this director (Local) and a peer.
type Drift struct {
	Table   string // TableConfig or TableKernel
	Kind    string // one of Kinds[Table]
	Service string // the service's id
	Server  string // the real server's id (real_server, weight)
	Local   string
	Peer    string
}

func (d Drift) String() string {
	obj := d.Service
	if d.Server != "" {
		obj = d.Server
	}
	return fmt.Sprintf("%s %s %s: here %s, peer %s", d.Table, d.Kind, obj, d.Local, d.Peer)
}

// Side is one director's comparable state: its services by id, as the
// config asks for them and as the kernel has them. A nil map is not
// known (no sample yet) and is not compared.
type Side struct {
	Config map[string]*Service
	Kernel map[string]*Service
}

// Service is one service's comparable values. In the config view Reals
// are the configured weights (the sorry server apart); in the kernel view
// the live weights of every destination, the sorry server's too.
type Service struct {
	Scheduler   string
	Persistence float64 // seconds
	SorryServer string  // config: "address:port forward"; "" none
	Check       string  // config: config.CheckSettings
	Reals       map[string]int32
}

// Local is this director's side: its config and its latest snapshot
// (nil before the first sample: the kernel is not compared then).
func Local(cfg *config.Config, snap *lvs.Snapshot) Side {
	s := Side{Config: map[string]*Service{}}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		sv := &Service{Scheduler: vs.Scheduler, Persistence: vs.Persistence.D().Seconds(), Check: config.CheckSettings(vs), Reals: map[string]int32{}}
		if vs.Sorry != nil {
			sv.SorryServer = vs.Sorry.Key.String() + " " + vs.Sorry.Fwd.String()
		}
		for j := range vs.Reals {
			sv.Reals[lvs.DestID(vs.Key, vs.Reals[j].Key)] = vs.Reals[j].ConfiguredWeight()
		}
		s.Config[vs.Key.ID()] = sv
	}
	if snap != nil {
		s.Kernel = map[string]*Service{}
		for i := range snap.Table.Services {
			svc := &snap.Table.Services[i]
			sv := &Service{Scheduler: svc.Scheduler, Persistence: svc.Persistence.Seconds(), Reals: map[string]int32{}}
			for j := range svc.Dests {
				sv.Reals[lvs.DestID(svc.Key, svc.Dests[j].Key)] = svc.Dests[j].Weight
			}
			s.Kernel[svc.Key.ID()] = sv
		}
	}
	return s
}

// Compare lists every difference between local and peer, sorted by
// table, service, server and kind. Tables not known on either side are
// left out.
func Compare(local, peer Side) []Drift {
	var out []Drift
	if local.Config != nil && peer.Config != nil {
		out = compareTable(out, TableConfig, local.Config, peer.Config)
	}
	if local.Kernel != nil && peer.Kernel != nil {
		out = compareTable(out, TableKernel, local.Kernel, peer.Kernel)
	}
	slices.SortStableFunc(out, func(a, b Drift) int {
		return cmp.Or(cmp.Compare(a.Table, b.Table), cmp.Compare(a.Service, b.Service), cmp.Compare(a.Server, b.Server),
			cmp.Compare(slices.Index(Kinds[a.Table], a.Kind), slices.Index(Kinds[b.Table], b.Kind)))
	})
	return out
}

func compareTable(out []Drift, table string, local, peer map[string]*Service) []Drift {
	for _, id := range union(local, peer) {
		l, p := local[id], peer[id]
		if l == nil || p == nil {
			out = append(out, Drift{Table: table, Kind: KindService, Service: id, Local: presence(l != nil), Peer: presence(p != nil)})
			continue
		}
		add := func(kind, lv, pv string) {
			if lv != pv {
				out = append(out, Drift{Table: table, Kind: kind, Service: id, Local: lv, Peer: pv})
			}
		}
		add(KindScheduler, l.Scheduler, p.Scheduler)
		add(KindPersistence, seconds(l.Persistence), seconds(p.Persistence))
		if table == TableConfig {
			add(KindSorryServer, orNone(l.SorryServer), orNone(p.SorryServer))
			add(KindCheck, orNone(l.Check), orNone(p.Check))
		}
		for _, rid := range union(l.Reals, p.Reals) {
			lw, lok := l.Reals[rid]
			pw, pok := p.Reals[rid]
			switch {
			case !lok || !pok:
				out = append(out, Drift{Table: table, Kind: KindRealServer, Service: id, Server: rid, Local: presence(lok), Peer: presence(pok)})
			case lw != pw:
				out = append(out, Drift{Table: table, Kind: KindWeight, Service: id, Server: rid, Local: strconv.Itoa(int(lw)), Peer: strconv.Itoa(int(pw))})
			}
		}
	}
	return out
}

func union[V any](a, b map[string]V) []string {
	ids := slices.Collect(maps.Keys(a))
	for k := range b {
		if _, ok := a[k]; !ok {
			ids = append(ids, k)
		}
	}
	slices.Sort(ids)
	return ids
}

func presence(ok bool) string {
	if ok {
		return "present"
	}
	return Absent
}

func seconds(s float64) string { return strconv.FormatFloat(s, 'f', -1, 64) + "s" }

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// Count is how many drifts of each table and kind there are.
func Count(ds []Drift) map[[2]string]int {
	out := map[[2]string]int{}
	for _, d := range ds {
		out[[2]string{d.Table, d.Kind}]++
	}
	return out
}
