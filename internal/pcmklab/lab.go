// Package pcmklab builds a two-node corosync 3 + pacemaker 2.1 cluster in
// namespaces, for tests that need a real pacemaker: what crm_mon prints
// while the cluster forms, fails over and falls back, and what it prints
// after the cluster stack of a node has crashed.
//
// The nodes "a" and "b" sit on a netlab network (tag "pc"):
//
//	a: 198.51.100.11/24, pacemaker node pc-a, corosync nodeid 1
//	b: 198.51.100.12/24, pacemaker node pc-b, corosync nodeid 2
//	resource "vip": ocf:heartbeat:IPaddr2 198.51.100.120/24 on eth0,
//	preferring pc-a (score 100, no stickiness, so it falls back)
//
// corosync and pacemaker were not written to share a host: they use fixed
// paths (/etc/corosync, /var/lib/pacemaker, /run, /dev/shm), take the node
// name from uname, and their IPC goes through abstract unix sockets, which
// belong to a network namespace. So each node gets, besides its network
// namespace, a private mount, UTS and PID namespace, set up by a "holder"
// process (netlab.Holder, `ip netns exec NS unshare ...`): it sets the
// host name, bind mounts per-node copies of those directories from the lab directory,
// puts a tmpfs on /run and /dev/shm and then stays, as the PID namespace's
// init. corosync, pacemakerd and every tool (crm_mon, cibadmin...) run in
// there through `nsenter -t HOLDER -m -u -n -p`.
//
// The PID namespace is there for the cleanup. A crash kills pacemakerd
// together with its children, and orphans go to init, which on the test
// hosts here reaps them only every few seconds; inside the namespace the
// holder reaps them at once. And killing the holder makes the kernel kill
// everything else in the namespace, including processes the lab did not
// start itself (resource agents, a crm_mon a test left running). With the
// last process gone, the mount namespace goes, and with it the tmpfs
// mounts (the libqb shared-memory files): nothing is ever mounted in the
// caller's namespace.
//
// corosync uses knet without crypto, two_node quorum and a short token;
// the CIB is written before the first start (stonith-enabled=false, a
// short dc-deadtime), so the cluster never runs with another
// configuration.
//
// It needs root, ip (iproute2), unshare and nsenter (util-linux),
// corosync, pacemaker, pacemaker-cli-utils and resource-agents. Up returns
// an error when any is missing; tests should fail on that error rather
// than skip, so a broken test host does not pass silently.
package pcmklab

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

// The cluster's fixed parameters.
const (
	// Resource is the id of the IPaddr2 primitive holding the VIP.
	Resource = "vip"
	// ClusterName is corosync's cluster_name.
	ClusterName = "pcmklab"
	// PrefixLen is the length of the nodes' and the VIP's prefix.
	PrefixLen = netlab.PrefixLen
	// Token is corosync's token timeout. A node whose corosync dies is
	// declared lost after Token plus the consensus time (1.2 × Token).
	// corosync's default is 3s; 1s still leaves slack for a loaded test
	// host, since corosync runs with real-time priority.
	Token = time.Second
	// Monitor is the interval of the VIP's monitor operation.
	Monitor = 2 * time.Second
	// DCDeadtime is pacemaker's dc-deadtime: how long a starting
	// controller waits to hear from a DC before it calls an election.
	// The default, 20s, would be the bulk of every cluster start here.
	DCDeadtime = 2 * time.Second
	// PreferScore is the score of the location constraint that sends
	// the VIP to pc-a.
	PreferScore = 100
)

// VIP is the cluster's virtual address.
var VIP = netip.MustParseAddr("198.51.100.120")

// Nodes are the node names, in order.
var Nodes = netlab.Nodes

// nodeIDs are the corosync node ids.
var nodeIDs = map[string]int{"a": 1, "b": 2}

// tools are the programs the lab runs; Up checks them all.
var tools = []string{"unshare", "nsenter", "hostname", "mount", "corosync", "corosync-cfgtool",
	"pacemakerd", "crm_mon", "crmadmin", "cibadmin"}

// resourceAgent is the OCF agent behind Resource.
const resourceAgent = "/usr/lib/ocf/resource.d/heartbeat/IPaddr2"

// StopMode says how Stop ends a node's cluster stack.
type StopMode int

