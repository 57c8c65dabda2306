// Package hblab builds a two-node heartbeat 3 pair (haresources mode) in
// network namespaces, for tests that need a real heartbeat behind
// cl_status: its resource states, its failover and failback, and the VIP
// its IPaddr2 resource moves.
//
// The nodes "a" and "b" sit on a netlab network (a bridge in its own
// namespace, one namespace per node, 198.51.100.0/24):
//
//	a: 198.51.100.11/24, heartbeat node hb-a (owns the resource group)
//	b: 198.51.100.12/24, heartbeat node hb-b (no group of its own)
//	group: hb-a IPaddr2::198.51.100.110/24/eth0, auto_failback on
//	ucast to the peer on eth0, keepalive 1s, warntime 2s, deadtime 3s,
//	initdead 3s, crm no
//
// heartbeat has no options for its paths: it reads /etc/ha.d, keeps state
// in /var/lib/heartbeat and /run/heartbeat, writes /run/heartbeat.pid, and
// takes its node name from uname -n. Two of them cannot share one host
// view. So each node gets a holder process (netlab.Holder), started with
// ip netns exec and unshare, that owns a private mount, UTS and PID
// namespace: it sets the host name, bind-mounts the node's own copies of /etc/ha.d and
// /var/lib/heartbeat, mounts a tmpfs on /run, and then waits as the PID
// namespace's init. heartbeat and cl_status run inside it through nsenter.
//
// The PID namespace is what makes the lab clean up reliably. heartbeat
// daemonizes, and its resource scripts leave background children
// (send_arp): all of them end up as children of the holder, which reaps
// them, so a crash (Stop with Crash) can find and kill every heartbeat
// process of one node without touching the other or the holder, and Down
// kills the holder, which makes the kernel kill everything left in its
// namespace. Mounts live only in the holder's mount namespace and vanish
// with it.
//
// It needs root, ip (iproute2), util-linux (unshare, nsenter, mount),
// bash, heartbeat and resource-agents (IPaddr2). Up returns an error when
// any is missing; tests should fail on that error rather than skip, so a
// broken test host does not pass silently.
package hblab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/internal/netlab"
)

// The pair's fixed parameters.
const (
	// Keepalive is the interval between heartbeat packets.
	Keepalive = time.Second
	// WarnTime is when heartbeat warns about a late peer.
	WarnTime = 2 * time.Second
	// DeadTime is when heartbeat declares a silent peer dead and takes
	// over its resources.
	DeadTime = 3 * time.Second
	// InitDead is the dead time right after start. heartbeat 3.0.6
	// refuses to start ("Configuration error") with initdead below
	// deadtime, and only warns when it is below 10s.
	InitDead = DeadTime
	// UDPPort is the heartbeat port.
	UDPPort = 694
	// AuthKey is the sha1 key in authkeys, exported so that tests can
	// check it never shows up in a log or a report.
	AuthKey = "hblab-key-6a1f"
	// PrefixLen is the length of the nodes' and the VIP's prefix.
	PrefixLen = netlab.PrefixLen
)

// Stop modes.
const (
	// Graceful runs `heartbeat -k`: the node gives up its resources
	// (the VIP leaves) and tells the peer, which takes them over at once.
	Graceful StopMode = iota
	// Crash SIGKILLs every heartbeat process of the node: nothing is
	// released, the VIP stays behind, and the peer takes over only after
	// DeadTime.
	Crash
)

// StopMode is how Stop ends a node's heartbeat.
type StopMode int

func (m StopMode) String() string {
	switch m {
	case Graceful:
		return "graceful"
	case Crash:
		return "crash"
	}
	return "StopMode(" + strconv.Itoa(int(m)) + ")"
}

// VIP is the address of the pair's one resource group.
var VIP = netip.MustParseAddr("198.51.100.110")

// Nodes are the node names, in order.
var Nodes = netlab.Nodes

