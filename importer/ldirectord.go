package importer

import (
	"fmt"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-ldap/ldap/v3"

	"github.com/lvsmon/lvsmon/config"
)

// ldLine is one directive of ldirectord.cf.
type ldLine struct {
	key, val string
	line     int
}

// ldVirtual is one virtual= block: its head and its indented lines.
type ldVirtual struct {
	head  ldLine
	six   bool
	lines []ldLine
	end   int
}

// ldirectord's global and per-virtual directives (read_config).
var (
	ldGlobal = []string{"checktimeout", "connecttimeout", "negotiatetimeout", "checkinterval", "checkcount", "failurecount",
		"fallback", "fallback6", "fallbackcommand", "autoreload", "callback", "logfile", "execute", "fork", "supervised",
		"quiescent", "readdquiescent", "emailalert", "emailalertfreq", "emailalertstatus", "emailalertfrom", "cleanstop",
		"smtp", "maintenancedir", "timeout"}
	ldVirtualKeys = []string{"real", "real6", "request", "receive", "checktype", "checkcommand", "checktimeout", "connecttimeout",
		"negotiatetimeout", "checkcount", "failurecount", "checkinterval", "checkport", "login", "passwd", "database", "secret",
		"load", "scheduler", "persistent", "schedflags", "netmask", "protocol", "ops", "service", "httpmethod", "virtualhost",
		"fallback", "fallback6", "fallbackcommand", "quiescent", "emailalert", "emailalertfreq", "emailalertstatus",
		"monitorfile", "cleanstop", "smtp", "servicename", "comment"}
)

var ldDirective = regexp.MustCompile(`^([a-z0-9]+)\s*(?:=\s*(.*?))?\s*$`)

// parseLdirectord reads ldirectord.cf as ldirectord does: a line
// "virtual=" (or "virtual6=") at the start of a line opens a block, whose
// directives are the following lines indented by a tab or four spaces; a
// line that is not (a blank one too) ends it. Comments start with #. An
// unknown directive is an error, as it is for ldirectord.
func parseLdirectord(file string, data []byte) (map[string]ldLine, []*ldVirtual, error) {
	if err := checkText(file, data); err != nil {
		return nil, nil, err
	}
	globals := map[string]ldLine{}
	var virtuals []*ldVirtual
	var cur *ldVirtual
	for i, raw := range strings.Split(string(data), "\n") {
		no := i + 1
		raw = strings.TrimRight(raw, "\r")
		if cur != nil {
			if strings.HasPrefix(strings.TrimLeft(raw, " \t"), "#") {
				continue
			}
			body, _, _ := strings.Cut(raw, "#")
			body = strings.ReplaceAll(body, "\t", "    ")
			if strings.HasPrefix(body, "    ") && strings.TrimSpace(body) != "" {
				d, err := ldSplit(file, no, strings.TrimSpace(body), ldVirtualKeys)
				if err != nil {
					return nil, nil, err
				}
				cur.lines = append(cur.lines, d)
				cur.end = no
				continue
			}
			cur = nil
		}
		t := strings.TrimSpace(raw)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if raw[0] == ' ' || raw[0] == '\t' {
			return nil, nil, &Error{File: file, Line: no, Msg: "an indented line outside a virtual= block (a blank line ends the block)"}
		}
		if m := regexp.MustCompile(`^virtual(6)?\s*=\s*(.*?)\s*$`).FindStringSubmatch(raw); m != nil {
			cur = &ldVirtual{head: ldLine{key: "virtual" + m[1], val: m[2], line: no}, six: m[1] == "6", end: no}
			virtuals = append(virtuals, cur)
			continue
		}
		d, err := ldSplit(file, no, t, ldGlobal)
		if err != nil {
			return nil, nil, err
		}
		globals[d.key] = d
	}
	return globals, virtuals, nil
}

func ldSplit(file string, no int, s string, known []string) (ldLine, error) {
	m := ldDirective.FindStringSubmatch(s)
	if m == nil || !slices.Contains(known, m[1]) {
		word, _, _ := strings.Cut(s, "=")
		return ldLine{}, &Error{File: file, Line: no, Msg: fmt.Sprintf("unknown directive %q here (ldirectord refuses it too)", strings.TrimSpace(word))}
	}
	return ldLine{key: m[1], val: unquote(m[2]), line: no}, nil
}

func unquote(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return s[1 : len(s)-1]
	}
	return s
}

// Ldirectord imports an ldirectord.cf read from data; path names it in
// the report.
func Ldirectord(path string, data []byte) (*Result, error) {
	globals, virtuals, err := parseLdirectord(path, data)
	if err != nil {
		return nil, err
	}
	m := &ldMapper{file: path, rep: newReporter(ldirectordRules), g: globals, cfg: &config.Config{}, names: map[string]bool{}, seen: map[string]int{}}
	m.globals()
	for i, v := range virtuals {
		if len(m.cfg.VirtualServices) >= MaxServices {
			last := virtuals[len(virtuals)-1]
			m.rep.ruleAs(v.head.key, Unsupported, path, v.head.line, last.end, fmt.Sprintf("more than %d virtual services: these %d blocks are left out.", MaxServices, len(virtuals)-i))
			break
		}
		m.virtual(v)
	}
	return finish(FormatLdirectord, path, m.cfg, m.spans, m.rep)
}

type ldMapper struct {
	file  string
	rep   *reporter
	g     map[string]ldLine
	cfg   *config.Config
	spans []string
	names map[string]bool
	seen  map[string]int
}

