package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// Pair is what every lab answers the same way about its two nodes: their
// namespaces and addresses, and the VIP its HA stack moves between them.
// Embedded in a lab's Lab, it gives the lab those methods.
type Pair struct {
	net *Net
	vip netip.Addr
	tag string // the lab's name, which starts its errors
}

// NewPair is the pair of lab tag on n, with VIP vip.
func NewPair(n *Net, tag string, vip netip.Addr) Pair {
	return Pair{net: n, vip: vip, tag: tag}
}

// NetNSName is the name of node's network namespace (for ip -n).
func (p Pair) NetNSName(node string) string { return p.net.NetNSName(node) }

// NetNS is the path of node's network namespace, /run/netns/NAME.
func (p Pair) NetNS(node string) string { return p.net.NetNS(node) }

// SwitchNetNS is the path of the namespace holding the bridge.
func (p Pair) SwitchNetNS() string { return p.net.SwitchNetNS() }

// Addr is node's own address on eth0.
func (p Pair) Addr(node string) netip.Addr { return p.net.Addr(node) }

// VIP is the pair's virtual address.
func (p Pair) VIP() netip.Addr { return p.vip }

// VIPOn reports whether the VIP is on one of node's interfaces.
func (p Pair) VIPOn(node string) (bool, error) {
	on, err := p.net.HasAddr(node, p.vip)
	if err != nil {
		return false, fmt.Errorf("%s: %w", p.tag, err)
	}
	return on, nil
}

// WaitVIP polls (every 10ms) until the VIP's presence on node is want,
// and returns how long that took.
func (p Pair) WaitVIP(ctx context.Context, node string, want bool) (time.Duration, error) {
	d, err := p.net.WaitAddr(ctx, node, p.vip, want)
	if err != nil {
		return d, fmt.Errorf("%s: %w", p.tag, err)
	}
	return d, nil
}
