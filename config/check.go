package config

// Health-check settings by check type: the defaults and validation of the
// type-specific keys (which types read which keys is registered by the
// probes, checktype.go). Everything that can be wrong in a check
// (a bad regex, a status list that does not parse, a CA file that holds
// no certificate) is found here at load, with its line, rather than at
// the first check of a running director.

import (
	"crypto/x509"
	"fmt"
	"io"
	"maps"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"github.com/go-ldap/ldap/v3"
)

// DNSQueryTypes are the record types a dns check can ask for.
var DNSQueryTypes = []string{"A", "AAAA", "CNAME", "MX", "NS", "PTR", "SOA", "SRV", "TXT"}

// Check defaults and limits.
const (
	DefaultMethod = "GET"
	DefaultStatus = "200-299"
	// DefaultMaxBody is generous for a health page and still bounds the
	// memory of thousands of checks in flight.
	DefaultMaxBody = 1 << 20
	MaxMaxBody     = 64 << 20
	// MaxUDPPayload is the largest datagram IPv4 can carry.
	MaxUDPPayload = 65507
	// DefaultQuery is a mysql or pgsql check's query when none is set:
	// it proves the server logs the monitor in and answers a query,
	// needs no table and no privilege, and is the same in both SQL
	// dialects. ldirectord has no default (it refuses a check without
	// request).
	DefaultQuery = "SELECT 1"
	// MaxQuery bounds a check's query: a health query, not a script.
	MaxQuery = 16 << 10
)

// StatusRange is an inclusive range of HTTP status codes.
type StatusRange struct{ Lo, Hi int }

// ParseStatus reads a status list like "200-299,301" (codes and ranges,
// comma separated, each within 100-599).
func ParseStatus(s string) ([]StatusRange, error) {
	var out []StatusRange
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}
		a, errA := strconv.Atoi(strings.TrimSpace(lo))
		b, errB := strconv.Atoi(strings.TrimSpace(hi))
		switch {
		case part == "":
			return nil, fmt.Errorf("%q has an empty entry", s)
		case errA != nil || errB != nil:
			return nil, fmt.Errorf("%q is not a status code or range like 200-299", part)
		case a < 100 || b > 599 || a > b:
			return nil, fmt.Errorf("%q is not a range of status codes within 100-599", part)
		}
		out = append(out, StatusRange{a, b})
	}
	return out, nil
}

// StatusIn reports whether code is in one of the ranges.
func StatusIn(code int, ranges []StatusRange) bool {
	for _, r := range ranges {
		if code >= r.Lo && code <= r.Hi {
			return true
		}
	}
	return false
}

