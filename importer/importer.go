// Package importer turns another LVS tool's configuration (ldirectord's
// ldirectord.cf, keepalived's keepalived.conf) into an lvsmon config, with
// a report of what happened to every directive: mapped, mapped with a
// changed meaning, not supported, or ignored (no bearing on what lvsmon
// does). It only converts text: it resolves no names and connects nowhere.
//
// The result goes through lvsmon's own config types and is validated by
// config.Parse before anyone sees it: an import that does not validate is
// a bug, reported as an error naming the source lines. Validation knows
// the check types registered with config, so a program that imports links
// the probes (lvsmon does).
package importer

import (
	"bytes"
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/lvsmon/lvsmon/config"
)

// Formats the importer reads.
const (
	FormatLdirectord = "ldirectord"
	FormatKeepalived = "keepalived"
	FormatPiranha    = "piranha"
)

// Formats lists the source formats, as the command line names them.
func Formats() []string { return []string{FormatLdirectord, FormatKeepalived, FormatPiranha} }

// Status is what became of one directive.
type Status string

// The statuses. Changed and Unsupported make an import partial: the
// operator must read the report before switching.
const (
	// Mapped: lvsmon does the same.
	Mapped Status = "mapped"
	// Changed: mapped to the closest lvsmon setting, which behaves
	// differently in a way the note says.
	Changed Status = "changed"
	// Unsupported: lvsmon has no equivalent; the note says what the
	// service does without it.
	Unsupported Status = "unsupported"
	// Ignored: nothing lvsmon would do differently (logging, VRRP that
	// keepalived keeps doing, lines for another keepalived -i id).
	Ignored Status = "ignored"
)

// Entry is one line of the report: a directive of the source, where it
// is, and what became of it.
type Entry struct {
	File string
	Line int
	// EndLine is the last line of a block the entry covers (0: one line).
	EndLine   int
	Directive string
	Status    Status
	Note      string
}

func (e Entry) String() string {
	where := e.File
	if e.Line > 0 {
		where += ":" + strconv.Itoa(e.Line)
	}
	if e.EndLine > e.Line {
		where += "-" + strconv.Itoa(e.EndLine)
	}
	s := fmt.Sprintf("%s: %s: %s", where, e.Status, e.Directive)
	if e.Note != "" {
		s += ": " + e.Note
	}
	return s
}

// Result is an import: the validated config, its YAML and the report.
type Result struct {
	Format string
	Source string
	// Config is the imported config as config.Parse read it back from
	// YAML: defaults applied, validated.
	Config *config.Config
	YAML   []byte
	Report []Entry
	// Files are every file the import read, Source first, and Globs
	// keepalived's include patterns.
	Files, Globs []string
}

// Partial reports whether anything changed meaning or was left out.
func (r *Result) Partial() bool {
	for _, e := range r.Report {
		if e.Status == Changed || e.Status == Unsupported {
			return true
		}
	}
	return false
}

// Counts tallies the report by status.
func (r *Result) Counts() map[Status]int {
	m := map[Status]int{}
	for _, e := range r.Report {
		m[e.Status]++
	}
	return m
}

// Summary is the report's last line.
func (r *Result) Summary() string {
	c := r.Counts()
	verdict := "faithful: every directive mapped or ignored"
	if r.Partial() {
		verdict = "partial: read the changed and unsupported lines before switching"
	}
	return fmt.Sprintf("%d mapped, %d changed, %d unsupported, %d ignored: %s",
		c[Mapped], c[Changed], c[Unsupported], c[Ignored], verdict)
}

// Error is a source file that cannot be imported, with its place.
type Error struct {
	File string
	Line int
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return e.File + ": " + e.Msg
}

// Options tune an import.
type Options struct {
	// ConfigID is keepalived's -i: lines starting "@id" are read only
	// when id matches, "@^id" only when it does not. Empty: the host
	// name up to its first dot, as keepalived's default.
	ConfigID string
}

