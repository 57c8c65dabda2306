package importer

import (
	"fmt"
	"net/mail"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// Keepalived imports a keepalived.conf: its virtual servers with their
// real servers and checkers, its mail settings, and its VRRP instances as
// a role source (keepalived keeps doing VRRP).
func Keepalived(path string, opts Options) (*Result, error) {
	src := osSource{}
	b, err := src.read(path, 0)
	if err != nil {
		return nil, err
	}
	return importKeepalived(path, b, src, opts)
}

func importKeepalived(path string, data []byte, src source, opts Options) (*Result, error) {
	if opts.ConfigID == "" {
		h, _ := os.Hostname()
		opts.ConfigID, _, _ = strings.Cut(h, ".")
	}
	rep := newReporter(keepalivedRules)
	p, err := parseKeepalived(path, data, src, opts.ConfigID, rep)
	if err != nil {
		return nil, err
	}
	m := &kMapper{rep: rep, cfg: &config.Config{}, groups: map[string]*kNode{}, seen: map[string]string{}, trackFiles: map[string]*kTrackFile{}}
	m.top(&p.root)
	res, err := finish(FormatKeepalived, path, m.cfg, m.spans, rep)
	if err != nil {
		return nil, err
	}
	res.Files, res.Globs = p.files, p.globs
	return res, nil
}

type kMapper struct {
	rep   *reporter
	cfg   *config.Config
	spans []string
	// groups are the virtual_server_groups by name.
	groups map[string]*kNode
	// seen maps a service key to where it was defined.
	seen map[string]string
	// vs counts the virtual_server blocks, suspended those with ha_suspend.
	vs, suspended int
	suspendedAt   []*kNode
	vrrp          bool
	notifyFIFO    string
	// trackFiles are the top-level track_file blocks by name.
	trackFiles map[string]*kTrackFile
}

func where(n *kNode) string {
	if n.End > n.Line {
		return fmt.Sprintf("%s:%d-%d", n.File, n.Line, n.End)
	}
	return fmt.Sprintf("%s:%d", n.File, n.Line)
}

// whole reports a block with all its lines under one entry.
func (m *kMapper) whole(key string, n *kNode, detail string) {
	m.rep.rule(key, n.File, n.Line, n.End, detail)
}

func (m *kMapper) unknown(n *kNode, in string) {
	m.rep.rule("unknown", n.File, n.Line, blockEnd(n), fmt.Sprintf("%s in %s:", n.Key, in))
}

// blockEnd is the last line of a block node, 0 for a plain statement.
func blockEnd(n *kNode) int {
	if n.Block {
		return n.End
	}
	return 0
}

// vrrpRoots are the top-level blocks that belong to keepalived's VRRP
// side or its process: they stay with keepalived.
var vrrpRoots = map[string]string{
	"vrrp_sync_group": "vrrp_sync_group", "vrrp_script": "vrrp_script", "vrrp_track_file": "vrrp_track_file",
	"static_ipaddress": "static_ipaddress", "static_routes": "static_routes", "static_rules": "static_rules",
	"vrrp_track_process": "vrrp_script", "track_process": "vrrp_script",
}

// processRoots are top-level settings of keepalived's own process.
var processRoots = []string{"net_namespace", "net_namespace_ipvs", "namespace_with_ipsets", "instance", "use_pid_dir",
	"linkbeat_use_polling", "child_wait_time", "bfd_instance", "garp_group", "vrrp_garp_interval"}

func (m *kMapper) top(root *kNode) {
	// Groups first: a virtual_server may name one defined after it.
	for _, n := range root.Kids {
		if n.Key == "virtual_server_group" && len(n.Args) == 1 && n.Block {
			if _, dup := m.groups[n.Args[0]]; !dup {
				m.groups[n.Args[0]] = n
			}
		}
	}
	// Track files too: a FILE_CHECK names one.
	for _, n := range root.Kids {
		if (n.Key == "track_file" || n.Key == "vrrp_track_file") && len(n.Args) == 1 && n.Block {
			if _, dup := m.trackFiles[n.Args[0]]; !dup {
				m.trackFiles[n.Args[0]] = m.trackFile(n)
			}
		}
	}
	var alert kAlert
	for _, n := range root.Kids {
		switch {
		case n.Key == "track_file" || n.Key == "vrrp_track_file":
			// Reported below, once it is known whether a FILE_CHECK uses it.
		case n.Key == "global_defs" && n.Block:
			m.rep.rule("global_defs", n.File, n.Line, 0, "")
			m.globalDefs(n, &alert)
		case n.Key == "vrrp_instance":
			m.vrrp = true
			m.whole("vrrp_instance", n, strings.Join(n.Args, " ")+":")
		case vrrpRoots[n.Key] != "":
			m.whole(vrrpRoots[n.Key], n, n.Key+":")
		case slices.Contains(processRoots, n.Key):
			m.whole("global_defs.*", n, n.Key+":")
		case n.Key == "SSL":
			m.whole("SSL", n, "")
		case n.Key == "virtual_server_group":
			m.whole("virtual_server_group", n, strings.Join(n.Args, " ")+":")
		case n.Key == "virtual_server" && n.Block && len(m.cfg.VirtualServices) >= MaxServices:
			m.rep.ruleAs("virtual_server", Unsupported, n.File, n.Line, n.End, fmt.Sprintf("more than %d virtual services: left out.", MaxServices))
		case n.Key == "virtual_server" && n.Block:
			m.virtualServer(n)
		default:
			m.unknown(n, "the top level")
		}
	}
	if m.vrrp {
		m.cfg.HA.Keepalived = &config.Keepalived{NotifyFIFO: m.notifyFIFO}
	}
	if m.vs > 0 && m.suspended == m.vs && m.vrrp {
		m.cfg.HA.ActOnlyOn = "master"
	}
	for _, n := range m.suspendedAt {
		switch {
		case m.suspended != m.vs:
			m.rep.ruleAs("ha_suspend", Unsupported, n.File, n.Line, 0, "not every virtual_server has it, and lvsmon's ha.act_only_on is director-wide: this service is written on a backup too.")
		case !m.vrrp:
			m.rep.ruleAs("ha_suspend", Unsupported, n.File, n.Line, 0, "no vrrp_instance to learn the role from: lvsmon writes IPVS on this director whatever its role.")
		default:
			m.rep.rule("ha_suspend", n.File, n.Line, 0, "")
		}
	}
	m.reportTrackFiles(root)
	m.alerting(&alert)
}

// kAlert collects global_defs' mail settings.
type kAlert struct {
	to                      []string
	toNode, fromNode, smtpN *kNode
	from, host              string
	port                    int
	timeout                 time.Duration
	helo                    string
}

func (m *kMapper) globalDefs(g *kNode, a *kAlert) {
	for _, n := range g.Kids {
		switch n.Key {
		case "notification_email":
			a.toNode = n
			for _, addr := range n.Kids {
				if len(addr.Args) == 0 && isMailAddress(addr.Key) {
					a.to = append(a.to, addr.Key)
				} else {
					m.rep.ruleAs("notification_email", Unsupported, addr.File, addr.Line, 0, fmt.Sprintf("%q is not a mail address lvsmon can send to: left out.", strings.Join(append([]string{addr.Key}, addr.Args...), " ")))
				}
			}
		case "notification_email_from":
			a.fromNode = n
			if len(n.Args) == 1 && isMailAddress(n.Args[0]) {
				a.from = n.Args[0]
			}
		case "smtp_server":
			a.smtpN = n
			if len(n.Args) >= 1 {
				a.host = n.Args[0]
				a.port = 25
				if len(n.Args) >= 2 {
					if p, err := strconv.Atoi(n.Args[1]); err == nil && p > 0 && p < 65536 {
						a.port = p
					}
				}
			}
		case "smtp_connect_timeout":
			if d, ok := seconds(n); ok {
				a.timeout = max(time.Second, min(d, 10*time.Minute))
			}
			m.rep.rule("smtp_connect_timeout", n.File, n.Line, 0, "")
		case "smtp_helo_name":
			if len(n.Args) == 1 {
				a.helo = n.Args[0]
			}
			m.rep.rule("smtp_helo_name", n.File, n.Line, 0, "")
		case "router_id":
			if len(n.Args) >= 1 {
				m.cfg.Director = n.Args[0]
			}
			m.rep.rule("router_id", n.File, n.Line, 0, "")
		case "smtp_alert", "smtp_alert_checker":
			m.rep.rule("smtp_alert", n.File, n.Line, 0, n.Key+":")
		case "vrrp_notify_fifo":
			if len(n.Args) >= 1 && strings.HasPrefix(n.Args[0], "/") {
				m.notifyFIFO = n.Args[0]
				m.rep.rule("vrrp_notify_fifo", n.File, n.Line, 0, "")
			} else {
				m.rep.ruleAs("vrrp_notify_fifo", Ignored, n.File, n.Line, 0, "not an absolute path: lvsmon reads the JSON dump only.")
			}
		case "lvs_sync_daemon", "lvs_sync_daemon_interface":
			m.rep.rule("lvs_sync_daemon", n.File, n.Line, blockEnd(n), "")
		case "lvs_timeouts":
			m.rep.rule("lvs_timeouts", n.File, n.Line, 0, "")
		case "lvs_flush", "lvs_flush_onstop", "lvs_flush_on_stop":
			m.rep.rule("lvs_flush", n.File, n.Line, 0, n.Key+":")
		default:
			m.rep.rule("global_defs.*", n.File, n.Line, blockEnd(n), n.Key+":")
		}
	}
}

func isMailAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && strings.Contains(a.Address, "@")
}

