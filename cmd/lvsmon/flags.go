package main

import (
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Flags with two spellings: Prometheus' (--config.file, --log.level,
// --web.listen-address), which operators of exporters type by habit, and
// lvsmon's first one (--config, --log-level, --listen), which existing
// unit files and scripts use. Both set one value; the two with different
// values is a usage error rather than a silent choice.

// aliasedString is a string flag with two spellings.
type aliasedString struct {
	names [2]string // the Prometheus spelling, then the old one
	value string
	setBy string // the spelling given last; "" while unset
}

// given is the flag as the command line spelled it, for messages.
func (a *aliasedString) given() string {
	if a.setBy != "" {
		return "--" + a.setBy
	}
	return "--" + a.names[0]
}

// spelling is one name of an aliasedString, as flag.Value.
type spelling struct {
	a    *aliasedString
	name string
}

func (s spelling) String() string {
	if s.a == nil {
		return ""
	}
	return s.a.value
}

func (s spelling) Set(v string) error {
	if a := s.a; a.setBy != "" && a.setBy != s.name && a.value != v {
		return fmt.Errorf("--%s and --%s are one flag, given here as %q and %q: give one", a.names[0], a.names[1], a.value, v)
	}
	s.a.value, s.a.setBy = v, s.name
	return nil
}

// aliasString registers a string flag under both names; usage names the
// value in backquotes, as flag.PrintDefaults shows it.
func aliasString(fs *flag.FlagSet, name, alias, def, usage string) *aliasedString {
	a := &aliasedString{names: [2]string{name, alias}, value: def}
	fs.Var(spelling{a, name}, name, usage)
	fs.Var(spelling{a, alias}, alias, usage)
	return a
}

// listFlag is a repeatable flag with two spellings: each use adds a value
// (the first replaces the default). The other spelling may repeat values
// already given, not add new ones.
type listFlag struct {
	names  [2]string
	values []string
	given  bool
	setBy  string
}

type listSpelling struct {
	l    *listFlag
	name string
}

func (s listSpelling) String() string {
	if s.l == nil {
		return ""
	}
	return strings.Join(s.l.values, ",")
}

func (s listSpelling) Set(v string) error {
	l := s.l
	if l.setBy != "" && l.setBy != s.name {
		if slices.Contains(l.values, v) {
			return nil
		}
		return fmt.Errorf("--%s and --%s are one flag, given here with %q and %q: repeat one of them", l.names[0], l.names[1], strings.Join(l.values, ","), v)
	}
	if !l.given {
		l.values, l.given = nil, true
	}
	l.values, l.setBy = append(l.values, v), s.name
	return nil
}

func aliasList(fs *flag.FlagSet, name, alias string, def []string, usage string) *listFlag {
	l := &listFlag{names: [2]string{name, alias}, values: def}
	fs.Var(listSpelling{l, name}, name, usage)
	fs.Var(listSpelling{l, alias}, alias, usage)
	return l
}

// flagUsage makes fs's -h list each flag once with both its spellings
// (--config.file, --config FILE), in Prometheus' double-dash style.
func flagUsage(fs *flag.FlagSet, w io.Writer, synopsis string) {
	fs.Usage = func() {
		fmt.Fprintf(w, "usage: %s\n\nflags:\n", synopsis)
		fs.VisitAll(func(f *flag.Flag) {
			other := ""
			switch v := f.Value.(type) {
			case spelling:
				if v.name != v.a.names[0] {
					return // listed with its first spelling
				}
				other = v.a.names[1]
			case listSpelling:
				if v.name != v.l.names[0] {
					return
				}
				other = v.l.names[1]
			}
			arg, help := flag.UnquoteUsage(f)
			names := "--" + f.Name
			if arg != "" {
				names += " " + arg
			}
			if other != "" {
				names += ", --" + other
				if arg != "" {
					names += " " + arg
				}
			}
			fmt.Fprintf(w, "  %s\n    \t%s", names, strings.ReplaceAll(help, "\n", "\n    \t"))
			if d := f.DefValue; d != "" && d != "false" && d != "0" {
				if _, ok := f.Value.(interface{ IsBoolFlag() bool }); !ok {
					fmt.Fprintf(w, " (default %s)", d)
				}
			}
			fmt.Fprintln(w)
		})
	}
}
