// Package events is lvsmon's event log: a small, persistent, bounded,
// append-only record of things that happened on the director (a real
// server went down or came back, the sorry server switched, the HA role
// changed, a config reload was applied or rejected). The checker, the HA
// role sources and the demo write to it; graphs draw its entries as
// marked vertical lines; alerting turns them into mail; the web lists them.
// Every kind is declared here (Kind), and what an event means is in its
// fields, never only in its message (Event).
//
// The file is JSON lines in the data directory. Each Append is one
// write(2) of one line followed by fsync, so a crash loses at most the
// line being written, and a torn last line is cut off (and reported) on
// the next start. Fields are bounded (MaxMessage, MaxField), and a line
// that is not an event never stops a start: it is skipped, counted in
// one warning, and the file is rewritten without it (the old one kept in
// corrupt/). The log keeps at most Max events: when the file holds
// twice that, it is rewritten with the newest Max, atomically (write to a
// temporary file, fsync, rename).
package events

import (
	"bufio"
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// Event is one entry. Service and Server are the ids used everywhere in
// lvsmon (lvs.ServiceKey.ID, lvs.DestID); either may be empty for
// director-wide events.
//
// What an event means is in its fields: consumers decide on Kind, From,
// To, Reason and Actor and never read Message, the text for humans (the
// web list, mails). The fields are omitted from the JSON when empty, so
// a line stays short and lines written before they existed decode (Open
// fills them from the message: Upgrade).
type Event struct {
	Seq     uint64    `json:"seq"`
	Time    time.Time `json:"time"`
	Kind    Kind      `json:"kind"`
	Service string    `json:"service,omitempty"`
	Server  string    `json:"server,omitempty"`
	// Instance is the HA instance (VRRP instance name, resource group)
	// of role events.
	Instance string `json:"instance,omitempty"`
	// From and To are the state before and after: a real server's health
	// (Up, Down, Unknown), the sorry server (On, Off), an instance's role
	// (MASTER, BACKUP, ...; no From for the first role seen), an
	// override's mode (drain, disable, Enabled), what became of a
	// reload's config (To: Applied or Rejected).
	From string `json:"from,omitempty"`
	To   string `json:"to,omitempty"`
	// Reason says why: the failing check's message, a rejected reload's
	// problem, a disagreement's kind (ha's vip_without_master, ...), the
	// failure class that made a mass-failure hold and what ended it, the
	// cause of a stop.
	Reason string `json:"reason,omitempty"`
	// Actor says who: an operator (the API client's address), a role
	// source (keepalived, ...) or a part of lvsmon (ActorChecker, ...).
	Actor   string `json:"actor,omitempty"`
	Message string `json:"message"`
}

// DefaultMax is how many events are kept when the caller does not say.
const DefaultMax = 100_000

// Log is the event log. It is safe for concurrent use.
type Log struct {
	path string
	max  int
	log  *slog.Logger

	mu sync.Mutex
	f  file
	// buf[head:] are the events held, oldest first, at most max; see
	// keep.
	buf     []Event
	head    int
	lines   int // lines in the file
	nextSeq uint64
	subs    []chan<- Event
	wakes   []chan<- struct{}
	now     func() time.Time
	torn    bool  // the file ends inside a line (a crash mid-write)
	tornAt  int64 // where that line starts
	skipped int   // lines load skipped
	// failed: the last write or sync failed, so the file may end inside
	// a line; the next line starts with a newline of its own.
	failed bool
}

// file is what Append writes to: the log's *os.File, or a test's.
type file interface {
	io.Writer
	Sync() error
	Close() error
}

// events are the events held, oldest first.
func (l *Log) events() []Event { return l.buf[l.head:] }

// keep adds e to the events held and forgets the oldest beyond max.
// Forgetting only moves head; once a quarter of max (or of the array)
// is forgotten the rest moves to the front of the same array. A full
// log thus copies about four events per append, amortised, and
// allocates nothing: copying all max (100,000) events on every append
// would make each event the director writes cost tens of megabytes.
func (l *Log) keep(e Event) {
	l.buf = append(l.buf, e)
	if len(l.buf)-l.head > l.max {
		l.head++
	}
	if l.head > 0 && l.head >= max(1, l.max/4) {
		n := copy(l.buf, l.buf[l.head:])
		clear(l.buf[n:]) // let the forgotten events' strings go
		l.buf, l.head = l.buf[:n], 0
	}
}

// Open reads (or creates) the log at dir/events.jsonl.
func Open(dir string, max int, log *slog.Logger) (*Log, error) {
	if max <= 0 {
		max = DefaultMax
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	l := &Log{path: filepath.Join(dir, "events.jsonl"), max: max, log: log, nextSeq: 1, now: time.Now}
	// A compaction that a crash interrupted leaves its temporary file.
	if n, err := atomicfile.CleanTemps(dir, filepath.Base(l.path)); err != nil {
		log.Warn("event log: cannot remove a leftover temporary file", "dir", dir, "err", err)
	} else if n > 0 {
		log.Info("event log: removed the temporary file of an interrupted compaction", "dir", dir, "files", n)
	}
	if err := l.load(); err != nil {
		return nil, err
	}
	l.repair()
	f, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("event log: %w", err)
	}
	l.f = f
	if l.torn {
		// End the torn line so the next event starts on a line of its own.
		if _, err := f.Write([]byte{'\n'}); err != nil {
			f.Close()
			return nil, fmt.Errorf("event log: %w", err)
		}
	}
	return l, nil
}

// Field bounds. An event is a line of the log, read back at every start
// and kept in memory: a field as large as whatever a producer was handed
// (a rejected reload quoting a 1 MB value) must not make the log
// unreadable or the daemon's memory grow. Append cuts longer fields and
// says so in them (see Cut).
const (
	// MaxMessage bounds Message and Reason, in bytes.
	MaxMessage = 4096
	// MaxField bounds Kind, Service, Server, Instance, From, To and
	// Actor, in bytes: ids, names and states, short in any real log.
	MaxField = 256
	// maxLine is the longest line load reads: above what Append writes
	// with the bounds above (JSON escaping at most sextuples a byte: two
	// long fields and seven short ones make under 60 KiB), far below
	// what would hurt. A longer line is skipped.
	maxLine = 64 << 10
)

// Cut returns s unchanged when it fits in max bytes; otherwise its
// beginning, cut on a UTF-8 character boundary, followed by a visible
// mark of how much was cut ("… [cut 1098213 bytes]"), the whole at most
// max bytes (for a max longer than the mark, some 30 bytes).
func Cut(s string, max int) string {
	if len(s) <= max {
		return s
	}
	// The mark is longest when the most is cut; size it for len(s).
	keep := max - len(cutMark(len(s)))
	if keep < 0 {
		keep = 0
	}
	for keep > 0 && !utf8.RuneStart(s[keep]) {
		keep--
	}
	return s[:keep] + cutMark(len(s)-keep)
}

func cutMark(n int) string { return "… [cut " + strconv.Itoa(n) + " bytes]" }

// bound applies the field bounds to e.
func bound(e *Event) {
	e.Kind = Kind(Cut(string(e.Kind), MaxField))
	e.Service = Cut(e.Service, MaxField)
	e.Server = Cut(e.Server, MaxField)
	e.Instance = Cut(e.Instance, MaxField)
	e.From = Cut(e.From, MaxField)
	e.To = Cut(e.To, MaxField)
	e.Actor = Cut(e.Actor, MaxField)
	e.Reason = Cut(e.Reason, MaxMessage)
	e.Message = Cut(e.Message, MaxMessage)
}

// load reads the file line by line, in bounded memory. A line that is
// not an event (damage, a line longer than maxLine written by an older
// lvsmon) is skipped, and the skipped lines are reported in one warning;
// the file is then rewritten without them, its old content kept in
// corrupt/ beside it. A last line without its newline is a write that
// a crash cut short (Append never returned for it): it is cut off the
// file.
func (l *Log) load() error {
	f, err := os.Open(l.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("event log: %w", err)
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 64<<10)
	var (
		n, skipped, oversized int
		firstSkipped          int
		firstErr              error
		long                  []byte // a line longer than the reader's buffer, up to maxLine
		tooLong               bool   // the current line passed maxLine: skipping to its end
		cur                   int64  // bytes of the current line read so far
		good                  int64  // bytes up to the end of the last complete line
	)
	skip := func(err error) {
		skipped++
		if firstSkipped == 0 {
			firstSkipped, firstErr = n, err
		}
	}
	for {
		chunk, err := r.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			cur += int64(len(chunk))
			if !tooLong {
				long = append(long, chunk...)
				if len(long) > maxLine {
					tooLong, long = true, nil
				}
			}
			continue
		}
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("event log: read %s: %w", l.path, err)
		}
		if errors.Is(err, io.EOF) {
			if cur+int64(len(chunk)) > 0 {
				// A torn last line: the write that a crash interrupted.
				l.torn = true
				l.tornAt = good
			}
			break
		}
		n++
		good += cur + int64(len(chunk))
		cur = 0
		line := chunk
		if len(long) > 0 {
			line = append(long, chunk...)
			long = long[:0:0]
		}
		if tooLong || len(line) > maxLine {
			tooLong = false
			oversized++
			skip(fmt.Errorf("line longer than %d bytes", maxLine))
			continue
		}
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var e Event
		if err := json.Unmarshal(line, &e); err != nil || e.Time.IsZero() || e.Kind == "" {
			if err == nil {
				err = errors.New("not an event (no time or kind)")
			}
			skip(err)
			continue
		}
		e = Upgrade(e)
		bound(&e)
		l.keep(e)
		if e.Seq >= l.nextSeq {
			l.nextSeq = e.Seq + 1
		}
	}
	l.lines = n
	if skipped > 0 {
		l.skipped = skipped
		l.log.Warn("event log: skipped lines that are not events; the file is rewritten without them",
			"file", l.path, "skipped", skipped, "too_long", oversized, "first_line", firstSkipped, "first_err", firstErr)
	}
	return nil
}

