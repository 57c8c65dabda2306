package events

import "slices"

// Kind says what an event is about. It is a string so that the log's
// JSON reads the same as before kinds had a type; every kind lvsmon
// writes is declared here, once, and Kinds lists them for those that
// validate names (the config's alerting.kinds).
type Kind string

// Kinds of events.
const (
	ServerDown = Kind("server_down")
	ServerUp   = Kind("server_up")
	SorryOn    = Kind("sorry_on")
	SorryOff   = Kind("sorry_off")
	RoleChange = Kind("role_change")
	// Disagreement is written when the HA role sources disagree for
	// longer than the grace period; Agreement when such a disagreement
	// (Reason: its ha kind) is over.
	Disagreement = Kind("role_disagreement")
	Agreement    = Kind("role_agreement")
	Override     = Kind("override")
	// Reload is a config reload, applied or rejected (To says which).
	Reload = Kind("reload")
	// SimulatedDown and SimulatedUp are written by the demo director's
	// timeline when it breaks or mends a stand-in real server: they say
	// what the simulation did, not what a checker detected.
	SimulatedDown = Kind("simulated_down")
	SimulatedUp   = Kind("simulated_up")
	// DaemonStart and DaemonStop mark lvsmon's own life, so alerting can
	// tell ldirectord's daemon states (starting, running, stopping,
	// reloading) apart and an operator sees restarts on the graphs.
	DaemonStart = Kind("daemon_start")
	DaemonStop  = Kind("daemon_stop")
	// GuardHold and GuardRelease bracket a mass-failure hold: many real
	// servers failed at once without an answer, and lvsmon held their
	// downs rather than empty the site on what may be its own trouble.
	GuardHold    = Kind("guard_hold")
	GuardRelease = Kind("guard_release")
	// PeerDrift is written when the configs or kernel tables of this
	// director and a peer (Instance: the peer's name) start to differ,
	// PeerInSync when they agree again; Reason lists the kinds of drift.
	PeerDrift  = Kind("peer_drift")
	PeerInSync = Kind("peer_in_sync")
	// PeerUnreachable and PeerReachable bracket the time a peer's status
	// could not be pulled: its drift is unknown then, never "none".
	PeerUnreachable = Kind("peer_unreachable")
	PeerReachable   = Kind("peer_reachable")
	// OtherWriter is written when lvsmon sees another program write the
	// IPVS table of services it manages (a process such as keepalived,
	// or changes it did not make), and OtherWriterGone when that is
	// over and lvsmon writes them again. Reason says who or what.
	OtherWriter     = Kind("other_writer")
	OtherWriterGone = Kind("other_writer_gone")
	// WeightChange is written when a real server's checks change the
	// weight it gets while up (an external check's dynamic exit status,
	// a file check's value); From and To are the weights. At most one a
	// minute per server: changes in between are folded into the next.
	WeightChange = Kind("weight_change")
)

var kinds = []Kind{
	ServerDown, ServerUp, SorryOn, SorryOff, RoleChange, Disagreement, Agreement, Override, Reload,
	SimulatedDown, SimulatedUp, DaemonStart, DaemonStop, GuardHold, GuardRelease,
	PeerDrift, PeerInSync, PeerUnreachable, PeerReachable,
	OtherWriter, OtherWriterGone, WeightChange,
	HandOver, HandBack, HandOverRefused,
}

// Kinds returns every kind lvsmon writes.
func Kinds() []Kind { return slices.Clone(kinds) }

// Valid says whether k is a kind lvsmon writes. A log may hold others
// (a later release's); they are kept and shown, never refused.
func (k Kind) Valid() bool { return slices.Contains(kinds, k) }

// Names that select events where a list of kinds does (alerting.kinds)
// besides the kinds themselves. They are never the kind of an event.
const (
	// ReloadRejected selects the reloads whose config was rejected (To
	// is Rejected), the ones a human must act on. A rejected reload is
	// kind Reload, as in every older log.
	ReloadRejected = Kind("reload_rejected")
	// All selects every event.
	All = Kind("all")
)

// Selectors returns every name a kind filter accepts: the kinds,
// ReloadRejected and All.
func Selectors() []Kind { return append(Kinds(), ReloadRejected, All) }

// Selects says whether a kind filter naming k takes e.
func (k Kind) Selects(e *Event) bool {
	switch k {
	case All:
		return true
	case ReloadRejected:
		return e.Kind == Reload && e.To == Rejected
	}
	return k == e.Kind
}

// DefaultAlerts returns the selectors mailed when alerting.kinds is not
// set: what a human on call must hear about. Applied reloads, overrides
// and the demo's simulated events are left out. It lives here, beside
// the kinds, because both the config (its defaults) and alerting need
// it and the config imports no feature package.
func DefaultAlerts() []Kind {
	return []Kind{
		ServerDown, ServerUp, SorryOn, SorryOff, RoleChange, Disagreement, Agreement,
		DaemonStart, DaemonStop, ReloadRejected, GuardHold, GuardRelease,
		// An operator's drain, disable or enable (who, and the comment):
		// the audit trail reaches the mailbox too.
		Override,
		PeerDrift, PeerInSync, PeerUnreachable, PeerReachable,
		OtherWriter, OtherWriterGone,
		HandOver, HandBack, HandOverRefused,
	}
}

// Values of From and To. Role changes carry the ha states' names
// (MASTER, BACKUP, FAULT, STOP, UNKNOWN); overrides the mode (drain,
// disable) or Enabled.
const (
	// Up and Down: a real server's health (server_down, server_up,
	// simulated_down, simulated_up); Unknown before its first result.
	Up      = "up"
	Down    = "down"
	Unknown = "unknown"
	// On and Off: the sorry server (sorry_on, sorry_off).
	On  = "on"
	Off = "off"
	// Applied and Rejected: what became of a reload's config (To).
	Applied  = "applied"
	Rejected = "rejected"
	// Enabled: an override was cleared; the server follows its health.
	Enabled = "enabled"
)

// Actors that are parts of lvsmon rather than people.
const (
	ActorChecker    = "checker"
	ActorReconciler = "reconciler"
	ActorDemo       = "demo"
)

// Kinds of the director's self checks (package selfcheck): a hand-over
// of the VIPs to the peer because the self checks fail, its undoing,
// and a hand-over refused because the peer is not healthy either.
const (
	HandOver        = Kind("ha_handover")
	HandBack        = Kind("ha_handback")
	HandOverRefused = Kind("ha_handover_refused")
)
