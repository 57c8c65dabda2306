package checker

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// OverrideEntry is one operator decision, as persisted.
type OverrideEntry struct {
	Mode  Override  `json:"mode"`
	Since time.Time `json:"since"`
	By    string    `json:"by,omitempty"` // who asked (API client address)
}

// Overrides are the operators' manual drains and disables, persisted in
// the data dir so that they survive restarts: a server drained for
// maintenance must not come back because lvsmon was upgraded.
type Overrides struct {
	path string
	mu   sync.Mutex
	m    map[string]OverrideEntry
}

// OpenOverrides reads dir/overrides.json (or starts empty).
func OpenOverrides(dir string) (*Overrides, error) {
	o := &Overrides{path: filepath.Join(dir, "overrides.json"), m: map[string]OverrideEntry{}}
	b, err := os.ReadFile(o.path)
	if errors.Is(err, os.ErrNotExist) {
		return o, nil
	}
	if err != nil {
		return nil, fmt.Errorf("overrides: %w", err)
	}
	if err := json.Unmarshal(b, &o.m); err != nil {
		return nil, fmt.Errorf("overrides: %s is damaged (fix or remove it): %w", o.path, err)
	}
	for id, e := range o.m {
		if e.Mode != Drain && e.Mode != Disable {
			return nil, fmt.Errorf("overrides: %s: server %s has unknown mode %q", o.path, id, e.Mode)
		}
	}
	return o, nil
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

// Entries returns a copy of every entry.
func (o *Overrides) Entries() map[string]OverrideEntry {
	o.mu.Lock()
	defer o.mu.Unlock()
	return maps.Clone(o.m)
}

// Set records a drain or disable (NoOverride clears) and persists it
// before returning; on a write error nothing changes.
func (o *Overrides) Set(id string, mode Override, by string) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	next := maps.Clone(o.m)
	if mode == NoOverride {
		delete(next, id)
	} else {
		next[id] = OverrideEntry{Mode: mode, Since: time.Now().UTC(), By: by}
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
