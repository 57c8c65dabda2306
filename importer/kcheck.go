package importer

import (
	"encoding/hex"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/config"
)

// kReal is one real_server as read, before it is fitted to a service.
type kReal struct {
	n *kNode
	// inhibitAt and alphaAt are where the server's own inhibit_on_failure
	// and alpha stand.
	inhibitAt, alphaAt *kNode
	rs                 config.RealServer
	inhibit            bool
	alpha              bool
	checks             []*config.Check
	// checked: the block has checkers (some may have mapped to nothing).
	checked bool
}

// reals reads the real_server blocks of s and settles the service's
// checks: lvsmon checks every server of a service alike, so the checks
// most real servers share become the service's, and a server whose
// checkers differ is reported.
func (m *kMapper) reals(s *kService) ([]config.RealServer, []*config.Check) {
	var rs []*kReal
	for _, n := range s.reals {
		if r := m.real(s, n); r != nil {
			rs = append(rs, r)
		}
	}
	// The most common list of checks (the first of equals).
	count := map[string]int{}
	best, bestKey := -1, ""
	for i, r := range rs {
		k := checksKey(r.checks)
		count[k]++
		if len(r.checks) > 0 && (best < 0 || count[k] > count[bestKey]) {
			best, bestKey = i, k
		}
	}
	var checks []*config.Check
	if best >= 0 {
		checks = rs[best].checks
	}
	var out []config.RealServer
	inhibitAll, alphaAll := true, true
	for _, r := range rs {
		inhibitAll = inhibitAll && (r.inhibit || s.timing.inhibit)
		alphaAll = alphaAll && (r.alpha || s.timing.alpha)
	}
	for _, r := range rs {
		switch k := checksKey(r.checks); {
		case best < 0 || k == bestKey:
		case !r.checked:
			m.rep.add(Entry{File: r.n.File, Line: r.n.Line, Directive: "real_server", Status: Changed,
				Note: fmt.Sprintf("no checker: keepalived never takes it out; lvsmon checks it as the service's other servers (from %s:%d)", rs[best].n.File, rs[best].n.Line)})
		default:
			m.rep.add(Entry{File: r.n.File, Line: r.n.Line, Directive: "real_server", Status: Changed,
				Note: fmt.Sprintf("its checkers differ from those of the real_server at %s:%d, which lvsmon applies to every server of the service", rs[best].n.File, rs[best].n.Line)})
		}
		if inhibitAll {
			s.vs.OnFailure = "quiescent"
		} else if r.inhibit {
			m.rep.add(Entry{File: r.inhibitAt.File, Line: r.inhibitAt.Line, Directive: "inhibit_on_failure", Status: Changed,
				Note: "lvsmon sets on_failure per service, and not every real server has it: this one is removed when it fails"})
		}
		if alphaAll {
			s.vs.Startup = "down"
		} else if r.alphaAt != nil {
			m.rep.add(Entry{File: r.alphaAt.File, Line: r.alphaAt.Line, Directive: "alpha", Status: Changed,
				Note: "lvsmon sets startup per service, and not every real server has alpha: this one counts as up until checked"})
		}
		out = append(out, r.rs)
	}
	return out, checks
}

// checksKey is a comparable form of a list of checks.
func checksKey(cs []*config.Check) string {
	var b strings.Builder
	for _, c := range cs {
		if n := encodeValue(reflectOf(c)); n != nil {
			fmt.Fprintf(&b, "%s;", nodeString(n))
		}
	}
	return b.String()
}

