package sources

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/ha"
)

// keepalivedJSONSignal is `keepalived --signum=JSON` on Linux: SIGRTMIN+2,
// 36. On it keepalived writes $TMPDIR/keepalived.json.
const keepalivedJSONSignal = syscall.Signal(36)

// keepalivedDumpName is the file the dump signal makes keepalived write in
// its TMPDIR.
const keepalivedDumpName = "keepalived.json"

// keepalivedComm is the process name a keepalived pid file must lead to.
const keepalivedComm = "keepalived"

// Keepalived reads keepalived's own view of its VRRP instances. It combines
// two things keepalived offers, because neither is enough alone:
//
//   - The JSON dump (signal 36 makes keepalived write keepalived.json in
//     its TMPDIR) is the full picture: every instance with its state,
//     priority and VIPs. It is read at start, every Interval, on Refresh,
//     and whenever the FIFO says keepalived went away or came back.
//   - The vrrp_notify_fifo pushes one line per transition as it happens,
//     so it is fast. But it carries no initial state and no state after a
//     reload, and on a crash it says nothing at all (the reader just sees
//     EOF). So each line is applied to the last full picture, and every
//     EOF leads to a new dump. A line that comes while the last dump
//     failed still counts: keepalived wrote it, so it runs. The report
//     then lists only the instances the FIFO has named since.
//
// The pid file is also checked every second, so a keepalived that stops or
// starts is noticed even when the FIFO is not set or says nothing. A
// missing pid file, a pid that is gone or a pid file that names another
// program all read as "keepalived is stopped": Running false with no Err.
// Signal 36 kills a process that does not handle it, so it is only sent to
// a process named keepalived that blocks, catches or ignores it.
// A dump that does not come, or cannot be read, is an Err; Running is then
// true, since the process is known to be there.
//
// The dump holds the VRRP password (auth_data) in clear text. The file is
// removed as soon as it has been read, ha.ParseKeepalivedJSON does not
// keep the password, and nothing here logs the file's content.
type Keepalived struct {
	// PIDFile is keepalived's parent pid file (-p); default
	// /run/keepalived.pid.
	PIDFile string
	// DumpDir is keepalived's TMPDIR, where it writes keepalived.json;
	// default /tmp, which is what keepalived uses when TMPDIR is unset.
	DumpDir string
	// FIFO is the vrrp_notify_fifo path from keepalived.conf's
	// global_defs. Empty means no FIFO: only dumps, plus a check of the
	// pid every second.
	FIFO string
	// Interval is how often the dump is read even if nothing happened;
	// default 30s.
	Interval time.Duration
	// Log receives the source's own log lines; nil drops them.
	Log *slog.Logger

	// For tests; zero means the defaults below.
	dumpTimeout time.Duration // how long to wait for the dump; 2s
	pollEvery   time.Duration // pid check and FIFO back-off; 1s

	refreshOnce sync.Once
	refresh     chan struct{}
}

// Refresh asks a running Run for a new dump now. It never blocks: requests
// made while one is pending are merged into it.
func (k *Keepalived) Refresh() {
	select {
	case k.refreshChan() <- struct{}{}:
	default:
	}
}

func (k *Keepalived) refreshChan() chan struct{} {
	k.refreshOnce.Do(func() { k.refresh = make(chan struct{}, 1) })
	return k.refresh
}

// fifoEvent is one thing the FIFO follower saw: a line, or the end of a
// writer (eof). writer says whether a writer was there at all. An open
// that finds no writer gets EOF at once, and that says nothing new about
// keepalived.
type fifoEvent struct {
	line   string
	at     time.Time
	eof    bool
	writer bool
}

