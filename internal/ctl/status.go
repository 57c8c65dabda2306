package ctl

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/lvsmon/lvsmon/lvs"
	"github.com/lvsmon/lvsmon/web"
)

// CheckResult is the part of the checker's view of a real server (the
// status API's check object) that the table shows.
type CheckResult struct {
	Health           string    `json:"health"`
	Since            time.Time `json:"since"`
	LastCheck        time.Time `json:"last_check"`
	LastOK           bool      `json:"last_ok"`
	LastMessage      string    `json:"last_message"`
	CheckType        string    `json:"check_type"`
	Stalled          bool      `json:"stalled"`
	LastInconclusive string    `json:"last_inconclusive"`
	Pending          bool      `json:"pending_down"`
	Held             bool      `json:"held"`
}

// Override is an operator's drain or disable (the status API's override
// object).
type Override struct {
	Mode    string    `json:"mode"`
	Since   time.Time `json:"since"`
	By      string    `json:"by"`
	Comment string    `json:"comment"`
}

// reshape re-decodes one of the status API's free-form objects (decoded
// as map[string]any into web's types) into a typed one.
func reshape[T any](v any) (*T, bool) {
	if v == nil {
		return nil, false
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, false
	}
	var out T
	if json.Unmarshal(b, &out) != nil {
		return nil, false
	}
	return &out, true
}

// CheckOf is the real server's last check; ok false without a checker.
func CheckOf(r *web.RealServerStatus) (*CheckResult, bool) { return reshape[CheckResult](r.Check) }

// OverrideOf is the real server's override; ok false without one.
func OverrideOf(r *web.RealServerStatus) (*Override, bool) {
	o, ok := reshape[Override](r.Override)
	return o, ok && o.Mode != ""
}

// Render writes the status as a table like ipvsadm -Ln, with lvsmon's
// view: each real server's health, the last check's result when it
// failed, an override, and the rates. Times are written in loc.
func Render(w io.Writer, st *web.Status, loc *time.Location) error {
	ts := func(t time.Time) string { return t.In(loc).Format(time.DateTime) }
	var b strings.Builder
	head := []string{"director " + st.Director}
	if st.Role != nil {
		role := "role " + st.Role.Role
		if !st.Role.Acting {
			role += " (observing only: act_only_on " + st.Role.ActOnlyOn + ")"
		}
		head = append(head, role)
	} else {
		head = append(head, "role -")
	}
	head = append(head, "lvsmon "+st.Version, "backend "+st.Backend)
	if st.SampledAt != nil {
		head = append(head, "sampled "+ts(*st.SampledAt))
	} else {
		head = append(head, "no sample yet")
	}
	b.WriteString(strings.Join(head, ", ") + "\n")
	if st.Collector.ConsecutiveErr > 0 && st.Collector.LastError != "" {
		fmt.Fprintf(&b, "collector: %d reads failed in a row: %s\n", st.Collector.ConsecutiveErr, st.Collector.LastError)
	}
	if st.Role != nil {
		for _, in := range st.Role.Instances {
			if len(in.Disagreements) > 0 {
				fmt.Fprintf(&b, "role: instance %s (%s): %s\n", in.Instance, in.State, strings.Join(in.Disagreements, ", "))
			}
		}
	}
	for _, p := range st.Problems {
		since := ""
		if !p.Since.IsZero() {
			since = " since " + ts(p.Since)
		}
		fmt.Fprintf(&b, "%s %s/%s%s: %s\n", strings.ToUpper(p.Severity), p.Source, p.Kind, since, p.Message)
	}
	if r := st.Reconciler; r != nil && r.DryRun && len(r.Pending) > 0 {
		fmt.Fprintf(&b, "dry run: %d change(s) not written:\n", len(r.Pending))
		for _, p := range r.Pending {
			b.WriteString("  " + p + "\n")
		}
	}
	if _, err := io.WriteString(w, b.String()); err != nil {
		return err
	}
	t := &table{header: []string{"  -> RemoteAddress:Port", "Forward", "Weight", "ActiveConn", "InActConn", "Health", "Conn/s", "Bytes/s", "Override, last check"}}
	for i := range st.Services {
		s := &st.Services[i]
		line := serviceKey(s)
		if s.FWMark == 0 {
			line = strings.Replace(line, " ", "  ", 1) // ipvsadm's "TCP  10.0.0.1:80"
		}
		line += " " + s.Scheduler
		if s.PersistenceSeconds > 0 {
			line += fmt.Sprintf(" persistent %g", s.PersistenceSeconds)
		}
		var notes []string
		if s.Name != "" {
			notes = append(notes, s.Name)
		}
		if !s.Configured {
			notes = append(notes, "not configured")
		} else if !s.Managed {
			notes = append(notes, "observed only")
		}
		if !s.InKernel {
			notes = append(notes, "NOT IN THE KERNEL")
		}
		if s.SorryActive {
			notes = append(notes, "SORRY SERVER IN USE")
		}
		if len(notes) > 0 {
			line += "  " + strings.Join(notes, ", ")
		}
		line += fmt.Sprintf("  (%d active, %d inactive", s.ActiveConns, s.InactiveConns)
		if conns, bytes := rates(s.Stats); conns != "-" {
			line += ", " + conns + " conn/s, " + bytes + " bytes/s"
		}
		t.line(line + ")")
		for j := range s.RealServers {
			t.row(realRow(&s.RealServers[j], ts))
		}
	}
	_, err := io.WriteString(w, "Prot LocalAddress:Port Scheduler Flags\n"+t.String())
	return err
}