const (
	// Graceful sends SIGTERM to pacemakerd and waits until it has
	// stopped its resources (the VIP moves to the peer) and exited,
	// then does the same with corosync.
	Graceful StopMode = iota
	// Crash kills (SIGKILL) corosync, pacemakerd, every pacemaker
	// daemon and their children (resource agents) of the node at once.
	// Nothing is stopped cleanly: the VIP stays on the node, and the
	// peer sees the node vanish after the token timeout.
	Crash
	// KillCorosync kills (SIGKILL) corosync alone, and waits until it is
	// gone. The pacemaker daemons lose their cluster layer and react as
	// they do (they do not stop the VIP); whatever of them is still
	// running stays running. Stop with Crash ends them.
	KillCorosync
)

func (m StopMode) String() string {
	switch m {
	case Graceful:
		return "graceful"
	case Crash:
		return "crash"
	case KillCorosync:
		return "kill-corosync"
	}
	return "StopMode(" + strconv.Itoa(int(m)) + ")"
}

// Lab is one cluster. Its methods are safe for concurrent use.
type Lab struct {
	netlab.Pair // NetNS, NetNSName, SwitchNetNS, Addr, VIP, VIPOn, WaitVIP

	dir string
	net *netlab.Net

	mu    sync.Mutex
	nodes map[string]*node
	down  bool
}

type node struct {
	name  string // "a"
	uname string // "pc-a"
	dir   string

	holder     *netlab.Holder // nil before Up has started it
	corosync   *proc          // nil when not started
	pacemakerd *proc          // nil when not started
}

// proc is one process the lab started, with the host pid of the daemon
// inside (nsenter -p forks: cmd is nsenter, pid its child).
type proc struct {
	name string // what runs: "corosync", "pacemakerd"
	cmd  *exec.Cmd
	pid  int
	done chan struct{} // closed when cmd has been reaped
}

func (p *proc) running() bool {
	if p == nil {
		return false
	}
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// NodeName is the pacemaker (and uname) name of node: "pc-a" for "a".
func NodeName(node string) string { return "pc-" + node }

// Up builds the namespaces, writes both nodes' configuration and CIB into
// dir (which must exist and should be empty, such as t.TempDir()) and
// starts the holders. It starts no corosync or pacemaker: see Start. Call
// Down when done, even after an error from Start; Up cleans up after
// itself when it fails.
func Up(ctx context.Context, dir string) (*Lab, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("pcmklab: needs root (namespaces, mounts)")
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return nil, fmt.Errorf("pcmklab: %s is not installed (packages corosync, pacemaker, pacemaker-cli-utils, util-linux): %w", t, err)
		}
	}
	if _, err := os.Stat(resourceAgent); err != nil {
		return nil, fmt.Errorf("pcmklab: resource agent missing (package resource-agents): %w", err)
	}
	uid, gid, err := haclusterIDs()
	if err != nil {
		return nil, err
	}
	if dir, err = filepath.Abs(dir); err != nil {
		return nil, fmt.Errorf("pcmklab: %w", err)
	}
	l := &Lab{dir: dir, nodes: map[string]*node{}}
	for _, n := range Nodes {
		l.nodes[n] = &node{name: n, uname: NodeName(n), dir: filepath.Join(dir, n)}
	}
	if l.net, err = netlab.Up(ctx, "pc"); err != nil {
		return nil, fmt.Errorf("pcmklab: %w", err)
	}
	l.Pair = netlab.NewPair(l.net, "pcmklab", VIP)
	for _, name := range Nodes {
		if err := l.prepare(l.nodes[name], uid, gid); err != nil {
			l.Down()
			return nil, err
		}
	}
	for _, name := range Nodes {
		if err := l.startHolder(ctx, l.nodes[name]); err != nil {
			l.Down()
			return nil, err
		}
	}
	return l, nil
}

// haclusterIDs looks up the user and group pacemaker's daemons run as,
// which must own /var/lib/pacemaker and the logs.
func haclusterIDs() (uid, gid int, err error) {
	u, err := user.Lookup("hacluster")
	if err != nil {
		return 0, 0, fmt.Errorf("pcmklab: no user hacluster (package pacemaker): %w", err)
	}
	g, err := user.LookupGroup("haclient")
	if err != nil {
		return 0, 0, fmt.Errorf("pcmklab: no group haclient (package pacemaker): %w", err)
	}
	if uid, err = strconv.Atoi(u.Uid); err != nil {
		return 0, 0, fmt.Errorf("pcmklab: uid of hacluster: %w", err)
	}
	if gid, err = strconv.Atoi(g.Gid); err != nil {
		return 0, 0, fmt.Errorf("pcmklab: gid of haclient: %w", err)
	}
	return uid, gid, nil
}

