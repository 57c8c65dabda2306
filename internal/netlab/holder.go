package netlab

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// HolderTimeout bounds each wait of a holder: for its script to set the
// namespaces up, and for it to go once killed. It guards against a hung
// holder; it is not an expectation.
const HolderTimeout = 10 * time.Second

// HolderConfig says what a holder runs and where its output goes.
type HolderConfig struct {
	// Node is the node whose network namespace the holder joins.
	Node string
	// Argv is the init of the PID namespace, with its arguments: a shell
	// that runs a lab's script, such as {"bash", "-c", script, "$0", …}.
	// The script sets up the mounts and the host name, creates Ready and
	// then stays, reaping the orphans it inherits, until it is killed.
	Argv []string
	// Ready is the file the script creates once it has set up the
	// namespaces.
	Ready string
	// Dir is the holder's working directory.
	Dir string
	// Env is the holder's environment; nil means the caller's.
	Env []string
	// Log receives the holder's output. It is the caller's to close (it
	// may do so as soon as StartHolder returns).
	Log *os.File
}

// Holder is the process that holds a node's private mount, UTS and PID
// namespaces: `ip netns exec NS unshare --mount --uts --pid --fork
// --kill-child --mount-proc --propagation private ARGV`. unshare forks the
// PID namespace's init (the lab's script), which stays until it is killed;
// daemons and tools run in its namespaces through nsenter (Command, and
// the scripts Wrapper writes).
//
// The PID namespace is what makes the cleanup reliable: every process of
// the node, including daemons that fork away and what resource scripts
// leave running, ends up below the init, which reaps it at once; and
// killing the init makes the kernel kill everything left in the namespace.
// Mounts live only in the holder's mount namespace and vanish with it:
// nothing is mounted in the caller's namespace.
//
// Its methods are safe for concurrent use, and those that only look
// (InitPID, Alive, Procs) also on a nil *Holder, which is one that does
// not run.
type Holder struct {
	node    string
	nsenter string // path of nsenter
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd (unshare) has been reaped
	init    int           // host pid of the init
	mntNS   string        // the init's mount namespace, "mnt:[…]"
	pidNS   string        // the init's PID namespace, "pid:[…]"
}

// StartHolder starts a holder on node cfg.Node and waits until its script
// has created cfg.Ready, HolderTimeout at most. When it
// fails, it kills what it started before it returns.
func (n *Net) StartHolder(ctx context.Context, cfg HolderConfig) (*Holder, error) {
	nsenter, err := exec.LookPath("nsenter")
	if err != nil {
		return nil, fmt.Errorf("netlab: nsenter (util-linux) is not installed: %w", err)
	}
	h := &Holder{node: cfg.Node, nsenter: nsenter, done: make(chan struct{})}
	// ip netns exec execs unshare, so cmd's pid is unshare's; unshare
	// forks the init and waits for it. --kill-child: if unshare dies, so
	// does the init, and with it the whole namespace.
	args := append([]string{"netns", "exec", n.NetNSName(cfg.Node),
		"unshare", "--mount", "--uts", "--pid", "--fork", "--kill-child", "--mount-proc", "--propagation", "private"},
		cfg.Argv...)
	cmd := exec.Command("ip", args...)
	cmd.Env = cfg.Env
	cmd.Dir = cfg.Dir
	cmd.Stdout, cmd.Stderr = cfg.Log, cfg.Log
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true} // away from the test's signals
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("netlab: starting the holder of %s: %w", cfg.Node, err)
	}
	h.cmd = cmd
	go func() {
		_ = cmd.Wait()
		close(h.done)
	}()
	if err := h.waitReady(ctx, cfg); err != nil {
		h.Kill()
		return nil, errors.Join(err, h.Wait(HolderTimeout))
	}
	return h, nil
}

