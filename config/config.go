// Package config reads, defaults and validates lvsmon's YAML config.
//
// The file is strict: an unknown key is an error that names its line, so
// a typo never silently turns a setting off. Every problem in a file is
// reported at once, each with file, line and field. A Config returned by
// Load is complete (defaults applied) and valid, and is never modified
// afterwards: a reload builds a new one and swaps it in whole.
package config

import (
	"bytes"
	"cmp"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"go.yaml.in/yaml/v3"

	"github.com/lvsmon/lvsmon/lvs"
)

// Config is a whole lvsmon configuration.
type Config struct {
	// Director names this director in the UI, metrics and mail; it
	// defaults to the host name.
	Director string `yaml:"director"`
	// Listen is where the web interface answers: one host:port or a
	// list (loopback and the management network, say).
	Listen          Addresses        `yaml:"listen"`
	DataDir         string           `yaml:"data_dir"`
	Step            Duration         `yaml:"step"`
	IPVS            IPVS             `yaml:"ipvs"`
	Graphs          Graphs           `yaml:"graphs"`
	Metrics         Metrics          `yaml:"metrics"`
	Web             Web              `yaml:"web"`
	HA              HA               `yaml:"ha"`
	Guard           Guard            `yaml:"guard"`
	Alerting        *Alerting        `yaml:"alerting"`
	VirtualServices []VirtualService `yaml:"virtual_services"`
	// Peers are the other directors of the pair, whose status is pulled
	// and compared with this one's (peers.go).
	Peers []Peer `yaml:"peers"`

	// File is the path the config was read from ("" when built in code).
	File string `yaml:"-"`
	// Warnings are problems that do not stop the config from being used.
	Warnings []Problem `yaml:"-"`
	// Origin is set when the config was imported from another program's
	// file (origin.go).
	Origin *Origin `yaml:"-"`
}

// IPVS selects how the kernel table is reached.
type IPVS struct {
	// Backend is netlink (the kernel, read and write), procfs (read only,
	// from ProcRoot) or fake (in memory, for tests and dry runs).
	Backend string `yaml:"backend"`
	// ProcRoot is where the procfs backend finds net/ip_vs; a synced copy
	// of another director's files works too. Default /proc.
	ProcRoot string `yaml:"proc_root"`
	// ProcHZ is CONFIG_HZ of the kernel that wrote the procfs files: the
	// kernel prints persistence timeouts in jiffies. Default 250 (Debian).
	ProcHZ int `yaml:"proc_hz"`
	// Takeover is what lvsmon does while another program writes the
	// table of a service it manages (keepalived with virtual_server
	// blocks, ldirectord, pulse, nanny, ipvsadm by hand or from cron):
	// TakeoverWhenGone (the default) stops writing that service, keeps
	// checking and reporting, and writes again once the other writer is
	// gone; TakeoverAlways keeps writing and only reports. Two writers
	// undo each other's weights for ever.
	Takeover string `yaml:"takeover"`
	// TakeoverAfter is how long a service's table must stay free of
	// changes lvsmon did not make before lvsmon writes it again (the
	// other writer was a person or a cron job, with no process to
	// watch). Default three steps.
	TakeoverAfter Duration `yaml:"takeover_after"`
}

// Values of ipvs.takeover.
const (
	TakeoverWhenGone = "when_gone"
	TakeoverAlways   = "always"
)

// Graphs configures the RRD files and their upkeep.
type Graphs struct {
	// Rrdcached sends updates through rrdcached ("unix:/path" or
	// "host:port"), for directors with thousands of real servers.
	Rrdcached string `yaml:"rrdcached"`
	// ArchiveAfter: files of services and real servers not updated for
	// this long (gone from the table) move to rrd/archive/<date>/.
	ArchiveAfter Duration `yaml:"archive_after"`
	// ArchiveSchedule is when the archive job runs (cron syntax).
	ArchiveSchedule string `yaml:"archive_schedule"`
	// WriteEvery batches RRD writes: each file is written once per
	// WriteEvery with all its rows since, spread over the steps. Default:
	// every step. On directors with tens of thousands of real servers,
	// 1m cuts the disk work per step about sixfold; a crash then loses
	// at most that much. Ignored with rrdcached, which batches itself.
	WriteEvery Duration `yaml:"write_every"`
}

// Batch is how many steps one RRD write covers.
func (c *Config) Batch() int {
	if c.Graphs.WriteEvery <= c.Step {
		return 1
	}
	return int(c.Graphs.WriteEvery / c.Step)
}

// Metrics shapes the Prometheus exporter on /metrics.
type Metrics struct {
	// NodeExporterCompatible also exports node_exporter's node_ipvs_*
	// names and labels, so dashboards and alerts written for node_exporter
	// keep working after a switch to lvsmon.
	NodeExporterCompatible bool `yaml:"node_exporter_compatible"`
}

