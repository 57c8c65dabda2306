// Package vrrplab builds a two-node keepalived VRRP pair in network
// namespaces, for tests that need a real keepalived: its JSON dump, its
// notify FIFO, its VIP and its adverts.
//
// The nodes "a" and "b" sit on a netlab network (a bridge in its own
// namespace, one namespace per node, 198.51.100.0/24):
//
//	a: 198.51.100.11/24, priority 150 (preferred master)
//	b: 198.51.100.12/24, priority 100
//	VIP 198.51.100.100/24 (label eth0:vip), VRID 51, VRRPv2,
//	advert_int 1, PASS authentication
//
// Each node's keepalived runs with its own configuration, pid files,
// TMPDIR (where the JSON dump goes) and notify FIFO, all under the
// directory given to Up. It runs in the foreground, in its own session and
// process group, so that Stop(node, SIGKILL) can kill the parent and its
// VRRP child together, the way a crash would.
//
// It needs root, ip (iproute2) and keepalived. Up returns an error when
// any is missing; tests should fail on that error rather than skip, so a
// broken test host does not pass silently.
package vrrplab

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
)

// The pair's fixed parameters.
const (
	// VRID is the virtual router id of the pair's one VRRP instance.
	VRID = 51
	// Instance is the vrrp_instance name.
	Instance = "VI_LVS"
	// AuthPass is the PASS authentication password, exported so that
	// tests can check it never shows up in a log or a report.
	AuthPass = "lab-pw51"
	// AdvertInterval is advert_int.
	AdvertInterval = time.Second
	// PrefixLen is the length of the nodes' and the VIP's prefix.
	PrefixLen = netlab.PrefixLen
)

// VIP is the pair's virtual address.
var VIP = netip.MustParseAddr("198.51.100.100")

// Nodes are the node names, in order.
var Nodes = netlab.Nodes

// priorities are the nodes' VRRP priorities.
var priorities = map[string]int{"a": 150, "b": 100}

// Lab is one pair. Its methods are safe for concurrent use.
type Lab struct {
	netlab.Pair // NetNS, NetNSName, SwitchNetNS, Addr, VIP, VIPOn, WaitVIP

	dir string
	net *netlab.Net

	mu    sync.Mutex
	nodes map[string]*node
	down  bool
}

type node struct {
	name string
	dir  string
	// trackFile is a keepalived track_file the instance follows ("" none).
	trackFile string
	// script is a vrrp_script the instance tracks ("" none), run every
	// second; a failure adds scriptWeight to the priority.
	script       string
	scriptWeight int

	cmd  *exec.Cmd     // running keepalived, nil when stopped
	done chan struct{} // closed when cmd has been reaped
}

// Up builds the namespaces and writes both configurations into dir (which
// must exist and should be empty, such as t.TempDir()). It starts no
// keepalived. Call Down when done, even after an error from Start.
func Up(ctx context.Context, dir string) (*Lab, error) {
	if _, err := exec.LookPath("keepalived"); err != nil {
		return nil, fmt.Errorf("vrrplab: keepalived is not installed: %w", err)
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("vrrplab: %w", err)
	}
	l := &Lab{dir: dir, nodes: map[string]*node{}}
	for _, n := range Nodes {
		l.nodes[n] = &node{name: n, dir: filepath.Join(dir, n)}
	}
	if l.net, err = netlab.Up(ctx, "vl"); err != nil {
		return nil, fmt.Errorf("vrrplab: %w", err)
	}
	l.Pair = netlab.NewPair(l.net, "vrrplab", VIP)
	for _, name := range Nodes {
		if err := os.MkdirAll(filepath.Join(l.nodes[name].dir, "tmp"), 0o700); err != nil {
			l.Down()
			return nil, fmt.Errorf("vrrplab: %w", err)
		}
		if err := os.WriteFile(l.Conf(name), []byte(l.config(name)), 0o600); err != nil {
			l.Down()
			return nil, fmt.Errorf("vrrplab: %w", err)
		}
	}
	return l, nil
}

// TrackFile makes node's instance follow a keepalived track_file at path
// (weight 1: the file's value is added to the priority) and rewrites its
// configuration; call it before Start.
func (l *Lab) TrackFile(name, path string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.node(name).trackFile = path
	if err := os.WriteFile(l.Conf(name), []byte(l.config(name)), 0o600); err != nil {
		return fmt.Errorf("vrrplab: %w", err)
	}
	return nil
}

