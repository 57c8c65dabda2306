package selfcheck

import (
	"context"
	"fmt"
	"strconv"

	"github.com/lvsmon/lvsmon/internal/atomicfile"
)

// TrackFile is keepalived's track_file (keepalived ≥ 2.0): keepalived
// watches the file and adds its value (times the weight in
// keepalived.conf, default 1) to the instance's priority. Sick writes
// Weight, so the priority drops below the peer's and the peer's next
// advert wins (keepalived preempts on priority); healthy writes 0. A
// value whose product is below -253 puts the instance in FAULT instead.
//
// The file is replaced atomically (write and rename), so keepalived never
// reads a half-written number.
type TrackFile struct {
	Path   string
	Weight int
}

// Name implements Action.
func (t TrackFile) Name() string { return "keepalived track_file " + t.Path }

// Set implements Action.
func (t TrackFile) Set(_ context.Context, sick bool) error {
	v := 0
	if sick {
		v = t.Weight
	}
	if err := atomicfile.Write(t.Path, []byte(strconv.Itoa(v)+"\n"), 0o644); err != nil {
		return fmt.Errorf("track file: %w", err)
	}
	return nil
}

// Reset implements Resetter: the file says healthy.
func (t TrackFile) Reset(ctx context.Context) error { return t.Set(ctx, false) }