// waitReady waits for cfg.Ready and then learns the init's pid and
// namespaces.
func (h *Holder) waitReady(ctx context.Context, cfg HolderConfig) error {
	deadline := time.NewTimer(HolderTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if _, err := os.Stat(cfg.Ready); err == nil {
			// unshare has one child, the init.
			if h.init = FirstChild(h.cmd.Process.Pid); h.init > 0 {
				break
			}
		}
		select {
		case <-h.done:
			return fmt.Errorf("netlab: the holder of %s exited at start; %s:\n%s", h.node, cfg.Log.Name(), Tail(cfg.Log.Name(), 20))
		case <-ctx.Done():
			return fmt.Errorf("netlab: waiting for the holder of %s: %w", h.node, ctx.Err())
		case <-deadline.C:
			return fmt.Errorf("netlab: the holder of %s was not ready within %v; %s:\n%s", h.node, HolderTimeout, cfg.Log.Name(), Tail(cfg.Log.Name(), 20))
		case <-tick.C:
		}
	}
	var err error
	if h.mntNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.init)); err != nil {
		return fmt.Errorf("netlab: the holder of %s: %w", h.node, err)
	}
	if h.pidNS, err = os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", h.init)); err != nil {
		return fmt.Errorf("netlab: the holder of %s: %w", h.node, err)
	}
	return nil
}

// InitPID is the host pid of the holder's init, the process whose
// namespaces to enter (nsenter -t PID -m -u -n -p); 0 for a nil Holder.
func (h *Holder) InitPID() int {
	if h == nil {
		return 0
	}
	return h.init
}

// Alive reports whether the holder's init still runs: its pid is still in
// the mount namespace it made, and not a stranger's that reused the pid.
func (h *Holder) Alive() bool {
	if h == nil || h.init <= 0 {
		return false
	}
	ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", h.init))
	return err == nil && ns == h.mntNS
}

// Command returns a command that runs name with args in the holder's
// network, mount, UTS and PID namespaces, through nsenter; it is not
// started. nsenter -p forks, so the command's process is nsenter and name
// runs as its child. The caller sets Env and Dir as it needs. On a nil
// Holder it is a command that fails to start.
func (h *Holder) Command(ctx context.Context, name string, args ...string) *exec.Cmd {
	if h == nil {
		cmd := exec.CommandContext(ctx, "nsenter")
		cmd.Err = errors.New("netlab: the node has no holder")
		return cmd
	}
	cmd := exec.CommandContext(ctx, h.nsenter, append([]string{"-t", strconv.Itoa(h.init), "-m", "-u", "-n", "-p", name}, args...)...)
	// A child that keeps a pipe open must not hold Wait up.
	cmd.WaitDelay = time.Second
	return cmd
}

// Proc is a process in a holder's PID namespace, by host pids.
type Proc struct {
	PID, PPID int
	Comm      string // the name in /proc/PID/stat, at most 15 bytes
}

// Procs lists the live (not zombie) processes in the holder's PID
// namespace, the init included: also those that entered it through
// nsenter, which are not the init's descendants.
func (h *Holder) Procs() []Proc {
	if h == nil || h.pidNS == "" {
		return nil
	}
	ents, _ := os.ReadDir("/proc")
	var ps []Proc
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || ns != h.pidNS {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		// pid (comm) state ppid …; comm may hold spaces and parens.
		i, j := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
		if i < 0 || j < i {
			continue
		}
		f := strings.Fields(string(b[j+1:]))
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ps = append(ps, Proc{PID: pid, PPID: ppid, Comm: string(b[i+1 : j])})
	}
	return ps
}

// Done is closed once unshare has exited and been reaped. The init is
// reaped (so unshare exits) only once everything else in the PID
// namespace is gone: after Done, nothing of the node runs.
func (h *Holder) Done() <-chan struct{} { return h.done }