func (m *ldMapper) ok(key string, d ldLine, detail string) {
	m.rep.rule(key, m.file, d.line, 0, detail)
}

func (m *ldMapper) as(key string, st Status, d ldLine, detail string) {
	m.rep.ruleAs(key, st, m.file, d.line, 0, detail)
}

// gint reads a positive global number, or def.
func (m *ldMapper) gint(key string, def int) int {
	if d, ok := m.g[key]; ok {
		if v, err := strconv.Atoi(firstNumber(d.val)); err == nil && v > 0 {
			return v
		}
	}
	return def
}

var numberRe = regexp.MustCompile(`\d+`)

// firstNumber is the first run of digits, as ldirectord's /(\d+)/ reads.
func firstNumber(s string) string { return numberRe.FindString(s) }

func (m *ldMapper) globals() {
	keys := make([]string, 0, len(m.g))
	for k := range m.g {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		d := m.g[k]
		switch k {
		case "checktimeout", "negotiatetimeout", "checkinterval", "failurecount", "logfile", "supervised",
			"fork", "callback", "execute", "maintenancedir", "fallbackcommand", "connecttimeout", "timeout", "checkcount", "readdquiescent":
			m.ok(k, d, "")
		case "quiescent":
			if d.val != "yes" && d.val != "no" {
				m.as(k, Unsupported, d, fmt.Sprintf("%q is not yes or no: no.", d.val))
				continue
			}
			m.ok(k, d, "")
		case "cleanstop":
			if d.val == "no" {
				m.as(k, Mapped, d, "no: lvsmon too leaves the table when it stops.")
			} else {
				m.ok(k, d, "")
			}
		case "autoreload":
			if d.val == "yes" {
				m.ok(k, d, "")
			} else {
				m.as(k, Mapped, d, "no: neither does lvsmon.")
			}
		case "fallback", "fallback6":
			m.ok(k, d, "the default for every virtual without its own:")
		case "emailalert", "emailalertfrom", "emailalertfreq", "emailalertstatus", "smtp":
			// alerting below
		}
	}
	if _, set := m.g["cleanstop"]; !set {
		// Not written, and still a difference: say so, without a line.
		m.rep.ruleAs("cleanstop", Changed, m.file, 0, 0, "not set, so yes, ldirectord's default: it deletes its services when it stops; lvsmon leaves the IPVS table as it is.")
	}
	m.alerting()
}

func (m *ldMapper) alerting() {
	to, ok := m.g["emailalert"]
	if !ok {
		for _, k := range []string{"emailalertfrom", "emailalertfreq", "emailalertstatus", "smtp"} {
			if d, ok := m.g[k]; ok {
				m.as(k, Ignored, d, "no emailalert: ldirectord sends no mail, and lvsmon gets no alerting section.")
			}
		}
		return
	}
	var rcpt []string
	for _, a := range strings.Split(to.val, ",") {
		a = strings.TrimSpace(a)
		if isMailAddress(a) {
			rcpt = append(rcpt, a)
		} else if a != "" {
			m.as("emailalert", Unsupported, to, fmt.Sprintf("%q is not a mail address lvsmon can send to: left out.", a))
		}
	}
	if len(rcpt) == 0 {
		m.as("emailalert", Unsupported, to, "no recipient: no alerting section.")
		for _, k := range []string{"emailalertfrom", "emailalertfreq", "emailalertstatus", "smtp"} {
			if d, ok := m.g[k]; ok {
				m.as(k, Unsupported, d, "no alerting section.")
			}
		}
		return
	}
	m.ok("emailalert", to, "")
	al := &config.Alerting{To: rcpt, From: "ldirectord@localhost", SMTP: config.SMTP{Host: "localhost", Port: 25, TLS: "none"}}
	if d, ok := m.g["emailalertfrom"]; ok && isMailAddress(unquote(d.val)) {
		al.From = unquote(d.val)
		m.ok("emailalertfrom", d, "")
	} else if ok {
		m.as("emailalertfrom", Changed, d, fmt.Sprintf("%q is not a mail address lvsmon can send as: from: ldirectord@localhost.", d.val))
	} else {
		m.as("emailalert", Changed, to, "no emailalertfrom: ldirectord sends as the system's default sender; the import writes from: ldirectord@localhost.")
	}
	if d, ok := m.g["smtp"]; ok && d.val != "" {
		al.SMTP.Host = d.val
		m.ok("smtp", d, "")
	} else {
		m.as("emailalert", Changed, to, "no smtp: ldirectord hands mail to the local MTA; lvsmon sends to localhost:25.")
	}
	if d, ok := m.g["emailalertfreq"]; ok {
		v, err := strconv.Atoi(firstNumber(d.val))
		switch {
		case err != nil:
			m.as("emailalertfreq", Unsupported, d, fmt.Sprintf("%q is not seconds: no reminders.", d.val))
		case v == 0:
			m.ok("emailalertfreq", d, "0: no reminders.")
		case v < 60:
			al.Reminder = config.Duration(time.Minute)
			m.as("emailalertfreq", Changed, d, fmt.Sprintf("%ds becomes 1m, lvsmon's shortest reminder.", v))
		default:
			al.Reminder = config.Duration(time.Duration(v) * time.Second)
			m.ok("emailalertfreq", d, "")
		}
	}
	if d, ok := m.g["emailalertstatus"]; ok {
		states, err := ldStates(d.val)
		if err != nil {
			m.as("emailalertstatus", Unsupported, d, err.Error()+": all states.")
		} else {
			al.DaemonStates = states
			m.ok("emailalertstatus", d, "")
		}
	}
	m.cfg.Alerting = al
}

