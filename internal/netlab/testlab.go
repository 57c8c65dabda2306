package netlab

import (
	"context"
	"testing"
	"time"
)

// UpForTest brings a lab up for t, the way every lab's own test does: up
// gets a context that ends after timeout (or when t ends) and a fresh
// t.TempDir(), and an error from it fails the test (a host that cannot
// run the lab must not pass by skipping). When t ends, logs (if not nil)
// shows what it wants of the lab if t failed, and then the lab goes Down.
// It returns the context, for the rest of the test.
func UpForTest[L interface{ Down() error }](t testing.TB, timeout time.Duration, up func(context.Context, string) (L, error), logs func(L)) (context.Context, L) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	t.Cleanup(cancel)
	lab, err := up(ctx, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() && logs != nil {
			logs(lab)
		}
		if err := lab.Down(); err != nil {
			t.Error(err)
		}
	})
	return ctx, lab
}