// real reads one real_server block.
func (m *kMapper) real(s *kService, n *kNode) *kReal {
	r := &kReal{n: n}
	if len(n.Args) < 1 || len(n.Args) > 2 {
		m.rep.ruleAs("real_server", Unsupported, n.File, n.Line, blockEnd(n), "want an address and a port: left out.")
		return nil
	}
	a, err := parseIP(n.Args[0])
	if err != nil {
		m.rep.ruleAs("real_server", Unsupported, n.File, n.Line, blockEnd(n), fmt.Sprintf("%q is not an IP address (host names are not resolved): left out.", n.Args[0]))
		return nil
	}
	r.rs.Address = a.Unmap().String()
	if len(n.Args) == 2 {
		p, err := strconv.Atoi(n.Args[1])
		if err != nil || p < 0 || p > 65535 {
			m.rep.ruleAs("real_server", Unsupported, n.File, n.Line, blockEnd(n), fmt.Sprintf("%q is not a port: left out.", n.Args[1]))
			return nil
		}
		r.rs.Port = p
	}
	m.rep.rule("real_server", n.File, n.Line, 0, strings.Join(n.Args, " ")+":")
	r.rs.Forward = s.fwd
	t := s.timing
	var checkers []*kNode
	for _, c := range n.Kids {
		arg := ""
		if len(c.Args) > 0 {
			arg = c.Args[0]
		}
		switch c.Key {
		case "weight":
			w, err := strconv.Atoi(arg)
			if err != nil || w < 0 || w > 65535 {
				m.rep.ruleAs("weight", Unsupported, c.File, c.Line, 0, fmt.Sprintf("%q is not a weight 0-65535: the server keeps weight 1.", arg))
				continue
			}
			r.rs.Weight = &w
			m.rep.rule("weight", c.File, c.Line, 0, "")
		case "lvs_method":
			if f := kForward(arg); f != "" {
				r.rs.Forward = f
				m.rep.rule("lvs_method", c.File, c.Line, 0, "")
			} else {
				m.rep.ruleAs("lvs_method", Unsupported, c.File, c.Line, 0, fmt.Sprintf("%q is not NAT, DR or TUN.", arg))
			}
		case "uthreshold", "lthreshold":
			v, err := strconv.ParseUint(arg, 10, 32)
			if err != nil {
				m.rep.ruleAs(c.Key, Unsupported, c.File, c.Line, 0, fmt.Sprintf("%q is not a number: left out.", arg))
				continue
			}
			if c.Key == "uthreshold" {
				r.rs.UpperThreshold = uint32(v)
			} else {
				r.rs.LowerThreshold = uint32(v)
			}
			m.rep.rule(c.Key, c.File, c.Line, 0, "")
		case "inhibit_on_failure":
			r.inhibit, r.inhibitAt = true, c
			m.rep.rule(c.Key, c.File, c.Line, 0, "")
		case "alpha":
			r.alpha, r.alphaAt = true, c
			m.rep.rule(c.Key, c.File, c.Line, 0, "")
		case "notify_up", "notify_down", "smtp_alert":
			m.rep.rule(c.Key, c.File, c.Line, 0, "")
		case "virtualhost":
			t.virtualhost = arg
			m.rep.rule(c.Key, c.File, c.Line, 0, "")
		case "snmp_name":
			m.rep.ruleAs("snmp_name", Ignored, c.File, c.Line, 0, "a real server has no name in lvsmon.")
		default:
			if m.timingDirective(&t, c) {
				continue
			}
			if _, isChecker := checkerTypes[c.Key]; isChecker && c.Block {
				checkers = append(checkers, c)
				continue
			}
			m.unknown(c, "real_server")
		}
	}
	r.alpha = r.alpha || t.alpha
	if lo, hi := r.rs.LowerThreshold, r.rs.UpperThreshold; lo > 0 && hi > 0 && lo > hi {
		m.rep.add(Entry{File: n.File, Line: n.Line, Directive: "lthreshold", Status: Unsupported, Note: fmt.Sprintf("the lower threshold %d is above the upper %d: both are left out", lo, hi)})
		r.rs.LowerThreshold, r.rs.UpperThreshold = 0, 0
	}
	for _, c := range checkers {
		r.checked = true
		r.checks = append(r.checks, m.checker(c, r, t, s.vs.Protocol)...)
	}
	return r
}

// checkerTypes maps keepalived's checkers to lvsmon check types ("" for
// none).
var checkerTypes = map[string]string{
	"HTTP_GET": "http", "SSL_GET": "https", "TCP_CHECK": "tcp", "SMTP_CHECK": "smtp", "DNS_CHECK": "dns",
	"UDP_CHECK": "udp", "PING_CHECK": "ping", "MISC_CHECK": "external", "FILE_CHECK": "file", "BFD_CHECK": "",
}

