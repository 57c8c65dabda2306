// Package netns runs code inside a Linux network namespace: the role
// sources read keepalived and the VIPs of another namespace, and the
// tests build directors and real servers in namespaces of their own.
package netns

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// Do runs fn on a new OS thread that has joined the network namespace at
// path (a file such as /run/netns/NAME or /proc/PID/ns/net; "" runs fn on
// the caller's goroutine). Sockets fn creates stay in that namespace for
// their whole life, whatever thread later reads them. The thread is never
// handed back to the Go scheduler: the goroutine exits still locked, so
// the runtime ends the thread instead of reusing it in the wrong
// namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		// No UnlockOSThread, on purpose: see above.
		fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: %w", path, err)
			return
		}
		err = unix.Setns(fd, unix.CLONE_NEWNET)
		unix.Close(fd)
		if err != nil {
			errc <- fmt.Errorf("network namespace %s: setns: %w", path, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Named is Do for a namespace made by ip netns add NAME.
func Named(name string, fn func() error) error { return Do("/run/netns/"+name, fn) }