// ldStates reads emailalertstatus: all, none, or a comma list.
func ldStates(s string) ([]string, error) {
	s = strings.TrimSpace(s)
	switch s {
	case "all":
		return nil, nil
	case "none":
		return []string{"none"}, nil
	}
	var out []string
	for _, x := range strings.Split(s, ",") {
		x = strings.TrimSpace(x)
		if !slices.Contains(config.DaemonStates, x) {
			return nil, fmt.Errorf("%q is not starting, running, stopping, reloading, all or none", x)
		}
		if !slices.Contains(out, x) {
			out = append(out, x)
		}
	}
	return out, nil
}

// ldServicePorts is ldirectord's service by virtual port.
var ldServicePorts = map[int]string{21: "ftp", 25: "smtp", 53: "dns", 80: "http", 110: "pop", 119: "nntp", 143: "imap",
	389: "ldap", 443: "https", 587: "submission", 636: "ldaps", 993: "imaps", 995: "pops", 1521: "oracle", 1812: "radius",
	3128: "http_proxy", 3306: "mysql", 5432: "pgsql", 5060: "sip"}

// ldServices maps ldirectord's services to lvsmon check types; the rest
// have none.
var ldServices = map[string]string{"http": "http", "https": "https", "ftp": "ftp", "smtp": "smtp", "submission": "smtp",
	"pop": "pop3", "imap": "imap", "dns": "dns", "simpletcp": "simpletcp", "none": "none",
	"ldap": "ldap", "ldaps": "ldaps", "radius": "radius", "pops": "pop3s", "imaps": "imaps", "sip": "sip", "mysql": "mysql", "pgsql": "pgsql"}

// ldSQL are the check types of ldirectord's check_sql, which log in.
var ldSQL = map[string]bool{"mysql": true, "pgsql": true}

// ldPortNames are the port names ldirectord's getservbyname would know
// that configs use; others are refused rather than guessed.
var ldPortNames = map[string]int{"ftp": 21, "smtp": 25, "domain": 53, "http": 80, "www": 80, "pop3": 110, "nntp": 119,
	"imap": 143, "imap2": 143, "ldap": 389, "https": 443, "submission": 587, "ldaps": 636, "imaps": 993, "pop3s": 995,
	"mysql": 3306, "postgresql": 5432, "sip": 5060, "radius": 1812}

func ldPort(s string) (int, bool) {
	if p, err := strconv.Atoi(s); err == nil {
		return p, p >= 0 && p <= 65535
	}
	p, ok := ldPortNames[s]
	return p, ok
}

// ldAddrPort splits "a.b.c.d:port" or "[v6]:port" (port optional).
func ldAddrPort(s string) (addr string, port int, hasPort bool, err error) {
	host, p := s, ""
	if strings.HasPrefix(s, "[") {
		i := strings.Index(s, "]")
		if i < 0 {
			return "", 0, false, fmt.Errorf("%q: an unclosed [", s)
		}
		host, p = s[1:i], strings.TrimPrefix(s[i+1:], ":")
	} else if i := strings.LastIndex(s, ":"); i >= 0 {
		host, p = s[:i], s[i+1:]
	}
	if p != "" {
		var ok bool
		if port, ok = ldPort(p); !ok {
			return "", 0, false, fmt.Errorf("%q is not a port number or a port name the importer knows", p)
		}
		hasPort = true
	}
	return host, port, hasPort, nil
}

// ldv gives a virtual's directive (the last one written) or the global.
type ldv struct {
	v   *ldVirtual
	own map[string]ldLine
}

func (x ldv) get(key string) (ldLine, bool) {
	d, ok := x.own[key]
	return d, ok
}

