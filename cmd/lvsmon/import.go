package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// errPartial: the import worked, but something changed meaning or was
// left out (exit 3; the report on stderr says what).
var errPartial = errors.New("partial import")

// cmdImport is lvsmon import: another tool's config as lvsmon YAML on
// stdout (or -o FILE), the report of every directive on stderr. Exit 0:
// faithful; 3: partial (changed meaning or left out); 1: an error.
func cmdImport(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the config to `file` instead of stdout")
	configID := fs.String("config-id", "", "keepalived's -i `id`: which \"@id\" lines count (default: the host name up to its first dot, as keepalived)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: lvsmon import %s [-o FILE] [--config-id ID] FILE\n", strings.Join(importer.Formats(), "|"))
		fmt.Fprintln(stderr, "exit status: 0 faithful, 3 partial (see the report on stderr), 1 error")
		fs.PrintDefaults()
	}
	if len(args) == 0 {
		fs.Usage()
		return errUsage
	}
	if args[0] == flagsOnly { // completion and the man page test ask for the flags
		return parseFlags(fs, args)
	}
	format := args[0]
	if format == "-h" || format == "--help" {
		fs.Usage()
		return flag.ErrHelp
	}
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 || !slices.Contains(importer.Formats(), format) {
		fs.Usage()
		return errUsage
	}
	res, err := importer.Import(format, fs.Arg(0), importer.Options{ConfigID: *configID})
	if err != nil {
		return err
	}
	for _, e := range res.Report {
		fmt.Fprintln(stderr, e)
	}
	fmt.Fprintln(stderr, res.Summary())
	if *out == "" {
		if _, err := stdout.Write(res.YAML); err != nil {
			return err
		}
	} else if err := atomicfile.Write(*out, res.YAML, 0o644); err != nil {
		return err
	}
	if res.Partial() {
		return errPartial
	}
	return nil
}
