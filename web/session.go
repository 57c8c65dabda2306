package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
)

// People sign in through the login page against the web config's users
// (basic_auth_users: the one user store) and get a session: a random id
// in a cookie (HttpOnly, SameSite=Strict, Secure over TLS) that names a
// server-side entry. Sessions live in memory, so a restart signs everyone
// out; that is the price of never writing a credential to disk.
const (
	sessionCookie = "lvsmon_session"
	// sessionIdle ends a session unused this long; sessionMax ends any
	// session this old: a dashboard kept open all day (its live update
	// keeps it used) asks for the password once a day.
	sessionIdle = 8 * time.Hour
	sessionMax  = 24 * time.Hour
	// maxSessions bounds memory; the oldest session goes first.
	maxSessions = 10_000
)

// session is one signed-in browser.
type session struct {
	id, user string
	// csrf is the token every form of this session carries: a page on
	// another site cannot read it, so it cannot forge a form.
	csrf          string
	created, seen time.Time
}

// sessions is the in-memory session store.
type sessions struct {
	now func() time.Time
	mu  sync.Mutex
	m   map[string]*session
}

func newSessions(now func() time.Time) *sessions {
	if now == nil {
		now = time.Now
	}
	return &sessions{now: now, m: map[string]*session{}}
}

// randomToken is 32 random bytes, URL-safe.
func randomToken() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails (crypto/rand panics rather than return short)
	return base64.RawURLEncoding.EncodeToString(b)
}

// create starts a session for user.
func (st *sessions) create(user string) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	now := st.now()
	if len(st.m) >= maxSessions {
		st.expireLocked(now)
	}
	for len(st.m) >= maxSessions { // still full: drop the oldest
		var oldest *session
		for _, s := range st.m {
			if oldest == nil || s.created.Before(oldest.created) {
				oldest = s
			}
		}
		delete(st.m, oldest.id)
	}
	s := &session{id: randomToken(), user: user, csrf: randomToken(), created: now, seen: now}
	st.m[s.id] = s
	return s
}

// get returns the live session with id and marks it used; nil when there
// is none or it expired.
func (st *sessions) get(id string) *session {
	st.mu.Lock()
	defer st.mu.Unlock()
	s, ok := st.m[id]
	if !ok {
		return nil
	}
	now := st.now()
	if now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
		delete(st.m, id)
		return nil
	}
	s.seen = now
	cp := *s
	return &cp
}

func (st *sessions) drop(id string) {
	st.mu.Lock()
	defer st.mu.Unlock()
	delete(st.m, id)
}

func (st *sessions) len() int {
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.m)
}

func (st *sessions) expireLocked(now time.Time) {
	for id, s := range st.m {
		if now.Sub(s.seen) > sessionIdle || now.Sub(s.created) > sessionMax {
			delete(st.m, id)
		}
	}
}

// sessionOf is the request's session, if its cookie names a live one
// whose user still exists (a user removed from the web config on reload
// is signed out at the next request).
func (s *Server) sessionOf(c *gin.Context) *session {
	ck, err := c.Cookie(sessionCookie)
	if err != nil || ck == "" {
		return nil
	}
	se := s.sessions.get(ck)
	if se == nil {
		return nil
	}
	if acc := s.access(); acc == nil || acc.users[se.user] == "" {
		s.sessions.drop(se.id)
		return nil
	}
	return se
}

// anonymousRead reports whether requests without credentials may read:
// web.anonymous says; by default they may when there are no users.
func (s *Server) anonymousRead(acc *Access) bool {
	if s.src.Config != nil {
		switch s.src.Config().Web.Anonymous {
		case "read":
			return true
		case "none":
			return false
		}
	}
	return acc == nil || len(acc.users) == 0
}

// wantsHTML reports whether a request comes from a browser reading a
// page, which is sent to the login page rather than given a 401.
func wantsHTML(c *gin.Context) bool {
	return c.Request.Method == http.MethodGet && strings.Contains(c.GetHeader("Accept"), "text/html")
}

// localPath keeps a post-login destination on this site: a path, not
// "//host" or a URL.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	if u, err := url.Parse(p); err != nil || u.Host != "" || u.Scheme != "" {
		return "/"
	}
	return p
}

// loginPage is the login form's data.
type loginPage struct {
	Director string
	Next     string
	Error    string
	User     string
	NoUsers  bool
}

func (s *Server) loginForm(c *gin.Context) {
	acc := s.access()
	p := loginPage{Director: s.director(), Next: localPath(c.Query("next")), NoUsers: acc == nil || len(acc.users) == 0}
	s.renderLogin(c, http.StatusOK, p)
}

