// Package demo is the simulated director of `lvsmon demo`: HTTP servers on
// 127.0.0.1 standing in for real servers, the config that points at them,
// traffic profiles for the simulated kernel table, a repeating timeline of
// outages and a simulated keepalived pair. The daemon that watches it is
// the real one (package app).
package demo

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"text/template"
	"time"

	"github.com/lvsmon/lvsmon/config"
	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/lvs"
)

// configTemplate is the demo director's config. The real servers are HTTP
// servers on 127.0.0.1 whose ports are only known once they listen, so
// the file is a template filled in with those ports. The VIPs are from
// TEST-NET-2 (198.51.100.0/24): they exist only in the simulated table.
//
//go:embed demo.yaml.tmpl
var configTemplate string

// Config renders the demo's config with params (Ports by server name,
// Step, Listen as a YAML list, and the SMTP settings when SMTP is true).
func Config(params map[string]any) ([]byte, error) {
	var buf bytes.Buffer
	if err := template.Must(template.New("demo").Parse(configTemplate)).Execute(&buf, params); err != nil {
		return nil, fmt.Errorf("demo config: %w", err)
	}
	return buf.Bytes(), nil
}

// Server is a local HTTP server standing in for a real server. Its
// health page answers OK until the timeline takes it down.
type Server struct {
	name string
	ln   net.Listener
	srv  *http.Server
	down atomic.Bool
}

// StartServer starts the stand-in server called name on a free port.
func StartServer(name string) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("demo real server %s: %w", name, err)
	}
	d := &Server{name: name, ln: ln}
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

// Port is the port the server listens on.
func (d *Server) Port() int { return d.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server.
func (d *Server) Close() { d.srv.Close() }

// outage is one entry of the demo's repeating timeline: during
// [from, to) of every cycle the named servers do not answer.
type outage struct {
	from, to time.Duration
	servers  []string
	what     string
}

// Cycle is the length of the demo's timeline, in simulated time.
const Cycle = 10 * time.Minute

// timeline takes one server down, then another service's, then every
// server of the web service at once, so that each later feature (checker,
// sorry server, alerts, event markers) has something to show.
var timeline = []outage{
	{2 * time.Minute, 4 * time.Minute, []string{"web2"}, "web2 fails its health check"},
	{5 * time.Minute, 6 * time.Minute, []string{"api1"}, "api1 fails its health check"},
	{7 * time.Minute, 8 * time.Minute, []string{"web1", "web2", "web3"}, "all web real servers fail"},
}

// downAt returns the set of servers the timeline has down at simulated
// offset t from the demo's start.
func downAt(t time.Duration) map[string]string {
	t %= Cycle
	out := map[string]string{}
	for _, o := range timeline {
		if t >= o.from && t < o.to {
			for _, s := range o.servers {
				out[s] = o.what
			}
		}
	}
	return out
}

// ServerNames are the stand-in real servers, in template order.
var ServerNames = []string{"web1", "web2", "web3", "sorry", "api1", "api2", "dns1", "dns2"}

// Profiles give each demo service its own kind of traffic.
var Profiles = map[string]lvs.Profile{
	"web": {ConnsPerSec: 120, ConnDuration: 3 * time.Second, InPkts: 12, OutPkts: 18, InBytes: 1400, OutBytes: 48000},
	"api": {ConnsPerSec: 40, ConnDuration: 20 * time.Second, InPkts: 30, OutPkts: 28, InBytes: 9000, OutBytes: 16000},
	"dns": {ConnsPerSec: 300, ConnDuration: 0, InPkts: 1, OutPkts: 1, InBytes: 70, OutBytes: 180},
}

// Runner advances the simulation and plays the timeline.
type Runner struct {
	sim     *lvs.Sim
	cfg     *config.Config
	servers map[string]*Server
	speed   float64
	log     *slog.Logger
}

// NewRunner plays the timeline on servers (by name) and sim, at speed
// simulated seconds per second.
func NewRunner(sim *lvs.Sim, cfg *config.Config, servers map[string]*Server, speed float64, log *slog.Logger) *Runner {
	return &Runner{sim: sim, cfg: cfg, servers: servers, speed: speed, log: log}
}

// tick is how often the simulation advances in real time; small enough
// that counters move smoothly between two collector samples.
const tick = 250 * time.Millisecond

// Run plays until ctx ends, writing what the timeline does to ev.
func (d *Runner) Run(ctx context.Context, ev *events.Log) {
	t := time.NewTicker(tick)
	defer t.Stop()
	var simElapsed time.Duration
	down := downAt(0)
	d.apply(ev, map[string]string{}, down)
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		dt := time.Duration(float64(tick) * d.speed)
		simElapsed += dt
		next := downAt(simElapsed)
		d.apply(ev, down, next)
		down = next
		d.sim.Advance(dt)
	}
}

// apply logs and enacts the difference between two outage sets: the
// stand-in server's health page fails and, in the simulated kernel, its
// connections stop establishing.
func (d *Runner) apply(ev *events.Log, prev, next map[string]string) {
	for _, name := range ServerNames {
		_, was := prev[name]
		why, is := next[name]
		if was == is {
			continue
		}
		s := d.servers[name]
		s.down.Store(is)
		key, dest, ok := d.locate(s.Port())
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
		if _, err := ev.Append(e); err != nil {
			d.log.Error("writing a demo event failed", "err", err)
		}
	}
}

// locate finds the service and real server a stand-in port belongs to.
func (d *Runner) locate(port int) (lvs.ServiceKey, lvs.DestKey, bool) {
	for _, vs := range d.cfg.VirtualServices {
		for _, r := range vs.Reals {
			if int(r.Key.Port) == port {
				return vs.Key, r.Key, true
			}
		}
	}
	return lvs.ServiceKey{}, lvs.DestKey{}, false
}

// YAMLList writes strings as a YAML flow list, each double-quoted, for
// the config template.
func YAMLList(ss []string) string {
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

// BrowserURL is the demo's URL on listener a: a ":9160"-style listener
// becomes localhost, which a browser can open.
func BrowserURL(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("http://localhost:%d/", ta.Port)
	}
	return "http://" + a.String() + "/"
}
