package probe

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"syscall"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

func init() {
	Register(config.CheckType{Name: "sip", Keys: []string{"sip_uri", "sip_transport"}}, probeSIP)
}

// probeSIP is the sip check, ldirectord's check_sip: one OPTIONS request
// over UDP or TCP (the service's protocol unless sip_transport says),
// and the server's final answer must be 2xx (ldirectord wants exactly
// "200 OK"; any 2xx is success in SIP). Provisional 1xx answers are
// skipped; any other status is the server's answer, a failure. Over UDP
// nothing is resent within an attempt (retries are for lost datagrams,
// as for the udp check), and a datagram that is not the answer to this
// request (not SIP, another Call-ID) is ignored.
//
// Hand-written rather than github.com/emiago/sipgo: its client needs a
// user agent with a transport and a transaction layer (listeners,
// goroutines, a connection pool and retransmission timers) per probe or
// shared between probes, where a check needs one request on a fresh
// socket and one status line.
func probeSIP(ctx context.Context, t Target, c *config.Check) error {
	transport := sipTransport(t, c)
	where := fmt.Sprintf("%s (%s)", t, transport)
	conn, err := dialTarget(ctx, transport, t)
	if err != nil {
		return fmt.Errorf("sip: connect %s: %w", where, reason(ctx, err, c))
	}
	defer conn.Close()
	local, _ := netip.ParseAddrPort(conn.LocalAddr().String())
	uri := c.SIPURI
	if uri == "" {
		uri = "sip:" + t.String()
	}
	callID := fmt.Sprintf("%016x@lvsmon", rand.Uint64())
	req := sipOptions(uri, transport, local, callID)
	if _, err := conn.Write(req); err != nil {
		return fmt.Errorf("sip: send to %s: %w", where, sipReason(ctx, err, c, transport))
	}
	var resp sipResponse
	var stray error // over UDP, the last datagram that was not the answer
	if transport == "udp" {
		resp, stray, err = sipReadUDP(conn, callID)
	} else {
		resp, err = sipReadTCP(conn, callID)
	}
	var bad errNotSIP
	switch {
	case errors.As(err, &bad):
		return fmt.Errorf("sip: %s: %w", where, err)
	case err != nil:
		err = sipReason(ctx, err, c, transport)
		if stray != nil && !errors.Is(err, syscall.ECONNREFUSED) {
			return fmt.Errorf("sip: %s: %w (and before it %v)", where, err, stray)
		}
		return fmt.Errorf("sip: %s: %w", where, err)
	case resp.code < 200 || resp.code > 299:
		return fmt.Errorf("sip: %s: status %d %s", where, resp.code, shown(resp.reason))
	}
	return nil
}

// sipTransport is the check's sip_transport, else the service's
// protocol: tcp for a TCP service, udp for a UDP or fwmark one (SIP's
// own default).
func sipTransport(t Target, c *config.Check) string {
	switch {
	case c.SIPTransport != "":
		return c.SIPTransport
	case t.Service.Protocol == lvs.TCP:
		return "tcp"
	}
	return "udp"
}

// sipReason is reason, with an ICMP refusal over UDP spelled out.
func sipReason(ctx context.Context, err error, c *config.Check, transport string) error {
	if transport == "udp" {
		return udpReason(ctx, err, c)
	}
	return reason(ctx, err, c)
}

// sipOptions is the request: what RFC 3261 requires of one (Via with a
// magic-cookie branch, Max-Forwards, To, From with a tag, Call-ID,
// CSeq), as ldirectord sends it, with the transport and the socket's own
// address in Via so the answer comes back to it.
func sipOptions(uri, transport string, local netip.AddrPort, callID string) []byte {
	host := local.Addr().String()
	if local.Addr().Is6() {
		host = "[" + host + "]"
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "OPTIONS %s SIP/2.0\r\n", uri)
	fmt.Fprintf(&b, "Via: SIP/2.0/%s %s;branch=z9hG4bK%016x;rport\r\n", strings.ToUpper(transport), local, rand.Uint64())
	b.WriteString("Max-Forwards: 70\r\n")
	fmt.Fprintf(&b, "To: <%s>\r\n", uri)
	fmt.Fprintf(&b, "From: <sip:lvsmon@%s>;tag=%08x\r\n", host, rand.Uint32())
	fmt.Fprintf(&b, "Call-ID: %s\r\n", callID)
	b.WriteString("CSeq: 1 OPTIONS\r\n")
	fmt.Fprintf(&b, "Contact: <sip:lvsmon@%s;transport=%s>\r\n", local, transport)
	b.WriteString("Accept: application/sdp\r\nUser-Agent: lvsmon\r\nContent-Length: 0\r\n\r\n")
	return b.Bytes()
}

