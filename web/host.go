package web

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/gin-gonic/gin"
)

// hostCheck refuses requests whose Host header names a host the director
// does not answer for, against DNS rebinding: a web page whose name an
// attacker points at the director's address would otherwise reach it
// from an operator's browser as the same origin as itself.
//
// An IP literal is always allowed (rebinding needs a name). With
// web.allowed_hosts set, any other Host must be listed, for reads too
// (this middleware, on every route). Without it, reads are answered
// whatever the Host (operators reach the dashboard by names lvsmon cannot
// know), and writes are checked by writeHostOK. Refused requests are
// answered 421 Misdirected Request.
func (s *Server) hostCheck(c *gin.Context) {
	host := requestHost(c.Request.Host)
	if host == "" || isIPLiteral(host) {
		return
	}
	allowed := s.allowedHosts()
	if len(allowed) > 0 && !slices.ContainsFunc(allowed, func(a string) bool {
		return strings.EqualFold(strings.TrimSuffix(strings.Trim(a, "[]"), "."), host)
	}) {
		apiError(c, http.StatusMisdirectedRequest, "the Host "+host+" is not in web.allowed_hosts")
	}
}

// writeHostOK is the write API's Host check without web.allowed_hosts: an
// IP literal, localhost or the machine's host name; otherwise it answers
// 421 and returns false.
func (s *Server) writeHostOK(c *gin.Context) bool {
	host := requestHost(c.Request.Host)
	if host == "" || isIPLiteral(host) || len(s.allowedHosts()) > 0 { // hostCheck has judged
		return true
	}
	if host == "localhost" || strings.HasSuffix(host, ".localhost") || slices.Contains(s.hostnames, host) {
		return true
	}
	s.log.Warn("write API: request refused for its Host header (DNS rebinding?)", "host", host, "client", c.ClientIP(), "path", c.Request.URL.Path)
	apiError(c, http.StatusMisdirectedRequest, "write requests must name this director by address, localhost or its host name, not "+host+"; or list the name in web.allowed_hosts")
	return false
}

func (s *Server) allowedHosts() []string {
	if s.src.Config == nil {
		return nil
	}
	if cfg := s.src.Config(); cfg != nil {
		return cfg.Web.AllowedHosts
	}
	return nil
}

// requestHost is the Host header's host, without port or brackets, in
// lower case and without a trailing dot.
func requestHost(h string) string {
	if hh, _, err := net.SplitHostPort(h); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	return strings.ToLower(strings.TrimSuffix(h, "."))
}

func isIPLiteral(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// ownHostnames are the machine's host name and its first label, in lower
// case ("" when it cannot be had).
func ownHostnames() []string {
	h, err := os.Hostname()
	if err != nil || h == "" {
		return nil
	}
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	names := []string{h}
	if short, _, ok := strings.Cut(h, "."); ok && short != "" {
		names = append(names, short)
	}
	return names
}
