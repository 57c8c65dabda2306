package checker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/config"
)

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
// into the message.
//
// The command runs in a process group of its own. When it exits, or
// when the timeout comes first, the whole group is killed: a script that
// left a child running (a forgotten "sleep &", a hung curl in a
// subshell) must not leave one more process behind on every interval.
// A process that escapes the group with setsid is beyond this reach.
func probeExternal(ctx context.Context, t Target, c *config.Check) error {
	if c.Command == "" {
		return errors.New("external: no command")
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("external: %s not started: %w", c.Command, reason(ctx, err, c))
	}
	cmd := exec.Command(c.Command, append(slices.Clone(c.Args), externalArgs(t)...)...)
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
	err := cmd.Wait()

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
		return fmt.Errorf("external: %s exited %d%s", name, ee.ExitCode(), out.tail())
	}
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // it exited 0; only an escaped process kept its output open
	}
	return fmt.Errorf("external: %s: %w", name, err)
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
