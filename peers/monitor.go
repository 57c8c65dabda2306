package peers

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
)

// State is one peer as the monitor last saw it.
type State struct {
	Name, URL string
	// Up: the last pull succeeded.
	Up bool
	// Pulled: a pull has ended (before it, the peer is neither up nor
	// reported unreachable).
	Pulled bool
	// Last is the last good pull's answer (nil before one).
	Last        *Remote
	LastSuccess time.Time
	LastError   string
	// LastErrorTime is the last failed pull's time; DownSince the first
	// of the failures in a row (zero while up).
	LastErrorTime, DownSince time.Time
	// Drift is known only while Up; DriftSince is when this run of
	// drift began.
	DriftKnown bool
	Drift      []Drift
	DriftSince time.Time
}

// fetcher pulls one peer's status.
type fetcher interface {
	pull(ctx context.Context) (*Remote, error)
	close()
}

// peer is one peer's settings, client and state.
type peer struct {
	cfg   config.Peer
	fetch fetcher
	// mu guards st; one pull of a peer runs at a time (its loop).
	mu sync.Mutex
	st State
	// drifting is what the last event said (peer_drift or peer_in_sync);
	// it lives across unreachable spells, so a peer that comes back with
	// the same drift writes no new event.
	drifting bool
}

// Monitor pulls every peer on its interval and keeps their states.
type Monitor struct {
	log   *slog.Logger
	local func() Side
	event func(events.Event)
	now   func() time.Time

	mu      sync.Mutex
	peers   []*peer
	changed chan struct{}
}

// New builds the monitor of peers. local gives this director's side at
// the time of each comparison; event writes an event (the event log).
func New(peers []config.Peer, local func() Side, event func(events.Event), log *slog.Logger) *Monitor {
	m := &Monitor{log: log, local: local, event: event, now: time.Now, changed: make(chan struct{}, 1)}
	m.Apply(peers)
	return m
}

// Apply takes a reloaded peer list. A peer whose name and URL are
// unchanged keeps its state (and its events are not repeated); its
// client is rebuilt, so new TLS files are read.
func (m *Monitor) Apply(list []config.Peer) {
	m.mu.Lock()
	old := m.peers
	m.peers = make([]*peer, 0, len(list))
	for _, pc := range list {
		p := &peer{cfg: pc, st: State{Name: pc.Name, URL: pc.URL}}
		for _, o := range old {
			if o.cfg.Name == pc.Name && o.cfg.URL == pc.URL {
				o.mu.Lock()
				p.st, p.drifting = o.st, o.drifting
				o.mu.Unlock()
			}
		}
		c, err := newClient(pc)
		if err != nil {
			p.fetch = failing{fmt.Errorf("peer %s: %w", pc.Name, err)}
		} else {
			p.fetch = c
		}
		m.peers = append(m.peers, p)
	}
	m.mu.Unlock()
	for _, o := range old {
		o.fetch.close()
	}
	select {
	case m.changed <- struct{}{}:
	default:
	}
}

// failing is the fetcher of a peer whose client could not be built (a
// TLS file gone bad since validation): every pull fails with why.
type failing struct{ err error }

func (f failing) pull(context.Context) (*Remote, error) { return nil, f.err }
func (failing) close()                                  {}

func (m *Monitor) list() []*peer {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.peers)
}

// Run pulls every peer at once and then every interval until ctx ends;
// Apply restarts the loops with the new list.
func (m *Monitor) Run(ctx context.Context) {
	for {
		cctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		for _, p := range m.list() {
			wg.Go(func() { m.loop(cctx, p) })
		}
		select {
		case <-ctx.Done():
		case <-m.changed:
		}
		cancel()
		wg.Wait()
		if ctx.Err() != nil {
			for _, p := range m.list() {
				p.fetch.close()
			}
			return
		}
	}
}

