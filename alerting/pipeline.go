package alerting

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/lvsmon/lvsmon/events"
	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// Defaults of PipelineConfig.
const (
	DefaultGroupWindow = 10 * time.Second
	DefaultFlapCount   = 4
	DefaultFlapWindow  = 10 * time.Minute
	DefaultRateLimit   = 20
	DefaultSettle      = time.Minute
)

// PipelineConfig says what is mailed, to whom, and how often. Zero
// values are the defaults.
type PipelineConfig struct {
	// Director names this director in subjects and bodies; the host name
	// when empty.
	Director string
	From     string
	To       []string
	// SubjectPrefix starts every subject; "[lvsmon <Director>]" when
	// empty.
	SubjectPrefix string
	// Kinds are the event kinds mailed, as events.Selectors names them
	// (server_down, ..., reload_rejected for rejected reloads only,
	// all); events.DefaultAlerts when empty.
	Kinds []string
	// Services limits the mailed events to these services (ids or display
	// names); empty means all. Director-wide events always pass.
	Services []string
	// DaemonStates are the daemon states (starting, running, stopping,
	// reloading; "all"; "none") in which real-server and sorry events are
	// mailed, as ldirectord's emailalertstatus. Empty means all; "none"
	// mails no real-server events at all.
	DaemonStates []string
	// Settle is how long "starting" lasts after daemon_start and
	// "reloading" after an applied reload; DefaultSettle when zero.
	Settle time.Duration
	// GroupWindow: events are held this long after the first one, then go
	// out as one mail. DefaultGroupWindow when zero; negative sends each
	// step's events at once.
	GroupWindow time.Duration
	// Reminder repeats the news of a server that stays down every
	// Reminder (ldirectord's emailalertfreq); zero means never.
	Reminder time.Duration
	// FlapCount transitions of one server within FlapWindow make it
	// flapping: one "flapping" note, then silence until it has been stable
	// for FlapWindow, then one note with its final state. Defaults
	// DefaultFlapCount and DefaultFlapWindow; a negative FlapCount turns
	// flap damping off.
	FlapCount  int
	FlapWindow time.Duration
	// RateLimit is the most mails per hour (the daily digest aside);
	// beyond it the events are kept and go out as one digest mail when
	// the hour allows. DefaultRateLimit when zero; negative means no
	// limit.
	RateLimit int
	// BackupMails also mails real-server and sorry events while
	// IsMaster() is false. By default only the master does, so a
	// director pair sends one mail, not two. Role and daemon events are
	// always mailed.
	BackupMails bool
	// DailyDigest is a cron spec (five fields, or @daily; CRON_TZ=
	// allowed) for the daily digest; empty means none. Like real-server
	// mail it comes from the master only (unless BackupMails).
	DailyDigest string
	// Location is the time zone of times in mails and of DailyDigest;
	// time.Local when nil.
	Location *time.Location
	// StateDir is where the pipeline keeps its cursor and memory
	// (alerting-state.json). Required.
	StateDir string
}

// EventSource is what the pipeline reads: *events.Log.
type EventSource interface {
	Since(seq uint64, limit int) []events.Event
	LastSeq() uint64
}

// PipelineDeps are the pipeline's collaborators.
type PipelineDeps struct {
	Outbox *Outbox     // required
	Events EventSource // required
	// Kick wakes the dispatcher after a Put; may be nil.
	Kick  func()
	Clock Clock // the real clock when nil
	Log   *slog.Logger
	// Describe returns the whole service's state now as text lines (its
	// real servers, their health and weights, the sorry server), put
	// under the service's events in a mail. May be nil.
	Describe func(service string) string
	// Name is the display name of a service id, "" when unknown. May be
	// nil.
	Name func(service string) string
	// Services lists the configured service ids, for the daily digest.
	// May be nil.
	Services func() []string
	// IsMaster says whether this director is the master of its pair now;
	// nil means always.
	IsMaster func() bool
}

