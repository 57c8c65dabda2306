package reconcile

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// OverrideEntry is one operator decision, as persisted.
type OverrideEntry struct {
	Mode  Override  `json:"mode"`
	Since time.Time `json:"since"`
	By    string    `json:"by,omitempty"` // who asked (API client address)
	// Comment is the operator's why ("kernel upgrade, OPS-123"), shown
	// with the override.
	Comment string `json:"comment,omitempty"`
}

// Overrides are the operators' manual drains and disables, persisted in
// the data dir so that they survive restarts: a server drained for
// maintenance must not come back because lvsmon was upgraded.
//
// A damaged file never stops a start, and never loses more than the
// damage: what can be read is kept (entry by entry; a truncated file
// keeps its complete entries, an entry with an unknown mode is dropped
// and named), the damaged file is kept in DATA_DIR/corrupt/, the file is
// rewritten with what was kept, and Problem says what happened until the
// next start.
type Overrides struct {
	path    string
	mu      sync.Mutex
	m       map[string]OverrideEntry
	problem string
}

// OpenOverrides reads dir/overrides.json (or starts empty), logging to
// slog's default logger; see OpenOverridesLog.
func OpenOverrides(dir string) (*Overrides, error) {
	return OpenOverridesLog(dir, slog.Default())
}

// OpenOverridesLog reads dir/overrides.json (or starts empty). It fails
// only when the file cannot be read at all (permissions, I/O): starting
// without the operators' drains would put drained servers back into
// service. Damage in the file is handled as Overrides says and logged
// as an error. Temporary files of a write that a crash interrupted are
// removed.
func OpenOverridesLog(dir string, log *slog.Logger) (*Overrides, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	o := &Overrides{path: filepath.Join(dir, overridesFile), m: map[string]OverrideEntry{}}
	if n, err := atomicfile.CleanTemps(dir, overridesFile); err != nil {
		log.Warn("overrides: cannot remove the temporary file of an interrupted write", "dir", dir, "err", err)
	} else if n > 0 {
		log.Info("overrides: removed the temporary file of an interrupted write", "dir", dir, "files", n)
	}
	b, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	m, dropped, damage := decodeOverrides(b)
	o.m = m
	if damage == nil && len(dropped) == 0 {
		return o, nil
	}
	var what []string
	if damage != nil {
		what = append(what, damage.Error())
	}
	what = append(what, dropped...)
	problem := fmt.Sprintf("%s was damaged (%s); %d override(s) kept", o.path, strings.Join(what, "; "), len(m))
	aside, kerr := atomicfile.KeepAside(o.path)
	if kerr != nil {
		problem += fmt.Sprintf("; no copy of the damaged file could be kept: %v", kerr)
	} else {
		problem += "; the damaged file is kept as " + aside
	}
	if werr := writeAtomic(o.path, m); werr != nil {
		problem += fmt.Sprintf("; rewriting it failed (damaged again at the next start): %v", werr)
	}
	o.problem = problem
	log.Error("overrides: the file was damaged; the overrides that could be read are kept, check the others",
		"file", o.path, "kept", len(m), "dropped", dropped, "err", damage, "copy", aside, "copy_err", kerr)
	return o, nil
}

const overridesFile = "overrides.json"

// decodeOverrides reads an overrides file entry by entry. It returns the
// entries that are complete and valid, the error that stopped the
// reading (nil when the file was read to its end) and a description of
// each entry it dropped.
func decodeOverrides(b []byte) (m map[string]OverrideEntry, dropped []string, damage error) {
	m = map[string]OverrideEntry{}
	if len(bytes.TrimSpace(b)) == 0 {
		return m, nil, errors.New("the file is empty")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	at := func(err error) error { return fmt.Errorf("at byte %d: %w", dec.InputOffset(), err) }
	tok, err := dec.Token()
	if err != nil {
		return m, nil, at(err)
	}
	if tok == nil { // null: no overrides
		return m, nil, trailing(dec)
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return m, nil, fmt.Errorf("not a JSON object of overrides (starts with %v)", tok)
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return m, dropped, at(err)
		}
		id, _ := tok.(string)
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return m, dropped, at(fmt.Errorf("server %s: %w", id, err))
		}
		var e OverrideEntry
		switch err := json.Unmarshal(raw, &e); {
		case err != nil:
			dropped = append(dropped, fmt.Sprintf("server %s dropped: %v", id, err))
		case e.Mode != Drain && e.Mode != Disable:
			dropped = append(dropped, fmt.Sprintf("server %s dropped: unknown mode %q", id, e.Mode))
		default:
			m[id] = e
		}
	}
	if _, err := dec.Token(); err != nil { // the closing brace
		return m, dropped, at(err)
	}
	return m, dropped, trailing(dec)
}

// trailing reports anything but white space after the document.
func trailing(dec *json.Decoder) error {
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return fmt.Errorf("at byte %d: data after the end of the overrides", dec.InputOffset())
	}
	return nil
}

// Problem describes the damage found in the file when it was opened, or
// is "" when it was fine. It stays until the next start, for the status
// page: an operator must check the overrides that were dropped.
func (o *Overrides) Problem() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.problem
}

// All returns the modes by real-server id.
func (o *Overrides) All() map[string]Override {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make(map[string]Override, len(o.m))
	for id, e := range o.m {
		out[id] = e.Mode
	}
	return out
}

// Get returns one server's entry.
func (o *Overrides) Get(id string) (OverrideEntry, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	e, ok := o.m[id]
	return e, ok
}

// Entries returns a copy of every entry.
func (o *Overrides) Entries() map[string]OverrideEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.m)
}

// Set records a drain or disable (NoOverride clears) and persists it
// before returning; on a write error nothing changes.
func (o *Overrides) Set(id string, mode Override, by string) error {
	return o.SetWithComment(id, mode, by, "")
}

// SetWithComment is Set with the operator's comment kept in the entry.
func (o *Overrides) SetWithComment(id string, mode Override, by, comment string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next := maps.Clone(o.m)
	if mode == NoOverride {
		delete(next, id)
	} else {
		next[id] = OverrideEntry{Mode: mode, Since: time.Now().UTC(), By: by, Comment: comment}
	}
	if err := writeAtomic(o.path, next); err != nil {
		return err
	}
	o.m = next
	return nil
}

func writeAtomic(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o750); err != nil {
		return fmt.Errorf("overrides: %w", err)
	}
	if err := atomicfile.Write(path, append(b, '\n'), 0o640); err != nil {
		return fmt.Errorf("overrides: %w", err)
	}
	return nil
}
