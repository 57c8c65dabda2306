package events

import "strings"

// Upgrade fills the structured fields of an event written before events
// had them (release 1: all meaning in Kind and Message) from its
// message, so that consumers read fields only and the one parse of old
// message text is here. Open applies it to every line it loads; a
// consumer that kept events of its own from an older release (alerting's
// saved state) applies it to those.
//
// It fills only what a consumer decides on, and only for an event whose
// To is empty (a later event carries To for every kind handled here):
// To of server, sorry and simulated events from the kind; the reason of
// a server_down from the checker's "NAME: ADDR is down: REASON"; applied
// or rejected for a reload ("config reload rejected, running config
// kept: PROBLEM"); From and To of a role change from ha's
// "VI_1: BACKUP → MASTER (priority 100, keepalived)" or "VI_1: MASTER at
// start (...)". A message it cannot read leaves the fields empty.
func Upgrade(e Event) Event {
	if e.To != "" {
		return e
	}
	switch e.Kind {
	case ServerDown:
		e.To = Down
		if e.Reason == "" {
			e.Reason = legacyReason(e.Message)
		}
	case ServerUp:
		e.To = Up
	case SimulatedDown:
		e.To = Down
	case SimulatedUp:
		e.To = Up
	case SorryOn:
		e.To = On
	case SorryOff:
		e.To = Off
	case Reload:
		// Release 1 wrote "config reload rejected, running config kept:
		// ..." and "config reloaded: N virtual services"; its alerting
		// took any message with "rejected" for a rejection.
		e.To = Applied
		if strings.Contains(e.Message, "rejected") {
			e.To = Rejected
			if _, p, ok := strings.Cut(e.Message, "running config kept: "); ok && e.Reason == "" {
				e.Reason = p
			}
		}
	case RoleChange:
		e.From, e.To = legacyRole(e.Instance, e.Message)
	}
	return e
}

// legacyReason is the failing check's message in the checker's
// "NAME: ADDR is down: REASON"; the whole message when it has no such
// preamble (as release 1's mail showed it).
func legacyReason(msg string) string {
	if _, r, ok := strings.Cut(msg, " is down: "); ok && r != "" {
		return r
	}
	return msg
}

// legacyRole reads the states of ha's role-change message, as release
// 1's alerting did: the word after the last "→" is the new state, the
// word before it the old one; "NAME: STATE at start (...)" has no old
// one. Both are empty when the message is neither.
func legacyRole(instance, msg string) (from, to string) {
	s := strings.TrimPrefix(msg, instance+": ")
	if i := strings.LastIndex(s, "→"); i >= 0 {
		if f := strings.Fields(s[:i]); len(f) > 0 {
			from = f[len(f)-1]
		}
		if f := strings.Fields(s[i+len("→"):]); len(f) > 0 {
			to = f[0]
		}
		if to == "" {
			from = ""
		}
		return from, to
	}
	if i := strings.Index(s, " at start"); i >= 0 {
		if f := strings.Fields(s[:i]); len(f) > 0 {
			return "", f[0]
		}
	}
	return "", ""
}
