package config

// ha.self_checks and ha.handover: checks of the director itself and what
// lvsmon does while they fail (make the HA stack move the VIPs away).

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// Built-in self check types: lvsmon's own health rather than a probe.
const (
	// SelfCheckCollector fails while the collector's IPVS reads fail or
	// have stopped.
	SelfCheckCollector = "collector"
	// SelfCheckReconciler fails while the reconciler's writes fail.
	SelfCheckReconciler = "reconciler"
)

// SelfCheck is one check of the director itself: a check of any
// registered type (tcp to a local port, http to the sorry server, ping
// to the gateway...) with its own address and port, or a built-in
// (collector, reconciler). Rise and fall count as for real servers.
type SelfCheck struct {
	// Name labels the check in events, metrics and the status; default
	// the type, then ":port" or " address:port".
	Name  string `yaml:"name"`
	Check `yaml:",inline"`
}

// Handover says how a director whose self checks fail hands its VIPs to
// the peer, the HA stack's own way.
type Handover struct {
	Keepalived *HandoverKeepalived `yaml:"keepalived"`
	Heartbeat  *HandoverHeartbeat  `yaml:"heartbeat"`
	Pacemaker  *HandoverPacemaker  `yaml:"pacemaker"`
	// StateFile holds the verdict for `lvsmon self-check` (keepalived's
	// vrrp_script): "ok" or "sick <reason>". Default
	// <data_dir>/self-check.
	StateFile string `yaml:"state_file"`
	// PeerCheck is a check of the peer (its lvsmon's /-/healthy, its ssh
	// port...): while it fails, lvsmon does not hand over (never to a
	// worse node). Without it the stack's own election decides (a peer
	// that is down or itself sick does not win a VRRP election).
	PeerCheck *Check `yaml:"peer_check"`
}

// HandoverKeepalived is a keepalived track_file (keepalived ≥ 2.0): the
// instance's priority changes by the file's value times the track_file's
// weight in keepalived.conf (default 1).
type HandoverKeepalived struct {
	TrackFile string `yaml:"track_file"`
	// Weight is the value written while the self checks fail (0 while
	// they pass). Default -100: with keepalived's weight 1, priority
	// 150 becomes 50, below a peer's 100. -254 or lower puts the
	// instance in FAULT instead (the harsh way).
	Weight int `yaml:"weight"`
}

// HandoverHeartbeat runs heartbeat's hb_standby while the self checks
// fail and, with Failback, hb_takeover local when they pass again.
type HandoverHeartbeat struct {
	HBStandby  string `yaml:"hb_standby"`  // default /usr/share/heartbeat/hb_standby
	HBTakeover string `yaml:"hb_takeover"` // default /usr/share/heartbeat/hb_takeover
	// Resources are what hb_standby gives away: all (default) or local.
	Resources string `yaml:"resources"`
	// Failback takes this node's own resources back when healthy again;
	// set it as ha.cf's auto_failback (default true, as auto_failback on).
	Failback *bool    `yaml:"failback"`
	Timeout  Duration `yaml:"timeout"` // default 30s
}

// HandoverPacemaker sets a transient node attribute through
// crm_attribute: 1 while the self checks fail, 0 when they pass; a
// location rule in the CIB (README) keeps the VIPs off a node where it
// is 1.
type HandoverPacemaker struct {
	Attribute    string   `yaml:"attribute"`     // default lvsmon-sick
	CrmAttribute string   `yaml:"crm_attribute"` // default crm_attribute (PATH)
	Node         string   `yaml:"node"`          // default ha.pacemaker.node, else the host name
	Timeout      Duration `yaml:"timeout"`       // default 30s
}

// DefaultHandoverWeight is the track_file value while sick.
const DefaultHandoverWeight = -100

var attrNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.-]{0,63}$`)

var selfCheckNameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:/ -]{0,62}$`)

