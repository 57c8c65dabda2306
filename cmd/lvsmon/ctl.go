package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/lvsmon/lvsmon/internal/ctl"
)

// cmdCtl runs `lvsmon ctl`: the operator's commands over the running
// daemon's API (internal/ctl). SIGINT and SIGTERM end it cleanly (events
// --follow runs until then).
func cmdCtl(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	err := ctl.Main(ctx, args, &ctl.Env{Stdout: stdout, Stderr: stderr})
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return err
	case errors.Is(err, ctl.ErrUsage):
		if err != ctl.ErrUsage { // flag printed its own
			fmt.Fprintf(stderr, "lvsmon ctl: %s\n", strings.TrimSuffix(err.Error(), ": "+ctl.ErrUsage.Error()))
		}
		return errUsage
	}
	return err
}
