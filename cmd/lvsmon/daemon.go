package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"syscall"

	"github.com/lvsmon/lvsmon/app"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/internal/buildinfo"
	"github.com/lvsmon/lvsmon/web"
)

// errInvalidConfig: the config did not validate; its problems have been
// printed already.
var errInvalidConfig = errors.New("invalid config")

func cmdCheckConfig(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("check-config", flag.ContinueOnError)
	fs.SetOutput(stderr)
	webFile := fs.String("web.config.file", "", "also validate this web config `file` (TLS and basic auth)")
	configID := configIDFlag(fs)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: lvsmon check-config [--web.config.file FILE] [--config-id ID] FILE")
		fmt.Fprintln(stderr, "FILE is an lvsmon config, or a keepalived.conf, ldirectord.cf or piranha lvs.cf that lvsmon run imports (told by its content)")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		fs.Usage()
		return errUsage
	}
	cfg, res, err := importer.Load(fs.Arg(0), importer.Options{ConfigID: *configID})
	if err != nil {
		printConfigErrors(stderr, err)
		return errInvalidConfig
	}
	if res != nil {
		// The import's report, as lvsmon import prints it: what lvsmon
		// run would do differently from the other program.
		for _, e := range res.Report {
			fmt.Fprintln(stderr, e)
		}
		fmt.Fprintln(stderr, res.Summary())
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	from := ""
	if o := cfg.Origin; o != nil {
		from = fmt.Sprintf("imported from %s, %d directives not supported, %d changed: ", o.Format, o.Unsupported, o.Changed)
	}
	fmt.Fprintf(stdout, "%s: valid (%s%d virtual services, %d real servers)\n", fs.Arg(0), from, len(cfg.VirtualServices), countReals(cfg))
	if *webFile != "" {
		acc, err := web.LoadAccess(*webFile)
		if err != nil {
			fmt.Fprintf(stderr, "error: %v\n", err)
			return errInvalidConfig
		}
		fmt.Fprintf(stdout, "%s: valid (tls %s, %d basic auth users)\n", *webFile, map[bool]string{true: "on", false: "off"}[acc.TLS != nil], len(acc.Users()))
	}
	return nil
}

func printConfigErrors(w io.Writer, err error) {
	var errs config.Errors
	if errors.As(err, &errs) {
		for _, p := range errs {
			fmt.Fprintf(w, "error: %s\n", p)
		}
		fmt.Fprintf(w, "%d error(s)\n", len(errs))
		return
	}
	fmt.Fprintf(w, "error: %v\n", err)
}

func countReals(cfg *config.Config) int {
	n := 0
	for _, vs := range cfg.VirtualServices {
		n += len(vs.Reals)
	}
	return n
}

func cmdRun(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagUsage(fs, stderr, "lvsmon run [--config.file FILE] [flags]")
	var c common
	c.register(fs, nil)
	cfgFile := aliasString(fs, "config.file", "config", "/etc/lvsmon/lvsmon.yaml",
		"config `file`: lvsmon's YAML, or a keepalived.conf, ldirectord.cf or piranha lvs.cf, imported at start and at every reload (told by its content)")
	configID := configIDFlag(fs)
	dryRun := fs.Bool("dry-run", false, "check and plan, but log the IPVS changes instead of making them")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "run: unexpected arguments %q\n", fs.Args())
		return errUsage
	}
	if err := c.check(); err != nil {
		fmt.Fprintf(stderr, "run: %v\n", err)
		return errUsage
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}
	path := &cfgFile.value
	load := func() (*config.Config, error) {
		cfg, err := app.LoadConfig(*path, importer.Options{ConfigID: *configID}, log)
		if err != nil {
			return nil, err
		}
		c.override(cfg)
		return cfg, nil
	}
	cfg, err := load()
	if err != nil {
		printConfigErrors(stderr, err)
		return errInvalidConfig
	}
	backend, err := app.OpenBackend(cfg)
	if err != nil {
		return err
	}
	defer backend.Close()
	return runDaemon(ctx, app.Options{Config: cfg, Reader: backend, Load: load, Log: log, DryRun: *dryRun, ConfigPath: *path,
		TelemetryPath: c.metricsPath, WebConfigFile: c.webConfig})
}

// configIDFlag is keepalived's -i for a keepalived.conf read directly,
// as lvsmon import has it.
func configIDFlag(fs *flag.FlagSet) *string {
	return fs.String("config-id", "", "for a keepalived.conf: keepalived's -i `id`, which \"@id\" lines count (default: the host name up to its first dot, as keepalived)")
}

// override applies command-line flags over the config.
func (c *common) override(cfg *config.Config) {
	if c.listen != nil && c.listen.given {
		cfg.Listen = config.Addresses(slices.Clone(c.listen.values))
	}
	if c.dataDir != "" {
		cfg.DataDir = c.dataDir
	}
	if c.nodeExporterCompat {
		cfg.Metrics.NodeExporterCompatible = true
	}
}

// runDaemon builds the daemon and runs it until SIGINT or SIGTERM (or
// ctx ends); SIGHUP reloads the config: an invalid one is logged and the
// running one kept. Under systemd it speaks sd_notify (notify.go).
func runDaemon(ctx context.Context, o app.Options) error {
	ctx, stop := signal.NotifyContext(ctx, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	b := buildinfo.Read()
	o.Version, o.Build = b.Version, b
	sd := newSDNotifier(o.Log)
	if sd != nil {
		o.Notify = sd
	}
	a, err := app.New(o)
	if err != nil {
		return err
	}
	defer a.Close()
	if sd != nil {
		wctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go sd.watchdog(wctx, a.Alive)
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				a.Reload()
			}
		}
	}()
	return a.Run(ctx)
}