func (c *Config) selfCheckDefaults() {
	h := &c.HA
	for _, sc := range h.SelfChecks {
		if sc == nil {
			continue
		}
		defaultCheck(&sc.Check)
		if sc.Name == "" {
			sc.Name = sc.Type
			switch {
			case sc.Address != "" && sc.Port > 0:
				sc.Name += fmt.Sprintf(" %s:%d", sc.Address, sc.Port)
			case sc.Address != "":
				sc.Name += " " + sc.Address
			case sc.Port > 0:
				sc.Name += fmt.Sprintf(":%d", sc.Port)
			}
		}
		if !SelfCheckBuiltin(sc.Type) && sc.Address == "" {
			sc.Address = "127.0.0.1"
		}
	}
	if ho := h.Handover; ho != nil {
		if ho.StateFile == "" {
			ho.StateFile = filepath.Join(c.DataDir, "self-check")
		}
		if k := ho.Keepalived; k != nil && k.Weight == 0 {
			k.Weight = DefaultHandoverWeight
		}
		if ho.PeerCheck != nil {
			defaultCheck(ho.PeerCheck)
		}
		if p := ho.Pacemaker; p != nil {
			if p.Attribute == "" {
				p.Attribute = "lvsmon-sick"
			}
			if p.CrmAttribute == "" {
				p.CrmAttribute = "crm_attribute"
			}
			if p.Node == "" && h.Pacemaker != nil {
				p.Node = h.Pacemaker.Node
			}
			if p.Node == "" {
				p.Node, _ = os.Hostname()
			}
			if p.Timeout == 0 {
				p.Timeout = Duration(30 * time.Second)
			}
		}
		if hb := ho.Heartbeat; hb != nil {
			if hb.HBStandby == "" {
				hb.HBStandby = "/usr/share/heartbeat/hb_standby"
			}
			if hb.HBTakeover == "" {
				hb.HBTakeover = "/usr/share/heartbeat/hb_takeover"
			}
			if hb.Resources == "" {
				hb.Resources = "all"
			}
			if hb.Failback == nil {
				t := true
				hb.Failback = &t
			}
			if hb.Timeout == 0 {
				hb.Timeout = Duration(30 * time.Second)
			}
		}
	}
}

// defaultCheck fills a check's schedule and type defaults: a service's
// checks and the self checks alike.
func defaultCheck(c *Check) {
	if c.Interval == 0 {
		c.Interval = Duration(DefaultInterval)
	}
	if c.Timeout == 0 {
		c.Timeout = Duration(DefaultTimeout)
	}
	if c.Rise == 0 {
		c.Rise = 1
	}
	if c.Fall == 0 {
		c.Fall = 1
	}
	if (c.Type == "http" || c.Type == "https") && c.Path == "" {
		c.Path = "/"
	}
	c.applyTypeDefaults()
}

