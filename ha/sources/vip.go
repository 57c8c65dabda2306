package sources

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/lvsmon/lvsmon/ha"
)

// VIP watches whether the configured virtual addresses are on a local
// interface.
//
// It is the one check that works the same for keepalived, heartbeat and
// pacemaker, and it needs no cooperation from them. It is also the check
// that lies in the two cases that matter most. After a crash the VIP stays
// on the dead master (nobody removes it). During a split brain both nodes
// have it. So its reports are meant to be compared with the others, not
// trusted alone.
//
// The source subscribes to the kernel's address notifications, so a change
// is reported at once. It also lists the addresses every Interval in case
// a notification was lost (the kernel drops them when the socket's buffer
// is full).
type VIP struct {
	// Addrs are the VIPs to look for. At least one is required.
	Addrs []netip.Addr
	// NetNS, when set, is the path of a network namespace
	// (/run/netns/NAME) whose interfaces are watched instead of the
	// caller's.
	NetNS string
	// Interval is how often the addresses are listed and reported;
	// default 1s.
	Interval time.Duration
	// Log receives the source's own log lines; nil drops them.
	Log *slog.Logger
}

// Run watches the addresses until ctx ends. Its reports have Running true
// (there is no daemon behind this source) and one VIPPresence per Addrs
// entry, in the same order.
func (v *VIP) Run(ctx context.Context, report func(ha.Report)) error {
	if len(v.Addrs) == 0 {
		return errors.New("vip: no addresses to watch")
	}
	for _, a := range v.Addrs {
		if !a.IsValid() {
			return errors.New("vip: invalid (zero) address in Addrs")
		}
	}
	log := logger(v.Log, ha.SourceVIP)
	interval := positive(v.Interval, time.Second)
	for {
		err := v.session(ctx, log, interval, report)
		if ctx.Err() != nil {
			return nil
		}
		log.Warn("cannot read interface addresses", "err", err)
		report(ha.Report{Source: ha.SourceVIP, Time: time.Now(), Running: true, Err: err})
		if !sleepCtx(ctx, interval) {
			return nil
		}
	}
}

// session watches with one netlink handle and subscription until ctx ends
// (nil) or listing the addresses fails (the error).
func (v *VIP) session(ctx context.Context, log *slog.Logger, interval time.Duration, report func(ha.Report)) error {
	ns := netns.None()
	where := "this network namespace"
	if v.NetNS != "" {
		var err error
		if ns, err = netns.GetFromPath(v.NetNS); err != nil {
			return fmt.Errorf("vip: network namespace %s: %w", v.NetNS, err)
		}
		defer ns.Close()
		where = "network namespace " + v.NetNS
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		return fmt.Errorf("vip: netlink socket in %s: %w", where, err)
	}
	defer h.Close()
	// A netlink dump from the kernel does not hang, but nothing here may
	// block forever.
	if err := h.SetSocketTimeout(5 * time.Second); err != nil {
		return fmt.Errorf("vip: netlink socket in %s: %w", where, err)
	}

	var (
		updates chan netlink.AddrUpdate
		done    chan struct{}
	)
	subscribe := func() {
		ch := make(chan netlink.AddrUpdate, 64)
		d := make(chan struct{})
		opts := netlink.AddrSubscribeOptions{
			ErrorCallback: func(err error) {
				log.Debug("address notification", "err", err)
			},
		}
		if v.NetNS != "" {
			opts.Namespace = &ns
		}
		if err := netlink.AddrSubscribeWithOptions(ch, d, opts); err != nil {
			log.Warn("cannot subscribe to address changes; polling only", "where", where, "err", err)
			return
		}
		updates, done = ch, d
	}
	unsubscribe := func() {
		if done == nil {
			return
		}
		close(done)
		// The library's reader goroutine sends into the channel until it
		// sees the socket closed; drain it so it can end.
		for range updates {
		}
		updates, done = nil, nil
	}
	defer unsubscribe()
	subscribe()

	var last []ha.VIPPresence
	check := func(always bool) error {
		vips, err := v.list(h)
		if err != nil {
			return fmt.Errorf("vip: listing addresses in %s: %w", where, err)
		}
		if always || !sameVIPs(vips, last) {
			if !sameVIPs(vips, last) {
				log.Debug("VIP presence changed", "vips", fmt.Sprint(vips))
			}
			last = vips
			report(ha.Report{Source: ha.SourceVIP, Time: time.Now(), Running: true, VIPs: append([]ha.VIPPresence(nil), vips...)})
		}
		return nil
	}
	if err := check(true); err != nil {
		return err
	}
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			if updates == nil {
				subscribe()
			}
			if err := check(true); err != nil {
				return err
			}
		case _, ok := <-updates:
			if !ok {
				log.Warn("address notifications ended; polling until they can be restored")
				close(done)
				updates, done = nil, nil
				continue
			}
			// One change often comes with more (an address and its
			// route, a VIP on two families); list once for all of them.
			for more := true; more; {
				select {
				case _, more = <-updates:
				default:
					more = false
				}
			}
			if err := check(false); err != nil {
				return err
			}
		}
	}
}

// list returns the presence of each of v.Addrs.
func (v *VIP) list(h *netlink.Handle) ([]ha.VIPPresence, error) {
	var addrs []netlink.Addr
	var err error
	for try := 0; try < 3; try++ {
		addrs, err = h.AddrList(nil, netlink.FAMILY_ALL)
		if !errors.Is(err, netlink.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	where := make(map[netip.Addr]int, len(addrs))
	for _, a := range addrs {
		if a.IPNet == nil {
			continue
		}
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ip = ip.Unmap()
		if _, dup := where[ip]; !dup {
			where[ip] = a.LinkIndex
		}
	}
	out := make([]ha.VIPPresence, len(v.Addrs))
	names := map[int]string{}
	for i, want := range v.Addrs {
		want = want.Unmap().WithZone("")
		out[i].Addr = v.Addrs[i]
		idx, ok := where[want]
		if !ok {
			continue
		}
		out[i].Present = true
		name, ok := names[idx]
		if !ok {
			if l, err := h.LinkByIndex(idx); err == nil {
				name = l.Attrs().Name
			} else {
				name = fmt.Sprintf("ifindex %d", idx)
			}
			names[idx] = name
		}
		out[i].Interface = name
	}
	return out, nil
}

func sameVIPs(a, b []ha.VIPPresence) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
