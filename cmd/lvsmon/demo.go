package main

import (
	"bytes"
	"context"
	_ "embed"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// demoConfig is the demo director's config. The real servers are HTTP
// servers on 127.0.0.1 whose ports are only known once they listen, so
// the file is a template filled in with those ports. The VIPs are from
// TEST-NET-2 (198.51.100.0/24): they exist only in the simulated table.
//
//go:embed demo.yaml.tmpl
var demoConfig string

// demoServer is a local HTTP server standing in for a real server. Its
// health page answers OK until the timeline takes it down.
type demoServer struct {
	name string
	ln   net.Listener
	srv  *http.Server
	down atomic.Bool
}

func startDemoServer(name string) (*demoServer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo real server %s: %w", name, err)
	}
	d := &demoServer{name: name, ln: ln}
	mux := http.NewServeMux()
	mux.HandleFunc("/.health.html", func(w http.ResponseWriter, r *http.Request) {
		if d.down.Load() {
			http.Error(w, "maintenance", http.StatusServiceUnavailable)
			return
		}
		io.WriteString(w, "OK\n")
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if d.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "hello from %s\n", name)
	})
	d.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go d.srv.Serve(ln)
	return d, nil
}

func (d *demoServer) port() int { return d.ln.Addr().(*net.TCPAddr).Port }

func (d *demoServer) close() { d.srv.Close() }

// demoOutage is one entry of the demo's repeating timeline: during
// [from, to) of every cycle the named servers do not answer.
type demoOutage struct {
	from, to time.Duration
	servers  []string
	what     string
}

// demoCycle is the length of the demo's timeline, in simulated time.
const demoCycle = 10 * time.Minute

// demoTimeline takes one server down, then another service's, then every
// server of the web service at once, so that each later feature (checker,
// sorry server, alerts, event markers) has something to show.
var demoTimeline = []demoOutage{
	{2 * time.Minute, 4 * time.Minute, []string{"web2"}, "web2 fails its health check"},
	{5 * time.Minute, 6 * time.Minute, []string{"api1"}, "api1 fails its health check"},
	{7 * time.Minute, 8 * time.Minute, []string{"web1", "web2", "web3"}, "all web real servers fail"},
}

// downAt returns the set of servers the timeline has down at simulated
// offset t from the demo's start.
func downAt(t time.Duration) map[string]string {
	t %= demoCycle
	out := map[string]string{}
	for _, o := range demoTimeline {
		if t >= o.from && t < o.to {
			for _, s := range o.servers {
				out[s] = o.what
			}
		}
	}
	return out
}

// demoServers are the stand-in real servers, in template order.
var demoServers = []string{"web1", "web2", "web3", "sorry", "api1", "api2", "dns1", "dns2"}

func cmdDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var c common
	c.register(fs, config.DefaultListen)
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
	if *speed <= 0 || *speed > 10000 {
		fmt.Fprintf(stderr, "demo: --speed %v: want a value in (0, 10000]\n", *speed)
		return errUsage
	}
	log, err := c.logger(stderr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errUsage
	}

	servers := map[string]*demoServer{}
	ports := map[string]int{}
	defer func() {
		for _, s := range servers {
			s.close()
		}
	}()
	for _, name := range demoServers {
		s, err := startDemoServer(name)
		if err != nil {
			return err
		}
		servers[name] = s
		ports[name] = s.port()
	}
	tmpl := map[string]any{"Ports": ports, "Step": step.String(), "Listen": c.listen, "SMTP": *smtpAddr != ""}
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
	var buf bytes.Buffer
	if err := template.Must(template.New("demo").Parse(demoConfig)).Execute(&buf, tmpl); err != nil {
		return fmt.Errorf("demo config: %w", err)
	}
	if *printCfg {
		_, err := stdout.Write(buf.Bytes())
		return err
	}
	cfg, err := config.Parse("demo.yaml (built in)", buf.Bytes())
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
		sim.SetProfile(vs.Key, demoProfiles[vs.Name])
	}
	tl := &demoRunner{sim: sim, cfg: cfg, servers: servers, speed: *speed, log: log.With("component", "demo")}
	return serve(ctx, daemonOpts{
		cfg: cfg, reader: fake, log: log,
		extra:       []func(context.Context, *events.Log){tl.run},
		roleSources: demoRoleSources(*speed),
		ready: func(addr net.Addr) {
			fmt.Fprintf(stdout, "lvsmon demo: a simulated director with %d virtual services is on http://%s/ (Ctrl-C stops it)\n",
				len(cfg.VirtualServices), displayAddr(addr))
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

// displayAddr turns ":9160"-style listeners into a URL host a browser
// can open.
func displayAddr(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || ta.IP.IsUnspecified() {
		if ok {
			return fmt.Sprintf("localhost:%d", ta.Port)
		}
	}
	return a.String()
}

// demoProfiles give each demo service its own kind of traffic.
var demoProfiles = map[string]lvs.Profile{
	"web": {ConnsPerSec: 120, ConnDuration: 3 * time.Second, InPkts: 12, OutPkts: 18, InBytes: 1400, OutBytes: 48000},
	"api": {ConnsPerSec: 40, ConnDuration: 20 * time.Second, InPkts: 30, OutPkts: 28, InBytes: 9000, OutBytes: 16000},
	"dns": {ConnsPerSec: 300, ConnDuration: 0, InPkts: 1, OutPkts: 1, InBytes: 70, OutBytes: 180},
}

// demoRunner advances the simulation and plays the timeline.
type demoRunner struct {
	sim     *lvs.Sim
	cfg     *config.Config
	servers map[string]*demoServer
	speed   float64
	log     *slog.Logger
	ev      *events.Log
}

// tick is how often the simulation advances in real time; small enough
// that counters move smoothly between two collector samples.
const demoTick = 250 * time.Millisecond

func (d *demoRunner) run(ctx context.Context, ev *events.Log) {
	d.ev = ev
	t := time.NewTicker(demoTick)
	defer t.Stop()
	var simElapsed time.Duration
	down := downAt(0)
	d.apply(map[string]string{}, down)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dt := time.Duration(float64(demoTick) * d.speed)
		simElapsed += dt
		next := downAt(simElapsed)
		d.apply(down, next)
		down = next
		d.sim.Advance(dt)
	}
}

// apply logs and enacts the difference between two outage sets: the
// stand-in server's health page fails and, in the simulated kernel, its
// connections stop establishing.
func (d *demoRunner) apply(prev, next map[string]string) {
	for _, name := range demoServers {
		_, was := prev[name]
		why, is := next[name]
		if was == is {
			continue
		}
		s := d.servers[name]
		s.down.Store(is)
		key, dest, ok := d.locate(s.port())
		if ok {
			d.sim.SetReachable(key, dest, !is)
		}
		e := events.Event{Kind: events.SimulatedUp, From: events.Down, To: events.Up, Actor: events.ActorDemo,
			Message: fmt.Sprintf("demo timeline: %s (%s) answers again", name, s.ln.Addr())}
		if is {
			e = events.Event{Kind: events.SimulatedDown, From: events.Up, To: events.Down, Reason: why, Actor: events.ActorDemo,
				Message: fmt.Sprintf("demo timeline: %s (%s) stops answering: %s", name, s.ln.Addr(), why)}
			d.log.Info("demo timeline: real server goes down", "server", name, "why", why, "address", s.ln.Addr().String())
		} else {
			d.log.Info("demo timeline: real server is back", "server", name, "address", s.ln.Addr().String())
		}
		if ok {
			e.Service, e.Server = key.ID(), lvs.DestID(key, dest)
		}
		if _, err := d.ev.Append(e); err != nil {
			d.log.Error("writing a demo event failed", "err", err)
		}
	}
}

// locate finds the service and real server a stand-in port belongs to.
func (d *demoRunner) locate(port int) (lvs.ServiceKey, lvs.DestKey, bool) {
	for _, vs := range d.cfg.VirtualServices {
		for _, r := range vs.Reals {
			if int(r.Key.Port) == port {
				return vs.Key, r.Key, true
			}
		}
	}
	return lvs.ServiceKey{}, lvs.DestKey{}, false
}