// HeartbeatBins are where Debian installs the heartbeat daemon (it is not
// on PATH): /usr/libexec since bookworm, /usr/lib before.
var HeartbeatBins = []string{"/usr/libexec/heartbeat/heartbeat", "/usr/lib/heartbeat/heartbeat"}

// Timeouts for the steps of Start, Stop and Down. They are guards against
// a hung daemon, not expectations.
const (
	startTimeout = 20 * time.Second // heartbeat forks off and writes its pid file
	stopTimeout  = 30 * time.Second // heartbeat -k releases the group and exits
	killTimeout  = 10 * time.Second // SIGKILLed processes are gone
)

// The environment of everything the lab runs inside a node: heartbeat's
// resource scripts call ip and friends by name, and a test's PATH may
// lack the sbin directories.
var nodeEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C", "LANG=C",
}

// holderScript runs as the holder (bash, $1 = node directory, $2 = node
// name). It is the init of the node's PID namespace; bash reaps the
// orphans it inherits while it blocks in the read builtin, which a
// `sleep infinity` would not do.
const holderScript = `set -eu
dir=$1
hostname "$2"
mount --bind "$dir/ha.d" /etc/ha.d
mount --bind "$dir/varlib" /var/lib/heartbeat
mount -t tmpfs -o mode=0755,size=16m hblab-run /run
mkdir -p /run/heartbeat/ccm /run/heartbeat/crm /run/heartbeat/dopd /run/crm /run/lock /run/resource-agents
chown -R hacluster:haclient /run/heartbeat /run/crm
chmod 0750 /run/heartbeat /run/crm
mkfifo -m 0600 /run/hblab-holder
exec 3<>/run/hblab-holder
: > "$dir/holder.ready"
while :; do read -r -u 3 _ || :; done
`

// Lab is one pair. Its methods are safe for concurrent use; Start and
// Stop of one node wait for each other, and do not block the other node
// or the lab's queries.
type Lab struct {
	netlab.Pair // NetNS, NetNSName, SwitchNetNS, Addr, VIP, VIPOn, WaitVIP

	dir       string
	net       *netlab.Net
	heartbeat string // the daemon binary
	clStatus  string

	mu    sync.Mutex
	nodes map[string]*node
	down  bool
}

type node struct {
	name string // "a"
	dir  string
	op   sync.Mutex // held through a Start or Stop of this node

	// The rest is guarded by Lab.mu.

	holder *netlab.Holder // nil before Up starts it and after Down
	// running is set by Start and cleared by Stop: whether the lab
	// started heartbeat and has not stopped it.
	running bool
}

// Up builds the namespaces, writes both nodes' configuration into dir
// (which must exist and should be empty, such as t.TempDir()) and starts
// both holders. It starts no heartbeat. Call Down when done, even after
// an error from Start.
func Up(ctx context.Context, dir string) (*Lab, error) {
	l := &Lab{nodes: map[string]*node{}}
	if err := l.findTools(); err != nil {
		return nil, err
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("hblab: %w", err)
	}
	l.dir = dir
	for _, n := range Nodes {
		l.nodes[n] = &node{name: n, dir: filepath.Join(dir, n)}
	}
	if l.net, err = netlab.Up(ctx, "hb"); err != nil {
		return nil, fmt.Errorf("hblab: %w", err)
	}
	l.Pair = netlab.NewPair(l.net, "hblab", VIP)
	for _, name := range Nodes {
		if err := l.writeNode(name); err != nil {
			_ = l.Down()
			return nil, err
		}
	}
	for _, name := range Nodes {
		if err := l.startHolder(ctx, l.nodes[name]); err != nil {
			_ = l.Down()
			return nil, err
		}
	}
	return l, nil
}

