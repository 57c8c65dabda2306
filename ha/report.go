package ha

import (
	"net/netip"
	"time"
)

// Source names, as they appear in reports, the status API and metrics.
const (
	SourceKeepalived = "keepalived" // JSON dump and notify FIFO
	SourceVIP        = "vip"        // configured VIPs on local interfaces
	SourceHeartbeat  = "heartbeat"  // cl_status
	SourcePacemaker  = "pacemaker"  // crm_mon
	SourceVRRP       = "vrrp"       // adverts on the wire
	SourceSimulated  = "simulated"  // the demo director
)

// Report is what one source knows at one moment. A source sends a Report
// whenever its knowledge changes (and periodically), always complete for
// that source: instances it no longer lists are gone from its view.
//
// Err set means the source could not be read this time (keepalived's dump
// did not come, crm_mon could not reach the cluster): the Monitor marks
// the source down and keeps its previous report, so one failed read does
// not make the role flap. A source that read fine and found its daemon stopped reports
// Running false without Err: that is knowledge, not a failure.
type Report struct {
	Source string
	Time   time.Time
	Err    error
	// Running says whether the HA daemon behind the source runs
	// (keepalived's process, heartbeat); true for sources without a
	// daemon (vip, vrrp).
	Running bool
	// Instances is the source's view per VRRP instance (keepalived),
	// resource group (heartbeat, pacemaker) or simulated instance.
	Instances []InstanceReport
	// VIPs is, for the vip source, every configured VIP and whether it is
	// on a local interface now.
	VIPs []VIPPresence
	// Routers is, for the vrrp source, what the wire shows per VRID.
	Routers []RouterReport
	// Transition is set by push sources (the notify FIFO) when the report
	// comes from one transition line, so the Monitor can note where the
	// change was seen.
	Transition bool
}

// InstanceReport is one instance's state as one source sees it.
type InstanceReport struct {
	Name     string
	VRID     int // 0 when the source does not know
	State    State
	Priority int // effective priority; 0 when unknown
	// VIPs are the instance's virtual addresses (from keepalived's dump),
	// used to tie VIP presence to the instance.
	VIPs []netip.Addr
	// Since is when the source says the state began (keepalived's
	// last_transition); zero when unknown.
	Since time.Time
	// VIPsDecide is set by a source that knows its daemon runs and holds
	// resources but not whether those are the director's: heartbeat's
	// rscstatus says "local" on a node that holds nothing. The Monitor
	// then makes the instance MASTER while all its VIPs are here and
	// BACKUP otherwise (UNKNOWN while VIP presence is not known). State
	// is ignored.
	VIPsDecide bool
}

// VIPPresence says whether one VIP is configured on a local interface.
type VIPPresence struct {
	Addr      netip.Addr
	Present   bool
	Interface string // where it is, when present
}

// RouterReport is what VRRP adverts on the wire say about one VRID.
type RouterReport struct {
	VRID    int
	Version int
	// Masters are the routers that sent adverts within their master-down
	// interval (3 × advert interval + skew), highest priority first. More
	// than one means two masters at once.
	Masters []WireMaster
}

// WireMaster is one router advertising as master.
type WireMaster struct {
	Addr     netip.Addr
	Priority int
	Interval time.Duration
	LastSeen time.Time
	// Local is true when the advert left this host (AF_PACKET
	// PACKET_OUTGOING), i.e. this director is the one advertising.
	Local bool
}