// table aligns the real servers' columns over the whole status, with the
// services' lines between them (as ipvsadm does, unaligned).
type table struct {
	header []string
	rows   [][]string // nil: lines[i] is a line of its own
	lines  []string
}

func (t *table) line(s string) { t.rows, t.lines = append(t.rows, nil), append(t.lines, s) }

func (t *table) row(cells []string) { t.rows, t.lines = append(t.rows, cells), append(t.lines, "") }

func (t *table) String() string {
	width := make([]int, len(t.header))
	for _, r := range append([][]string{t.header}, t.rows...) {
		for i, c := range r {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	write := func(cells []string) {
		var l strings.Builder
		for i, c := range cells {
			l.WriteString(c)
			if i < len(cells)-1 {
				l.WriteString(strings.Repeat(" ", width[i]-utf8.RuneCountInString(c)+1))
			}
		}
		b.WriteString(strings.TrimRight(l.String(), " ") + "\n")
	}
	write(t.header)
	for i, r := range t.rows {
		if r == nil {
			b.WriteString(t.lines[i] + "\n")
			continue
		}
		write(r)
	}
	return b.String()
}

func realRow(r *web.RealServerStatus, ts func(time.Time) string) []string {
	weight := "-"
	if r.Weight != nil {
		weight = fmt.Sprint(*r.Weight)
	}
	if r.ConfiguredWeight != nil && (r.Weight == nil || *r.Weight != *r.ConfiguredWeight) {
		weight += "/" + fmt.Sprint(*r.ConfiguredWeight)
	}
	health := r.Health
	if health == "" {
		health = "-"
	}
	var notes []string
	if r.Sorry {
		notes = append(notes, "sorry server")
	}
	if !r.Configured {
		notes = append(notes, "not configured")
	}
	if !r.InKernel {
		notes = append(notes, "not in the kernel")
	}
	if o, ok := OverrideOf(r); ok {
		n := o.Mode
		if o.By != "" {
			n += " by " + o.By
		}
		if !o.Since.IsZero() {
			n += " at " + ts(o.Since)
		}
		if o.Comment != "" {
			n += fmt.Sprintf(" %q", o.Comment)
		}
		notes = append(notes, n)
	}
	if c, ok := CheckOf(r); ok {
		switch {
		case c.Held:
			notes = append(notes, "down HELD by the mass-failure guard")
		case c.Pending:
			notes = append(notes, "down pending (is it a mass failure?)")
		}
		if c.Stalled {
			notes = append(notes, "checks stalled")
		}
		switch {
		case c.LastCheck.IsZero():
			notes = append(notes, "not checked yet")
		case !c.LastOK && c.LastMessage != "":
			notes = append(notes, c.CheckType+": "+c.LastMessage)
		case !c.LastOK:
			notes = append(notes, c.CheckType+": failed")
		}
		if c.LastInconclusive != "" && !c.LastOK {
			notes = append(notes, "inconclusive: "+c.LastInconclusive)
		}
	}
	conns, bytes := rates(r.Stats)
	return []string{"  -> " + hostPort(r.Address, r.Port), forwardName(r.Forward), weight,
		fmt.Sprint(r.ActiveConns), fmt.Sprint(r.InactiveConns), health, conns, bytes, strings.Join(notes, "; ")}
}

// forwardName is ipvsadm's name of a forwarding method.
func forwardName(f string) string {
	switch f {
	case lvs.DR.String():
		return "Route"
	case lvs.NAT.String():
		return "Masq"
	case lvs.Tunnel.String():
		return "Tunnel"
	case lvs.Local.String():
		return "Local"
	case lvs.Bypass.String():
		return "Bypass"
	}
	return f
}

// rates formats the connection and byte (in + out) rates; "-" before a
// second sample.
func rates(c *web.Counters) (string, string) {
	if c == nil || !c.Rates.Valid {
		return "-", "-"
	}
	return fmt.Sprintf("%.1f", c.Rates.Conns), humanBytes(c.Rates.InBytes + c.Rates.OutBytes)
}

// humanBytes writes a byte rate with a binary prefix: 0, 512, 1.5K, 2.0M.
func humanBytes(v float64) string {
	const units = "KMGTPE"
	if v < 1024 {
		return fmt.Sprintf("%.0f", v)
	}
	i := -1
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return fmt.Sprintf("%.1f%c", v, units[i])
}