// The per-node directories bind-mounted over the system's, relative to
// the node's directory.
var mounts = []struct{ src, dst string }{
	{"etc-corosync", "/etc/corosync"},
	{"lib-corosync", "/var/lib/corosync"},
	{"log-corosync", "/var/log/corosync"},
	{"lib-pacemaker", "/var/lib/pacemaker"},
	{"log-pacemaker", "/var/log/pacemaker"},
}

// prepare writes node n's directories, corosync.conf, CIB and crm_mon
// wrapper.
func (l *Lab) prepare(n *node, uid, gid int) error {
	wrap := func(err error) error { return fmt.Errorf("pcmklab: preparing %s: %w", n.name, err) }
	for _, m := range mounts {
		if err := os.MkdirAll(filepath.Join(n.dir, m.src), 0o755); err != nil {
			return wrap(err)
		}
	}
	// pacemaker's daemons run as hacluster and need their state
	// directories (mode 0750, as the package makes them) and log
	// directory.
	hac := []string{filepath.Join(n.dir, "log-pacemaker")}
	for _, sub := range []string{"cib", "pengine", "blackbox", "cores"} {
		p := filepath.Join(n.dir, "lib-pacemaker", sub)
		if err := os.Mkdir(p, 0o750); err != nil {
			return wrap(err)
		}
		hac = append(hac, p)
	}
	cib := filepath.Join(n.dir, "lib-pacemaker", "cib", "cib.xml")
	if err := os.WriteFile(cib, []byte(cibXML()), 0o600); err != nil {
		return wrap(err)
	}
	hac = append(hac, cib)
	for _, p := range hac {
		if err := os.Chown(p, uid, gid); err != nil {
			return wrap(err)
		}
	}
	if err := os.WriteFile(filepath.Join(n.dir, "etc-corosync", "corosync.conf"), []byte(l.corosyncConf()), 0o644); err != nil {
		return wrap(err)
	}
	if err := l.wrapper(n).Refuse(); err != nil {
		return wrap(err)
	}
	return nil
}

// corosyncConf renders corosync.conf, the same for both nodes.
func (l *Lab) corosyncConf() string {
	var nodes strings.Builder
	for _, name := range Nodes {
		fmt.Fprintf(&nodes, "    node {\n        name: %s\n        nodeid: %d\n        ring0_addr: %s\n    }\n",
			NodeName(name), nodeIDs[name], l.net.Addr(name))
	}
	return fmt.Sprintf(`# written by pcmklab
totem {
    version: 2
    cluster_name: %s
    transport: knet
    crypto_cipher: none
    crypto_hash: none
    token: %d
}

nodelist {
%s}

quorum {
    provider: corosync_votequorum
    two_node: 1
}

logging {
    to_stderr: no
    to_syslog: no
    to_logfile: yes
    logfile: /var/log/corosync/corosync.log
    timestamp: hires
    fileline: off
    debug: off
}
`, ClusterName, Token.Milliseconds(), nodes.String())
}

