//go:build lab

// Lab tier (README, Tests): network, mount, UTS and PID namespaces; needs
// root.

package netlab

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// holderScript sets the host name and a private tmpfs, says it is ready,
// and then reaps orphans until it is killed.
const holderScript = `set -e
hostname "$1"
mount -t tmpfs netlab-test "$2/mnt"
touch "$2/ready"
set +e
while :; do sleep 3600 & wait; done
`

// TestHolder starts a holder on node a and checks what runs through it,
// its wrapper, and that killing it leaves nothing: no process, no mount,
// and a wrapper that refuses even before Refuse rewrites it. It fails, and
// does not skip, when the host cannot run it.
func TestHolder(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := Up(ctx, "nt")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Down(); err != nil {
			t.Error(err)
		}
	})
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "mnt"), 0o755); err != nil {
		t.Fatal(err)
	}
	logf, err := os.Create(filepath.Join(dir, "holder.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	h, err := n.StartHolder(ctx, HolderConfig{
		Node:  "a",
		Argv:  []string{"sh", "-c", holderScript, "holder", "netlab-a", dir},
		Ready: filepath.Join(dir, "ready"),
		Dir:   dir,
		Log:   logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = h.Close() })
	if h.InitPID() <= 0 || !h.Alive() {
		t.Fatalf("InitPID %d, Alive %v after StartHolder", h.InitPID(), h.Alive())
	}

	// In the node: its host name, its address, and pid 1 is the init.
	out, err := h.Command(ctx, "sh", "-c", "hostname; cat /proc/1/cmdline | tr '\\0' ' '; ip -br addr show eth0").CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, want := range []string{"netlab-a\n", "sh -c ", n.Addr("a").String() + "/"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("inside the holder: no %q in\n%s", want, out)
		}
	}
	if b, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(b), "netlab-test") {
		t.Error("the holder's tmpfs shows in the caller's mounts")
	}
	if ps := h.Procs(); len(ps) < 2 || !slices.ContainsFunc(ps, func(p Proc) bool { return p.PID == h.InitPID() }) { // the init and its sleep
		t.Errorf("Procs: %+v, init %d", ps, h.InitPID())
	}

	w := Wrapper{Path: filepath.Join(dir, "uname"), Tool: "uname", Comment: "uname in a", Refusal: "netlab test: no holder", Status: 3}
	if err := w.Enter(h); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(w.Path, "-n").CombinedOutput(); err != nil || string(out) != "netlab-a\n" {
		t.Errorf("wrapper: %q, %v", out, err)
	}

	// Killed without Refuse first: the wrapper must not enter whatever
	// now has the pid.
	init := h.InitPID()
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if h.Alive() || Alive(init) || len(h.Procs()) != 0 {
		t.Errorf("after Close: Alive %v, init alive %v, procs %+v", h.Alive(), Alive(init), h.Procs())
	}
	out, err = exec.Command(w.Path, "-n").CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || !strings.Contains(string(out), "no holder") {
		t.Errorf("wrapper after Close: %q, %v; want exit 3 and the refusal", out, err)
	}
	if err := w.Refuse(); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(w.Path).CombinedOutput()
	if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 3 || string(out) != "netlab test: no holder\n" {
		t.Errorf("refusing wrapper: %q, %v", out, err)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