func (m *ldMapper) virtual(v *ldVirtual) {
	x := ldv{v: v, own: map[string]ldLine{}}
	var reals []ldLine
	for _, d := range v.lines {
		if d.key == "real" || d.key == "real6" {
			reals = append(reals, d)
			continue
		}
		x.own[d.key] = d
	}
	span := fmt.Sprintf("%s:%d-%d", m.file, v.head.line, v.end)
	skip := func(why string) {
		m.rep.ruleAs(v.head.key, Unsupported, m.file, v.head.line, v.end, why+": the block is left out.")
	}
	vs := config.VirtualService{Scheduler: "wrr", OnFailure: "remove"}
	fam := "inet"
	if v.six {
		fam = "inet6"
	}
	head := v.head.val
	if mark, err := strconv.ParseUint(head, 10, 32); err == nil {
		if mark == 0 {
			skip("fwmark 0 is no mark")
			return
		}
		vs.FWMark, vs.Family = uint32(mark), fam
	} else {
		addr, port, hasPort, err := ldAddrPort(head)
		if err != nil || !hasPort {
			skip(fmt.Sprintf("%q is not address:port or a fwmark", head))
			return
		}
		a, perr := parseIP(addr)
		if perr != nil || a.Is6() != v.six {
			skip(fmt.Sprintf("%q is not an IP address of the virtual's family (host names are not resolved)", addr))
			return
		}
		if port == 0 {
			skip("port 0 (all ports) is not imported: write it by hand, with the check's port")
			return
		}
		vs.Address, vs.Port, vs.Protocol = a.Unmap().String(), port, "tcp"
		if port == 53 {
			vs.Protocol = "udp"
		}
	}
	m.rep.rule(v.head.key, m.file, v.head.line, 0, head+":")
	// Plain per-virtual directives.
	for _, d := range v.lines {
		switch d.key {
		case "scheduler":
			if slices.Contains(config.Schedulers, d.val) {
				vs.Scheduler = d.val
				m.ok("scheduler", d, "")
			} else {
				m.as("scheduler", Unsupported, d, fmt.Sprintf("%q is not an IPVS scheduler lvsmon knows: wrr.", d.val))
			}
		case "persistent":
			n, err := strconv.Atoi(firstNumber(d.val))
			if err != nil || n > 31*24*3600 {
				m.as("persistent", Unsupported, d, fmt.Sprintf("%q is not seconds: no persistence.", d.val))
				continue
			}
			vs.Persistence = config.Duration(time.Duration(n) * time.Second)
			m.ok("persistent", d, "")
		case "protocol":
			switch {
			case vs.FWMark != 0 && d.val == "fwm", vs.FWMark == 0 && (d.val == "tcp" || d.val == "udp"):
				vs.Protocol = cmpOr(map[string]string{"fwm": ""}[d.val], d.val)
				if vs.FWMark != 0 {
					vs.Protocol = ""
				}
				m.ok("protocol", d, "")
			default:
				m.as("protocol", Unsupported, d, fmt.Sprintf("%q does not fit this virtual (ldirectord refuses it).", d.val))
			}
		case "servicename":
			name := d.val
			if m.names[name] {
				name = fmt.Sprintf("%s (line %d)", name, v.head.line)
				m.as("servicename", Changed, d, fmt.Sprintf("another virtual has this name: %q.", name))
			} else {
				m.ok("servicename", d, "")
			}
			m.names[name] = true
			vs.Name = name
		case "quiescent":
			switch d.val {
			case "yes":
				vs.OnFailure = "quiescent"
				m.ok("quiescent", d, "")
			case "no":
				m.ok("quiescent", d, "")
			default:
				m.as("quiescent", Unsupported, d, fmt.Sprintf("%q is not yes or no.", d.val))
			}
		case "schedflags", "ops", "fallbackcommand", "monitorfile", "load", "comment", "connecttimeout":
			m.ok(d.key, d, "")
		case "cleanstop":
			if d.val == "no" {
				m.as("cleanstop", Mapped, d, "no: lvsmon too leaves the table when it stops.")
			} else {
				m.ok("cleanstop", d, "")
			}
		case "emailalert", "emailalertfreq", "emailalertstatus", "smtp":
			if g, ok := m.g[d.key]; ok && g.val == d.val {
				m.as(d.key, Mapped, d, "the same as the global one.")
			} else {
				m.as(d.key, Unsupported, d, "a virtual's own mail settings: lvsmon has one alerting section for all.")
			}
		}
	}
	if q, ok := x.get("quiescent"); !ok || (q.val != "yes" && q.val != "no") {
		if g, ok := m.g["quiescent"]; ok && g.val == "yes" {
			vs.OnFailure = "quiescent"
		}
	}
	if d, ok := x.get("netmask"); ok {
		bits, valid := maskBits(d.val)
		switch {
		case !valid || (fam == "inet" && bits > 32):
			m.as("netmask", Unsupported, d, fmt.Sprintf("%q is not a netmask: left out.", d.val))
		case vs.Persistence == 0:
			m.as("netmask", Ignored, d, "without persistent ldirectord sets no persistence netmask either.")
		default:
			vs.PersistenceNetmask = bits
			m.ok("netmask", d, "")
		}
	}
	checktype := "negotiate"
	if d, ok := x.get("checktype"); ok {
		checktype = d.val
	}
	off := checktype == "off"
	vs.Reals = m.reals(v, &vs, reals, fam, off)
	vs.Sorry = m.fallback(x, &vs, fam)
	if !off {
		vs.Check = m.check(x, &vs)
	}
	// Credentials the check did not take (the ldap, ldaps, radius and
	// mail checks take theirs; the mysql and pgsql checks' are named here).
	for _, d := range v.lines {
		if !slices.Contains([]string{"login", "passwd", "database", "secret"}, d.key) || m.reported(d.line) {
			continue
		}
		if vs.Check != nil && ldSQL[vs.Check.Type] && d.key != "secret" {
			m.rep.rule("login, passwd, database (mysql, pgsql)", m.file, d.line, 0, d.key+":")
		} else {
			m.rep.rule("login, passwd, database, secret", m.file, d.line, 0, d.key+":")
		}
	}
	// A virtual's per-real request and receive, when they differ from the
	// service's, are dropped.
	key := fmt.Sprintf("%s|%s|%s|%d|%d", vs.Protocol, fam, vs.Address, vs.Port, vs.FWMark)
	if prev, dup := m.seen[key]; dup {
		m.rep.ruleAs(v.head.key, Unsupported, m.file, v.head.line, v.end, fmt.Sprintf("the same virtual service as the block at line %d (ldirectord refuses it): left out.", prev))
		return
	}
	if len(m.cfg.VirtualServices) >= MaxServices {
		m.rep.ruleAs(v.head.key, Unsupported, m.file, v.head.line, v.end, fmt.Sprintf("more than %d virtual services: left out.", MaxServices))
		return
	}
	m.seen[key] = v.head.line
	m.cfg.VirtualServices = append(m.cfg.VirtualServices, vs)
	m.spans = append(m.spans, span)
}

