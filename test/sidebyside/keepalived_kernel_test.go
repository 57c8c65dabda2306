//go:build ipvskernel

// Debian's keepalived and lvsmon side by side on the real kernel: these
// tests run only inside the qemu VM that test/vm/vmexec.sh boots, with
// keepalived and its libraries added (testdata/vm-extras). `make
// test-kernel` builds them with the ipvskernel tag and runs the binary
// there; they never run, and so never skip, on a host.

package sidebyside

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lvsmon/lvsmon/importer"
	"github.com/lvsmon/lvsmon/internal/netns"
	"github.com/lvsmon/lvsmon/internal/testutil"
	"github.com/lvsmon/lvsmon/lvs"
)

func TestMain(m *testing.M) {
	if os.Getenv("LVSMON_IN_VM") != "1" {
		fmt.Fprintln(os.Stderr, "the side-by-side kernel tests must run inside the qemu VM: make test-kernel (CGO_ENABLED=0 go test -tags ipvskernel -exec $PWD/test/vm/vmexec.sh ./test/sidebyside/)")
		os.Exit(1)
	}
	os.Exit(m.Run())
}

// The director is the VM's root namespace, with the two VIPs on a dummy
// interface; real servers 1 to 3 live in namespaces sb1 to sb3, each on
// a veth pair, each serving HTTP on port 80 (the health page
// /health.html) and a bare TCP port 8080. No client: only the table
// matters. The sorry server is an address nothing answers on, as
// neither tool checks it. Each exec of iproute2's ip costs the VM a
// tenth of a second or more (much more when its host is busy): the
// topology is four batches.
const sbTopology = `
set -e
/sbin/ip -batch - <<EOF
link add sb-vip type dummy
link set sb-vip up
addr add 10.210.0.10/32 dev sb-vip
addr add 10.210.0.11/32 dev sb-vip
netns add sb1
netns add sb2
netns add sb3
link add sb-r1a type veth peer name sb-r1b netns sb1
link add sb-r2a type veth peer name sb-r2b netns sb2
link add sb-r3a type veth peer name sb-r3b netns sb3
addr add 10.211.1.1/24 dev sb-r1a
addr add 10.211.2.1/24 dev sb-r2a
addr add 10.211.3.1/24 dev sb-r3a
link set sb-r1a up
link set sb-r2a up
link set sb-r3a up
EOF
for n in 1 2 3; do
/sbin/ip -n sb$n -batch - <<EOF
addr add 10.211.$n.2/24 dev sb-r${n}b
link set sb-r${n}b up
link set lo up
route add default via 10.211.$n.1
EOF
done
`

const sbTeardown = `
/sbin/ip -force -batch - <<EOF
link del sb-r1a
link del sb-r2a
link del sb-r3a
link del sb-vip
netns del sb1
netns del sb2
netns del sb3
EOF
ipvsadm -C
true
`

// keepalived.conf: a NAT web service checked with HTTP_GET, its servers
// kept at weight 0 when they fail (inhibit_on_failure), one with
// thresholds; a persistent direct-routing service checked with
// TCP_CHECK, its failed servers removed; a sorry server for each.
// Checks every second with a 2 s timeout: the VM is slow, and slower
// still when its host is busy.
const sbKeepalived = `global_defs {
    router_id sidebyside
}

virtual_server 10.210.0.10 80 {
    delay_loop 1
    lb_algo wrr
    lb_kind NAT
    protocol TCP
    sorry_server 10.211.9.2 80
%s
}

virtual_server 10.210.0.11 8080 {
    delay_loop 1
    lb_algo rr
    lb_kind DR
    persistence_timeout 60
    protocol TCP
    sorry_server 10.211.9.2 8080
%s
}
`

const sbWebReal = `    real_server 10.211.%d.2 80 {
        weight %d%s
        inhibit_on_failure
        HTTP_GET {
            url {
                path /health.html
                status_code 200
            }
            connect_timeout 2
            retry 0
        }
    }
`

const sbTCPReal = `    real_server 10.211.%d.2 8080 {
        weight %d
        TCP_CHECK {
            connect_timeout 2
            retry 0
        }
    }
`

// sbConf is the keepalived.conf with these weights for the web and the
// tcp service's real servers 1 to 3.
func sbConf(web, tcp [3]int) string {
	var w, c strings.Builder
	for i := range 3 {
		extra := ""
		if i == 0 {
			extra = "\n        uthreshold 100\n        lthreshold 10"
		}
		fmt.Fprintf(&w, sbWebReal, i+1, web[i], extra)
		fmt.Fprintf(&c, sbTCPReal, i+1, tcp[i])
	}
	return fmt.Sprintf(sbKeepalived, strings.TrimRight(w.String(), "\n"), strings.TrimRight(c.String(), "\n"))
}

// kernTable is tab as the kernel table of this setting shows it.
func kernTable(x tab) view {
	a := []string{"TCP 10.210.0.10:80 wrr"}
	b := []string{"TCP 10.210.0.11:8080 rr persistent 60"}
	for i := range 3 {
		if x.web[i] >= 0 {
			th := "0 0"
			if i == 0 {
				th = "100 10"
			}
			a = append(a, fmt.Sprintf("  -> 10.211.%d.2:80 Masq %d %s", i+1, x.web[i], th))
		}
		if x.tcp[i] >= 0 {
			b = append(b, fmt.Sprintf("  -> 10.211.%d.2:8080 Route %d 0 0", i+1, x.tcp[i]))
		}
	}
	if x.webSorry >= 0 {
		a = append(a, fmt.Sprintf("  -> 10.211.9.2:80 Masq %d 0 0", x.webSorry))
	}
	if x.tcpSorry >= 0 {
		b = append(b, fmt.Sprintf("  -> 10.211.9.2:8080 Route %d 0 0", x.tcpSorry))
	}
	return joinView([][]string{a, b})
}

