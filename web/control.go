package web

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/config"
)

// Control is what the write API may change. cmd implements it over the
// checker's overrides and the daemon's reload.
type Control interface {
	// SetOverride sets "drain", "disable" or "" (enable) on a configured
	// real server; by says who asked, comment why (may be empty).
	// ErrUnknownServer for other ids.
	SetOverride(id, mode, by, comment string) error
	// Reload re-reads the config; a config that does not validate is
	// returned as config.Errors and changes nothing.
	Reload() error
	// ReleaseHolds ends the mass-failure guard's holds: the failures are
	// believed now. It returns how many holds ended.
	ReleaseHolds(by string) int
	// TestAlert sends a test mail now and returns the SMTP conversation;
	// ErrNoMail when the config sends no mail.
	TestAlert(ctx context.Context, by string) ([]string, error)
}

// ErrNoMail: the config sends no mail (no alerting.smtp, from, to).
var ErrNoMail = errors.New("this director's config sends no mail (alerting.smtp, from, to)")

// ErrUnknownServer: no configured real server has this id.
var ErrUnknownServer = errors.New("no such configured real server")

// ServerInfo is the checker's view of one real server, merged into the
// status.
type ServerInfo struct {
	Health   string `json:"health"`
	Check    any    `json:"check,omitempty"`
	Override any    `json:"override,omitempty"`
	// Mode is the override's mode ("drain", "disable"; "" without one),
	// for the status API's state filter.
	Mode string `json:"-"`
	// OverrideBy and OverrideSince say who set the override and when,
	// for the server page.
	OverrideBy    string    `json:"-"`
	OverrideSince time.Time `json:"-"`
	// Message is the last check's message and Since when the health
	// last changed, for the pages.
	Message string    `json:"-"`
	Since   time.Time `json:"-"`
	// CheckWeight is the weight the server's checks set (nil: none).
	CheckWeight *int32 `json:"-"`
}

// CheckHistory is one check's recent results on a server page, as runs
// of like results, newest first.
type CheckHistory struct {
	Type string     `json:"type"`
	Runs []CheckRun `json:"runs"`
}

// CheckRun is a run of like results: passed, failed or inconclusive
// (the director's own trouble), with the failure's message.
type CheckRun struct {
	Outcome string        `json:"outcome"`
	Message string        `json:"message,omitempty"`
	Count   int           `json:"count"`
	First   time.Time     `json:"first"`
	Last    time.Time     `json:"last"`
	LastDur time.Duration `json:"last_duration_ns"`
	MaxDur  time.Duration `json:"max_duration_ns"`
}

func (s *Server) controlRoutes() {
	s.engine.POST("/api/v1/servers/:id/:action", s.auth, s.override)
	s.engine.POST("/-/reload", s.auth, s.reloadAPI)
	s.engine.POST("/api/v1/guard/release", s.auth, s.releaseAPI)
}

// releaseAPI ends the mass-failure holds on an operator's word.
func (s *Server) releaseAPI(c *gin.Context) {
	n := s.src.Control.ReleaseHolds(c.ClientIP())
	s.log.Warn("mass-failure holds released through the API", "holds", n, "client", c.ClientIP())
	c.JSON(http.StatusOK, gin.H{"status": "ok", "released": n})
}

// auth requires the configured bearer token. Without one configured, the
// write API is off: refusing is safer than an open door on a director. A
// token that cannot be read, or that is too short or readable by others
// (web.api_token_file is read per request, so a rotated token takes
// effect), fails closed: 503, never accepted. A client that fails
// authFailures times within authWindow is refused 429 for a block, even
// with the right token (see authLimiter).
func (s *Server) auth(c *gin.Context) {
	if s.src.Control == nil {
		apiError(c, http.StatusNotFound, "the write API is not available on this director")
		return
	}
	if !s.writeHostOK(c) {
		return
	}
	client := c.ClientIP()
	if s.refuseBlocked(c, client) {
		return
	}
	want, err := s.src.Config().Web.Token()
	if err != nil {
		s.log.Error("write API misconfigured: the API token is refused; every write request is answered 503 until it is fixed", "err", err)
		apiError(c, http.StatusServiceUnavailable, "write API misconfigured; see the log")
		return
	}
	if want == "" {
		apiError(c, http.StatusForbidden, "the write API is off: set web.api_token_file in the config")
		return
	}
	got, ok := bearerToken(c.GetHeader("Authorization"))
	if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(want)) != 1 {
		why := "wrong token"
		if !ok {
			why = "no bearer token"
		}
		s.log.Warn("write API: request refused", "reason", why, "client", client, "method", c.Request.Method, "path", c.Request.URL.Path)
		if s.countFailure(c, client) {
			return
		}
		c.Header("WWW-Authenticate", `Bearer realm="lvsmon"`)
		apiError(c, http.StatusUnauthorized, "missing or wrong bearer token")
		return
	}
	c.Next()
}