var ldRealRe = regexp.MustCompile(`^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(?:->(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+))?(?::([A-Za-z0-9_-]+))?\s+(\w+)(?:\s+(\d+))?(?:\s+"(.*)"[, ]\s*"(.*)")?(?:\s+l:(\d+))?(?:\s+u:(\d+))?\s*$`)

func (m *ldMapper) reals(v *ldVirtual, vs *config.VirtualService, lines []ldLine, fam string, off bool) []config.RealServer {
	var out []config.RealServer
	seen := map[string]bool{}
	for _, d := range lines {
		r := ldRealRe.FindStringSubmatch(d.val)
		if r == nil {
			m.as(d.key, Unsupported, d, fmt.Sprintf("%q is not ADDRESS[:PORT] gate|masq|ipip [WEIGHT] [\"request\",\"receive\"] [l:N] [u:N]: left out.", d.val))
			continue
		}
		fwd := map[string]string{"gate": "dr", "masq": "nat", "ipip": "tun"}[r[4]]
		if fwd == "" {
			m.as(d.key, Unsupported, d, fmt.Sprintf("%q is not gate, masq or ipip: left out.", r[4]))
			continue
		}
		port := 0
		if r[3] != "" {
			p, ok := ldPort(r[3])
			if !ok {
				m.as(d.key, Unsupported, d, fmt.Sprintf("%q is not a port number or a port name the importer knows: left out.", r[3]))
				continue
			}
			port = p
		}
		spec := strings.Trim(r[1], "[]")
		if r[2] != "" {
			spec += "->" + strings.Trim(r[2], "[]")
		}
		addrs, why := expandRange(spec, "->")
		if why != "" {
			m.as(d.key, Unsupported, d, why+": left out.")
			continue
		}
		if off {
			m.as(d.key, Mapped, d, "checktype=off: ldirectord adds no real server, nor does the import.")
			continue
		}
		var weight *int
		if r[5] != "" {
			w, err := strconv.Atoi(r[5])
			if err != nil || w > 65535 {
				m.as(d.key, Unsupported, d, fmt.Sprintf("weight %q is out of range: left out.", r[5]))
				continue
			}
			weight = &w
		}
		detail := ""
		if r[6] != "" || r[7] != "" {
			m.rep.rule("real request/receive", m.file, d.line, 0, "")
		}
		var lo, hi uint64
		if r[8] != "" {
			lo, _ = strconv.ParseUint(r[8], 10, 32)
		}
		if r[9] != "" {
			hi, _ = strconv.ParseUint(r[9], 10, 32)
		}
		if lo > 0 && hi > 0 && lo > hi {
			m.as(d.key, Unsupported, d, fmt.Sprintf("the lower threshold %d is above the upper %d: both are left out.", lo, hi))
			lo, hi = 0, 0
		}
		added := 0
		for _, a := range addrs {
			rs := config.RealServer{Address: a, Port: port, Forward: fwd, UpperThreshold: uint32(hi), LowerThreshold: uint32(lo)}
			if weight != nil {
				w := *weight
				rs.Weight = &w
			}
			if strings.Contains(a, ":") != (fam == "inet6") {
				m.as(d.key, Unsupported, d, fmt.Sprintf("%s is not in the virtual's address family: left out.", a))
				continue
			}
			if vs.FWMark != 0 && rs.Port == 0 {
				m.as(d.key, Unsupported, d, fmt.Sprintf("%s has no port: lvsmon's config needs a port on a fwmark service's server (IPVS's port 0, the client's port kept, cannot be written yet): add the port by hand; left out.", a))
				continue
			}
			if vs.FWMark == 0 && rs.Port != 0 && rs.Port != vs.Port && fwd != "nat" {
				detail = fmt.Sprintf("port %d: with %s IPVS keeps the destination port %d, which lvsmon writes; ldirectord's checks went to %d, lvsmon's go to %d unless checkport sets one.", rs.Port, fwd, vs.Port, rs.Port, vs.Port)
				rs.Port = vs.Port
			}
			k := net2(a, cmpInt(rs.Port, vs.Port))
			if seen[k] {
				m.as(d.key, Unsupported, d, fmt.Sprintf("%s is listed twice in this virtual: the second is left out.", k))
				continue
			}
			seen[k] = true
			out = append(out, rs)
			added++
		}
		if added == 0 {
			continue
		}
		if detail != "" {
			m.as(d.key, Changed, d, detail)
		} else if len(addrs) > 1 {
			m.ok(d.key, d, fmt.Sprintf("%d servers:", added))
		} else {
			m.ok(d.key, d, "")
		}
	}
	return out
}

