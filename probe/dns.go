package probe

import (
	"context"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/lvs"
)

func init() {
	Register(config.CheckType{Name: "dns", Keys: []string{"query_name", "query_type", "expect"}}, probeDNS)
}

// probeDNS is the dns check: ask the server for query_name and
// query_type (recursion desired, so a resolver can be checked as well as
// an authoritative server) over the service's protocol, TCP for a TCP
// service and UDP otherwise. Healthy when the answer is NOERROR with at
// least one record of the type asked and, with expect, one whose value
// is expect.
func probeDNS(ctx context.Context, t Target, c *config.Check) error {
	qt := c.QueryType
	if qt == "" {
		qt = "A"
	}
	qtype, ok := dns.StringToType[strings.ToUpper(qt)]
	if !ok {
		return fmt.Errorf("dns: unknown query type %q", qt)
	}
	name := strings.TrimSuffix(c.QueryName, ".")
	network := "udp"
	if t.Service.Protocol == lvs.TCP {
		network = "tcp"
	}
	// The client's own timeouts (2s by default) would cut a longer
	// check short; the context's deadline is the only one that counts.
	timeout := c.Timeout.D()
	if dl, ok := ctx.Deadline(); ok {
		timeout = time.Until(dl)
	}
	if timeout <= 0 {
		timeout = config.DefaultTimeout
	}
	cl := &dns.Client{Net: network, Timeout: timeout}
	co, err := cl.DialContext(ctx, t.String())
	if err != nil {
		return fmt.Errorf("dns: connect %s: %w", t, reason(ctx, err, c))
	}
	defer co.Close()
	stop := bindDeadline(ctx, co.Conn)
	defer stop()

	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), qtype)
	q.RecursionDesired = true
	r, _, err := cl.ExchangeWithConnContext(ctx, q, co)
	if err != nil {
		return fmt.Errorf("dns: %s %s at %s: %w", qt, name, t, udpReason(ctx, err, c))
	}
	if r.Rcode != dns.RcodeSuccess {
		return fmt.Errorf("dns: %s %s: %s", qt, name, dns.RcodeToString[r.Rcode])
	}
	var values []string
	for _, rr := range r.Answer {
		if rr.Header().Rrtype != qtype {
			continue // a CNAME on the way to the answer
		}
		if c.Expect == "" || dnsMatch(rr, c.Expect) {
			return nil
		}
		values = append(values, dnsValue(rr))
	}
	want := ""
	if c.Expect != "" {
		want = ", want " + c.Expect
	}
	if len(values) == 0 {
		return fmt.Errorf("dns: no %s record for %s%s", qt, name, want)
	}
	return fmt.Errorf("dns: %s %s is %s%s", qt, name, strings.Join(values, ", "), want)
}

// dnsValue is a record's value as a zone file writes it after the type
// ("192.0.2.1", "10 mail.example.org."); TXT strings are joined unquoted.
func dnsValue(rr dns.RR) string {
	if txt, ok := rr.(*dns.TXT); ok {
		return strings.Join(txt.Txt, "")
	}
	return strings.TrimPrefix(rr.String(), rr.Header().String())
}

// dnsMatch reports whether a record's value is want: addresses compare
// as addresses (2001:db8::1 is 2001:DB8:0::1), names without case and
// trailing dot, TXT as the joined text.
func dnsMatch(rr dns.RR, want string) bool {
	switch v := rr.(type) {
	case *dns.A:
		return sameAddr(v.A, want)
	case *dns.AAAA:
		return sameAddr(v.AAAA, want)
	case *dns.TXT:
		return strings.Join(v.Txt, "") == want
	}
	return normName(dnsValue(rr)) == normName(want)
}

func sameAddr(ip []byte, want string) bool {
	a, err := netip.ParseAddr(want)
	got, ok := netip.AddrFromSlice(ip)
	return err == nil && ok && got.Unmap() == a.Unmap()
}

// normName lowercases a value and drops the trailing dot of each field.
func normName(s string) string {
	f := strings.Fields(strings.ToLower(s))
	for i := range f {
		f[i] = strings.TrimSuffix(f[i], ".")
	}
	return strings.Join(f, " ")
}
