package config

import (
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Peer is the other director of the pair (or one of several): lvsmon pulls
// its status API and compares the two configs and kernel tables, so that a
// difference is found before a failover serves it.
type Peer struct {
	// Name names the peer in the UI, metrics and events; default the
	// URL's host.
	Name string `yaml:"name"`
	// URL is the peer's web port (http or https), as lvsmon ctl's --url.
	URL string `yaml:"url"`
	// CAFile verifies the peer's certificate; CertFile and KeyFile are
	// this director's client certificate, for a peer that asks for one.
	CAFile             string    `yaml:"ca_file"`
	CertFile           string    `yaml:"cert_file"`
	KeyFile            string    `yaml:"key_file"`
	InsecureSkipVerify bool      `yaml:"insecure_skip_verify"`
	BasicAuth          BasicAuth `yaml:"basic_auth"`
	// BearerTokenFile holds a token the peer accepts (its write token
	// passes its basic auth gate too).
	BearerTokenFile string `yaml:"bearer_token_file"`
	// Timeout bounds one pull of the whole status (every page); default 5s.
	Timeout Duration `yaml:"timeout"`
	// Interval is how often the peer is pulled; default 10s.
	Interval Duration `yaml:"interval"`
}

// Peer defaults.
const (
	DefaultPeerTimeout  = 5 * time.Second
	DefaultPeerInterval = 10 * time.Second
)

func (c *Config) peersDefaults() {
	for i := range c.Peers {
		p := &c.Peers[i]
		if p.Timeout == 0 {
			p.Timeout = Duration(DefaultPeerTimeout)
		}
		if p.Interval == 0 {
			p.Interval = Duration(DefaultPeerInterval)
		}
		if p.Name == "" {
			if u, err := url.Parse(p.URL); err == nil {
				p.Name = u.Host
			}
		}
	}
}

func (v *validator) peers(c *Config) {
	names := map[string]int{}
	for i := range c.Peers {
		p := &c.Peers[i]
		path := "peers[" + strconv.Itoa(i) + "]"
		v.httpURL(path+".url", p.URL, true)
		if p.Name != "" {
			if j, ok := names[p.Name]; ok {
				v.errf(path+".name", "%q is the name of peers[%d] too", p.Name, j)
			}
			names[p.Name] = i
		}
		if t := p.Timeout.D(); t < 100*time.Millisecond || t > time.Minute {
			v.errf(path+".timeout", "%s: want 100ms to 1m", t)
		}
		if iv := p.Interval.D(); iv < time.Second || iv > time.Hour {
			v.errf(path+".interval", "%s: want 1s to 1h", iv)
		} else if p.Timeout.D() > iv {
			v.errf(path+".timeout", "%s is longer than the interval (%s)", p.Timeout.D(), iv)
		}
		if (p.CertFile == "") != (p.KeyFile == "") {
			v.errf(path+".cert_file", "cert_file and key_file go together")
		}
		if p.BasicAuth.PasswordFile != "" && p.BasicAuth.Username == "" {
			v.errf(path+".basic_auth.username", "a password_file is set but no username")
		}
		if p.BasicAuth.Username != "" && p.BasicAuth.PasswordFile == "" {
			v.errf(path+".basic_auth.password_file", "required with a username")
		}
		if p.BasicAuth.Username != "" && p.BearerTokenFile != "" {
			v.errf(path+".bearer_token_file", "set basic_auth or bearer_token_file, not both")
		}
		for _, f := range []struct{ key, val string }{
			{"ca_file", p.CAFile}, {"cert_file", p.CertFile}, {"key_file", p.KeyFile},
			{"basic_auth.password_file", p.BasicAuth.PasswordFile}, {"bearer_token_file", p.BearerTokenFile},
		} {
			if f.val == "" {
				continue
			}
			if !filepath.IsAbs(f.val) {
				v.errf(path+"."+f.key, "%q must be an absolute path", f.val)
			} else if _, err := os.ReadFile(f.val); err != nil {
				v.errf(path+"."+f.key, "%v", err)
			}
		}
		if p.InsecureSkipVerify && p.CAFile != "" {
			v.errf(path+".insecure_skip_verify", "set ca_file or insecure_skip_verify, not both")
		}
	}
}

// CheckSettings is a service's check settings as one comparable line:
// the keys that change what a check does, in a fixed order, with
// defaults applied. Secrets (env values) are left out; their names stay,
// so a different environment still shows. Two directors whose lines
// differ check the real servers differently.
func CheckSettings(vs *VirtualService) string {
	var parts []string
	for i, c := range vs.AllChecks() {
		if c == nil {
			continue
		}
		f := []string{"type=" + c.Type, "interval=" + c.Interval.D().String(), "timeout=" + c.Timeout.D().String(),
			"rise=" + strconv.Itoa(c.Rise), "fall=" + strconv.Itoa(c.Fall)}
		add := func(k, v string) {
			if v != "" && v != "0" && v != "false" {
				f = append(f, k+"="+strconv.Quote(v))
			}
		}
		add("retries", strconv.Itoa(c.Retries))
		add("address", c.Address)
		add("port", strconv.Itoa(c.Port))
		add("method", c.Method)
		add("host", c.Host)
		add("path", c.Path)
		add("status", c.Status)
		add("expect", c.Expect)
		add("tls_verify", strconv.FormatBool(c.TLSVerify))
		add("tls_ca", c.TLSCA)
		add("sni", c.SNI)
		add("max_body", strconv.FormatInt(c.MaxBody, 10))
		add("send", c.Send)
		add("query_name", c.QueryName)
		add("query_type", c.QueryType)
		add("command", c.Command)
		add("args", strings.Join(c.Args, " "))
		envKeys := make([]string, 0, len(c.Env))
		for k := range c.Env {
			envKeys = append(envKeys, k)
		}
		slices.Sort(envKeys)
		add("env", strings.Join(envKeys, ","))
		add("pass_env", strings.Join(c.PassEnv, ","))
		add("ehlo", c.EHLO)
		add("dynamic", strconv.FormatBool(c.Dynamic))
		add("file", c.File)
		if c.Weight != nil {
			f = append(f, "weight="+strconv.Itoa(*c.Weight))
		}
		add("reverse", strconv.FormatBool(c.Reverse))
		s := strings.Join(f, " ")
		if len(vs.AllChecks()) > 1 {
			s = fmt.Sprintf("[%d] %s", i, s)
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}
