package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/lvsmon/lvsmon/events"
)

// Usage is the synopsis of `lvsmon ctl`.
const Usage = `usage: lvsmon ctl COMMAND [flags]

Commands (talk to the running daemon's HTTP API):
  status [--json]                          virtual services and real servers, as ipvsadm -Ln, with health
  drain SERVER [--comment TEXT] [--service SVC]     weight 0: no new connections, open ones finish
  disable SERVER [--comment TEXT] [--service SVC]   out of the table
  enable SERVER [--service SVC]            clear the override: the server follows its health again
  reload                                   re-read the config; a config that does not validate is rejected
  pair                                     this director and its peers side by side, and the drift between them
  events [--follow] [--since DURATION|TIME] [--kind KIND]... [--limit N] [--json]

SERVER is a real server's id (as status --json and the API name it) or its
address:port (10.0.1.1:80, [2001:db8::1]:80).

The daemon is found at the first listen address of its config
(--config.file); the write token is the config's web.api_token_file.

Run 'lvsmon ctl COMMAND -h' for a command's flags.
`

// conn holds the flags every ctl command takes.
type conn struct {
	configFile, configAlias string
	url                     string
	tokenFile               string
	timeout                 time.Duration
	caFile                  string
	certFile, keyFile       string
	insecure                bool
	basicUser, basicPWFile  string
}

// register adds the connection flags to fs; their defaults are c's
// values, so flags given before the command carry over.
func (c *conn) register(fs *flag.FlagSet) {
	fs.StringVar(&c.configFile, "config.file", c.configFile, "the daemon's config `file`: where it listens, where its write token is")
	fs.StringVar(&c.configAlias, "config", c.configAlias, "the same as --config.file")
	fs.StringVar(&c.url, "url", c.url, "the daemon's `URL` (default: from the config's listen, a wildcard as loopback)")
	fs.StringVar(&c.tokenFile, "token-file", c.tokenFile, "`file` with the write API's token (default: the config's web.api_token_file)")
	fs.DurationVar(&c.timeout, "timeout", c.timeout, "bound on each request")
	fs.StringVar(&c.caFile, "ca-file", c.caFile, "PEM `file` of the CA that signed the daemon's certificate (https)")
	fs.StringVar(&c.certFile, "cert-file", c.certFile, "PEM `file` of a client certificate (with --key-file)")
	fs.StringVar(&c.keyFile, "key-file", c.keyFile, "PEM `file` of the client certificate's key")
	fs.BoolVar(&c.insecure, "insecure-skip-verify", c.insecure, "accept any server certificate (testing only)")
	fs.StringVar(&c.basicUser, "basic-auth-user", c.basicUser, "basic auth `user` (the web config's basic_auth_users)")
	fs.StringVar(&c.basicPWFile, "basic-auth-password-file", c.basicPWFile, "`file` holding the basic auth user's password")
}

// DefaultConfigFile is the daemon's config unless --config.file says.
const DefaultConfigFile = "/etc/lvsmon/lvsmon.yaml"

// client builds the API client from the flags and the daemon's config.
func (c *conn) client() (*Client, error) {
	path, given := c.configFile, c.configFile != DefaultConfigFile
	if c.configAlias != "" {
		if given && c.configAlias != c.configFile {
			return nil, fmt.Errorf("--config.file and --config are one flag; give it once: %w", ErrUsage)
		}
		path, given = c.configAlias, true
	}
	// The config is read only for what the flags leave open, and for the
	// token only when a request needs it: `status --url` works beside a
	// config this user cannot read.
	var (
		dc    *daemonConfig
		dcErr error
		read  bool
	)
	readConfig := func() (*daemonConfig, error) {
		if !read {
			dc, dcErr = readDaemonConfig(path, given)
			read = true
		}
		return dc, dcErr
	}
	u := c.url
	if u == "" {
		dc, err := readConfig()
		if err != nil {
			return nil, err
		}
		scheme := "http"
		if c.caFile != "" || c.certFile != "" || c.insecure {
			scheme = "https" // TLS options mean a TLS port
		}
		if u, err = DefaultURL(dc.Listen, scheme); err != nil {
			return nil, err
		}
	}
	return New(Options{URL: u, Token: tokenFrom(c.tokenFile, readConfig), CAFile: c.caFile, CertFile: c.certFile, KeyFile: c.keyFile,
		InsecureSkipVerify: c.insecure, BasicAuthUser: c.basicUser, BasicAuthPasswordFile: c.basicPWFile, Timeout: c.timeout})
}

