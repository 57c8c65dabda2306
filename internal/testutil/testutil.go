// Package testutil holds the few helpers that tests of several packages
// share. It is imported by _test.go files only.
package testutil

import (
	"bytes"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that goroutines may write concurrently,
// for a logger shared by a daemon's goroutines and the test reading it.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Eventually polls cond every 10 ms until it holds; after timeout the
// test fails with what failure says then. The bound is for correctness
// (the thing must happen), never a speed assertion.
func Eventually(t testing.TB, timeout time.Duration, cond func() bool, failure func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(failure())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// WaitFor is Eventually with a 20 s bound and a fixed failure: "never:
// what".
func WaitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Eventually(t, 20*time.Second, cond, func() string { return "never: " + what })
}
