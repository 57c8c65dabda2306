// Command lvsmon is the one binary of lvsmon, the monitor and manager for
// Linux LVS (IPVS) directors: it samples the IPVS table, serves the status
// dashboard and API, and (as its features land) graphs, exports, checks
// and alerts.
//
//	lvsmon run --config FILE      the daemon
//	lvsmon demo                   a simulated director on :9160
//	lvsmon check-config FILE      validate a config; exit 1 with every error
//	lvsmon version
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"
)

// version is set at build time with -ldflags "-X main.version=...";
// otherwise the module version or VCS revision is used.
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			v = s.Value[:12]
		}
	}
	if v == "" || v == "(devel)" {
		return "devel"
	}
	return v
}

const usage = `lvsmon: monitor and manage a Linux LVS (IPVS) director.

Usage:
  lvsmon run --config FILE [flags]   run the daemon
  lvsmon demo [flags]                run a simulated director (no root, no IPVS needed)
  lvsmon check-config FILE           validate a config file
  lvsmon test-alert --config FILE    send a test mail and show the SMTP conversation
  lvsmon version                     print the version

Run 'lvsmon COMMAND -h' for a command's flags.
`

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdout, os.Stderr))
}

// errUsage marks a command-line mistake: exit code 2, as flag does.
var errUsage = errors.New("usage")

// run is main without the process exit, so tests can call it.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "run":
		err = cmdRun(ctx, args[1:], stdout, stderr)
	case "demo":
		err = cmdDemo(ctx, args[1:], stdout, stderr)
	case "check-config":
		err = cmdCheckConfig(args[1:], stdout, stderr)
	case "test-alert":
		err = cmdTestAlert(ctx, args[1:], stdout, stderr)
	case "version", "--version", "-version":
		fmt.Fprintf(stdout, "lvsmon %s\n", buildVersion())
		return 0
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "lvsmon: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errInvalidConfig), errors.Is(err, errAlertFailed):
		return 1
	}
	fmt.Fprintf(stderr, "lvsmon %s: %v\n", args[0], err)
	return 1
}

// common holds the flags every long-running command takes.
type common struct {
	listen    string
	dataDir   string
	logLevel  string
	logFormat string
	// nodeExporterCompat also exports node_exporter's node_ipvs_* families.
	nodeExporterCompat bool
}

func (c *common) register(fs *flag.FlagSet, defListen string) {
	fs.StringVar(&c.listen, "listen", defListen, "address:port of the web interface (overrides the config)")
	fs.StringVar(&c.dataDir, "data-dir", "", "directory for RRD files, the event log and state (overrides the config)")
	fs.StringVar(&c.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&c.logFormat, "log-format", "text", "text or json")
	fs.BoolVar(&c.nodeExporterCompat, "metrics.node-exporter-compatible", false,
		"on /metrics, also export node_exporter's node_ipvs_* names and labels (or metrics.node_exporter_compatible in the config)")
}

// logger builds the process logger from the flags.
func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error: %w", c.logLevel, errUsage)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(c.logFormat) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json: %w", c.logFormat, errUsage)
}

// parseFlags parses fs and turns a flag error into errUsage (flag has
// already printed it).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
