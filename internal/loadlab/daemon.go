package loadlab

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Build compiles the lvsmon binary into dir (without -race: the timings
// under load are the real build's) and returns its path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "lvsmon")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/lvsmon/lvsmon/cmd/lvsmon")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// LogLine is one line of lvsmon's JSON log.
type LogLine struct {
	Time   time.Time
	Level  string
	Msg    string
	Fields map[string]any
	Raw    string
}

// Str is a field as a string ("" when absent).
func (l LogLine) Str(k string) string {
	switch v := l.Fields[k].(type) {
	case string:
		return v
	case nil:
		return ""
	default:
		return fmt.Sprint(v)
	}
}

// Daemon is a running lvsmon.
type Daemon struct {
	cmd  *exec.Cmd
	PID  int
	URL  string // http://host:port of the web port
	done chan struct{}
	err  error

	mu     sync.Mutex
	keep   bool
	lines  []LogLine
	onLine func(LogLine)
}

// DaemonOptions say how to run lvsmon.
type DaemonOptions struct {
	Binary string
	Args   []string // after "run": --config, --listen, --data-dir...
	// NoFile, when positive, is the soft and hard RLIMIT_NOFILE lvsmon
	// starts with (set by a shell before exec, so that lvsmon cannot
	// raise it either).
	NoFile int
	// Nice, when non-zero, runs lvsmon at this niceness.
	Nice int
	// KeepLog keeps every log line in memory (Lines); otherwise only
	// OnLine sees them.
	KeepLog bool
	OnLine  func(LogLine)
	// LogFile, if set, gets every raw line.
	LogFile io.Writer
}

// StartDaemon runs `lvsmon run --log-format json ARGS` and waits for its
// "lvsmon started" line.
func StartDaemon(ctx context.Context, o DaemonOptions) (*Daemon, error) {
	argv := append([]string{o.Binary, "run", "--log-format", "json"}, o.Args...)
	if o.NoFile > 0 {
		// dash and bash set both limits when neither -H nor -S is given.
		argv = append([]string{"/bin/sh", "-c", "ulimit -n " + strconv.Itoa(o.NoFile) + ` && exec "$0" "$@"`}, argv...)
	}
	if o.Nice != 0 {
		argv = append([]string{"nice", "-n", strconv.Itoa(o.Nice)}, argv...)
	}
	d := &Daemon{cmd: exec.Command(argv[0], argv[1:]...), done: make(chan struct{}), keep: o.KeepLog, onLine: o.OnLine}
	stderr, err := d.cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	d.cmd.Stdout = io.Discard
	if err := d.cmd.Start(); err != nil {
		return nil, err
	}
	d.PID = d.cmd.Process.Pid
	started := make(chan string, 1)
	go func() {
		defer close(d.done)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			raw := sc.Text()
			if o.LogFile != nil {
				fmt.Fprintln(o.LogFile, raw)
			}
			l := parseLine(raw)
			if l.Msg == "lvsmon started" {
				select {
				case started <- l.Str("listen"):
				default:
				}
			}
			d.mu.Lock()
			if d.keep {
				d.lines = append(d.lines, l)
			}
			f := d.onLine
			d.mu.Unlock()
			if f != nil {
				f(l)
			}
		}
		d.err = d.cmd.Wait()
	}()
	select {
	case addr := <-started:
		d.URL = "http://" + addr
		return d, nil
	case <-d.done:
		return nil, fmt.Errorf("lvsmon exited before it started: %v", d.err)
	case <-time.After(2 * time.Minute):
		d.Kill()
		return nil, errors.New("lvsmon did not start within 2 minutes")
	case <-ctx.Done():
		d.Kill()
		return nil, ctx.Err()
	}
}

func parseLine(raw string) LogLine {
	l := LogLine{Raw: raw}
	var m map[string]any
	if json.Unmarshal([]byte(raw), &m) != nil {
		l.Msg = raw
		return l
	}
	l.Fields = m
	l.Msg = l.Str("msg")
	l.Level = l.Str("level")
	if t, err := time.Parse(time.RFC3339Nano, l.Str("time")); err == nil {
		l.Time = t
	}
	return l
}

// Lines returns the log lines kept so far (KeepLog).
func (d *Daemon) Lines() []LogLine {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]LogLine(nil), d.lines...)
}

// LogText is the kept log, raw.
func (d *Daemon) LogText() string {
	var sb strings.Builder
	for _, l := range d.Lines() {
		sb.WriteString(l.Raw)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// Signal sends sig to lvsmon.
func (d *Daemon) Signal(sig os.Signal) error { return d.cmd.Process.Signal(sig) }

// Stop ends lvsmon with SIGTERM (SIGKILL after 20 s) and returns how it
// exited.
func (d *Daemon) Stop() error {
	d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.done:
		return d.err
	case <-time.After(20 * time.Second):
		d.cmd.Process.Kill()
		<-d.done
		return errors.New("lvsmon did not stop within 20 s of SIGTERM")
	}
}

// Kill ends lvsmon at once (cleanup).
func (d *Daemon) Kill() {
	d.cmd.Process.Kill()
	<-d.done
}

// Exited reports whether lvsmon has exited, and how.
func (d *Daemon) Exited() (bool, error) {
	select {
	case <-d.done:
		return true, d.err
	default:
		return false, nil
	}
}

// Limits returns lvsmon's open file limits as /proc shows them.
func (d *Daemon) Limits() (soft, hard string) {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/limits", d.PID))
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, "Max open files") {
			f := strings.Fields(line)
			if len(f) >= 5 {
				return f[3], f[4]
			}
		}
	}
	return "?", "?"
}
