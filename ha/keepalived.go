package ha

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// maxDumpSize bounds what ParseKeepalivedJSON and ParseCrmMon read. Real
// dumps are a few KiB per instance; the bound keeps a runaway file from
// eating the daemon's memory.
const maxDumpSize = 16 << 20

const sourceKeepalivedJSON = "keepalived.json"

// Instance is one VRRP instance as keepalived's JSON dump reports it.
//
// It is keepalived's own view, which is the only one that tells BACKUP from
// FAULT and knows the configured priority, but it is only as fresh as the
// dump: read it again after every FIFO EOF (keepalived stopped, crashed or
// reloaded). The dump also carries the VRRP authentication password
// (auth_data); Instance deliberately has no field for it, so it can be
// logged and exported as it is.
type Instance struct {
	Name      string // iname, the vrrp_instance name
	Interface string // ifp_ifname
	VRID      uint8  // virtual_router_id, 1..255
	Version   uint8  // VRRP version, 2 or 3

	// State is keepalived's current state; RawState the number it wrote
	// (0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT, 98 STOP), kept because
	// StateUnknown hides which unknown it was.
	State    State
	RawState int

	// Priority is the effective priority, the one sent in adverts: the
	// configured BasePriority moved by track_script/track_interface
	// weights. MasterPriority is the priority of the master this instance
	// last heard (its own when it is master).
	Priority       uint8
	BasePriority   uint8
	MasterPriority uint8

	// VIPs are the configured virtual addresses (the "vips" list; the
	// interface, scope and label keepalived prints after them are dropped).
	// VIPsSet says whether keepalived believes it has added them, true on
	// the master: a director that is MASTER without VIPsSet, or holds the
	// VIPs while BACKUP, is worth an alert.
	VIPs    []netip.Prefix
	VIPsSet bool

	// AdvertInterval is adver_int. LastTransition is when State was
	// entered (zero if the dump has none).
	AdvertInterval time.Duration
	LastTransition time.Time
}

// kaJSONInstance is the part of one dump element that is read. There is
// intentionally no auth_data field: encoding/json skips it, so the password
// never reaches memory that outlives the decoder, nor any error.
type kaJSONInstance struct {
	Data *struct {
		IName          *string  `json:"iname"`
		IfName         string   `json:"ifp_ifname"`
		VRID           *int     `json:"vrid"`
		Version        int      `json:"version"`
		State          *int     `json:"state"`
		BasePriority   int      `json:"base_priority"`
		EffPriority    *int     `json:"effective_priority"`
		MasterPriority int      `json:"master_priority"`
		LastTransition float64  `json:"last_transition"`
		VIPSet         bool     `json:"vipset"`
		VIPs           []string `json:"vips"`
		AdverInt       float64  `json:"adver_int"`
	} `json:"data"`
}