// Web configures the HTTP interface: its write API, and what anonymous
// clients may take from the process (which also runs the health checks).
type Web struct {
	// APITokenFile holds the bearer token that the write API (drain,
	// disable, enable, reload) requires. Without a token those calls are
	// refused: reading is open, changing the director is not.
	APITokenFile string `yaml:"api_token_file"`
	// APIToken is the token itself, for tests and demos; prefer the file,
	// which keeps the secret out of the config.
	APIToken string `yaml:"api_token"`
	// MaxConnections caps the port's open connections (default 256). lvsmon
	// lowers it at start when RLIMIT_NOFILE leaves less room: the health
	// checks' sockets come first. At the cap, the longest-idle keep-alive
	// connection is closed for the new one; with none idle, the new one is
	// answered 503 and closed.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentRequests caps the expensive requests in flight (status
	// page and API, graph pages and images, events API; default 8). More
	// are answered 503 with Retry-After at once, never queued.
	MaxConcurrentRequests int `yaml:"max_concurrent_requests"`
	// IdleTimeout closes keep-alive connections idle this long (default 30s).
	IdleTimeout Duration `yaml:"idle_timeout"`
	// GraphCacheMB bounds the graph image cache, in MiB (default 64).
	GraphCacheMB int `yaml:"graph_cache_mb"`
	// TrustedProxies are the addresses and CIDR prefixes whose
	// X-Forwarded-For and X-Real-IP headers are believed. Empty (the
	// default) trusts none: anyone could otherwise write any client
	// address into the access log and an override's "by".
	TrustedProxies []string `yaml:"trusted_proxies"`
	// AllowedHosts are the host names (and addresses) that requests may
	// name in their Host header, against DNS rebinding: a page on any web
	// site whose name an attacker points at the director would otherwise
	// be served, and could POST, as if it came from the director. Empty
	// (the default): reads are answered whatever the Host; writes only
	// for an IP literal, localhost or the machine's host name. Set, every
	// request (reads too) must name a listed host or an IP literal.
	AllowedHosts []string `yaml:"allowed_hosts"`
	// Anonymous is what a visitor without credentials may do: "read"
	// (the pages, the API, the metrics) or "none" (sign in, basic auth
	// or the token first). Default: read when the web config has no
	// users, none when it has.
	Anonymous string `yaml:"anonymous"`
}

// MinTokenLen is the shortest write API token accepted: a shorter one is
// guessable, and the write API can take every real server out of service.
const MinTokenLen = 16

// Defaults and bounds of the web section's limits.
const (
	DefaultMaxConnections        = 256
	DefaultMaxConcurrentRequests = 8
	DefaultIdleTimeout           = 30 * time.Second
	DefaultGraphCacheMB          = 64
)

func (w *Web) applyDefaults() {
	if w.MaxConnections == 0 {
		w.MaxConnections = DefaultMaxConnections
	}
	if w.MaxConcurrentRequests == 0 {
		w.MaxConcurrentRequests = DefaultMaxConcurrentRequests
	}
	if w.IdleTimeout == 0 {
		w.IdleTimeout = Duration(DefaultIdleTimeout)
	}
	if w.GraphCacheMB == 0 {
		w.GraphCacheMB = DefaultGraphCacheMB
	}
}

func (v *validator) webLimits(w *Web) {
	if n := w.MaxConnections; n < 16 || n > 1_000_000 {
		v.errf("web.max_connections", "%d is out of range 16-1000000 (a browser alone opens 6)", n)
	}
	if n := w.MaxConcurrentRequests; n < 1 || n > 1024 {
		v.errf("web.max_concurrent_requests", "%d is out of range 1-1024", n)
	}
	if d := w.IdleTimeout.D(); d < time.Second || d > time.Hour {
		v.errf("web.idle_timeout", "%s is out of range 1s-1h", d)
	}
	if n := w.GraphCacheMB; n < 1 || n > 16384 {
		v.errf("web.graph_cache_mb", "%d is out of range 1-16384 (MiB)", n)
	}
	seen := map[netip.Prefix]string{}
	for i, s := range w.TrustedProxies {
		p := fmt.Sprintf("web.trusted_proxies[%d]", i)
		pfx, err := parseProxy(s)
		if err != nil {
			v.errf(p, "%v", err)
			continue
		}
		if prev, ok := seen[pfx]; ok {
			v.errf(p, "%s is listed twice (first at %s)", pfx, prev)
			continue
		}
		seen[pfx] = v.where(p)
	}
	switch w.Anonymous {
	case "", "read", "none":
	default:
		v.errf("web.anonymous", "%q: want read or none", w.Anonymous)
	}
	hosts := map[string]string{}
	for i, h := range w.AllowedHosts {
		p := fmt.Sprintf("web.allowed_hosts[%d]", i)
		n, err := checkAllowedHost(h)
		if err != nil {
			v.errf(p, "%v", err)
			continue
		}
		if prev, ok := hosts[n]; ok {
			v.errf(p, "%q is listed twice (first at %s)", h, prev)
			continue
		}
		hosts[n] = v.where(p)
	}
}

// checkAllowedHost reads an entry of web.allowed_hosts: a host name or an
// IP address, without scheme, port or path. It returns the name in lower
// case, as it is compared.
func checkAllowedHost(h string) (string, error) {
	switch {
	case h == "":
		return "", errors.New("empty host name")
	case strings.Contains(h, "://") || strings.ContainsAny(h, "/?#@ "):
		return "", fmt.Errorf("%q: want a bare host name or address, without scheme, path or user", h)
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return strings.ToLower(strings.Trim(h, "[]")), nil
	}
	if strings.Contains(h, ":") {
		return "", fmt.Errorf("%q: want the host without a port (any port of the web listeners is allowed)", h)
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 || strings.Trim(label, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") != "" {
			return "", fmt.Errorf("%q is not a host name", h)
		}
	}
	return strings.ToLower(strings.TrimSuffix(h, ".")), nil
}

// parseProxy reads a trusted proxy: an address or a CIDR prefix without
// host bits (10.0.0.1/8 is more likely a typo than a wish).
func parseProxy(s string) (netip.Prefix, error) {
	if a, err := netip.ParseAddr(s); err == nil {
		if a.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("%q has a zone; write the address alone", s)
		}
		a = a.Unmap()
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q is neither an IP address nor a CIDR prefix", s)
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q has bits set past the prefix length; write %s", s, p.Masked())
	}
	return p, nil
}