// Limits against hostile or broken input: an import never hangs or
// takes unbounded memory.
const (
	// MaxFileSize bounds one source file; real configs are kilobytes.
	MaxFileSize = 4 << 20
	// MaxTotalSize bounds all files an import reads, includes together.
	MaxTotalSize = 16 << 20
	// MaxIncludes bounds the files keepalived's include may add.
	MaxIncludes = 256
	// MaxIncludeDepth bounds includes within includes.
	MaxIncludeDepth = 16
	// MaxDepth bounds the nesting of keepalived's blocks.
	MaxDepth = 32
	// MaxServices bounds the virtual services an import makes (groups
	// and address ranges expand).
	MaxServices = 4096
	// MaxRange bounds one address range (192.168.0.3-10, a->b).
	MaxRange = 256
)

// Import reads the file at path in the given format.
func Import(format, path string, opts Options) (*Result, error) {
	switch format {
	case FormatLdirectord:
		b, err := osSource{}.read(path, 0)
		if err != nil {
			return nil, err
		}
		return Ldirectord(path, b)
	case FormatKeepalived:
		return Keepalived(path, opts)
	case FormatPiranha:
		b, err := osSource{}.read(path, 0)
		if err != nil {
			return nil, err
		}
		return Piranha(path, b)
	}
	return nil, fmt.Errorf("unknown format %q (want %s)", format, strings.Join(Formats(), " or "))
}

// source reads files and expands globs; tests and the fuzzers give a map.
type source interface {
	read(path string, budget int64) ([]byte, error)
	glob(pattern string) ([]string, error)
}

// osSource is the file system.
type osSource struct{}

func (osSource) read(path string, used int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, &Error{File: path, Msg: "not a regular file"}
	}
	if fi.Size() > MaxFileSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("%d bytes is too large for a config (at most %d)", fi.Size(), MaxFileSize)}
	}
	if used+fi.Size() > MaxTotalSize {
		return nil, &Error{File: path, Msg: fmt.Sprintf("the files read add up to more than %d bytes", MaxTotalSize)}
	}
	b := make([]byte, fi.Size()+1)
	n, err := f.Read(b)
	if err != nil && n == 0 && fi.Size() > 0 {
		return nil, err
	}
	if n > int(fi.Size()) {
		return nil, &Error{File: path, Msg: "the file grows while it is read"}
	}
	return b[:n], nil
}

// glob expands a pattern as keepalived's include does (no braces: Go's
// filepath.Match has none), sorted.
func (osSource) glob(pattern string) ([]string, error) {
	m, err := filepath.Glob(pattern)
	if err != nil {
		return nil, err
	}
	slices.Sort(m)
	return m, nil
}

// checkText refuses binary input: a NUL byte or invalid UTF-8 is not a
// config, and saying so beats a report of a thousand unknown directives.
func checkText(file string, b []byte) error {
	if len(b) > MaxFileSize {
		return &Error{File: file, Msg: fmt.Sprintf("%d bytes is too large for a config (at most %d)", len(b), MaxFileSize)}
	}
	if i := bytes.IndexByte(b, 0); i >= 0 {
		return &Error{File: file, Line: bytes.Count(b[:i], []byte{'\n'}) + 1, Msg: "a NUL byte: this is not a text file"}
	}
	for i, line := range bytes.Split(b, []byte{'\n'}) {
		if !utf8.Valid(line) {
			return &Error{File: file, Line: i + 1, Msg: "not UTF-8 text"}
		}
	}
	return nil
}