func (m *Monitor) loop(ctx context.Context, p *peer) {
	t := time.NewTicker(p.cfg.Interval.D())
	defer t.Stop()
	for {
		m.poll(ctx, p)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// PollOnce pulls every peer once, one after the other (tests; a
// one-shot comparison).
func (m *Monitor) PollOnce(ctx context.Context) {
	for _, p := range m.list() {
		m.poll(ctx, p)
	}
}

// poll pulls p once, within its timeout, and records the outcome. A
// pull cut short by ctx's end (a stop, a reload) records nothing.
func (m *Monitor) poll(ctx context.Context, p *peer) {
	pctx, cancel := context.WithTimeout(ctx, p.cfg.Timeout.D())
	r, err := p.fetch.pull(pctx)
	cancel()
	if ctx.Err() != nil {
		return
	}
	p.mu.Lock()
	evs := m.record(p, r, err)
	p.mu.Unlock()
	for _, e := range evs {
		m.event(e)
	}
}

// record takes one pull's outcome into p's state and returns the events
// it makes. It holds p.mu.
func (m *Monitor) record(p *peer, r *Remote, err error) []events.Event {
	now := m.now()
	st := &p.st
	var out []events.Event
	name := p.cfg.Name
	if err != nil {
		if !st.Pulled || st.Up {
			st.DownSince = now
			out = append(out, events.Event{Kind: events.PeerUnreachable, Instance: name, Reason: err.Error(), From: events.Up, To: events.Down,
				Message: fmt.Sprintf("peer %s cannot be reached, its drift is unknown: %v", name, err)})
			m.log.Warn("peer unreachable", "peer", name, "err", err)
		}
		st.Pulled, st.Up, st.LastError, st.LastErrorTime = true, false, err.Error(), now
		st.DriftKnown, st.Drift = false, nil
		return out
	}
	if st.Pulled && !st.Up {
		out = append(out, events.Event{Kind: events.PeerReachable, Instance: name, From: events.Down, To: events.Up,
			Message: fmt.Sprintf("peer %s answers again (unreachable since %s)", name, st.DownSince.Format(time.RFC3339))})
		m.log.Info("peer reachable", "peer", name)
	}
	st.Pulled, st.Up, st.Last, st.LastSuccess, st.DownSince = true, true, r, now, time.Time{}
	st.Drift, st.DriftKnown = Compare(m.local(), r.Side), true
	switch {
	case len(st.Drift) > 0 && !p.drifting:
		p.drifting, st.DriftSince = true, now
		out = append(out, events.Event{Kind: events.PeerDrift, Instance: name, Reason: Summary(st.Drift),
			Message: fmt.Sprintf("this director and peer %s differ: %s (first: %s)", name, Summary(st.Drift), st.Drift[0])})
		m.log.Warn("peer drift", "peer", name, "drift", Summary(st.Drift))
	case len(st.Drift) == 0 && p.drifting:
		p.drifting, st.DriftSince = false, time.Time{}
		out = append(out, events.Event{Kind: events.PeerInSync, Instance: name,
			Message: fmt.Sprintf("this director and peer %s agree again: configs and kernel tables match", name)})
		m.log.Info("peer in sync", "peer", name)
	}
	return out
}

// Summary counts drift by table and kind: "config weight 2, kernel service 1".
func Summary(ds []Drift) string {
	n := Count(ds)
	var parts []string
	for _, table := range []string{TableConfig, TableKernel} {
		for _, k := range Kinds[table] {
			if c := n[[2]string{table, k}]; c > 0 {
				parts = append(parts, fmt.Sprintf("%s %s %d", table, k, c))
			}
		}
	}
	return strings.Join(parts, ", ")
}

// Status is every peer's state, in the config's order.
func (m *Monitor) Status() []State {
	var out []State
	for _, p := range m.list() {
		p.mu.Lock()
		st := p.st
		st.Drift = slices.Clone(st.Drift)
		p.mu.Unlock()
		out = append(out, st)
	}
	return out
}
