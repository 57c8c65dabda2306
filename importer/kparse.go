package importer

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// kNode is one keepalived statement: a keyword with its arguments and,
// for a block, the statements inside its braces.
type kNode struct {
	Key  string
	Args []string
	File string
	Line int
	// End is the line of the closing brace of a block.
	End   int
	Block bool
	Kids  []*kNode
}

// kParser reads keepalived.conf as keepalived's own reader does: a
// stream of lines where ! and # start comments outside double quotes,
// a trailing backslash continues a line, braces open and close blocks
// wherever they stand, include reads other files in place (a glob,
// relative to the including file), "@id" lines count only for that
// keepalived -i id, and $NAME=value defines a parameter.
type kParser struct {
	src      source
	configID string
	root     kNode
	stack    []*kNode
	// pending is a statement of the line before, which a "{" alone on
	// the next line opens.
	pending  *kNode
	includes int
	chain    []string // the files being read, outermost first
	read     int64
	vars     map[string]string
	rep      *reporter
	// files are every file read, in order, and globs the include
	// patterns expanded (a reload looks at them again).
	files, globs []string
}

func parseKeepalived(path string, data []byte, src source, configID string, rep *reporter) (*kParser, error) {
	p := &kParser{src: src, configID: configID, vars: map[string]string{}, rep: rep}
	p.root.Block = true
	p.stack = []*kNode{&p.root}
	if err := p.file(path, data); err != nil {
		return nil, err
	}
	if len(p.stack) > 1 {
		open := p.stack[len(p.stack)-1]
		return nil, &Error{File: open.File, Line: open.Line, Msg: fmt.Sprintf("unbalanced braces: the block of %s opened here is never closed", open.Key)}
	}
	return p, nil
}

