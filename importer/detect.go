package importer

import (
	"bytes"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/lvsmon/lvsmon/config"
)

// FormatLvsmon is lvsmon's own YAML, as Detect names it.
const FormatLvsmon = "lvsmon"

// Detect tells what a config file is by its content: lvsmon's YAML, a
// keepalived.conf, an ldirectord.cf or piranha's lvs.cf (name is only
// for messages). The syntaxes barely overlap, so each is recognised by
// what only it has: a YAML mapping or an lvsmon key at the start of a
// line ("virtual_services:"); a keepalived keyword at the top level
// (global_defs, virtual_server, vrrp_instance, include ...); an
// ldirectord directive "key=value" (virtual=, real=, checktimeout= ...);
// a piranha global "key = value" the others lack (primary, heartbeat,
// network ...) or a "virtual NAME {" block. A file with the marks of two
// formats, or of none, is an error naming the file and the lines that
// decided: lvsmon never guesses which program a config was written for.
func Detect(name string, data []byte) (string, error) {
	// The first lines decide; an lvsmon config may be larger than an
	// import's limit, so only its head is looked at.
	if len(data) > detectSize {
		data = data[:detectSize]
		if i := bytes.LastIndexByte(data, '\n'); i >= 0 {
			data = data[:i+1]
		}
	}
	if err := checkText(name, data); err != nil {
		return "", err
	}
	ev := detectEvidence(data)
	var found []string
	for _, f := range []string{FormatLvsmon, FormatKeepalived, FormatLdirectord, FormatPiranha} {
		if ev[f] != nil {
			found = append(found, f)
		}
	}
	switch len(found) {
	case 1:
		return found[0], nil
	case 0:
		return "", &Error{File: name, Msg: "neither an lvsmon config (YAML), a keepalived.conf, an ldirectord.cf nor a piranha lvs.cf: no line of it is one of theirs"}
	}
	slices.SortFunc(found, func(a, b string) int { return ev[a].line - ev[b].line })
	var why []string
	for _, f := range found {
		e := ev[f]
		why = append(why, fmt.Sprintf("line %d looks like %s (%s)", e.line, formatTitle(f), e.what))
	}
	return "", &Error{File: name, Msg: "cannot tell which program this config is for: " + strings.Join(why, ", ") + "; fix the file, or convert it with lvsmon import"}
}

// detectSize is how much of a file Detect reads.
const detectSize = 1 << 20

func formatTitle(f string) string {
	switch f {
	case FormatLvsmon:
		return "lvsmon's YAML"
	case FormatKeepalived:
		return "keepalived.conf"
	case FormatLdirectord:
		return "ldirectord.cf"
	case FormatPiranha:
		return "piranha's lvs.cf"
	}
	return f
}

// evidence is the first line that marks a format.
type evidence struct {
	line int
	what string
}

var (
	// lvsmonKeys are the top-level keys of lvsmon's config.
	lvsmonKeys = func() []string {
		var keys []string
		t := reflect.TypeFor[config.Config]()
		for i := range t.NumField() {
			if k, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ","); k != "" && k != "-" {
				keys = append(keys, k)
			}
		}
		return keys
	}()
	yamlKeyLine = regexp.MustCompile(`^([a-z_]+):(?:\s|$)`)
	// kTop are keepalived's top-level keywords (those of its parser's
	// root; checker and VRRP keywords only appear inside them).
	kTop = []string{"global_defs", "virtual_server", "virtual_server_group", "vrrp_instance", "vrrp_sync_group", "vrrp_script",
		"vrrp_track_file", "track_file", "track_process", "static_ipaddress", "static_routes", "static_rules", "include",
		"garp_group", "bfd_instance", "linkbeat_use_polling", "net_namespace", "net_namespace_ipvs", "namespace_with_ipsets",
		"instance", "use_pid_dir"}
	ldKeyLine = regexp.MustCompile(`^([a-z0-9]+)\s*=`)
	// piranhaTop are lvs.cf's global keys that neither other format has,
	// and its blocks.
	piranhaKeys = []string{"serial_no", "primary", "primary_private", "primary_shared", "backup", "backup_private", "backup_shared",
		"backup_active", "heartbeat", "heartbeat_port", "keepalive", "deadtime", "rsh_command", "network", "nat_router",
		"nat_nmask", "debug_level", "monitor_links", "syncdaemon", "syncd_iface", "syncd_id", "tcp_timeout", "tcpfin_timeout",
		"udp_timeout", "hard_shutdown", "reentry", "quiesce_server", "send_program", "expect_program", "use_regex", "load_monitor"}
	piranhaBlock = regexp.MustCompile(`^(virtual|failover|server)\s+[^\s{}=]+\s*\{`)
)

