package importer

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// piranha's lvs.cf, as its own code reads it: piranha 0.5 (lvsconfig.c,
// lvs.c and nanny.c of Red Hat's piranha, 2000-2001; the newest source
// found). Later piranha releases (RHEL 4-6) added directives whose code
// was not found (send_program, expect_program, use_regex, quiesce_server,
// ...): they are reported as unsupported, never given a guessed meaning.

// pDirective is one "key = value" line of lvs.cf.
type pDirective struct {
	key, val string
	line     int
}

// pBlock is a virtual, failover or server block.
type pBlock struct {
	kind, name string
	line, end  int
	dirs       []pDirective
	servers    []*pBlock
}

func (b *pBlock) get(key string) (pDirective, bool) {
	for i := len(b.dirs) - 1; i >= 0; i-- {
		if b.dirs[i].key == key {
			return b.dirs[i], true
		}
	}
	return pDirective{}, false
}

// The directives piranha 0.5 reads (lvsconfig.c); any other is an error
// there (LVS_ERROR_BADCOMMAND), and here, but for those of later releases.
var (
	pGlobalKeys  = []string{"service", "primary", "backup", "backup_active", "nat_nmask", "nat_router", "debug_level", "ipvsadm", "keepalive", "deadtime", "rsh_command", "heartbeat", "heartbeat_port", "sync", "network"}
	pVirtualKeys = []string{"address", "active", "vip_nmask", "load_monitor", "persistent", "pmask", "send", "expect", "start_cmd", "stop_cmd", "timeout", "client_monitor", "reentry", "port", "protocol", "scheduler", "master", "dirs"}
	pServerKeys  = []string{"address", "active", "weight"}
	// pLater are directives of later piranha releases, whose code was not
	// found: reported, not mapped.
	pLater = []string{"serial_no", "primary_private", "primary_shared", "backup_private", "backup_shared", "monitor_links", "syncdaemon",
		"syncd_iface", "syncd_id", "tcp_timeout", "tcpfin_timeout", "udp_timeout", "hard_shutdown", "send_program", "expect_program",
		"use_regex", "quiesce_server", "sorry_server", "fallback", "debug", "port_nmask"}
)

var pKeyLine = regexp.MustCompile(`^([A-Za-z0-9_]+)\s*=\s*(.*)$`)
var pBlockLine = regexp.MustCompile(`^(virtual|failover|server)\s+([^\s{}=]+)\s*\{$`)

// parsePiranha reads lvs.cf: "key = value" lines, "#" comments,
// "virtual NAME {" and "failover NAME {" blocks at the top, "server
// NAME {" blocks in a virtual, each closed by "}" on its own line.
func parsePiranha(file string, data []byte) ([]pDirective, []*pBlock, error) {
	if err := checkText(file, data); err != nil {
		return nil, nil, err
	}
	var globals []pDirective
	var blocks []*pBlock
	var stack []*pBlock
	for i, raw := range strings.Split(string(data), "\n") {
		no := i + 1
		t := strings.TrimSpace(pDecomment(strings.TrimRight(raw, "\r")))
		if t == "" {
			continue
		}
		if t == "}" {
			if len(stack) == 0 {
				return nil, nil, &Error{File: file, Line: no, Msg: "a } that closes no block"}
			}
			stack[len(stack)-1].end = no
			stack = stack[:len(stack)-1]
			continue
		}
		if m := pBlockLine.FindStringSubmatch(t); m != nil {
			b := &pBlock{kind: m[1], name: m[2], line: no}
			switch {
			case m[1] == "server" && len(stack) == 1 && stack[0].kind == "virtual":
				stack[0].servers = append(stack[0].servers, b)
			case m[1] != "server" && len(stack) == 0:
				blocks = append(blocks, b)
			default:
				return nil, nil, &Error{File: file, Line: no, Msg: fmt.Sprintf("a %s block cannot stand here (server blocks go in a virtual, virtual and failover blocks at the top)", m[1])}
			}
			stack = append(stack, b)
			continue
		}
		m := pKeyLine.FindStringSubmatch(t)
		if m == nil {
			return nil, nil, &Error{File: file, Line: no, Msg: "neither \"key = value\", a block nor a } (piranha refuses it too)"}
		}
		d := pDirective{key: m[1], val: pUnquote(strings.TrimSpace(m[2])), line: no}
		known := pGlobalKeys
		if len(stack) > 0 {
			known = pVirtualKeys
			if stack[len(stack)-1].kind == "server" {
				known = pServerKeys
			}
		}
		if !slices.Contains(known, d.key) && !slices.Contains(pLater, d.key) {
			return nil, nil, &Error{File: file, Line: no, Msg: fmt.Sprintf("unknown directive %q here (piranha refuses it too)", d.key)}
		}
		if len(stack) == 0 {
			globals = append(globals, d)
		} else {
			stack[len(stack)-1].dirs = append(stack[len(stack)-1].dirs, d)
		}
	}
	if len(stack) > 0 {
		b := stack[len(stack)-1]
		return nil, nil, &Error{File: file, Line: b.line, Msg: fmt.Sprintf("unbalanced braces: the %s block opened here is never closed", b.kind)}
	}
	return globals, blocks, nil
}