// repair runs after load, before the file is opened for appending: it
// rewrites a file that held lines load had to skip, keeping a copy of the
// old file in corrupt/ (atomicfile.KeepAside), and cuts a
// torn last line off. Neither failing stops the start: the lines are
// skipped again next time, and a torn line that stays is ended with a
// newline by Open.
func (l *Log) repair() {
	if l.skipped > 0 {
		aside, err := atomicfile.KeepAside(l.path)
		if err != nil {
			l.log.Error("event log: cannot keep a copy of the damaged file", "file", l.path, "err", err)
		} else {
			l.log.Warn("event log: the damaged file is kept", "file", l.path, "copy", aside)
		}
		if err := l.rewrite(); err != nil {
			l.log.Error("event log: cannot rewrite the damaged file; its bad lines stay and are skipped at every start", "file", l.path, "err", err)
		} else {
			l.torn = false
		}
	}
	if l.torn {
		l.log.Warn("event log: cutting off a torn last line (a write interrupted by a crash)", "file", l.path, "at_byte", l.tornAt)
		if err := os.Truncate(l.path, l.tornAt); err != nil {
			l.log.Error("event log: cannot cut off the torn last line; ending it instead", "file", l.path, "err", err)
		} else {
			l.torn = false
		}
	}
}

// Append records e (Time defaults to now; Seq is assigned), writes it
// as one line and syncs the file, and only then keeps it and hands it
// to subscribers and wake channels: a reader never acts on an event
// that a crash could take back (alerting would mail it, or save a
// cursor past a number the restarted log gives to the next event). An
// event whose line could not be written or synced is not kept and not
// delivered; its number is used up and the error returned, for the
// caller to report.
func (l *Log) Append(e Event) (Event, error) {
	if e.Kind == "" {
		return e, errors.New("event log: an event needs a kind")
	}
	bound(&e)
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Time.IsZero() {
		e.Time = l.now()
	}
	e.Time = e.Time.UTC()
	e.Seq = l.nextSeq
	l.nextSeq++
	line, err := json.Marshal(e)
	if err != nil {
		return e, fmt.Errorf("event log: %w", err)
	}
	line = append(line, '\n')
	if l.failed {
		// The failed write may have left part of a line: end it, or this
		// line would be joined to it and both lost at the next start. An
		// empty line is skipped.
		line = append([]byte{'\n'}, line...)
	}
	if _, err := l.f.Write(line); err != nil {
		l.failed = true
		return e, fmt.Errorf("event log: write %s: %w", l.path, err)
	}
	if err := l.f.Sync(); err != nil {
		l.failed = true
		return e, fmt.Errorf("event log: sync %s: %w", l.path, err)
	}
	l.failed = false
	l.lines++
	l.keep(e)
	for _, s := range l.subs {
		select {
		case s <- e:
		default:
			l.log.Warn("event log: a subscriber is not keeping up; event not delivered to it", "seq", e.Seq)
		}
	}
	for _, w := range l.wakes {
		select {
		case w <- struct{}{}:
		default: // a wake-up is pending already
		}
	}
	if l.lines >= 2*l.max {
		if err := l.compact(); err != nil {
			return e, err
		}
	}
	return e, nil
}