// fallback maps the virtual's fallback, or the global one.
func (m *ldMapper) fallback(x ldv, vs *config.VirtualService, fam string) *config.RealServer {
	key := "fallback"
	if fam == "inet6" {
		key = "fallback6"
	}
	d, own := x.get(key)
	if !own {
		var ok bool
		if d, ok = m.g[key]; !ok {
			return nil
		}
	}
	report := func(st Status, detail string) {
		if own {
			m.as(key, st, d, detail)
		} else if st != Mapped {
			m.rep.ruleAs(key, st, m.file, x.v.head.line, 0, "the global "+key+" for this virtual: "+detail)
		}
	}
	fields := strings.Fields(d.val)
	if len(fields) == 0 || len(fields) > 2 {
		report(Unsupported, fmt.Sprintf("%q is not ADDRESS[:PORT] [gate|masq|ipip]: no sorry server.", d.val))
		return nil
	}
	fwd := "dr"
	if len(fields) == 2 {
		if fwd = map[string]string{"gate": "dr", "masq": "nat", "ipip": "tun"}[fields[1]]; fwd == "" {
			report(Unsupported, fmt.Sprintf("%q is not gate, masq or ipip: no sorry server.", fields[1]))
			return nil
		}
	}
	addr, port, _, err := ldAddrPort(fields[0])
	a, perr := parseIP(addr)
	if err != nil || perr != nil {
		report(Unsupported, fmt.Sprintf("%q is not an IP address (host names are not resolved): no sorry server.", fields[0]))
		return nil
	}
	rs := &config.RealServer{Address: a.Unmap().String(), Port: port, Forward: fwd}
	detail := ""
	switch {
	case strings.Contains(rs.Address, ":") != (fam == "inet6"):
		report(Unsupported, "not in the virtual's address family: no sorry server.")
		return nil
	case vs.FWMark != 0 && rs.Port == 0:
		report(Unsupported, "no port: lvsmon's config needs a port on a fwmark service's server (IPVS's port 0, the client's port kept, cannot be written yet): add the port by hand; no sorry server.")
		return nil
	case vs.FWMark == 0 && rs.Port != 0 && rs.Port != vs.Port && fwd != "nat":
		detail = fmt.Sprintf("port %d: with %s IPVS keeps the destination port %d, which lvsmon writes.", rs.Port, fwd, vs.Port)
		rs.Port = vs.Port
	}
	for _, r := range vs.Reals {
		if r.Address == rs.Address && cmpInt(r.Port, vs.Port) == cmpInt(rs.Port, vs.Port) {
			report(Unsupported, "it is also a real server: no sorry server.")
			return nil
		}
	}
	if detail != "" {
		report(Changed, detail)
	} else {
		report(Mapped, "")
	}
	return rs
}

