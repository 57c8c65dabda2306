package config

import (
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"time"
)

// HA says how lvsmon learns the director's role in its HA pair. Every
// source is optional and several may run at once: keepalived's own view
// is the most precise, the VIPs and the wire cross-check it (a stale VIP
// after a crash, two masters after a partition).
type HA struct {
	// ActOnlyOn gates the reconciler's IPVS writes: "any" (default: every
	// node writes, as ldirectord on both directors does) or "master"
	// (only while at least one instance is MASTER; a backup, or a node
	// whose role is not known yet, only observes).
	ActOnlyOn string `yaml:"act_only_on"`
	// VIPs are watched on the local interfaces. Default: the addresses of
	// the virtual services, which on an LVS director are the VIPs.
	VIPs []string `yaml:"vips"`
	// NetNS is a network namespace (a name under /run/netns or a path)
	// whose interfaces and wire are watched instead of lvsmon's own, for
	// keepalived started with -s or under `ip netns exec`.
	NetNS string `yaml:"netns"`
	// Grace is how long sources must disagree before it is reported;
	// default 3s (a normal failover moves the state before the VIP).
	Grace Duration `yaml:"grace"`
	// Interval is how often VIPs, heartbeat and pacemaker are polled;
	// default 1s.
	Interval   Duration    `yaml:"interval"`
	Keepalived *Keepalived `yaml:"keepalived"`
	Heartbeat  *Heartbeat  `yaml:"heartbeat"`
	Pacemaker  *Pacemaker  `yaml:"pacemaker"`
	VRRP       *VRRPWire   `yaml:"vrrp"`
	// SelfChecks are checks of this director itself; while they fail,
	// Handover makes the HA stack move the VIPs to the peer.
	SelfChecks []*SelfCheck `yaml:"self_checks"`
	Handover   *Handover    `yaml:"handover"`

	// Addrs are VIPs parsed (filled by validation).
	Addrs []netip.Addr `yaml:"-"`
}

// Keepalived reads keepalived's JSON dump and follows its notify FIFO.
type Keepalived struct {
	// PIDFile is keepalived's parent pid file (-p); signal 36 is sent to
	// it for a JSON dump. Default /run/keepalived.pid.
	PIDFile string `yaml:"pid_file"`
	// DumpDir is keepalived's TMPDIR, where it writes keepalived.json.
	// Give each keepalived its own: the file name has no instance in it.
	// Default /tmp.
	DumpDir string `yaml:"dump_dir"`
	// NotifyFIFO is keepalived's vrrp_notify_fifo, for instant
	// transitions; without it the dump is only read every Refresh.
	NotifyFIFO string `yaml:"notify_fifo"`
	// Refresh is how often the full dump is read besides FIFO EOFs;
	// default 30s.
	Refresh Duration `yaml:"refresh"`
}

// Heartbeat runs cl_status.
type Heartbeat struct {
	ClStatus string   `yaml:"cl_status"` // default cl_status (PATH)
	Timeout  Duration `yaml:"timeout"`   // default 5s
}

// Pacemaker runs crm_mon.
type Pacemaker struct {
	CrmMon string `yaml:"crm_mon"` // default crm_mon (PATH)
	// Resource is the resource or group that holds the VIPs; the node
	// running it is MASTER.
	Resource string   `yaml:"resource"`
	Node     string   `yaml:"node"`    // default: the host name
	Timeout  Duration `yaml:"timeout"` // default 5s
}

// VRRPWire listens for VRRP adverts.
type VRRPWire struct {
	// Interface to listen on; empty for all.
	Interface string `yaml:"interface"`
}

// Enabled says whether any role source is configured.
func (h *HA) Enabled() bool {
	return h.Keepalived != nil || h.Heartbeat != nil || h.Pacemaker != nil || h.VRRP != nil || len(h.VIPs) > 0
}

// NetNSPath is NetNS as a path ("" when unset).
func (h *HA) NetNSPath() string {
	if h.NetNS == "" || filepath.IsAbs(h.NetNS) {
		return h.NetNS
	}
	return filepath.Join("/run/netns", h.NetNS)
}

