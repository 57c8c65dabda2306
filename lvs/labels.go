package lvs

import "strconv"

// Label names of the Prometheus series about IPVS objects. Service series
// carry the service's identity both whole (service: the stable id of the
// status API and the RRD files, the one label to select on) and in parts,
// for people and regexes. Real server series add the real server's address
// and port. Addresses are written as netip prints them ("2001:db8::10");
// an address label is never bracketed. Every package that exports
// per-object series (the table's, the checker's, the reconciler's) uses
// these, so that their series join without relabelling.
var (
	ServiceLabels    = []string{"address", "fwmark", "name", "port", "protocol", "service"}
	RealServerLabels = []string{"address", "fwmark", "name", "port", "protocol", "real_address", "real_port", "service"}
)

// ServiceLabelValues returns the values of ServiceLabels for service k,
// named name in the config ("" when unconfigured).
func ServiceLabelValues(k ServiceKey, name string) []string {
	if k.IsFWMark() {
		return []string{"", strconv.FormatUint(uint64(k.FWMark), 10), name, "", "", k.ID()}
	}
	return []string{k.Addr.String(), "", name, strconv.Itoa(int(k.Port)), k.Protocol.String(), k.ID()}
}

// RealServerLabelValues returns the values of RealServerLabels.
func RealServerLabelValues(k ServiceKey, name string, d DestKey) []string {
	v := ServiceLabelValues(k, name)
	return []string{v[0], v[1], v[2], v[3], v[4], d.Addr.String(), strconv.Itoa(int(d.Port)), v[5]}
}
