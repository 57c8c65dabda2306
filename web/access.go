package web

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/gin-gonic/gin"
	toolkit "github.com/prometheus/exporter-toolkit/web"
	"go.yaml.in/yaml/v2"
	"golang.org/x/crypto/bcrypt"
)

// Access is the web port's TLS and basic authentication, read from the
// file that --web.config.file names. The file has the format of the
// Prometheus exporter toolkit, so a node_exporter user's file works here
// as it is: tls_server_config (server certificate, client certificates),
// http_server_config (http2, security headers) and basic_auth_users
// (bcrypt hashes). Its rate_limit is refused: lvsmon's own limits
// (web.limits) are per class of request and per client, not one bucket.
//
// The toolkit parses the file and builds the TLS config, so the
// semantics are the ecosystem's; lvsmon does the authentication itself
// because a script's bearer token must pass where a scraper's basic
// auth does, and /-/healthy and /-/ready must answer a supervisor that
// holds no password.
type Access struct {
	// File is the file it was read from.
	File string
	// TLS is the server side of TLS; nil: plain HTTP. The certificate and
	// key are read again at each handshake, so a renewed certificate is
	// served without a reload; the rest is read at start and on reload.
	TLS *tls.Config
	// HTTP2 is false when http_server_config.http2 turns it off.
	HTTP2 bool
	// Headers are set on every answer (Strict-Transport-Security, say).
	Headers map[string]string
	users   map[string]string // name -> bcrypt hash
}

// Users are the names of the basic auth users, sorted.
func (a *Access) Users() []string {
	if a == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(a.users))
}

// LoadAccess reads and checks a web config file: every user's hash is a
// bcrypt hash, the certificate and key load and match, a client CA file
// holds certificates and comes with a client_auth_type. Errors name the
// file and the key.
func LoadAccess(file string) (*Access, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("web config %s: %w", file, err)
	}
	// The toolkit's defaults, as node_exporter applies them.
	c := toolkit.Config{
		TLSConfig:  toolkit.TLSConfig{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS13},
		HTTPConfig: toolkit.HTTPConfig{HTTP2: true},
	}
	if err := yaml.UnmarshalStrict(b, &c); err != nil {
		return nil, fmt.Errorf("web config %s: %w", file, err)
	}
	c.TLSConfig.SetDirectory(filepath.Dir(file))
	if c.RateLimiterConfig.Interval != 0 || c.RateLimiterConfig.Burst != 0 {
		return nil, fmt.Errorf("web config %s: rate_limit: not supported by lvsmon; its limits are web.limits in lvsmon's config", file)
	}
	a := &Access{File: file, HTTP2: c.HTTPConfig.HTTP2, Headers: c.HTTPConfig.Header, users: map[string]string{}}
	for _, name := range slices.Sorted(maps.Keys(c.Users)) {
		h := string(c.Users[name])
		if name == "" || strings.Contains(name, ":") {
			return nil, fmt.Errorf("web config %s: basic_auth_users: %q is not a usable user name (empty or with a colon)", file, name)
		}
		if _, err := bcrypt.Cost([]byte(h)); err != nil {
			return nil, fmt.Errorf("web config %s: basic_auth_users.%s: not a bcrypt hash (make one with htpasswd -nBC 10 %s): %w", file, name, name, err)
		}
		a.users[name] = h
	}
	// The toolkit's own checks (the headers it allows, the TLS files)
	// after ours, which name the key.
	if err := toolkit.Validate(file); err != nil {
		return nil, fmt.Errorf("web config %s: %w", file, err)
	}
	if !c.TLSConfig.IsEnabled() {
		return a, nil
	}
	if c.TLSConfig.ClientCAs != "" {
		if err := holdsCertificates(c.TLSConfig.ClientCAs); err != nil {
			return nil, fmt.Errorf("web config %s: tls_server_config.client_ca_file: %w", file, err)
		}
	}
	if a.TLS, err = toolkit.ConfigToTLSConfig(&c.TLSConfig); err != nil {
		return nil, fmt.Errorf("web config %s: tls_server_config: %w", file, err)
	}
	return a, nil
}

// holdsCertificates fails on a file without one PEM certificate: the
// toolkit would take it as an empty pool, which refuses every client
// with a handshake error that does not say why.
func holdsCertificates(file string) error {
	b, err := os.ReadFile(file)
	if err != nil {
		return err
	}
	n := 0
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		if _, err := x509.ParseCertificate(blk.Bytes); err != nil {
			return fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%s holds no PEM certificate", file)
	}
	return nil
}

// CheckAccessReload refuses a reload that would turn TLS on or off: the
// listeners speak one or the other from start to stop.
func CheckAccessReload(running, next *Access) error {
	if (running != nil && running.TLS != nil) != (next != nil && next.TLS != nil) {
		return errors.New("--web.config.file: turning TLS on or off takes a restart; the running web config is kept")
	}
	return nil
}

// open reports whether a path answers without credentials: liveness and
// readiness, for a supervisor (systemd, Docker's HEALTHCHECK, a load
// balancer) that holds no password (they tell only that lvsmon is up),
// and the login page.
func open(path string) bool {
	switch path {
	case "/-/healthy", "/-/ready", "/favicon.ico", "/login":
		return true
	}
	return false
}

