// Package sources runs the readers behind package ha's parsers: it sends
// keepalived its dump signal and follows its notify FIFO, lists the
// addresses on local interfaces, runs cl_status and crm_mon, and sniffs VRRP
// adverts on the wire. Each source turns what it reads into complete
// ha.Report values.
//
// The sources are separate because each one is wrong in its own way, and
// so they must be compared. keepalived's own view is the only one that
// tells BACKUP from FAULT, but it goes away when keepalived dies. A VIP on
// an interface outlives a crashed keepalived. Adverts on the wire show who
// the master is, and a second master means a split brain, but they cannot
// tell a BACKUP from a stopped node. Deciding what all of it means is left
// to the caller.
//
// Every source has the same shape: a struct with options, and
// Run(ctx, report), which blocks until ctx ends. Run calls report whenever
// the source's knowledge changes, and at least once per interval. report
// is called from Run's goroutine, one call at a time, and it gets a Report
// of its own that it may keep. Run returns nil when ctx ends. It returns an
// error only for options that can never work, such as a Pacemaker source
// without a resource. Failures that may go away (a command that times out,
// a dump that does not come) go into Report.Err and are tried again.
package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/ha"
)

// logger returns l, or a logger that drops everything when l is nil.
func logger(l *slog.Logger, source string) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.With("source", source)
}

// positive returns d, or def when d is zero or negative.
func positive(d, def time.Duration) time.Duration {
	if d <= 0 {
		return def
	}
	return d
}

// sleepCtx waits for d or until ctx ends, whichever comes first. It
// reports whether the whole d passed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// cloneReport copies r deeply enough that the receiver may keep it while
// the source goes on changing its own copy.
func cloneReport(r ha.Report) ha.Report {
	if r.Instances != nil {
		in := make([]ha.InstanceReport, len(r.Instances))
		for i, x := range r.Instances {
			if x.VIPs != nil {
				x.VIPs = append([]netip.Addr(nil), x.VIPs...)
			}
			in[i] = x
		}
		r.Instances = in
	}
	if r.VIPs != nil {
		r.VIPs = append([]ha.VIPPresence(nil), r.VIPs...)
	}
	if r.Routers != nil {
		rs := make([]ha.RouterReport, len(r.Routers))
		for i, x := range r.Routers {
			x.Masters = append([]ha.WireMaster(nil), x.Masters...)
			rs[i] = x
		}
		r.Routers = rs
	}
	return r
}

// procInfo is what /proc says about one process.
type procInfo struct {
	Alive bool   // exists and is neither a zombie nor dead
	Comm  string // the name of its executable, at most 15 bytes
	UID   uint32 // owner of /proc/PID: the process's effective uid
	// SafeSignal is set when signal Sig is caught, blocked or ignored by
	// the process, so that sending Sig cannot kill it. keepalived blocks
	// its signals and reads them from a signalfd, so its SigCgt is empty
	// and SigBlk has them.
	SafeSignal bool
}

// readProc reads /proc/PID for the checks before a signal is sent. A
// process that is gone reads as Alive false with no error.
func readProc(pid int, sig syscall.Signal) (procInfo, error) {
	var pi procInfo
	dir := "/proc/" + strconv.Itoa(pid)
	stat, err := os.ReadFile(dir + "/stat")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return pi, nil
		}
		return pi, err
	}
	// The state letter follows the last ')': comm itself may hold ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 || i+2 >= len(stat) {
		return pi, fmt.Errorf("%s/stat: unexpected format", dir)
	}
	if st := stat[i+2]; st == 'Z' || st == 'X' || st == 'x' {
		return pi, nil
	}
	comm, err := os.ReadFile(dir + "/comm")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return pi, nil
		}
		return pi, err
	}
	pi.Comm = strings.TrimSuffix(string(comm), "\n")
	fi, err := os.Stat(dir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return procInfo{}, nil
		}
		return pi, err
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		pi.UID = st.Uid
	}
	status, err := os.ReadFile(dir + "/status")
	if err != nil {
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, syscall.ESRCH) {
			return procInfo{}, nil
		}
		return pi, err
	}
	bit := uint64(1) << (uint(sig) - 1)
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(line, ":")
		if !ok || (k != "SigBlk" && k != "SigIgn" && k != "SigCgt") {
			continue
		}
		mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			return pi, fmt.Errorf("%s/status: %s: %w", dir, k, err)
		}
		if mask&bit != 0 {
			pi.SafeSignal = true
		}
	}
	pi.Alive = true
	return pi, nil
}

// maxToolOutput bounds what is kept of a command's output: crm_mon's XML
// for a big cluster is a few hundred KiB, and package ha refuses more than
// 16 MiB anyway.
const maxToolOutput = 16 << 20

// limitedBuffer keeps the first max bytes written to it and drops the rest,
// so a runaway command cannot fill the daemon's memory.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		if len(p) > room {
			b.Buffer.Write(p[:room])
		} else {
			b.Buffer.Write(p)
		}
	}
	return len(p), nil
}

// toolResult is one finished command.
type toolResult struct {
	Stdout, Stderr string
	Exit           int
}

// runTool runs name with args, bounded by timeout and by ctx, with the C
// locale so the texts the parsers look for are not translated. A non-zero
// exit is not an error: the tools use it to say "stopped". Not starting, a
// signal and the timeout are errors.
func runTool(parent context.Context, timeout time.Duration, name string, args ...string) (toolResult, error) {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C", "LANG=C")
	// A child the tool leaves behind could keep the pipes open; do not
	// wait for it after the tool itself is gone.
	cmd.WaitDelay = time.Second
	stdout := &limitedBuffer{max: maxToolOutput}
	stderr := &limitedBuffer{max: maxToolOutput}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	err := cmd.Run()
	res := toolResult{Stdout: stdout.String(), Stderr: stderr.String()}
	if err == nil {
		return res, nil
	}
	if parent.Err() != nil {
		return res, parent.Err()
	}
	if ctx.Err() != nil {
		return res, fmt.Errorf("no answer within %v: %w", timeout, ctx.Err())
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ee.ExitCode() >= 0 {
			res.Exit = ee.ExitCode()
			return res, nil
		}
		return res, fmt.Errorf("%s", ee.String()) // "signal: killed"
	}
	return res, err
}
