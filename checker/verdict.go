package checker

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"syscall"
	"time"

	"github.com/lvsmon/lvsmon/probe"
)

// Class sorts a failed check by what it says about the real server. Only
// some failures are evidence against the server: a check that could not
// even be made, because the director ran out of file descriptors,
// buffers, memory or processes, or because lvsmon was starved of CPU
// while the probe waited, says nothing about the server and must change
// nothing in the kernel.
type Class string

// Classes of failure.
const (
	// ClassLocal is the director's own trouble: the result is
	// inconclusive and changes no health.
	ClassLocal Class = "local"
	// ClassTimeout and ClassUnreachable are failures without an answer
	// from the server. They are evidence, but one bad moment of the
	// director's network gives the same for every server at once, so
	// the mass-failure guard watches them.
	ClassTimeout     Class = "timeout"
	ClassUnreachable Class = "unreachable"
	// ClassRefused, ClassReset and ClassAnswer came from the server (or
	// its host): a refusal, a reset, a wrong answer. Per-server evidence.
	ClassRefused Class = "refused"
	ClassReset   Class = "reset"
	ClassAnswer  Class = "answer"
)

// guarded reports whether failures of this class, seen on many servers at
// once, are more likely the director's trouble than theirs.
func (c Class) guarded() bool { return c == ClassTimeout || c == ClassUnreachable }

// Local reasons: why a check was inconclusive, for logs and metrics.
const (
	LocalFDs       = "fd_exhausted"    // EMFILE, ENFILE
	LocalBuffers   = "no_buffers"      // ENOBUFS
	LocalMemory    = "no_memory"       // ENOMEM
	LocalPorts     = "ports_exhausted" // EADDRNOTAVAIL: no local port or address
	LocalProcesses = "exec_failed"     // fork or exec failed, or the command is missing
	LocalLag       = "scheduling_lag"  // lvsmon was starved while the probe waited
	// LocalInput is a check whose own input failed it: a file check's
	// file missing, unreadable or not a number (probe.InconclusiveError).
	LocalInput = "check_input"
)

// LocalReasons lists the local reasons in a stable order (metrics).
var LocalReasons = []string{LocalFDs, LocalBuffers, LocalMemory, LocalPorts, LocalProcesses, LocalLag, LocalInput}

// classify sorts a failed check's error. It returns the local reason for
// ClassLocal. lag is the scheduling lag seen while the check ran, and
// timeout its whole budget: a timeout during which lvsmon itself was
// late by a quarter of the budget (at least 50 ms) is not the server's.
func classify(err error, lag, timeout time.Duration) (Class, string) {
	var in probe.InconclusiveError
	switch {
	case errors.As(err, &in):
		return ClassLocal, LocalInput
	case errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return ClassLocal, LocalFDs
	case errors.Is(err, syscall.ENOBUFS):
		return ClassLocal, LocalBuffers
	case errors.Is(err, syscall.ENOMEM):
		return ClassLocal, LocalMemory
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return ClassLocal, LocalPorts
	case isExecFailure(err):
		return ClassLocal, LocalProcesses
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, os.ErrDeadlineExceeded):
		if lag >= lagLimit(timeout) {
			return ClassLocal, LocalLag
		}
		return ClassTimeout, ""
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.EHOSTDOWN), errors.Is(err, syscall.ENETDOWN):
		return ClassUnreachable, ""
	case errors.Is(err, syscall.ECONNREFUSED):
		return ClassRefused, ""
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE), errors.Is(err, probe.ErrClosed):
		return ClassReset, ""
	}
	return ClassAnswer, ""
}

// lagLimit is the scheduling lag from which a timeout is inconclusive.
func lagLimit(timeout time.Duration) time.Duration {
	return max(timeout/4, 50*time.Millisecond)
}

// isExecFailure is an external check whose command could not be started:
// fork refused (EAGAIN: the process limit), the command missing or not
// executable. None of that is the real server's doing.
func isExecFailure(err error) bool {
	var ee *exec.Error
	if errors.As(err, &ee) {
		return true
	}
	var pe *os.PathError
	if errors.As(err, &pe) && pe.Op == "fork/exec" {
		return true
	}
	return errors.Is(err, syscall.EAGAIN) || errors.Is(err, exec.ErrNotFound)
}