// compact rewrites the file with the events held in memory and reopens
// it for appending.
func (l *Log) compact() error {
	if err := l.rewrite(); err != nil {
		return err
	}
	nf, err := os.OpenFile(l.path, os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return fmt.Errorf("event log: reopen after compaction: %w", err)
	}
	l.f.Close()
	l.f = nf
	return nil
}

// rewrite replaces the file with the events held in memory, atomically.
func (l *Log) rewrite() error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range l.events() {
		if err := enc.Encode(e); err != nil {
			return fmt.Errorf("event log: compact: %w", err)
		}
	}
	if err := atomicfile.Write(l.path, buf.Bytes(), 0o640); err != nil {
		return fmt.Errorf("event log: compact: %w", err)
	}
	l.lines = len(l.events())
	return nil
}

// Filter selects events. Zero fields match everything.
type Filter struct {
	From, To time.Time // inclusive bounds on Time
	Service  string    // events of this service or of any of its servers
	Server   string    // events of this server only
	// Director includes director-wide events (no service and no server)
	// alongside a Service or Server filter: a role change matters on
	// every graph.
	Director bool
	Limit    int // newest first when limited
}

func (f Filter) match(e *Event) bool {
	if !f.From.IsZero() && e.Time.Before(f.From) || !f.To.IsZero() && e.Time.After(f.To) {
		return false
	}
	if f.Service == "" && f.Server == "" {
		return true
	}
	if f.Director && e.Service == "" && e.Server == "" {
		return true
	}
	if f.Server != "" {
		return e.Server == f.Server
	}
	return e.Service == f.Service
}

