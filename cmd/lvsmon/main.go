// Command lvsmon is the one binary of lvsmon, the monitor and manager for
// Linux LVS (IPVS) directors: it samples the IPVS table, serves the status
// dashboard and API, and (as its features land) graphs, exports, checks
// and alerts.
//
//	lvsmon run --config FILE      the daemon (FILE may be a keepalived.conf, ldirectord.cf or lvs.cf)
//	lvsmon demo                   a simulated director on :9160
//	lvsmon check-config FILE      validate a config; exit 1 with every error
//	lvsmon hash-password          a bcrypt hash for the web config's users
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
	"strings"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/internal/buildinfo"
	"github.com/lvsmon/lvsmon/web"
)

const usage = `lvsmon: monitor and manage a Linux LVS (IPVS) director.

Usage:
  lvsmon run --config.file FILE [flags]   run the daemon (FILE: lvsmon's YAML, or a keepalived.conf, ldirectord.cf or piranha lvs.cf run as imported)
  lvsmon demo [flags]                     run a simulated director (no root, no IPVS needed)
  lvsmon check-config FILE                validate a config file (another tool's file: with the import's report)
  lvsmon test-alert --config.file FILE    send a test mail and show the SMTP conversation
  lvsmon hash-password < password         print a bcrypt hash for the web config's users
  lvsmon healthcheck [--url URL]          exit 0 if a running lvsmon answers (a container's HEALTHCHECK)
  lvsmon self-check [--state-file FILE]   exit 1 while the director's self checks hand over (keepalived's vrrp_script)
  lvsmon completion bash|zsh|fish         print a shell completion script
  lvsmon ctl COMMAND [flags]              status, drain, disable, enable, reload, events of the running daemon
  lvsmon import ldirectord|keepalived|piranha FILE  print FILE as an lvsmon config, with a report
  lvsmon version                          print the version and build

Flags have Prometheus' spellings (--config.file, --web.listen-address,
--log.level) and lvsmon's older ones (--config, --listen, --log-level);
either works.

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
	case "hash-password":
		err = cmdHashPassword(os.Stdin, args[1:], stdout, stderr)
	case "healthcheck":
		err = cmdHealthcheck(ctx, args[1:], stdout, stderr)
	case "completion":
		err = cmdCompletion(args[1:], stdout, stderr)
	case "self-check":
		err = cmdSelfCheck(args[1:], stdout, stderr)
	case "ctl":
		err = cmdCtl(ctx, args[1:], stdout, stderr)
	case "import":
		err = cmdImport(args[1:], stdout, stderr)
	case "version", "--version", "-version":
		buildinfo.Read().Print(stdout)
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
	case errors.Is(err, errHandover):
		return 1
	case errors.Is(err, errUsage):
		return 2
	case errors.Is(err, errPartial):
		return 3
	case errors.Is(err, errInvalidConfig), errors.Is(err, errAlertFailed):
		return 1
	}
	fmt.Fprintf(stderr, "lvsmon %s: %v\n", args[0], err)
	return 1
}

// common holds the flags every long-running command takes.
type common struct {
	listen      *listFlag
	metricsPath string
	// webConfig is the TLS and basic auth file (--web.config.file).
	webConfig string
	dataDir   string
	logLevel  *aliasedString
	logFormat *aliasedString
	// nodeExporterCompat also exports node_exporter's node_ipvs_* families.
	nodeExporterCompat bool
}

// register adds the common flags; defListen is the listen default (nil:
// the config's).
func (c *common) register(fs *flag.FlagSet, defListen []string) {
	c.listen = aliasList(fs, "web.listen-address", "listen", defListen,
		"`host:port` of the web interface; repeat it for several (loopback and a management network, say); overrides the config's listen")
	fs.StringVar(&c.metricsPath, "web.telemetry-path", web.DefaultMetricsPath, "`path` of the Prometheus metrics (served there only)")
	fs.StringVar(&c.webConfig, "web.config.file", "", "`file` with the web port's TLS and basic auth, in the Prometheus exporter toolkit's format (as node_exporter's); read again on reload")
	fs.StringVar(&c.dataDir, "data-dir", "", "`directory` for RRD files, the event log and state (overrides the config)")
	c.logLevel = aliasString(fs, "log.level", "log-level", "info", "log `level`: debug, info, warn or error")
	c.logFormat = aliasString(fs, "log.format", "log-format", "text", "log `format`: text or json")
	fs.BoolVar(&c.nodeExporterCompat, "metrics.node-exporter-compatible", false,
		"in the metrics, also export node_exporter's node_ipvs_* names and labels (or metrics.node_exporter_compatible in the config)")
}

// check validates the flags that are more than a string: the listen
// addresses and the metrics path.
func (c *common) check() error {
	if c.listen != nil && c.listen.given {
		if err := config.CheckListen(c.listen.values); err != nil {
			return fmt.Errorf("--web.listen-address: %w", err)
		}
	}
	if err := web.CheckTelemetryPath(c.metricsPath); err != nil {
		return fmt.Errorf("--web.telemetry-path: %w", err)
	}
	return nil
}

// logger builds the process logger from the flags.
func (c *common) logger(w io.Writer) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.logLevel.value)); err != nil {
		return nil, fmt.Errorf("%s %q: want debug, info, warn or error: %w", c.logLevel.given(), c.logLevel.value, errUsage)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch strings.ToLower(c.logFormat.value) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("%s %q: want text or json: %w", c.logFormat.given(), c.logFormat.value, errUsage)
}

// parseFlags parses fs and turns a flag error into errUsage (flag has
// already printed it).
func parseFlags(fs *flag.FlagSet, args []string) error {
	if len(args) == 1 && args[0] == flagsOnly {
		return &flagSetError{fs} // completion.go asks for the flags
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	return nil
}
