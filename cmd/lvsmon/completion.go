package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
)

// command is one subcommand as completion and the man page's test see
// it: its flags come from the command's own flag set (flagsOf), so the
// completions follow every flag added to a command.
type command struct {
	name, help string
	// run is the command's function; nil for those without flags.
	run func(ctx context.Context, args []string, stdout, stderr io.Writer) error
	// args is what the command takes besides flags: "file", a list of
	// words, or "" for nothing.
	args []string
}

// commands are the subcommands completion offers, in usage's order.
func commands() []command {
	withCtx := func(f func(args []string, stdout, stderr io.Writer) error) func(context.Context, []string, io.Writer, io.Writer) error {
		return func(_ context.Context, args []string, stdout, stderr io.Writer) error { return f(args, stdout, stderr) }
	}
	return []command{
		{name: "run", help: "run the daemon", run: cmdRun},
		{name: "demo", help: "run a simulated director", run: cmdDemo},
		{name: "check-config", help: "validate a config file", run: withCtx(cmdCheckConfig), args: []string{"file"}},
		{name: "test-alert", help: "send a test mail", run: cmdTestAlert},
		{name: "hash-password", help: "print a bcrypt hash for the web config's users", run: func(_ context.Context, args []string, stdout, stderr io.Writer) error {
			return cmdHashPassword(os.Stdin, args, stdout, stderr)
		}},
		{name: "healthcheck", help: "ask a running lvsmon whether it is healthy", run: cmdHealthcheck},
		{name: "self-check", help: "exit 1 while the director's self checks hand over", run: withCtx(cmdSelfCheck)},
		{name: "import", help: "print another tool's config as lvsmon's, with a report", run: withCtx(cmdImport), args: []string{"ldirectord", "keepalived"}},
		// ctl's flags belong to its subcommands: completion offers those.
		{name: "ctl", help: "talk to the running daemon", args: []string{"status", "drain", "disable", "enable", "reload", "events", "pair"}},
		{name: "completion", help: "print a shell completion script", run: withCtx(cmdCompletion), args: shells},
		{name: "version", help: "print the version and build"},
		{name: "help", help: "print the usage"},
	}
}

// flagsOnly is an argument no command line can hold (argv has no NUL):
// parseFlags answers it with the flag set instead of parsing.
const flagsOnly = "\x00flags"

// flagSetError carries a command's flag set out of its function.
type flagSetError struct{ fs *flag.FlagSet }

func (e *flagSetError) Error() string { return "the flags of " + e.fs.Name() }