// findTools checks for every program and account the lab needs, so that
// a host without them fails at Up with a clear message.
func (l *Lab) findTools() error {
	if os.Geteuid() != 0 {
		return errors.New("hblab: needs root (namespaces, mounts, heartbeat)")
	}
	for _, p := range HeartbeatBins {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			l.heartbeat = p
			break
		}
	}
	if l.heartbeat == "" {
		return fmt.Errorf("hblab: heartbeat is not installed (none of %v)", HeartbeatBins)
	}
	var err error
	if l.clStatus, err = exec.LookPath("cl_status"); err != nil {
		return fmt.Errorf("hblab: cl_status (heartbeat) is not installed: %w", err)
	}
	if _, err = exec.LookPath("nsenter"); err != nil {
		return fmt.Errorf("hblab: nsenter (util-linux) is not installed: %w", err)
	}
	for _, tool := range []string{"ip", "unshare", "mount", "bash", "hostname", "mkfifo", "cp"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("hblab: %s is not installed: %w", tool, err)
		}
	}
	// The haresources wrapper and the OCF agent it calls (resource-agents).
	for _, f := range []string{"/etc/ha.d/resource.d/IPaddr2", "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"} {
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("hblab: IPaddr2 is not installed (heartbeat, resource-agents): %w", err)
		}
	}
	if _, err := user.Lookup("hacluster"); err != nil {
		return fmt.Errorf("hblab: user hacluster (made by the heartbeat package) is missing: %w", err)
	}
	return nil
}

// writeNode fills node name's directory: a copy of /etc/ha.d with the
// lab's ha.cf, authkeys and haresources, an empty /var/lib/heartbeat, and
// the cl_status wrapper.
func (l *Lab) writeNode(name string) error {
	n := l.nodes[name]
	haDir := l.ConfDir(name)
	if err := os.MkdirAll(haDir, 0o755); err != nil {
		return fmt.Errorf("hblab: %w", err)
	}
	// heartbeat runs harc, rc.d/* and resource.d/* from /etc/ha.d, so
	// the node's copy keeps the package's scripts.
	if out, err := exec.Command("cp", "-a", "/etc/ha.d/.", haDir+"/").CombinedOutput(); err != nil {
		return fmt.Errorf("hblab: copying /etc/ha.d: %w: %s", err, bytes.TrimSpace(out))
	}
	files := []struct {
		name string
		body string
		mode os.FileMode
	}{
		{"ha.cf", l.haCF(name), 0o644},
		// heartbeat will not start when others can read authkeys.
		{"authkeys", "auth 1\n1 sha1 " + AuthKey + "\n", 0o600},
		{"haresources", fmt.Sprintf("%s IPaddr2::%s/%d/eth0\n", NodeName("a"), VIP, PrefixLen), 0o644},
	}
	for _, f := range files {
		p := filepath.Join(haDir, f.name)
		if err := os.WriteFile(p, []byte(f.body), f.mode); err != nil {
			return fmt.Errorf("hblab: %w", err)
		}
		if err := os.Chmod(p, f.mode); err != nil { // in case /etc/ha.d had one
			return fmt.Errorf("hblab: %w", err)
		}
	}
	// heartbeat writes its uuid, generation and FIFO here; its processes
	// chdir to cores/<user> so that a core dump lands somewhere.
	for _, d := range []string{"cores/root", "cores/hacluster", "cores/nobody"} {
		if err := os.MkdirAll(filepath.Join(n.dir, "varlib", d), 0o700); err != nil {
			return fmt.Errorf("hblab: %w", err)
		}
	}
	for _, u := range []string{"hacluster", "nobody"} {
		if uid, gid, ok := lookupIDs(u); ok {
			_ = os.Chown(filepath.Join(n.dir, "varlib", "cores", u), uid, gid)
		}
	}
	if err := os.Chmod(filepath.Join(n.dir, "varlib"), 0o755); err != nil {
		return fmt.Errorf("hblab: %w", err)
	}
	// The holder's pid is not known yet; the wrapper is written by
	// startHolder. Until then it refuses.
	if err := l.wrapper(name).Refuse(); err != nil {
		return fmt.Errorf("hblab: %w", err)
	}
	return nil
}