// ParsePayload turns a send string into bytes, understanding the escapes
// \n, \r, \t, \0, \\ and \xHH. YAML's double quotes already understand
// them; doing it here too means plain and single-quoted strings (where
// YAML leaves backslashes alone) mean the same.
func ParsePayload(s string) ([]byte, error) {
	if !strings.Contains(s, `\`) {
		return []byte(s), nil
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			out = append(out, s[i])
			continue
		}
		if i+1 == len(s) {
			return nil, fmt.Errorf("%q ends in a lone backslash (write \\\\ for one)", s)
		}
		i++
		switch s[i] {
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case '0':
			out = append(out, 0)
		case '\\':
			out = append(out, '\\')
		case 'x':
			if i+2 >= len(s) {
				return nil, fmt.Errorf("%q: \\x needs two hex digits", s)
			}
			b, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return nil, fmt.Errorf("%q: \\x%s is not two hex digits", s, s[i+1:i+3])
			}
			out = append(out, byte(b))
			i += 2
		default:
			return nil, fmt.Errorf("%q: unknown escape \\%c (known: \\n \\r \\t \\0 \\\\ \\xHH)", s, s[i])
		}
	}
	return out, nil
}

// applyTypeDefaults fills the defaults of the keys c's type reads.
func (c *Check) applyTypeDefaults() {
	t, _ := LookupCheckType(c.Type)
	if t.reads("method") {
		c.Method = strings.ToUpper(c.Method)
		if c.Method == "" {
			c.Method = DefaultMethod
		}
	}
	if t.reads("status") && c.Status == "" {
		c.Status = DefaultStatus
	}
	if t.reads("max_body") && c.MaxBody == 0 {
		c.MaxBody = DefaultMaxBody
	}
	if t.reads("query_type") {
		c.QueryType = strings.ToUpper(c.QueryType)
		if c.QueryType == "" {
			c.QueryType = "A"
		}
	}
	if t.reads("scope") {
		c.Scope = strings.ToLower(c.Scope)
		if c.Scope == "" {
			c.Scope = "base"
		}
	}
	if t.reads("filter") && c.Filter == "" {
		c.Filter = DefaultLDAPFilter
	}
	if t.reads("query") && strings.TrimSpace(c.Query) == "" {
		c.Query = DefaultQuery
	}
	if t.reads("ehlo") && c.EHLO == "" {
		c.EHLO, _ = os.Hostname()
		if c.EHLO == "" {
			c.EHLO = "localhost"
		}
	}
}

// written reports whether path was written in the file (defaults are not).
func (v *validator) written(path string) bool {
	_, ok := v.pos[path]
	return ok
}

// checkType validates the type-specific keys of a check of a registered
// type and derives ExpectRE, Statuses, Payload and TLSRoots. What is
// checked follows the keys the type reads.
func (v *validator) checkType(p string, c *Check, t CheckType) {
	keys := CheckKeys()
	var all []string
	for _, ks := range keys {
		all = append(all, ks...)
	}
	slices.Sort(all)
	for _, k := range slices.Compact(all) {
		if v.written(p+"."+k) && !t.reads(k) {
			v.errf(p+"."+k, "%s does nothing for a %s check (it is read by %s)", k, c.Type, strings.Join(typesReading(keys, k), ", "))
		}
	}
	if t.ExpectRegexp && c.Expect != "" {
		re, err := regexp.Compile(c.Expect)
		if err != nil {
			v.errf(p+".expect", "%q is not a regular expression: %v", c.Expect, err)
		}
		c.ExpectRE = re
	}
	if t.reads("method") {
		v.checkHTTP(p, c, t) // max_body and TLS too
	}
	if t.reads("sip_uri") || t.reads("sip_transport") {
		v.checkSIP(p, c)
	}
	if t.reads("send") {
		b, err := ParsePayload(c.Send)
		if err != nil {
			v.errf(p+".send", "%v", err)
		} else if t.MaxSend > 0 && len(b) > t.MaxSend {
			v.errf(p+".send", "%d bytes do not fit in a UDP datagram (at most %d)", len(b), t.MaxSend)
		}
		c.Payload = b
	}
	if t.reads("max_body") && !t.reads("method") {
		v.checkMaxBody(p, c)
	}
	if t.reads("query_name") {
		v.checkDNS(p, c)
	}
	if t.reads("ehlo") {
		if strings.IndexFunc(c.EHLO, unicode.IsSpace) >= 0 || c.EHLO == "" {
			v.errf(p+".ehlo", "%q is not a host name to greet with", c.EHLO)
		}
	}
	if t.reads("env") || t.reads("pass_env") {
		v.checkEnv(p, c)
	}
	if t.reads("password") || t.reads("password_file") {
		v.checkCredentials(p, c)
	}
	if t.reads("file") {
		v.checkFile(p, c)
	}
	if t.reads("base_dn") {
		v.checkLDAP(p, c)
	}
	if t.reads("secret") {
		v.checkRADIUS(p, c)
	}
	if t.reads("tls_ca") && !t.reads("method") { // ldaps, imaps, pop3s
		v.checkTLS(p, c, t)
	}
	if t.reads("query") {
		v.checkSQL(p, c)
	}
	if t.reads("command") {
		switch {
		case c.Command == "":
			v.errf(p+".command", "an external check needs a command")
		case strings.Contains(c.Command, "/") && !filepath.IsAbs(c.Command):
			v.errf(p+".command", "%q is relative to wherever lvsmon was started; use an absolute path (or a bare name looked up in PATH)", c.Command)
		case filepath.IsAbs(c.Command):
			// A warning: check-config may run on another machine than the
			// director.
			if fi, err := os.Stat(c.Command); err != nil {
				v.warnf(p+".command", "%v", err)
			} else if fi.IsDir() || fi.Mode()&0o111 == 0 {
				v.warnf(p+".command", "%s is not an executable file", c.Command)
			}
		}
	}
}

// MaxWeight is the largest real-server weight lvsmon configures or a
// check sets (ipvsadm's bound; the kernel would take any int).
const MaxWeight = 65535

// checkFile validates a file check's file, weight and reverse.
func (v *validator) checkFile(p string, c *Check) {
	switch {
	case c.File == "":
		v.errf(p+".file", "a file check needs the file to read")
	case !filepath.IsAbs(c.File):
		v.errf(p+".file", "%q is relative to wherever lvsmon was started; use an absolute path", c.File)
	default:
		// A warning only: check-config may run on another machine, and
		// a file that comes later is read then.
		if fi, err := os.Stat(c.File); err != nil {
			v.warnf(p+".file", "%v (until it exists the check is inconclusive)", err)
		} else if !fi.Mode().IsRegular() {
			v.warnf(p+".file", "%s is not a regular file", c.File)
		}
	}
	if c.Weight != nil && (*c.Weight < -MaxWeight || *c.Weight > MaxWeight) {
		v.errf(p+".weight", "weight %d is out of range %d-%d", *c.Weight, -MaxWeight, MaxWeight)
	}
}

// noWeight refuses what sets a real server's weight on a check of
// something that has none (a self check, the peer check): there it
// would only make failures pass.
func (v *validator) noWeight(p string, c *Check) {
	if c.Dynamic {
		v.errf(p+".dynamic", "sets a real server's weight, and this check has none: without it exit 0 passes and anything else fails")
	}
	if c.Type == "file" && c.FileWeight() != 0 {
		v.errf(p+".weight", "a file check with a weight sets a real server's weight, and this check has none: set weight: 0 (0 passes, anything else fails; reverse turns it round)")
	}
}

// FileWeight is a file check's weight multiplier (default 1).
func (c *Check) FileWeight() int {
	if c.Weight == nil {
		return 1
	}
	return *c.Weight
}

// maxPasswordFile bounds a password file: a password, not a document.
const maxPasswordFile = 4096

// checkCredentials validates username, password and password_file and
// reads the file into Secret.
func (v *validator) checkCredentials(p string, c *Check) {
	switch {
	case c.Password != "" && c.PasswordFile != "":
		v.errf(p+".password_file", "set password or password_file, not both")
		return
	case (c.Password != "" || c.PasswordFile != "") && c.Username == "":
		v.errf(p+".username", "a password is set but no username")
		return
	case strings.ContainsAny(c.Username, "\x00\r\n"):
		v.errf(p+".username", "%q holds a NUL or line break", c.Username)
		return
	}
	if strings.ContainsAny(c.Password, "\x00\r\n") {
		// As a password_file's: no login protocol here can send them.
		v.errf(p+".password", "the password holds a NUL or line break")
		return
	}
	c.Secret = c.Password
	if c.PasswordFile == "" {
		return
	}
	s, err := readSecretFile(c.PasswordFile, "a password")
	if err != nil {
		v.errf(p+".password_file", "%v", err)
		return
	}
	c.Secret = s
}

// readSecretFile reads a one-line secret file (a password, a shared
// secret), its last newline dropped. The errors name the file, never
// its content.
func readSecretFile(path, what string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxPasswordFile+1))
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", path, err)
	case len(b) > maxPasswordFile:
		return "", fmt.Errorf("%s is over %d bytes: not %s", path, maxPasswordFile, what)
	}
	s := strings.TrimSuffix(strings.TrimSuffix(string(b), "\n"), "\r")
	switch {
	case s == "":
		return "", fmt.Errorf("%s is empty", path)
	case strings.ContainsAny(s, "\x00\r\n"):
		return "", fmt.Errorf("%s holds more than one line", path)
	}
	return s, nil
}

// DefaultLDAPFilter matches any entry: with scope base, the search asks
// only whether the base entry is there (ldirectord's search).
const DefaultLDAPFilter = "(objectClass=*)"

// LDAPScopes are the search scopes of an ldap check.
var LDAPScopes = []string{"base", "one", "sub"}

// checkLDAP validates an ldap check's bind and search: a bind as a user
// needs that user's password (ldirectord binds anonymously without
// both; a bind with a name and no password is "unauthenticated", which
// servers refuse or take for anonymous, so it proves nothing), the base
// must be a DN and the filter must compile, so that a typo shows at
// load rather than as every server failing.
func (v *validator) checkLDAP(p string, c *Check) {
	if c.Username != "" && c.Password == "" && c.PasswordFile == "" {
		v.errf(p+".username", "a bind as %q needs its password (password or password_file); without username the bind is anonymous", c.Username)
	}
	if _, err := ldap.ParseDN(c.BaseDN); err != nil {
		v.errf(p+".base_dn", "%q is not a DN like dc=example,dc=org: %v", c.BaseDN, err)
	}
	if !slices.Contains(LDAPScopes, c.Scope) {
		v.errf(p+".scope", "unknown scope %q (want base, one or sub)", c.Scope)
	}
	if _, err := ldap.CompileFilter(c.Filter); err != nil {
		v.errf(p+".filter", "%q is not an LDAP filter like (objectClass=*): %v", c.Filter, err)
	}
}

// checkRADIUS validates a radius check's Access-Request: it needs a
// user and password to ask for (ldirectord's login and passwd) and the
// shared secret, read into SharedSecret. Messages never show a secret.
func (v *validator) checkRADIUS(p string, c *Check) {
	if c.Username == "" {
		v.errf(p+".username", "a radius check asks the server to accept a test user: set username and password (or password_file)")
	} else if c.Password == "" && c.PasswordFile == "" {
		v.errf(p+".password", "a radius check asks the server to accept %q: set its password (or password_file)", c.Username)
	}
	// RFC 2865 5.1, 5.2: what the attributes can carry.
	if len(c.Username) > 253 {
		v.errf(p+".username", "%d bytes: RADIUS carries a user name of at most 253", len(c.Username))
	}
	if len(c.Secret) > 128 {
		key := ".password"
		if c.PasswordFile != "" {
			key = ".password_file"
		}
		v.errf(p+key, "%d bytes: RADIUS carries a password of at most 128", len(c.Secret))
	}
	switch {
	case c.RADIUSSecret != "" && c.RADIUSSecretFile != "":
		v.errf(p+".secret_file", "set secret or secret_file, not both")
	case c.RADIUSSecretFile != "":
		s, err := readSecretFile(c.RADIUSSecretFile, "a shared secret")
		if err != nil {
			v.errf(p+".secret_file", "%v", err)
			return
		}
		c.SharedSecret = s
	case c.RADIUSSecret == "":
		v.errf(p+".secret", "a radius check needs the shared secret the server has for this director (secret or secret_file)")
	default:
		c.SharedSecret = c.RADIUSSecret
	}
}

// sqlReadOnly are the first words of statements that return rows; a
// check's query that starts otherwise gets a warning (ldirectord's
// manual, too, assumes a SELECT).
var sqlReadOnly = []string{"SELECT", "WITH", "SHOW", "VALUES", "TABLE", "EXPLAIN", "DESCRIBE", "DESC", "CALL"}

// checkSQL validates a check that logs in to a database and queries it
// (mysql, pgsql): it needs the account, and a query the protocols can
// carry.
func (v *validator) checkSQL(p string, c *Check) {
	if c.Username == "" {
		v.errf(p+".username", "a %s check logs in: set the username (and password or password_file) of an account that may run the query", c.Type)
	}
	if strings.ContainsAny(c.Database, "\x00\r\n") {
		v.errf(p+".database", "%q holds a NUL or line break", c.Database)
	}
	switch q := strings.TrimSpace(c.Query); {
	case len(c.Query) > MaxQuery:
		v.errf(p+".query", "%d bytes is over %d: a health check's query, not a script", len(c.Query), MaxQuery)
	case strings.ContainsRune(c.Query, 0):
		v.errf(p+".query", "the query holds a NUL byte, which the protocol cannot carry")
	default:
		words := strings.FieldsFunc(q, func(r rune) bool { return !unicode.IsLetter(r) })
		if len(words) == 0 || !slices.Contains(sqlReadOnly, strings.ToUpper(words[0])) {
			v.warnf(p+".query", "%q does not start like a query that returns rows (SELECT, SHOW, WITH, ...): the check is healthy only when the query returns a row, and it runs every interval", excerptQuery(q))
		}
	}
}

// excerptQuery shortens a query for a message.
func excerptQuery(q string) string {
	if len(q) > 60 {
		return q[:60] + "..."
	}
	return q
}

// envNameRe is what a shell and every exec'd program take as a variable
// name.
var envNameRe = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// checkEnv validates an external check's env and pass_env.
func (v *validator) checkEnv(p string, c *Check) {
	names := slices.Sorted(maps.Keys(c.Env))
	for _, k := range names {
		switch val := c.Env[k]; {
		case !envNameRe.MatchString(k):
			v.errf(p+".env."+k, "%q is not an environment variable name (letters, digits and _, not starting with a digit)", k)
		case strings.ContainsRune(val, 0):
			v.errf(p+".env."+k, "the value holds a NUL byte, which no environment can carry")
		}
	}
	seen := map[string]bool{}
	for i, k := range c.PassEnv {
		ip := fmt.Sprintf("%s.pass_env[%d]", p, i)
		_, inEnv := c.Env[k]
		switch {
		case !envNameRe.MatchString(k):
			v.errf(ip, "%q is not an environment variable name (letters, digits and _, not starting with a digit)", k)
		case seen[k]:
			v.errf(ip, "%s is listed twice", k)
		case inEnv:
			v.errf(ip, "%s is also set in env: set it or pass it, not both", k)
		}
		seen[k] = true
	}
}

func (v *validator) checkHTTP(p string, c *Check, t CheckType) {
	if c.Method != "GET" && c.Method != "HEAD" {
		v.errf(p+".method", "unknown method %q (want GET or HEAD)", c.Method)
	}
	if c.Method == "HEAD" && c.Expect != "" {
		v.errf(p+".expect", "a HEAD request gets no body to match; use method: GET")
	}
	st, err := ParseStatus(c.Status)
	if err != nil {
		v.errf(p+".status", "%v", err)
	}
	c.Statuses = st
	if strings.HasPrefix(c.Path, "/") {
		if _, err := url.ParseRequestURI(c.Path); err != nil {
			v.errf(p+".path", "%q is not a request path: %v", c.Path, err)
		}
	}
	if c.Host != "" && strings.ContainsAny(c.Host, " \t\r\n/@?#") {
		v.errf(p+".host", "%q is not a Host header value (a name, optionally with :port)", c.Host)
	}
	v.checkMaxBody(p, c)
	v.checkTLS(p, c, t)
}

// checkTLS validates sni and tls_ca and loads the CA file into TLSRoots.
func (v *validator) checkTLS(p string, c *Check, t CheckType) {
	if t.reads("sni") && c.SNI != "" {
		if _, err := netip.ParseAddr(c.SNI); err == nil {
			v.errf(p+".sni", "%s is an address; SNI carries a host name (TLS sends none for addresses)", c.SNI)
		} else if strings.ContainsAny(c.SNI, " \t\r\n/:@") {
			v.errf(p+".sni", "%q is not a host name", c.SNI)
		}
	}
	if t.reads("tls_ca") && c.TLSCA != "" {
		if !c.TLSVerify {
			v.errf(p+".tls_ca", "a CA file does nothing without tls_verify: true")
		}
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			v.errf(p+".tls_ca", "%v", err)
			return
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			v.errf(p+".tls_ca", "%s holds no PEM certificate", c.TLSCA)
			return
		}
		c.TLSRoots = pool
	}
}

// maxSIPURI bounds sip_uri: a Request-URI, not a document.
const maxSIPURI = 256

// checkSIP validates a sip check's Request-URI and transport.
func (v *validator) checkSIP(p string, c *Check) {
	if c.SIPURI != "" {
		rest, ok := strings.CutPrefix(c.SIPURI, "sip:")
		switch {
		case !ok || rest == "":
			v.errf(p+".sip_uri", "%q is not a sip: URI (sip:user@host or sip:host:port)", c.SIPURI)
		case len(c.SIPURI) > maxSIPURI:
			v.errf(p+".sip_uri", "%d bytes is longer than a Request-URI needs (at most %d)", len(c.SIPURI), maxSIPURI)
		case strings.IndexFunc(c.SIPURI, func(r rune) bool { return r <= ' ' || r >= 0x7f || strings.ContainsRune(`<>"`, r) }) >= 0:
			v.errf(p+".sip_uri", "%q holds a space, a control character, <, > or \" or a non-ASCII character: escape them (%%XX)", c.SIPURI)
		}
	}
	switch c.SIPTransport {
	case "", "udp", "tcp":
	default:
		v.errf(p+".sip_transport", "unknown transport %q (want udp or tcp)", c.SIPTransport)
	}
}