// pDecomment cuts a line at a # outside double quotes.
func pDecomment(s string) string {
	quote := false
	for i := 0; i < len(s); i++ {
		switch {
		case s[i] == '"':
			quote = !quote
		case s[i] == '#' && !quote:
			return s[:i]
		}
	}
	return s
}

func pUnquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// pUnescape decodes nanny's escapes in send and expect: \n, \r, \t and a
// backslash before any other character standing for that character.
func pUnescape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' || i+1 == len(s) {
			b.WriteByte(s[i])
			continue
		}
		i++
		switch s[i] {
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String()
}

// pServices are the port names piranha's getservbyname finds on any
// system; the import reads no /etc/services of its own machine.
var pServices = map[string]int{"ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110,
	"nntp": 119, "imap": 143, "imap2": 143, "ldap": 389, "https": 443, "imaps": 993, "pop3s": 995, "mysql": 3306}

// Piranha imports piranha's lvs.cf read from data; path names it in the
// report.
func Piranha(path string, data []byte) (*Result, error) {
	globals, blocks, err := parsePiranha(path, data)
	if err != nil {
		return nil, err
	}
	m := &pMapper{file: path, rep: newReporter(piranhaRules), cfg: &config.Config{}}
	fwd := "nat"
	fos := false
	for _, d := range globals {
		switch d.key {
		case "network":
			f, ok := map[string]string{"nat": "nat", "direct": "dr", "tunnel": "tun"}[d.val]
			if !ok {
				return nil, &Error{File: path, Line: d.line, Msg: fmt.Sprintf("network %q: want nat, direct or tunnel (piranha refuses it too)", d.val)}
			}
			fwd = f
			m.ok("network", d, "")
		case "service":
			switch d.val {
			case "lvs":
				m.ok("service", d, "")
			case "fos":
				fos = true
				m.as("service", Unsupported, d, "fos: piranha runs the failover services, not the virtual servers; lvsmon runs no failover services, and imports no virtual server of this file.")
			default:
				return nil, &Error{File: path, Line: d.line, Msg: fmt.Sprintf("service %q: want lvs or fos (piranha refuses it too)", d.val)}
			}
		case "primary", "backup", "backup_active", "heartbeat", "heartbeat_port", "keepalive", "deadtime", "nat_router", "nat_nmask":
			m.ok("pulse", d, "")
		case "rsh_command", "sync":
			m.ok("rsh_command, sync", d, "")
		case "debug_level", "ipvsadm":
			m.ok("debug_level, ipvsadm", d, "")
		default:
			m.ok("later", d, "")
		}
	}
	for _, b := range blocks {
		if b.kind == "failover" {
			m.rep.rule("failover", path, b.line, b.end, "failover "+b.name+":")
			continue
		}
		if fos {
			m.rep.ruleAs("virtual", Ignored, path, b.line, b.end, "service = fos: piranha does not run this virtual server, and it is not imported.")
			continue
		}
		if err := m.virtual(b, fwd); err != nil {
			return nil, err
		}
	}
	return finish(FormatPiranha, path, m.cfg, m.spans, m.rep)
}

