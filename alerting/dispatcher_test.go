package alerting

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestBackoffDelay(t *testing.T) {
	b := DefaultBackoff
	for _, c := range []struct {
		attempts int
		r        float64
		want     time.Duration
	}{
		{1, 0.5, 10 * time.Second},
		{2, 0.5, 20 * time.Second},
		{3, 0.5, 40 * time.Second},
		{9, 0.5, 2560 * time.Second},
		{10, 0.5, time.Hour},
		{1000, 0.5, time.Hour},
		{1, 0, 8 * time.Second},
		{1, 0.999999, 12 * time.Second},
		{1000, 0.9999, time.Hour}, // jitter never goes above the cap
		{1000, 0, 48 * time.Minute},
	} {
		got := b.Delay(c.attempts, c.r).Round(time.Second)
		if got != c.want {
			t.Errorf("Delay(%d, %v) = %v, want %v", c.attempts, c.r, got, c.want)
		}
	}
}

// scriptTransport answers from a list of errors, then nil.
type scriptTransport struct {
	mu   sync.Mutex
	errs []error
	sent []Mail
	all  []Mail
}

func (s *scriptTransport) Send(_ context.Context, m Mail) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.all = append(s.all, m)
	if len(s.errs) > 0 {
		err := s.errs[0]
		s.errs = s.errs[1:]
		if err != nil {
			return err
		}
	}
	s.sent = append(s.sent, m)
	return nil
}

func (s *scriptTransport) counts() (int, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.all), len(s.sent)
}

func runDispatcher(t *testing.T, d *Dispatcher) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { d.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("Run did not return after cancel")
		}
	})
}

func TestDispatcherBackoffFakeClock(t *testing.T) {
	o, err := OpenOutbox(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	temp := &SendError{Stage: "mail", Code: 451, Text: "later"}
	tr := &scriptTransport{errs: []error{temp, temp, temp}}
	clk := newFakeClock()
	d := NewDispatcher(o, tr, DispatcherConfig{Clock: clk, Rand: func() float64 { return 0.5 }})
	m := testMail(clk.Now())
	if err := o.Put(m); err != nil {
		t.Fatal(err)
	}
	runDispatcher(t, d)
	for i, want := range []time.Duration{10 * time.Second, 20 * time.Second, 40 * time.Second} {
		if got := clk.nextWait(t); got != want {
			t.Fatalf("wait %d = %v, want %v", i, got, want)
		}
		p := o.Pending()
		if len(p) != 1 || p[0].Attempts != i+1 || !p[0].NextAttempt.Equal(clk.Now().Add(want)) {
			t.Fatalf("after failure %d: %+v", i+1, p)
		}
		if all, _ := tr.counts(); all != i+1 {
			t.Fatalf("%d attempts, want %d", all, i+1)
		}
		// Not yet: the backoff's timer has not fired, so the dispatcher
		// still sleeps (only the timer or a Kick wakes it).
		clk.Advance(want - time.Second)
		if n := clk.waiting(); n != 1 {
			t.Fatalf("%d sleepers on the clock a second before the backoff ran out, want the dispatcher's", n)
		}
		if all, _ := tr.counts(); all != i+1 {
			t.Fatalf("attempt before the backoff ran out")
		}
		clk.Advance(time.Second)
	}
	// Done runs before the stats count the mail: wait for both.
	waitFor(t, "the mail to be sent", func() bool { return o.Len() == 0 && d.Stats().Sent == 1 })
	if _, sent := tr.counts(); sent != 1 || tr.sent[0].MessageID != m.MessageID {
		t.Fatalf("sent %+v", tr.sent)
	}
	s := d.Stats()
	if s.Sent != 1 || s.Failed != 3 || s.Queued != 0 || s.LastError == "" {
		t.Errorf("stats = %+v", s)
	}
}

func TestDispatcherOrderAndPermanent(t *testing.T) {
	o, err := OpenOutbox(t.TempDir(), 10, nil)
	if err != nil {
		t.Fatal(err)
	}
	perm := &SendError{Stage: "rcpt", Code: 550, Permanent: true, Text: "no such user"}
	tr := &scriptTransport{errs: []error{perm}}
	clk := newFakeClock()
	d := NewDispatcher(o, tr, DispatcherConfig{Clock: clk})
	var ids []string
	for i := 0; i < 3; i++ {
		m := testMail(clk.Now())
		if err := o.Put(m); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, m.MessageID)
	}
	runDispatcher(t, d)
	// The transport counts a mail before the dispatcher's stats do: wait
	// for both.
	waitFor(t, "two mails sent", func() bool { _, s := tr.counts(); return s == 2 && d.Stats().Sent == 2 })
	p := o.Pending()
	if len(p) != 1 || !p[0].Permanent || p[0].Mail.MessageID != ids[0] || p[0].Attempts != 1 {
		t.Fatalf("pending = %+v", p)
	}
	tr.mu.Lock()
	if tr.all[0].MessageID != ids[0] || tr.sent[0].MessageID != ids[1] || tr.sent[1].MessageID != ids[2] {
		t.Errorf("order: %v", tr.all)
	}
	tr.mu.Unlock()
	s := d.Stats()
	if s.Queued != 1 || s.Permanent != 1 || s.Sent != 2 || s.Failed != 1 {
		t.Errorf("stats = %+v", s)
	}
	// Not retried: a Kick makes a pass that skips it. A mail put after
	// it is sent by that pass or a later one: once it is, the permanent
	// failure has been passed over.
	d.Kick()
	marker := testMail(clk.Now())
	if err := o.Put(marker); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	waitFor(t, "a mail put after the permanent failure", func() bool { _, s := tr.counts(); return s == 3 })
	tr.mu.Lock()
	if len(tr.all) != 4 || tr.all[3].MessageID != marker.MessageID {
		t.Errorf("a permanent failure was retried: %d attempts, want 4 (the last the new mail)", len(tr.all))
	}
	tr.mu.Unlock()
	if err := o.Requeue(p[0].ID); err != nil {
		t.Fatal(err)
	}
	d.Kick()
	waitFor(t, "the requeued mail", func() bool { return o.Len() == 0 })
}