// Script makes node's instance track a vrrp_script running command every
// second (fall 1, rise 1), whose failure adds weight to the priority,
// and rewrites its configuration; call it before Start. keepalived runs
// the command as root and refuses it when a directory on its path is
// writable by others.
func (l *Lab) Script(name, command string, weight int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(name)
	n.script, n.scriptWeight = command, weight
	if err := os.WriteFile(l.Conf(name), []byte(l.config(name)), 0o600); err != nil {
		return fmt.Errorf("vrrplab: %w", err)
	}
	return nil
}

// config renders node name's keepalived.conf.
func (l *Lab) config(name string) string {
	state := "BACKUP"
	if name == "a" {
		state = "MASTER"
	}
	track, trackRef := "", ""
	if f := l.nodes[name].trackFile; f != "" {
		track = fmt.Sprintf("\ntrack_file lvsmon_self {\n    file %q\n    weight 1\n    init_file 0\n}\n", f)
		trackRef = "    track_file {\n        lvsmon_self\n    }\n"
	}
	if n := l.nodes[name]; n.script != "" {
		track += fmt.Sprintf("\nvrrp_script lvsmon_script {\n    script %q\n    interval 1\n    fall 1\n    rise 1\n    weight %d\n}\n", n.script, n.scriptWeight)
		trackRef += "    track_script {\n        lvsmon_script\n    }\n"
	}
	return fmt.Sprintf(`instance node_%[1]s

global_defs {
    router_id vrrplab-%[1]s
    enable_script_security
    script_user root
    vrrp_notify_fifo %[2]s
}
%[12]s
vrrp_instance %[3]s {
    state %[4]s
    interface eth0
    virtual_router_id %[5]d
    priority %[6]d
    advert_int %[7]d
    authentication {
        auth_type PASS
        auth_pass %[8]s
    }
    virtual_ipaddress {
        %[9]s/%[10]d dev eth0 label eth0:vip
    }
%[11]s}
`, name, l.FIFO(name), Instance, state, VRID, priorities[name], int(AdvertInterval/time.Second), AuthPass, VIP, PrefixLen, trackRef, track)
}

func (l *Lab) node(name string) *node {
	n, ok := l.nodes[name]
	if !ok {
		panic(fmt.Sprintf("vrrplab: no node %q (have %v)", name, Nodes))
	}
	return n
}

// Dir is node's directory: configuration, pid files, FIFO, log.
func (l *Lab) Dir(node string) string { return l.node(node).dir }

// Conf is node's keepalived.conf.
func (l *Lab) Conf(node string) string { return filepath.Join(l.node(node).dir, "keepalived.conf") }

// PIDFile is keepalived's parent pid file (-p).
func (l *Lab) PIDFile(node string) string { return filepath.Join(l.node(node).dir, "keepalived.pid") }

// VRRPPIDFile is the VRRP child's pid file (-r).
func (l *Lab) VRRPPIDFile(node string) string { return filepath.Join(l.node(node).dir, "vrrp.pid") }

// DumpDir is keepalived's TMPDIR, where signal 36 makes it write
// keepalived.json.
func (l *Lab) DumpDir(node string) string { return filepath.Join(l.node(node).dir, "tmp") }

// FIFO is node's vrrp_notify_fifo.
func (l *Lab) FIFO(node string) string { return filepath.Join(l.node(node).dir, "vrrp.fifo") }

// LogFile is where node's keepalived writes its log (-l -D).
func (l *Lab) LogFile(node string) string { return filepath.Join(l.node(node).dir, "keepalived.log") }

// Priority is node's configured VRRP priority.
func (l *Lab) Priority(node string) int { l.node(node); return priorities[node] }

// VRID is the pair's virtual router id.
func (l *Lab) VRID() int { return VRID }

