// Package netlab builds the network that the HA lab packages (vrrplab,
// hblab, pcmklab) put their two directors on: a "switch" namespace
// holding a bridge, and one namespace per node whose eth0 (a veth) is
// plugged into that bridge.
//
//	a: 198.51.100.11/24
//	b: 198.51.100.12/24
//
// 198.51.100.0/24 is TEST-NET-2, and it is used only inside these
// namespaces: nothing is added to the caller's own namespace, whose
// subnet must never be reused by tests. Namespace names carry a random
// suffix, so test packages running in parallel do not collide.
//
// It needs root and ip (iproute2). Up returns an error when either is
// missing; tests should fail on that error rather than skip, so a broken
// test host does not pass silently.
package netlab

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
)

// PrefixLen is the length of the nodes' prefix (and of the labs' VIPs).
const PrefixLen = 24

// Nodes are the node names, in order.
var Nodes = []string{"a", "b"}

var addrs = map[string]netip.Addr{
	"a": netip.MustParseAddr("198.51.100.11"),
	"b": netip.MustParseAddr("198.51.100.12"),
}

// Net is one switch and its two nodes. Its methods are safe for
// concurrent use.
type Net struct {
	prefix string // namespace name prefix, e.g. "vl1a2b3c"
	sw     string // switch namespace name

	mu    sync.Mutex
	nodes map[string]*node
	down  bool
}

type node struct {
	ns     string          // namespace name
	handle *netlink.Handle // netlink in the node's namespace; guarded by mu
	mu     sync.Mutex
}

// Up builds the namespaces. tag (two or three letters) starts the
// namespace names so that `ip netns` shows which lab made them. Call Down
// when done; Up cleans up after itself when it fails.
func Up(ctx context.Context, tag string) (*Net, error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("netlab: needs root (network namespaces)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return nil, fmt.Errorf("netlab: ip (iproute2) is not installed: %w", err)
	}
	b := make([]byte, 3)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("netlab: %w", err)
	}
	n := &Net{prefix: tag + hex.EncodeToString(b), nodes: map[string]*node{}}
	n.sw = n.prefix + "-sw"
	for _, name := range Nodes {
		n.nodes[name] = &node{ns: n.prefix + "-" + name}
	}
	if err := n.build(ctx); err != nil {
		_ = n.Down()
		return nil, err
	}
	return n, nil
}

func (n *Net) build(ctx context.Context) error {
	ip := func(args ...string) error {
		out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("netlab: ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
		}
		return nil
	}
	steps := [][]string{
		{"netns", "add", n.sw},
		{"-n", n.sw, "link", "set", "lo", "up"},
		{"-n", n.sw, "link", "add", "br0", "type", "bridge"},
		{"-n", n.sw, "link", "set", "br0", "up"},
	}
	for _, name := range Nodes {
		nd := n.nodes[name]
		port := "p" + name
		steps = append(steps,
			[]string{"netns", "add", nd.ns},
			// Both ends are created in the switch namespace and the
			// node's end moves straight to the node: nothing ever
			// appears in the caller's namespace.
			[]string{"-n", n.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", nd.ns},
			[]string{"-n", n.sw, "link", "set", port, "master", "br0"},
			[]string{"-n", n.sw, "link", "set", port, "up"},
			[]string{"-n", nd.ns, "link", "set", "lo", "up"},
			[]string{"-n", nd.ns, "link", "set", "eth0", "up"},
			[]string{"-n", nd.ns, "addr", "add", addrs[name].String() + "/" + strconv.Itoa(PrefixLen), "dev", "eth0"},
		)
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	for _, name := range Nodes {
		nd := n.nodes[name]
		h, err := netns.GetFromPath(n.NetNS(name))
		if err != nil {
			return fmt.Errorf("netlab: namespace %s: %w", nd.ns, err)
		}
		nd.handle, err = netlink.NewHandleAt(h)
		h.Close()
		if err != nil {
			return fmt.Errorf("netlab: netlink in %s: %w", nd.ns, err)
		}
		if err := nd.handle.SetSocketTimeout(5 * time.Second); err != nil {
			return fmt.Errorf("netlab: netlink in %s: %w", nd.ns, err)
		}
	}
	return nil
}

func (n *Net) node(name string) *node {
	nd, ok := n.nodes[name]
	if !ok {
		panic(fmt.Sprintf("netlab: no node %q (have %v)", name, Nodes))
	}
	return nd
}

// NetNSName is the name of node's network namespace (for ip -n).
func (n *Net) NetNSName(node string) string { return n.node(node).ns }

// NetNS is the path of node's network namespace.
func (n *Net) NetNS(node string) string { return "/run/netns/" + n.node(node).ns }

// SwitchNetNS is the path of the switch's namespace, where a capture on
// br0 sees all the traffic between the nodes.
func (n *Net) SwitchNetNS() string { return "/run/netns/" + n.sw }

// Addr is node's address on eth0.
func (n *Net) Addr(node string) netip.Addr { n.node(node); return addrs[node] }

// HasAddr reports whether addr is on one of node's interfaces.
func (n *Net) HasAddr(node string, addr netip.Addr) (bool, error) {
	nd := n.node(node)
	nd.mu.Lock()
	defer nd.mu.Unlock()
	if nd.handle == nil {
		return false, errors.New("netlab: the lab is down")
	}
	fam := netlink.FAMILY_V4
	if addr.Is6() {
		fam = netlink.FAMILY_V6
	}
	list, err := nd.handle.AddrList(nil, fam)
	if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
		return false, fmt.Errorf("netlab: addresses in %s: %w", nd.ns, err)
	}
	return slices.ContainsFunc(list, func(a netlink.Addr) bool {
		ip, ok := netip.AddrFromSlice(a.IP)
		return ok && ip.Unmap() == addr
	}), nil
}

// WaitAddr polls (every 10ms) until addr's presence on node is want, and
// returns how long that took.
func (n *Net) WaitAddr(ctx context.Context, node string, addr netip.Addr, want bool) (time.Duration, error) {
	start := time.Now()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		on, err := n.HasAddr(node, addr)
		if err != nil {
			return time.Since(start), err
		}
		if on == want {
			return time.Since(start), nil
		}
		select {
		case <-ctx.Done():
			return time.Since(start), fmt.Errorf("netlab: %s on %s still %v after %v: %w", addr, node, on, time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-t.C:
		}
	}
}

// Down deletes the namespaces. It can be called more than once; only the
// first call does anything. Processes still running in a node namespace
// keep it alive (unnamed) until they exit: stop them first.
func (n *Net) Down() error {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.down {
		return nil
	}
	n.down = true
	var errs []error
	for _, name := range Nodes {
		nd := n.nodes[name]
		nd.mu.Lock()
		if nd.handle != nil {
			nd.handle.Close()
			nd.handle = nil
		}
		nd.mu.Unlock()
	}
	for _, ns := range []string{n.nodes["a"].ns, n.nodes["b"].ns, n.sw} {
		if _, err := os.Stat("/run/netns/" + ns); err != nil {
			continue
		}
		if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
			errs = append(errs, fmt.Errorf("netlab: ip netns del %s: %v: %s", ns, err, bytes.TrimSpace(out)))
		}
	}
	return errors.Join(errs...)
}

// PIDOf reads a pid file; 0 when missing, empty or not a number.
func PIDOf(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0
	}
	return pid
}

// Alive reports whether pid runs: it exists and is not a zombie.
func Alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 || i+2 >= len(b) {
		return false
	}
	st := b[i+2]
	return st != 'Z' && st != 'X'
}

// Tail returns the last n lines of a file, for error messages.
func Tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
