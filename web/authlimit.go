package web

import (
	"container/list"
	"log/slog"
	"sync"
	"time"
)

// The write API's limit on failed attempts: a client (by c.ClientIP())
// that sends a missing or wrong token authFailures times within
// authWindow is refused, right token or not, for authBlock; each block
// that follows one within authMaxBlock doubles, up to authMaxBlock. At
// most authMaxClients clients are tracked, the least recently seen
// forgotten first, so a flood from many addresses costs bounded memory.
const (
	authFailures   = 5
	authWindow     = time.Minute
	authBlock      = time.Minute
	authMaxBlock   = 15 * time.Minute
	authMaxClients = 10_000
)

// authLimiter counts failed write API attempts by client.
type authLimiter struct {
	now func() time.Time
	log *slog.Logger
	max int

	mu      sync.Mutex
	clients map[string]*list.Element // of *authClient
	lru     *list.List               // least recently seen at the front
	total   uint64
}

type authClient struct {
	addr string
	// failures are the times of the failures within authWindow, oldest
	// first (at most authFailures).
	failures []time.Time
	// until is the end of the block in force (zero: none); block is its
	// length, doubled by the next block.
	until time.Time
	block time.Duration
}

func newAuthLimiter(now func() time.Time, log *slog.Logger) *authLimiter {
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &authLimiter{now: now, log: log, max: authMaxClients, clients: map[string]*list.Element{}, lru: list.New()}
}

// blocked returns how long addr remains blocked (0: not blocked).
func (a *authLimiter) blocked(addr string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	el, ok := a.clients[addr]
	if !ok {
		return 0
	}
	if d := el.Value.(*authClient).until.Sub(a.now()); d > 0 {
		return d
	}
	return 0
}

// fail records a failed attempt by addr and returns the block it starts
// (0: none yet).
func (a *authLimiter) fail(addr string) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.total++
	now := a.now()
	el, ok := a.clients[addr]
	if ok {
		a.lru.MoveToBack(el)
	} else {
		if a.lru.Len() >= a.max {
			old := a.lru.Remove(a.lru.Front()).(*authClient)
			delete(a.clients, old.addr)
		}
		el = a.lru.PushBack(&authClient{addr: addr})
		a.clients[addr] = el
	}
	cl := el.Value.(*authClient)
	if now.Before(cl.until) {
		return 0 // already blocked, and said so
	}
	fs := cl.failures[:0]
	for _, t := range cl.failures {
		if now.Sub(t) < authWindow {
			fs = append(fs, t)
		}
	}
	cl.failures = append(fs, now)
	if len(cl.failures) < authFailures {
		return 0
	}
	// a block that follows the last one within authMaxBlock doubles
	switch {
	case cl.block == 0 || now.Sub(cl.until) > authMaxBlock:
		cl.block = authBlock
	default:
		cl.block = min(2*cl.block, authMaxBlock)
	}
	cl.until = now.Add(cl.block)
	cl.failures = cl.failures[:0]
	a.log.Warn("write API: too many failed attempts; the client is refused, right token or not, until the block ends (logged once a block)",
		"client", addr, "failures", authFailures, "within", authWindow, "block", cl.block, "until", cl.until.UTC().Format(time.RFC3339))
	return cl.block
}

// failures returns the failed attempts counted since the start.
func (a *authLimiter) failures() uint64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.total
}
