package graphs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeDraws replaces a renderer's librrd draw: every image is size bytes
// naming its request; a request whose width is in block waits for that
// channel, and entered receives its width first.
type fakeDraws struct {
	size    int
	calls   atomic.Int64
	block   map[int]chan struct{}
	entered chan int
}

func (f *fakeDraws) draw(r Request) ([]byte, error) {
	f.calls.Add(1)
	if ch, ok := f.block[r.Width]; ok {
		f.entered <- r.Width
		<-ch
	}
	if r.Graph == GraphTraffic {
		return nil, errors.New("librrd: something broke")
	}
	img := bytes.Repeat([]byte{'.'}, f.size)
	copy(img, fmt.Sprintf("%s %d", r.Graph, r.Width))
	return img, nil
}

func fakeRenderer(t *testing.T, f *fakeDraws) *Renderer {
	t.Helper()
	g := NewRenderer(newStore(t, 10*time.Second), nil)
	g.drawFn = f.draw
	return g
}

func req(width int) Request {
	return Request{Kind: ServiceFile, Service: web.ID(), Graph: GraphConns, Range: "hour", Width: width}
}

// noHang fails the test if fn does not return: a deadlock detector, not a
// timing assertion.
func noHang(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not return: it waits for something it should not", what)
	}
}

func TestCacheBoundedInBytes(t *testing.T) {
	f := &fakeDraws{size: 100 << 10}
	g := fakeRenderer(t, f)
	g.SetCacheBytes(1 << 20) // room for about nine 100 KiB images
	for w := 200; w < 230; w++ {
		if _, err := g.Render(req(w)); err != nil {
			t.Fatal(err)
		}
		if st := g.Stats(); st.Bytes > st.MaxBytes {
			t.Fatalf("after width %d: %d bytes cached, bound %d", w, st.Bytes, st.MaxBytes)
		}
	}
	st := g.Stats()
	if st.Draws != 30 || st.Entries < 8 || st.Entries > 10 || st.Evictions != uint64(30-st.Entries) {
		t.Errorf("stats %+v", st)
	}
	// The most recent images are cached; the oldest was evicted.
	calls := f.calls.Load()
	g.Render(req(229))
	g.Render(req(229 - st.Entries + 1))
	if f.calls.Load() != calls {
		t.Errorf("recent images were drawn again")
	}
	g.Render(req(200))
	if f.calls.Load() != calls+1 {
		t.Errorf("the least recently used image was still cached")
	}
	// Use refreshes: 229-entries+2 was used least recently but is now
	// touched, so drawing one more evicts another.
	keep := 229 - st.Entries + 2
	g.Render(req(keep))
	g.Render(req(300))
	calls = f.calls.Load()
	g.Render(req(keep))
	if f.calls.Load() != calls {
		t.Errorf("a recently used image was evicted")
	}
	// An image too big for the cache is drawn but not kept.
	big := &fakeDraws{size: 300 << 10}
	g2 := fakeRenderer(t, big)
	g2.SetCacheBytes(1 << 20)
	g2.Render(req(200))
	g2.Render(req(200))
	if big.calls.Load() != 2 || g2.Stats().Bytes != 0 {
		t.Errorf("an image of more than an eighth of the bound was cached: %+v", g2.Stats())
	}
}

// TestCacheHitDoesNotWaitForDraw: while one image is being drawn (the
// fake draw blocks), a cached image is answered.
func TestCacheHitDoesNotWaitForDraw(t *testing.T) {
	f := &fakeDraws{size: 10, block: map[int]chan struct{}{999: make(chan struct{})}, entered: make(chan int, 1)}
	g := fakeRenderer(t, f)
	cached, err := g.Render(req(400))
	if err != nil {
		t.Fatal(err)
	}
	slow := make(chan error, 1)
	go func() { _, err := g.Render(req(999)); slow <- err }()
	<-f.entered // the slow draw holds the only draw slot now
	noHang(t, "a cached image during a draw", func() {
		img, err := g.Render(req(400))
		if err != nil || !bytes.Equal(img, cached) {
			t.Errorf("cached image: %v %q", err, img)
		}
	})
	// Another image that needs drawing waits its turn; its request can
	// give up.
	ctx, cancel := context.WithCancel(context.Background())
	waiting := make(chan error, 1)
	go func() { _, err := g.RenderContext(ctx, req(500)); waiting <- err }()
	cancel()
	if err := <-waiting; !errors.Is(err, ErrBusy) || !errors.Is(err, context.Canceled) {
		t.Errorf("abandoned request: %v", err)
	}
	close(f.block[999])
	if err := <-slow; err != nil {
		t.Fatal(err)
	}
	if st := g.Stats(); st.Hits != 1 || st.Draws != 2 {
		t.Errorf("stats %+v", st)
	}
}

