package web

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lvsmon/lvsmon/config"
)

// The pages' actions: drain, disable and enable a real server, reload
// the config and release the mass-failure holds, as forms that need a
// session and its CSRF token, each behind a confirmation step that works
// without JavaScript. The bearer token API (control.go) stays for
// scripts; both end in the same Control calls, so the event log records
// who acted either way.

func (s *Server) uiRoutes() {
	s.engine.GET("/login", s.loginForm)
	s.engine.POST("/login", s.login)
	s.engine.POST("/logout", s.logout)
	s.engine.POST("/ui/servers/:id/:action", s.uiOverride)
	s.engine.POST("/ui/reload", s.uiReload)
	s.engine.POST("/ui/guard/release", s.uiRelease)
	s.engine.POST("/ui/test-alert", s.uiTestAlert)
}

// viewer is who looks at a page, for its header and its action forms.
type viewer struct {
	// User is the signed-in user ("" for none); CSRF the session's form
	// token.
	User, CSRF string
	// CanSignIn is true when the web config has users.
	CanSignIn bool
	// CanAct is true when this director has a write API (Control).
	CanAct bool
}

func (s *Server) viewerOf(c *gin.Context) viewer {
	acc := s.access()
	v := viewer{CanSignIn: acc != nil && len(acc.users) > 0, CanAct: s.src.Control != nil}
	if se := s.sessionOf(c); se != nil {
		v.User, v.CSRF = se.user, se.csrf
	}
	return v
}

// by is how an action from a page names its actor in the event log and
// the override: the user, and where from.
func by(se *session, c *gin.Context) string {
	return se.user + " (web, " + c.ClientIP() + ")"
}

// confirmPage asks before an action is taken.
type confirmPage struct {
	Director, Title, Detail, Action, Post, Back, CSRF string
	// Comment offers a comment field (overrides keep one).
	Comment bool
	// Transcript is a test mail's SMTP conversation.
	Transcript []string
	// Problems are shown instead of a form: why an action was refused.
	Problems []string
	Viewer   viewer
}

// overrideDetail says what each override does, on its confirmation.
var overrideDetail = map[string]string{
	"drain":   "Weight 0: no new connections; open ones finish. Health checks go on.",
	"disable": "Removed from the service: open connections break. Health checks go on.",
	"enable":  "Back to what its health checks say.",
}

// uiSession is the session of an action form that may act: a session
// with the right CSRF token (formSession) on a director with a write API.
func (s *Server) uiSession(c *gin.Context) *session {
	se := s.formSession(c)
	if se == nil {
		return nil
	}
	if s.src.Control == nil {
		apiError(c, http.StatusNotFound, "this director has no write API (it only observes)")
		return nil
	}
	return se
}

// asked shows p as the action's confirmation, posting back to this path,
// unless the form is that confirmation; it reports whether it asked.
func (s *Server) asked(c *gin.Context, se *session, p confirmPage) bool {
	if c.PostForm("confirm") == "yes" {
		return false
	}
	p.Director, p.Post, p.CSRF, p.Viewer = s.director(), c.Request.URL.Path, se.csrf, s.viewerOf(c)
	s.confirm(c, p)
	return true
}

func (s *Server) confirm(c *gin.Context, p confirmPage) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	if err := s.page.ExecuteTemplate(c.Writer, "confirm.html", p); err != nil {
		s.templateFailed(c, "confirm.html", err)
	}
}

func (s *Server) uiOverride(c *gin.Context) {
	se := s.uiSession(c)
	if se == nil {
		return
	}
	id, action := c.Param("id"), c.Param("action")
	mode, ok := overrideMode(c, action)
	if !ok {
		return
	}
	back := "/server/" + id
	if s.asked(c, se, confirmPage{Title: fmt.Sprintf("%s real server %s?", action, id), Detail: overrideDetail[action],
		Action: action, Back: back, Comment: true}) {
		return
	}
	comment := strings.TrimSpace(c.PostForm("comment"))
	if err := checkComment(comment); err != nil {
		apiError(c, http.StatusBadRequest, err.Error())
		return
	}
	err := s.src.Control.SetOverride(id, mode, by(se, c), comment)
	switch {
	case errors.Is(err, ErrUnknownServer):
		apiError(c, http.StatusNotFound, err.Error())
		return
	case err != nil:
		s.log.Error("web: override from the page failed", "server", id, "mode", action, "user", se.user, "err", err)
		apiError(c, http.StatusInternalServerError, err.Error())
		return
	}
	s.log.Info("web: override set from the page", "server", id, "mode", action, "user", se.user, "client", c.ClientIP())
	c.Redirect(http.StatusSeeOther, back)
}