// Start launches node's keepalived and waits until it has written both pid
// files (parent and VRRP child). Pid files left by a killed keepalived
// are removed first: keepalived refuses to start if the old pid now
// belongs to a live process.
func (l *Lab) Start(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(name)
	if l.down {
		return errors.New("vrrplab: lab is down")
	}
	if n.cmd != nil {
		return fmt.Errorf("vrrplab: keepalived on %s is already running (pid %d)", name, n.cmd.Process.Pid)
	}
	for _, f := range []string{l.PIDFile(name), l.VRRPPIDFile(name), filepath.Join(n.dir, "checkers.pid")} {
		if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("vrrplab: %w", err)
		}
	}
	logf, err := os.OpenFile(l.LogFile(name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("vrrplab: %w", err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== vrrplab: starting keepalived on %s at %s\n", name, time.Now().Format(time.RFC3339Nano))
	// ip netns exec execs keepalived, so the pid is keepalived's parent.
	cmd := exec.Command("ip", "netns", "exec", l.net.NetNSName(name), "keepalived",
		"-n", "-l", "-D", "-G", "-P",
		"-f", l.Conf(name),
		"-p", l.PIDFile(name),
		"-r", l.VRRPPIDFile(name),
		"-c", filepath.Join(n.dir, "checkers.pid"))
	cmd.Env = append(os.Environ(), "TMPDIR="+l.DumpDir(name))
	cmd.Dir = n.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // own session and process group
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("vrrplab: starting keepalived on %s: %w", name, err)
	}
	done := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(done)
	}()
	n.cmd, n.done = cmd, done

	deadline := time.Now().Add(10 * time.Second)
	for {
		select {
		case <-done:
			n.cmd, n.done = nil, nil
			return fmt.Errorf("vrrplab: keepalived on %s exited at start; log %s:\n%s", name, l.LogFile(name), netlab.Tail(l.LogFile(name), 20))
		default:
		}
		if netlab.PIDOf(l.PIDFile(name)) > 0 && netlab.PIDOf(l.VRRPPIDFile(name)) > 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("vrrplab: keepalived on %s wrote no pid files within 10s; log:\n%s", name, netlab.Tail(l.LogFile(name), 20))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// Running reports whether node's keepalived (started by Start) is running.
func (l *Lab) Running(name string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node(name).cmd != nil
}

// PID is the pid of node's keepalived parent, 0 when not running.
func (l *Lab) PID(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if c := l.node(name).cmd; c != nil {
		return c.Process.Pid
	}
	return 0
}

// Stop sends sig to node's keepalived and waits until it is gone.
//
// SIGTERM goes to the parent, which stops cleanly: the VRRP child sends a
// priority-0 advert, removes the VIP and writes STOP to the FIFO. SIGKILL
// goes to the whole process group, so parent and VRRP child die together
// like in a crash. No advert, no FIFO line, and the VIP stays on eth0
// (the stale VIP a crashed master leaves behind). Any other signal goes to
// the parent, and Stop then waits for the exit it is expected to cause.
func (l *Lab) Stop(name string, sig syscall.Signal) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(name)
	if n.cmd == nil {
		return fmt.Errorf("vrrplab: keepalived on %s is not running", name)
	}
	return l.stop(n, sig, 10*time.Second)
}

// stop does Stop with l.mu held. After timeout it falls back to SIGKILL
// of the group.
func (l *Lab) stop(n *node, sig syscall.Signal, timeout time.Duration) error {
	pid := n.cmd.Process.Pid
	child := netlab.PIDOf(l.VRRPPIDFile(n.name))
	target := pid
	if sig == syscall.SIGKILL {
		target = -pid // the process group: parent and children
	}
	if err := syscall.Kill(target, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("vrrplab: kill %d %v: %w", target, sig, err)
	}
	var err error
	select {
	case <-n.done:
	case <-time.After(timeout):
		err = fmt.Errorf("vrrplab: keepalived on %s (pid %d) did not exit within %v of %v; killed", n.name, pid, timeout, sig)
		_ = syscall.Kill(-pid, syscall.SIGKILL)
		<-n.done
	}
	n.cmd, n.done = nil, nil
	// The VRRP child is reparented (to init) if it outlived the parent;
	// wait until it is gone or a zombie.
	if child > 0 {
		deadline := time.Now().Add(timeout)
		for netlab.Alive(child) {
			if time.Now().After(deadline) {
				_ = syscall.Kill(child, syscall.SIGKILL)
				if err == nil {
					err = fmt.Errorf("vrrplab: VRRP child %d of %s outlived its parent; killed", child, n.name)
				}
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return err
}

// Reload sends SIGHUP to node's keepalived parent, which re-reads its
// configuration and restarts its VRRP child's state machine in place. It
// returns at once: keepalived gives no sign that the reload is over.
func (l *Lab) Reload(name string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(name)
	if n.cmd == nil {
		return fmt.Errorf("vrrplab: keepalived on %s is not running", name)
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return fmt.Errorf("vrrplab: reload of %s: %w", name, err)
	}
	return nil
}

// Down kills every keepalived of the lab and deletes its namespaces. It
// can be called more than once; only the first call does anything. The
// directory is left to its owner.
func (l *Lab) Down() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return nil
	}
	l.down = true
	var errs []error
	for _, name := range Nodes {
		n := l.nodes[name]
		if n.cmd != nil {
			if err := l.stop(n, syscall.SIGKILL, 5*time.Second); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if l.net != nil {
		errs = append(errs, l.net.Down())
	}
	return errors.Join(errs...)
}