// Run reads keepalived until ctx ends. See Keepalived.
func (k *Keepalived) Run(ctx context.Context, report func(ha.Report)) error {
	log := logger(k.Log, ha.SourceKeepalived)
	interval := positive(k.Interval, 30*time.Second)
	poll := positive(k.pollEvery, time.Second)
	refresh := k.refreshChan()

	events := make(chan fifoEvent, 64)
	var wg sync.WaitGroup
	defer wg.Wait()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // before wg.Wait: stops the follower
	if k.FIFO != "" {
		wg.Go(func() { k.follow(ctx, log, events) })
	}

	var (
		last      ha.Report // last full picture, Transition never set
		lastAlive bool      // keepalived's process was there at the last dump
		warned    string    // last stale-pid warning, so it is logged once
	)
	apply := func(ev fifoEvent) {
		n, err := ha.ParseNotifyLine(ev.line)
		if err != nil {
			// The line cannot hold the password: keepalived writes only
			// names, states and priorities to the FIFO.
			log.Warn("skipping malformed notify FIFO line", "fifo", k.FIFO, "line", clip(ev.line, 256), "err", err)
			return
		}
		if n.Kind != ha.NotifyInstance {
			// A sync group's members get their own INSTANCE lines; the
			// group itself is not an instance.
			log.Debug("notify FIFO group line", "fifo", k.FIFO, "group", n.Name, "state", n.Event)
			return
		}
		r := cloneReport(last)
		r.Time, r.Err, r.Running = ev.at, nil, true
		found := false
		for i := range r.Instances {
			if in := &r.Instances[i]; in.Name == n.Name {
				in.State, in.Since = n.State, ev.at
				if n.HasPriority {
					in.Priority = int(n.Priority)
				}
				found = true
				break
			}
		}
		if !found {
			in := ha.InstanceReport{Name: n.Name, State: n.State, Since: ev.at}
			if n.HasPriority {
				in.Priority = int(n.Priority)
			}
			r.Instances = append(r.Instances, in)
		}
		last = r
		log.Debug("notify FIFO transition", "instance", n.Name, "state", n.Event, "priority", n.Priority)
		out := cloneReport(r)
		out.Transition = true
		report(out)
	}
	// full reads a new dump and reports it. Lines already queued are
	// applied first: they are older than the dump, and applying them
	// afterwards could put an old state over the new picture.
	full := func(why string) {
		for drained := false; !drained; {
			select {
			case ev := <-events:
				if !ev.eof {
					apply(ev)
				}
			default:
				drained = true
			}
		}
		r, alive, stale := k.dump(ctx, log)
		if ctx.Err() != nil {
			return
		}
		if stale != "" && stale != warned {
			log.Warn("keepalived pid file names a process that is not keepalived; treating keepalived as stopped", "pid_file", k.PIDFile, "process", stale)
		}
		warned = stale
		lastAlive = alive
		last = r
		if r.Err != nil {
			log.Warn("keepalived dump failed", "why", why, "err", r.Err)
		} else {
			log.Debug("keepalived dump", "why", why, "running", r.Running, "instances", len(r.Instances))
		}
		report(cloneReport(r))
	}
	// pidChanged reports whether keepalived appeared or went away since the
	// last dump. It is cheap (no signal), so it runs every second.
	pidChanged := func() bool {
		_, alive, _, err := k.process()
		return err == nil && alive != lastAlive
	}

	full("start")
	tick := time.NewTicker(interval)
	defer tick.Stop()
	pidTick := time.NewTicker(poll)
	defer pidTick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
			full("interval")
		case <-refresh:
			full("refresh")
		case <-pidTick.C:
			if pidChanged() {
				full("process appeared or went away")
			}
		case ev := <-events:
			switch {
			case !ev.eof:
				apply(ev)
			case ev.writer:
				// keepalived closed the FIFO: it stopped, crashed or
				// reloaded. Only a dump tells which; after a reload no
				// line will come.
				full("notify FIFO closed")
			case pidChanged():
				full("process appeared or went away")
			}
		}
		if ctx.Err() != nil {
			return nil
		}
	}
}

// process reads the pid file and checks the process. alive is false, with
// no error, when there is no pid file or no such process. stale names the
// process when the pid file leads to something that is not keepalived.
func (k *Keepalived) process() (pid int, alive bool, stale string, err error) {
	path := k.pidFile()
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, "", nil
	}
	if err != nil {
		return 0, false, "", fmt.Errorf("keepalived: pid file %s: %w", path, err)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		if len(strings.TrimSpace(string(data))) == 0 {
			// keepalived creates the file and then writes it.
			return 0, false, "", fmt.Errorf("keepalived: pid file %s is empty", path)
		}
		return 0, false, "", fmt.Errorf("keepalived: pid file %s holds %q, not a pid", path, clip(string(data), 32))
	}
	pi, err := readProc(pid, keepalivedJSONSignal)
	if err != nil {
		return pid, false, "", fmt.Errorf("keepalived: pid %d from %s: %w", pid, path, err)
	}
	if !pi.Alive {
		return pid, false, "", nil
	}
	if pi.Comm != keepalivedComm {
		// A pid file keepalived did not remove (SIGKILL) whose number
		// now belongs to another program. keepalived would have written
		// its own pid, so it is not running.
		return pid, false, fmt.Sprintf("pid %d %q", pid, pi.Comm), nil
	}
	return pid, true, "", nil
}

func (k *Keepalived) pidFile() string {
	if k.PIDFile == "" {
		return "/run/keepalived.pid"
	}
	return k.PIDFile
}