// checker maps one checker block to lvsmon checks (several for an
// HTTP_GET with several urls or an SMTP_CHECK with several hosts).
func (m *kMapper) checker(c0 *kNode, r *kReal, t kTiming, proto string) []*config.Check {
	c := c0
	typ := checkerTypes[c.Key]
	if typ == "file" {
		return m.fileCheck(c)
	}
	if typ == "" {
		m.rep.rule(c.Key, c.File, c.Line, c.End, "")
		return nil
	}
	m.rep.rule(c.Key, c.File, c.Line, 0, "")
	base := &config.Check{Type: typ}
	retry := 1
	switch c.Key {
	case "DNS_CHECK":
		retry = 3
		base.QueryType, base.QueryName = "SOA", "."
	case "MISC_CHECK":
		retry = 0
	}
	var subs []*config.Check // url or host blocks
	var miscTimeout time.Duration
	var sni bool
	var sniName string
	ok := func(key string, n *kNode) { m.rep.rule(key, n.File, n.Line, 0, "") }
	bad := func(key string, n *kNode, why string) {
		m.rep.ruleAs(key, Unsupported, n.File, n.Line, blockEnd(n), why)
	}
	for _, n := range c.Kids {
		arg := strings.Join(n.Args, " ")
		switch {
		case m.timingDirective(&t, n):
		case n.Key == "connect_ip" || n.Key == "connect_port" || n.Key == "bindto" || n.Key == "bind_port" || n.Key == "bind_if":
			m.endpoint(base, n, r)
		case n.Key == "fwmark":
			m.rep.rule("checker fwmark", n.File, n.Line, 0, "")
		case n.Key == "alpha":
			r.alpha, r.alphaAt = true, n
			ok("alpha", n)
		case n.Key == "url" && n.Block && (typ == "http" || typ == "https"):
			ok("url", n)
			subs = append(subs, m.url(n))
		case n.Key == "virtualhost" && (typ == "http" || typ == "https"):
			t.virtualhost = arg
			ok("virtualhost", n)
		case n.Key == "http_protocol" || n.Key == "tls_compliant":
			ok(n.Key, n)
		case n.Key == "fast_recovery":
			ok(n.Key, n)
		case n.Key == "enable_sni" && typ == "https":
			sni = true
			ok(n.Key, n)
		case n.Key == "sni_name" && typ == "https":
			sniName = arg
			ok(n.Key, n)
		case n.Key == "helo_name" && typ == "smtp":
			if arg == "" || strings.ContainsAny(arg, " \t") {
				bad("helo_name", n, fmt.Sprintf("%q is not a host name: lvsmon greets with its host name.", arg))
				continue
			}
			base.EHLO = arg
			ok("helo_name", n)
		case n.Key == "host" && n.Block && typ == "smtp":
			ok("host", n)
			h := &config.Check{}
			for _, e := range n.Kids {
				m.endpoint(h, e, r)
			}
			subs = append(subs, h)
		case n.Key == "type" && typ == "dns":
			qt := strings.ToUpper(arg)
			if !slicesContains(config.DNSQueryTypes, qt) {
				bad("type", n, fmt.Sprintf("%q is not a query type lvsmon asks: it asks SOA.", arg))
				continue
			}
			base.QueryType = qt
			ok("type", n)
		case n.Key == "name" && typ == "dns":
			base.QueryName = arg
			ok("name", n)
		case n.Key == "payload" && typ == "udp":
			b, err := hex.DecodeString(strings.ReplaceAll(arg, " ", ""))
			if err != nil || len(b) > config.MaxUDPPayload {
				bad("payload", n, fmt.Sprintf("%q is not hex bytes: the check sends an empty datagram.", arg))
				continue
			}
			base.Send = hexEscape(b)
			ok("payload", n)
		case n.Key == "require_reply" && typ == "udp":
			if arg == "" {
				ok("require_reply", n)
				continue
			}
			b, err := hex.DecodeString(strings.ReplaceAll(arg, " ", ""))
			if err != nil || !printable(b) {
				bad("require_reply", n, "the reply's bytes are not printable text (or hold X wildcards), which lvsmon cannot match: any reply will do.")
				continue
			}
			base.Expect = "^" + regexp.QuoteMeta(string(b))
			ok("require_reply", n)
		case (n.Key == "min_reply_length" || n.Key == "max_reply_length") && typ == "udp":
			m.rep.rule("reply length", n.File, n.Line, 0, n.Key+":")
		case n.Key == "misc_path" && typ == "external":
			words, err := splitWords(arg)
			switch {
			case err != nil || len(words) == 0:
				bad("misc_path", n, fmt.Sprintf("%q is not a command: the check is left out.", arg))
				return nil
			case strings.Contains(words[0], "/") && !filepath.IsAbs(words[0]):
				bad("misc_path", n, fmt.Sprintf("%q is relative to keepalived's directory: write an absolute path. The check is left out.", words[0]))
				return nil
			}
			base.Command, base.Args = words[0], words[1:]
			ok("misc_path", n)
		case n.Key == "misc_timeout" && typ == "external":
			d, valid := seconds(n)
			if !valid || d <= 0 {
				bad("misc_timeout", n, fmt.Sprintf("%q is not a time in seconds: the delay_loop applies.", arg))
				continue
			}
			miscTimeout = d
			ok("misc_timeout", n)
		case n.Key == "misc_dynamic" && typ == "external":
			base.Dynamic = true
			ok("misc_dynamic", n)
		case n.Key == "user" && typ == "external":
			ok("user", n)
		default:
			m.unknown(n, c.Key)
		}
	}
	if typ == "external" && base.Command == "" {
		m.rep.ruleAs("MISC_CHECK", Unsupported, c.File, c.Line, 0, "no misc_path: the check is left out.")
		return nil
	}
	base.Interval = config.Duration(max(t.delayLoop, 100*time.Millisecond))
	timeout := t.timeout
	if typ == "external" {
		timeout = cmpDur(miscTimeout, t.delayLoop)
	}
	base.Timeout = config.Duration(max(timeout, 100*time.Millisecond))
	if t.delayLoop < 100*time.Millisecond || timeout < 100*time.Millisecond {
		m.rep.add(Entry{File: c.File, Line: c.Line, Directive: c.Key, Status: Changed, Note: "a delay_loop or timeout below 100ms becomes 100ms, lvsmon's least"})
	}
	if t.retry >= 0 {
		retry = t.retry
	}
	if retry > 10 {
		m.rep.add(Entry{File: c.File, Line: c.Line, Directive: c.Key, Status: Changed, Note: fmt.Sprintf("retry %d becomes 10, lvsmon's most", retry)})
		retry = 10
	}
	base.Retries = retry
	if typ == "http" || typ == "https" {
		base.Host = t.virtualhost
		if typ == "https" && (sni || sniName != "") {
			base.SNI = cmpOr(sniName, hostOnly(t.virtualhost))
		}
		if len(subs) == 0 {
			subs = []*config.Check{{Path: "/"}}
		}
	}
	if len(subs) == 0 {
		subs = []*config.Check{{}}
	}
	var out []*config.Check
	for _, sub := range subs {
		c := *base
		if sub.Path != "" {
			c.Path = sub.Path
		}
		if sub.Status != "" {
			c.Status = sub.Status
		}
		if sub.Host != "" {
			c.Host = sub.Host
		}
		if sub.Expect != "" {
			c.Expect = sub.Expect
		}
		if sub.Address != "" {
			c.Address = sub.Address
		}
		if sub.Port != 0 {
			c.Port = sub.Port
		}
		for _, note := range fixCheck(&c) {
			m.rep.add(Entry{File: c0.File, Line: c0.Line, Directive: c0.Key, Status: Unsupported, Note: note})
		}
		out = append(out, &c)
	}
	return out
}