func (m *kMapper) alerting(a *kAlert) {
	switch {
	case a.smtpN == nil:
		for _, n := range []*kNode{a.toNode, a.fromNode} {
			if n != nil {
				key := n.Key
				m.rep.ruleAs(key, Ignored, n.File, n.Line, 0, "no smtp_server: keepalived sends no mail, and lvsmon gets no alerting section.")
			}
		}
		return
	case a.host == "":
		m.rep.ruleAs("smtp_server", Unsupported, a.smtpN.File, a.smtpN.Line, 0, "no server named: no alerting section.")
		return
	case len(a.to) == 0:
		m.rep.ruleAs("smtp_server", Unsupported, a.smtpN.File, a.smtpN.Line, 0, "no recipient lvsmon can send to: no alerting section.")
		if a.fromNode != nil {
			m.rep.ruleAs("notification_email_from", Unsupported, a.fromNode.File, a.fromNode.Line, 0, "no alerting section.")
		}
		if a.toNode != nil {
			m.rep.ruleAs("notification_email", Unsupported, a.toNode.File, a.toNode.Line, 0, "no alerting section.")
		}
		return
	}
	al := &config.Alerting{To: a.to, From: a.from, SMTP: config.SMTP{Host: a.host, Port: a.port, TLS: "none", HELO: a.helo, Timeout: config.Duration(a.timeout)}}
	m.rep.rule("notification_email", a.toNode.File, a.toNode.Line, 0, fmt.Sprintf("%d recipient(s):", len(a.to)))
	for _, n := range a.toNode.Kids {
		if slices.Contains(a.to, n.Key) {
			m.rep.rule("notification_email", n.File, n.Line, 0, n.Key+":")
		}
	}
	m.rep.rule("smtp_server", a.smtpN.File, a.smtpN.Line, 0, "")
	switch {
	case a.fromNode == nil:
		al.From = "keepalived@localhost"
		m.rep.ruleAs("smtp_server", Changed, a.smtpN.File, a.smtpN.Line, 0, "no notification_email_from: keepalived sends as keepalived@ its host name; the import writes from: keepalived@localhost.")
	case a.from == "":
		al.From = "keepalived@localhost"
		m.rep.ruleAs("notification_email_from", Changed, a.fromNode.File, a.fromNode.Line, 0, "not a mail address lvsmon can send as: the import writes keepalived@localhost.")
	default:
		m.rep.rule("notification_email_from", a.fromNode.File, a.fromNode.Line, 0, "")
	}
	m.cfg.Alerting = al
}