// PipelineStats is what the pipeline has done since it started, for the
// status API and metrics.
type PipelineStats struct {
	Events uint64 `json:"events"` // read from the event log
	Mailed uint64 `json:"mailed"` // events and notes that went into mails
	Mails  uint64 `json:"mails"`  // mails put in the outbox, digests included
	// Grouped are mailed events that shared their mail with others.
	Grouped uint64 `json:"grouped"`
	// Digested are events the rate limit held back for a digest mail.
	Digested     uint64 `json:"digested"`
	Reminders    uint64 `json:"reminders"`
	DailyDigests uint64 `json:"daily_digests"`
	// Suppressed counts deliberately unmailed events by reason
	// (SuppressedKind, ...).
	Suppressed map[string]uint64 `json:"suppressed"`
	// Lost are events the log dropped (compaction) before the pipeline
	// read them.
	Lost          uint64    `json:"lost"`
	Held          int       `json:"held"`    // in the grouping window now
	Backlog       int       `json:"backlog"` // held back by the rate limit now
	Cursor        uint64    `json:"cursor"`
	LastMail      time.Time `json:"last_mail,omitzero"`
	LastError     string    `json:"last_error,omitempty"`
	LastErrorTime time.Time `json:"last_error_time,omitzero"`
}

// Pipeline turns the event log into mail: filters (kinds, services,
// daemon states, master only), a grouping window (a storm makes one
// mail), dedup against the known state of every server, sorry server and
// HA instance, flap damping, reminders while a server stays down,
// recovery mails, a rate limit whose excess becomes a digest, and the
// optional daily digest. The decisions are in pipeline_state.go, pure
// over a saved state; Pipeline reads the log, keeps the time, composes
// the mails and persists.
//
// # Nothing lost, nothing twice
//
// The pipeline reads the log with Since from its cursor, never trusting
// the Subscribe channel (it only wakes the loop). The cursor and all the
// memory, including the events waiting in the grouping window and the
// digest backlog, are one file written atomically, so after a crash the
// pipeline resumes from a consistent point and replays the events after
// the cursor from the log: an event appended before the crash but not
// yet in a saved state is handled again, from the same starting memory,
// and nothing is lost.
//
// Handing a mail to the outbox takes three steps: (1) the state with the
// cursor advanced past the mail's events and the mail itself (Message-ID
// and Date fixed) as InFlight is saved; (2) Outbox.Put; (3) the state
// without InFlight is saved, then the dispatcher is kicked. A crash
// before (1) leaves the old state: the events are replayed and make the
// mail again. A crash between (1) and (2): at the next start (NewPipeline)
// InFlight is not in the outbox, so it is put there: not lost. A crash
// between (2) and (3) — the case where a cursor saved after the Put
// would mail the events twice — finds InFlight already in the outbox
// and only clears the marker: not twice. The one remaining ambiguity is
// an InFlight missing from the outbox because the dispatcher had already
// sent it and removed it before the crash; the pipeline then puts it
// again, with the same Message-ID, the at-least-once trade the outbox
// makes too. It needs the dispatcher to find the mail between (2) and (3)
// without being kicked, and NewPipeline resolves InFlight before it
// returns, so create the Pipeline before starting the Dispatcher.
//
// Deliberately unmailed events (filters, dedup, flapping, a backup
// director) advance the cursor too and are counted in
// PipelineStats.Suppressed. A mail's EventSeqs hold the numbers of the
// events it reports, cut to what fits one header line (Render does not
// fold X-Lvsmon-Events); the body lists all of them as ranges. The
// crash-safety argument above does not rely on EventSeqs.
//
// Without a saved state the pipeline starts at the end of the log, so
// create it before the checker and the daemon_start event.
type Pipeline struct {
	pol   *policy
	deps  PipelineDeps
	clock Clock
	log   *slog.Logger
	path  string
	eng   *engine
	comp  *composer
	sched cron.Schedule

	dirty   bool
	saved   bool      // the state on disk includes the current InFlight
	retryAt time.Time // after an I/O failure, try again then
	// crash is a test hook: returning true at a stage simulates a crash
	// there (the step stops and nothing more is written).
	crash func(stage string) bool

	mu    sync.Mutex
	stats PipelineStats

	// reconf carries a new policy from Reconfigure to the Run loop, the
	// only goroutine that touches the engine.
	reconf chan reconf
}