func cmpDur(a, b time.Duration) time.Duration {
	if a != 0 {
		return a
	}
	return b
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[:i], ":") {
		return h[:i]
	}
	return h
}

func slicesContains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// endpoint maps connect_ip, connect_port and the bind directives.
func (m *kMapper) endpoint(c *config.Check, n *kNode, r *kReal) {
	arg := ""
	if len(n.Args) > 0 {
		arg = n.Args[0]
	}
	switch n.Key {
	case "connect_ip":
		a, err := parseIP(arg)
		if err != nil {
			m.rep.ruleAs("connect_ip", Unsupported, n.File, n.Line, 0, fmt.Sprintf("%q is not an IP address: the check connects to the real server.", arg))
			return
		}
		if a.Unmap().String() != r.rs.Address {
			c.Address = a.Unmap().String()
		}
		m.rep.rule("connect_ip", n.File, n.Line, 0, "")
	case "connect_port":
		p, err := strconv.Atoi(arg)
		if err != nil || p < 1 || p > 65535 {
			m.rep.ruleAs("connect_port", Unsupported, n.File, n.Line, 0, fmt.Sprintf("%q is not a port: the check connects to the real server's.", arg))
			return
		}
		if p != r.rs.Port {
			c.Port = p
		}
		m.rep.rule("connect_port", n.File, n.Line, 0, "")
	case "bindto", "bind_port", "bind_if":
		m.rep.rule(n.Key, n.File, n.Line, 0, "")
	default:
		m.unknown(n, "host")
	}
}

