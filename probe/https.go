package probe

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "https", Keys: []string{"path", "method", "host", "status", "expect", "max_body", "tls_verify", "tls_ca", "sni"}, ExpectRegexp: true}, probeHTTPS)
}

// probeHTTPS is probeHTTP over TLS. The certificate is not verified
// unless tls_verify is set (ldirectord's default: real servers are
// reached by address and their certificates carry the service's name).
func probeHTTPS(ctx context.Context, t Target, c *config.Check) error {
	return httpProbe(ctx, t, c, "https")
}

// httpsConfig is the TLS side of an https check. SNI is the check's sni,
// else its Host without the port; an address sends none. With
// tls_verify, the certificate must be valid for that name, or for the
// address connected to when there is no name.
func httpsConfig(t Target, c *config.Check) (*tls.Config, error) {
	cfg := &tls.Config{
		ServerName:         serverName(c),
		InsecureSkipVerify: !c.TLSVerify,
		NextProtos:         []string{"http/1.1"},
		RootCAs:            c.TLSRoots,
	}
	if c.TLSVerify && cfg.ServerName == "" {
		cfg.ServerName = t.Addr.String()
	}
	if c.TLSVerify && c.TLSCA != "" && c.TLSRoots == nil {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", c.TLSCA)
		}
	}
	return cfg, nil
}

// serverName is the TLS server name an https check sends: sni, or else
// host without its port; empty when that is an address.
func serverName(c *config.Check) string {
	if c.SNI != "" {
		return c.SNI
	}
	h := c.Host
	if host, _, err := net.SplitHostPort(h); err == nil {
		h = host
	}
	h = strings.Trim(h, "[]")
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	return h
}
