package netlab

import (
	"context"
	"fmt"
	"net/netip"
	"time"
)

// SharedAddr is a lab's VIP: the address its pair moves between the
// nodes. Embedded in a lab's Lab, it gives the lab VIPOn and WaitVIP, so
// that every lab answers the same questions about its VIP the same way.
// (It is not called VIP: a Lab has a VIP method, and an embedded VIP
// field would clash with it.)
type SharedAddr struct {
	net  *Net
	addr netip.Addr
	tag  string // the lab's name, which starts its errors
}

// NewSharedAddr is the VIP addr of the lab tag on n.
func NewSharedAddr(n *Net, tag string, addr netip.Addr) SharedAddr {
	return SharedAddr{net: n, addr: addr, tag: tag}
}

// VIPOn reports whether the VIP is on one of node's interfaces.
func (s SharedAddr) VIPOn(node string) (bool, error) {
	on, err := s.net.HasAddr(node, s.addr)
	if err != nil {
		return false, fmt.Errorf("%s: %w", s.tag, err)
	}
	return on, nil
}

// WaitVIP polls (every 10ms) until the VIP's presence on node is want,
// and returns how long that took.
func (s SharedAddr) WaitVIP(ctx context.Context, node string, want bool) (time.Duration, error) {
	d, err := s.net.WaitAddr(ctx, node, s.addr, want)
	if err != nil {
		return d, fmt.Errorf("%s: %w", s.tag, err)
	}
	return d, nil
}