func (v *validator) selfChecks(c *Config) {
	h := &c.HA
	seen := map[string]bool{}
	for i, sc := range h.SelfChecks {
		p := fmt.Sprintf("ha.self_checks[%d]", i)
		if sc == nil {
			v.errf(p, "an empty self check")
			continue
		}
		if !selfCheckNameRe.MatchString(sc.Name) {
			v.errf(p+".name", "%q: want 1-63 letters, digits, spaces and _ . : / -", sc.Name)
		} else if seen[sc.Name] {
			v.errf(p+".name", "%q is used twice: give each self check its own name", sc.Name)
		}
		seen[sc.Name] = true
		switch sc.Type {
		case SelfCheckCollector, SelfCheckReconciler:
			for _, k := range []string{"address", "port", "timeout", "retries", "path", "expect"} {
				if v.written(p + "." + k) {
					v.errf(p+"."+k, "does nothing for the built-in %s check", sc.Type)
				}
			}
			v.checkSchedule(p, &sc.Check)
		default:
			v.check(p, &sc.Check)
			v.noWeight(p, &sc.Check)
			if t, ok := LookupCheckType(sc.Type); ok && !t.NoPort && sc.Port == 0 {
				v.errf(p+".port", "a %s self check needs the port to check", sc.Type)
			}
		}
	}
	ho := h.Handover
	if ho == nil {
		return
	}
	if len(h.SelfChecks) == 0 {
		v.errf("ha.handover", "needs ha.self_checks: without them there is nothing to hand over for")
	}
	if !filepath.IsAbs(ho.StateFile) {
		v.errf("ha.handover.state_file", "%q must be an absolute path", ho.StateFile)
	}
	if k := ho.Keepalived; k != nil {
		switch {
		case k.TrackFile == "":
			v.errf("ha.handover.keepalived.track_file", "required: the file keepalived's track_file block names")
		case !filepath.IsAbs(k.TrackFile):
			v.errf("ha.handover.keepalived.track_file", "%q must be an absolute path", k.TrackFile)
		case k.TrackFile == ho.StateFile:
			v.errf("ha.handover.keepalived.track_file", "%q is also the state_file", k.TrackFile)
		}
		if k.Weight > -1 || k.Weight < -254 {
			v.errf("ha.handover.keepalived.weight", "%d: want -1 to -254 (the priority drop; -254 puts the instance in FAULT)", k.Weight)
		}
	}
	if hb := ho.Heartbeat; hb != nil {
		for k, p := range map[string]string{"hb_standby": hb.HBStandby, "hb_takeover": hb.HBTakeover} {
			if !filepath.IsAbs(p) {
				v.errf("ha.handover.heartbeat."+k, "%q must be an absolute path", p)
			}
		}
		if hb.Resources != "all" && hb.Resources != "local" {
			v.errf("ha.handover.heartbeat.resources", "%q: want all or local", hb.Resources)
		}
		if d := hb.Timeout.D(); d < time.Second || d > 10*time.Minute {
			v.errf("ha.handover.heartbeat.timeout", "%s: want 1s to 10m", d)
		}
	}
	if p := ho.Pacemaker; p != nil {
		if !attrNameRe.MatchString(p.Attribute) {
			v.errf("ha.handover.pacemaker.attribute", "%q is not a node attribute name (letters, digits, _ . -)", p.Attribute)
		}
		if strings.Contains(p.CrmAttribute, "/") && !filepath.IsAbs(p.CrmAttribute) {
			v.errf("ha.handover.pacemaker.crm_attribute", "%q: use an absolute path (or a bare name looked up in PATH)", p.CrmAttribute)
		}
		if p.Node == "" {
			v.errf("ha.handover.pacemaker.node", "required: the host name is unknown")
		}
		if d := p.Timeout.D(); d < time.Second || d > 10*time.Minute {
			v.errf("ha.handover.pacemaker.timeout", "%s: want 1s to 10m", d)
		}
	}
	if pc := ho.PeerCheck; pc != nil {
		if pc.Address == "" {
			v.errf("ha.handover.peer_check.address", "required: the peer director's address")
		}
		v.check("ha.handover.peer_check", pc)
		v.noWeight("ha.handover.peer_check", pc)
		if t, ok := LookupCheckType(pc.Type); ok && !t.NoPort && pc.Port == 0 {
			v.errf("ha.handover.peer_check.port", "a %s check needs the port to check", pc.Type)
		}
	}
}

// checkSchedule validates what a built-in self check reads: interval,
// rise and fall.
func (v *validator) checkSchedule(p string, c *Check) {
	if c.Interval.D() < 100*time.Millisecond {
		v.errf(p+".interval", "%s is too short: at least 100ms", c.Interval.D())
	}
	for k, n := range map[string]int{"rise": c.Rise, "fall": c.Fall} {
		if n < 1 || n > 100 {
			v.errf(p+"."+k, "%s %d is out of range 1-100", k, n)
		}
	}
}

// SelfCheckBuiltin says whether t is a built-in self check type.
func SelfCheckBuiltin(t string) bool { return t == SelfCheckCollector || t == SelfCheckReconciler }