// seconds reads a keepalived time: seconds, decimals allowed.
func seconds(n *kNode) (time.Duration, bool) {
	if len(n.Args) < 1 {
		return 0, false
	}
	f, err := strconv.ParseFloat(n.Args[0], 64)
	if err != nil || f < 0 || f > 1e6 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)).Round(time.Millisecond), true
}

// kTiming is what cascades from virtual server to real server to checker.
type kTiming struct {
	delayLoop   time.Duration
	timeout     time.Duration
	retry       int // -1: the checker's default
	virtualhost string
	alpha       bool
	inhibit     bool
}

// kService is one virtual_server block before it is expanded.
type kService struct {
	n        *kNode
	vs       config.VirtualService
	fwd      string
	timing   kTiming
	reals    []*kNode
	sorry    *kNode
	sorryFwd string
}

func (m *kMapper) virtualServer(n *kNode) {
	m.vs++
	s := &kService{n: n, fwd: "nat", timing: kTiming{delayLoop: 60 * time.Second, timeout: 5 * time.Second, retry: -1}}
	s.vs.OnFailure = "remove"
	s.vs.Scheduler = config.DefaultScheduler
	m.rep.rule("virtual_server", n.File, n.Line, 0, strings.Join(n.Args, " ")+":")
	for _, c := range n.Kids {
		m.vsDirective(s, c)
	}
	members := m.members(n)
	if len(members) == 0 {
		return
	}
	reals, checks := m.reals(s)
	if len(checks) == 1 {
		s.vs.Check = checks[0]
	} else if len(checks) > 1 {
		s.vs.Checks = checks
	}
	for _, mem := range members {
		if len(m.cfg.VirtualServices) >= MaxServices {
			m.rep.ruleAs("unknown", Unsupported, n.File, n.Line, 0, fmt.Sprintf("more than %d virtual services: the rest is left out.", MaxServices))
			return
		}
		vs := s.vs
		vs.Address, vs.Port, vs.FWMark, vs.Name = mem.addr, mem.port, mem.fwmark, cmpOr(mem.name, s.vs.Name)
		fam := "inet"
		if vs.FWMark != 0 {
			vs.Protocol = ""
			if s.vs.Family == "inet6" || len(reals) > 0 && strings.Contains(reals[0].Address, ":") {
				fam = "inet6"
			}
			vs.Family = fam
		} else {
			vs.Family = ""
			if strings.Contains(vs.Address, ":") {
				fam = "inet6"
			}
		}
		key := fmt.Sprintf("%s|%s|%s|%d|%d", vs.Protocol, fam, vs.Address, vs.Port, vs.FWMark)
		if prev, dup := m.seen[key]; dup {
			m.rep.ruleAs("unknown", Unsupported, n.File, n.Line, 0, fmt.Sprintf("virtual_server %s is defined twice (first at %s): this one is left out.", mem.label, prev))
			continue
		}
		if vs.FWMark == 0 && vs.Port == 0 {
			m.rep.ruleAs("unknown", Unsupported, n.File, n.Line, 0, fmt.Sprintf("virtual_server %s: port 0 (all ports) is not imported: write it by hand, with the checks' port.", mem.label))
			continue
		}
		m.seen[key] = where(n)
		vs.Reals = m.fitReals(s, &vs, reals, fam)
		vs.Sorry = m.sorry(s, &vs, fam)
		vs.Check, vs.Checks = cloneCheck(s.vs.Check), cloneChecks(s.vs.Checks)
		m.cfg.VirtualServices = append(m.cfg.VirtualServices, vs)
		m.spans = append(m.spans, where(n)+cmpOr(mem.from, ""))
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func cloneCheck(c *config.Check) *config.Check {
	if c == nil {
		return nil
	}
	cc := *c
	return &cc
}

func cloneChecks(cs []*config.Check) []*config.Check {
	var out []*config.Check
	for _, c := range cs {
		out = append(out, cloneCheck(c))
	}
	return out
}

// vsDirective maps one directive of a virtual_server block.
func (m *kMapper) vsDirective(s *kService, c *kNode) {
	vs := &s.vs
	ok := func(key string) { m.rep.rule(key, c.File, c.Line, 0, "") }
	bad := func(key, why string) {
		m.rep.ruleAs(key, Unsupported, c.File, c.Line, blockEnd(c), why)
	}
	arg := func() string {
		if len(c.Args) == 0 {
			return ""
		}
		return c.Args[0]
	}
	switch c.Key {
	case "real_server":
		s.reals = append(s.reals, c)
	case "lb_algo", "lvs_sched":
		if slices.Contains(config.Schedulers, arg()) {
			vs.Scheduler = arg()
			ok(c.Key)
		} else {
			bad(c.Key, fmt.Sprintf("%q is not an IPVS scheduler lvsmon knows: the service keeps %s.", arg(), config.DefaultScheduler))
		}
	case "lb_kind", "lvs_method":
		if f := kForward(arg()); f != "" {
			s.fwd = f
			m.rep.rule(c.Key, c.File, c.Line, 0, "")
			if len(c.Args) > 1 {
				m.rep.ruleAs(c.Key, Unsupported, c.File, c.Line, 0, "tunnel type and checksum options: lvsmon writes plain ipip tunnels.")
			}
		} else {
			bad(c.Key, fmt.Sprintf("%q is not NAT, DR or TUN: the service keeps nat.", arg()))
		}
	case "persistence_timeout":
		if len(c.Args) == 0 {
			vs.Persistence = config.Duration(360 * time.Second)
			ok(c.Key)
		} else if v, err := strconv.Atoi(arg()); err == nil && v > 0 && v <= 31*24*3600 {
			vs.Persistence = config.Duration(time.Duration(v) * time.Second)
			ok(c.Key)
		} else {
			bad(c.Key, fmt.Sprintf("%q is not a timeout in seconds: no persistence.", arg()))
		}
	case "persistence_granularity":
		if bits, valid := maskBits(arg()); valid {
			vs.PersistenceNetmask = bits
			ok(c.Key)
		} else {
			bad(c.Key, fmt.Sprintf("%q is not a netmask: left out.", arg()))
		}
	case "protocol":
		switch p := strings.ToLower(arg()); p {
		case "tcp", "udp", "sctp":
			vs.Protocol = p
			ok(c.Key)
		default:
			bad(c.Key, fmt.Sprintf("%q is not TCP, UDP or SCTP: the service keeps tcp.", arg()))
		}
	case "ip_family":
		if f := strings.ToLower(arg()); f == "inet" || f == "inet6" {
			vs.Family = f
			ok(c.Key)
		} else {
			bad(c.Key, fmt.Sprintf("%q is not inet or inet6.", arg()))
		}
	case "ha_suspend":
		m.suspended++
		m.suspendedAt = append(m.suspendedAt, c)
	case "alpha":
		vs.Startup = "down"
		s.timing.alpha = true
		ok(c.Key)
	case "omega", "quorum_up", "quorum_down", "persistence_engine", "sorry_server_inhibit":
		ok(c.Key)
	case "quorum", "hysteresis":
		v, err := strconv.Atoi(arg())
		if err != nil || v < 0 || v > 1<<20 {
			bad(c.Key, fmt.Sprintf("%q is not a weight: left out.", arg()))
			return
		}
		if c.Key == "quorum" {
			vs.Quorum = v
		} else {
			vs.Hysteresis = v
		}
		ok(c.Key)
	case "sorry_server":
		s.sorry = c
	case "sorry_server_lvs_method":
		if f := kForward(arg()); f != "" {
			s.sorryFwd = f
			ok(c.Key)
		} else {
			bad(c.Key, fmt.Sprintf("%q is not NAT, DR or TUN.", arg()))
		}
	case "inhibit_on_failure":
		s.timing.inhibit = true
		vs.OnFailure = "quiescent"
		ok(c.Key)
	case "virtualhost":
		s.timing.virtualhost = arg()
		ok(c.Key)
	case "snmp_name":
		vs.Name = arg()
		ok(c.Key)
	case "smtp_alert":
		ok(c.Key)
	case "ops", "hashed", "flag-1", "flag-2", "flag-3", "sh-port", "sh-fallback", "mh-port", "mh-fallback":
		m.rep.rule("scheduler flags", c.File, c.Line, 0, c.Key+":")
	case "weight":
		bad("unknown", "a virtual server's weight is an SNMP/FIFO value keepalived reports; lvsmon has none.")
	default:
		if !m.timingDirective(&s.timing, c) {
			m.unknown(c, "virtual_server")
		}
	}
}

// timingDirective reads the directives that cascade to the checkers; it
// reports whether c was one.
func (m *kMapper) timingDirective(t *kTiming, c *kNode) bool {
	switch c.Key {
	case "delay_loop", "connect_timeout", "delay_before_retry", "warmup":
		d, valid := seconds(c)
		if !valid {
			m.rep.ruleAs(c.Key, Unsupported, c.File, c.Line, 0, fmt.Sprintf("%q is not a time in seconds: left out.", strings.Join(c.Args, " ")))
			return true
		}
		switch c.Key {
		case "delay_loop":
			t.delayLoop = d
		case "connect_timeout":
			t.timeout = d
		}
		m.rep.rule(c.Key, c.File, c.Line, 0, "")
	case "retry", "nb_get_retry":
		v, err := strconv.Atoi(strings.Join(c.Args, ""))
		if err != nil || v < 0 {
			m.rep.ruleAs(c.Key, Unsupported, c.File, c.Line, 0, fmt.Sprintf("%q is not a count: left out.", strings.Join(c.Args, " ")))
			return true
		}
		t.retry = v
		m.rep.rule(c.Key, c.File, c.Line, 0, "")
	case "log_all_failures":
		m.rep.rule(c.Key, c.File, c.Line, 0, "")
	default:
		return false
	}
	return true
}

func kForward(s string) string {
	switch strings.ToUpper(s) {
	case "NAT":
		return "nat"
	case "DR":
		return "dr"
	case "TUN":
		return "tun"
	}
	return ""
}

// maskBits reads a netmask (255.255.255.0) or a prefix length.
func maskBits(s string) (int, bool) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, n >= 1 && n <= 128
	}
	a, err := netip.ParseAddr(s)
	if err != nil || !a.Is4() {
		return 0, false
	}
	b := a.As4()
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
	bits := 0
	for v&(1<<31) != 0 {
		bits++
		v <<= 1
	}
	return bits, v == 0 && bits > 0
}