// Kill SIGKILLs the init, which makes the kernel kill everything in its
// PID namespace, and returns at once (see Wait). Killing unshare first
// would not wait for that (--kill-child signals the init but does not reap
// it) and would orphan the init to the host's init, which may never reap
// it; so unshare is killed only when the init does not run. Nothing is
// killed once unshare has been reaped: its pids may be someone else's.
func (h *Holder) Kill() {
	select {
	case <-h.done:
		return
	default:
	}
	target := 0
	if h.mntNS != "" {
		if h.Alive() {
			target = h.init
		}
	} else {
		// Not ready yet: the init is unshare's one child.
		target = FirstChild(h.cmd.Process.Pid)
	}
	if target > 0 {
		_ = syscall.Kill(target, syscall.SIGKILL)
	} else {
		_ = h.cmd.Process.Kill()
	}
}

// Wait waits until unshare has exited (see Done). After timeout it kills
// unshare and waits as long again, and returns an error either way.
func (h *Holder) Wait(timeout time.Duration) error {
	select {
	case <-h.done:
		return nil
	case <-time.After(timeout):
	}
	_ = h.cmd.Process.Kill()
	select {
	case <-h.done:
		return fmt.Errorf("netlab: the holder of %s (init %d) outlived SIGKILL for %v", h.node, h.init, timeout)
	case <-time.After(timeout):
		return fmt.Errorf("netlab: the holder of %s (unshare %d, init %d) did not exit", h.node, h.cmd.Process.Pid, h.init)
	}
}

// Close kills the holder and waits until it is gone (Kill, then Wait
// with HolderTimeout).
func (h *Holder) Close() error {
	h.Kill()
	return h.Wait(HolderTimeout)
}

// FirstChild returns the first child of pid, 0 if none: for a process
// known to fork once (unshare --fork, nsenter -p), the one it forked.
func FirstChild(pid int) int {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", pid, pid))
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return 0
	}
	c, _ := strconv.Atoi(f[0])
	return c
}

// Wrapper is a script that runs one tool inside a node's holder with the
// script's arguments, and exits with the tool's status: for code that
// wants a program to run on the node (lvsmon's sources) rather than an
// exec.Cmd.
type Wrapper struct {
	Path    string // where the script is
	Tool    string // the program it runs in the node, a name or a path
	Comment string // a line that says what the script is, for a reader
	Refusal string // printed to stderr when the node has no holder
	Status  int    // the exit status then
}

// Refuse writes the script so that it only fails, with w.Refusal and
// w.Status: before the holder runs and once it is killed, when its pid
// may be someone else's.
func (w Wrapper) Refuse() error {
	return w.write(fmt.Sprintf("echo %s >&2\nexit %d\n", shellQuote(w.Refusal), w.Status))
}

// Enter writes the script so that it runs w.Tool in h's namespaces. The
// script checks first that h's pid still is h's init (same mount
// namespace), so that once the holder is gone it fails as Refuse's does
// instead of entering whatever process got the pid.
func (w Wrapper) Enter(h *Holder) error {
	return w.write(fmt.Sprintf(`[ "$(readlink /proc/%[1]d/ns/mnt 2>/dev/null)" = %[2]s ] || { echo %[3]s >&2; exit %[4]d; }
exec %[5]s -t %[1]d -m -u -n -p %[6]s "$@"
`, h.init, shellQuote(h.mntNS), shellQuote(w.Refusal), w.Status, shellQuote(h.nsenter), shellQuote(w.Tool)))
}

// write replaces the script with one running body. It writes a new file
// and renames it: the old one may be running, and a shell reads its script
// as it goes.
func (w Wrapper) write(body string) error {
	s := "#!/bin/sh\n"
	if w.Comment != "" {
		s += "# " + strings.ReplaceAll(w.Comment, "\n", "\n# ") + "\n"
	}
	tmp := w.Path + ".tmp"
	if err := os.WriteFile(tmp, []byte(s+body), 0o755); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	if err := os.Rename(tmp, w.Path); err != nil {
		return fmt.Errorf("netlab: %w", err)
	}
	return nil
}

// shellQuote quotes s for sh, in single quotes.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
