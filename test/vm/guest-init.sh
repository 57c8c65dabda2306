#!/bin/sh
# guest-init.sh — PID 1 inside the lvsmon test VM (busybox ash).
#
# vmexec.sh packs this file as /init into the per-run initramfs, next to
# /lvsmon/run.conf (test binary, args, env, nonce) and the test binary.
#
# Channels back to the host:
#   ttyS0 (kernel console)  -> a log file on the host: diagnostics, markers,
#                              the outbox (coverage/profile files, base64)
#   ttyS1 (raw)             -> vmexec.sh's stdout: ONLY the test binary's
#                              stdout+stderr, byte for byte, so `go test -v`
#                              and test2json (`go test -json`) see exactly
#                              what the binary wrote, never kernel messages.
#   isa-debug-exit port 0xf4 -> qemu exit status (rc<<1)|1
#
# Note: busybox ash runs its own applets before looking at PATH, so in this
# script `ip` is busybox's; iproute2 is /sbin/ip. Programs started by the test
# (exec.Command) do use PATH and get /sbin/ip and /sbin/ipvsadm.

# Safety: this script changes sysctls, mounts and kills every process. It
# must never run on a host by accident.
if [ "$$" != 1 ]; then
	echo "guest-init.sh: refusing to run: not PID 1 (this is the init of the test VM)" >&2
	exit 1
fi

export PATH=/sbin:/usr/sbin:/bin:/usr/bin
export HOME=/root TMPDIR=/tmp TERM=dumb
umask 022

say() { echo "lvsmon-vm: $*"; }
uptime_s() { read -r up _ </proc/uptime && echo "$up"; }

# Report rc through the marker line and the isa-debug-exit device, then power
# off. A kernel panic (e.g. init dying) also ends qemu, with status 0 and
# no marker: that is how the host tells "test failed" from "VM broke".
finish() {
	rc=$1
	# Only emergencies on the console from here on, so kernel messages cannot
	# interleave with the outbox and the marker.
	echo 1 >/proc/sys/kernel/printk 2>/dev/null
	echo "LVSMON-VM-EXIT $NONCE rc=$rc uptime=$(uptime_s)"
	sync
	# The device reads one byte; qemu exits with (byte<<1)|1.
	# shellcheck disable=SC2059 # the format is the octal escape
	printf "\\$(printf %03o $((rc & 255)))" | dd of=/dev/port bs=1 seek=244 count=1 2>/dev/null
	poweroff -f
	sleep 5 # poweroff is async; never let PID 1 exit (that panics)
}
setup_failed() {
	echo "LVSMON-VM-SETUP-FAILED $NONCE $*"
	finish 125
}

NONCE=none
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mkdir -p /dev/pts /dev/shm
mount -t devpts -o mode=0620,ptmxmode=0666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
[ -f /lvsmon/run.conf ] || setup_failed "no /lvsmon/run.conf"
NONCE=$(sed -n "s/^NONCE='\(.*\)'$/\1/p" /lvsmon/run.conf)
echo "LVSMON-VM-INIT $NONCE uptime=$(uptime_s)"
hostname lvsmon-vm

# Modules, in the order setup.sh wrote (crc32c before libcrc32c, dummy with
# numdummies=0, ...). The kernel can load more on demand via /sbin/modprobe.
while read -r mod params; do
	case $mod in '' | '#'*) continue ;; esac
	# shellcheck disable=SC2086 # params are word-split on purpose
	modprobe "$mod" $params || say "WARNING: modprobe $mod $params failed"
done </etc/lvsmon-vm/modules.load
[ -e /proc/net/ip_vs ] || setup_failed "IPVS not available after loading modules"
ip link set lo up || setup_failed "cannot bring lo up"

# Run configuration written by vmexec.sh: BIN, PKGDIR, exports, and
# `set -- args...` (sourced here at top level so it sets our $@).
# shellcheck disable=SC1091 # generated per run
. /lvsmon/run.conf

# Files that must appear at the same absolute path as on the host: the
# package's testdata/ (tests open "testdata/x" relative to the package dir)
# and, with -cover, the coverage meta files go test put in its work dir.
# Copied now because /tmp was just mounted over.
[ -d /lvsmon/mirror ] && cp -a /lvsmon/mirror/. /
[ -f /lvsmon/mkdirs ] && while read -r d; do mkdir -p "$d"; done </lvsmon/mkdirs
mkdir -p "$PKGDIR"
cd "$PKGDIR" || setup_failed "cannot cd to $PKGDIR"

# ttyS1 carries the test output. Raw mode: no \n -> \r\n, no echo, no
# signal characters. fd 3 stays open in init so the termios survives and so
# that closing it at the end is the *last* close, which makes the tty layer
# wait until everything buffered has left the UART (qemu exits as soon as we
# poke isa-debug-exit, so unsent bytes would be lost).
exec 3<>/dev/ttyS1 || setup_failed "cannot open /dev/ttyS1"
stty raw -echo <&3 || setup_failed "cannot set /dev/ttyS1 raw"

# The test writes into a pipe, as under plain go test, not into the tty:
# isatty(stdout) must be false or libraries (gin, loggers) switch to colour
# output. A cat copies the pipe to ttyS1.
mkfifo /tmp/.lvsmon-out || setup_failed "mkfifo failed"
cat /tmp/.lvsmon-out >&3 &
CATPID=$!
# init keeps a write end (fd 4) until the test is done, so cat sees EOF
# exactly when the test and everything it left behind are gone.
exec 4>/tmp/.lvsmon-out

echo "LVSMON-VM-RUN $NONCE uptime=$(uptime_s) $BIN $*"
"$BIN" "$@" </dev/null >&4 2>&4 3>&- 4>&-
rc=$?
echo "LVSMON-VM-DONE $NONCE rc=$rc uptime=$(uptime_s)"
exec 4>&-

# Processes the test left behind (a server it forgot to stop) may still hold
# the pipe open, and cat would never see EOF: kill everything except init
# and cat. Kernel threads and zombies have no exe link.
leftovers() {
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = 1 ] || [ "$p" = "$CATPID" ] && continue
		readlink "/proc/$p/exe" >/dev/null 2>&1 && echo "$p"
	done
}
pids=$(leftovers)
# shellcheck disable=SC2086 # a list of pids
[ -n "$pids" ] && kill -KILL $pids 2>/dev/null
# cat may still be draining a big output into the (slow) UART; let it.
wait "$CATPID"
# The last close of ttyS1 waits until the UART has sent everything.
exec 3>&-

# Outbox: files the test wrote that go test wants back (coverage profile,
# GOCOVERDIR, cpu/mem profiles). Sent as base64 of a tar.gz on the console.
if [ -s /lvsmon/outpaths ]; then
	set --
	while read -r p; do
		[ -e "$p" ] && set -- "$@" "${p#/}"
	done </lvsmon/outpaths
	# (busybox tar has no -T, hence the positional list)
	if [ $# -gt 0 ] && tar -C / -czf /tmp/.outbox.tgz "$@"; then
		echo 1 >/proc/sys/kernel/printk
		# shellcheck disable=SC2046 # split "sum  file"
		set -- $(sha256sum /tmp/.outbox.tgz)
		echo "LVSMON-VM-OUTBOX-BEGIN $NONCE $1"
		base64 /tmp/.outbox.tgz
		echo "LVSMON-VM-OUTBOX-END $NONCE"
	fi
fi

finish "$rc"