// kMember is one address service a virtual_server stands for.
type kMember struct {
	addr   string
	port   int
	fwmark uint32
	name   string
	label  string
	from   string // the group member's place, for the service's comment
}

// members expands a virtual_server's head: an address and port, a
// fwmark, or a group of them.
func (m *kMapper) members(n *kNode) []kMember {
	bad := func(why string) []kMember {
		m.rep.ruleAs("virtual_server", Unsupported, n.File, n.Line, n.End, why+": the block is left out.")
		return nil
	}
	switch {
	case len(n.Args) == 2 && n.Args[0] == "group":
		g := m.groups[n.Args[1]]
		if g == nil {
			return bad(fmt.Sprintf("group %q is not defined", n.Args[1]))
		}
		var out []kMember
		for _, e := range g.Kids {
			ms, why := groupMember(e)
			if why != "" {
				m.rep.ruleAs("virtual_server_group", Unsupported, e.File, e.Line, 0, why)
				continue
			}
			for i := range ms {
				ms[i].name = fmt.Sprintf("%s %s", n.Args[1], ms[i].label)
				ms[i].from = fmt.Sprintf(", group %s at %s:%d", n.Args[1], e.File, e.Line)
			}
			out = append(out, ms...)
			if len(out) > MaxServices {
				return bad(fmt.Sprintf("group %q expands to more than %d services", n.Args[1], MaxServices))
			}
		}
		return out
	case len(n.Args) == 2 && n.Args[0] == "fwmark":
		v, err := strconv.ParseUint(n.Args[1], 0, 32)
		if err != nil || v == 0 {
			return bad(fmt.Sprintf("fwmark %q is not a mark", n.Args[1]))
		}
		return []kMember{{fwmark: uint32(v), label: "fwmark " + n.Args[1]}}
	case len(n.Args) == 2:
		a, err := parseIP(n.Args[0])
		p, perr := strconv.Atoi(n.Args[1])
		if err != nil || perr != nil || p < 0 || p > 65535 {
			return bad(fmt.Sprintf("%q is not an address and a port", strings.Join(n.Args, " ")))
		}
		return []kMember{{addr: a.Unmap().String(), port: p, label: net2(a.Unmap().String(), p)}}
	}
	return bad(fmt.Sprintf("%q is not an address and port, fwmark N or group NAME", strings.Join(n.Args, " ")))
}

