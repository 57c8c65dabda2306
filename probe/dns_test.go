package probe

import (
	"net"
	"testing"

	"github.com/miekg/dns"

	"github.com/lvsmon/lvsmon/lvs"
)

// zone is the test DNS server's data, in zone-file lines.
var zone = []string{
	"www.example.org. 300 IN A 192.0.2.1",
	"www.example.org. 300 IN AAAA 2001:db8::1",
	"example.org. 300 IN MX 10 mail.example.org.",
	`example.org. 300 IN TXT "v=spf1 -all"`,
	"alias.example.org. 300 IN CNAME www.example.org.",
	"v4only.example.org. 300 IN A 192.0.2.2",
	". 300 IN SOA a.root-servers.net. nstld.verisign-grs.com. 1 1800 900 604800 86400",
}

// dnsHandler answers from zone (following one CNAME), SERVFAIL for
// servfail.example.org, the transport asked over as a TXT record for
// transport.example.org, and NXDOMAIN for everything else.
func dnsHandler(t *testing.T) dns.HandlerFunc {
	var rrs []dns.RR
	for _, line := range zone {
		rr, err := dns.NewRR(line)
		if err != nil {
			t.Fatal(err)
		}
		rrs = append(rrs, rr)
	}
	return func(w dns.ResponseWriter, q *dns.Msg) {
		m := new(dns.Msg)
		m.SetReply(q)
		name, qtype := q.Question[0].Name, q.Question[0].Qtype
		switch name {
		case "servfail.example.org.":
			m.Rcode = dns.RcodeServerFailure
		case "transport.example.org.":
			rr, _ := dns.NewRR("transport.example.org. 0 IN TXT " + w.RemoteAddr().Network())
			m.Answer = append(m.Answer, rr)
		default:
			known := false
			for _, rr := range rrs {
				h := rr.Header()
				if h.Name != name {
					continue
				}
				known = true
				if h.Rrtype == qtype {
					m.Answer = append(m.Answer, rr)
				} else if cname, ok := rr.(*dns.CNAME); ok {
					m.Answer = append(m.Answer, rr)
					for _, rr := range rrs {
						if rr.Header().Name == cname.Target && rr.Header().Rrtype == qtype {
							m.Answer = append(m.Answer, rr)
						}
					}
				}
			}
			if !known {
				m.Rcode = dns.RcodeNameError
			}
		}
		w.WriteMsg(m)
	}
}

// serveDNS runs an in-process DNS server on one loopback port, UDP and
// TCP, as a real one listens.
func serveDNS(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	h := dnsHandler(t)
	for _, srv := range []*dns.Server{{Listener: ln, Handler: h}, {PacketConn: pc, Handler: h}} {
		started := make(chan struct{})
		srv.NotifyStartedFunc = func() { close(started) }
		done := make(chan struct{})
		go func() {
			defer close(done)
			srv.ActivateAndServe()
		}()
		<-started
		t.Cleanup(func() {
			srv.Shutdown()
			<-done
		})
	}
	return ln.Addr().String()
}

func TestProbeDNS(t *testing.T) {
	addr := serveDNS(t)
	silent := serveUDP(t, "127.0.0.1", func([]byte) []byte { return nil })
	tests := []struct {
		name  string
		proto lvs.Protocol
		addr  string
		check string
		want  string
	}{
		{"A", lvs.UDP, addr, "{type: dns, query_name: www.example.org, expect: 192.0.2.1}", ""},
		{"A, any value", lvs.UDP, addr, "{type: dns, query_name: www.example.org.}", ""},
		{"A, wrong value", lvs.UDP, addr, "{type: dns, query_name: www.example.org, expect: 192.0.2.7}", "dns: A www.example.org is 192.0.2.1, want 192.0.2.7"},
		{"AAAA in another notation", lvs.UDP, addr, "{type: dns, query_name: www.example.org, query_type: aaaa, expect: '2001:DB8:0::1'}", ""},
		{"MX", lvs.UDP, addr, "{type: dns, query_name: example.org, query_type: MX, expect: '10 MAIL.example.org'}", ""},
		{"the root's SOA, keepalived's DNS_CHECK default", lvs.UDP, addr, "{type: dns, query_name: ., query_type: SOA}", ""},
		{"MX, wrong host", lvs.UDP, addr, "{type: dns, query_name: example.org, query_type: MX, expect: '10 mx.example.org'}", "dns: MX example.org is 10 mail.example.org., want 10 mx.example.org"},
		{"TXT", lvs.UDP, addr, "{type: dns, query_name: example.org, query_type: TXT, expect: 'v=spf1 -all'}", ""},
		{"through a CNAME", lvs.UDP, addr, "{type: dns, query_name: alias.example.org, expect: 192.0.2.1}", ""},
		{"no record of the type", lvs.UDP, addr, "{type: dns, query_name: v4only.example.org, query_type: AAAA}", "dns: no AAAA record for v4only.example.org"},
		{"no record, with expect", lvs.UDP, addr, "{type: dns, query_name: v4only.example.org, query_type: AAAA, expect: '2001:db8::2'}", "dns: no AAAA record for v4only.example.org, want 2001:db8::2"},
		{"NXDOMAIN", lvs.UDP, addr, "{type: dns, query_name: nope.example.org}", "dns: A nope.example.org: NXDOMAIN"},
		{"SERVFAIL", lvs.UDP, addr, "{type: dns, query_name: servfail.example.org}", "dns: A servfail.example.org: SERVFAIL"},
		{"UDP service asks over UDP", lvs.UDP, addr, "{type: dns, query_name: transport.example.org, query_type: TXT, expect: udp}", ""},
		{"TCP service asks over TCP", lvs.TCP, addr, "{type: dns, query_name: transport.example.org, query_type: TXT, expect: tcp}", ""},
		{"silent server", lvs.UDP, silent, "{type: dns, query_name: www.example.org}", "dns: A www.example.org at 127.0.0.1:|: no answer within 300ms"},
		{"port unreachable", lvs.UDP, closedPort(t, "udp"), "{type: dns, query_name: www.example.org}", "dns: A www.example.org at 127.0.0.1:|: port unreachable (ICMP): connection refused"},
		{"TCP refused", lvs.TCP, closedPort(t, "tcp"), "{type: dns, query_name: www.example.org}", "dns: connect 127.0.0.1:|: connection refused"},
		{"TCP tarpit", lvs.TCP, serveTCP(t, "127.0.0.1", tarpitHandler).addr(), "{type: dns, query_name: www.example.org}", "dns: A www.example.org at 127.0.0.1:|: no answer within 300ms"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := parseCheck(t, tc.proto.String(), tc.check[:len(tc.check)-1]+", timeout: 300ms}")
			wantErr(t, runBounded(t, probeDNS, targetFor(t, tc.proto, tc.addr), c), tc.want)
		})
	}
}
