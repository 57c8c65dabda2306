package lvs

import (
	"math"
	"math/rand/v2"
	"sync"
	"time"
)

// Profile describes the synthetic traffic of one simulated service.
type Profile struct {
	ConnsPerSec  float64       // mean new connections per second at the daily peak
	ConnDuration time.Duration // mean lifetime of an established connection
	InPkts       float64       // packets client -> server per connection
	OutPkts      float64       // packets server -> client per connection
	InBytes      float64       // bytes client -> server per connection
	OutBytes     float64       // bytes server -> client per connection
}

// Sim drives a Fake the way real traffic drives the kernel: new
// connections arrive at random, are spread over the real servers by the
// service's scheduler and weights, and make the counters grow; active and
// inactive connection gauges follow from arrival rate and lifetime. A real
// server marked unreachable still gets connections from IPVS (the kernel
// does not know it is dead) but they never establish, as when a server
// stops answering and nothing has set its weight to 0 yet.
//
// It is deterministic for a given seed and sequence of Advance calls.
type Sim struct {
	f   *Fake
	mu  sync.Mutex
	rnd *rand.Rand
	now time.Time // simulated time, for the daily traffic curve

	profiles    map[ServiceKey]Profile
	unreachable map[ServiceKey]map[DestKey]bool
	rr          map[ServiceKey]int // round-robin position per service
}

// NewSim returns a simulation over f starting at simulated time start.
func NewSim(f *Fake, seed uint64, start time.Time) *Sim {
	return &Sim{
		f: f, rnd: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), now: start,
		profiles:    map[ServiceKey]Profile{},
		unreachable: map[ServiceKey]map[DestKey]bool{},
		rr:          map[ServiceKey]int{},
	}
}

// SetProfile sets the traffic of service k.
func (s *Sim) SetProfile(k ServiceKey, p Profile) {
	s.mu.Lock()
	s.profiles[k] = p
	s.mu.Unlock()
}

// SetReachable marks a real server as answering or not.
func (s *Sim) SetReachable(k ServiceKey, d DestKey, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := s.unreachable[k]
	if m == nil {
		m = map[DestKey]bool{}
		s.unreachable[k] = m
	}
	if ok {
		delete(m, d)
	} else {
		m[d] = true
	}
}

// Now returns the simulated time.
func (s *Sim) Now() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.now
}

// diurnal scales traffic over the simulated day: a trough at 04:00 at a
// quarter of the peak, the peak at 16:00, so day graphs have a shape.
func diurnal(t time.Time) float64 {
	h := float64(t.Hour()) + float64(t.Minute())/60
	return 0.625 - 0.375*math.Cos((h-4)/24*2*math.Pi)
}

// poisson draws a Poisson-distributed count with mean m (normal
// approximation above 50, which is plenty for traffic shapes).
func (s *Sim) poisson(m float64) uint64 {
	if m <= 0 {
		return 0
	}
	if m > 50 {
		v := m + math.Sqrt(m)*s.rnd.NormFloat64()
		if v < 0 {
			return 0
		}
		return uint64(v + 0.5)
	}
	l, k, p := math.Exp(-m), uint64(0), 1.0
	for {
		p *= s.rnd.Float64()
		if p <= l {
			return k
		}
		k++
	}
}

// Advance moves simulated time forward by dt and applies the traffic of
// that interval to the fake's table.
func (s *Sim) Advance(dt time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.now = s.now.Add(dt)
	secs := dt.Seconds()
	scale := diurnal(s.now)
	s.f.Mutate(func(t *Table) {
		for i := range t.Services {
			svc := &t.Services[i]
			p, ok := s.profiles[svc.Key]
			if !ok {
				continue
			}
			cps := p.ConnsPerSec * scale
			n := s.poisson(cps * secs)
			shares := s.spread(svc, n)
			var tot Stats
			for j := range svc.Dests {
				d := &svc.Dests[j]
				c := shares[j]
				dcps := cps * share(svc, j)
				if s.unreachable[svc.Key][d.Key] {
					// SYNs and their retransmits arrive; nothing comes back.
					st := Stats{Conns: c, InPkts: 3 * c, InBytes: 180 * c}
					d.Stats = d.Stats.Add(st)
					tot = tot.Add(st)
					d.ActiveConns = 0
					d.InactiveConns = uint32(s.poisson(dcps * 3)) // SYN_RECV entries
					continue
				}
				st := Stats{
					Conns:    c,
					InPkts:   s.scaled(p.InPkts, c),
					OutPkts:  s.scaled(p.OutPkts, c),
					InBytes:  s.scaled(p.InBytes, c),
					OutBytes: s.scaled(p.OutBytes, c),
				}
				d.Stats = d.Stats.Add(st)
				tot = tot.Add(st)
				// Little's law: in-flight = rate x lifetime. UDP has no
				// established state: IPVS lists its entries as inactive.
				live := s.poisson(dcps * p.ConnDuration.Seconds())
				wait := s.poisson(dcps * 10) // FIN_WAIT/TIME_WAIT entries
				if svc.Key.Protocol == UDP {
					d.ActiveConns, d.InactiveConns = 0, uint32(live+wait)
				} else {
					d.ActiveConns, d.InactiveConns = uint32(live), uint32(wait)
				}
				if svc.Persistence > 0 {
					d.PersistentConns = uint32(s.poisson(dcps * svc.Persistence.Seconds() / 4))
				}
			}
			svc.Stats = svc.Stats.Add(tot)
		}
	})
}

// scaled returns about per*n, with a little noise so graphs look alive.
func (s *Sim) scaled(per float64, n uint64) uint64 {
	if n == 0 {
		return 0
	}
	v := per * float64(n) * (0.9 + 0.2*s.rnd.Float64())
	return uint64(v + 0.5)
}

// share is real server j's expected fraction of its service's new
// connections: by weight for every scheduler (rr ignores the value but
// still skips weight 0, which the weight share also gives).
func share(svc *Service, j int) float64 {
	var sum float64
	for _, d := range svc.Dests {
		sum += weightOf(svc, d)
	}
	if sum == 0 {
		return 0
	}
	return weightOf(svc, svc.Dests[j]) / sum
}

func weightOf(svc *Service, d Dest) float64 {
	if d.Weight <= 0 {
		return 0
	}
	if svc.Scheduler == "rr" {
		return 1
	}
	return float64(d.Weight)
}

// spread hands n new connections to the real servers as the scheduler
// would: rr in turn among servers with weight > 0, everything else at
// random in proportion to weight. With no usable server IPVS drops the
// connection (it is not counted anywhere).
func (s *Sim) spread(svc *Service, n uint64) []uint64 {
	out := make([]uint64, len(svc.Dests))
	var usable []int
	for j, d := range svc.Dests {
		if weightOf(svc, d) > 0 {
			usable = append(usable, j)
		}
	}
	if len(usable) == 0 || n == 0 {
		return out
	}
	if svc.Scheduler == "rr" {
		pos := s.rr[svc.Key]
		for range n {
			out[usable[pos%len(usable)]]++
			pos++
		}
		s.rr[svc.Key] = pos % len(usable)
		return out
	}
	var sum float64
	for _, j := range usable {
		sum += weightOf(svc, svc.Dests[j])
	}
	// Expected shares plus Poisson noise keeps large counts cheap.
	for _, j := range usable {
		out[j] = s.poisson(float64(n) * weightOf(svc, svc.Dests[j]) / sum)
	}
	return out
}