// cibXML is the CIB both nodes start with. validate-with is a schema
// version pacemaker 2.1.5 knows (it supports up to 3.16), old enough for
// any 2.1. It has no crm_feature_set: pacemaker refuses updates to a CIB
// whose feature set is newer than its own, and fills in its own.
//
// no-quorum-policy stays "stop", the default: with two_node, votequorum
// lets the survivor of a two-node cluster keep quorum, and a node starting
// alone has none until it has seen its peer (wait_for_all), which is what
// should keep it from starting the VIP blindly.
func cibXML() string {
	return fmt.Sprintf(`<cib validate-with="pacemaker-3.9" epoch="1" num_updates="0" admin_epoch="0">
  <configuration>
    <crm_config>
      <cluster_property_set id="cib-bootstrap-options">
        <nvpair id="opt-stonith-enabled" name="stonith-enabled" value="false"/>
        <nvpair id="opt-no-quorum-policy" name="no-quorum-policy" value="stop"/>
        <nvpair id="opt-dc-deadtime" name="dc-deadtime" value="%ds"/>
        <nvpair id="opt-cluster-recheck-interval" name="cluster-recheck-interval" value="1min"/>
      </cluster_property_set>
    </crm_config>
    <nodes/>
    <resources>
      <primitive id="%[2]s" class="ocf" provider="heartbeat" type="IPaddr2">
        <instance_attributes id="%[2]s-attrs">
          <nvpair id="%[2]s-ip" name="ip" value="%[3]s"/>
          <nvpair id="%[2]s-cidr_netmask" name="cidr_netmask" value="%[4]d"/>
          <nvpair id="%[2]s-nic" name="nic" value="eth0"/>
        </instance_attributes>
        <operations>
          <op id="%[2]s-monitor" name="monitor" interval="%[5]ds" timeout="20s"/>
        </operations>
      </primitive>
    </resources>
    <constraints>
      <rsc_location id="%[2]s-prefers-%[6]s" rsc="%[2]s" node="%[6]s" score="%[7]d"/>
    </constraints>
  </configuration>
  <status/>
</cib>
`, int(DCDeadtime/time.Second), Resource, VIP, PrefixLen, int(Monitor/time.Second), NodeName("a"), PreferScore)
}

// holderScript runs as the init of a node's PID namespace: $1 is the host
// name, $2 the node's directory. It prints nothing; it creates $2/ready
// when the namespace is set up. Then it reaps orphans (dash's wait reaps
// any child, not only its own jobs) until it is killed.
const holderScript = `set -e
hostname "$1"
d=$2
mount --bind "$d/etc-corosync" /etc/corosync
mount --bind "$d/lib-corosync" /var/lib/corosync
mount --bind "$d/log-corosync" /var/log/corosync
mount --bind "$d/lib-pacemaker" /var/lib/pacemaker
mount --bind "$d/log-pacemaker" /var/log/pacemaker
mount -t tmpfs -o mode=0755 pcmklab-run /run
mount -t tmpfs -o mode=1777 pcmklab-shm /dev/shm
mkdir -m 1755 /run/resource-agents
mkdir -m 0755 /run/lock
touch "$d/ready"
set +e
while :; do sleep 3600 & wait; done
`

// startHolder starts node n's holder, waits until it has set up the
// namespaces and points the crm_mon wrapper at it.
func (l *Lab) startHolder(ctx context.Context, n *node) error {
	logf, err := os.OpenFile(l.OutFile(n.name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pcmklab: %w", err)
	}
	defer logf.Close()
	h, err := l.net.StartHolder(ctx, netlab.HolderConfig{
		Node:  n.name,
		Argv:  []string{"sh", "-c", holderScript, "holder", n.uname, n.dir},
		Ready: filepath.Join(n.dir, "ready"),
		Dir:   n.dir,
		Log:   logf,
	})
	if err != nil {
		return fmt.Errorf("pcmklab: %w", err)
	}
	n.holder = h
	if err := l.wrapper(n).Enter(h); err != nil {
		return fmt.Errorf("pcmklab: %w", err)
	}
	return nil
}

// wrapper is node n's crm_mon wrapper (see CrmMon). It runs crm_mon in
// the node's namespaces, where its pacemaker's IPC sockets and shared
// memory are; without a holder it fails with exit status 127.
func (l *Lab) wrapper(n *node) netlab.Wrapper {
	return netlab.Wrapper{
		Path:    l.CrmMon(n.name),
		Tool:    "crm_mon",
		Comment: fmt.Sprintf("crm_mon on node %s (%s) of a pcmklab cluster", n.name, n.uname),
		Refusal: fmt.Sprintf("pcmklab: node %s is not up", n.name),
		Status:  127,
	}
}

func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		_ = cmd.Wait()
		close(p.done)
	}()
	return p, nil
}

// poll calls cond every 50ms until it returns true or an error, ctx ends
// or limit passes.
func poll(ctx context.Context, limit time.Duration, cond func() (bool, error)) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	t := time.NewTicker(50 * time.Millisecond)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %v: %w", limit, ctx.Err())
		case <-t.C:
		}
	}
}

func (l *Lab) node(name string) *node {
	n, ok := l.nodes[name]
	if !ok {
		panic(fmt.Sprintf("pcmklab: no node %q (have %v)", name, Nodes))
	}
	return n
}

// Dir is node's directory: the bind-mounted configuration, state and
// logs, the crm_mon wrapper.
func (l *Lab) Dir(node string) string { return l.node(node).dir }