// Env is what a command writes to and reads the time from.
type Env struct {
	Stdout, Stderr io.Writer
	// Now is the clock for --since durations; nil: time.Now.
	Now func() time.Time
	// Loc is the time zone of printed times; nil: time.Local.
	Loc *time.Location
	// Poll is how often events --follow asks; 0: every second.
	Poll time.Duration
}

func (e *Env) now() time.Time {
	if e.Now != nil {
		return e.Now()
	}
	return time.Now()
}

func (e *Env) loc() *time.Location {
	if e.Loc != nil {
		return e.Loc
	}
	return time.Local
}

// Main runs `lvsmon ctl ARGS...`. A usage mistake is an error wrapping
// ErrUsage (already explained on stderr when flag found it); flag.ErrHelp
// after -h.
func Main(ctx context.Context, args []string, env *Env) error {
	c := &conn{configFile: DefaultConfigFile, timeout: 10 * time.Second}
	top := flag.NewFlagSet("lvsmon ctl", flag.ContinueOnError)
	top.SetOutput(env.Stderr)
	c.register(top)
	top.Usage = func() {
		fmt.Fprint(env.Stderr, Usage+"\nflags (of every command):\n")
		top.PrintDefaults()
	}
	if err := parse(top, args); err != nil {
		return err
	}
	if top.NArg() == 0 {
		top.Usage()
		return fmt.Errorf("no command: %w", ErrUsage)
	}
	cmd, rest := top.Arg(0), top.Args()[1:]
	fs := flag.NewFlagSet("lvsmon ctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	c.register(fs)
	switch cmd {
	case "status":
		asJSON := fs.Bool("json", false, "print the status as JSON (the API's types, every page in one document)")
		if _, err := positional(fs, rest, 0, "status [--json]"); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		return status(ctx, cl, env, *asJSON)
	case "drain", "disable", "enable":
		comment := fs.String("comment", "", "why, kept with the override and in the event log")
		service := fs.String("service", "", "the virtual service (`name or id`) when address:port is in several")
		args, err := positional(fs, rest, 1, cmd+" SERVER [--comment TEXT] [--service SVC]")
		if err != nil {
			return err
		}
		arg, err := ParseServerArg(args[0])
		if err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		return override(ctx, cl, env, cmd, arg, *service, *comment)
	case "reload":
		if _, err := positional(fs, rest, 0, "reload"); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		return reload(ctx, cl, env)
	case "events":
		var o eventsOpts
		fs.BoolVar(&o.follow, "follow", false, "keep printing new events until interrupted")
		since := fs.String("since", "", "events since a `DURATION` ago (90m, 2d) or a TIME (2026-12-03 14:00, RFC 3339)")
		fs.Func("kind", "only events of this `kind` (repeatable): "+kindList(), func(v string) error {
			for _, k := range strings.Split(v, ",") {
				if !slices.Contains(events.Selectors(), events.Kind(k)) {
					return fmt.Errorf("unknown kind %q", k)
				}
				o.kinds = append(o.kinds, events.Kind(k))
			}
			return nil
		})
		fs.IntVar(&o.limit, "limit", 20, "without --since: the newest `N` events (at most 10000)")
		fs.BoolVar(&o.json, "json", false, "print each event as a line of JSON")
		if _, err := positional(fs, rest, 0, "events [--follow] [--since DURATION|TIME] [--kind KIND]... [--limit N] [--json]"); err != nil {
			return err
		}
		if *since != "" {
			t, err := ParseSince(*since, env.now(), env.loc())
			if err != nil {
				return fmt.Errorf("--since: %w: %w", err, ErrUsage)
			}
			o.since = t
		}
		if o.limit < 1 || o.limit > 10000 {
			return fmt.Errorf("--limit %d: want 1-10000: %w", o.limit, ErrUsage)
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		return printEvents(ctx, cl, env, o)
	case "pair":
		if _, err := positional(fs, rest, 0, "pair"); err != nil {
			return err
		}
		cl, err := c.client()
		if err != nil {
			return err
		}
		return pair(ctx, cl, env)
	case "help":
		fmt.Fprint(env.Stdout, Usage)
		return nil
	}
	fmt.Fprintf(env.Stderr, "lvsmon ctl: unknown command %q\n\n%s", cmd, Usage)
	return fmt.Errorf("unknown command %q: %w", cmd, ErrUsage)
}

// parse parses fs; an error other than -h is a usage error (flag has
// printed it).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return ErrUsage // flag has said why
	}
	return nil
}