// ldOnly are ldirectord's directives that piranha's lvs.cf, whose lines
// are also "key = value", does not have.
var ldOnly = func() []string {
	shared := []string{"service", "scheduler", "protocol", "timeout", "persistent", "netmask", "address", "port", "weight"}
	var out []string
	for _, k := range slices.Concat(ldGlobal, ldVirtualKeys, []string{"virtual", "virtual6"}) {
		if !slices.Contains(shared, k) && !slices.Contains(out, k) {
			out = append(out, k)
		}
	}
	return out
}()

// detectEvidence finds, for each format, the first line only it could
// have written.
func detectEvidence(data []byte) map[string]*evidence {
	ev := map[string]*evidence{}
	mark := func(f string, line int, what string) {
		if ev[f] == nil {
			ev[f] = &evidence{line: line, what: what}
		}
	}
	depth := 0
	for i, raw := range strings.Split(string(data), "\n") {
		no := i + 1
		raw = strings.TrimRight(raw, "\r")
		if m := yamlKeyLine.FindStringSubmatch(raw); m != nil && slices.Contains(lvsmonKeys, m[1]) {
			mark(FormatLvsmon, no, m[1]+":")
		}
		t := strings.TrimSpace(raw)
		if t == "" || t[0] == '#' || t[0] == '!' {
			continue
		}
		if m := ldKeyLine.FindStringSubmatch(t); m != nil && slices.Contains(ldOnly, m[1]) {
			mark(FormatLdirectord, no, m[1]+"=")
		}
		body := decomment(t)
		if body != "" && body[0] == '@' { // keepalived's "@id line"
			_, body, _ = strings.Cut(body, " ")
			body = strings.TrimSpace(body)
		}
		first := strings.FieldsFunc(body, func(r rune) bool { return r == ' ' || r == '\t' || r == '{' || r == '}' })
		if depth == 0 && len(first) > 0 {
			if slices.Contains(kTop, first[0]) {
				mark(FormatKeepalived, no, first[0])
			}
			if m := ldKeyLine.FindStringSubmatch(body); m != nil && slices.Contains(piranhaKeys, m[1]) {
				mark(FormatPiranha, no, m[1]+" =")
			}
			if m := piranhaBlock.FindStringSubmatch(body); m != nil {
				mark(FormatPiranha, no, m[1]+" NAME {")
			}
		}
		depth = max(0, depth+braceDelta(body))
	}
	// A line starting with one of lvsmon's keys marks its YAML (so that a
	// broken lvsmon.yaml gets the YAML error); without one, a YAML
	// mapping does (unknown keys only: config.Parse names them), as the
	// others are not YAML. Decoding is the slow part, so it comes last.
	if ev[FormatLvsmon] == nil {
		var root yaml.Node
		if err := yaml.NewDecoder(bytes.NewReader(data)).Decode(&root); err == nil && len(root.Content) == 1 && root.Content[0].Kind == yaml.MappingNode {
			mark(FormatLvsmon, root.Content[0].Line, "a YAML mapping")
		}
	}
	return ev
}

// braceDelta counts the braces a keepalived line opens less those it
// closes, outside double quotes.
func braceDelta(s string) int {
	d, quote := 0, false
	for _, c := range s {
		switch {
		case c == '"':
			quote = !quote
		case quote:
		case c == '{':
			d++
		case c == '}':
			d--
		}
	}
	return d
}
