//go:build lab

// Lab tier (README, Tests): raw ICMP sockets and network namespaces; needs
// root (or CAP_NET_RAW and CAP_SYS_ADMIN).

package probe

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/lvsmon/lvsmon/lvs"
)

// The ping tests need root (or CAP_NET_RAW and CAP_SYS_ADMIN): raw ICMP
// sockets, and network namespaces for what the host's own settings must
// not decide (a ping group range that allows ping sockets, hosts that
// ignore echo requests, no route at all).

func pingTarget(addr string) Target {
	a := netip.MustParseAddr(addr)
	return Target{Addr: a, Server: lvs.DestKey{Addr: a}}
}

// TestProbePing pings the loopback with whichever socket this host
// allows (here a raw one when the ping group range excludes root's
// group, as Debian's default "1 0" does).
func TestProbePing(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			c := parseCheck(t, "tcp", "{type: ping, timeout: 2s}")
			wantErr(t, runBounded(t, probePing, pingTarget(addr), c), "")
		})
	}
}

// TestPingRawSocket uses raw sockets explicitly: several probes at once,
// each of which sees all the replies and must pick out its own.
func TestPingRawSocket(t *testing.T) {
	for _, addr := range []string{"127.0.0.1", "::1"} {
		t.Run(addr, func(t *testing.T) {
			c := parseCheck(t, "tcp", "{type: ping, timeout: 2s}")
			dst := netip.MustParseAddr(addr)
			const n = 8
			errs := make(chan error, n)
			for range n {
				go func() {
					conn, err := listenICMP(dst.Is6(), true)
					if err != nil {
						errs <- fmt.Errorf("raw ICMP socket (the ping tests need root or CAP_NET_RAW): %w", err)
						return
					}
					defer conn.Close()
					ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
					defer cancel()
					errs <- pingWith(ctx, conn, true, dst, c)
				}()
			}
			for range n {
				if err := <-errs; err != nil {
					t.Error(err)
				}
			}
		})
	}
}

// inNewNetns runs f on a goroutine locked to an OS thread that has moved
// into a network namespace of its own, with lo up and the given sysctls
// (paths under /proc/sys/net, which a thread sees for its own
// namespace). The thread is never unlocked: it ends with the goroutine,
// so nothing else ever runs in the namespace. f reports with t.Error.
func inNewNetns(t *testing.T, sysctls map[string]string, f func()) {
	t.Helper()
	done := make(chan error)
	go func() {
		runtime.LockOSThread()
		err := enterNewNetns(sysctls)
		if err == nil {
			f()
		}
		done <- err
	}()
	if err := <-done; err != nil {
		t.Fatalf("network namespace (the ping tests need root): %v", err)
	}
}

func enterNewNetns(sysctls map[string]string) error {
	if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
		return fmt.Errorf("unshare: %w", err)
	}
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return err
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo flags: %w", err)
	}
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	if err := unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr); err != nil {
		return fmt.Errorf("lo up: %w", err)
	}
	for k, v := range sysctls {
		if err := os.WriteFile("/proc/sys/net/"+k, []byte(v), 0); err != nil {
			return err
		}
	}
	return nil
}

// TestPingUnprivilegedSocket runs where the ping group range includes
// every group: the probe must then use a ping socket, which needs no
// privilege, rather than a raw one.
func TestPingUnprivilegedSocket(t *testing.T) {
	c := parseCheck(t, "tcp", "{type: ping, timeout: 2s}")
	inNewNetns(t, map[string]string{"ipv4/ping_group_range": "0 2147483647"}, func() {
		for _, addr := range []string{"127.0.0.1", "::1"} {
			dst := netip.MustParseAddr(addr)
			conn, raw, err := pingSocket(dst.Is6())
			if err != nil {
				t.Errorf("%s: %v", addr, err)
				continue
			}
			if raw {
				t.Errorf("%s: a raw socket, though ping sockets are allowed", addr)
			}
			ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
			if err := pingWith(ctx, conn, raw, dst, c); err != nil {
				t.Errorf("%s over a ping socket: %v", addr, err)
			}
			cancel()
			conn.Close()
			ctx, cancel = context.WithTimeout(context.Background(), c.Timeout.D())
			if err := probePing(ctx, pingTarget(addr), c); err != nil {
				t.Errorf("probePing %s: %v", addr, err)
			}
			cancel()
		}
	})
}

// TestPingFailures: a host that ignores echo requests (with both kinds
// of socket) and an address without a route.
func TestPingFailures(t *testing.T) {
	c := parseCheck(t, "tcp", "{type: ping, timeout: 300ms}")
	ignore := map[string]string{
		"ipv4/icmp_echo_ignore_all": "1",
		"ipv6/icmp/echo_ignore_all": "1",
		"ipv4/ping_group_range":     "0 2147483647",
	}
	inNewNetns(t, ignore, func() {
		for _, addr := range []string{"127.0.0.1", "::1"} {
			dst := netip.MustParseAddr(addr)
			for _, raw := range []bool{false, true} {
				conn, err := listenICMP(dst.Is6(), raw)
				if err != nil {
					t.Error(err)
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
				err = pingWith(ctx, conn, raw, dst, c)
				cancel()
				conn.Close()
				if err == nil || err.Error() != "ping: "+addr+": no answer within 300ms" {
					t.Errorf("%s (raw %v) ignoring pings: %v", addr, raw, err)
				}
			}
		}
		ctx, cancel := context.WithTimeout(context.Background(), c.Timeout.D())
		defer cancel()
		err := probePing(ctx, pingTarget("192.0.2.1"), c)
		if err == nil || err.Error() != "ping: send to 192.0.2.1: network is unreachable" {
			t.Errorf("no route: %v", err)
		}
	})
}