// ParseKeepalivedJSON reads keepalived's JSON dump (keepalived 2.x, written
// to $TMPDIR/keepalived.json on signal 36, see keepalived --signum=JSON): a
// JSON array with one {"data": {...}, "stats": {...}} object per VRRP
// instance. Instances come back in the order of the dump. An empty array is
// no instance and no error.
//
// Unknown fields are ignored; a missing or out-of-range iname, vrid, state
// or effective_priority, or an unreadable VIP, is an *Error wrapping
// ErrInvalid. Neither the result nor any error contains auth_data.
func ParseKeepalivedJSON(r io.Reader) ([]Instance, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxDumpSize+1))
	if err != nil {
		return nil, &Error{Source: sourceKeepalivedJSON, Err: err}
	}
	if len(data) > maxDumpSize {
		return nil, invalidf(sourceKeepalivedJSON, "", "larger than %d bytes", maxDumpSize)
	}
	trimmed := bytes.TrimSpace(data)
	if len(trimmed) == 0 {
		return nil, invalidf(sourceKeepalivedJSON, "", "empty (keepalived may still be writing it)")
	}
	if trimmed[0] != '[' {
		return nil, invalidf(sourceKeepalivedJSON, "", "not a JSON array")
	}
	var raw []kaJSONInstance
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return nil, invalidf(sourceKeepalivedJSON, "", "%s", jsonErrorText(err))
	}
	out := make([]Instance, 0, len(raw))
	seen := make(map[string]bool, len(raw))
	for i, ri := range raw {
		where := "instance " + strconv.Itoa(i+1)
		d := ri.Data
		if d == nil {
			return nil, invalidf(sourceKeepalivedJSON, where, "no \"data\" object")
		}
		if d.IName == nil || *d.IName == "" {
			return nil, invalidf(sourceKeepalivedJSON, where, "no instance name (iname)")
		}
		name := *d.IName
		where += " (" + strconv.Quote(name) + ")"
		if seen[name] {
			return nil, invalidf(sourceKeepalivedJSON, where, "duplicate instance name")
		}
		seen[name] = true
		if d.VRID == nil || *d.VRID < 1 || *d.VRID > 255 {
			return nil, invalidf(sourceKeepalivedJSON, where, "vrid %s, want 1..255", optInt(d.VRID))
		}
		if d.Version != 2 && d.Version != 3 {
			return nil, invalidf(sourceKeepalivedJSON, where, "VRRP version %d", d.Version)
		}
		if d.State == nil {
			return nil, invalidf(sourceKeepalivedJSON, where, "no state")
		}
		if d.EffPriority == nil || *d.EffPriority < 0 || *d.EffPriority > 255 {
			return nil, invalidf(sourceKeepalivedJSON, where, "effective_priority %s, want 0..255", optInt(d.EffPriority))
		}
		if d.BasePriority < 0 || d.BasePriority > 255 || d.MasterPriority < 0 || d.MasterPriority > 255 {
			return nil, invalidf(sourceKeepalivedJSON, where, "base_priority %d / master_priority %d, want 0..255", d.BasePriority, d.MasterPriority)
		}
		if !(d.AdverInt >= 0 && d.AdverInt <= 3600) {
			return nil, invalidf(sourceKeepalivedJSON, where, "adver_int %v", d.AdverInt)
		}
		if !(d.LastTransition >= 0 && d.LastTransition < 1<<40) {
			return nil, invalidf(sourceKeepalivedJSON, where, "last_transition %v", d.LastTransition)
		}
		in := Instance{
			Name:           name,
			Interface:      d.IfName,
			VRID:           uint8(*d.VRID),
			Version:        uint8(d.Version),
			State:          stateFromKeepalived(*d.State),
			RawState:       *d.State,
			Priority:       uint8(*d.EffPriority),
			BasePriority:   uint8(d.BasePriority),
			MasterPriority: uint8(d.MasterPriority),
			VIPsSet:        d.VIPSet,
			AdvertInterval: time.Duration(math.Round(d.AdverInt * float64(time.Second))),
		}
		if d.LastTransition > 0 {
			sec, frac := math.Modf(d.LastTransition)
			in.LastTransition = time.Unix(int64(sec), int64(math.Round(frac*1e6))*1e3).UTC()
		}
		for j, v := range d.VIPs {
			p, err := parseVIP(v)
			if err != nil {
				return nil, invalidf(sourceKeepalivedJSON, where, "vips[%d] %q: %v", j, v, err)
			}
			in.VIPs = append(in.VIPs, p)
		}
		out = append(out, in)
	}
	return out, nil
}

func optInt(p *int) string {
	if p == nil {
		return "missing"
	}
	return strconv.Itoa(*p)
}

// jsonErrorText describes a decoding error without quoting input: the
// standard messages name types and offsets, but a type error on a string
// would echo a value, and none of that is needed to fix a dump.
func jsonErrorText(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("JSON syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: JSON %s where %s was expected (byte %d)", te.Field, valueKind(te.Value), te.Type, te.Offset)
	default:
		return "unreadable JSON"
	}
}

// valueKind keeps the first word of UnmarshalTypeError.Value ("number 1.5"
// becomes "number").
func valueKind(v string) string {
	k, _, _ := strings.Cut(v, " ")
	return k
}

