package probe

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/config"
)

func init() {
	RegisterWeight(config.CheckType{Name: "external", Keys: []string{"command", "args", "env", "pass_env", "dynamic"}, NoPort: true}, probeExternalWeight)
}

// probeExternal is probeExternalWeight without the weight.
func probeExternal(ctx context.Context, t Target, c *config.Check) error {
	_, err := probeExternalWeight(ctx, t, c)
	return err
}

// MaxDynamicWeight is the largest weight a dynamic external check sets:
// exit status 255 less 2, as in keepalived.
const MaxDynamicWeight = 253

// maxExternalOutput is how much of an external command's output is kept
// for the message.
const maxExternalOutput = 200

// externalWaitDelay bounds the wait for output pipes held open by a
// process that left the command's group (setsid): after the group is
// dead, lvsmon stops reading rather than wait for it.
const externalWaitDelay = 500 * time.Millisecond

// probeExternal is the external check, as ldirectord runs it: the
// command with its args and then four more, VIP VPORT RIP RPORT (a
// fwmark service passes its mark as VIP and 0 as VPORT; RIP and RPORT
// are the real server's own even when the check's address or port is
// overridden). Exit status 0 is healthy; anything else is not, and the
// first line of its output (stdout and stderr, at most 200 bytes) goes
// into the message. With dynamic (keepalived's misc_dynamic) exit
// statuses 2-255 are healthy too, and set the server's weight to the
// status less 2; 0 is healthy at the configured weight, as keepalived
// has it (a weight set before is undone), and 1 fails.
//
// The command runs with a minimal environment (externalEnv), never
// lvsmon's own, and in a process group of its own. When it exits, or
// when the timeout comes first, the whole group is killed: a script that
// left a child running (a forgotten "sleep &", a hung curl in a
// subshell) must not leave one more process behind on every interval.
// A process that escapes the group with setsid is beyond this reach.
func probeExternalWeight(ctx context.Context, t Target, c *config.Check) (Weight, error) {
	err := runExternal(ctx, t, c)
	var ex exitError
	if c.Dynamic && errors.As(err, &ex) && ex.status >= 2 && ex.status <= 255 {
		return Weight{Kind: WeightSet, Value: int64(ex.status - 2)}, nil
	}
	return Weight{}, err
}

// exitError is an external command that exited with a status other
// than 0.
type exitError struct {
	name   string
	status int
	tail   string
}

func (e exitError) Error() string {
	return fmt.Sprintf("external: %s exited %d%s", e.name, e.status, e.tail)
}

// runExternal runs the command once; nil when it exited 0.
func runExternal(ctx context.Context, t Target, c *config.Check) error {
	if c.Command == "" {
		return errors.New("external: no command")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("external: %s not started: %w", c.Command, reason(ctx, err, c))
	}
	env := externalEnv(c, os.LookupEnv)
	path, err := lookPath(c.Command, envValue(env, "PATH"))
	if err != nil {
		return fmt.Errorf("external: %w", err)
	}
	cmd := exec.Command(path, append(slices.Clone(c.Args), externalArgs(t)...)...)
	cmd.Args[0] = c.Command
	cmd.Env = env
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out := &headBuffer{max: maxExternalOutput}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.WaitDelay = externalWaitDelay
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("external: %w", err)
	}
	pgid := cmd.Process.Pid

	// Killing the group by its id is only safe while that id cannot be
	// reused, that is until the leader is reaped; reaped says so, under
	// mu, for the timeout's kill that may race with the end.
	var mu sync.Mutex
	reaped, killed := false, false
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if !reaped {
			killed = true
			unix.Kill(-pgid, unix.SIGKILL)
		}
	})
	defer stop()
	waitExited(pgid)
	mu.Lock()
	unix.Kill(-pgid, unix.SIGKILL) // whatever the command left behind
	reaped = true
	timedOut := killed
	mu.Unlock()
	err = cmd.Wait()

	name := c.Command
	switch {
	case timedOut:
		return fmt.Errorf("external: %s killed with its process group: %w%s", name, reason(ctx, context.DeadlineExceeded, c), out.tail())
	case err == nil:
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return fmt.Errorf("external: %s killed by signal %s%s", name, ws.Signal(), out.tail())
		}
		return exitError{name: name, status: ee.ExitCode(), tail: out.tail()}
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // it exited 0; only an escaped process kept its output open
	}
	return fmt.Errorf("external: %s: %w", name, err)
}

// DefaultExternalPath is an external check's PATH unless its env sets
// one: the usual root PATH, whatever lvsmon was started with.
const DefaultExternalPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// externalEnv is an external check's whole environment: PATH
// (DefaultExternalPath), LANG (lvsmon's, or C.UTF-8), LC_ALL when lvsmon
// has one, then the variables the check's pass_env copies from lvsmon's
// environment (getenv) and those its env sets, which win. Nothing else
// of lvsmon's environment reaches the command: it may hold secrets (the
// SMTP password_env) that a check script, or whatever it logs, has no
// business seeing. Sorted by name.
func externalEnv(c *config.Check, getenv func(string) (string, bool)) []string {
	m := map[string]string{"PATH": DefaultExternalPath, "LANG": "C.UTF-8"}
	if v, ok := getenv("LANG"); ok && v != "" {
		m["LANG"] = v
	}
	if v, ok := getenv("LC_ALL"); ok && v != "" {
		m["LC_ALL"] = v
	}
	for _, k := range c.PassEnv {
		if v, ok := getenv(k); ok {
			m[k] = v
		}
	}
	maps.Copy(m, c.Env)
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		out = append(out, k+"="+m[k])
	}
	return out
}

// envValue is the value of name in env ("" when absent).
func envValue(env []string, name string) string {
	for _, kv := range env {
		if k, v, _ := strings.Cut(kv, "="); k == name {
			return v
		}
	}
	return ""
}

// lookPath finds a bare command name in the check's own PATH, the one the
// command runs with (exec.LookPath would search lvsmon's); a name with a
// slash is used as it is. Relative PATH entries are ignored: they would
// depend on lvsmon's working directory.
func lookPath(name, path string) (string, error) {
	if strings.Contains(name, "/") {
		return name, nil
	}
	for _, dir := range filepath.SplitList(path) {
		if !filepath.IsAbs(dir) {
			continue
		}
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: not found in the check's PATH %s", name, path)
}

// externalArgs are ldirectord's four arguments: VIP VPORT RIP RPORT.
func externalArgs(t Target) []string {
	vip, vport := t.Service.Addr.String(), strconv.Itoa(int(t.Service.Port))
	if t.Service.IsFWMark() {
		vip, vport = strconv.FormatUint(uint64(t.Service.FWMark), 10), "0"
	}
	return []string{vip, vport, t.Server.Addr.String(), strconv.Itoa(int(t.Server.Port))}
}

// waitExited blocks until process pid has exited, without reaping it
// (cmd.Wait does that next).
func waitExited(pid int) {
	var info unix.Siginfo
	for {
		err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOWAIT, nil)
		if err != unix.EINTR {
			return
		}
	}
}

// headBuffer keeps the first max bytes written to it and discards the
// rest, so a chatty command costs no memory and never blocks on a full
// pipe.
type headBuffer struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (h *headBuffer) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if room := h.max - h.buf.Len(); room > 0 {
		h.buf.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// tail is ": " and the first line of the output, or "" when there was
// none.
func (h *headBuffer) tail() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	s := strings.TrimSpace(h.buf.String())
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = strings.TrimSpace(s[:i])
	}
	if s == "" {
		return ""
	}
	return ": " + strconv.Quote(s)
}
