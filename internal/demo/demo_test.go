package demo

import (
	"testing"
	"time"
)

func TestDemoTimeline(t *testing.T) {
	tests := []struct {
		at   time.Duration
		down []string
	}{
		{0, nil},
		{2*time.Minute + time.Second, []string{"web2"}},
		{5*time.Minute + 30*time.Second, []string{"api1"}},
		{7 * time.Minute, []string{"web1", "web2", "web3"}},
		{8 * time.Minute, nil},
		{Cycle + 3*time.Minute, []string{"web2"}},
	}
	for _, tc := range tests {
		got := downAt(tc.at)
		if len(got) != len(tc.down) {
			t.Errorf("at %v: down %v, want %v", tc.at, got, tc.down)
			continue
		}
		for _, s := range tc.down {
			if _, ok := got[s]; !ok {
				t.Errorf("at %v: %s not down", tc.at, s)
			}
		}
	}
}