// flagsOf returns the flags cmd's function defines, each spelling once,
// sorted by name.
func flagsOf(c command) []*flag.Flag {
	if c.run == nil {
		return nil
	}
	err := c.run(context.Background(), []string{flagsOnly}, io.Discard, io.Discard)
	var fe *flagSetError
	if !errors.As(err, &fe) {
		panic(fmt.Sprintf("lvsmon %s does not parse its flags with parseFlags: %v", c.name, err))
	}
	var out []*flag.Flag
	fe.fs.VisitAll(func(f *flag.Flag) { out = append(out, f) })
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// isBool: the flag takes no value.
func isBool(f *flag.Flag) bool {
	b, ok := f.Value.(interface{ IsBoolFlag() bool })
	return ok && b.IsBoolFlag()
}

// valueKind is what a flag's value completes to: "file", "directory" or
// "" (free text), from the name its usage gives the value.
func valueKind(f *flag.Flag) string {
	name, _ := flag.UnquoteUsage(f)
	switch name {
	case "file", "directory":
		return name
	}
	return ""
}

// flagHelp is a flag's usage as one short line.
func flagHelp(f *flag.Flag) string {
	_, help := flag.UnquoteUsage(f)
	help, _, _ = strings.Cut(help, ";")
	help, _, _ = strings.Cut(help, " (")
	return strings.TrimSpace(help)
}

var shells = []string{"bash", "zsh", "fish"}

// cmdCompletion prints the completion script of a shell.
func cmdCompletion(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("completion", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lvsmon completion bash|zsh|fish\n\n"+
			"  bash: lvsmon completion bash > /usr/share/bash-completion/completions/lvsmon\n"+
			"  zsh:  lvsmon completion zsh > /usr/share/zsh/vendor-completions/_lvsmon\n"+
			"  fish: lvsmon completion fish > /usr/share/fish/vendor_completions.d/lvsmon.fish")
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cmds := commands()
	switch fs.Arg(0) {
	case "bash":
		writeBash(stdout, cmds)
	case "zsh":
		writeZsh(stdout, cmds)
	case "fish":
		writeFish(stdout, cmds)
	default:
		fmt.Fprintf(stderr, "completion: unknown shell %q (bash, zsh or fish)\n", fs.Arg(0))
		return errUsage
	}
	return nil
}

func writeBash(w io.Writer, cmds []command) {
	var names, valued, files, dirs []string
	for _, c := range cmds {
		names = append(names, c.name)
		for _, f := range flagsOf(c) {
			if isBool(f) {
				continue
			}
			valued = append(valued, "--"+f.Name, "-"+f.Name)
			switch valueKind(f) {
			case "file":
				files = append(files, "--"+f.Name, "-"+f.Name)
			case "directory":
				dirs = append(dirs, "--"+f.Name, "-"+f.Name)
			}
		}
	}
	alt := func(s []string) string {
		if len(s) == 0 {
			return "--no-such-flag-"
		}
		return strings.Join(uniq(s), "|")
	}
	fmt.Fprintf(w, `# bash completion for lvsmon; generated by: lvsmon completion bash
_lvsmon() {
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD-1]}
	COMPREPLY=()
	if ((COMP_CWORD == 1)); then
		COMPREPLY=($(compgen -W '%s' -- "$cur"))
		return
	fi
	case $prev in
	%s) COMPREPLY=($(compgen -f -- "$cur")); return ;;
	%s) COMPREPLY=($(compgen -d -- "$cur")); return ;;
	%s) return ;;
	esac
	local flags= words=
	case ${COMP_WORDS[1]} in
`, strings.Join(names, " "), alt(files), alt(dirs), alt(valued))
	for _, c := range cmds {
		var fl []string
		for _, f := range flagsOf(c) {
			fl = append(fl, "--"+f.Name)
		}
		words := ""
		if len(c.args) > 0 && c.args[0] != "file" {
			words = strings.Join(c.args, " ")
		}
		fmt.Fprintf(w, "\t%s) flags='%s' words='%s' ;;\n", c.name, strings.Join(fl, " "), words)
	}
	fmt.Fprintf(w, `	esac
	if [[ $cur == -* ]]; then
		COMPREPLY=($(compgen -W "$flags" -- "$cur"))
	elif [[ -n $words ]]; then
		COMPREPLY=($(compgen -W "$words" -- "$cur"))
	else
		case ${COMP_WORDS[1]} in
%s		esac
	fi
}
complete -F _lvsmon lvsmon
`, fileArgCases(cmds))
}

// fileArgCases are the bash case arms of commands that take a file.
func fileArgCases(cmds []command) string {
	var b strings.Builder
	for _, c := range cmds {
		if len(c.args) == 1 && c.args[0] == "file" {
			fmt.Fprintf(&b, "\t\t%s) COMPREPLY=($(compgen -f -- \"$cur\")) ;;\n", c.name)
		}
	}
	return b.String()
}

func uniq(s []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, x := range s {
		if !seen[x] {
			seen[x] = true
			out = append(out, x)
		}
	}
	return out
}

// zshQuote escapes a description for _arguments' [...] and _describe.
func zshQuote(s string) string {
	r := strings.NewReplacer("'", "'\\''", "[", "\\[", "]", "\\]", ":", "\\:")
	return r.Replace(s)
}

func writeZsh(w io.Writer, cmds []command) {
	fmt.Fprint(w, "#compdef lvsmon\n# zsh completion for lvsmon; generated by: lvsmon completion zsh\n\n_lvsmon() {\n\tlocal -a cmds\n\tcmds=(\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "\t\t'%s:%s'\n", c.name, zshQuote(c.help))
	}
	fmt.Fprint(w, "\t)\n\tif ((CURRENT == 2)); then\n\t\t_describe 'command' cmds\n\t\treturn\n\tfi\n\tshift words\n\t((CURRENT--))\n\tcase $words[1] in\n")
	for _, c := range cmds {
		fmt.Fprintf(w, "\t%s)\n\t\t_arguments -s", c.name)
		for _, f := range flagsOf(c) {
			help := zshQuote(flagHelp(f))
			switch {
			case isBool(f):
				fmt.Fprintf(w, " \\\n\t\t\t'--%s[%s]'", f.Name, help)
			default:
				action := ""
				switch valueKind(f) {
				case "file":
					action = "_files"
				case "directory":
					action = "_files -/"
				}
				name, _ := flag.UnquoteUsage(f)
				if name == "" {
					name = "value"
				}
				fmt.Fprintf(w, " \\\n\t\t\t'*--%s=[%s]:%s:%s'", f.Name, help, zshQuote(name), action)
			}
		}
		switch {
		case len(c.args) == 1 && c.args[0] == "file":
			fmt.Fprint(w, " \\\n\t\t\t'1:config file:_files'")
		case len(c.args) > 0:
			fmt.Fprintf(w, " \\\n\t\t\t'1:%s:(%s)'", c.name, strings.Join(c.args, " "))
		}
		fmt.Fprint(w, "\n\t\t;;\n")
	}
	fmt.Fprint(w, "\tesac\n}\n\n_lvsmon \"$@\"\n")
}

// fishQuote quotes a string for fish.
func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer, cmds []command) {
	var names []string
	for _, c := range cmds {
		names = append(names, c.name)
	}
	fmt.Fprint(w, "# fish completion for lvsmon; generated by: lvsmon completion fish\ncomplete -c lvsmon -f\n")
	fmt.Fprintf(w, "set -l __lvsmon_commands %s\n", strings.Join(names, " "))
	for _, c := range cmds {
		fmt.Fprintf(w, "complete -c lvsmon -n \"not __fish_seen_subcommand_from $__lvsmon_commands\" -a %s -d %s\n", c.name, fishQuote(c.help))
	}
	for _, c := range cmds {
		cond := fmt.Sprintf("-n '__fish_seen_subcommand_from %s'", c.name)
		for _, f := range flagsOf(c) {
			opt := ""
			if !isBool(f) {
				opt = " -x"
				switch valueKind(f) {
				case "file":
					opt = " -r -F"
				case "directory":
					opt = " -x -a '(__fish_complete_directories)'"
				}
			}
			fmt.Fprintf(w, "complete -c lvsmon %s -l %s%s -d %s\n", cond, f.Name, opt, fishQuote(flagHelp(f)))
		}
		switch {
		case len(c.args) == 1 && c.args[0] == "file":
			fmt.Fprintf(w, "complete -c lvsmon %s -F\n", cond)
		case len(c.args) > 0:
			fmt.Fprintf(w, "complete -c lvsmon %s -a %s\n", cond, fishQuote(strings.Join(c.args, " ")))
		}
	}
}