// url maps a url block of HTTP_GET or SSL_GET.
func (m *kMapper) url(u *kNode) *config.Check {
	c := &config.Check{}
	for _, n := range u.Kids {
		arg := strings.Join(n.Args, " ")
		switch n.Key {
		case "path":
			if !strings.HasPrefix(arg, "/") {
				arg = "/" + arg
			}
			c.Path = arg
			m.rep.rule("url.path", n.File, n.Line, 0, "")
		case "digest":
			m.rep.rule("url.digest", n.File, n.Line, 0, "")
		case "status_code":
			st := strings.Join(n.Args, ",")
			if _, err := config.ParseStatus(st); err != nil {
				m.rep.ruleAs("url.status_code", Unsupported, n.File, n.Line, 0, fmt.Sprintf("%v: the check wants 200-299.", err))
				continue
			}
			c.Status = st
			m.rep.rule("url.status_code", n.File, n.Line, 0, "")
		case "virtualhost":
			c.Host = arg
			m.rep.rule("url.virtualhost", n.File, n.Line, 0, "")
		case "regex":
			if _, err := regexp.Compile(arg); err != nil {
				m.rep.ruleAs("url.regex", Unsupported, n.File, n.Line, 0, fmt.Sprintf("%q is not a Go regular expression: the body is not matched.", arg))
				continue
			}
			c.Expect = arg
			m.rep.rule("url.regex", n.File, n.Line, 0, "")
		case "regex_no_match", "regex_options", "regex_stack", "regex_min_offset", "regex_max_offset":
			m.rep.rule("url.regex options", n.File, n.Line, 0, n.Key+":")
		default:
			m.unknown(n, "url")
		}
	}
	return c
}

func hexEscape(b []byte) string {
	var s strings.Builder
	for _, c := range b {
		fmt.Fprintf(&s, `\x%02x`, c)
	}
	return s.String()
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// splitWords splits a command line into words: blanks separate them,
// double or single quotes keep blanks in one.
func splitWords(s string) ([]string, error) {
	var out []string
	var cur strings.Builder
	in, quote := false, byte(0)
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0 && c == quote:
			quote = 0
		case quote != 0:
			cur.WriteByte(c)
		case c == '"' || c == '\'':
			quote, in = c, true
		case c == ' ' || c == '\t':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(c)
			in = true
		}
	}
	if quote != 0 {
		return nil, fmt.Errorf("an unterminated quote")
	}
	if in {
		out = append(out, cur.String())
	}
	return out, nil
}

// fitReals makes the real servers fit one service: its family, its
// port rules (only NAT rewrites ports), no server twice.
func (m *kMapper) fitReals(s *kService, vs *config.VirtualService, reals []config.RealServer, fam string) []config.RealServer {
	var out []config.RealServer
	seen := map[string]bool{}
	for i, r := range reals {
		n := s.reals[0]
		if i < len(s.reals) {
			n = s.reals[i]
		}
		n = m.realNode(s, r, n)
		if strings.Contains(r.Address, ":") != (fam == "inet6") {
			m.once(Entry{File: n.File, Line: n.Line, Directive: "real_server", Status: Unsupported, Note: fmt.Sprintf("%s is not in the service's address family: left out", r.Address)})
			continue
		}
		if vs.FWMark != 0 && r.Port == 0 {
			m.once(Entry{File: n.File, Line: n.Line, Directive: "real_server", Status: Unsupported, Note: "no port: lvsmon's config needs a port on a fwmark service's server (IPVS's port 0, the client's port kept, cannot be written yet): add the port by hand; left out"})
			continue
		}
		if vs.FWMark == 0 && r.Forward != "nat" && r.Port != 0 && r.Port != vs.Port {
			m.once(Entry{File: n.File, Line: n.Line, Directive: "real_server", Status: Changed, Note: fmt.Sprintf("port %d: with %s IPVS keeps the destination port %d, and lvsmon writes that; keepalived's checks went to %d, lvsmon's go to %d unless the check sets a port", r.Port, r.Forward, vs.Port, r.Port, vs.Port)})
			r.Port = vs.Port
		}
		key := net2(r.Address, cmpInt(r.Port, vs.Port))
		if seen[key] {
			m.once(Entry{File: n.File, Line: n.Line, Directive: "real_server", Status: Unsupported, Note: fmt.Sprintf("%s is listed twice in this service: the second is left out", key)})
			continue
		}
		seen[key] = true
		out = append(out, r)
	}
	return out
}