// haCF renders node name's ha.cf.
func (l *Lab) haCF(name string) string {
	peer := "b"
	if name == "b" {
		peer = "a"
	}
	secs := func(d time.Duration) int { return int(d / time.Second) }
	// udpport must come before the media line; heartbeat 3.0.6 warns
	// "udpport setting must precede media statements" anyway.
	return fmt.Sprintf(`# hblab node %[1]s (%[2]s)
logfile %[3]s
debugfile %[4]s
logfacility none
use_logd no
udpport %[5]d
keepalive %[6]d
warntime %[7]d
deadtime %[8]d
initdead %[9]d
ucast eth0 %[10]s
auto_failback on
node %[11]s
node %[12]s
crm no
`, NodeName(name), name, l.LogFile(name), l.DebugFile(name), UDPPort,
		secs(Keepalive), secs(WarnTime), secs(DeadTime), secs(InitDead),
		l.net.Addr(peer), NodeName("a"), NodeName("b"))
}

// wrapper is node name's cl_status wrapper (see ClStatus). Without a
// holder it fails with exit status 1, as cl_status does when it cannot
// reach heartbeat.
func (l *Lab) wrapper(name string) netlab.Wrapper {
	return netlab.Wrapper{
		Path:    l.ClStatus(name),
		Tool:    l.clStatus,
		Comment: fmt.Sprintf("cl_status on node %s (%s) of an hblab pair", name, NodeName(name)),
		Refusal: "hblab: this node has no holder (the lab is not up or is down)",
		Status:  1,
	}
}

// startHolder starts n's holder, waits until its namespaces are set up
// and points the cl_status wrapper at it.
func (l *Lab) startHolder(ctx context.Context, n *node) error {
	logf, err := os.OpenFile(filepath.Join(n.dir, "holder.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("hblab: %w", err)
	}
	defer logf.Close()
	h, err := l.net.StartHolder(ctx, netlab.HolderConfig{
		Node:  n.name,
		Argv:  []string{"bash", "-c", holderScript, "hblab-holder-" + n.name, n.dir, NodeName(n.name)},
		Ready: filepath.Join(n.dir, "holder.ready"),
		Dir:   n.dir,
		Env:   nodeEnv,
		Log:   logf,
	})
	if err != nil {
		return fmt.Errorf("hblab: %w", err)
	}
	l.mu.Lock()
	n.holder = h
	l.mu.Unlock()
	// The wrapper hard-codes the holder's pid, and checks that it still
	// is the holder's; Down replaces it with one that refuses.
	if err := l.wrapper(n.name).Enter(h); err != nil {
		return fmt.Errorf("hblab: %w", err)
	}
	return nil
}

func (l *Lab) node(name string) *node {
	n, ok := l.nodes[name]
	if !ok {
		panic(fmt.Sprintf("hblab: no node %q (have %v)", name, Nodes))
	}
	return n
}

// NodeName is node's heartbeat node name (its uname -n): hb-a, hb-b.
func NodeName(node string) string { return "hb-" + node }

// Dir is node's directory: configuration, state, logs, wrapper.
func (l *Lab) Dir(node string) string { return l.node(node).dir }

// ConfDir is node's copy of /etc/ha.d (ha.cf, authkeys, haresources),
// bind-mounted over /etc/ha.d inside the node.
func (l *Lab) ConfDir(node string) string { return filepath.Join(l.node(node).dir, "ha.d") }

// LogFile is node's heartbeat log (logfile in ha.cf); the resource
// scripts log there too.
func (l *Lab) LogFile(node string) string { return filepath.Join(l.node(node).dir, "ha-log") }

// DebugFile is node's heartbeat debug log (debugfile in ha.cf).
func (l *Lab) DebugFile(node string) string { return filepath.Join(l.node(node).dir, "ha-debug") }

// OutFile collects what the lab's heartbeat and heartbeat -k commands
// print on node before heartbeat's own log takes over.
func (l *Lab) OutFile(node string) string { return filepath.Join(l.node(node).dir, "heartbeat.out") }

// ClStatus is the path of a script that runs cl_status inside node with
// the script's arguments, and exits with cl_status's status. Give it to
// anything that would run cl_status on the node itself, such as lvsmon's
// Heartbeat source. After Down it only fails.
func (l *Lab) ClStatus(node string) string { return filepath.Join(l.node(node).dir, "cl_status") }

// HolderPID is the host pid of node's holder (the init of its PID
// namespace); 0 when it does not run.
func (l *Lab) HolderPID(node string) int { return l.holder(node).InitPID() }

// holder is node's holder, nil when it has none.
func (l *Lab) holder(node string) *netlab.Holder {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node(node).holder
}

// Command returns a command that runs name with args inside node (its
// network, mount, UTS and PID namespaces), for a look at what heartbeat
// sees. It is not started.
func (l *Lab) Command(ctx context.Context, node, name string, args ...string) *exec.Cmd {
	return command(ctx, l.holder(node), name, args...)
}

// Running reports whether node's heartbeat was started by Start and not
// stopped since.
func (l *Lab) Running(node string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.node(node).running
}

// PIDs are the host pids of node's heartbeat processes: everything that
// descends from the holder (heartbeat's daemons, its resource scripts and
// what they left running), but not the commands that entered the node
// through nsenter, such as a cl_status.
func (l *Lab) PIDs(node string) []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	initPID := l.node(node).holder.InitPID()
	if initPID == 0 {
		return nil
	}
	return descendants(initPID)
}

