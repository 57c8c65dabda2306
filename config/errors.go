package config

import (
	"fmt"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"
)

// Problem is one error or warning about a config file, located by file,
// line and the dotted path of the field (virtual_services[0].port).
type Problem struct {
	File  string
	Line  int // 0 when unknown (a missing field of an absent section)
	Field string
	Msg   string
}

func (p Problem) String() string {
	var b strings.Builder
	b.WriteString(p.File)
	if p.Line > 0 {
		b.WriteString(":" + strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Field != "" {
		b.WriteString(p.Field + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

// Errors is every problem that makes a config invalid, in file order. It
// is returned whole, so an operator fixes a file in one round rather than
// one error per attempt.
type Errors []Problem

func (e Errors) Error() string {
	lines := make([]string, len(e))
	for i, p := range e {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// positions maps field paths to the line they are written on, so that
// validation, which works on decoded values, can still point at the file.
type positions map[string]int

// line returns the line of path, or of its nearest written parent, so an
// error about a missing field points at the block that lacks it.
func (p positions) line(path string) int {
	for path != "" {
		if l, ok := p[path]; ok {
			return l
		}
		i := strings.LastIndexAny(path, ".[")
		if i < 0 {
			break
		}
		path = path[:i]
	}
	return 0
}

var unmarshalerType = reflect.TypeFor[yaml.Unmarshaler]()

// walk records the line of every field under n and reports every mapping
// key that the target type t does not have. yaml's own KnownFields would
// stop at the first unknown key and cannot name the path; this reports all
// of them, each with its line. It follows aliases and merge keys, so it
// runs only on documents whose expansion checkExpansion has bounded.
func walk(n *yaml.Node, t reflect.Type, path string, pos positions, file string, errs *Errors) {
	if n.Kind == yaml.DocumentNode {
		for _, c := range n.Content {
			walk(c, t, path, pos, file, errs)
		}
		return
	}
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if path != "" {
		if _, ok := pos[path]; !ok {
			pos[path] = n.Line
		}
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		// The type reads itself; a list's items still get their lines.
		if n.Kind == yaml.SequenceNode {
			for i, c := range n.Content {
				sub := path + "[" + strconv.Itoa(i) + "]"
				if _, ok := pos[sub]; !ok {
					pos[sub] = c.Line
				}
			}
		}
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			return // the decoder reports the type mismatch
		}
		fs := yamlFields(t)
		// Keys written here first, then merged ones: a key written in the
		// mapping wins over a merged one, in the decoder and for its line.
		var merges []*yaml.Node
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			if isMergeKey(k) {
				merges = append(merges, v)
				continue
			}
			sub := k.Value
			if path != "" {
				sub = path + "." + k.Value
			}
			ft, ok := fs.types[k.Value]
			if !ok {
				*errs = append(*errs, Problem{File: file, Line: k.Line, Field: sub, Msg: fmt.Sprintf("unknown key %q%s", k.Value, suggest(k.Value, fs.names))})
				continue
			}
			if _, ok := pos[sub]; !ok {
				pos[sub] = k.Line
			}
			walk(v, ft, sub, pos, file, errs)
		}
		// A merge key's fields belong here: one mapping (or an alias of
		// one), or a list of them.
		for _, v := range merges {
			if v.Kind == yaml.AliasNode && v.Alias != nil {
				v = v.Alias
			}
			if v.Kind == yaml.SequenceNode {
				for _, m := range v.Content {
					walk(m, t, path, pos, file, errs)
				}
				continue
			}
			walk(v, t, path, pos, file, errs)
		}
	case reflect.Map:
		// Free-form keys (an external check's env): their lines, for
		// validation's messages.
		if n.Kind != yaml.MappingNode {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			sub := path + "." + k.Value
			if _, ok := pos[sub]; !ok {
				pos[sub] = k.Line
			}
			walk(n.Content[i+1], t.Elem(), sub, pos, file, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			return
		}
		for i, c := range n.Content {
			walk(c, t.Elem(), path+"["+strconv.Itoa(i)+"]", pos, file, errs)
		}
	}
}

// isMergeKey reports whether k is YAML's merge key (<<, unquoted).
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && k.ShortTag() == "!!merge"
}

// fieldSet is the YAML keys of a struct type, with their types and in
// sorted order (for suggestions).
type fieldSet struct {
	types map[string]reflect.Type
	names []string
}

var fieldSets sync.Map // reflect.Type → *fieldSet

func yamlFields(t reflect.Type) *fieldSet {
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(*fieldSet)
	}
	fs := &fieldSet{types: map[string]reflect.Type{}}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" || !f.IsExported() {
			continue
		}
		if strings.Contains(f.Tag.Get("yaml"), ",inline") && f.Type.Kind() == reflect.Struct {
			// An inlined struct's keys are the outer mapping's.
			in := yamlFields(f.Type)
			for _, n := range in.names {
				fs.types[n] = in.types[n]
				fs.names = append(fs.names, n)
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		fs.types[name] = f.Type
		fs.names = append(fs.names, name)
	}
	sort.Strings(fs.names)
	fieldSets.Store(t, fs)
	return fs
}

// suggest names the closest known key, for typos like "real_server".
func suggest(k string, names []string) string {
	best, bestD := "", 3
	for _, n := range names {
		if d := editDistance(k, n); d < bestD {
			best, bestD = n, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			c := 1
			if a[i-1] == b[j-1] {
				c = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+c)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var yamlLineRe = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// yamlProblems turns a yaml error (syntax or type) into problems with
// their line numbers.
func yamlProblems(file string, err error) Errors {
	var msgs []string
	if te, ok := err.(*yaml.TypeError); ok {
		msgs = te.Errors
	} else {
		msgs = []string{err.Error()}
	}
	var out Errors
	for _, m := range msgs {
		p := Problem{File: file, Msg: strings.TrimPrefix(m, "yaml: ")}
		if sm := yamlLineRe.FindStringSubmatch(m); sm != nil {
			p.Line, _ = strconv.Atoi(sm[1])
			p.Msg = sm[2]
		}
		out = append(out, p)
	}
	return out
}