// Query returns the matching events, oldest first (the newest Limit when
// Limit is set).
func (l *Log) Query(f Filter) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	// A linear scan: at most Max events, and a clock jump can leave them
	// out of time order, which would defeat a binary search.
	var out []Event
	evs := l.events()
	for i := range evs {
		if f.match(&evs[i]) {
			out = append(out, evs[i])
		}
	}
	if f.Limit > 0 && len(out) > f.Limit {
		out = out[len(out)-f.Limit:]
	}
	return out
}

// Since returns the events with a sequence number above seq, oldest
// first, at most limit of them (all when limit <= 0). Consumers that
// must not miss an event (alerting) keep the last seq they handled and
// call Since after each wake-up from Subscribe, whose channel may drop.
func (l *Log) Since(seq uint64, limit int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	evs := l.events()
	i, _ := slices.BinarySearchFunc(evs, seq+1, func(e Event, s uint64) int { return cmp.Compare(e.Seq, s) })
	out := evs[i:]
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return slices.Clone(out)
}

// LastSeq is the sequence number of the newest event (0 when empty).
func (l *Log) LastSeq() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.nextSeq - 1
}

// Subscribe delivers every later event to ch, once its line is synced,
// without blocking: a full channel misses the event (and the log says
// so), so give it room.
func (l *Log) Subscribe(ch chan<- Event) {
	l.mu.Lock()
	l.subs = append(l.subs, ch)
	l.mu.Unlock()
}

// Wake signals ch after every append (once its line is synced, like
// Subscribe), without blocking. It is for
// consumers that read with Since and only need to know that there is
// something new: a full ch already holds a pending wake-up, so a storm of
// events costs neither log lines nor lost events. A capacity of 1 is
// enough.
func (l *Log) Wake(ch chan<- struct{}) {
	l.mu.Lock()
	l.wakes = append(l.wakes, ch)
	l.mu.Unlock()
}

// Close closes the file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.f.Close()
}