func (p *kParser) file(path string, data []byte) error {
	if err := checkText(path, data); err != nil {
		return err
	}
	p.files = append(p.files, path)
	p.read += int64(len(data))
	if p.read > MaxTotalSize {
		return &Error{File: path, Msg: fmt.Sprintf("the files read add up to more than %d bytes", MaxTotalSize)}
	}
	p.chain = append(p.chain, path)
	defer func() { p.chain = p.chain[:len(p.chain)-1] }()
	lines := strings.Split(string(data), "\n")
	for i := 0; i < len(lines); i++ {
		no := i + 1
		line := strings.TrimRight(lines[i], "\r")
		// A trailing backslash (outside a comment) joins the next line.
		for {
			body := decomment(line)
			if !strings.HasSuffix(body, `\`) || i+1 >= len(lines) {
				line = body
				break
			}
			i++
			line = strings.TrimSuffix(body, `\`) + " " + strings.TrimRight(lines[i], "\r")
		}
		if err := p.line(path, no, i+1, line); err != nil {
			return err
		}
	}
	return nil
}

// decomment cuts a line at the first ! or # outside double quotes and
// trims it; \! and \# stand for the characters themselves.
func decomment(s string) string {
	s = strings.TrimLeft(s, " \t")
	quote := false
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			quote = !quote
		case c == '\\' && !quote && i+1 < len(s) && (s[i+1] == '#' || s[i+1] == '!'):
			i++
			c = s[i]
		case !quote && (c == '!' || c == '#'):
			return strings.TrimRight(b.String(), " \t")
		}
		b.WriteByte(c)
	}
	return strings.TrimRight(b.String(), " \t")
}

func (p *kParser) line(file string, no, last int, line string) error {
	if line == "" {
		return nil
	}
	end := 0
	if last > no {
		end = last
	}
	if line[0] == '@' {
		id, rest := line[1:], ""
		if k := strings.IndexAny(id, " \t"); k >= 0 {
			id, rest = id[:k], strings.TrimLeft(id[k:], " \t")
		}
		negated := strings.HasPrefix(id, "^")
		match := strings.TrimPrefix(id, "^") == p.configID
		if match == negated || rest == "" {
			p.rep.rule("@id", file, no, end, fmt.Sprintf("@%s (imported for -i %q):", id, p.configID))
			return nil
		}
		line = rest
	}
	if line[0] == '$' {
		if name, val, ok := strings.Cut(line[1:], "="); ok && isParamName(strings.TrimSpace(name)) {
			p.vars[strings.TrimSpace(name)] = strings.TrimSpace(val)
			p.rep.rule("$NAME=value", file, no, end, "")
			return nil
		}
	}
	if strings.HasPrefix(line, "~SEQ") || strings.HasPrefix(line, "~LST") {
		return &Error{File: file, Line: no, Msg: "~SEQ and ~LST are not supported by the importer: expand the lines by hand"}
	}
	line = p.substitute(line)
	toks, err := tokenize(line)
	if err != nil {
		return &Error{File: file, Line: no, Msg: err.Error()}
	}
	if len(toks) >= 1 && toks[0] == "include" {
		if len(toks) != 2 {
			return &Error{File: file, Line: no, Msg: "include takes one file name or glob"}
		}
		p.pending = nil
		return p.include(file, no, toks[1])
	}
	var cur *kNode // the statement this line started, for a brace after it
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		top := p.stack[len(p.stack)-1]
		switch t {
		case "{":
			target := cur
			if target == nil {
				target = p.pending
			}
			if target == nil || target.Block {
				return &Error{File: file, Line: no, Msg: "a { that opens no block (no keyword before it)"}
			}
			if len(p.stack) > MaxDepth {
				return &Error{File: file, Line: no, Msg: fmt.Sprintf("blocks nested deeper than %d", MaxDepth)}
			}
			target.Block = true
			p.stack = append(p.stack, target)
			cur, p.pending = nil, nil
		case "}":
			if len(p.stack) == 1 {
				return &Error{File: file, Line: no, Msg: "unbalanced braces: a } that closes no block"}
			}
			top.End = max(no, last)
			p.stack = p.stack[:len(p.stack)-1]
			cur, p.pending = nil, nil
		default:
			n := &kNode{Key: t, File: file, Line: no, End: end}
			for i+1 < len(toks) && toks[i+1] != "{" && toks[i+1] != "}" {
				i++
				n.Args = append(n.Args, toks[i])
			}
			top.Kids = append(top.Kids, n)
			cur = n
		}
	}
	p.pending = cur
	return nil
}

func isParamName(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// substitute replaces $NAME and ${NAME} of the parameters defined so far.
func (p *kParser) substitute(s string) string {
	if len(p.vars) == 0 || !strings.Contains(s, "$") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '$' {
			b.WriteByte(s[i])
			continue
		}
		j, name := i+1, ""
		if j < len(s) && s[j] == '{' {
			k := strings.IndexByte(s[j:], '}')
			if k > 0 {
				name = s[j+1 : j+k]
				j += k + 1
			}
		} else {
			for j < len(s) && isParamName(s[j:j+1]) {
				j++
			}
			name = s[i+1 : j]
		}
		if v, ok := p.vars[name]; ok && name != "" && b.Len()+len(v) <= MaxFileSize {
			b.WriteString(v)
			i = j - 1
			continue
		}
		b.WriteByte('$')
	}
	return b.String()
}

// tokenize splits a decommented line into words, double-quoted strings
// (one word, without the quotes) and braces.
func tokenize(s string) ([]string, error) {
	var out []string
	for i := 0; i < len(s); {
		switch c := s[i]; {
		case c == ' ' || c == '\t':
			i++
		case c == '{' || c == '}':
			out = append(out, string(c))
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, errors.New("an unterminated quote")
			}
			out = append(out, s[i+1:i+1+j])
			i += j + 2
		default:
			j := i
			for j < len(s) && !strings.ContainsRune(" \t{}\"", rune(s[j])) {
				j++
			}
			out = append(out, s[i:j])
			i = j
		}
	}
	return out, nil
}

func (p *kParser) include(file string, no int, pattern string) error {
	if !filepath.IsAbs(pattern) {
		pattern = filepath.Join(filepath.Dir(file), pattern)
	}
	if len(p.chain) >= MaxIncludeDepth {
		return &Error{File: file, Line: no, Msg: fmt.Sprintf("includes nested deeper than %d", MaxIncludeDepth)}
	}
	p.globs = append(p.globs, pattern)
	matches, err := p.src.glob(pattern)
	if err != nil {
		return &Error{File: file, Line: no, Msg: fmt.Sprintf("include %s: %v", pattern, err)}
	}
	if len(matches) == 0 {
		p.rep.ruleAs("include", Ignored, file, no, 0, fmt.Sprintf("%s matches no file; keepalived skips it too.", pattern))
		return nil
	}
	p.rep.rule("include", file, no, 0, pattern+":")
	for _, m := range matches {
		for _, c := range p.chain {
			if sameFile(c, m) {
				return &Error{File: file, Line: no, Msg: fmt.Sprintf("include loop: %s includes %s, which is being read", strings.Join(p.chain, " includes "), m)}
			}
		}
		p.includes++
		if p.includes > MaxIncludes {
			return &Error{File: file, Line: no, Msg: fmt.Sprintf("more than %d included files", MaxIncludes)}
		}
		b, err := p.src.read(m, p.read)
		if err != nil {
			var ie *Error
			if errors.As(err, &ie) {
				return err
			}
			return &Error{File: file, Line: no, Msg: fmt.Sprintf("include %s: %v", m, err)}
		}
		if err := p.file(m, b); err != nil {
			return err
		}
	}
	return nil
}

// sameFile compares paths, and the files behind them when both exist
// (a loop through a symbolic link or another spelling).
func sameFile(a, b string) bool {
	if filepath.Clean(a) == filepath.Clean(b) {
		return true
	}
	fa, errA := os.Stat(a)
	fb, errB := os.Stat(b)
	return errA == nil && errB == nil && os.SameFile(fa, fb)
}