func (s *Server) uiReload(c *gin.Context) {
	se := s.uiSession(c)
	if se == nil {
		return
	}
	if s.asked(c, se, confirmPage{Title: "Reload the config?", Detail: "The config file is read again; one that does not validate is refused and the running one kept.",
		Action: "reload", Back: "/"}) {
		return
	}
	if err := s.src.Control.Reload(); err != nil {
		p := confirmPage{Director: s.director(), Title: "The reload was refused; the running config is kept", Back: "/", Viewer: s.viewerOf(c)}
		var errs config.Errors
		if errors.As(err, &errs) {
			for _, e := range errs {
				p.Problems = append(p.Problems, e.String())
			}
		} else {
			p.Problems = []string{err.Error()}
		}
		c.Status(http.StatusUnprocessableEntity)
		s.confirm(c, p)
		return
	}
	s.log.Info("web: config reloaded from the page", "user", se.user, "client", c.ClientIP())
	c.Redirect(http.StatusSeeOther, "/")
}

func (s *Server) uiRelease(c *gin.Context) {
	se := s.uiSession(c)
	if se == nil {
		return
	}
	if s.asked(c, se, confirmPage{Title: "Release the mass-failure holds?",
		Detail: "The held failures are believed at once: those real servers are taken out. Check the director's own network first.",
		Action: "release", Back: "/"}) {
		return
	}
	n := s.src.Control.ReleaseHolds(by(se, c))
	s.log.Warn("mass-failure holds released from the page", "holds", n, "user", se.user, "client", c.ClientIP())
	c.Redirect(http.StatusSeeOther, "/")
}

// securityHeaders go on every answer: no framing (clickjacking of the
// action buttons), no script but lvsmon's own files, no MIME sniffing.
// The web config's headers, set after, may override them.
func securityHeaders(c *gin.Context) {
	h := c.Writer.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "+
		"frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
}

// CheckAnonymous refuses web.anonymous: none without users: nobody could
// read the port at all.
func CheckAnonymous(cfg *config.Config, acc *Access) error {
	if cfg.Web.Anonymous == "none" && (acc == nil || len(acc.users) == 0) {
		return errors.New("web.anonymous: none needs users to sign in: basic_auth_users in the file --web.config.file names")
	}
	return nil
}

// uiTestAlert sends a test mail and shows the relay's conversation.
func (s *Server) uiTestAlert(c *gin.Context) {
	se := s.uiSession(c)
	if se == nil {
		return
	}
	if s.asked(c, se, confirmPage{Title: "Send a test mail?", Detail: "One mail to the alerting recipients, now, straight to the relay; its answer is shown.",
		Action: "send", Back: "/"}) {
		return
	}
	ctx, cancel := context.WithTimeout(c.Request.Context(), time.Minute)
	defer cancel()
	lines, err := s.src.Control.TestAlert(ctx, by(se, c))
	p := confirmPage{Director: s.director(), Back: "/", Viewer: s.viewerOf(c), Transcript: lines}
	switch {
	case errors.Is(err, ErrNoMail):
		p.Title, p.Problems = "No test mail: this director sends no mail", []string{err.Error()}
		c.Status(http.StatusConflict)
	case err != nil:
		p.Title, p.Problems = "The test mail was not accepted", []string{err.Error()}
		c.Status(http.StatusBadGateway)
	default:
		p.Title = "The relay accepted the test mail"
	}
	s.confirm(c, p)
}