func (s *Server) renderLogin(c *gin.Context, code int, p loginPage) {
	c.Header("Content-Type", "text/html; charset=utf-8")
	c.Status(code)
	if err := s.page.ExecuteTemplate(c.Writer, "login.html", p); err != nil {
		s.templateFailed(c, "login.html", err)
	}
}

// login checks a user's password and starts a session. Failures count
// towards the client's block, as wrong tokens and basic auth do.
func (s *Server) login(c *gin.Context) {
	if !s.writeHostOK(c) || !sameOrigin(c) {
		return
	}
	acc := s.access()
	user, pass := c.PostForm("user"), c.PostForm("password")
	p := loginPage{Director: s.director(), Next: localPath(c.PostForm("next")), User: user}
	if acc == nil || len(acc.users) == 0 {
		p.NoUsers = true
		s.renderLogin(c, http.StatusForbidden, p)
		return
	}
	client := c.ClientIP()
	if d := s.limiter.auth.blocked(client); d > 0 {
		retryAfter(c, d)
		p.Error = "Too many failed attempts from " + client + "; try again later."
		s.renderLogin(c, http.StatusTooManyRequests, p)
		return
	}
	if user == "" || !s.pwcache.check(acc.users, user, pass) {
		s.log.Warn("web: login refused", "reason", "wrong user or password", "user", user, "client", client)
		p.Error = "Wrong user or password."
		code := http.StatusUnauthorized
		if d := s.limiter.auth.fail(client); d > 0 {
			retryAfter(c, d)
			code = http.StatusTooManyRequests
			p.Error = "Too many failed attempts from " + client + "; try again later."
		}
		s.renderLogin(c, code, p)
		return
	}
	se := s.sessions.create(user)
	s.setSessionCookie(c, se.id, int(sessionMax/time.Second))
	s.log.Info("web: signed in", "user", user, "client", client)
	c.Redirect(http.StatusSeeOther, p.Next)
}

// logout ends the session; it is a form with the CSRF token, so another
// site cannot sign an operator out.
func (s *Server) logout(c *gin.Context) {
	se := s.formSession(c)
	if se == nil {
		return
	}
	s.sessions.drop(se.id)
	s.setSessionCookie(c, "", -1)
	s.log.Info("web: signed out", "user", se.user, "client", c.ClientIP())
	c.Redirect(http.StatusSeeOther, "/")
}

func (s *Server) setSessionCookie(c *gin.Context, value string, maxAge int) {
	http.SetCookie(c.Writer, &http.Cookie{
		Name: sessionCookie, Value: value, Path: "/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: secureRequest(c),
	})
}

// secureRequest reports whether the browser reached lvsmon over TLS: on
// the TLS port, or through a trusted proxy that says https.
func secureRequest(c *gin.Context) bool {
	if c.Request.TLS != nil {
		return true
	}
	// gin believes forwarding headers only from web.trusted_proxies; the
	// proxy's own address is the remote one then.
	return c.RemoteIP() != c.ClientIP() && strings.EqualFold(c.GetHeader("X-Forwarded-Proto"), "https")
}

// sameOrigin refuses a POST whose Origin (sent by every current browser
// on a POST) names another site than the one it was sent to.
func sameOrigin(c *gin.Context) bool {
	o := c.GetHeader("Origin")
	if o == "" {
		return true // not a browser, or an old one: the CSRF token decides
	}
	u, err := url.Parse(o)
	if err != nil || !strings.EqualFold(u.Host, c.Request.Host) {
		apiError(c, http.StatusForbidden, "cross-site request refused (Origin "+o+")")
		return false
	}
	return true
}

// formSession is the session of a form POST whose CSRF token matches;
// otherwise it answers 403 and returns nil.
func (s *Server) formSession(c *gin.Context) *session {
	if !s.writeHostOK(c) || !sameOrigin(c) {
		return nil
	}
	se := s.sessionOf(c)
	if se == nil {
		apiError(c, http.StatusForbidden, "sign in first: actions from the pages need a session (scripts use the bearer token API)")
		return nil
	}
	if subtle.ConstantTimeCompare([]byte(c.PostForm("csrf")), []byte(se.csrf)) != 1 {
		s.log.Warn("web: form refused: wrong CSRF token", "user", se.user, "client", c.ClientIP(), "path", c.Request.URL.Path)
		apiError(c, http.StatusForbidden, "the form's token is wrong or missing: reload the page and try again")
		return nil
	}
	return se
}

func (s *Server) director() string {
	if s.src.Config == nil {
		return ""
	}
	return s.src.Config().Director
}
