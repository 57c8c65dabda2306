package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/app"
	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/ha"
	"github.com/lvsmon/lvsmon/internal/demo"
	"github.com/lvsmon/lvsmon/lvs"
)

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	flagUsage(fs, stderr, "lvsmon demo [flags]")
	var c common
	c.register(fs, []string{config.DefaultListen})
	step := fs.Duration("step", 2*time.Second, "collector step")
	speed := fs.Float64("speed", 1, "simulated seconds per real second (traffic and timeline)")
	seed := fs.Uint64("seed", 1, "seed of the traffic simulation")
	printCfg := fs.Bool("print-config", false, "print the demo's config and exit")
	smtpAddr := fs.String("smtp", "", "send the timeline's alert mails through this SMTP server (host:port)")
	smtpTLS := fs.String("smtp-tls", "opportunistic", "TLS with the --smtp server: starttls, opportunistic, tls or none")
	mailTo := fs.String("mail-to", "ops@example.com", "recipient of the demo's alert mails")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if err := c.check(); err != nil {
		fmt.Fprintf(stderr, "demo: %v\n", err)
		return errUsage
	}
	if *speed <= 0 || *speed > 10000 {
		fmt.Fprintf(stderr, "demo: --speed %v: want a value in (0, 10000]\n", *speed)
		return errUsage
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}

	servers := map[string]*demo.Server{}
	ports := map[string]int{}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	for _, name := range demo.ServerNames {
		s, err := demo.StartServer(name)
		if err != nil {
			return err
		}
		servers[name] = s
		ports[name] = s.Port()
	}
	tmpl := map[string]any{"Ports": ports, "Step": step.String(), "Listen": demo.YAMLList(c.listen.values), "SMTP": *smtpAddr != ""}
	if *smtpAddr != "" {
		host, port, err := splitSMTP(*smtpAddr)
		if err != nil {
			fmt.Fprintf(stderr, "demo: --smtp %q: %v\n", *smtpAddr, err)
			return errUsage
		}
		// The grouping window follows the simulated time, so a fast demo
		// still groups its outages, at least 1s.
		window := max(time.Second, time.Duration(float64(10*time.Second) / *speed)).Round(time.Second)
		tmpl["SMTPHost"], tmpl["SMTPPort"], tmpl["SMTPTLS"], tmpl["MailTo"], tmpl["Window"] = host, port, *smtpTLS, *mailTo, window.String()
	}
	text, err := demo.Config(tmpl)
	if err != nil {
		return err
	}
	if *printCfg {
		_, err := stdout.Write(text)
		return err
	}
	cfg, err := config.Parse("demo.yaml (built in)", text)
	if err != nil {
		printConfigErrors(stderr, err)
		return fmt.Errorf("the built-in demo config is invalid: %w", err)
	}
	c.override(cfg)
	if c.dataDir == "" {
		dir, err := os.MkdirTemp("", "lvsmon-demo-")
		if err != nil {
			return fmt.Errorf("demo data dir: %w", err)
		}
		defer os.RemoveAll(dir)
		cfg.DataDir = dir
	}

	// The simulated kernel starts empty, as a freshly booted director's:
	// the reconciler creates the configured services and real servers.
	fake := lvs.NewFake(lvs.Table{})
	start := time.Now()
	sim := lvs.NewSim(fake, *seed, start)
	for _, vs := range cfg.VirtualServices {
		sim.SetProfile(vs.Key, demo.Profiles[vs.Name])
	}
	tl := demo.NewRunner(sim, cfg, servers, *speed, log.With("component", "demo"))
	return runDaemon(ctx, app.Options{
		Config: cfg, Reader: fake, Log: log,
		Extra:         []func(context.Context, *events.Log){tl.Run},
		TelemetryPath: c.metricsPath, WebConfigFile: c.webConfig,
		// One source reports the simulated pair's three views.
		RoleSources: []app.RoleSource{{Name: ha.SourceSimulated, Run: demo.RoleSource(*speed)}, {Name: ha.SourceVIP}, {Name: ha.SourceVRRP}},
		Ready: func(addrs []net.Addr) {
			urls := make([]string, len(addrs))
			for i, a := range addrs {
				urls[i] = demo.BrowserURL(a)
			}
			fmt.Fprintf(stdout, "lvsmon demo: a simulated director with %d virtual services is on %s (Ctrl-C stops it)\n",
				len(cfg.VirtualServices), strings.Join(urls, " and "))
		},
	})
}

// splitSMTP reads --smtp's host:port.
func splitSMTP(s string) (string, int, error) {
	host, port, err := splitHostPortNum(s)
	if err != nil {
		return "", 0, err
	}
	if host == "" || port == 0 {
		return "", 0, fmt.Errorf("want host:port")
	}
	return host, port, nil
}

// splitHostPortNum splits host:port with a numeric port.
func splitHostPortNum(s string) (string, int, error) {
	h, p, err := net.SplitHostPort(s)
	if err != nil {
		return "", 0, err
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", 0, fmt.Errorf("port %q is not 1-65535", p)
	}
	return h, n, nil
}