// check maps the virtual's checktype, service and their settings.
func (m *ldMapper) check(x ldv, vs *config.VirtualService) *config.Check {
	forked := false
	if d, ok := m.g["fork"]; ok && d.val == "yes" {
		forked = true
	}
	interval := m.gint("checkinterval", 10)
	if d, ok := x.get("checkinterval"); ok {
		if n, err := strconv.Atoi(firstNumber(d.val)); err == nil && n > 0 && forked {
			interval = n
			m.ok("checkinterval", d, "")
		} else {
			m.as("checkinterval", Ignored, d, "without fork=yes ldirectord ignores a virtual's checkinterval, and so does the import.")
		}
	}
	// checktimeout and negotiatetimeout default to each other, then to
	// the globals, then to 5s and 30s (ldirectord's ld_setup).
	own := func(key string) int {
		if d, ok := x.get(key); ok {
			if n, err := strconv.Atoi(firstNumber(d.val)); err == nil && n > 0 {
				m.ok(key, d, "")
				return n
			}
			m.as(key, Unsupported, d, fmt.Sprintf("%q is not seconds.", d.val))
		}
		return -1
	}
	vct, vnt := own("checktimeout"), own("negotiatetimeout")
	gct, gnt := m.gint("checktimeout", -1), m.gint("negotiatetimeout", -1)
	checkTimeout := firstPositive(vct, vnt, gct, gnt, 5)
	negTimeout := firstPositive(vnt, vct, gnt, gct, 30)
	fall := m.gint("failurecount", 1)
	if d, ok := x.get("failurecount"); ok {
		if n, err := strconv.Atoi(firstNumber(d.val)); err == nil && n > 0 && n <= 100 {
			fall = n
			m.ok("failurecount", d, "")
		} else {
			m.as("failurecount", Unsupported, d, fmt.Sprintf("%q is not a count 1-100.", d.val))
		}
	}
	fall = min(fall, 100)
	retries := 0
	if d, ok := x.get("checkcount"); ok {
		if n, err := strconv.Atoi(firstNumber(d.val)); err == nil && n > 0 {
			retries = min(n-1, 10)
			m.ok("checkcount", d, "")
		}
	} else if n := m.gint("checkcount", 1); n > 1 {
		retries = min(n-1, 10)
	}
	c := &config.Check{Interval: config.Duration(time.Duration(interval) * time.Second), Fall: fall, Retries: retries}
	timeout := checkTimeout

	ct, ctOK := x.get("checktype")
	checktype := "negotiate"
	if ctOK {
		checktype = ct.val
	}
	service := "none"
	if vs.FWMark == 0 {
		service = cmpOr(ldServicePorts[vs.Port], "none")
	}
	svc, svcOK := x.get("service")
	if svcOK {
		service = svc.val
	}
	udp := vs.Protocol == "udp"
	negotiate := func() {
		timeout = negTimeout
		typ, known := ldServices[service]
		if !known {
			typ = "tcp"
			if udp {
				typ = "ping"
			}
			if svcOK {
				m.rep.ruleAs("service unsupported", Unsupported, m.file, svc.line, 0, fmt.Sprintf("service=%s: lvsmon has no %s check: %s instead, weaker than ldirectord's.", service, service, typ))
			} else if ctOK {
				m.rep.ruleAs("service unsupported", Unsupported, m.file, ct.line, 0, fmt.Sprintf("service %s (by the port): lvsmon has no %s check: %s instead, weaker than ldirectord's.", service, service, typ))
			} else {
				m.rep.ruleAs("service unsupported", Unsupported, m.file, x.v.head.line, 0, fmt.Sprintf("checktype negotiate with service %s (by the port): lvsmon has no %s check: %s instead, weaker than ldirectord's.", service, service, typ))
			}
		} else if typ == "radius" && !m.radiusReady(x) {
			// ldirectord sends empty ones, which no server accepts.
			typ = "tcp"
			if udp {
				typ = "ping"
			}
			at := x.v.head
			if svcOK {
				at = svc
			}
			m.as("service", Unsupported, at, fmt.Sprintf("service radius without login, passwd and secret: ldirectord's check cannot pass without them: %s instead.", typ))
		} else if login, ok := x.get("login"); ldSQL[typ] && (!ok || login.val == "") {
			// ldirectord's check_sql refuses to run without a login
			// (every server stays out); lvsmon cannot log in either.
			typ = "tcp"
			at := x.v.head
			if svcOK {
				at = svc
			} else if ctOK {
				at = ct
			}
			m.as("service", Changed, at, fmt.Sprintf("service %s without login: ldirectord's check cannot run and keeps every server out; lvsmon's needs a username: tcp instead (set username, password and query).", service))
			known = false
		} else if svcOK {
			m.ok("service", svc, "")
		}
		c.Type = typ
		if !known {
			return
		}
		req, reqOK := x.get("request")
		rcv, rcvOK := x.get("receive")
		path := "/"
		if reqOK {
			path = req.val
			if !strings.HasPrefix(path, "/") {
				path = "/" + path
			}
		}
		switch typ {
		case "http", "https":
			c.Path = path
			if d, ok := x.get("virtualhost"); ok {
				c.Host = d.val
				m.ok("virtualhost", d, "")
			}
			if d, ok := x.get("httpmethod"); ok {
				c.Method = strings.ToUpper(d.val)
				m.ok("httpmethod", d, "")
			}
			if reqOK {
				m.ok("request", req, "")
			}
			switch {
			case rcvOK && c.Method == "HEAD":
				m.as("receive", Unsupported, rcv, "with httpmethod=HEAD there is no body to match: ldirectord's check can never pass, lvsmon's checks the status only.")
			case rcvOK:
				m.expect(c, rcv)
			}
		case "dns":
			name := strings.TrimPrefix(path, "/")
			if name == "" {
				name = "."
			}
			c.QueryName = name
			if a, err := netip.ParseAddr(name); err == nil {
				c.QueryType, c.QueryName = "PTR", ptrName(a)
			}
			if reqOK {
				m.ok("request", req, "")
			}
			if rcvOK {
				if a, err := netip.ParseAddr(rcv.val); err == nil && a.Is4() && c.QueryType != "PTR" {
					c.Expect = a.String()
					m.ok("receive", rcv, "an address the A answer must hold:")
				} else {
					m.as("receive", Changed, rcv, "lvsmon's dns check compares values, not regular expressions: any answer will do.")
				}
			}
		case "simpletcp":
			if reqOK {
				c.Send = strings.TrimPrefix(path, "/")
				m.ok("request", req, "")
			}
			if rcvOK {
				m.expect(c, rcv)
			}
		case "ldap", "ldaps":
			m.ldapCheck(x, c, path, req, reqOK, rcv, rcvOK)
		case "radius":
			m.radiusCheck(x, c)
		case "pop3", "imap", "pop3s", "imaps":
			if d, ok := x.get("login"); ok && d.val != "" {
				c.Username = d.val
				m.ok("login, passwd", d, "login:")
				if p, ok := x.get("passwd"); ok {
					c.Password = p.val
					m.ok("login, passwd", p, "passwd:")
				}
			}
		case "sip":
			if d, ok := x.get("login"); ok && d.val != "" {
				c.SIPURI = "sip:" + d.val
				m.ok("login (sip)", d, "")
			}
			if vs.FWMark != 0 {
				c.SIPTransport = "tcp" // ldirectord opens a stream socket for protocol fwm
			}
		case "mysql", "pgsql":
			login, _ := x.get("login")
			c.Username = login.val
			if d, ok := x.get("passwd"); ok {
				c.Password = d.val
			}
			if d, ok := x.get("database"); ok {
				c.Database = d.val
			}
			// ldirectord drops a leading slash (a request is a path
			// for most services).
			if q := strings.TrimSpace(strings.TrimPrefix(req.val, "/")); reqOK && q != "" {
				c.Query = q
				m.ok("request", req, "")
			} else {
				c.Query = config.DefaultQuery
				at := req
				if !reqOK {
					at = login
				}
				m.as("request", Changed, at, "ldirectord's check needs a request and keeps every server out without one; lvsmon runs "+config.DefaultQuery+".")
			}
		}
		switch typ {
		case "ftp", "smtp":
			for _, d := range []ldLine{req, rcv} {
				if d.key != "" {
					m.as(d.key, Changed, d, "lvsmon's "+typ+" check reads the greeting only: left out.")
				}
			}
		}
	}
	switch {
	case checktype == "negotiate":
		negotiate()
		if ctOK {
			m.ok("checktype", ct, "")
		}
	case firstNumber(checktype) == checktype && checktype != "":
		negotiate()
		m.ok("checktype=N", ct, "")
	case checktype == "connect":
		c.Type = "tcp"
		if udp {
			c.Type = "ping"
		}
		m.ok("checktype", ct, "")
	case checktype == "ping":
		c.Type = "ping"
		m.ok("checktype", ct, "")
	case checktype == "on":
		c.Type = "none"
		m.ok("checktype", ct, "")
	case checktype == "external" || checktype == "external-perl":
		cmd := "/bin/true"
		if d, ok := x.get("checkcommand"); ok {
			cmd = d.val
			m.ok("checkcommand", d, "")
		}
		words, err := splitWords(cmd)
		if err != nil || len(words) == 0 || strings.Contains(words[0], "/") && !strings.HasPrefix(words[0], "/") {
			m.as("checkcommand", Unsupported, ct, fmt.Sprintf("%q is not a command with an absolute path: the servers get a tcp check.", cmd))
			c.Type = "tcp"
			break
		}
		c.Type = "external"
		if checktype == "external-perl" {
			c.Command, c.Args = "/usr/bin/perl", words
			m.ok("checktype=external-perl", ct, "")
		} else {
			c.Command, c.Args = words[0], words[1:]
			m.ok("checktype", ct, "")
		}
	default:
		m.as("checktype", Unsupported, ct, fmt.Sprintf("%q is not a checktype ldirectord knows: the servers get a tcp check.", checktype))
		c.Type = "tcp"
	}
	if d, ok := x.get("checkport"); ok {
		if p, err := strconv.Atoi(firstNumber(d.val)); err == nil && p > 0 && p < 65536 {
			c.Port = p
			if p == vs.Port {
				c.Port = 0
			}
			m.ok("checkport", d, "")
		} else {
			m.as("checkport", Unsupported, d, fmt.Sprintf("%q is not a port.", d.val))
		}
	}
	// Directives the chosen check does not read.
	for _, k := range []string{"request", "receive", "virtualhost", "httpmethod", "service", "checkcommand"} {
		if d, ok := x.get(k); ok && !m.reported(d.line) {
			m.as(k, Ignored, d, fmt.Sprintf("ldirectord does not read it for checktype=%s with this service either.", checktype))
		}
	}
	c.Timeout = config.Duration(time.Duration(timeout) * time.Second)
	for _, note := range fixCheck(c) {
		m.rep.add(Entry{File: m.file, Line: x.v.head.line, Directive: "check", Status: Unsupported, Note: note})
	}
	if c.Type == "none" {
		c.Retries, c.Fall = 0, 0
	}
	return c
}