// Settling in the VM: the table is read every 250 ms (an ipvsadm run
// costs ~0.1 s of the VM's one CPU) until it is the one wanted and stays
// so for 2 s (two check rounds), for at most 20 s (lvsmon deletes a
// quiesced sorry server at a resync, every step: 10 s).
const (
	kernPoll  = 250 * time.Millisecond
	kernQuiet = 2 * time.Second
	kernBound = 20 * time.Second
)

// TestKernelSideBySideKeepalived runs Debian's keepalived (its checkers
// only, -C: no VRRP) with a config, then lvsmon with the import of the
// same config, against the same real servers through the same steps,
// and compares `ipvsadm -Ln` and `ipvsadm -Ln --thresholds` after each
// step settles: weights, forwarding, thresholds, persistence, sorry
// servers. keepalived's tables are checked against the ones the config
// describes; lvsmon's against keepalived's, but where the README's
// "Migrating from" lists a deliberate difference, which is asserted as
// such.
func TestKernelSideBySideKeepalived(t *testing.T) {
	l := &sbLab{dir: t.TempDir(), table: kernTable, read: kernIpvsadm, poll: kernPoll, quiet: kernQuiet, bound: kernBound}
	if v := kernIpvsadm(t); v != "" {
		t.Fatalf("the kernel table is not empty at the start:\n%s", v)
	}
	start := time.Now()
	kernSh(t, sbTopology)
	t.Cleanup(func() { exec.Command("/bin/sh", "-c", sbTeardown).Run() })
	for i := range l.rs {
		ns := fmt.Sprintf("sb%d", i+1)
		l.rs[i] = startRealServer(t, ns, func() (web, tcp net.Listener, err error) {
			err = netns.Named(ns, func() (err error) {
				if web, err = net.Listen("tcp", ":80"); err != nil {
					return err
				}
				tcp, err = net.Listen("tcp", ":8080")
				return err
			})
			return web, tcp, err
		})
	}
	l.conf = func(t *testing.T, name string, web, tcp [3]int) string {
		return l.write(t, "keepalived-"+name+".conf", sbConf(web, tcp))
	}
	t.Logf("topology and real servers up in %s", time.Since(start).Round(time.Millisecond))
	sideBySide(t, l, "keepalived",
		func(t *testing.T, conf string) director { return startKeepalived(t, conf) },
		func(t *testing.T, conf string) *lvsmonDirector {
			kernSh(t, "ipvsadm -C")
			nl, err := lvs.NewNetlink()
			if err != nil {
				t.Fatalf("netlink in the VM: %v", err)
			}
			t.Cleanup(func() { nl.Close() })
			return startLvsmonDirector(t, importer.FormatKeepalived, conf, nl, true, false)
		})
}

// kernIpvsadm reads the kernel table with `ipvsadm -Ln` and `ipvsadm
// -Ln --thresholds`.
func kernIpvsadm(t *testing.T) view {
	t.Helper()
	for {
		ln := kernSh(t, "ipvsadm -Ln")
		th := kernSh(t, "ipvsadm -Ln --thresholds")
		v, err := ipvsadmView(ln, th)
		if errors.Is(err, errTableMoved) {
			continue
		}
		if err != nil {
			t.Fatalf("%v\n%s\n%s", err, ln, th)
		}
		return v
	}
}

// kernSh runs a shell snippet in the VM and fails the test on error.
func kernSh(t *testing.T, script string) string {
	t.Helper()
	out, err := exec.Command("/bin/sh", "-c", script).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", script, err, out)
	}
	return string(out)
}

// keepalived is Debian's keepalived, in the foreground, its checkers
// only.
type keepalived struct {
	tool
	logs *testutil.SyncBuffer
}

// startKeepalived runs keepalived on a copy of conf of its own, which a
// reload replaces.
func startKeepalived(t *testing.T, conf string) *keepalived {
	t.Helper()
	dir := t.TempDir()
	k := &keepalived{tool: tool{name: "keepalived", conf: filepath.Join(dir, "keepalived.conf"), stopWait: 15 * time.Second}, logs: &testutil.SyncBuffer{}}
	k.writeConf(t, conf)
	k.cmd = exec.Command("keepalived", "--dont-fork", "--log-console", "--log-detail", "--no-syslog", "--check",
		"--use-file", k.conf, "--pid", filepath.Join(dir, "keepalived.pid"), "--checkers_pid", filepath.Join(dir, "checkers.pid"),
		"--vrrp_pid", filepath.Join(dir, "vrrp.pid"), "--bfd_pid", filepath.Join(dir, "bfd.pid"))
	k.cmd.Stdout, k.cmd.Stderr = k.logs, k.logs
	k.start(t)
	t.Cleanup(func() {
		k.stop(t)
		if t.Failed() {
			t.Logf("keepalived's log:\n%s", tail(k.logs.String(), 100))
		}
	})
	return k
}