// Token returns the write API's token ("" when none is configured). It
// reads web.api_token_file on every call, so that a rotated token takes
// effect without a reload; a token shorter than MinTokenLen, or a file
// that group or other may read or write, is an error: the caller refuses
// rather than accepts.
func (w Web) Token() (string, error) {
	if w.APIToken != "" {
		if len(w.APIToken) < MinTokenLen {
			return "", fmt.Errorf("web.api_token: the token is too short to be a secret (%d bytes; at least %d)", len(w.APIToken), MinTokenLen)
		}
		return w.APIToken, nil
	}
	if w.APITokenFile == "" {
		return "", nil
	}
	f, err := os.Open(w.APITokenFile)
	if err != nil {
		return "", fmt.Errorf("web.api_token_file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("web.api_token_file: %w", err)
	}
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return "", fmt.Errorf("web.api_token_file: %s has mode %#o: group or other may read or write the secret; chmod 600 %s", w.APITokenFile, m, w.APITokenFile)
	}
	b, err := io.ReadAll(io.LimitReader(f, 64<<10))
	if err != nil {
		return "", fmt.Errorf("web.api_token_file: %w", err)
	}
	t := strings.TrimSpace(string(b))
	if t == "" {
		return "", fmt.Errorf("web.api_token_file: %s is empty", w.APITokenFile)
	}
	if len(t) < MinTokenLen {
		return "", fmt.Errorf("web.api_token_file: the token in %s is too short to be a secret (%d bytes; at least %d)", w.APITokenFile, len(t), MinTokenLen)
	}
	return t, nil
}

// Backends lvsmon knows.
const (
	BackendNetlink = "netlink"
	BackendProcfs  = "procfs"
	BackendFake    = "fake"
)

// VirtualService is one IPVS virtual service and the real servers it
// should have.
type VirtualService struct {
	Name string `yaml:"name"`
	// Protocol, Address and Port select an address service; FWMark (with
	// Family) selects a firewall-mark service instead.
	Protocol string `yaml:"protocol"`
	Address  string `yaml:"address"`
	Port     int    `yaml:"port"`
	FWMark   uint32 `yaml:"fwmark"`
	Family   string `yaml:"family"` // inet | inet6, for fwmark services

	Scheduler          string   `yaml:"scheduler"`
	Persistence        Duration `yaml:"persistence"`
	PersistenceNetmask int      `yaml:"persistence_netmask"`
	// Managed false: lvsmon observes and graphs the service but never
	// writes to it in the kernel.
	Managed   *bool  `yaml:"managed"`
	OnFailure string `yaml:"on_failure"` // quiescent | remove
	// Startup is what an unchecked real server counts as: up (the
	// default, as keepalived without alpha: a restart of lvsmon changes
	// nothing) or down (keepalived's alpha: traffic only after a pass).
	Startup string `yaml:"startup"`
	// Quorum is the live weight below which the sorry server comes in
	// (default 1: when every real server is out); Hysteresis widens the
	// band so a weight hovering at the quorum does not flap it.
	Quorum     int         `yaml:"quorum"`
	Hysteresis int         `yaml:"hysteresis"`
	Sorry      *RealServer `yaml:"sorry_server"`
	Check      *Check      `yaml:"check"`
	// Checks are several checks of every real server: it is up only
	// while all of them pass. Use check for one, checks for several.
	Checks []*Check       `yaml:"checks"`
	Reals  []RealServer   `yaml:"real_servers"`
	Key    lvs.ServiceKey `yaml:"-"` // derived at load
}

// AllChecks returns the service's checks: check alone, or checks.
func (v *VirtualService) AllChecks() []*Check {
	if v.Check != nil {
		return []*Check{v.Check}
	}
	return v.Checks
}

// AssumeUp reports whether a real server without a check result yet
// counts as up.
func (v *VirtualService) AssumeUp() bool { return v.Startup != "down" }

// QuorumOrDefault is the quorum, 1 when unset.
func (v *VirtualService) QuorumOrDefault() int {
	if v.Quorum == 0 {
		return 1
	}
	return v.Quorum
}

// IsManaged reports whether lvsmon may write this service to the kernel.
func (v *VirtualService) IsManaged() bool { return v.Managed == nil || *v.Managed }

// RealServer is one real server (or the sorry server) of a service.
type RealServer struct {
	Address        string `yaml:"address"`
	Port           int    `yaml:"port"` // default: the service's port
	Weight         *int   `yaml:"weight"`
	Forward        string `yaml:"forward"` // dr | nat | tun
	UpperThreshold uint32 `yaml:"upper_threshold"`
	LowerThreshold uint32 `yaml:"lower_threshold"`

	Key lvs.DestKey `yaml:"-"` // derived at load
	Fwd lvs.Forward `yaml:"-"` // derived at load
}

// ConfiguredWeight is the weight the config asks for (default 1).
func (r *RealServer) ConfiguredWeight() int32 {
	if r.Weight == nil {
		return 1
	}
	return int32(*r.Weight)
}