// ldCreds is the rule of the credentials the ldap, ldaps and radius
// checks take.
const ldCreds = "login, passwd, secret (ldap, radius)"

// ldapCheck maps an ldap or ldaps check as ldirectord's check_ldap
// reads it: request is the search's base (scope base, any entry), receive
// is matched against the entry's DN, and login and passwd, when both are
// set, make the bind.
func (m *ldMapper) ldapCheck(x ldv, c *config.Check, path string, req ldLine, reqOK bool, rcv ldLine, rcvOK bool) {
	if reqOK {
		base := strings.TrimPrefix(path, "/")
		if _, err := ldap.ParseDN(base); err != nil {
			m.as("request", Unsupported, req, fmt.Sprintf("%q is not a DN: the search is of the root DSE.", base))
		} else {
			c.BaseDN = base
			m.ok("request", req, "the search base:")
		}
	}
	if rcvOK {
		m.expect(c, rcv)
	}
	login, lok := x.get("login")
	pw, pok := x.get("passwd")
	if lok && pok {
		c.Username, c.Password = login.val, pw.val
		m.ok(ldCreds, login, "login:")
		m.ok(ldCreds, pw, "passwd:")
		return
	}
	for _, d := range []ldLine{login, pw} {
		if d.key != "" {
			m.as(ldCreds, Changed, d, d.key+": ldirectord binds anonymously unless both login and passwd are set, and so does the import: left out.")
		}
	}
}

// radiusReady reports whether a virtual has what a radius check needs.
func (m *ldMapper) radiusReady(x ldv) bool {
	for _, k := range []string{"login", "passwd", "secret"} {
		if d, ok := x.get(k); !ok || d.val == "" {
			return false
		}
	}
	return true
}

// radiusCheck maps a radius check (radiusReady): login, passwd and
// secret make the Access-Request.
func (m *ldMapper) radiusCheck(x ldv, c *config.Check) {
	login, _ := x.get("login")
	pw, _ := x.get("passwd")
	secret, _ := x.get("secret")
	c.Username, c.Password, c.RADIUSSecret = login.val, pw.val, secret.val
	for _, d := range []ldLine{login, pw, secret} {
		m.ok(ldCreds, d, d.key+":")
	}
}

func (m *ldMapper) reported(line int) bool {
	return m.rep.lines[fileLine{m.file, line}]
}

// expect maps receive to a regular expression, when Go can compile it.
func (m *ldMapper) expect(c *config.Check, d ldLine) {
	if _, err := regexp.Compile(d.val); err != nil {
		m.as("receive", Unsupported, d, fmt.Sprintf("%q is not a Go (RE2) regular expression: the answer is not matched.", d.val))
		return
	}
	c.Expect = d.val
	m.ok("receive", d, "")
}

func firstPositive(vs ...int) int {
	for _, v := range vs {
		if v > 0 {
			return v
		}
	}
	return 0
}

// ptrName is the reverse name of an address, as ldirectord asks for a
// request that is an address.
func ptrName(a netip.Addr) string {
	if a.Is4() {
		b := a.As4()
		return fmt.Sprintf("%d.%d.%d.%d.in-addr.arpa", b[3], b[2], b[1], b[0])
	}
	b := a.As16()
	var s strings.Builder
	for i := 15; i >= 0; i-- {
		fmt.Fprintf(&s, "%x.%x.", b[i]&0xf, b[i]>>4)
	}
	return s.String() + "ip6.arpa"
}