// positional parses fs with flags before and after the positional
// arguments (drain web1 --comment x), and wants n of those.
func positional(fs *flag.FlagSet, args []string, n int, synopsis string) ([]string, error) {
	var pos []string
	for {
		if err := parse(fs, args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			break
		}
		if args[0] == "--" {
			pos = append(pos, args[1:]...)
			break
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
	if len(pos) != n {
		fmt.Fprintf(fs.Output(), "usage: lvsmon ctl %s\n", synopsis)
		return nil, fmt.Errorf("want %d argument(s), got %d: %w", n, len(pos), ErrUsage)
	}
	return pos, nil
}

func kindList() string {
	var ks []string
	for _, k := range events.Selectors() {
		ks = append(ks, string(k))
	}
	return strings.Join(ks, ", ")
}

// status prints the table, or the JSON.
func status(ctx context.Context, cl *Client, env *Env, asJSON bool) error {
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	if asJSON {
		enc := json.NewEncoder(env.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(st)
	}
	return Render(env.Stdout, st, env.loc())
}

// override resolves the server, sets the override and prints what
// changed.
func override(ctx context.Context, cl *Client, env *Env, action string, arg ServerArg, service, comment string) error {
	st, err := cl.Status(ctx)
	if err != nil {
		return err
	}
	m, err := Resolve(st.Services, arg, service)
	if err != nil {
		return err
	}
	before := "none"
	if o, ok := OverrideOf(m.Server); ok {
		before = o.Mode
	}
	after := action
	if action == "enable" {
		after = "none"
		if comment != "" {
			return fmt.Errorf("--comment goes with drain and disable: %w", ErrUsage)
		}
	}
	if _, err := cl.SetOverride(ctx, m.Server.ID, action, comment); err != nil {
		return err
	}
	what := map[string]string{"drain": "drained", "disable": "disabled", "enable": "enabled"}[action]
	fmt.Fprintf(env.Stdout, "%s %s\n  override: %s -> %s", what, m.Describe(), before, after)
	if before == after {
		fmt.Fprint(env.Stdout, " (unchanged)")
	}
	fmt.Fprintln(env.Stdout)
	if m.Server.Weight != nil {
		fmt.Fprintf(env.Stdout, "  kernel weight now %d; the daemon applies the change at its next round\n", *m.Server.Weight)
	}
	return nil
}

// reload asks for a reload and prints the outcome; a rejected config is
// an error (exit 1) with its problems.
func reload(ctx context.Context, cl *Client, env *Env) error {
	r, err := cl.Reload(ctx)
	if err != nil {
		return err
	}
	if r.Status == "rejected" {
		var b strings.Builder
		b.WriteString("reload rejected: " + r.Error)
		for _, p := range r.Problems {
			b.WriteString("\n  " + p)
		}
		return &RejectedError{msg: b.String()}
	}
	fmt.Fprintf(env.Stdout, "reload accepted: the daemon at %s runs the new config\n", cl.URL())
	return nil
}

// RejectedError: the daemon refused the new config and kept the old.
type RejectedError struct{ msg string }

func (e *RejectedError) Error() string { return e.msg }
