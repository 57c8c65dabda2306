package probe

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"syscall"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	RegisterWeight(config.CheckType{Name: "file", Keys: []string{"file", "weight", "reverse"}, NoPort: true}, probeFile)
}

// MaxCheckFile bounds what a file check reads: one number, not a
// document. A longer file is not trusted (something else was written
// there).
const MaxCheckFile = 4096

// InconclusiveError is a check that could not judge the server because
// its own input failed it (a file check's file missing, unreadable or
// not a number): the checker counts it inconclusive and changes
// nothing, rather than take a healthy server out for it.
type InconclusiveError struct{ Err error }

func (e InconclusiveError) Error() string { return e.Err.Error() }
func (e InconclusiveError) Unwrap() error { return e.Err }

// probeFile is the file check, keepalived's FILE_CHECK with its
// track_file: the file holds one integer (decimal, or 0x hex and 0
// octal as strtol reads them), read afresh every interval. With weight
// 0 the value is health only: 0 passes and anything else fails (the
// other way round with reverse). Otherwise value × weight (negated with
// reverse) is added to the server's configured weight (below 0 the
// weight is 0, the server still up), and a product at or below -2^31
// fails, as keepalived's fault.
//
// Where keepalived reads a missing, unreadable or empty file as 0 and
// text that is not a number as its leading digits (or 0), which can
// take a healthy server out (weight 0 reverse) or move its weight on a
// half-written file, lvsmon is inconclusive: the last verdict and
// weight stand, and the checker says so. A value out of keepalived's
// range (-2^31 to 2^31) is inconclusive too; keepalived ignores it.
func probeFile(ctx context.Context, _ Target, c *config.Check) (Weight, error) {
	if err := ctx.Err(); err != nil {
		return Weight{}, InconclusiveError{fmt.Errorf("file: %s not read: %w", c.File, reason(ctx, err, c))}
	}
	v, err := readCheckFile(ctx, c.File)
	switch {
	case err != nil && ctx.Err() != nil:
		// A file system that does not answer is the director's trouble.
		return Weight{}, InconclusiveError{fmt.Errorf("file: %s: %w", c.File, reason(ctx, ctx.Err(), c))}
	case err != nil:
		return Weight{}, InconclusiveError{fmt.Errorf("file: %w", err)}
	}
	return fileVerdict(c, v)
}

// fileVerdict turns a file check's value into its result.
func fileVerdict(c *config.Check, v int64) (Weight, error) {
	w := int64(c.FileWeight())
	if w == 0 {
		if (v != 0) != c.Reverse {
			want := "0"
			if c.Reverse {
				want = "not 0"
			}
			return Weight{}, fmt.Errorf("file: %s holds %d, want %s", c.File, v, want)
		}
		return Weight{}, nil
	}
	s := v * w
	if c.Reverse {
		s = -s
	}
	if s <= math.MinInt32 {
		return Weight{}, fmt.Errorf("file: %s holds %d: times weight %d is %d, at or below -2^31 (keepalived's fault)", c.File, v, w, s)
	}
	return Weight{Kind: WeightAdd, Value: s}, nil
}

// readCheckFile reads and parses a file check's file, bounded by ctx: a
// read that hangs (a dead network file system) is given up at the
// timeout, its goroutine left to end when the read does.
func readCheckFile(ctx context.Context, path string) (int64, error) {
	type result struct {
		b   []byte
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := readBounded(path)
		done <- result{b, err}
	}()
	select {
	case <-ctx.Done():
		return 0, ctx.Err()
	case r := <-done:
		if r.err != nil {
			return 0, r.err
		}
		return ParseCheckFile(path, r.b)
	}
}

// readBounded reads at most MaxCheckFile bytes of a regular file. The
// file is opened non-blocking, so a FIFO put in its place cannot hang
// the check.
func readBounded(path string) ([]byte, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxCheckFile+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(b) > MaxCheckFile {
		return nil, fmt.Errorf("%s is longer than %s: not one number", path, byteSize(MaxCheckFile))
	}
	return b, nil
}

// errEmptyFile is a file check's file with nothing in it (being
// rewritten, most likely).
var errEmptyFile = errors.New("is empty")

// ParseCheckFile reads a file check's content: one integer, with
// blanks and a newline around it, in decimal, 0x hex or 0 octal, from
// -2^31 to 2^31 (keepalived's range). Anything else is refused, never
// read as 0.
func ParseCheckFile(path string, b []byte) (int64, error) {
	s := strings.TrimSpace(string(b))
	if s == "" {
		return 0, fmt.Errorf("%s %w", path, errEmptyFile)
	}
	if strings.ContainsAny(s, "_ \t\r\n") {
		return 0, fmt.Errorf("%s holds %s, not one number", path, excerpt([]byte(s)))
	}
	orig := s
	if len(s) > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9' {
		s = "0o" + s[1:] // strtol's octal
	} else if len(s) > 2 && (s[0] == '-' || s[0] == '+') && s[1] == '0' && s[2] >= '0' && s[2] <= '9' {
		s = s[:1] + "0o" + s[2:]
	}
	v, err := strconv.ParseInt(s, 0, 64)
	if err != nil {
		return 0, fmt.Errorf("%s holds %s, not a number", path, excerpt([]byte(orig)))
	}
	if v < math.MinInt32 || v > math.MaxInt32+1 {
		return 0, fmt.Errorf("%s holds %d, out of range -2^31 to 2^31", path, v)
	}
	return v, nil
}