// reconf is a checked new configuration waiting for the Run loop.
type reconf struct {
	pol   *policy
	sched cron.Schedule
	done  chan struct{}
}

// Reconfigure checks cfg and has Run use it from its next step: filters,
// window, reminders, flap damping, rate limit, recipients, subject prefix
// and the digest schedule change; the state (what was mailed, what is
// held, the cursor) stays. StateDir cannot change. An invalid cfg is an
// error and changes nothing. It waits until Run has taken the new
// configuration, or ctx ends.
func (p *Pipeline) Reconfigure(ctx context.Context, cfg PipelineConfig) error {
	pol, err := newPolicy(cfg)
	if err != nil {
		return err
	}
	if cfg.StateDir != "" && filepath.Join(cfg.StateDir, stateFile) != p.path {
		return fmt.Errorf("alerting: the state directory cannot change while running (%s)", filepath.Dir(p.path))
	}
	var sched cron.Schedule
	if pol.digestSpec != "" {
		if sched, err = cron.ParseStandard(pol.digestSpec); err != nil {
			return fmt.Errorf("alerting: daily digest schedule %q: %w", pol.digestSpec, err)
		}
	}
	r := reconf{pol: pol, sched: sched, done: make(chan struct{})}
	select {
	case p.reconf <- r:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-r.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// apply installs a reconfiguration (Run loop only).
func (p *Pipeline) apply(r reconf) {
	p.pol, p.eng.pol, p.comp.pol, p.sched = r.pol, r.pol, r.pol, r.sched
	st := p.eng.st
	if p.sched != nil && st.DigestSpec != r.pol.digestSpec {
		st.DigestSpec, st.DigestNext = r.pol.digestSpec, p.sched.Next(p.clock.Now().In(r.pol.loc))
		p.dirty = true
	}
	if p.sched == nil && st.DigestSpec != "" {
		st.DigestSpec, st.DigestNext = "", time.Time{}
		p.dirty = true
	}
	close(r.done)
}

// errCrash is returned by step when the crash hook fired.
var errCrash = errors.New("simulated crash")

// retryDelay is the wait after a failed save or Put.
const retryDelay = 30 * time.Second

// sinceBatch is how many events one Since call fetches.
const sinceBatch = 1000

// policy is a PipelineConfig with the defaults applied, in the form the
// decisions need.
type policy struct {
	director, from, prefix string
	to                     []string
	filter                 Filter          // kinds and services (master only is backupMails)
	states                 map[string]bool // nil = all
	settle, window         time.Duration
	reminder, flapWindow   time.Duration
	flapCount, rate        int
	backupMails            bool
	loc                    *time.Location
	digestSpec             string
	digestLines            int // lines of a digest mail
	groupLines             int // lines of a grouped mail
}

func newPolicy(cfg PipelineConfig) (*policy, error) {
	p := &policy{
		director: cfg.Director, from: cfg.From, prefix: cfg.SubjectPrefix, to: slices.Clone(cfg.To),
		settle: cfg.Settle, window: cfg.GroupWindow, reminder: cfg.Reminder,
		flapCount: cfg.FlapCount, flapWindow: cfg.FlapWindow, rate: cfg.RateLimit,
		backupMails: cfg.BackupMails, loc: cfg.Location, digestSpec: cfg.DailyDigest,
		digestLines: 200, groupLines: 1000,
	}
	if p.director == "" {
		p.director, _ = os.Hostname()
	}
	if p.director == "" {
		p.director = "director"
	}
	if p.prefix == "" {
		p.prefix = "[lvsmon " + p.director + "]"
	}
	if _, err := mail.ParseAddress(p.from); err != nil {
		return nil, fmt.Errorf("alerting: bad from address %q: %w", p.from, err)
	}
	if len(p.to) == 0 {
		return nil, errors.New("alerting: no recipients")
	}
	for _, t := range p.to {
		if _, err := mail.ParseAddress(t); err != nil {
			return nil, fmt.Errorf("alerting: bad to address %q: %w", t, err)
		}
	}
	f, err := NewFilter(cfg.Kinds, cfg.Services, false)
	if err != nil {
		return nil, err
	}
	p.filter = f
	for _, s := range cfg.DaemonStates {
		switch s {
		case "all":
			p.states = nil
		case "none":
			p.states = map[string]bool{}
		case DaemonStarting, DaemonRunning, DaemonStopping, DaemonReloading:
			if p.states == nil {
				p.states = map[string]bool{}
			}
			p.states[s] = true
		default:
			return nil, fmt.Errorf("alerting: unknown daemon state %q (starting, running, stopping, reloading, all, none)", s)
		}
		if s == "all" || s == "none" {
			if len(cfg.DaemonStates) > 1 {
				return nil, fmt.Errorf("alerting: daemon state %q cannot be combined with others", s)
			}
		}
	}
	for name, d := range map[string]time.Duration{"settle": cfg.Settle, "reminder": cfg.Reminder, "flap window": cfg.FlapWindow} {
		if d < 0 {
			return nil, fmt.Errorf("alerting: negative %s %v", name, d)
		}
	}
	if p.settle == 0 {
		p.settle = DefaultSettle
	}
	switch {
	case p.window == 0:
		p.window = DefaultGroupWindow
	case p.window < 0:
		p.window = 0
	}
	if p.flapCount == 0 {
		p.flapCount = DefaultFlapCount
	}
	if p.flapWindow == 0 {
		p.flapWindow = DefaultFlapWindow
	}
	if p.rate == 0 {
		p.rate = DefaultRateLimit
	}
	if p.loc == nil {
		p.loc = time.Local
	}
	return p, nil
}

const stateFile = "alerting-state.json"

// NewPipeline checks cfg, loads the saved state from cfg.StateDir and
// puts a mail that a crash left between decision and outbox into the
// outbox. Create it before starting the Dispatcher (see Pipeline).
//
// Without a saved state (the first start) the pipeline starts at the
// log's end: history is not mailed.
func NewPipeline(cfg PipelineConfig, deps PipelineDeps) (*Pipeline, error) {
	pol, err := newPolicy(cfg)
	if err != nil {
		return nil, err
	}
	if deps.Outbox == nil || deps.Events == nil {
		return nil, errors.New("alerting: the pipeline needs an outbox and an event source")
	}
	if cfg.StateDir == "" {
		return nil, errors.New("alerting: the pipeline needs a state directory")
	}
	if err := os.MkdirAll(cfg.StateDir, 0o750); err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	p := &Pipeline{pol: pol, deps: deps, clock: deps.Clock, log: deps.Log, path: filepath.Join(cfg.StateDir, stateFile), reconf: make(chan reconf)}
	if p.clock == nil {
		p.clock = realClock{}
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if pol.digestSpec != "" {
		if p.sched, err = cron.ParseStandard(pol.digestSpec); err != nil {
			return nil, fmt.Errorf("alerting: daily digest schedule %q: %w", pol.digestSpec, err)
		}
	}
	// A save that a crash interrupted leaves its temporary file.
	if n, err := atomicfile.CleanTemps(cfg.StateDir, stateFile); err != nil {
		p.log.Warn("alerting: cannot remove the temporary file of an interrupted save", "dir", cfg.StateDir, "err", err)
	} else if n > 0 {
		p.log.Info("alerting: removed the temporary file of an interrupted save", "dir", cfg.StateDir, "files", n)
	}
	st, err := p.load()
	if err != nil {
		return nil, err
	}
	p.eng = newEngine(pol, st, deps.Name)
	p.comp = &composer{pol: pol, name: deps.Name, describe: deps.Describe}
	now := p.clock.Now()
	if last := deps.Events.LastSeq(); st.Cursor > last {
		// The log was deleted and started over: its numbers restart.
		p.log.Warn("alerting: the event log is behind the pipeline's cursor; it was reset, reading it from the start",
			"cursor", st.Cursor, "last_seq", last)
		st.Cursor = 0
		p.dirty = true
	}
	if p.sched != nil && (st.DigestSpec != pol.digestSpec || st.DigestNext.IsZero()) {
		st.DigestSpec, st.DigestNext = pol.digestSpec, p.sched.Next(now.In(pol.loc))
		p.dirty = true
	}
	if st.InFlight != nil {
		p.saved = true
		if err := p.resolve(); err != nil {
			// Not fatal: Run retries. The mail is in the state file.
			p.log.Error("alerting: a mail decided before the restart is not in the outbox yet", "err", err)
		}
	}
	if p.dirty {
		p.save()
	}
	p.publish()
	return p, nil
}

func (p *Pipeline) load() (*pipelineState, error) {
	b, err := os.ReadFile(p.path)
	if errors.Is(err, os.ErrNotExist) {
		st := newState()
		st.Cursor = p.deps.Events.LastSeq()
		p.log.Info("alerting: no saved pipeline state; starting at the end of the event log", "cursor", st.Cursor)
		p.dirty = true
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerting: %w", err)
	}
	st := newState()
	if err := json.Unmarshal(b, st); err != nil || st.Version != 1 {
		if err == nil {
			err = fmt.Errorf("unknown version %d", st.Version)
		}
		aside, rerr := atomicfile.MoveAside(p.path)
		if rerr != nil {
			return nil, fmt.Errorf("alerting: %s is unreadable (%v) and cannot be moved aside: %w", p.path, err, rerr)
		}
		p.log.Error("alerting: the pipeline state was unreadable; moved aside, starting at the end of the event log",
			"file", p.path, "to", aside, "err", err)
		st = newState()
		st.Cursor = p.deps.Events.LastSeq()
		p.dirty = true
		return st, nil
	}
	if st.Servers == nil {
		st.Servers = map[string]*serverMem{}
	}
	if st.Sorry == nil {
		st.Sorry = map[string]bool{}
	}
	if st.Roles == nil {
		st.Roles = map[string]*roleMem{}
	}
	st.upgrade()
	return st, nil
}

// save writes the state atomically. On failure the state stays dirty and
// a retry is scheduled.
func (p *Pipeline) save() error {
	b, err := json.Marshal(p.eng.st)
	if err == nil {
		err = atomicfile.Write(p.path, append(b, '\n'), 0o640)
	}
	if err != nil {
		err = fmt.Errorf("alerting: saving the pipeline state: %w", err)
		p.fail(err)
		return err
	}
	p.dirty = false
	p.saved = p.eng.st.InFlight != nil
	return nil
}

func (p *Pipeline) fail(err error) {
	now := p.clock.Now()
	p.retryAt = now.Add(retryDelay)
	p.log.Error("alerting: pipeline", "err", err, "retry", p.retryAt)
	p.mu.Lock()
	p.stats.LastError, p.stats.LastErrorTime = err.Error(), now
	p.mu.Unlock()
}

// resolve brings InFlight into the outbox: saved first (step 1), then
// Put unless the outbox already holds it (step 2), then the marker is
// cleared (step 3). See Pipeline.
func (p *Pipeline) resolve() error {
	st := p.eng.st
	m := st.InFlight
	if m == nil {
		return nil
	}
	if p.crashAt("before-save") {
		return errCrash
	}
	if !p.saved {
		if err := p.save(); err != nil {
			return err
		}
	}
	if p.crashAt("after-save") {
		return errCrash
	}
	if !p.queued(m.MessageID) {
		if err := p.deps.Outbox.Put(*m); err != nil {
			err = fmt.Errorf("alerting: queueing mail %q: %w", m.Subject, err)
			p.fail(err)
			return err
		}
		p.log.Info("alerting: mail queued", "subject", m.Subject, "message_id", m.MessageID, "events", len(m.EventSeqs))
	}
	if p.crashAt("after-put") {
		return errCrash
	}
	st.InFlight = nil
	p.dirty = true
	if err := p.save(); err != nil {
		// The marker stays on disk; at a restart the outbox still holds
		// the mail (unless it was sent), so this is harmless.
		p.log.Warn("alerting: the queued mail's marker is not cleared yet", "err", err)
	}
	p.retryAt = time.Time{}
	p.mu.Lock()
	p.stats.Mails++
	p.stats.LastMail = m.Date
	p.mu.Unlock()
	if p.deps.Kick != nil {
		p.deps.Kick()
	}
	return nil
}

func (p *Pipeline) crashAt(stage string) bool { return p.crash != nil && p.crash(stage) }

func (p *Pipeline) queued(id string) bool {
	for _, e := range p.deps.Outbox.Pending() {
		if e.Mail.MessageID == id {
			return true
		}
	}
	return false
}

// queue makes m the InFlight mail and brings it into the outbox.
func (p *Pipeline) queue(m Mail) error {
	p.eng.st.InFlight = &m
	p.saved, p.dirty = false, true
	return p.resolve()
}

func (p *Pipeline) isMaster() bool { return p.deps.IsMaster == nil || p.deps.IsMaster() }

// step is one pass: finish an InFlight mail, read the new events, do
// what is due, save. The Run loop calls it at every wake-up; tests call
// it directly.
func (p *Pipeline) step() error {
	defer p.publish()
	now := p.clock.Now()
	if !p.retryAt.IsZero() && now.Before(p.retryAt) && p.eng.st.InFlight != nil {
		// Waiting to retry a failed Put; read events meanwhile.
		p.poll(now, p.isMaster())
		return p.saveIfDirty()
	}
	if err := p.resolve(); err != nil {
		if errors.Is(err, errCrash) {
			return err
		}
		p.poll(now, p.isMaster())
		return p.saveIfDirty()
	}
	master := p.isMaster()
	p.poll(now, master)
	for range 100 { // each pass queues one mail; a few are enough
		b := p.eng.tick(now, master)
		if b == nil {
			break
		}
		p.dirty = true
		if err := p.queue(p.comp.batchMail(b, now)); err != nil {
			if errors.Is(err, errCrash) {
				return err
			}
			return p.saveIfDirty()
		}
	}
	if err := p.daily(now, master); err != nil {
		return err
	}
	return p.saveIfDirty()
}

func (p *Pipeline) saveIfDirty() error {
	if !p.dirty {
		return nil
	}
	if p.crashAt("state") {
		return errCrash
	}
	return p.save()
}

// poll hands every event after the cursor to the engine.
func (p *Pipeline) poll(now time.Time, master bool) {
	st := p.eng.st
	for {
		evs := p.deps.Events.Since(st.Cursor, sinceBatch)
		if len(evs) == 0 {
			return
		}
		if first := evs[0].Seq; st.Cursor > 0 && first > st.Cursor+1 {
			lost := first - st.Cursor - 1
			p.eng.c.lost += lost
			p.log.Error("alerting: events were dropped from the log before they could be mailed", "count", lost, "after", st.Cursor)
		}
		for _, ev := range evs {
			if reason := p.eng.observe(ev, now, master); reason != "" && reason != SuppressedDuplicate {
				p.log.Debug("alerting: event not mailed", "seq", ev.Seq, "kind", ev.Kind, "reason", reason)
			}
		}
		p.dirty = true
		if len(evs) < sinceBatch {
			return
		}
	}
}

// daily queues the daily digest when it is due.
func (p *Pipeline) daily(now time.Time, master bool) error {
	st := p.eng.st
	if p.sched == nil || st.InFlight != nil || now.Before(st.DigestNext) {
		return nil
	}
	to := st.DigestNext
	from := st.DigestFrom
	if from.IsZero() || !from.Before(to) {
		from = to.Add(-24 * time.Hour)
	}
	st.DigestFrom, st.DigestNext = to, p.sched.Next(now.In(p.pol.loc))
	p.dirty = true
	if !master && !p.pol.backupMails {
		p.log.Info("alerting: daily digest skipped: this director is not the master", "from", from, "to", to)
		return nil
	}
	p.eng.c.daily++
	if err := p.queue(p.DailyDigest(from, to)); errors.Is(err, errCrash) {
		return err
	}
	return nil
}

// DailyDigest builds the digest mail for [from, to): the services and
// their state now, every real server's availability over the window
// (from server_down and server_up events) and the window's events.
func (p *Pipeline) DailyDigest(from, to time.Time) Mail {
	var svcs []string
	if p.deps.Services != nil {
		svcs = p.deps.Services()
	}
	return p.comp.dailyMail(p.deps.Events.Since(0, 0), svcs, from, to, p.clock.Now())
}

// nextWake is when the loop must run again without a wake-up.
func (p *Pipeline) nextWake(now time.Time) (time.Time, bool) {
	if p.eng.st.InFlight != nil || p.dirty {
		// Waiting to retry a failed Put or save: nothing else can go out
		// before it (and what is due would only spin the loop).
		if p.retryAt.After(now) {
			return p.retryAt, true
		}
		return now.Add(retryDelay), true
	}
	t, ok := p.eng.nextDue(now)
	if p.sched != nil && (!ok || p.eng.st.DigestNext.Before(t)) {
		t, ok = p.eng.st.DigestNext, true
	}
	return t, ok
}

// pollEvery is how often Run reads the log when it has no wake channel.
const pollEvery = 2 * time.Second

// Run mails until ctx is done. wake is a channel given to the event log's
// Wake: any receive makes Run read the log (with Since, so a dropped
// notification loses nothing); nil makes Run poll every 2 s. When ctx is
// done Run makes one last pass (so a daemon_stop appended before the
// cancel is mailed at once) and returns ctx.Err().
func (p *Pipeline) Run(ctx context.Context, wake <-chan struct{}) error {
	for {
		// Empty the wake channel before reading the log: whatever was
		// appended before the drain is then seen by Since.
		for drained := false; !drained && wake != nil; {
			select {
			case _, ok := <-wake:
				if !ok {
					wake = nil
				}
			default:
				drained = true
			}
		}
		if err := p.step(); errors.Is(err, errCrash) {
			return err
		}
		now := p.clock.Now()
		next, ok := p.nextWake(now)
		if wake == nil && (!ok || next.After(now.Add(pollEvery))) {
			next, ok = now.Add(pollEvery), true
		}
		var timer <-chan time.Time
		if ok {
			timer = p.clock.After(next.Sub(now))
		}
		select {
		case <-ctx.Done():
			p.step()
			return ctx.Err()
		case <-wake:
		case <-timer:
		case r := <-p.reconf:
			p.apply(r)
		}
	}
}

// publish copies the engine's counters into the stats snapshot.
func (p *Pipeline) publish() {
	e := p.eng
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.stats
	s.Events, s.Mailed, s.Grouped, s.Digested = e.c.events, e.c.mailed, e.c.grouped, e.c.digested
	s.Reminders, s.DailyDigests, s.Lost = e.c.reminders, e.c.daily, e.c.lost
	s.Suppressed = make(map[string]uint64, len(e.c.suppressed))
	for k, v := range e.c.suppressed {
		s.Suppressed[k] = v
	}
	s.Held = len(e.st.Group)
	s.Backlog = len(e.st.Backlog.Items) + e.st.Backlog.More
	s.Cursor = e.st.Cursor
}

// Stats returns a snapshot of what the pipeline has done.
func (p *Pipeline) Stats() PipelineStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := p.stats
	s.Suppressed = make(map[string]uint64, len(p.stats.Suppressed))
	for k, v := range p.stats.Suppressed {
		s.Suppressed[k] = v
	}
	return s
}