func (c *Config) haDefaults() {
	h := &c.HA
	if h.ActOnlyOn == "" {
		h.ActOnlyOn = "any"
	}
	c.selfCheckDefaults()
	if h.Grace == 0 {
		h.Grace = Duration(3 * time.Second)
	}
	if h.Interval == 0 {
		h.Interval = Duration(time.Second)
	}
	if k := h.Keepalived; k != nil {
		if k.PIDFile == "" {
			k.PIDFile = "/run/keepalived.pid"
		}
		if k.DumpDir == "" {
			k.DumpDir = os.TempDir()
		}
		if k.Refresh == 0 {
			k.Refresh = Duration(30 * time.Second)
		}
	}
	if hb := h.Heartbeat; hb != nil {
		if hb.ClStatus == "" {
			hb.ClStatus = "cl_status"
		}
		if hb.Timeout == 0 {
			hb.Timeout = Duration(5 * time.Second)
		}
	}
	if p := h.Pacemaker; p != nil {
		if p.CrmMon == "" {
			p.CrmMon = "crm_mon"
		}
		if p.Node == "" {
			p.Node, _ = os.Hostname()
		}
		if p.Timeout == 0 {
			p.Timeout = Duration(5 * time.Second)
		}
	}
}

func (v *validator) ha(c *Config) {
	h := &c.HA
	switch h.ActOnlyOn {
	case "any", "master":
	default:
		v.errf("ha.act_only_on", "%q: want any or master", h.ActOnlyOn)
	}
	if h.ActOnlyOn == "master" && !h.Enabled() {
		v.errf("ha.act_only_on", "master needs a role source (ha.keepalived, heartbeat, pacemaker, vrrp or vips): without one this director would never write")
	}
	if g := h.Grace.D(); g < 0 || g > time.Hour {
		v.errf("ha.grace", "%s: want 0 to 1h", g)
	}
	if i := h.Interval.D(); i < 100*time.Millisecond || i > 10*time.Minute {
		v.errf("ha.interval", "%s: want 100ms to 10m", i)
	}
	seen := map[netip.Addr]bool{}
	for i, s := range h.VIPs {
		a, err := parseAddr(s)
		if err != nil {
			v.errf(fmt.Sprintf("ha.vips[%d]", i), "%v", err)
			continue
		}
		if seen[a] {
			v.errf(fmt.Sprintf("ha.vips[%d]", i), "%s is listed twice", a)
		}
		seen[a] = true
		h.Addrs = append(h.Addrs, a)
	}
	if len(h.VIPs) == 0 && h.Enabled() {
		// Default: the virtual services' addresses.
		for _, vs := range c.VirtualServices {
			if a := vs.Key.Addr; a.IsValid() && !vs.Key.IsFWMark() && !seen[a] {
				seen[a] = true
				h.Addrs = append(h.Addrs, a)
			}
		}
	}
	if h.NetNS != "" {
		if _, err := os.Stat(h.NetNSPath()); err != nil {
			v.errf("ha.netns", "%q: %v (create it with ip netns add, or give a path)", h.NetNS, err)
		}
	}
	if k := h.Keepalived; k != nil {
		if k.Refresh.D() < time.Second {
			v.errf("ha.keepalived.refresh", "%s is too short: at least 1s", k.Refresh.D())
		}
		for path, val := range map[string]string{"pid_file": k.PIDFile, "dump_dir": k.DumpDir, "notify_fifo": k.NotifyFIFO} {
			if val != "" && !filepath.IsAbs(val) {
				v.errf("ha.keepalived."+path, "%q must be an absolute path", val)
			}
		}
	}
	v.selfChecks(c)
	if p := h.Pacemaker; p != nil && p.Resource == "" {
		v.errf("ha.pacemaker.resource", "required: the resource or group that holds the VIPs")
	}
	for path, d := range map[string]*Duration{"ha.heartbeat.timeout": timeoutOf(h.Heartbeat), "ha.pacemaker.timeout": timeoutOfP(h.Pacemaker)} {
		if d != nil && (d.D() < 100*time.Millisecond || d.D() > time.Minute) {
			v.errf(path, "%s: want 100ms to 1m", d.D())
		}
	}
}

func timeoutOf(h *Heartbeat) *Duration {
	if h == nil {
		return nil
	}
	return &h.Timeout
}

func timeoutOfP(p *Pacemaker) *Duration {
	if p == nil {
		return nil
	}
	return &p.Timeout
}
