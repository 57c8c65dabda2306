package alerting

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// DefaultMaxEntries is how many entries of one channel (the mails, one
// webhook's deliveries) the outbox holds when the caller does not say.
const DefaultMaxEntries = 1000

// ErrOutboxFull is returned by Put when the outbox already holds its
// maximum: the mail is refused, loudly, never dropped silently.
var ErrOutboxFull = errors.New("outbox full")

// ErrNotFound is returned for an id the outbox does not hold.
var ErrNotFound = errors.New("outbox: no such entry")

// Entry is one queued delivery (a mail, or a webhook's request) and its
// delivery state. Files written before webhooks existed hold a mail and
// no Webhook, and read as they always did.
type Entry struct {
	ID string `json:"id"`
	// Mail is the mail, when Webhook is nil.
	Mail Mail `json:"mail,omitzero"`
	// Webhook is a webhook delivery; nil for a mail.
	Webhook *Delivery `json:"webhook,omitempty"`
	Created time.Time `json:"created"`
	// Attempts is how many delivery attempts failed so far.
	Attempts int `json:"attempts"`
	// NextAttempt is when to try again; zero means now.
	NextAttempt time.Time `json:"next_attempt,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	LastAttempt time.Time `json:"last_attempt,omitzero"`
	// Permanent is set when the server refused the mail with a 5xx reply
	// (a webhook's receiver with a 4xx other than 408 and 429): it is
	// kept (and reported) but not retried until Requeue.
	Permanent bool `json:"permanent,omitempty"`
}

// MailChannel is the Channel of mails.
const MailChannel = "mail"

// WebhookChannel is the Channel of the deliveries of the webhook named
// name.
func WebhookChannel(name string) string { return "webhook:" + name }

// Channel names who delivers the entry: MailChannel or
// WebhookChannel(name). Each channel has its own Dispatcher, so a
// receiver that is down delays nobody else.
func (e *Entry) Channel() string {
	if e.Webhook != nil {
		return WebhookChannel(e.Webhook.Hook)
	}
	return MailChannel
}

// Subject is the entry's one line for logs.
func (e *Entry) Subject() string {
	if e.Webhook != nil {
		return fmt.Sprintf("webhook %s: %d events", e.Webhook.Hook, len(e.Webhook.EventSeqs))
	}
	return e.Mail.Subject
}

func (e *Entry) copy() Entry {
	c := *e
	c.Mail.To = append([]string(nil), e.Mail.To...)
	c.Mail.EventSeqs = append([]uint64(nil), e.Mail.EventSeqs...)
	if e.Webhook != nil {
		w := *e.Webhook
		w.EventSeqs = append([]uint64(nil), w.EventSeqs...)
		c.Webhook = &w
	}
	return c
}

// Outbox is a durable queue of mails, one JSON file per mail in a
// directory (data_dir/outbox). A mail is on disk (written to a temporary
// file, fsynced, renamed, directory fsynced) before Put returns, so it is
// never sent before it is safe. It is safe for concurrent use.
type Outbox struct {
	dir string
	max int
	log *slog.Logger
	now func() time.Time

	mu      sync.Mutex
	entries map[string]*Entry
	lastID  int64
	corrupt []string // files moved aside, as their new paths
}

const entryExt = ".json"

// OpenOutbox reads (or creates) the outbox in dir. Files that cannot be
// read are moved into dir/corrupt (atomicfile.MoveAside: never deleted), logged, and listed by
// Corrupt. Leftover temporary files of an interrupted Put are removed:
// that Put never returned success.
func OpenOutbox(dir string, max int, log *slog.Logger) (*Outbox, error) {
	if max <= 0 {
		max = DefaultMaxEntries
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	o := &Outbox{dir: dir, max: max, log: log, now: time.Now, entries: map[string]*Entry{}}
	// Leftover temporaries of an interrupted Put: that Put never returned
	// success. One that cannot be removed is in nobody's way.
	if n, err := atomicfile.CleanTemps(dir, ""); err != nil {
		log.Warn("outbox: cannot remove the temporary file of an interrupted write", "dir", dir, "err", err)
	} else if n > 0 {
		log.Warn("outbox: removed the temporary files of interrupted writes", "dir", dir, "files", n)
	}
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("outbox: %w", err)
	}
	for _, de := range des {
		name := de.Name()
		path := filepath.Join(dir, name)
		switch {
		case de.IsDir():
			continue
		case strings.HasSuffix(name, ".tmp"): // an older lvsmon's temporaries
			log.Warn("outbox: removing the temporary file of an interrupted write", "file", path)
			if err := os.Remove(path); err != nil {
				log.Warn("outbox: cannot remove a temporary file", "file", path, "err", err)
			}
			continue
		case !strings.HasSuffix(name, entryExt):
			continue
		}
		e, err := readEntry(path)
		if err == nil && e.ID+entryExt != name {
			err = fmt.Errorf("entry id %q does not match the file name", e.ID)
		}
		if err != nil {
			moved, merr := o.moveAside(path)
			if merr != nil {
				return nil, fmt.Errorf("outbox: %s is unreadable (%v) and cannot be moved aside: %w", path, err, merr)
			}
			log.Error("outbox: moved an unreadable mail aside", "file", path, "to", moved, "err", err)
			o.corrupt = append(o.corrupt, moved)
			continue
		}
		o.entries[e.ID] = e
		if n, err := strconv.ParseInt(e.ID, 10, 64); err == nil && n > o.lastID {
			o.lastID = n
		}
	}
	return o, nil
}

func readEntry(path string) (*Entry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var e Entry
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, err
	}
	if e.ID == "" {
		return nil, errors.New("entry has no id")
	}
	if e.Webhook != nil {
		if err := e.Webhook.Validate(); err != nil {
			return nil, err
		}
		return &e, nil
	}
	if err := e.Mail.Validate(); err != nil {
		return nil, err
	}
	return &e, nil
}

func (o *Outbox) moveAside(path string) (string, error) {
	return atomicfile.MoveAside(path)
}

// Dir is the directory the outbox lives in.
func (o *Outbox) Dir() string { return o.dir }

// Corrupt lists the files that were moved aside when the outbox was
// opened, so the status API can report them.
func (o *Outbox) Corrupt() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]string(nil), o.corrupt...)
}

// Len is how many mails are queued, permanent failures included.
func (o *Outbox) Len() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.entries)
}

// Put stores m durably; only then may it be sent. A mail without a
// Message-ID or Date gets them here, before it is written, so they are
// fixed from now on. When the outbox is full Put fails with an error
// wrapping ErrOutboxFull.
func (o *Outbox) Put(m Mail) error {
	now := o.now()
	if m.Date.IsZero() {
		m.Date = now
	}
	if m.MessageID == "" {
		m.MessageID = NewMessageID(m.From, now)
	}
	if err := m.Validate(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return o.put(&Entry{Mail: m, Created: now})
}

// PutWebhook stores a webhook delivery durably, as Put a mail. A
// delivery without an ID gets one here.
func (o *Outbox) PutWebhook(d Delivery) error {
	now := o.now()
	if d.ID == "" {
		d.ID = NewMessageID("", now)
	}
	if err := d.Validate(); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return o.put(&Entry{Webhook: &d, Created: now})
}

func (o *Outbox) put(e *Entry) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	// The limit is per channel: a webhook whose receiver is gone for
	// days fills its own share, never mail's.
	ch, n := e.Channel(), 0
	for _, x := range o.entries {
		if x.Channel() == ch {
			n++
		}
	}
	if n >= o.max {
		return fmt.Errorf("outbox: %w: %d entries of %s are waiting in %s (the limit); %q not queued", ErrOutboxFull, n, ch, o.dir, e.Subject())
	}
	// Ids are decimal nanosecond stamps, strictly increasing, zero padded
	// so that name order is queue order.
	id := e.Created.UnixNano()
	if id <= o.lastID {
		id = o.lastID + 1
	}
	e.ID = fmt.Sprintf("%019d", id)
	if err := o.write(e); err != nil {
		return err
	}
	o.lastID = id
	o.entries[e.ID] = e
	return nil
}

// Drop takes an entry out of the queue for good without delivering it
// (its channel was removed from the config): the file moves to
// dir/dropped, never deleted, so an operator can still read it.
func (o *Outbox) Drop(id string) (string, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.entries[id]; !ok {
		return "", fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	dropped := filepath.Join(o.dir, "dropped")
	if err := os.MkdirAll(dropped, 0o750); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	to := filepath.Join(dropped, id+entryExt)
	if err := os.Rename(o.path(id), to); err != nil {
		return "", fmt.Errorf("outbox: %w", err)
	}
	delete(o.entries, id)
	if err := syncDir(o.dir); err != nil {
		return to, fmt.Errorf("outbox: %w", err)
	}
	return to, syncDir(dropped)
}

// Pending lists the queued entries oldest first, permanent failures
// included (see Entry.Permanent). The entries are copies.
func (o *Outbox) Pending() []Entry {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]Entry, 0, len(o.entries))
	for _, e := range o.entries {
		out = append(out, e.copy())
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// Done removes a mail the server accepted.
func (o *Outbox) Done(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, ok := o.entries[id]; !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err := os.Remove(o.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("outbox: %w", err)
	}
	delete(o.entries, id)
	if err := syncDir(o.dir); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

// Failed records a failed attempt: one more attempt, the error, and when
// to try next. A permanent error (IsPermanent) marks the entry permanent;
// it stays in the outbox but is not retried. The state is written to disk,
// so backoff survives a restart.
func (o *Outbox) Failed(id string, err error, next time.Time) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.entries[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	c := *e
	c.Attempts++
	c.LastAttempt = o.now()
	c.NextAttempt = next
	c.LastError = "unknown error"
	if err != nil {
		c.LastError = err.Error()
	}
	c.Permanent = IsPermanent(err)
	if werr := o.write(&c); werr != nil {
		return werr
	}
	*e = c
	return nil
}

// Requeue clears the permanent mark of an entry (after the operator fixed
// what the server complained about) so it is tried again now.
func (o *Outbox) Requeue(id string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.entries[id]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	c := *e
	c.Permanent = false
	c.NextAttempt = time.Time{}
	if err := o.write(&c); err != nil {
		return err
	}
	*e = c
	return nil
}

func (o *Outbox) path(id string) string { return filepath.Join(o.dir, id+entryExt) }

// write stores e atomically (see atomicfile.Write).
func (o *Outbox) write(e *Entry) error {
	b, err := json.MarshalIndent(e, "", "  ")
	if err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	if err := atomicfile.Write(o.path(e.ID), append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("outbox: %w", err)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", dir, err)
	}
	return nil
}