// parseVIP reads the address or prefix keepalived prints first in a vips
// entry ("192.0.2.100/24 dev eth0 scope global label eth0:vip"). An
// address without a length is a host prefix.
func parseVIP(s string) (netip.Prefix, error) {
	f := strings.Fields(s)
	if len(f) == 0 {
		return netip.Prefix{}, errors.New("empty")
	}
	if strings.Contains(f[0], "/") {
		p, err := netip.ParsePrefix(f[0])
		if err != nil {
			return netip.Prefix{}, errors.New("not an address/length")
		}
		return p, nil
	}
	a, err := netip.ParseAddr(f[0])
	if err != nil || a.Zone() != "" {
		return netip.Prefix{}, errors.New("not an address")
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// NotifyKind says whether a FIFO line is about a vrrp_instance or a
// vrrp_sync_group.
type NotifyKind uint8

const (
	NotifyInstance NotifyKind = iota + 1
	NotifyGroup
)

func (k NotifyKind) String() string {
	switch k {
	case NotifyInstance:
		return "INSTANCE"
	case NotifyGroup:
		return "GROUP"
	}
	return fmt.Sprintf("NotifyKind(%d)", uint8(k))
}

// Notification is one line of keepalived's vrrp_notify_fifo. Lines are
// transitions, pushed as they happen: they carry no initial state, none
// after a reload, and nothing on a crash (the reader just sees EOF).
type Notification struct {
	Kind NotifyKind
	Name string

	// State is the role the line reports. Event is the word keepalived
	// wrote: the state name, or MASTER_RX_LOWER_PRI (a master heard a
	// lower-priority master, a sign of a split brain that is healing; State
	// MASTER), MASTER_PRIORITY / BACKUP_PRIORITY (priority changed, with
	// vrrp_notify_priority_changes) or DELETED (instance removed by a
	// reload; State STOP).
	State State
	Event string

	// Priority is the instance's effective priority. Group lines may lack
	// it; HasPriority says whether the line had one.
	Priority    uint8
	HasPriority bool
}

// String renders the line as keepalived writes it, without the newline.
func (n Notification) String() string {
	s := n.Kind.String() + ` "` + n.Name + `" ` + n.Event
	if n.HasPriority {
		s += " " + strconv.Itoa(int(n.Priority))
	}
	return s
}

const sourceFIFO = "notify fifo"

// notifyEvents maps the words keepalived writes to states.
var notifyEvents = map[string]State{
	"MASTER":              StateMaster,
	"BACKUP":              StateBackup,
	"FAULT":               StateFault,
	"STOP":                StateStop,
	"DELETED":             StateStop,
	"MASTER_RX_LOWER_PRI": StateMaster,
	"MASTER_PRIORITY":     StateMaster,
	"BACKUP_PRIORITY":     StateBackup,
}

// ParseNotifyLine reads one vrrp_notify_fifo line,
//
//	INSTANCE "VI_1" MASTER 150
//	GROUP "VG 1" BACKUP
//
// with or without its trailing newline. The name is everything between the
// first and the last double quote, so it may contain blanks (and quotes).
// Lines of the checker's notify_fifo (VS, RS) and anything else are an
// *Error wrapping ErrInvalid.
func ParseNotifyLine(line string) (Notification, error) {
	line = strings.TrimSuffix(line, "\n")
	line = strings.TrimSuffix(line, "\r")
	where := strconv.Quote(line)
	if len(where) > 200 {
		where = where[:200] + "..."
	}
	bad := func(format string, args ...any) (Notification, error) {
		return Notification{}, invalidf(sourceFIFO, where, format, args...)
	}
	if !utf8.ValidString(line) {
		return bad("not UTF-8")
	}
	if i := strings.IndexFunc(line, unicode.IsControl); i >= 0 {
		return bad("control character at byte %d", i)
	}
	kindWord, rest, ok := strings.Cut(line, " ")
	if !ok {
		return bad("not a VRRP notification")
	}
	var n Notification
	switch kindWord {
	case "INSTANCE":
		n.Kind = NotifyInstance
	case "GROUP":
		n.Kind = NotifyGroup
	default:
		return bad("type %q, want INSTANCE or GROUP", kindWord)
	}
	if !strings.HasPrefix(rest, `"`) {
		return bad("name is not quoted")
	}
	end := strings.LastIndexByte(rest, '"')
	if end == 0 {
		return bad("name has no closing quote")
	}
	n.Name = rest[1:end]
	if n.Name == "" {
		return bad("empty name")
	}
	tail, ok := strings.CutPrefix(rest[end+1:], " ")
	if !ok {
		return bad("no state after the name")
	}
	f := strings.Split(tail, " ")
	if len(f) > 2 || f[0] == "" {
		return bad("want STATE [PRIORITY] after the name, have %q", tail)
	}
	n.Event = f[0]
	if n.State, ok = notifyEvents[n.Event]; !ok {
		return bad("unknown state %q", n.Event)
	}
	if len(f) == 2 {
		p, err := strconv.ParseUint(f[1], 10, 8)
		if err != nil || (len(f[1]) > 1 && f[1][0] == '0') {
			return bad("priority %q, want 0..255", f[1])
		}
		n.Priority, n.HasPriority = uint8(p), true
	} else if n.Kind == NotifyInstance {
		return bad("no priority")
	}
	return n, nil
}