func (v *validator) checkMaxBody(p string, c *Check) {
	if c.MaxBody < 1 || c.MaxBody > MaxMaxBody {
		v.errf(p+".max_body", "%d bytes is out of range 1-%d", c.MaxBody, MaxMaxBody)
	}
}

func (v *validator) checkDNS(p string, c *Check) {
	if !slices.Contains(DNSQueryTypes, c.QueryType) {
		v.errf(p+".query_type", "unknown query type %q (want one of %s)", c.QueryType, strings.Join(DNSQueryTypes, ", "))
	}
	if c.QueryName == "" {
		v.errf(p+".query_name", "a dns check needs the name to ask for")
	} else if err := checkDomainName(c.QueryName); err != nil {
		v.errf(p+".query_name", "%v", err)
	}
	if c.Expect == "" {
		return
	}
	a, err := netip.ParseAddr(c.Expect)
	switch {
	case c.QueryType == "A" && (err != nil || !a.Is4()):
		v.errf(p+".expect", "%q is not an IPv4 address, as an A record holds", c.Expect)
	case c.QueryType == "AAAA" && (err != nil || !a.Is6()):
		v.errf(p+".expect", "%q is not an IPv6 address, as an AAAA record holds", c.Expect)
	}
}

// checkDomainName accepts what DNS can carry: labels of 1-63 bytes, 253
// in all, a trailing dot allowed. Underscores are fine (SRV names). "."
// is the root (keepalived's DNS_CHECK asks for its SOA by default).
func checkDomainName(s string) error {
	if s == "." {
		return nil
	}
	name := strings.TrimSuffix(s, ".")
	if len(name) == 0 || len(name) > 253 {
		return fmt.Errorf("%q is not a domain name (1-253 characters)", s)
	}
	for label := range strings.SplitSeq(name, ".") {
		if len(label) == 0 || len(label) > 63 || strings.IndexFunc(label, unicode.IsSpace) >= 0 {
			return fmt.Errorf("%q is not a domain name (label %q)", s, label)
		}
	}
	return nil
}

// checkPort refuses a check that needs a port on an all-ports service
// (port 0 with persistence) without a port of its own: its real servers
// have no port to connect to.
func (v *validator) checkPort(p string, vs *VirtualService, c *Check) {
	if t, ok := LookupCheckType(c.Type); !ok || t.NoPort {
		return
	}
	if c.Port == 0 && vs.FWMark == 0 && vs.Port == 0 {
		v.errf(p+".port", "%s checks connect to a port, and the real servers of an all-ports service have none: set the check's port", c.Type)
	}
}

// typesReading lists the check types that read key, sorted.
func typesReading(keys map[string][]string, key string) []string {
	var out []string
	for _, t := range CheckTypes() {
		if slices.Contains(keys[t], key) {
			out = append(out, t)
		}
	}
	return out
}
