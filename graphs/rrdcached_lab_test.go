//go:build lab

// Lab tier (README, Tests): Debian's rrdcached daemon.

package graphs

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/ziutek/rrd"
)

// startRrdcached runs Debian's rrdcached on a unix socket, holding updates
// in memory for an hour, so only an explicit flush reaches the files.
func startRrdcached(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	sock := filepath.Join(dir, "rrdcached.sock")
	cmd := exec.Command("rrdcached", "-g", "-l", "unix:"+sock, "-w", "3600", "-z", "1", "-p", filepath.Join(dir, "pid"), "-j", filepath.Join(dir, "journal"))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := os.MkdirAll(filepath.Join(dir, "journal"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("rrdcached (Debian package rrdcached, installed by scripts/deps.sh): %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for range 100 {
		if _, err := os.Stat(sock); err == nil {
			return "unix:" + sock
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("rrdcached did not open its socket")
	return ""
}

func TestThroughRrdcached(t *testing.T) {
	addr := startRrdcached(t)
	s, err := NewStore(StoreOptions{Dir: filepath.Join(t.TempDir(), "rrd"), Step: 10 * time.Second, Rrdcached: addr, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := int64(1_800_000_000)
	for i := range 4 {
		s.Update(snap(t0+int64(i)*10, uint64(100+10*i)))
	}
	if h := s.Health(); h.Errors != 0 || h.Updates != 24 {
		t.Fatalf("health = %+v", h)
	}
	f := serverFile(s.Dir(), web, rs1)
	info, err := rrd.Info(f)
	if err != nil {
		t.Fatal(err)
	}
	if last := int64(info["last_update"].(uint)); last >= t0+30 {
		t.Fatalf("the file already has every row (last_update %d): updates did not go through the daemon", last)
	}
	// Drawing flushes what the daemon holds for the files drawn.
	if _, err := NewRenderer(s, nil).Render(Request{Kind: ServerFile, Service: web.ID(), Server: rs1.ID(), Graph: GraphRate, Start: time.Unix(t0, 0), End: time.Unix(t0+60, 0)}); err != nil {
		t.Fatal(err)
	}
	info, _ = rrd.Info(f)
	if last := int64(info["last_update"].(uint)); last != t0+30 {
		t.Fatalf("after the graph's flush last_update = %d, want %d", last, t0+30)
	}
	if v := fetch(t, f, "conns", t0+10, t0+20, 10*time.Second)[0]; v != 1 {
		t.Errorf("conns/s through rrdcached = %v, want 1", v)
	}
}