// Start launches node's heartbeat and waits until the daemon has written
// its pid file and runs, which takes a few milliseconds.
//
// heartbeat is not ready then. `cl_status hbstatus` asks heartbeat's
// client API, and that comes up only once heartbeat has heard from its
// peer (one to two seconds) or given up on it (InitDead): until then hbstatus
// says "Heartbeat is stopped on this machine." (exit 1) and rscstatus
// cannot sign on. See WaitSettled. Start does not wait for that, so that
// two Starts in a row start the nodes together. A pid file left by a
// crash is removed first.
func (l *Lab) Start(name string) error {
	n := l.node(name)
	n.op.Lock()
	defer n.op.Unlock()
	l.mu.Lock()
	h, running, down := n.holder, n.running, l.down || n.holder == nil
	l.mu.Unlock()
	initPID := h.InitPID()
	switch {
	case down:
		return errors.New("hblab: lab is down")
	case running:
		return fmt.Errorf("hblab: heartbeat on %s is already running (%d processes)", name, len(descendants(initPID)))
	}
	if left := descendants(initPID); len(left) > 0 {
		return fmt.Errorf("hblab: %s still has processes from an earlier heartbeat: %v", name, left)
	}
	// /proc/PID/root is the holder's view of the file system, /run
	// included.
	if err := os.Remove(fmt.Sprintf("/proc/%d/root/run/heartbeat.pid", initPID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("hblab: %w", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	// heartbeat validates its configuration, forks the daemon and exits.
	rc, err := l.inNode(ctx, n, h, "heartbeat", l.heartbeat)
	if err != nil || rc != 0 {
		return fmt.Errorf("hblab: starting heartbeat on %s: exit %d, %v; %s:\n%s", name, rc, err, l.OutFile(name), netlab.Tail(l.OutFile(name), 10))
	}
	l.mu.Lock()
	n.running = true
	l.mu.Unlock()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		if l.daemonPID(initPID) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("hblab: heartbeat on %s wrote no pid file or died within %v; log:\n%s", name, startTimeout, netlab.Tail(l.LogFile(name), 20))
		case <-tick.C:
		}
	}
}

// daemonPID is the host pid of the heartbeat master control process of
// the holder initPID: the process that /run/heartbeat.pid names (by its
// pid inside the node's PID namespace), if it runs; else 0.
func (l *Lab) daemonPID(initPID int) int {
	nsPID := netlab.PIDOf(fmt.Sprintf("/proc/%d/root/run/heartbeat.pid", initPID))
	if nsPID <= 0 {
		return 0
	}
	for _, pid := range descendants(initPID) {
		b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(b)) {
			// NSpid: <host pid> <pid in the node>
			if f := strings.Fields(line); len(f) >= 3 && f[0] == "NSpid:" && f[len(f)-1] == strconv.Itoa(nsPID) {
				return pid
			}
		}
	}
	return 0
}