// Check is how a service's real servers are health-checked. The keys
// each type reads are registered by its probe (CheckKeys, checktype.go); a type-specific key
// on a check of another type is an error, because it would silently do
// nothing.
type Check struct {
	Type string `yaml:"type"`
	Path string `yaml:"path"`
	// Expect is what a healthy answer looks like. For http and https it
	// is a regular expression searched in the body; for udp in the reply
	// datagram; for simpletcp in what the server sends back; for smtp,
	// ftp, pop3(s) and imap(s) in the greeting banner; for mysql and pgsql
	// in the first column of the first row (as text; NULL is empty). For
	// dns it is a value one answer must have, as written in a zone file
	// (192.0.2.1, "10 mail.example.org"). Empty: any well-formed answer will do.
	// Regular expressions are Go's (RE2) and match text: \xHH is a
	// character, so a binary reply can be matched in its ASCII bytes only.
	Expect   string   `yaml:"expect"`
	Interval Duration `yaml:"interval"`
	Timeout  Duration `yaml:"timeout"`
	Rise     int      `yaml:"rise"`
	Fall     int      `yaml:"fall"`
	// Retries are extra attempts within one check before it counts as
	// failed, each with the full timeout.
	Retries int `yaml:"retries"`
	// Address and Port override where the check connects (default: the
	// real server's own address and port).
	Address string `yaml:"address"`
	Port    int    `yaml:"port"`

	// Method is the HTTP method, GET (default) or HEAD.
	Method string `yaml:"method"`
	// Host is the HTTP Host header (ldirectord's virtualhost); default
	// the address and port connected to.
	Host string `yaml:"host"`
	// Status lists the HTTP status codes that count as healthy, as codes
	// and ranges: "200-299,301". Default 200-299. Redirects are not
	// followed: a 302 is healthy only if listed.
	Status string `yaml:"status"`
	// TLSVerify checks the https, imaps or pop3s server's certificate
	// against the system's roots (or TLSCA) and the name in SNI or Host. Off by
	// default, as in ldirectord: real servers are checked by address and
	// their certificates carry the service's name.
	TLSVerify bool `yaml:"tls_verify"`
	// TLSCA is a PEM file of CA certificates to verify against instead
	// of the system's roots (needs tls_verify).
	TLSCA string `yaml:"tls_ca"`
	// SNI is the TLS server name sent; default Host without its port.
	SNI string `yaml:"sni"`
	// MaxBody caps the bytes read from an http(s) body or a simpletcp
	// answer (default 1 MiB). A longer answer fails the check: a health
	// page that large is a fault, and a check never reads without bound.
	MaxBody int64 `yaml:"max_body"`
	// Send is the payload of a udp or simpletcp check. The escapes \n,
	// \r, \t, \\ and \xHH are understood in any YAML quoting, so
	// send: 'PING\r\n' works as well as send: "PING\r\n".
	Send string `yaml:"send"`
	// QueryName and QueryType are a dns check's question (type default
	// A; one of DNSQueryTypes).
	QueryName string `yaml:"query_name"`
	QueryType string `yaml:"query_type"`
	// Command is an external check's program; lvsmon runs it as
	// "command args... VIP VPORT RIP RPORT" (ldirectord's arguments; a
	// fwmark service passes its mark as VIP and 0 as VPORT) and its exit
	// status decides: 0 is healthy. At the timeout the command's whole
	// process group is killed.
	Command string   `yaml:"command"`
	Args    []string `yaml:"args"`
	// Env and PassEnv make an external check's environment, which is
	// otherwise only PATH (a fixed safe default), LANG (lvsmon's, or
	// C.UTF-8) and LC_ALL (when lvsmon has one): the command never sees
	// the rest of lvsmon's environment (an SMTP password_env, say). Env
	// sets variables (PATH too); PassEnv copies the named variables from
	// lvsmon's environment when it has them.
	Env     map[string]string `yaml:"env"`
	PassEnv []string          `yaml:"pass_env"`
	// Dynamic makes an external check's exit status set the weight, as
	// keepalived's misc_dynamic: 0 healthy at the configured weight, 1
	// failing, 2-255 healthy with weight status-2.
	Dynamic bool `yaml:"dynamic"`
	// File, Weight and Reverse are a file check (keepalived's
	// FILE_CHECK and track_file): File holds one integer, read every
	// interval. With Weight 0 the value is health only (0 healthy,
	// anything else failing; the other way round with Reverse); otherwise
	// value times Weight (negated with Reverse) is added to the
	// configured weight, and a sum at or below -2^31 fails. Weight nil is
	// 1.
	File    string `yaml:"file"`
	Weight  *int   `yaml:"weight"`
	Reverse bool   `yaml:"reverse"`
	// EHLO is the name an smtp check greets with (default: the host name).
	EHLO string `yaml:"ehlo"`

	// Username and Password (or PasswordFile) are the credentials of
	// the checks that log in (ldirectord's login and passwd): a check
	// that logs in proves more than a greeting does. PasswordFile is
	// read at load and at each reload (its last newline dropped), so the
	// secret can stay out of the config; Password inline is what an
	// imported ldirectord.cf carries.
	Username     string `yaml:"username"`
	Password     string `yaml:"password"`
	PasswordFile string `yaml:"password_file"`
	// Database and Query are a mysql or pgsql check's (ldirectord's
	// database and request): it logs in to Database (default: none for
	// mysql, the user's own for pgsql, as their clients do), runs Query
	// (default DefaultQuery) and is healthy when it returns a row.
	Database string `yaml:"database"`
	Query    string `yaml:"query"`

	// BaseDN, Scope and Filter are an ldap or ldaps check's search, made
	// after the bind (anonymous unless Username is set). The defaults,
	// the root DSE ("") with scope base and (objectClass=*), are what
	// ldirectord asks without a request, and every LDAP server answers
	// them; ldirectord's request is the base. The search must find an
	// entry, and expect is matched against its DN (ldirectord's receive).
	BaseDN string `yaml:"base_dn"`
	Scope  string `yaml:"scope"`
	Filter string `yaml:"filter"`
	// RADIUSSecret (or RADIUSSecretFile, read at load and at each reload
	// as password_file is) is a radius check's shared secret
	// (ldirectord's secret): the server knows this director's requests
	// by it. It is never logged or shown.
	RADIUSSecret     string `yaml:"secret"`
	RADIUSSecretFile string `yaml:"secret_file"`
	// SIPURI is the Request-URI and To of a sip check's OPTIONS
	// (ldirectord's login, as sip:login); default sip:ADDRESS:PORT of
	// the target, the server itself, which any SIP server answers.
	SIPURI string `yaml:"sip_uri"`
	// SIPTransport is udp or tcp; default the service's protocol (udp
	// for a UDP service and for a fwmark, tcp for a TCP one), as
	// ldirectord follows the virtual's protocol.
	SIPTransport string `yaml:"sip_transport"`

	// Derived at load from the fields above; nil or empty when the Check
	// was built in code, in which case the checker derives them itself.
	ExpectRE *regexp.Regexp `yaml:"-"`
	Statuses []StatusRange  `yaml:"-"`
	Payload  []byte         `yaml:"-"`
	TLSRoots *x509.CertPool `yaml:"-"`
	// Secret is the password: Password, or PasswordFile's content.
	Secret string `yaml:"-"`
	// SharedSecret is the radius secret: RADIUSSecret, or
	// RADIUSSecretFile's content.
	SharedSecret string `yaml:"-"`
}