func net2(addr string, port int) string {
	if strings.Contains(addr, ":") {
		return fmt.Sprintf("[%s]:%d", addr, port)
	}
	return fmt.Sprintf("%s:%d", addr, port)
}

// groupMember expands one line of a virtual_server_group: "ADDR PORT",
// "ADDR-LAST PORT" (a range in the last part of the address) or
// "fwmark N".
func groupMember(e *kNode) ([]kMember, string) {
	if e.Block {
		return nil, fmt.Sprintf("%s: a block in a group", e.Key)
	}
	if e.Key == "fwmark" && len(e.Args) == 1 {
		v, err := strconv.ParseUint(e.Args[0], 0, 32)
		if err != nil || v == 0 {
			return nil, fmt.Sprintf("fwmark %q is not a mark", e.Args[0])
		}
		return []kMember{{fwmark: uint32(v), label: "fwmark " + e.Args[0]}}, ""
	}
	if len(e.Args) != 1 {
		return nil, fmt.Sprintf("%q is not ADDRESS PORT or fwmark N", strings.Join(append([]string{e.Key}, e.Args...), " "))
	}
	port, err := strconv.Atoi(e.Args[0])
	if err != nil || port < 0 || port > 65535 {
		return nil, fmt.Sprintf("%q is not a port", e.Args[0])
	}
	addrs, why := expandRange(e.Key, "-")
	if why != "" {
		return nil, why
	}
	var out []kMember
	for _, a := range addrs {
		out = append(out, kMember{addr: a, port: port, label: net2(a, port)})
	}
	return out, ""
}

