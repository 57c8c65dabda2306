package app

import (
	"log/slog"
	"syscall"
	"testing"

	"github.com/lvsmon/lvsmon/internal/testutil"
)

func TestWebConnCap(t *testing.T) {
	for _, tc := range []struct {
		configured int
		soft       uint64
		want       int
	}{
		{256, 1 << 20, 256},       // systemd's default hard limit: the configured cap
		{100000, 1 << 20, 100000}, // room for (1M - 256k) / 2
		{1000000, 1 << 20, 393216},
		{256, 65536, 256},
		{50000, 65536, 24576}, // reserve 16384, half of the rest
		{256, 4096, 256},      // reserve 1024, (4096-1024)/2 = 1536
		{4096, 4096, 1536},
		{256, 2048, 256},
		{1000, 2048, 512},
		{256, 1024, 16}, // nothing beyond the reserve: the floor
		{256, 256, 16},
		{16, 0, 16},
	} {
		if got := webConnCap(tc.configured, tc.soft); got != tc.want {
			t.Errorf("webConnCap(%d, %d) = %d, want %d", tc.configured, tc.soft, got, tc.want)
		}
	}
}

func TestRaiseNofile(t *testing.T) {
	var logBuf testutil.SyncBuffer
	soft := raiseNofile(slog.New(slog.NewTextHandler(&logBuf, nil)))
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if soft != lim.Cur || lim.Cur != lim.Max {
		t.Errorf("soft limit %d (returned %d), hard %d; log: %s", lim.Cur, soft, lim.Max, logBuf.String())
	}
}
