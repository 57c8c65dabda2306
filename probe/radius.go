package probe

import (
	"cmp"
	"context"
	"crypto/hmac"
	"crypto/md5"
	"encoding/binary"
	"errors"
	"fmt"
	"net"

	"layeh.com/radius"
	"layeh.com/radius/rfc2865"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	Register(config.CheckType{Name: "radius", Keys: []string{"username", "password", "password_file", "secret", "secret_file"}}, probeRADIUS)
}

// probeRADIUS is the radius check, as ldirectord's check_radius: one
// Access-Request (PAP: username, password) with the shared secret over
// a fresh UDP socket, then a wait for the reply until the timeout; the
// check's retries are the retransmissions. Only an Access-Accept is
// healthy, as in ldirectord (Authen::Radius's check_pwd is true for an
// Accept alone): a server that rejects its monitoring user rejects its
// users too, since the user store behind it (a file, LDAP, SQL) is what
// fails. An Access-Reject, an Access-Challenge or a reply signed with
// another secret is the server's answer, so the check fails.
//
// The request carries a Message-Authenticator (RFC 3579; what servers
// hardened against BlastRADIUS, CVE-2024-3596, require). Such a server
// drops a request whose secret is wrong without a word, so a timeout's
// message names that cause too.
func probeRADIUS(ctx context.Context, t Target, c *config.Check) error {
	secret := []byte(cmp.Or(c.SharedSecret, c.RADIUSSecret))
	if len(secret) == 0 {
		return errors.New("radius: no shared secret")
	}
	conn, err := dialTarget(ctx, "udp", t)
	if err != nil {
		return fmt.Errorf("radius: connect %s: %w", t, reason(ctx, err, c))
	}
	defer conn.Close()
	req, err := radiusRequest(c.Username, cmp.Or(c.Secret, c.Password), secret, conn.LocalAddr())
	if err != nil {
		return fmt.Errorf("radius: %w", err)
	}
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("radius: send to %s: %w", t, reason(ctx, err, c))
	}
	// One datagram decides: the socket is connected, so the kernel
	// passes only the server's, and a fresh source port per attempt
	// means no late reply to an earlier attempt can come in.
	buf := make([]byte, radius.MaxPacketLength)
	n, err := conn.Read(buf)
	if err != nil {
		err = reason(ctx, err, c)
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("radius: %s: %w (a server drops a request it cannot authenticate: wrong secret, or a client it does not know?)", t, err)
		}
		return fmt.Errorf("radius: %s: %w", t, err)
	}
	if err := checkRADIUSReply(buf[:n], req, secret); err != nil {
		return fmt.Errorf("radius: %s: %w", t, err)
	}
	return nil
}

// Message-Authenticator (RFC 3579 3.2): the attribute's type, and where
// radiusRequest puts its value (the first attribute, as RFC 9765
// advises: ahead of anything an attacker could choose).
const (
	msgAuthType = 80
	msgAuthAt   = 20 + 2
)

// radiusRequest is the wire form of an Access-Request for user and
// password, with NAS-Identifier lvsmon (so the server's log tells
// health checks apart), NAS-IP-Address when the socket's address is
// IPv4 (as ldirectord's Authen::Radius sends) and a Message-Authenticator.
func radiusRequest(user, password string, secret []byte, local net.Addr) ([]byte, error) {
	p := radius.New(radius.CodeAccessRequest, secret)
	p.Attributes = radius.Attributes{{Type: msgAuthType, Attribute: make(radius.Attribute, md5.Size)}}
	if err := rfc2865.UserName_SetString(p, user); err != nil {
		return nil, fmt.Errorf("username: %w", err)
	}
	if err := rfc2865.UserPassword_SetString(p, password); err != nil {
		return nil, fmt.Errorf("password: %w", err)
	}
	rfc2865.NASIdentifier_SetString(p, "lvsmon")
	if ua, ok := local.(*net.UDPAddr); ok && ua.IP.To4() != nil {
		rfc2865.NASIPAddress_Set(p, ua.IP.To4())
	}
	b, err := p.Encode()
	if err != nil {
		return nil, err
	}
	mac := hmac.New(md5.New, secret)
	mac.Write(b)
	copy(b[msgAuthAt:], mac.Sum(nil))
	return b, nil
}

// ErrRADIUSAuthenticator is a reply signed with another secret than the
// check's.
var ErrRADIUSAuthenticator = errors.New("reply authenticator does not match: wrong secret?")

// checkRADIUSReply judges a reply to the Access-Request req: it must be
// a whole RADIUS packet answering req (same identifier), signed with
// secret, and an Access-Accept. Anything else is an error saying what
// came instead.
func checkRADIUSReply(reply, req, secret []byte) error {
	if len(reply) < 20 {
		return fmt.Errorf("reply of %d bytes is not a RADIUS packet: %s", len(reply), excerpt(reply))
	}
	n := int(binary.BigEndian.Uint16(reply[2:4]))
	if n < 20 || n > len(reply) {
		return fmt.Errorf("reply is not a RADIUS packet (length field %d, %d bytes came): %s", n, len(reply), excerpt(reply))
	}
	reply = reply[:n] // RFC 2865 3: octets past the length are padding
	if reply[1] != req[1] {
		return fmt.Errorf("reply to another request (identifier %d, sent %d)", reply[1], req[1])
	}
	if !radius.IsAuthenticResponse(reply, req, secret) {
		return ErrRADIUSAuthenticator
	}
	p, err := radius.Parse(reply, secret)
	if err != nil {
		return fmt.Errorf("malformed reply: %w", err)
	}
	msg := ""
	if s := rfc2865.ReplyMessage_GetString(p); s != "" {
		msg = ": " + excerpt([]byte(s))
	}
	switch p.Code {
	case radius.CodeAccessAccept:
		return nil
	case radius.CodeAccessReject:
		return fmt.Errorf("%s%s", p.Code, msg)
	case radius.CodeAccessChallenge:
		return fmt.Errorf("%s%s (the server asks for more than a password: check with a user that needs none)", p.Code, msg)
	}
	return fmt.Errorf("unexpected reply %s%s", p.Code, msg)
}