// expandRange reads "A" or "A<sep>LAST", where LAST replaces the last
// byte of an IPv4 address or the last group of an IPv6 one (keepalived's
// ranges), or is a whole address (ldirectord's "->").
func expandRange(s, sep string) ([]string, string) {
	first, last, isRange := strings.Cut(s, sep)
	a, err := parseIP(first)
	if err != nil {
		return nil, fmt.Sprintf("%q is not an IP address (host names are not resolved)", first)
	}
	a = a.Unmap()
	if !isRange {
		return []string{a.String()}, ""
	}
	var end netip.Addr
	if b, err := parseIP(last); err == nil {
		end = b.Unmap()
	} else {
		base := 10
		if a.Is6() {
			base = 16
		}
		v, err := strconv.ParseUint(last, base, 16)
		if err != nil {
			return nil, fmt.Sprintf("%q is not the end of a range", last)
		}
		raw := a.AsSlice()
		if a.Is4() {
			if v > 255 {
				return nil, fmt.Sprintf("%q is beyond 255", last)
			}
			raw[3] = byte(v)
		} else {
			raw[14], raw[15] = byte(v>>8), byte(v)
		}
		end, _ = netip.AddrFromSlice(raw)
	}
	if end.Is4() != a.Is4() || end.Less(a) {
		return nil, fmt.Sprintf("%s: the range ends before it starts", s)
	}
	var out []string
	for x := a; ; x = x.Next() {
		if len(out) == MaxRange {
			return nil, fmt.Sprintf("%s holds more than %d addresses", s, MaxRange)
		}
		if _, err := parseIP(x.String()); err != nil {
			return nil, fmt.Sprintf("%s: %v", s, err)
		}
		out = append(out, x.String())
		if x == end || !x.Next().IsValid() {
			break
		}
	}
	return out, ""
}