// DaemonPID is the host pid of node's heartbeat master control process,
// 0 when it does not run.
func (l *Lab) DaemonPID(node string) int {
	initPID := l.HolderPID(node)
	if initPID == 0 {
		return 0
	}
	return l.daemonPID(initPID)
}

// RscStatus runs `cl_status rscstatus` inside node and returns its output
// (trimmed) and exit status.
func (l *Lab) RscStatus(ctx context.Context, node string) (string, int, error) {
	out, rc, err := run(ctx, l.holder(node), l.clStatus, "rscstatus")
	return strings.TrimSpace(out), rc, err
}

// Settled are the rscstatus words of a node whose resource state is
// stable; in between, rscstatus prints "transition".
var Settled = []string{"none", "local", "foreign", "all"}

// WaitSettled polls rscstatus on node until it prints one of Settled, and
// returns that word and how long it took. heartbeat stays in "transition"
// for up to about 10s after a start, while the nodes agree who holds
// what; `heartbeat -k` in that state waits for it to end.
func (l *Lab) WaitSettled(ctx context.Context, node string) (string, time.Duration, error) {
	start := time.Now()
	var last string
	for {
		out, rc, err := l.RscStatus(ctx, node)
		if err == nil && rc == 0 && slices.Contains(Settled, out) {
			return out, time.Since(start), nil
		}
		last = fmt.Sprintf("exit %d, %v: %q", rc, err, out)
		select {
		case <-ctx.Done():
			return "", time.Since(start), fmt.Errorf("hblab: rscstatus on %s not settled after %v (last %s): %w", node, time.Since(start).Round(time.Millisecond), last, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Stop ends node's heartbeat (see Graceful and Crash) and waits until
// none of its processes is left.
func (l *Lab) Stop(name string, mode StopMode) error {
	n := l.node(name)
	n.op.Lock()
	defer n.op.Unlock()
	l.mu.Lock()
	h, running := n.holder, n.running
	n.running = false
	l.mu.Unlock()
	initPID := h.InitPID()
	if !running {
		return fmt.Errorf("hblab: heartbeat on %s is not running", name)
	}
	switch mode {
	case Graceful:
		ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
		defer cancel()
		// heartbeat -k signals the daemon and waits until it has released
		// its resources and exited.
		if rc, err := l.inNode(ctx, n, h, "heartbeat -k", l.heartbeat, "-k"); err != nil || rc != 0 {
			kerr := killAll(initPID)
			return errors.Join(fmt.Errorf("hblab: heartbeat -k on %s: exit %d, %v; %s:\n%s", name, rc, err, l.OutFile(name), netlab.Tail(l.OutFile(name), 10)), kerr)
		}
		// Nothing should be left; allow a moment for the last children
		// to be reaped.
		deadline := time.Now().Add(killTimeout)
		for {
			left := descendants(initPID)
			if len(left) == 0 {
				return nil
			}
			if time.Now().After(deadline) {
				return errors.Join(fmt.Errorf("hblab: processes %v of %s outlived heartbeat -k; killed", left, name), killAll(initPID))
			}
			time.Sleep(10 * time.Millisecond)
		}
	case Crash:
		return killAll(initPID)
	default:
		return fmt.Errorf("hblab: unknown stop mode %v", mode)
	}
}

// inNode runs a lab command inside n with its output appended to the
// node's OutFile, under a header line, and returns the exit status. The
// output goes to a file, not a pipe, so a daemon that keeps its stdout
// cannot hold the call up.
func (l *Lab) inNode(ctx context.Context, n *node, h *netlab.Holder, header string, name string, args ...string) (int, error) {
	f, err := os.OpenFile(l.OutFile(n.name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return -1, fmt.Errorf("hblab: %w", err)
	}
	defer f.Close()
	fmt.Fprintf(f, "=== hblab: %s on %s at %s\n", header, n.name, time.Now().Format(time.RFC3339Nano))
	cmd := command(ctx, h, name, args...)
	cmd.Stdout, cmd.Stderr = f, f
	return exitStatus(cmd.Run())
}

// run runs name inside h's namespaces and returns its combined output
// and exit status; err is for failures to run it at all.
func run(ctx context.Context, h *netlab.Holder, name string, args ...string) (string, int, error) {
	if h == nil {
		return "", -1, errors.New("hblab: the node has no holder")
	}
	out, err := command(ctx, h, name, args...).CombinedOutput()
	rc, err := exitStatus(err)
	return string(out), rc, err
}

// command is name with args inside h's namespaces, through nsenter, in
// the node's environment.
func command(ctx context.Context, h *netlab.Holder, name string, args ...string) *exec.Cmd {
	cmd := h.Command(ctx, name, args...)
	cmd.Env = nodeEnv
	return cmd
}

// exitStatus splits the error of a finished command into its exit status
// and an error for anything else (not started, killed by a signal).
func exitStatus(err error) (int, error) {
	var ee *exec.ExitError
	switch {
	case err == nil:
		return 0, nil
	case errors.As(err, &ee) && ee.ExitCode() >= 0:
		return ee.ExitCode(), nil
	}
	return -1, err
}

// killAll SIGKILLs everything that descends from init (not init itself)
// until nothing is left. It repeats because a process may fork between
// the listing and the kill.
func killAll(initPID int) error {
	deadline := time.Now().Add(killTimeout)
	for {
		left := descendants(initPID)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("hblab: processes %v survive SIGKILL", left)
		}
		for _, pid := range left {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// Down kills both holders, and with them every heartbeat process and
// mount of the lab, then deletes the namespaces. It can be called more
// than once; only the first call does anything. The directory is left to
// its owner, with the cl_status wrappers turned into ones that fail.
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
		n.running = false
		if n.holder == nil {
			continue
		}
		// The wrapper checks that its pid still is the holder's only
		// just before it enters: make it refuse outright before the
		// holder goes.
		if err := l.wrapper(name).Refuse(); err != nil {
			errs = append(errs, fmt.Errorf("hblab: %w", err))
		}
		if err := n.holder.Close(); err != nil {
			errs = append(errs, fmt.Errorf("hblab: %w", err))
		}
		n.holder = nil
	}
	if l.net != nil {
		errs = append(errs, l.net.Down())
	}
	return errors.Join(errs...)
}

// descendants returns the live (not zombie) processes below root, root
// excluded, sorted.
func descendants(root int) []int {
	parents := procParents()
	var out []int
	for pid := range parents {
		for p, seen := parents[pid], 0; p > 0 && seen < 64; p, seen = parents[p], seen+1 {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	slices.Sort(out)
	return out
}

// procParents maps every live (not zombie) process on the host to its
// parent, from /proc/PID/stat.
func procParents() map[int]int {
	m := map[int]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return m
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue // gone meanwhile
		}
		// pid (comm) state ppid …; comm may hold spaces and parens.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 2 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		ppid, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		m[pid] = ppid
	}
	return m
}

// lookupIDs returns the uid and gid of user name.
func lookupIDs(name string) (int, int, bool) {
	u, err := user.Lookup(name)
	if err != nil {
		return 0, 0, false
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	return uid, gid, err1 == nil && err2 == nil
}