// TestConcurrentRequestsShareOneDraw: requests for the same image while
// it is drawn wait for that draw; whenever they arrive, it is drawn once.
func TestConcurrentRequestsShareOneDraw(t *testing.T) {
	release := make(chan struct{})
	f := &fakeDraws{size: 10, block: map[int]chan struct{}{700: release}, entered: make(chan int, 1)}
	g := fakeRenderer(t, f)
	const n = 20
	var wg sync.WaitGroup
	imgs := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			img, err := g.Render(req(700))
			if err != nil {
				t.Error(err)
			}
			imgs[i] = img
		})
	}
	<-f.entered
	close(release)
	wg.Wait()
	if f.calls.Load() != 1 {
		t.Errorf("%d draws of one image", f.calls.Load())
	}
	for i := range imgs {
		if !bytes.Equal(imgs[i], imgs[0]) {
			t.Errorf("request %d got %q", i, imgs[i])
		}
	}
	if st := g.Stats(); st.Draws != 1 || st.Hits+st.Shared != n-1 {
		t.Errorf("stats %+v", st)
	}
	// A failed draw is shared too, and not cached.
	f2 := &fakeDraws{size: 10}
	g2 := fakeRenderer(t, f2)
	r := req(300)
	r.Graph = GraphTraffic
	for range 2 {
		if _, err := g2.Render(r); err == nil {
			t.Error("a failed draw was answered")
		}
	}
	if f2.calls.Load() != 2 || g2.Stats().DrawErrors != 2 {
		t.Errorf("failed draws: %d calls, %+v", f2.calls.Load(), g2.Stats())
	}
}

// TestAbandonedLeaderHandsOver: the request that started waiting for a
// draw slot gives up; another request for the same image draws it.
func TestAbandonedLeaderHandsOver(t *testing.T) {
	hold := make(chan struct{})
	f := &fakeDraws{size: 10, block: map[int]chan struct{}{999: hold}, entered: make(chan int, 1)}
	g := fakeRenderer(t, f)
	go g.Render(req(999)) // holds the draw slot
	<-f.entered
	ctx, cancel := context.WithCancel(context.Background())
	leader := make(chan error, 1)
	go func() { _, err := g.RenderContext(ctx, req(600)); leader <- err }()
	// Wait until the leader's flight is registered, then join it.
	for {
		g.mu.Lock()
		_, ok := g.flights[cacheKey{kind: ServiceFile, service: web.ID(), name: GraphConns, rng: "hour", w: 600, h: DefaultHeight, format: "png"}]
		g.mu.Unlock()
		if ok {
			break
		}
		time.Sleep(time.Millisecond)
	}
	follower := make(chan error, 1)
	go func() { _, err := g.Render(req(600)); follower <- err }()
	cancel()
	if err := <-leader; !errors.Is(err, ErrBusy) {
		t.Errorf("leader: %v", err)
	}
	close(hold)
	if err := <-follower; err != nil {
		t.Errorf("follower after its leader gave up: %v", err)
	}
}

// TestCacheWithRealDraws: the byte bound with librrd's images.
func TestCacheWithRealDraws(t *testing.T) {
	s, ev, _ := filled(t)
	g := NewRenderer(s, ev)
	g.SetCacheBytes(1 << 20)
	for w := 400; w < 440; w++ {
		if _, err := g.Render(Request{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphWeight, Range: "hour", Width: w}); err != nil {
			t.Fatal(err)
		}
	}
	if st := g.Stats(); st.Bytes > 1<<20 || st.Draws != 40 {
		t.Errorf("stats %+v", st)
	}
}

// TestStaleWhileDrawsAreBusy: once the store moved on a step, an image of
// the step before is still answered while the draw slot is busy, for
// MaxStale; with the slot free it is drawn anew.
func TestStaleWhileDrawsAreBusy(t *testing.T) {
	hold := make(chan struct{})
	f := &fakeDraws{size: 10, block: map[int]chan struct{}{999: hold}, entered: make(chan int, 1)}
	g := fakeRenderer(t, f)
	t0 := time.Now()
	g.now = func() time.Time { return t0 }
	old, err := g.Render(req(400))
	if err != nil {
		t.Fatal(err)
	}
	g.store.updated.Add(10) // the next step
	go g.Render(req(999))   // holds the draw slot
	<-f.entered
	noHang(t, "a stale image while the draw slot is busy", func() {
		img, ok := g.Cached(req(400))
		if !ok || !bytes.Equal(img, old) {
			t.Errorf("Cached: %v %q", ok, img)
		}
		if img, err := g.Render(req(400)); err != nil || !bytes.Equal(img, old) {
			t.Errorf("Render: %v %q", err, img)
		}
	})
	// Older than MaxStale: it waits for its turn (here: gives up).
	g.mu.Lock()
	g.now = func() time.Time { return t0.Add(MaxStale + time.Second) }
	g.mu.Unlock()
	if _, ok := g.Cached(req(400)); ok {
		t.Error("an image older than MaxStale was answered")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := g.RenderContext(ctx, req(400)); !errors.Is(err, ErrBusy) {
		t.Errorf("too stale, slot busy: %v", err)
	}
	close(hold)
	// The slot is free: a stale image is drawn anew.
	waitSlotFree(t, g)
	calls := f.calls.Load()
	if _, err := g.Render(req(400)); err != nil || f.calls.Load() != calls+1 {
		t.Errorf("stale image with a free slot: %v, %d draws", err, f.calls.Load()-calls)
	}
	if st := g.Stats(); st.Stale != 2 {
		t.Errorf("stats %+v", st)
	}
}

func waitSlotFree(t *testing.T, g *Renderer) {
	t.Helper()
	for len(g.slots) > 0 {
		time.Sleep(time.Millisecond)
	}
}