// Defaults.
const (
	DefaultListen    = ":9160"
	DefaultDataDir   = "/var/lib/lvsmon"
	DefaultStep      = 10 * time.Second
	DefaultScheduler = "wlc"
	DefaultInterval  = 5 * time.Second
	DefaultTimeout   = 3 * time.Second
	// DefaultArchiveAfter is how long a vanished object's RRD files stay
	// among the live graphs.
	DefaultArchiveAfter = 30 * 24 * time.Hour
	// DefaultArchiveSchedule runs the archive job daily at 03:17, off the
	// hour when cron jobs pile up.
	DefaultArchiveSchedule = "17 3 * * *"
)

// Schedulers are the IPVS schedulers of Linux 6.x.
var Schedulers = []string{"rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos"}

// Duration is a time.Duration written as "10s", "1m30s".
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML reads a Go duration string. A bare number is refused:
// "step: 10" could mean seconds or nanoseconds, and guessing wrong would
// be silent.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want a duration like 10s, got a %s", n.Line, kindName(n.Kind))}}
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: %q is not a duration (write it with a unit, like 10s or 1m)", n.Line, n.Value)}}
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the duration back as a string.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

func kindName(k yaml.Kind) string {
	switch k {
	case yaml.MappingNode:
		return "mapping"
	case yaml.SequenceNode:
		return "list"
	}
	return "value"
}

// Load reads, defaults and validates a config file.
func Load(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, b)
}

// Parse is Load on bytes already read; name is used in error messages.
// The error, when the config is invalid, is an Errors holding every
// problem found.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&root); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{File: name, Msg: "the file is empty"}}
		}
		return nil, yamlProblems(name, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, Errors{{File: name, Line: extra.Line, Msg: "more than one YAML document; lvsmon reads one"}}
	}
	// Aliases and merge keys expand where they are used; everything
	// below works on the expanded document, so its size is bounded first.
	if p, _ := checkExpansion(name, &root); p != nil {
		return nil, Errors{*p}
	}
	pos := positions{}
	var errs Errors
	walk(&root, reflect.TypeFor[Config](), "", pos, name, &errs)
	cfg := &Config{File: name}
	if err := root.Decode(cfg); err != nil {
		// Values that did not decode are zero: validating them would
		// only add confusing follow-up errors.
		errs = append(errs, yamlProblems(name, err)...)
		sortProblems(errs)
		return nil, errs
	}
	// Unknown keys do not stop validation: what was understood is checked
	// too, so one run of check-config shows everything to fix.
	cfg.applyDefaults()
	v := validator{file: name, pos: pos, errs: errs}
	v.config(cfg)
	if len(v.errs) > 0 {
		sortProblems(v.errs)
		return nil, v.errs
	}
	sortProblems(v.warns)
	cfg.Warnings = v.warns
	return cfg, nil
}

// Addresses is a list of listen addresses, written in YAML as one
// host:port or a list of them.
type Addresses []string

// UnmarshalYAML reads a scalar as a list of one; an empty scalar is no
// list (the default applies), an empty list stays empty (an error).
func (a *Addresses) UnmarshalYAML(n *yaml.Node) error {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Value == "" {
			*a = nil
			return nil
		}
		*a = Addresses{n.Value}
		return nil
	case yaml.SequenceNode:
		out := make(Addresses, 0, len(n.Content))
		for _, c := range n.Content {
			if c.Kind != yaml.ScalarNode {
				return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want host:port, got a %s", c.Line, kindName(c.Kind))}}
			}
			out = append(out, c.Value)
		}
		*a = out
		return nil
	}
	return &yaml.TypeError{Errors: []string{fmt.Sprintf("line %d: want host:port or a list of them, got a %s", n.Line, kindName(n.Kind))}}
}

// String joins the addresses with commas, as logs show them.
func (a Addresses) String() string { return strings.Join(a, ",") }

// CheckListen validates listen addresses given outside a file (the
// --web.listen-address flag) as the listen key is: each host:port, none
// twice.
func CheckListen(addrs []string) error {
	if len(addrs) == 0 {
		return errors.New("no listen address")
	}
	seen := map[string]bool{}
	for _, s := range addrs {
		key, err := listenKey(s)
		if err != nil {
			return err
		}
		if key != "" && seen[key] {
			return fmt.Errorf("%q is given twice", s)
		}
		seen[key] = true
	}
	return nil
}

// listenKey checks one listen address and returns what makes two of them
// the same bind ("" for port 0: each such address gets a port of its own).
func listenKey(s string) (string, error) {
	host, port, err := splitHostPort(s)
	if err != nil {
		return "", err
	}
	if port == 0 {
		return "", nil
	}
	if a, err := netip.ParseAddr(host); err == nil {
		host = a.Unmap().String()
	}
	return net.JoinHostPort(host, strconv.Itoa(port)), nil
}

// splitHostPort checks a listen address like ":9160" or "[::1]:9160".
func splitHostPort(s string) (string, int, error) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port: %w", s, err)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", 0, fmt.Errorf("%q: port %q is not a number in 0-65535", s, port)
	}
	return host, n, nil
}