// gate lets a request read when it may: a signed-in session, a user's
// basic auth password, the write API's bearer token (scripts hold that
// one), or anonymously when web.anonymous allows (by default: when there
// are no users). A browser without credentials is sent to the login
// page; others get 401 with a Basic challenge. Failures count towards
// the client's block as the token's do. Writes check their own
// credentials again (the token, or a session and its CSRF token).
func (s *Server) gate(c *gin.Context) {
	acc := s.access()
	if acc != nil {
		for k, v := range acc.Headers {
			c.Header(k, v)
		}
	}
	if open(c.Request.URL.Path) {
		c.Next()
		return
	}
	if se := s.sessionOf(c); se != nil {
		c.Set(userKey, se.user)
		c.Next()
		return
	}
	if s.anonymousRead(acc) {
		c.Next()
		return
	}
	client := c.ClientIP()
	if s.refuseBlocked(c, client) {
		return
	}
	why := "no credentials"
	if user, pass, ok := c.Request.BasicAuth(); ok {
		if acc != nil && s.pwcache.check(acc.users, user, pass) {
			c.Set(userKey, user)
			c.Next()
			return
		}
		why = "wrong user or password"
	} else if tok, ok := bearerToken(c.GetHeader("Authorization")); ok {
		if want, err := s.src.Config().Web.Token(); err == nil && want != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(want)) == 1 {
			c.Next()
			return
		}
		why = "wrong bearer token"
	}
	if why != "no credentials" {
		// A browser's first request carries none: not worth a warning.
		s.log.Warn("web: request refused", "reason", why, "client", client, "method", c.Request.Method, "path", c.Request.URL.Path)
		if s.countFailure(c, client) {
			return
		}
	} else if wantsHTML(c) && acc != nil && len(acc.users) > 0 {
		c.Redirect(http.StatusSeeOther, "/login?next="+url.QueryEscape(c.Request.URL.RequestURI()))
		c.Abort()
		return
	}
	c.Header("WWW-Authenticate", `Basic realm="lvsmon", charset="UTF-8"`)
	apiError(c, http.StatusUnauthorized, "authentication required: "+why)
}

// userKey is the gin context key of the basic auth user a request
// authenticated as.
const userKey = "lvsmon.user"

// access is the web config in force; nil: none.
func (s *Server) access() *Access {
	if s.src.Access == nil {
		return nil
	}
	return s.src.Access()
}

// pwCache remembers the passwords that matched, so a scraper's request
// every few seconds does not cost a bcrypt comparison (tens of
// milliseconds by design) each. Only successes are kept, as hashes of
// user, stored hash and password: a changed hash or password misses.
// Comparisons run one at a time, so a flood of wrong passwords costs
// one core at most, and the failure limit blocks the client soon.
type pwCache struct {
	mu     sync.Mutex // one bcrypt at a time
	okMu   sync.Mutex
	ok     map[[32]byte]bool
	maxLen int
}

// dummyHash is compared when the user is unknown, so the answer takes
// as long as for a known user with a wrong password (no user
// enumeration by timing). Cost 10, as htpasswd -B makes by default.
// Made on first use, so a daemon without users never pays for it.
var dummyHash = sync.OnceValue(func() []byte {
	h, err := bcrypt.GenerateFromPassword([]byte("lvsmon: no such user"), 10)
	if err != nil {
		panic(err) // only for a cost out of range
	}
	return h
})

func (p *pwCache) check(users map[string]string, user, pass string) bool {
	hash, known := users[user]
	key := sha256.Sum256(bytes.Join([][]byte{[]byte(user), []byte(hash), []byte(pass)}, []byte{0}))
	p.okMu.Lock()
	hit := p.ok[key]
	p.okMu.Unlock()
	if hit && known {
		return true
	}
	h := []byte(hash)
	if !known {
		h = dummyHash()
	}
	p.mu.Lock()
	err := bcrypt.CompareHashAndPassword(h, []byte(pass))
	p.mu.Unlock()
	if err != nil || !known {
		return false
	}
	p.okMu.Lock()
	defer p.okMu.Unlock()
	if p.ok == nil || len(p.ok) >= cmp.Or(p.maxLen, 1024) {
		p.ok = map[[32]byte]bool{}
	}
	p.ok[key] = true
	return true
}

// tlsFor is the TLS config Serve gives a listener: the one in force at
// each handshake (a reload changes client CAs and versions for new
// connections), with the HTTP/2 choice of the start.
func (s *Server) tlsFor(start *Access) *tls.Config {
	protos := []string{"h2", "http/1.1"}
	if !start.HTTP2 {
		protos = []string{"http/1.1"}
	}
	base := start.TLS.Clone()
	base.NextProtos = protos
	base.GetConfigForClient = func(*tls.ClientHelloInfo) (*tls.Config, error) {
		cur := s.access()
		if cur == nil || cur.TLS == nil {
			return nil, nil
		}
		c := cur.TLS.Clone()
		c.NextProtos = protos
		return c, nil
	}
	return base
}
