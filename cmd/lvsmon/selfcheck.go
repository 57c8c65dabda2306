package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/selfcheck"
)

// errHandover is a director whose self checks fail: exit 1, so that
// keepalived's vrrp_script lowers the instance's priority.
var errHandover = errors.New("handing over")

// cmdSelfCheck reads the running daemon's self-check verdict from its
// state file (ha.handover.state_file): exit 0 while this director should
// keep its VIPs, 1 while it hands them over (or the verdict cannot be
// read). It reads one small file and talks to nothing, so keepalived can
// run it every second as a vrrp_script.
func cmdSelfCheck(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("self-check", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagUsage(fs, stderr, "lvsmon self-check [--state-file FILE] [--quiet]")
	state := fs.String("state-file", filepath.Join(config.DefaultDataDir, "self-check"), "the daemon's ha.handover.state_file")
	quiet := fs.Bool("quiet", false, "print nothing (keepalived logs a script's output)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "self-check: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	b, err := os.ReadFile(*state)
	if err != nil {
		return fmt.Errorf("no verdict (is lvsmon running with ha.self_checks and ha.handover?): %w", err)
	}
	handover, line, err := selfcheck.ReadState(b)
	if err != nil {
		return fmt.Errorf("%s: %w", *state, err)
	}
	if !*quiet {
		fmt.Fprintln(stdout, line)
	}
	if handover {
		return errHandover
	}
	return nil
}