// finish encodes cfg, validates it with config.Parse and builds the
// result. spans[i] names the source lines of service i, for the comment
// above it and for an error.
func finish(format, source string, cfg *config.Config, spans []string, rep *reporter) (*Result, error) {
	y, err := encodeConfig(cfg, format, source, spans)
	if err != nil {
		return nil, fmt.Errorf("encode the imported config: %w", err)
	}
	parsed, err := config.Parse(source+" (imported)", y)
	if err != nil {
		var errs config.Errors
		if errors.As(err, &errs) {
			var msgs []string
			for _, p := range errs {
				msgs = append(msgs, blame(p, y, spans)+p.Msg)
			}
			return nil, fmt.Errorf("the imported config does not validate (an importer bug; please report it with the source): %s", strings.Join(msgs, "; "))
		}
		return nil, fmt.Errorf("the imported config does not validate (an importer bug): %w", err)
	}
	entries := rep.sorted()
	return &Result{Format: format, Source: source, Config: parsed, YAML: y, Report: entries, Files: []string{source}}, nil
}

// blame names the source of a problem in the generated YAML: the
// service whose comment precedes its line.
func blame(p config.Problem, y []byte, spans []string) string {
	field := p.Field
	if field != "" {
		field += ": "
	}
	if p.Line <= 0 {
		return field
	}
	lines := strings.Split(string(y), "\n")
	for i := min(p.Line, len(lines)) - 1; i >= 0; i-- {
		if _, from, ok := strings.Cut(lines[i], "# from "); ok {
			return "from " + strings.TrimSpace(from) + ": " + field
		}
	}
	return field
}

// parseIP reads an address as lvsmon's config accepts it: no zone, not
// unspecified, not multicast; an IPv4-mapped IPv6 address is IPv4.
func parseIP(s string) (netip.Addr, error) {
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return netip.Addr{}, err
	case a.Zone() != "":
		return netip.Addr{}, fmt.Errorf("%q has a zone", s)
	case a.IsUnspecified() || a.IsMulticast():
		return netip.Addr{}, fmt.Errorf("%s cannot be a service or server address", a)
	}
	return a.Unmap(), nil
}

// reporter collects the report's entries.
type reporter struct {
	rules   map[string]Rule
	entries []Entry
	files   []string // in order of first reading, for sorting
	// has and lines index the entries, so that asking whether one was
	// made stays cheap on a config of thousands of services.
	has   map[Entry]bool
	lines map[fileLine]bool
}

type fileLine struct {
	file string
	line int
}

func newReporter(rules []Rule) *reporter {
	m := make(map[string]Rule, len(rules))
	for _, r := range rules {
		m[r.Directive] = r
	}
	return &reporter{rules: m, has: map[Entry]bool{}, lines: map[fileLine]bool{}}
}

// add records an entry as given.
func (r *reporter) add(e Entry) {
	if !slices.Contains(r.files, e.File) {
		r.files = append(r.files, e.File)
	}
	r.entries = append(r.entries, e)
	r.has[e] = true
	r.lines[fileLine{e.File, e.Line}] = true
}

// rule records an entry for a directive of the table, with its status
// and note; detail, when not empty, is added to the note.
func (r *reporter) rule(key, file string, line, end int, detail string) {
	ru, ok := r.rules[key]
	if !ok {
		panic("importer: no rule for " + key)
	}
	r.ruleAs(key, ru.Status, file, line, end, detail)
}

// ruleAs is rule with another status than the table's usual one (an
// unusual value of the directive).
func (r *reporter) ruleAs(key string, st Status, file string, line, end int, detail string) {
	ru := r.rules[key]
	note := ru.Note
	if ru.Maps != "" && st != Unsupported && st != Ignored {
		note = "→ " + ru.Maps + ". " + note
	}
	switch {
	case detail != "" && st != ru.Status:
		// An unusual case: the detail says it all.
		note = detail
	case detail != "":
		note = detail + " " + note
	}
	r.add(Entry{File: file, Line: line, EndLine: end, Directive: directiveName(key), Status: st, Note: strings.TrimSpace(note)})
}

// directiveName is the directive as the source writes it: table keys
// qualify some with their block ("url.path").
func directiveName(key string) string {
	if _, after, ok := strings.Cut(key, "."); ok {
		return after
	}
	return key
}