type pMapper struct {
	file  string
	rep   *reporter
	cfg   *config.Config
	spans []string
}

func (m *pMapper) ok(key string, d pDirective, detail string) {
	m.rep.rule(key, m.file, d.line, 0, detail)
	m.named(d.key)
}

// named writes the directive as the file does in the entry just made:
// some rows of the table stand for several directives.
func (m *pMapper) named(directive string) {
	e := &m.rep.entries[len(m.rep.entries)-1]
	if e.Directive == directive {
		return
	}
	delete(m.rep.has, *e)
	e.Directive = directive
	m.rep.has[*e] = true
}

func (m *pMapper) as(key string, st Status, d pDirective, detail string) {
	m.rep.ruleAs(key, st, m.file, d.line, 0, detail)
	m.named(d.key)
}

// num reads a whole number as piranha's getNum does, up to max.
func (m *pMapper) num(d pDirective, max int) (int, error) {
	n, err := strconv.Atoi(d.val)
	if err != nil || n < 0 {
		return 0, &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("%s %q is not a whole number (piranha refuses it too)", d.key, d.val)}
	}
	if n > max {
		return 0, &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("%s %d is more than the import takes (%d)", d.key, n, max)}
	}
	return n, nil
}

// Bounds of the numbers the import takes: a day for nanny's timeout and
// reentry, 31 days of persistence (as for keepalived), IPVS's weights.
const (
	pMaxSeconds     = 86400
	pMaxPersistence = 31 * 24 * 3600
	pMaxWeight      = 65535
)

func (m *pMapper) active(d pDirective) (bool, error) {
	switch d.val {
	case "0":
		return false, nil
	case "1":
		return true, nil
	}
	return false, &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("active %q: want 0 or 1 (piranha refuses it too)", d.val)}
}

