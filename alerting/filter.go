package alerting

import (
	"fmt"
	"slices"

	"github.com/lvsmon/lvsmon/events"
)

// Filter is the choice of events one channel (mail, a webhook, the
// Alertmanager) takes: the vocabulary of the config's kinds, services and
// master_only, decided in one place for every channel.
type Filter struct {
	kinds    map[events.Kind]bool // nil: all
	services map[string]bool      // nil: all
	// MasterOnly passes real-server and sorry events only while this
	// director is the master of its pair (role and daemon events always).
	MasterOnly bool
}

// NewFilter checks kinds (events.Selectors names; events.DefaultAlerts
// when empty) and takes services (ids or display names; empty: all).
func NewFilter(kinds, services []string, masterOnly bool) (Filter, error) {
	f := Filter{MasterOnly: masterOnly}
	ks := events.DefaultAlerts()
	if len(kinds) > 0 {
		ks = ks[:0]
		for _, k := range kinds {
			ks = append(ks, events.Kind(k))
		}
	}
	f.kinds = map[events.Kind]bool{}
	for _, k := range ks {
		if k == events.All {
			f.kinds = nil
			break
		}
		if !slices.Contains(events.Selectors(), k) {
			return Filter{}, fmt.Errorf("alerting: unknown event kind %q (known: %v)", k, events.Selectors())
		}
		f.kinds[k] = true
	}
	if len(services) > 0 {
		f.services = map[string]bool{}
		for _, s := range services {
			f.services[s] = true
		}
	}
	return f, nil
}

// Kind says whether the kinds take ev.
func (f Filter) Kind(ev *events.Event) bool {
	return f.kinds == nil || f.kinds[ev.Kind] || f.kinds[events.ReloadRejected] && events.ReloadRejected.Selects(ev)
}

// HasKind says whether the kinds name k (or all).
func (f Filter) HasKind(k events.Kind) bool { return f.kinds == nil || f.kinds[k] }

// Service says whether the services take the service id (named name by
// the config, when name is not nil). Director-wide events (no service)
// always pass.
func (f Filter) Service(service string, name func(string) string) bool {
	if service == "" || f.services == nil || f.services[service] {
		return true
	}
	if name != nil {
		if n := name(service); n != "" {
			return f.services[n]
		}
	}
	return false
}

// Reasons a Filter refuses an event (PipelineStats.Suppressed's keys).
// Match returns "" for an event it takes.
func (f Filter) Match(ev *events.Event, master bool, name func(string) string) string {
	switch {
	case !f.Kind(ev):
		return SuppressedKind
	case !f.Service(ev.Service, name):
		return SuppressedService
	case f.MasterOnly && !master && realServerKind(ev.Kind):
		return SuppressedBackup
	}
	return ""
}