func (k *Keepalived) dumpPath() string {
	dir := k.DumpDir
	if dir == "" {
		dir = "/tmp"
	}
	return filepath.Join(dir, keepalivedDumpName)
}

// dump asks keepalived for its JSON dump and reads it. alive says whether
// keepalived's process was there.
func (k *Keepalived) dump(ctx context.Context, log *slog.Logger) (r ha.Report, alive bool, stale string) {
	r = ha.Report{Source: ha.SourceKeepalived, Time: time.Now()}
	pid, alive, stale, err := k.process()
	if err != nil || !alive {
		r.Err = err
		return r, false, stale
	}
	// From here on keepalived's process is known to run, also when its
	// dump cannot be had.
	r.Running = true
	path := k.dumpPath()
	// An old dump would be taken for the new one.
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		r.Err = fmt.Errorf("keepalived: removing old dump %s: %w", path, err)
		return r, true, ""
	}
	timeout := positive(k.dumpTimeout, 2*time.Second)
	deadline := time.Now().Add(timeout)
	const step = 20 * time.Millisecond

	// Signal 36's default action kills the process. keepalived blocks
	// its signals and reads them from a signalfd, but only once it has
	// set that up; a keepalived that has just started, or another
	// program that got keepalived's old pid, would die. So the signal is
	// only sent when it is blocked, caught or ignored.
	var pi procInfo
	for {
		pi, err = readProc(pid, keepalivedJSONSignal)
		if err != nil {
			r.Err = fmt.Errorf("keepalived: pid %d from %s: %w", pid, k.pidFile(), err)
			return r, true, ""
		}
		if !pi.Alive {
			r.Running = false
			return r, false, ""
		}
		if pi.SafeSignal {
			break
		}
		if !time.Now().Before(deadline) {
			r.Err = fmt.Errorf("keepalived: pid %d from %s does not handle signal %d (still starting?); no dump requested", pid, k.pidFile(), int(keepalivedJSONSignal))
			return r, true, ""
		}
		if !sleepCtx(ctx, step) {
			return r, true, ""
		}
	}
	if err := unix.Kill(pid, keepalivedJSONSignal); err != nil {
		if errors.Is(err, unix.ESRCH) {
			r.Running = false
			return r, false, ""
		}
		r.Err = fmt.Errorf("keepalived: sending signal %d to pid %d from %s: %w", int(keepalivedJSONSignal), pid, k.pidFile(), err)
		return r, true, ""
	}
	// The file holds the password: never leave it behind, whatever
	// happens below.
	defer func() {
		if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			log.Warn("cannot remove keepalived dump (it holds the VRRP password)", "file", path, "err", err)
		}
	}()
	var lastErr error
	for {
		if !sleepCtx(ctx, step) {
			return r, true, ""
		}
		instances, err := readDump(path, pi.UID)
		if err == nil {
			r.Time = time.Now()
			r.Instances = instanceReports(instances)
			return r, true, ""
		}
		lastErr = err
		if errors.Is(err, fs.ErrNotExist) {
			// keepalived may have died before writing it.
			if p, err := readProc(pid, keepalivedJSONSignal); err == nil && !p.Alive {
				r.Running = false
				return r, false, ""
			}
		}
		if !time.Now().Before(deadline) {
			break
		}
	}
	if errors.Is(lastErr, fs.ErrNotExist) {
		r.Err = fmt.Errorf("keepalived: no dump %s within %v of signal %d to pid %d (is DumpDir keepalived's TMPDIR?): %w",
			path, timeout, int(keepalivedJSONSignal), pid, lastErr)
	} else {
		r.Err = fmt.Errorf("keepalived: dump %s: %w", path, lastErr)
	}
	return r, true, ""
}

// readDump reads and parses the dump at path. It refuses anything but a
// regular file owned by keepalived's uid: the default dump directory, /tmp,
// is writable by everyone, and a file planted there must not be taken for
// keepalived's view.
func readDump(path string, uid uint32) ([]ha.Instance, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%v)", fi.Mode().Type())
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != uid {
		return nil, fmt.Errorf("owned by uid %d, but keepalived runs as uid %d", st.Uid, uid)
	}
	return ha.ParseKeepalivedJSON(f)
}

// instanceReports turns the dump's instances into report entries.
func instanceReports(in []ha.Instance) []ha.InstanceReport {
	out := make([]ha.InstanceReport, 0, len(in))
	for _, x := range in {
		r := ha.InstanceReport{
			Name:     x.Name,
			VRID:     int(x.VRID),
			State:    x.State,
			Priority: int(x.Priority),
			Since:    x.LastTransition,
		}
		if len(x.VIPs) > 0 {
			r.VIPs = make([]netip.Addr, len(x.VIPs))
			for i, p := range x.VIPs {
				r.VIPs[i] = p.Addr()
			}
		}
		out = append(out, r)
	}
	return out
}