// virtual maps one virtual block: nanny's check per real server (connect,
// send, a reply that starts with expect) every timeout seconds, a
// failed check removing the server (ipvsadm -d) and reentry seconds of
// passing checks adding it back.
func (m *pMapper) virtual(b *pBlock, fwd string) error {
	vs := config.VirtualService{Name: b.name, Protocol: "tcp", Port: 80, Scheduler: "wlc", OnFailure: "remove"}
	where := fmt.Sprintf("%s:%d-%d", m.file, b.line, b.end)
	if d, ok := b.get("active"); ok {
		on, err := m.active(d)
		if err != nil {
			return err
		}
		if !on {
			m.rep.ruleAs("virtual", Ignored, m.file, b.line, b.end, "virtual "+b.name+" has active = 0: lvs leaves it out, and so does the import.")
			m.ok("active", d, "")
			return nil
		}
		m.ok("active", d, "")
	}
	m.rep.rule("virtual", m.file, b.line, b.end, b.name+":")
	d, ok := b.get("address")
	if !ok {
		return &Error{File: m.file, Line: b.line, Msg: "virtual " + b.name + " has no address (piranha needs one)"}
	}
	addr, _, _ := strings.Cut(d.val+" ", " ") // the device after it is pulse's
	a, err := parseIP(addr)
	if err != nil || !a.Is4() {
		return &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("address %q: want an IPv4 address (host names are not resolved: write the address)", d.val)}
	}
	vs.Address = a.String()
	m.ok("address", d, "")
	timeout, reentry := 10, 180
	var send, expect string
	var hasSend, hasExpect bool
	program := false
	pmask := 32
	for _, d := range b.dirs {
		switch d.key {
		case "address", "active":
		case "port":
			p, err := strconv.Atoi(d.val)
			if err != nil {
				var ok bool
				if p, ok = pServices[d.val]; !ok {
					return &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("port %q: write the number (the import knows only common service names)", d.val)}
				}
			}
			if p < 1 || p > 65535 {
				return &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("port %q is not a port", d.val)}
			}
			vs.Port = p
			m.ok("port", d, "")
		case "protocol":
			if d.val != "tcp" && d.val != "udp" {
				return &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("protocol %q: want tcp or udp (piranha refuses it too)", d.val)}
			}
			vs.Protocol = d.val
			detail := ""
			if _, send := b.get("send"); d.val == "udp" && !send {
				detail = "udp without send: nanny's check cannot fail (a UDP connect always succeeds), so the servers get no check (type none), which is the same."
			}
			m.ok("protocol", d, detail)
		case "scheduler":
			if !slices.Contains([]string{"rr", "wrr", "lc", "wlc"}, d.val) {
				return &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("scheduler %q: want rr, wrr, lc or wlc (piranha refuses it too)", d.val)}
			}
			vs.Scheduler = d.val
			m.ok("scheduler", d, "")
		case "persistent":
			n, err := m.num(d, pMaxPersistence)
			if err != nil {
				return err
			}
			vs.Persistence = config.Duration(time.Duration(n) * time.Second)
			m.ok("persistent", d, "")
		case "pmask":
			bits, ok := maskBits(d.val)
			if !ok {
				return &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("pmask %q is not a netmask (piranha refuses it too)", d.val)}
			}
			pmask = bits
			m.ok("pmask", d, "")
		case "timeout", "reentry":
			n, err := m.num(d, pMaxSeconds)
			if err != nil {
				return err
			}
			if n < 1 {
				return &Error{File: m.file, Line: d.line, Msg: d.key + " must be at least 1 second"}
			}
			if d.key == "timeout" {
				timeout = n
				m.ok(d.key, d, "")
			} else {
				reentry = n // reported with the rise it makes, below
			}
		case "send":
			send, hasSend = pUnescape(d.val), true
		case "expect":
			expect, hasExpect = pUnescape(d.val), true
		case "load_monitor":
			if d.val == "none" {
				m.as("load_monitor", Ignored, d, "none: nanny keeps the configured weights, as lvsmon does.")
			} else {
				m.ok("load_monitor", d, "")
			}
		case "vip_nmask":
			m.ok("vip_nmask", d, "")
		case "client_monitor", "master", "dirs", "start_cmd", "stop_cmd":
			m.ok("client_monitor, master, dirs, start_cmd, stop_cmd", d, "")
		default:
			detail := ""
			if d.key == "send_program" || d.key == "expect_program" || d.key == "use_regex" {
				program = true
				detail = "The servers get a tcp connect check instead (none on udp), weaker than the program's."
			}
			m.ok("later", d, detail)
		}
	}
	if vs.Persistence > 0 && pmask < 32 {
		vs.PersistenceNetmask = pmask
	}
	if _, ok := b.get("load_monitor"); !ok {
		m.rep.ruleAs("load_monitor", Unsupported, m.file, b.line, 0, "not set, so uptime, nanny's default:")
	}
	c := &config.Check{Type: "simpletcp", Interval: config.Duration(time.Duration(timeout) * time.Second),
		Timeout: config.Duration(time.Duration(timeout) * time.Second), Fall: 1, Rise: max(1, reentry/timeout)}
	if d, ok := b.get("reentry"); ok {
		if c.Rise > 100 {
			m.as("reentry", Changed, d, fmt.Sprintf("%d checks of %ds: lvsmon's rise stops at 100, so %s.", c.Rise, timeout, 100*time.Duration(timeout)*time.Second))
		} else {
			m.ok("reentry", d, "")
		}
	}
	c.Rise = min(c.Rise, 100) // lvsmon's rise stops at 100 checks
	if hasSend {
		c.Send = strings.ReplaceAll(send, `\`, `\\`)
	}
	if hasExpect && expect != "*" {
		c.Expect = "^" + regexp.QuoteMeta(expect)
	}
	for _, k := range []string{"send", "expect"} {
		if d, ok := b.get(k); ok {
			switch {
			case program:
				m.as(k, Unsupported, d, "left out with send_program, expect_program or use_regex here, whose meaning the import does not know.")
			case vs.Protocol == "udp":
				m.as(k, Changed, d, "on udp: lvsmon's udp check sends it and always waits for a reply.")
			case k == "expect" && expect == "*":
				m.ok(k, d, "* (any reply): no expect.")
			default:
				m.ok(k, d, "")
			}
		}
	}
	switch {
	case program:
		c.Type, c.Send, c.Expect = "tcp", "", ""
		if vs.Protocol == "udp" {
			c.Type = "none"
		}
	case vs.Protocol == "udp" && !hasSend:
		// A UDP "connect" always succeeds: without send nanny's check
		// cannot fail.
		c.Type, c.Expect = "none", ""
	case vs.Protocol == "udp":
		c.Type = "udp"
		c.Send = pHex(send)
	case !hasSend && c.Expect == "":
		c.Type = "tcp"
	}
	for _, n := range fixCheck(c) {
		m.rep.add(Entry{File: m.file, Line: b.line, Directive: "check", Status: Changed, Note: n})
	}
	vs.Check = c
	for _, s := range b.servers {
		r, ok, err := m.server(s, vs.Port, fwd)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		for _, o := range vs.Reals {
			if o.Address == r.Address {
				return &Error{File: m.file, Line: s.line, Msg: fmt.Sprintf("server %s: %s is in virtual %s twice", s.name, r.Address, b.name)}
			}
		}
		vs.Reals = append(vs.Reals, r)
	}
	if len(m.cfg.VirtualServices) >= MaxServices {
		return &Error{File: m.file, Line: b.line, Msg: fmt.Sprintf("more than %d virtual services", MaxServices)}
	}
	for _, o := range m.cfg.VirtualServices {
		if o.Address == vs.Address && o.Port == vs.Port && o.Protocol == vs.Protocol {
			return &Error{File: m.file, Line: b.line, Msg: fmt.Sprintf("%s %s:%d is defined twice", vs.Protocol, vs.Address, vs.Port)}
		}
	}
	m.cfg.VirtualServices = append(m.cfg.VirtualServices, vs)
	m.spans = append(m.spans, where)
	return nil
}

// pHex writes a UDP payload as lvsmon's send: \xHH for what is not
// printable ASCII, \\ for a backslash.
func pHex(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '\\':
			b.WriteString(`\\`)
		case c < 0x20 || c > 0x7e:
			fmt.Fprintf(&b, `\x%02x`, c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func (m *pMapper) server(s *pBlock, port int, fwd string) (config.RealServer, bool, error) {
	d, ok := s.get("address")
	if !ok {
		return config.RealServer{}, false, &Error{File: m.file, Line: s.line, Msg: "server " + s.name + " has no address (piranha needs one)"}
	}
	a, err := parseIP(d.val)
	if err != nil || !a.Is4() {
		return config.RealServer{}, false, &Error{File: m.file, Line: d.line, Msg: fmt.Sprintf("address %q: want an IPv4 address (host names are not resolved: write the address)", d.val)}
	}
	if act, ok := s.get("active"); ok {
		on, err := m.active(act)
		if err != nil {
			return config.RealServer{}, false, err
		}
		m.ok("active", act, "")
		if !on {
			m.rep.ruleAs("server", Ignored, m.file, s.line, s.end, "server "+s.name+" has active = 0: lvs adds no nanny for it, and the import leaves it out.")
			return config.RealServer{}, false, nil
		}
	}
	m.rep.rule("server", m.file, s.line, s.end, s.name+":")
	m.ok("address", d, "")
	weight := 1
	if w, ok := s.get("weight"); ok {
		n, err := m.num(w, pMaxWeight)
		if err != nil {
			return config.RealServer{}, false, err
		}
		weight = n
		m.ok("weight", w, "")
	}
	return config.RealServer{Address: a.String(), Port: port, Weight: &weight, Forward: fwd}, true, nil
}
