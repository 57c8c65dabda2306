package lvs

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"
)

// Fake is an in-memory IPVS table with the kernel's write semantics
// (creating an existing object fails, updating a missing one fails, a
// deleted service takes its real servers along). It is deterministic: the
// only thing that changes counters is the caller, through AddTraffic or
// Mutate. Errors and latency can be injected per operation, so tests can
// drive the collector and reconciler through netlink-like failures.
type Fake struct {
	mu      sync.Mutex
	table   Table
	latency time.Duration
	fail    map[string]error // op name -> error returned by the next calls
	calls   map[string]int
}

// Fake operation names, for FailOn and Calls.
const (
	OpTable         = "table"
	OpCreateService = "create service"
	OpUpdateService = "update service"
	OpDeleteService = "delete service"
	OpCreateDest    = "create dest"
	OpUpdateDest    = "update dest"
	OpDeleteDest    = "delete dest"
	OpSetWeight     = "set weight"
)

// NewFake returns a fake holding a copy of t.
func NewFake(t Table) *Fake {
	t = t.Clone()
	t.Sort()
	return &Fake{table: t, fail: map[string]error{}, calls: map[string]int{}}
}

// SetLatency makes every operation take d (bounded by its context), to
// test that callers honour deadlines.
func (f *Fake) SetLatency(d time.Duration) {
	f.mu.Lock()
	f.latency = d
	f.mu.Unlock()
}

// FailOn makes every later call of op return err (wrapped in an OpError)
// until FailOn(op, nil).
func (f *Fake) FailOn(op string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, op)
		return
	}
	f.fail[op] = err
}

// Calls returns how many times op was called, failed calls included.
func (f *Fake) Calls(op string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[op]
}

// Mutate runs fn on the live table under the fake's lock, for tests and
// the simulation to change counters or state as the kernel would. The
// table is re-sorted afterwards.
func (f *Fake) Mutate(fn func(t *Table)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn(&f.table)
	f.table.Sort()
}

// begin counts the call, waits the injected latency and returns the
// injected error. It is called without the lock held so that latency does
// not serialize unrelated callers.
func (f *Fake) begin(ctx context.Context, op, obj string) error {
	f.mu.Lock()
	f.calls[op]++
	lat, ferr := f.latency, f.fail[op]
	f.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return &OpError{Backend: "fake", Op: op, Object: obj, Err: err}
	}
	if lat > 0 {
		t := time.NewTimer(lat)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return &OpError{Backend: "fake", Op: op, Object: obj, Err: ctx.Err()}
		}
	}
	if ferr != nil {
		return &OpError{Backend: "fake", Op: op, Object: obj, Err: ferr}
	}
	return nil
}

func fakeErr(op, obj string, err error) error {
	return &OpError{Backend: "fake", Op: op, Object: obj, Err: err}
}