// refuseBlocked answers 429 to a client blocked for its failed
// attempts (token, basic auth or login) and reports whether it did.
func (s *Server) refuseBlocked(c *gin.Context, client string) bool {
	if d := s.limiter.auth.blocked(client); d > 0 {
		retryAfter(c, d)
		apiError(c, http.StatusTooManyRequests, "too many failed attempts from "+client+"; retry later")
		return true
	}
	return false
}

// countFailure records a failed attempt by client; when it starts a
// block it answers 429 and reports so.
func (s *Server) countFailure(c *gin.Context, client string) bool {
	if d := s.limiter.auth.fail(client); d > 0 {
		retryAfter(c, d)
		apiError(c, http.StatusTooManyRequests, "too many failed attempts from "+client+"; retry later")
		return true
	}
	return false
}

// overrideMode is the override an action sets: drain, disable, or ""
// for enable; another action is answered 404.
func overrideMode(c *gin.Context, action string) (string, bool) {
	switch action {
	case "drain", "disable":
		return action, true
	case "enable":
		return "", true
	}
	apiError(c, http.StatusNotFound, fmt.Sprintf("unknown action %q (want drain, disable or enable)", action))
	return "", false
}

// retryAfter sets Retry-After to d in whole seconds, rounded up.
func retryAfter(c *gin.Context, d time.Duration) {
	c.Header("Retry-After", strconv.Itoa(int((d+time.Second-1)/time.Second)))
}

// bearerToken reads the token of an "Authorization: Bearer <token>"
// header. The scheme is case-insensitive and may be followed by more than
// one space (RFC 7235 section 2.1, RFC 6750 section 2.1); the token itself
// is taken as it is.
func bearerToken(h string) (string, bool) {
	scheme, rest, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok := strings.TrimLeft(rest, " ")
	return tok, tok != ""
}

func (s *Server) override(c *gin.Context) {
	id, action := c.Param("id"), c.Param("action")
	mode, ok := overrideMode(c, action)
	if !ok {
		return
	}
	comment, ok := overrideComment(c)
	if !ok {
		return
	}
	err := s.src.Control.SetOverride(id, mode, c.ClientIP(), comment)
	switch {
	case errors.Is(err, ErrUnknownServer):
		apiError(c, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.log.Error("setting an override failed", "server", id, "action", action, "err", err)
		apiError(c, http.StatusInternalServerError, "the override was not saved: "+err.Error())
		return
	}
	s.log.Info("override set through the API", "server", id, "action", action, "client", c.ClientIP())
	c.JSON(http.StatusOK, gin.H{"server": id, "action": action, "status": "ok"})
}

// MaxOverrideComment bounds an override's comment, in bytes.
const MaxOverrideComment = 1024

// overrideComment reads the optional JSON body of an override request,
// {"comment": "why"}: one line of text, at most MaxOverrideComment
// bytes. A bad body is answered 400 (ok false).
func overrideComment(c *gin.Context) (string, bool) {
	if c.Request.ContentLength == 0 {
		return "", true
	}
	var body struct {
		Comment string `json:"comment"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 4*MaxOverrideComment+64))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil && !errors.Is(err, io.EOF) {
		apiError(c, http.StatusBadRequest, "the body is not {\"comment\": \"...\"}: "+err.Error())
		return "", false
	}
	if err := checkComment(body.Comment); err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return "", false
	}
	return body.Comment, true
}

// checkComment refuses a comment that is too long or not one line of
// text (it goes into the event log, mail and logs as it is).
func checkComment(s string) error {
	switch {
	case len(s) > MaxOverrideComment:
		return fmt.Errorf("the comment is %d bytes; at most %d", len(s), MaxOverrideComment)
	case !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl):
		return errors.New("the comment must be one line of text (no control characters)")
	}
	return nil
}

func (s *Server) reloadAPI(c *gin.Context) {
	err := s.src.Control.Reload()
	var errs config.Errors
	switch {
	case errors.As(err, &errs):
		lines := make([]string, len(errs))
		for i, p := range errs {
			lines[i] = p.String()
		}
		c.JSON(http.StatusBadRequest, gin.H{"status": "rejected", "error": "the config does not validate; the running one is kept", "problems": lines})
		return
	case err != nil:
		c.JSON(http.StatusBadRequest, gin.H{"status": "rejected", "error": err.Error()})
		return
	}
	c.JSON(http.StatusOK, gin.H{"status": "reloaded"})
}