// sipReadUDP waits for the final answer in datagrams: each holds one
// message. Datagrams that are not an answer to callID are skipped; the
// last of them is returned with the error if none comes.
func sipReadUDP(conn net.Conn, callID string) (resp sipResponse, stray, err error) {
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		if err != nil {
			return sipResponse{}, stray, err
		}
		resp, err := parseSIPResponse(buf[:n])
		switch {
		case err != nil:
			stray = err
		case resp.callID != callID:
			stray = fmt.Errorf("an answer to another request (Call-ID %s)", excerpt([]byte(resp.callID)))
		case resp.code >= 200:
			return resp, nil, nil
		}
	}
}

// sipReadTCP reads messages from the stream (a head, then Content-Length
// bytes of body) until the final answer; all of it within maxReply.
func sipReadTCP(conn net.Conn, callID string) (sipResponse, error) {
	r := bufio.NewReader(newCapReader(conn, maxReply, "answer"))
	for {
		var head []byte
		for {
			line, err := r.ReadSlice('\n')
			if err != nil {
				if errors.Is(err, bufio.ErrBufferFull) {
					err = errTooLong{"answer line", int64(r.Size())}
				}
				return sipResponse{}, err
			}
			head = append(head, line...)
			if len(bytes.TrimRight(line, "\r\n")) == 0 {
				break
			}
		}
		resp, err := parseSIPResponse(head)
		switch {
		case err != nil:
			return sipResponse{}, err
		case resp.callID != callID:
			return sipResponse{}, errNotSIP{"an answer to another request (Call-ID " + excerpt([]byte(resp.callID)) + ")"}
		case resp.code >= 200:
			return resp, nil
		}
		if _, err := r.Discard(resp.length); err != nil {
			return sipResponse{}, err
		}
	}
}

// sipResponse is what the check reads of an answer.
type sipResponse struct {
	code   int
	reason string
	callID string
	length int // Content-Length (0 when absent)
}

// errNotSIP is an answer that is not a SIP response (or not to this
// request): the server's answer, so a failure.
type errNotSIP struct{ why string }

func (e errNotSIP) Error() string { return e.why }

// maxSIPHeaders bounds the header lines parsed.
const maxSIPHeaders = 128

// parseSIPResponse reads a response's status line ("SIP/2.0 200 OK")
// and the headers the check needs: Call-ID (compact i) and
// Content-Length (l). The head must end with an empty line; the body is
// not read.
func parseSIPResponse(b []byte) (sipResponse, error) {
	var r sipResponse
	end := bytes.Index(b, []byte("\r\n\r\n"))
	if end < 0 {
		return r, errNotSIP{"not a SIP response: " + excerpt(b)}
	}
	lines := strings.Split(string(b[:end]), "\r\n")
	status := lines[0]
	rest, ok := strings.CutPrefix(status, "SIP/2.0 ")
	if !ok || len(rest) < 3 || (len(rest) > 3 && rest[3] != ' ') {
		return r, errNotSIP{"not a SIP response: " + excerpt([]byte(status))}
	}
	code, err := strconv.Atoi(rest[:3])
	if err != nil || code < 100 || code > 699 || rest[0] == '+' || rest[0] == '-' {
		return r, errNotSIP{"not a SIP status: " + excerpt([]byte(status))}
	}
	r.code = code
	if len(rest) > 3 {
		r.reason = rest[4:]
	}
	if len(lines)-1 > maxSIPHeaders {
		return r, errNotSIP{fmt.Sprintf("more than %d header lines", maxSIPHeaders)}
	}
	for _, h := range lines[1:] {
		name, value, ok := strings.Cut(h, ":")
		if !ok || strings.HasPrefix(h, " ") || strings.HasPrefix(h, "\t") {
			continue // a folded line, or not a header: nothing the check reads
		}
		value = strings.TrimSpace(value)
		switch strings.ToLower(strings.TrimSpace(name)) {
		case "call-id", "i":
			r.callID = value
		case "content-length", "l":
			n, err := strconv.Atoi(value)
			if err != nil || n < 0 || n > maxReply {
				return r, errNotSIP{"Content-Length " + excerpt([]byte(value)) + " is not a length within " + byteSize(maxReply)}
			}
			r.length = n
		}
	}
	return r, nil
}