func (c *Config) applyDefaults() {
	if c.Director == "" {
		c.Director, _ = os.Hostname()
		if c.Director == "" {
			c.Director = "director"
		}
	}
	if c.Listen == nil {
		c.Listen = Addresses{DefaultListen}
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.Step == 0 {
		c.Step = Duration(DefaultStep)
	}
	if c.IPVS.Backend == "" {
		c.IPVS.Backend = BackendNetlink
	}
	if c.IPVS.ProcRoot == "" {
		c.IPVS.ProcRoot = "/proc"
	}
	if c.IPVS.ProcHZ == 0 {
		c.IPVS.ProcHZ = 250
	}
	if c.IPVS.Takeover == "" {
		c.IPVS.Takeover = TakeoverWhenGone
	}
	if c.IPVS.TakeoverAfter == 0 {
		c.IPVS.TakeoverAfter = 3 * c.Step
	}
	if c.Graphs.ArchiveAfter == 0 {
		c.Graphs.ArchiveAfter = Duration(DefaultArchiveAfter)
	}
	if c.Graphs.ArchiveSchedule == "" {
		c.Graphs.ArchiveSchedule = DefaultArchiveSchedule
	}
	c.Web.applyDefaults()
	c.haDefaults()
	c.guardDefaults()
	c.alertingDefaults()
	c.peersDefaults()
	for i := range c.VirtualServices {
		vs := &c.VirtualServices[i]
		if vs.Scheduler == "" {
			vs.Scheduler = DefaultScheduler
		}
		if vs.Protocol == "" && vs.FWMark == 0 {
			vs.Protocol = "tcp"
		}
		if vs.Family == "" {
			vs.Family = "inet"
		}
		if vs.OnFailure == "" {
			vs.OnFailure = "quiescent"
		}
		for j := range vs.Reals {
			defaultReal(&vs.Reals[j], vs.Port)
		}
		if vs.Sorry != nil {
			defaultReal(vs.Sorry, vs.Port)
		}
		// Both lists get defaults, so that "check and checks" is reported
		// alone, without follow-up errors about unset fields.
		for _, c := range append([]*Check{vs.Check}, vs.Checks...) {
			if c == nil {
				continue // no check, or an empty one (reported by validation)
			}
			defaultCheck(c)
		}
	}
}

func defaultReal(r *RealServer, port int) {
	if r.Port == 0 {
		r.Port = port
	}
	if r.Forward == "" {
		r.Forward = "dr"
	}
}

// Service returns the configured service with key k, or nil.
func (c *Config) Service(k lvs.ServiceKey) *VirtualService {
	for i := range c.VirtualServices {
		if c.VirtualServices[i].Key == k {
			return &c.VirtualServices[i]
		}
	}
	return nil
}

// Real returns the configured real server d of service v, or nil.
func (v *VirtualService) Real(d lvs.DestKey) *RealServer {
	for i := range v.Reals {
		if v.Reals[i].Key == d {
			return &v.Reals[i]
		}
	}
	return nil
}

// validator collects every problem in one pass over a defaulted config.
type validator struct {
	// backend is the config's IPVS backend: some warnings are about the
	// real kernel and mean nothing for the fake.
	backend string
	file    string
	pos     positions
	errs    Errors
	warns   Errors
}

func (v *validator) errf(path, format string, args ...any) {
	v.errs = append(v.errs, Problem{File: v.file, Line: v.pos.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) warnf(path, format string, args ...any) {
	v.warns = append(v.warns, Problem{File: v.file, Line: v.pos.line(path), Field: path, Msg: fmt.Sprintf(format, args...)})
}

func (v *validator) config(c *Config) {
	v.backend = c.IPVS.Backend
	if c.Step.D() < time.Second {
		v.errf("step", "%s is too short: IPVS counters and RRD files work at 1s resolution at best", c.Step.D())
	} else if c.Step.D() > time.Hour {
		v.errf("step", "%s is too long: at most 1h", c.Step.D())
	} else if c.Step.D()%time.Second != 0 {
		v.errf("step", "%s is not a whole number of seconds (RRD steps are seconds)", c.Step.D())
	}
	switch c.IPVS.Backend {
	case BackendNetlink, BackendProcfs, BackendFake:
	default:
		v.errf("ipvs.backend", "unknown backend %q (want netlink, procfs or fake)", c.IPVS.Backend)
	}
	switch c.IPVS.ProcHZ {
	case 100, 250, 300, 1000:
	default:
		v.errf("ipvs.proc_hz", "%d is not a Linux CONFIG_HZ (100, 250, 300 or 1000)", c.IPVS.ProcHZ)
	}
	switch c.IPVS.Takeover {
	case TakeoverWhenGone, TakeoverAlways:
	default:
		v.errf("ipvs.takeover", "unknown value %q (want %s or %s)", c.IPVS.Takeover, TakeoverWhenGone, TakeoverAlways)
	}
	if d := c.IPVS.TakeoverAfter.D(); d < c.Step.D() || d > 24*time.Hour {
		v.errf("ipvs.takeover_after", "%s must be at least the step (%s) and at most 24h", d, c.Step.D())
	}
	if w := c.Graphs.WriteEvery.D(); w != 0 && (w < c.Step.D() || w > 10*time.Minute || w%c.Step.D() != 0) {
		v.errf("graphs.write_every", "%s must be a multiple of the step (%s), at most 10m", w, c.Step.D())
	}
	if c.Graphs.ArchiveAfter.D() < time.Hour {
		v.errf("graphs.archive_after", "%s is too short: at least 1h, or graphs of a server rebooting for maintenance would be archived", c.Graphs.ArchiveAfter.D())
	}
	if _, err := cron.ParseStandard(c.Graphs.ArchiveSchedule); err != nil {
		v.errf("graphs.archive_schedule", "%q is not a cron schedule: %v", c.Graphs.ArchiveSchedule, err)
	}
	if r := c.Graphs.Rrdcached; r != "" && !strings.HasPrefix(r, "unix:") && !strings.HasPrefix(r, "/") {
		if _, _, err := net.SplitHostPort(r); err != nil {
			v.errf("graphs.rrdcached", "%q: want unix:/path/to/socket or host:port", r)
		}
	}
	if c.Web.APIToken != "" && c.Web.APITokenFile != "" {
		v.errf("web.api_token", "set api_token or api_token_file, not both")
	} else if _, err := c.Web.Token(); err != nil {
		key := "web.api_token_file"
		if c.Web.APIToken != "" {
			key = "web.api_token"
		}
		v.errf(key, "%s", strings.TrimPrefix(err.Error(), key+": "))
	}
	v.webLimits(&c.Web)
	v.listen(c.Listen)
	defer v.ha(c)
	defer v.alerting(c)
	defer v.peers(c)
	v.guard(&c.Guard)
	seen := map[lvs.ServiceKey]string{}
	names := map[string]string{}
	for i := range c.VirtualServices {
		p := fmt.Sprintf("virtual_services[%d]", i)
		vs := &c.VirtualServices[i]
		v.service(p, vs)
		if !vs.Key.Addr.IsValid() && !vs.Key.IsFWMark() {
			continue // already reported
		}
		if prev, ok := seen[vs.Key]; ok {
			v.errf(p, "service %s is defined twice (first at %s)", vs.Key, prev)
		} else {
			seen[vs.Key] = v.where(p)
		}
		if vs.Name != "" {
			if prev, ok := names[vs.Name]; ok {
				v.errf(p+".name", "name %q is used twice (first at %s)", vs.Name, prev)
			} else {
				names[vs.Name] = v.where(p)
			}
		}
		if c.IPVS.Backend == BackendProcfs && vs.IsManaged() {
			v.warnf(p+".managed", "the procfs backend is read-only: this service will be observed, never written")
		}
	}
}

// listen checks every listen address and refuses one given twice.
func (v *validator) listen(addrs Addresses) {
	if len(addrs) == 0 {
		v.errf("listen", "an empty list: give at least one host:port (or leave the key out for %s)", DefaultListen)
		return
	}
	// A single address written as a scalar has no [0] in the file.
	_, list := v.pos["listen[0]"]
	seen := map[string]string{}
	for i, s := range addrs {
		p := "listen"
		if list {
			p = fmt.Sprintf("listen[%d]", i)
		}
		key, err := listenKey(s)
		if err != nil {
			v.errf(p, "%v", err)
			continue
		}
		if key == "" {
			continue
		}
		if prev, ok := seen[key]; ok {
			v.errf(p, "%s is listed twice (first at %s)", s, prev)
			continue
		}
		seen[key] = v.where(p)
	}
}

func (v *validator) where(path string) string {
	if l := v.pos.line(path); l > 0 {
		return fmt.Sprintf("line %d", l)
	}
	return path
}

func (v *validator) service(p string, vs *VirtualService) {
	var fam lvs.Family
	if vs.FWMark != 0 {
		if vs.Address != "" {
			v.errf(p+".address", "a service has either fwmark or address, not both")
		}
		if vs.Port != 0 {
			v.errf(p+".port", "a fwmark service has no port (the mark selects the traffic); set the port on each real server")
		}
		switch vs.Family {
		case "inet":
			fam = lvs.IPv4
		case "inet6":
			fam = lvs.IPv6
		default:
			v.errf(p+".family", "unknown family %q (want inet or inet6)", vs.Family)
			return
		}
		vs.Key = lvs.MarkKey(vs.FWMark, fam)
	} else {
		proto, err := lvs.ParseProtocol(vs.Protocol)
		if err != nil {
			v.errf(p+".protocol", "%v", err)
		}
		if vs.Address == "" {
			v.errf(p, "missing address (or fwmark)")
			return
		}
		addr, err := parseAddr(vs.Address)
		if err != nil {
			v.errf(p+".address", "%v", err)
			return
		}
		if vs.Port < 0 || vs.Port > 65535 {
			v.errf(p+".port", "port %d is out of range 0-65535", vs.Port)
		} else if vs.Port == 0 && vs.Persistence == 0 {
			v.errf(p+".port", "missing port (port 0, all ports, only makes sense with persistence)")
		}
		vs.Key = lvs.AddrKey(proto, addr, uint16(max(0, min(vs.Port, 65535))))
		fam = vs.Key.Family
	}
	if !contains(Schedulers, vs.Scheduler) {
		v.errf(p+".scheduler", "unknown scheduler %q (want one of %s)", vs.Scheduler, strings.Join(Schedulers, ", "))
	}
	if vs.Persistence < 0 {
		v.errf(p+".persistence", "negative persistence")
	} else if vs.Persistence.D()%time.Second != 0 {
		v.errf(p+".persistence", "%s is not a whole number of seconds", vs.Persistence.D())
	}
	if vs.PersistenceNetmask != 0 {
		bits := 32
		if fam == lvs.IPv6 {
			bits = 128
		}
		if vs.Persistence == 0 {
			v.errf(p+".persistence_netmask", "only makes sense with persistence")
		} else if vs.PersistenceNetmask < 1 || vs.PersistenceNetmask > bits {
			v.errf(p+".persistence_netmask", "prefix length %d is out of range 1-%d", vs.PersistenceNetmask, bits)
		}
	}
	switch vs.OnFailure {
	case "quiescent", "remove":
	default:
		v.errf(p+".on_failure", "unknown value %q (want quiescent or remove)", vs.OnFailure)
	}
	switch vs.Startup {
	case "", "up", "down":
	default:
		v.errf(p+".startup", "unknown value %q (want up or down)", vs.Startup)
	}
	if vs.Quorum < 0 || vs.Hysteresis < 0 {
		v.errf(p+".quorum", "quorum and hysteresis cannot be negative")
	} else if vs.Hysteresis > 0 && vs.Hysteresis >= vs.QuorumOrDefault() {
		v.errf(p+".hysteresis", "hysteresis %d must be below the quorum %d", vs.Hysteresis, vs.QuorumOrDefault())
	}
	if vs.Check != nil {
		v.check(p+".check", vs.Check)
		v.checkPort(p+".check", vs, vs.Check)
		if len(vs.Checks) > 0 {
			v.errf(p+".checks", "set check (one) or checks (several), not both")
		}
	}
	for i, c := range vs.Checks {
		cp := fmt.Sprintf("%s.checks[%d]", p, i)
		if c == nil {
			v.errf(cp, "an empty check")
			continue
		}
		v.check(cp, c)
		v.checkPort(cp, vs, c)
	}
	seen := map[lvs.DestKey]string{}
	for j := range vs.Reals {
		rp := fmt.Sprintf("%s.real_servers[%d]", p, j)
		r := &vs.Reals[j]
		if !v.real(rp, r, vs, fam) {
			continue
		}
		if prev, ok := seen[r.Key]; ok {
			v.errf(rp, "real server %s is listed twice in this service (first at %s)", r.Key, prev)
		} else {
			seen[r.Key] = v.where(rp)
		}
	}
	if vs.Sorry != nil {
		sp := p + ".sorry_server"
		if v.real(sp, vs.Sorry, vs, fam) {
			if prev, ok := seen[vs.Sorry.Key]; ok {
				v.errf(sp, "the sorry server %s is also a real server of this service (at %s)", vs.Sorry.Key, prev)
			}
		}
	}
}

// real validates one real server; it reports whether its key is usable.
func (v *validator) real(p string, r *RealServer, vs *VirtualService, fam lvs.Family) bool {
	ok := true
	if r.Address == "" {
		v.errf(p, "missing address")
		return false
	}
	addr, err := parseAddr(r.Address)
	if err != nil {
		v.errf(p+".address", "%v", err)
		return false
	}
	if (fam == lvs.IPv6) != addr.Is6() {
		v.errf(p+".address", "%s is not in the service's address family (%s)", addr, fam)
		ok = false
	}
	if r.Port < 0 || r.Port > 65535 {
		v.errf(p+".port", "port %d is out of range 0-65535", r.Port)
		return false
	}
	if r.Port == 0 && (vs.FWMark != 0 || vs.Port != 0) {
		v.errf(p+".port", "missing port")
		ok = false
	}
	if r.Weight != nil && (*r.Weight < 0 || *r.Weight > MaxWeight) {
		v.errf(p+".weight", "weight %d is out of range 0-%d", *r.Weight, MaxWeight)
		ok = false
	}
	fwd, err := lvs.ParseForward(r.Forward)
	if err != nil {
		v.errf(p+".forward", "%v", err)
		ok = false
	}
	if r.LowerThreshold > 0 && r.UpperThreshold > 0 && r.LowerThreshold > r.UpperThreshold {
		v.errf(p+".lower_threshold", "lower threshold %d is above the upper threshold %d", r.LowerThreshold, r.UpperThreshold)
	}
	if fwd == lvs.NAT && addr.IsLoopback() && v.backend != BackendFake {
		v.warnf(p+".forward", "NAT to the loopback address %s: the kernel drops such traffic; a sorry server on the director needs forward: dr and a server listening on 0.0.0.0", addr)
	}
	if fwd != lvs.NAT && !vs.Key.IsFWMark() && vs.Port != 0 && r.Port != vs.Port {
		v.errf(p+".port", "port %d differs from the service's port %d: only NAT can rewrite ports (dr and tun keep the destination port)", r.Port, vs.Port)
		ok = false
	}
	r.Key = lvs.DestKey{Addr: addr, Port: uint16(r.Port)}
	r.Fwd = fwd
	return ok
}

func (v *validator) check(p string, c *Check) {
	typ, known := LookupCheckType(c.Type)
	if c.Type == "" {
		v.errf(p+".type", "missing check type (one of %s)", strings.Join(CheckTypes(), ", "))
	} else if !known {
		v.errf(p+".type", "unknown check type %q (want one of %s)", c.Type, strings.Join(CheckTypes(), ", "))
	}
	if c.Interval < 0 {
		v.errf(p+".interval", "negative interval")
	} else if c.Interval.D() < 100*time.Millisecond {
		v.errf(p+".interval", "%s is too short: at least 100ms", c.Interval.D())
	}
	// A timeout longer than the interval is allowed (the spec's own
	// example has 1s/3s, as keepalived and ldirectord allow): the next
	// check of a server simply waits for the one in flight.
	if c.Timeout <= 0 {
		v.errf(p+".timeout", "timeout must be positive")
	}
	if c.Rise < 1 || c.Rise > 100 {
		v.errf(p+".rise", "rise %d is out of range 1-100", c.Rise)
	}
	if c.Fall < 1 || c.Fall > 100 {
		v.errf(p+".fall", "fall %d is out of range 1-100", c.Fall)
	}
	if c.Retries < 0 || c.Retries > 10 {
		v.errf(p+".retries", "retries %d is out of range 0-10", c.Retries)
	}
	if c.Port < 0 || c.Port > 65535 {
		v.errf(p+".port", "port %d is out of range 0-65535", c.Port)
	}
	if c.Address != "" {
		if _, err := parseAddr(c.Address); err != nil {
			v.errf(p+".address", "%v", err)
		}
	}
	if c.Path != "" && !strings.HasPrefix(c.Path, "/") {
		v.errf(p+".path", "path %q must start with /", c.Path)
	}
	if known {
		v.checkType(p, c, typ)
	}
}

// parseAddr accepts an IPv4 or IPv6 address, without brackets, port or
// zone (IPVS has no notion of zones).
func parseAddr(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(strings.TrimSpace(s))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("%q is not an IP address", s)
	}
	if a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q has a zone; IPVS addresses have none", s)
	}
	if a.IsUnspecified() || a.IsMulticast() {
		return netip.Addr{}, fmt.Errorf("%s cannot be a service or server address", a)
	}
	return a.Unmap(), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// sortProblems puts problems in file order, keeping the order of the
// problems of one line (stable): O(n log n), so a file with tens of
// thousands of problems is judged at once.
func sortProblems(ps Errors) {
	slices.SortStableFunc(ps, func(a, b Problem) int { return cmp.Compare(a.Line, b.Line) })
}