// fifoLineMax bounds one FIFO line. keepalived's lines are a name, a state
// and a number; anything longer is not from keepalived and is skipped.
const fifoLineMax = 4096

// follow reads the notify FIFO until ctx ends, sending every line and
// every EOF to out.
//
// The FIFO is opened O_RDONLY|O_NONBLOCK, so the open never waits for a
// writer. keepalived holds the FIFO open read-write while it runs, which
// keeps lines written before the open in the pipe. When keepalived
// closes it (stop, crash, reload) the reader gets EOF. An open with no
// writer at all gets EOF at once; then follow waits a second before
// opening again, so it does not spin while keepalived is down. When the
// path does not exist (keepalived removes it on exit and creates it at
// start), follow waits and tries again.
func (k *Keepalived) follow(ctx context.Context, log *slog.Logger, out chan<- fifoEvent) {
	backoff := positive(k.pollEvery, time.Second)
	var lastOpenErr string
	for ctx.Err() == nil {
		f, err := os.OpenFile(k.FIFO, os.O_RDONLY|syscall.O_NONBLOCK, 0)
		if err == nil {
			if fi, serr := f.Stat(); serr != nil || fi.Mode()&fs.ModeNamedPipe == 0 {
				f.Close()
				f, err = nil, fmt.Errorf("%s is not a FIFO", k.FIFO)
				if serr != nil {
					err = serr
				}
			}
		}
		if err != nil {
			if msg := err.Error(); msg != lastOpenErr {
				lastOpenErr = msg
				if errors.Is(err, fs.ErrNotExist) {
					log.Debug("notify FIFO does not exist (yet); waiting for keepalived to create it", "fifo", k.FIFO)
				} else {
					log.Warn("cannot open notify FIFO", "fifo", k.FIFO, "err", err)
				}
			}
			sleepCtx(ctx, backoff)
			continue
		}
		lastOpenErr = ""
		writer := k.readFIFO(ctx, f, log, out)
		f.Close()
		if ctx.Err() != nil {
			return
		}
		select {
		case out <- fifoEvent{eof: true, writer: writer, at: time.Now()}:
		case <-ctx.Done():
			return
		}
		if !writer {
			sleepCtx(ctx, backoff)
		}
	}
}

// readFIFO sends f's lines to out until EOF or ctx ends. It reports
// whether a writer was there at some point.
func (k *Keepalived) readFIFO(ctx context.Context, f *os.File, log *slog.Logger, out chan<- fifoEvent) bool {
	rc, err := f.SyscallConn()
	if err != nil {
		log.Warn("notify FIFO", "fifo", k.FIFO, "err", err)
		return false
	}
	stop := context.AfterFunc(ctx, func() { _ = f.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	fr := &fifoReader{rc: rc}
	br := bufio.NewReaderSize(fr, fifoLineMax)
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			log.Warn("skipping notify FIFO line longer than the limit", "fifo", k.FIFO, "limit", fifoLineMax, "start", clip(string(line), 64))
			for errors.Is(err, bufio.ErrBufferFull) {
				_, err = br.ReadSlice('\n')
			}
			if err != nil {
				break
			}
			continue
		}
		if len(line) > 0 && (err == nil || err == io.EOF) {
			ev := fifoEvent{line: strings.TrimRight(string(line), "\r\n"), at: time.Now()}
			select {
			case out <- ev:
			case <-ctx.Done():
				return fr.writer
			}
		}
		if err != nil {
			if err != io.EOF && ctx.Err() == nil {
				log.Warn("reading notify FIFO", "fifo", k.FIFO, "err", err)
			}
			return fr.writer
		}
	}
	return fr.writer
}

// fifoReader reads a non-blocking FIFO through the runtime poller and
// notes whether a writer was there: with a writer, an empty FIFO returns
// EAGAIN (and the poller waits); without one, read returns 0 at once.
type fifoReader struct {
	rc     syscall.RawConn
	writer bool
}

func (r *fifoReader) Read(p []byte) (int, error) {
	var n int
	var rerr error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				break
			}
		}
		if rerr == unix.EAGAIN {
			r.writer = true
			return false // wait for data or EOF
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	if rerr != nil {
		return 0, rerr
	}
	if n == 0 {
		return 0, io.EOF
	}
	r.writer = true
	return n, nil
}

// clip cuts s to at most n bytes for a log line.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