// CrmMon is the path of a script that runs crm_mon, with its arguments,
// on node. It is what lvsmon's pacemaker source should be given.
func (l *Lab) CrmMon(node string) string { return filepath.Join(l.node(node).dir, "crm_mon") }

// LogFile is pacemaker's log on node (all its daemons).
func (l *Lab) LogFile(node string) string {
	return filepath.Join(l.node(node).dir, "log-pacemaker", "pacemaker.log")
}

// CorosyncLog is corosync's log on node.
func (l *Lab) CorosyncLog(node string) string {
	return filepath.Join(l.node(node).dir, "log-corosync", "corosync.log")
}

// OutFile is where the holder's, corosync's and pacemakerd's standard
// output and error go, and the lab notes its own actions.
func (l *Lab) OutFile(node string) string { return filepath.Join(l.node(node).dir, "out.log") }

// HolderPID is the host pid of node's holder, the process whose
// namespaces to enter (nsenter -t PID -m -u -n -p); 0 when down.
func (l *Lab) HolderPID(node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		return 0
	}
	return l.node(node).holder.InitPID()
}

// note appends a line to node's OutFile.
func (l *Lab) note(n *node, format string, args ...any) {
	f, err := os.OpenFile(l.OutFile(n.name), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return
	}
	defer f.Close()
	fmt.Fprintf(f, "=== pcmklab %s: %s\n", time.Now().Format("15:04:05.000000"), fmt.Sprintf(format, args...))
}

// env is the environment of the daemons and tools run in a node:
// pacemaker logs to its file only (no syslog: the log socket is the
// host's), and no blackbox.
func env() []string {
	return append(os.Environ(),
		"LC_ALL=C",
		"PCMK_logfile=/var/log/pacemaker/pacemaker.log",
		"PCMK_logfacility=none",
		"PCMK_debug=no",
		"PCMK_blackbox=no",
	)
}

// command builds a command that runs name with args in node n's
// namespaces.
func (l *Lab) command(ctx context.Context, n *node, name string, args ...string) *exec.Cmd {
	cmd := n.holder.Command(ctx, name, args...)
	cmd.Env = env()
	cmd.Dir = n.dir
	return cmd
}

// Exec runs a program with arguments on node (in its namespaces) and
// returns its standard output and error, combined. The error is the exit
// status's, if not 0.
func (l *Lab) Exec(ctx context.Context, node, name string, args ...string) ([]byte, error) {
	l.mu.Lock()
	n := l.node(node)
	if l.down || !n.holder.Alive() {
		l.mu.Unlock()
		return nil, fmt.Errorf("pcmklab: %s is down", node)
	}
	cmd := l.command(ctx, n, name, args...)
	l.mu.Unlock()
	out, err := cmd.CombinedOutput()
	if err != nil {
		return out, fmt.Errorf("pcmklab: %s on %s: %w", name, node, err)
	}
	return out, nil
}

