package config

import (
	"fmt"

	"go.yaml.in/yaml/v3"
)

// Alias and merge-key expansion bounds. A YAML alias (*name) stands for
// the whole node its anchor (&name) marks, and a merge key (<<: *name)
// copies a mapping's keys: each is cheap to write and expands where it is
// used, so a few hundred bytes of anchors that each use the previous one
// twice stand for billions of nodes. Everything that reads the document
// (the line-number walk, the decoder) works on the expanded document, so
// before anything reads it, the expansion is counted, in time linear in
// the written document, and a document that would expand beyond these
// bounds is refused with the line of the alias that crosses them.
//
// A real config uses anchors for shared check blocks or real-server
// lists: the expansion is a small multiple of what is written. The bounds
// allow a generous multiple and refuse only what is clearly a bomb; the
// fixed part is the YAML decoder's own (400,000 alias-driven nodes, about
// 100 MB in the worst case), which it enforces only while decoding, that
// is after the walk.
const (
	// maxAliasNodes and maxAliasNodesPerNode bound the nodes that aliases
	// add: maxAliasNodes plus maxAliasNodesPerNode per node written.
	maxAliasNodes        = 400_000
	maxAliasNodesPerNode = 20
)

// expansion counts the nodes of a document with its aliases expanded.
type expansion struct {
	file  string
	limit int
	// size is the expanded size of each anchored node an alias points at,
	// saturated at limit+1; sizing marks the nodes being sized, so that an
	// alias inside its own anchor's node is found instead of followed
	// forever.
	size   map[*yaml.Node]int
	sizing map[*yaml.Node]bool
	// steps counts the nodes visited: each written node once, each
	// anchored node once more when it is first sized.
	steps int
	err   *Problem
}

// checkExpansion refuses a document whose aliases and merge keys would
// expand it beyond the bounds above, or refer to the node they are in.
// It returns nil when the document is fine, and the nodes it visited.
func checkExpansion(file string, root *yaml.Node) (*Problem, int) {
	written := countNodes(root)
	x := &expansion{
		file:   file,
		limit:  written + maxAliasNodes + maxAliasNodesPerNode*written,
		size:   map[*yaml.Node]int{},
		sizing: map[*yaml.Node]bool{},
		steps:  written,
	}
	total := 0
	x.walkWritten(root, &total)
	return x.err, x.steps
}

// countNodes counts the written nodes (aliases not followed).
func countNodes(n *yaml.Node) int {
	c := 1
	for _, ch := range n.Content {
		c += countNodes(ch)
	}
	return c
}

// walkWritten adds up the expanded size of the written tree, each alias
// counting for what it stands for, and stops at the first alias that
// takes the total past the limit.
func (x *expansion) walkWritten(n *yaml.Node, total *int) {
	if x.err != nil {
		return
	}
	if n.Kind == yaml.AliasNode {
		s := x.sizeOf(n)
		if x.err != nil {
			return
		}
		*total += s
		if *total > x.limit {
			x.tooLarge(n)
		}
		return
	}
	*total++
	for _, ch := range n.Content {
		x.walkWritten(ch, total)
	}
}

// sizeOf is the expanded size of the node alias a stands for. An anchor
// is defined before its aliases, and walkWritten meets the aliases inside
// its node before any alias of it, so those are sized already: the
// recursion goes as deep as the document's nesting, not its aliases'.
func (x *expansion) sizeOf(a *yaml.Node) int {
	t := a.Alias
	if t == nil {
		return 1
	}
	if s, ok := x.size[t]; ok {
		return s
	}
	if x.sizing[t] {
		x.fail(a, fmt.Sprintf("alias *%s is inside the node its anchor &%s (line %d) marks: its value would be infinite", a.Value, t.Anchor, t.Line))
		return x.limit + 1
	}
	x.sizing[t] = true
	s := x.expanded(t)
	delete(x.sizing, t)
	x.size[t] = s
	return s
}

// expanded is the size of n with its aliases expanded, saturated at
// limit+1.
func (x *expansion) expanded(n *yaml.Node) int {
	x.steps++
	if n.Kind == yaml.AliasNode {
		return x.sizeOf(n)
	}
	s := 1
	for _, ch := range n.Content {
		if x.err != nil {
			return x.limit + 1
		}
		s += x.expanded(ch)
		if s > x.limit {
			return x.limit + 1
		}
	}
	return s
}

func (x *expansion) tooLarge(a *yaml.Node) {
	what := "alias"
	if a.Alias != nil && a.Alias.Line > 0 {
		what = fmt.Sprintf("alias *%s (anchor &%s at line %d)", a.Value, a.Alias.Anchor, a.Alias.Line)
	}
	x.fail(a, fmt.Sprintf("%s makes the document too large: with its aliases and merge keys expanded it holds more than %d nodes (an alias or merge-key bomb?); lvsmon accepts at most %d plus %d per node written",
		what, x.limit, maxAliasNodes, maxAliasNodesPerNode))
}

func (x *expansion) fail(at *yaml.Node, msg string) {
	if x.err == nil {
		x.err = &Problem{File: x.file, Line: at.Line, Msg: msg}
	}
}