// sorted returns the entries in file order, then line order.
func (r *reporter) sorted() []Entry {
	out := slices.Clone(r.entries)
	slices.SortStableFunc(out, func(a, b Entry) int {
		fa, fb := slices.Index(r.files, a.File), slices.Index(r.files, b.File)
		if fa != fb {
			return fa - fb
		}
		return a.Line - b.Line
	})
	return out
}

// fixCheck drops the values of a check that lvsmon's validation would
// refuse (a path that is no request path, a Host header with blanks, ...)
// and says what it dropped: an import never fails for one odd value.
func fixCheck(c *config.Check) []string {
	var notes []string
	if c.Path != "" {
		if _, err := url.ParseRequestURI(c.Path); err != nil || !strings.HasPrefix(c.Path, "/") {
			notes = append(notes, fmt.Sprintf("path %q is not a request path: / instead", c.Path))
			c.Path = "/"
		}
	}
	if c.Host != "" && strings.ContainsAny(c.Host, " \t\r\n/@?#") {
		notes = append(notes, fmt.Sprintf("host %q is not a Host header: left out", c.Host))
		c.Host = ""
	}
	if c.SNI != "" {
		if _, err := netip.ParseAddr(c.SNI); err == nil || strings.ContainsAny(c.SNI, " \t\r\n/:@") {
			notes = append(notes, fmt.Sprintf("sni %q is not a host name: left out", c.SNI))
			c.SNI = ""
		}
	}
	if c.Expect != "" && c.Type != "dns" {
		if _, err := regexp.Compile(c.Expect); err != nil {
			notes = append(notes, fmt.Sprintf("expect %q is not a Go regular expression: left out", c.Expect))
			c.Expect = ""
		}
	}
	if c.Send != "" {
		if b, err := config.ParsePayload(c.Send); err != nil || len(b) > config.MaxUDPPayload {
			notes = append(notes, fmt.Sprintf("send %q is not a payload lvsmon can send: left out", c.Send))
			c.Send = ""
		}
	}
	if c.Status != "" {
		if _, err := config.ParseStatus(c.Status); err != nil {
			notes = append(notes, fmt.Sprintf("status %q: 200-299 instead", c.Status))
			c.Status = ""
		}
	}
	if c.EHLO != "" && strings.ContainsAny(c.EHLO, " \t\r\n") {
		notes = append(notes, fmt.Sprintf("ehlo %q is not a host name: left out", c.EHLO))
		c.EHLO = ""
	}
	if c.Query != "" && (len(c.Query) > config.MaxQuery || strings.ContainsRune(c.Query, 0)) {
		notes = append(notes, fmt.Sprintf("query of %d bytes is not one lvsmon can send: %s instead", len(c.Query), config.DefaultQuery))
		c.Query = config.DefaultQuery
	}
	if c.Type == "dns" && !domainName(c.QueryName) {
		notes = append(notes, fmt.Sprintf("%q is not a domain name: the check asks for the root", c.QueryName))
		c.QueryName = "."
	}
	if c.Type == "dns" && c.Expect != "" {
		qt := cmpOr(c.QueryType, "A")
		a, err := netip.ParseAddr(c.Expect)
		if (qt == "A" || qt == "AAAA") && (err != nil || (qt == "A") != a.Is4()) {
			notes = append(notes, fmt.Sprintf("expect %q does not fit a %s answer: left out", c.Expect, qt))
			c.Expect = ""
		}
	}
	return notes
}

// domainName is what lvsmon's dns check can ask for: the root, or labels
// of 1-63 bytes without blanks, 253 in all.
func domainName(s string) bool {
	if s == "." {
		return true
	}
	name := strings.TrimSuffix(s, ".")
	if name == "" || len(name) > 253 {
		return false
	}
	for _, l := range strings.Split(name, ".") {
		if l == "" || len(l) > 63 || strings.ContainsAny(l, " \t\r\n\f\v") || !utf8.ValidString(l) {
			return false
		}
	}
	return true
}