// Start starts corosync and then pacemakerd on node, and waits until
// corosync answers and pacemakerd says it is running (all its daemons
// started). It does not wait for the node to join the cluster or for the
// VIP: see WaitVIP. It fails when anything of the node's cluster stack
// still runs (after KillCorosync, Stop the node with Crash first).
func (l *Lab) Start(ctx context.Context, node string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(node)
	if l.down {
		return errors.New("pcmklab: lab is down")
	}
	if !n.holder.Alive() {
		return fmt.Errorf("pcmklab: the holder of %s is gone", node)
	}
	if n.corosync.running() || n.pacemakerd.running() {
		return fmt.Errorf("pcmklab: the cluster stack of %s is already running", node)
	}
	if left := l.stack(n); len(left) > 0 {
		return fmt.Errorf("pcmklab: %s still has cluster processes %v", node, left)
	}
	l.note(n, "start corosync")
	out, err := os.OpenFile(l.OutFile(node), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("pcmklab: %w", err)
	}
	defer out.Close()

	start := func(name string, args ...string) (*proc, error) {
		cmd := l.command(context.Background(), n, name, args...)
		cmd.Stdout, cmd.Stderr = out, out
		cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
		p, err := startProc(name, cmd)
		if err != nil {
			return nil, fmt.Errorf("pcmklab: starting %s on %s: %w", name, node, err)
		}
		// nsenter -p forks; the daemon is its child.
		err = poll(ctx, 10*time.Second, func() (bool, error) {
			if !p.running() {
				return false, fmt.Errorf("exited at once")
			}
			p.pid = netlab.FirstChild(cmd.Process.Pid)
			return p.pid > 0, nil
		})
		if err != nil {
			return p, fmt.Errorf("pcmklab: %s on %s: %w", name, node, err)
		}
		return p, nil
	}

	if n.corosync, err = start("corosync", "-f"); err != nil {
		return l.startFailed(n, err)
	}
	// corosync answers on its cfg IPC once it has set up; pacemakerd
	// gives up if it starts before that.
	err = poll(ctx, 20*time.Second, func() (bool, error) {
		if !n.corosync.running() {
			return false, errors.New("corosync exited")
		}
		return l.command(ctx, n, "corosync-cfgtool", "-s").Run() == nil, nil
	})
	if err != nil {
		return l.startFailed(n, fmt.Errorf("pcmklab: corosync on %s: %w", node, err))
	}
	l.note(n, "corosync answers; start pacemakerd")
	if n.pacemakerd, err = start("pacemakerd"); err != nil {
		return l.startFailed(n, err)
	}
	err = poll(ctx, 30*time.Second, func() (bool, error) {
		if !n.pacemakerd.running() {
			return false, errors.New("pacemakerd exited")
		}
		out, _ := l.command(ctx, n, "crmadmin", "--pacemakerd", "--output-as=xml").Output()
		return bytes.Contains(out, []byte(`state="running"`)), nil
	})
	if err != nil {
		return l.startFailed(n, fmt.Errorf("pcmklab: pacemakerd on %s: %w", node, err))
	}
	l.note(n, "pacemakerd running")
	return nil
}

// startFailed kills what Start had started and returns err with the end
// of the logs.
func (l *Lab) startFailed(n *node, err error) error {
	_ = l.kill(n, nil)
	return fmt.Errorf("%w\nout:\n%s\ncorosync log:\n%s\npacemaker log:\n%s", err,
		netlab.Tail(l.OutFile(n.name), 10), netlab.Tail(l.CorosyncLog(n.name), 10), netlab.Tail(l.LogFile(n.name), 20))
}

// Running reports whether node's corosync and pacemakerd (as started by
// Start) run.
func (l *Lab) Running(node string) (corosync, pacemakerd bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(node)
	return n.corosync.running(), n.pacemakerd.running()
}

// Stop ends node's cluster stack the way mode says, and waits until what
// it ended has exited. A Graceful stop that takes longer than ctx allows,
// or than a minute, is finished with Crash and reported as an error.
func (l *Lab) Stop(ctx context.Context, node string, mode StopMode) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.node(node)
	if l.down {
		return errors.New("pcmklab: lab is down")
	}
	switch mode {
	case Graceful:
		if !n.corosync.running() && !n.pacemakerd.running() {
			return fmt.Errorf("pcmklab: the cluster stack of %s is not running", node)
		}
		l.note(n, "graceful stop")
		ctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		for _, p := range []*proc{n.pacemakerd, n.corosync} {
			if !p.running() {
				continue
			}
			if err := syscall.Kill(p.pid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
				return fmt.Errorf("pcmklab: SIGTERM to %d on %s: %w", p.pid, node, err)
			}
			select {
			case <-p.done:
			case <-ctx.Done():
				err := fmt.Errorf("pcmklab: %s on %s did not stop on SIGTERM: %w", p.name, node, ctx.Err())
				return errors.Join(err, l.kill(n, nil))
			}
		}
		// pacemakerd waits for its daemons; check anyway.
		if left := l.stack(n); len(left) > 0 {
			return errors.Join(fmt.Errorf("pcmklab: left after a graceful stop of %s: %v", node, left), l.kill(n, nil))
		}
		l.note(n, "stopped")
		return nil
	case Crash:
		if len(l.stack(n)) == 0 {
			return fmt.Errorf("pcmklab: the cluster stack of %s is not running", node)
		}
		l.note(n, "crash")
		return l.kill(n, nil)
	case KillCorosync:
		if !n.corosync.running() {
			return fmt.Errorf("pcmklab: corosync on %s is not running", node)
		}
		l.note(n, "SIGKILL corosync")
		return l.kill(n, func(comm string) bool { return comm == "corosync" })
	}
	return fmt.Errorf("pcmklab: unknown stop mode %v", mode)
}

