package graphs

import (
	"path/filepath"
	"testing"
	"time"
)

func TestRrdcachedUnreachable(t *testing.T) {
	_, err := NewStore(StoreOptions{Dir: t.TempDir(), Step: 10 * time.Second, Rrdcached: "unix:" + filepath.Join(t.TempDir(), "none.sock"), Log: quiet})
	if err == nil {
		t.Fatal("a store with an unreachable rrdcached started")
	}
}