// Table returns a deep copy of the current table, with Totals summed from
// the services as the kernel's global counters would be.
func (f *Fake) Table(ctx context.Context) (Table, error) {
	if err := f.begin(ctx, OpTable, ""); err != nil {
		return Table{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	t := f.table.Clone()
	t.SumTotals()
	return t, nil
}

// Close does nothing; the fake holds no resources.
func (f *Fake) Close() error { return nil }

// CreateService adds a service with no real servers (Dests are ignored,
// as the kernel's add-service ignores them).
func (f *Fake) CreateService(ctx context.Context, s Service) error {
	obj := s.Key.String()
	if err := f.begin(ctx, OpCreateService, obj); err != nil {
		return err
	}
	if err := validateService(s); err != nil {
		return fakeErr(OpCreateService, obj, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.table.Service(s.Key) != nil {
		return fakeErr(OpCreateService, obj, ErrExists)
	}
	s.Dests = nil
	s.Stats = Stats{}
	f.table.Services = append(f.table.Services, s)
	f.table.Sort()
	return nil
}

// UpdateService changes scheduler and persistence of an existing service,
// keeping its real servers and counters.
func (f *Fake) UpdateService(ctx context.Context, s Service) error {
	obj := s.Key.String()
	if err := f.begin(ctx, OpUpdateService, obj); err != nil {
		return err
	}
	if err := validateService(s); err != nil {
		return fakeErr(OpUpdateService, obj, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur := f.table.Service(s.Key)
	if cur == nil {
		return fakeErr(OpUpdateService, obj, ErrNotFound)
	}
	cur.Scheduler, cur.Persistence, cur.Netmask, cur.OnePacket = s.Scheduler, s.Persistence, s.Netmask, s.OnePacket
	return nil
}

// DeleteService removes a service and its real servers.
func (f *Fake) DeleteService(ctx context.Context, k ServiceKey) error {
	obj := k.String()
	if err := f.begin(ctx, OpDeleteService, obj); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.table.Services {
		if f.table.Services[i].Key == k {
			f.table.Services = append(f.table.Services[:i], f.table.Services[i+1:]...)
			return nil
		}
	}
	return fakeErr(OpDeleteService, obj, ErrNotFound)
}

// CreateDest adds a real server to a service, with zero counters.
func (f *Fake) CreateDest(ctx context.Context, k ServiceKey, d Dest) error {
	obj := destObject(k, d.Key)
	if err := f.begin(ctx, OpCreateDest, obj); err != nil {
		return err
	}
	if err := validateDest(k, d); err != nil {
		return fakeErr(OpCreateDest, obj, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.table.Service(k)
	if s == nil {
		return fakeErr(OpCreateDest, obj, fmt.Errorf("service: %w", ErrNotFound))
	}
	if s.Dest(d.Key) != nil {
		return fakeErr(OpCreateDest, obj, ErrExists)
	}
	d.ActiveConns, d.InactiveConns, d.PersistentConns, d.Stats = 0, 0, 0, Stats{}
	s.Dests = append(s.Dests, d)
	sort.Slice(s.Dests, func(a, b int) bool { return s.Dests[a].Key.Less(s.Dests[b].Key) })
	return nil
}

// UpdateDest replaces every settable field of a real server (forwarding,
// weight, thresholds), as the kernel's set-dest does; counters stay.
func (f *Fake) UpdateDest(ctx context.Context, k ServiceKey, d Dest) error {
	obj := destObject(k, d.Key)
	if err := f.begin(ctx, OpUpdateDest, obj); err != nil {
		return err
	}
	if err := validateDest(k, d); err != nil {
		return fakeErr(OpUpdateDest, obj, err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, err := f.dest(k, d.Key)
	if err != nil {
		return fakeErr(OpUpdateDest, obj, err)
	}
	cur.Forward, cur.Weight, cur.UpperThreshold, cur.LowerThreshold = d.Forward, d.Weight, d.UpperThreshold, d.LowerThreshold
	return nil
}

// DeleteDest removes a real server.
func (f *Fake) DeleteDest(ctx context.Context, k ServiceKey, dk DestKey) error {
	obj := destObject(k, dk)
	if err := f.begin(ctx, OpDeleteDest, obj); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.table.Service(k)
	if s == nil {
		return fakeErr(OpDeleteDest, obj, fmt.Errorf("service: %w", ErrNotFound))
	}
	for i := range s.Dests {
		if s.Dests[i].Key == dk {
			s.Dests = append(s.Dests[:i], s.Dests[i+1:]...)
			return nil
		}
	}
	return fakeErr(OpDeleteDest, obj, ErrNotFound)
}

// SetWeight changes one real server's weight.
func (f *Fake) SetWeight(ctx context.Context, k ServiceKey, dk DestKey, w int32) error {
	obj := destObject(k, dk)
	if err := f.begin(ctx, OpSetWeight, obj); err != nil {
		return err
	}
	if w < 0 {
		return fakeErr(OpSetWeight, obj, fmt.Errorf("%w: negative weight %d", ErrInvalid, w))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	cur, err := f.dest(k, dk)
	if err != nil {
		return fakeErr(OpSetWeight, obj, err)
	}
	cur.Weight = w
	return nil
}

func (f *Fake) dest(k ServiceKey, dk DestKey) (*Dest, error) {
	s := f.table.Service(k)
	if s == nil {
		return nil, fmt.Errorf("service: %w", ErrNotFound)
	}
	d := s.Dest(dk)
	if d == nil {
		return nil, ErrNotFound
	}
	return d, nil
}