// realNode finds the real_server block a fitted server came from.
func (m *kMapper) realNode(s *kService, r config.RealServer, fallback *kNode) *kNode {
	for _, n := range s.reals {
		if len(n.Args) >= 1 && n.Args[0] == r.Address && (len(n.Args) < 2 || n.Args[1] == strconv.Itoa(r.Port)) {
			return n
		}
	}
	return fallback
}

func cmpInt(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// once adds an entry unless the same one was added (a group's services
// share their real servers).
func (m *kMapper) once(e Entry) {
	if !m.rep.has[e] {
		m.rep.add(e)
	}
}

// sorry maps the sorry_server of s for one service.
func (m *kMapper) sorry(s *kService, vs *config.VirtualService, fam string) *config.RealServer {
	n := s.sorry
	if n == nil {
		return nil
	}
	bad := func(why string) *config.RealServer {
		m.once(Entry{File: n.File, Line: n.Line, Directive: "sorry_server", Status: Unsupported, Note: why})
		return nil
	}
	if len(n.Args) < 1 || len(n.Args) > 2 {
		return bad("want an address and a port: left out")
	}
	a, err := parseIP(n.Args[0])
	if err != nil {
		return bad(fmt.Sprintf("%q is not an IP address: left out", n.Args[0]))
	}
	r := &config.RealServer{Address: a.Unmap().String(), Forward: cmpOr(s.sorryFwd, s.fwd)}
	if len(n.Args) == 2 {
		p, err := strconv.Atoi(n.Args[1])
		if err != nil || p < 0 || p > 65535 {
			return bad(fmt.Sprintf("%q is not a port: left out", n.Args[1]))
		}
		r.Port = p
	}
	if strings.Contains(r.Address, ":") != (fam == "inet6") {
		return bad("not in the service's address family: left out")
	}
	if vs.FWMark != 0 && r.Port == 0 {
		return bad("no port: lvsmon's config needs a port on a fwmark service's server (IPVS's port 0, the client's port kept, cannot be written yet): add the port by hand; left out")
	}
	if vs.FWMark == 0 && r.Forward != "nat" && r.Port != 0 && r.Port != vs.Port {
		m.once(Entry{File: n.File, Line: n.Line, Directive: "sorry_server", Status: Changed, Note: fmt.Sprintf("port %d: with %s IPVS keeps the destination port %d, which lvsmon writes", r.Port, r.Forward, vs.Port)})
		r.Port = vs.Port
	}
	for _, x := range vs.Reals {
		if x.Address == r.Address && cmpInt(x.Port, vs.Port) == cmpInt(r.Port, vs.Port) {
			return bad("it is also a real server of the service: left out")
		}
	}
	m.once(Entry{File: n.File, Line: n.Line, Directive: "sorry_server", Status: Mapped, Note: "→ sorry_server. " + m.rep.rules["sorry_server"].Note})
	return r
}

// kTrackFile is a top-level track_file block (vrrp_track_file is its
// older name): a file and the weight its value is multiplied by.
type kTrackFile struct {
	n       *kNode
	path    string
	weight  int
	reverse bool
	used    bool // a FILE_CHECK names it
	// notes are the entries of its lines, reported with the block once
	// it is known whether a FILE_CHECK uses it.
	notes []Entry
}

// trackFile reads a track_file block. keepalived bounds its weight to
// -254..254.
func (m *kMapper) trackFile(n *kNode) *kTrackFile {
	tf := &kTrackFile{n: n, weight: 1}
	note := func(k *kNode, st Status, why string) {
		tf.notes = append(tf.notes, Entry{File: k.File, Line: k.Line, Directive: k.Key, Status: st, Note: why})
	}
	for _, k := range n.Kids {
		switch k.Key {
		case "file":
			if len(k.Args) == 1 {
				tf.path = k.Args[0]
			}
		case "weight":
			w, err := strconv.Atoi(strings.Join(k.Args[:min(1, len(k.Args))], ""))
			if err != nil || w < -254 || w > 254 {
				note(k, Unsupported, fmt.Sprintf("%q is not a weight in -254..254: keepalived uses 1, and so does the import.", strings.Join(k.Args, " ")))
				continue
			}
			tf.weight = w
			if len(k.Args) >= 2 {
				tf.reverse = k.Args[1] == "reverse"
			}
		case "init_file":
			note(k, Unsupported, "lvsmon does not create or write the file: until it exists a file check is inconclusive (it changes nothing).")
		}
	}
	return tf
}

// reportTrackFiles reports the top-level track_file blocks: mapped into
// the file checks of the FILE_CHECKs that name them, or left with
// keepalived's VRRP.
func (m *kMapper) reportTrackFiles(root *kNode) {
	for _, n := range root.Kids {
		if n.Key != "track_file" && n.Key != "vrrp_track_file" {
			continue
		}
		tf := m.trackFiles[strings.Join(n.Args, " ")]
		if tf == nil || tf.n != n || !tf.used {
			m.whole("vrrp_track_file", n, n.Key+":")
			continue
		}
		m.whole("track_file", n, strings.Join(n.Args, " ")+":")
		for _, e := range tf.notes {
			m.rep.add(e)
		}
	}
}

// fileCheck maps a FILE_CHECK block to a file check. keepalived reads
// the file when inotify says it changed; lvsmon reads it every second.
func (m *kMapper) fileCheck(c *kNode) []*config.Check {
	var tf *kTrackFile
	var name string
	weight, reverse, own := 0, false, false
	for _, n := range c.Kids {
		arg := strings.Join(n.Args, " ")
		switch n.Key {
		case "track_file":
			name = arg
			tf = m.trackFiles[arg]
			if tf == nil {
				continue // the block is reported as a whole below
			}
			m.rep.rule("FILE_CHECK.track_file", n.File, n.Line, 0, "")
		case "weight":
			w, err := strconv.Atoi(strings.Join(n.Args[:min(1, len(n.Args))], ""))
			switch {
			case err != nil || (len(n.Args) >= 2 && n.Args[1] != "reverse" && n.Args[1] != "noreverse"):
				m.rep.ruleAs("FILE_CHECK.weight", Unsupported, n.File, n.Line, 0, fmt.Sprintf("%q is not a weight [reverse]: the track_file's weight applies, as in keepalived.", arg))
				continue
			case w < -config.MaxWeight || w > config.MaxWeight:
				m.rep.ruleAs("FILE_CHECK.weight", Changed, n.File, n.Line, 0, fmt.Sprintf("weight %d is beyond lvsmon's -%d..%d: bounded to it.", w, config.MaxWeight, config.MaxWeight))
				w = max(-config.MaxWeight, min(w, config.MaxWeight))
			default:
				m.rep.rule("FILE_CHECK.weight", n.File, n.Line, 0, "")
			}
			weight, reverse, own = w, len(n.Args) >= 2 && n.Args[1] == "reverse", true
		case "dynamic":
			m.rep.rule("FILE_CHECK.dynamic", n.File, n.Line, 0, "")
		default:
			m.unknown(n, c.Key)
		}
	}
	switch {
	case name == "":
		m.rep.ruleAs("FILE_CHECK", Unsupported, c.File, c.Line, c.End, "no track_file: the check is left out, as keepalived leaves it.")
		return nil
	case tf == nil:
		m.rep.ruleAs("FILE_CHECK", Unsupported, c.File, c.Line, c.End, fmt.Sprintf("track_file %q is not defined: the check is left out.", name))
		return nil
	case tf.path == "" || !filepath.IsAbs(tf.path):
		m.rep.ruleAs("FILE_CHECK", Unsupported, c.File, c.Line, c.End, fmt.Sprintf("track_file %q has no absolute file path (%q): the check is left out.", name, tf.path))
		return nil
	}
	tf.used = true
	m.rep.rule("FILE_CHECK", c.File, c.Line, 0, "")
	if !own {
		weight, reverse = tf.weight, tf.reverse
	}
	chk := &config.Check{Type: "file", File: tf.path, Reverse: reverse,
		Interval: config.Duration(time.Second), Timeout: config.Duration(time.Second), Rise: 1, Fall: 1}
	if weight != 1 {
		chk.Weight = &weight
	}
	return []*config.Check{chk}
}