// kill kills (SIGKILL) node n's cluster processes that match (nil:
// corosync and all pacemaker processes), with their descendants, and waits
// until they are gone.
//
// The processes started inside the namespace (pacemakerd's daemons and
// their children) are frozen with SIGSTOP first, so that none of them can
// react to the death of another (pacemakerd respawning a daemon, a daemon
// shutting down on losing corosync) before it is killed itself. corosync
// and pacemakerd are not frozen: their parent, nsenter, would stop itself
// when it saw its child stop, and could then not reap it.
func (l *Lab) kill(n *node, match func(comm string) bool) error {
	if match == nil {
		match = isStack
	}
	var victims []int
	for range 5 {
		ps := n.holder.Procs()
		var now []int
		for _, p := range ps {
			if p.PID != n.holder.InitPID() && (match(p.Comm) || descends(ps, p, match)) {
				now = append(now, p.PID)
			}
		}
		if len(now) == 0 {
			break
		}
		for _, p := range ps {
			if slices.Contains(now, p.PID) && slices.ContainsFunc(ps, func(q netlab.Proc) bool { return q.PID == p.PPID }) {
				_ = syscall.Kill(p.PID, syscall.SIGSTOP)
			}
		}
		for _, pid := range now {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		victims = append(victims, now...)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pid := range victims {
		for netlab.Alive(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("pcmklab: process %d of %s survived SIGKILL", pid, n.name)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	// The nsenter parents exit when their child has died.
	for _, p := range []*proc{n.corosync, n.pacemakerd} {
		if p != nil && !netlab.Alive(p.pid) {
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				return fmt.Errorf("pcmklab: nsenter %d of %s did not exit after its child", p.cmd.Process.Pid, n.name)
			}
		}
	}
	return nil
}

// isStack reports whether a process name (comm, at most 15 bytes) is one
// of the cluster stack's daemons.
func isStack(comm string) bool { return comm == "corosync" || strings.HasPrefix(comm, "pacemaker") }

// descends reports whether p is a descendant of a process that matches.
func descends(ps []netlab.Proc, p netlab.Proc, match func(string) bool) bool {
	for range len(ps) {
		i := slices.IndexFunc(ps, func(q netlab.Proc) bool { return q.PID == p.PPID })
		if i < 0 {
			return false
		}
		p = ps[i]
		if match(p.Comm) {
			return true
		}
	}
	return false
}

// stack lists node n's running cluster processes, as "comm/pid".
func (l *Lab) stack(n *node) []string {
	var s []string
	for _, p := range n.holder.Procs() {
		if isStack(p.Comm) {
			s = append(s, fmt.Sprintf("%s/%d", p.Comm, p.PID))
		}
	}
	return s
}

// Procs lists the cluster processes (corosync, pacemaker*) running on
// node, as "comm/pid" with host pids.
func (l *Lab) Procs(node string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stack(l.node(node))
}

// Down kills every process of the lab and deletes its namespaces. It can
// be called more than once; only the first call does anything. The
// directory is left to its owner; the crm_mon wrappers in it fail from
// now on.
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
		if n.holder == nil {
			continue
		}
		// The wrapper checks that its pid still is the holder's only
		// just before it enters: make it refuse outright before the
		// holder goes.
		_ = l.wrapper(n).Refuse()
		// All holders at once; then wait for each.
		n.holder.Kill()
	}
	for _, name := range Nodes {
		n := l.nodes[name]
		if n.holder == nil {
			continue
		}
		if err := n.holder.Wait(netlab.HolderTimeout); err != nil {
			errs = append(errs, fmt.Errorf("pcmklab: %w", err))
		}
		// The nsenter parents of corosync and pacemakerd exit once
		// their child is gone.
		for _, p := range []*proc{n.corosync, n.pacemakerd} {
			if p == nil {
				continue
			}
			select {
			case <-p.done:
			case <-time.After(10 * time.Second):
				errs = append(errs, fmt.Errorf("pcmklab: nsenter of %s (pid %d) on %s did not exit", p.name, p.cmd.Process.Pid, name))
			}
		}
		if left := n.holder.Procs(); len(left) > 0 {
			errs = append(errs, fmt.Errorf("pcmklab: processes of %s left after Down: %v", name, left))
		}
	}
	if l.net != nil {
		errs = append(errs, l.net.Down())
	}
	return errors.Join(errs...)
}
