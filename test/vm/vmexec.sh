#!/usr/bin/env bash
# vmexec.sh — run a Go test binary inside a qemu VM with real IPVS.
#
#   CGO_ENABLED=0 go test -exec "$PWD/test/vm/vmexec.sh" ./lvs/...
#
# go test calls us as `vmexec.sh /tmp/go-build.../pkg.test -test.paniconexit0
# -test.timeout=10m0s [-test.v=...] ...` with cwd = the package directory.
# We append a second gzip'd newc cpio (our /init, the binary, its args, the
# package's testdata/) to the base initramfs built by setup.sh, boot Debian's
# kernel under TCG, and stream the binary's output to our stdout. Our exit
# status is the binary's. If the VM breaks (kernel panic, timeout, setup
# failure) we print why plus the tail of the console to stderr and exit 125.
# Works the same for `go run -exec` and for calling it by hand.
#
# Environment:
#   LVSMON_VM_CACHE         cache dir of setup.sh (default /var/cache/lvsmon-vm)
#   LVSMON_VM_TIMEOUT       hard limit in seconds for the whole VM run.
#                           Default: the test's -test.timeout + 45 s (so the
#                           test's own timeout fires first with a goroutine
#                           dump, and we still stop before go test's kill at
#                           timeout + 1 min), or 300 s without a test timeout.
#   LVSMON_VM_BOOT_TIMEOUT  seconds until /init must have started (default 120)
#   LVSMON_VM_MEM           guest RAM in MB (default 512)
#   LVSMON_VM_SMP           guest CPUs (default 1; 2 was not faster under TCG)
#   LVSMON_VM_APPEND        extra kernel command line
#   LVSMON_VM_ENV           extra host env var names to pass into the guest
#                           (LVSMON_*, GOCOVERDIR, GODEBUG, GOTRACEBACK,
#                           GOMAXPROCS are passed anyway)
#   LVSMON_VM_AUTOSETUP=0   fail instead of running setup.sh when not set up
#   LVSMON_VM_DEBUG=1       print the console log and timings to stderr
#   LVSMON_VM_KEEP=1        keep the temp dir (initrd, console log)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${LVSMON_VM_CACHE:-/var/cache/lvsmon-vm}
T0=$EPOCHREALTIME
HARNESS_RC=125 # "the VM harness failed", distinct from a test failure (1)

die() {
	printf 'vmexec.sh: ERROR: %s\n' "$*" >&2
	exit $HARNESS_RC
}
debug() {
	if [[ ${LVSMON_VM_DEBUG:-0} == 1 ]]; then printf 'vmexec.sh: %s\n' "$*" >&2; fi
}
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2fs", b-a}'; }

[[ $# -ge 1 ]] || die "usage: vmexec.sh TEST-BINARY [ARGS...] (meant for go test -exec)"
BIN=$1
shift
[[ -f $BIN && -r $BIN ]] || die "test binary not found: $BIN"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")

# ------------------------------------------------------ static binary check
# The guest has no Go toolchain libs and only the glibc copied for ip and
# ipvsadm, so the binary must be static. A dynamic ELF has a PT_INTERP (3)
# program header; read the headers with od so binutils is not needed.
check_static() {
	local f=$1 magic class machine phoff phentsize phnum types
	magic=$(od -An -tx1 -N4 "$f" | tr -d ' \n')
	[[ $magic == 7f454c46 ]] || die "$f is not an ELF binary"
	class=$(od -An -tu1 -j4 -N1 "$f" | tr -d ' \n')
	machine=$(od -An -tu2 -j18 -N2 "$f" | tr -d ' \n')
	[[ $class == 2 && $machine == 62 ]] || die "$f is not an x86-64 ELF binary"
	phoff=$(od -An -tu8 -j32 -N8 "$f" | tr -d ' \n')
	phentsize=$(od -An -tu2 -j54 -N2 "$f" | tr -d ' \n')
	phnum=$(od -An -tu2 -j56 -N2 "$f" | tr -d ' \n')
	types=$(od -An -tu4 -w"$phentsize" -j"$phoff" -N$((phentsize * phnum)) "$f" | awk '{print $1}')
	if grep -qx 3 <<<"$types"; then
		die "$(basename "$f") is dynamically linked (it has an ELF interpreter); the VM needs a static test binary: build with CGO_ENABLED=0, e.g. CGO_ENABLED=0 go test -exec $HERE/vmexec.sh ..."
	fi
}
check_static "$BIN"

# ------------------------------------------------------------ setup state
want=$(sha256sum "$HERE/setup.sh" | cut -d' ' -f1)
ready_file="$CACHE/current/ready"
if [[ ! -f $ready_file || $(<"$ready_file") != "$want" ]]; then
	if [[ ${LVSMON_VM_AUTOSETUP:-1} == 1 ]]; then
		debug "VM cache missing or stale, running setup.sh"
		"$HERE/setup.sh" >&2 || die "setup.sh failed; run $HERE/setup.sh (as root) and retry"
	else
		die "VM not set up (or setup.sh changed); run: $HERE/setup.sh"
	fi
fi
# Shared lock while we use the cache, so a concurrent setup.sh does not
# delete the kernel under a running VM.
exec 8<"$CACHE/.use.lock" || die "cannot open $CACHE/.use.lock"
flock -s 8
KDIR=$(readlink -f "$CACHE/current")
KERNEL=$KDIR/vmlinux
[[ -f $KERNEL ]] || KERNEL=$KDIR/vmlinuz
[[ -f $KERNEL && -f $KDIR/initramfs.gz ]] || die "incomplete cache in $KDIR; run $HERE/setup.sh --force"
command -v qemu-system-x86_64 >/dev/null || die "qemu-system-x86_64 not found; run $HERE/setup.sh"

# Temp dirs of runs that were SIGKILLed (no trap ran) are removed here: each
# holds the pid of its vmexec.sh.
for d in "${TMPDIR:-/tmp}"/lvsmon-vm.*; do
	[[ -O $d && -f $d/pid && ! -f $d/keep ]] || continue
	kill -0 "$(<"$d/pid")" 2>/dev/null || rm -rf "$d"
done
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lvsmon-vm.XXXXXX")
echo $$ >"$TMP/pid"
QPID='' WPID=''
cleanup() {
	[[ -n $WPID ]] && kill "$WPID" 2>/dev/null
	[[ -n $QPID ]] && kill -KILL "$QPID" 2>/dev/null
	if [[ ${LVSMON_VM_KEEP:-0} == 1 ]]; then
		: >"$TMP/keep"
		echo "vmexec.sh: kept $TMP" >&2
	else
		rm -rf "$TMP"
	fi
	return 0
}
trap cleanup EXIT

# ---------------------------------------------------------------- args
# shell-quote for the guest's ash: 'it'\''s'
q() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# Go duration ("10m0s", "1h", "1.5s", "500ms") -> whole seconds, rounded up.
go_seconds() {
	awk -v d="$1" 'BEGIN {
		s = 0; if (d == "0") { print 0; exit }
		while (d != "" && match(d, /^[0-9.]+(ns|us|µs|ms|s|m|h)/)) {
			tok = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
			match(tok, /^[0-9.]+/); n = substr(tok, 1, RLENGTH); u = substr(tok, RLENGTH + 1)
			m = (u == "h") ? 3600 : (u == "m") ? 60 : (u == "s") ? 1 : (u == "ms") ? 1e-3 : (u == "ns") ? 1e-9 : 1e-6
			s += n * m
		}
		if (d != "") { print -1; exit }
		printf "%d\n", (s == int(s)) ? s : int(s) + 1
	}'
}

PKGDIR=$(pwd)
TEST_TIMEOUT=
OUTPUTDIR=
OUTFILES=() # files the test writes that go test reads afterwards
OUTDIRS=()  # directories ditto (GOCOVERDIR); pre-filled from the host
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
	a=${args[i]}
	[[ $a == --* ]] && a=${a#-}
	name=${a%%=*} val=
	if [[ $a == *=* ]]; then
		val=${a#*=}
	elif [[ $name =~ ^-test\.(timeout|outputdir|coverprofile|gocoverdir|cpuprofile|memprofile|blockprofile|mutexprofile|trace)$ ]] &&
		((i + 1 < ${#args[@]})); then
		val=${args[i + 1]} # "-test.timeout 5s" form
	fi
	case $name in
	-test.timeout) TEST_TIMEOUT=$(go_seconds "$val") ;;
	-test.outputdir) OUTPUTDIR=$val ;;
	-test.gocoverdir) OUTDIRS+=("$val") ;;
	-test.coverprofile | -test.cpuprofile | -test.memprofile | -test.blockprofile | -test.mutexprofile | -test.trace)
		OUTFILES+=("$val") ;;
	esac
done
# Profile paths are relative to -test.outputdir (or the cwd); the guest uses
# the same absolute paths as the host, so only make them absolute.
for i in "${!OUTFILES[@]}"; do
	f=${OUTFILES[i]}
	[[ $f == /* ]] || f=${OUTPUTDIR:-$PKGDIR}/$f
	OUTFILES[i]=$f
done
[[ -n ${GOCOVERDIR:-} ]] && OUTDIRS+=("$GOCOVERDIR")

if [[ -n ${LVSMON_VM_TIMEOUT:-} ]]; then
	VM_TIMEOUT=$LVSMON_VM_TIMEOUT
elif [[ -n $TEST_TIMEOUT && $TEST_TIMEOUT -gt 0 ]]; then
	VM_TIMEOUT=$((TEST_TIMEOUT + 45))
else
	VM_TIMEOUT=300
fi
BOOT_TIMEOUT=${LVSMON_VM_BOOT_TIMEOUT:-120}

# ------------------------------------------------------------- payload
NONCE=$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')
P=$TMP/payload
mkdir -p "$P/lvsmon/bin" "$P/lvsmon/mirror"
install -m 0755 "$HERE/guest-init.sh" "$P/init"
GBIN=/lvsmon/bin/$(basename "$BIN")
ln "$BIN" "$P$GBIN" 2>/dev/null || cp "$BIN" "$P$GBIN"
if [[ -d $PKGDIR/testdata ]]; then
	mkdir -p "$P/lvsmon/mirror$PKGDIR"
	cp -a "$PKGDIR/testdata" "$P/lvsmon/mirror$PKGDIR/"
fi
: >"$P/lvsmon/outpaths"
: >"$P/lvsmon/mkdirs"
for d in "${OUTDIRS[@]}"; do
	printf '%s\n' "$d" >>"$P/lvsmon/outpaths"
	printf '%s\n' "$d" >>"$P/lvsmon/mkdirs"
	if [[ -d $d ]]; then # e.g. the coverage meta-files file go test put there
		mkdir -p "$P/lvsmon/mirror$d"
		cp -a "$d/." "$P/lvsmon/mirror$d/"
	fi
done
for f in "${OUTFILES[@]}"; do
	printf '%s\n' "$f" >>"$P/lvsmon/outpaths"
	printf '%s\n' "$(dirname "$f")" >>"$P/lvsmon/mkdirs"
done
{
	echo "NONCE='$NONCE'"
	echo "BIN=$(q "$GBIN")"
	echo "PKGDIR=$(q "$PKGDIR")"
	echo "export LVSMON_IN_VM=1"
	# Pass through a few variables. Not the whole env: the host's PATH,
	# HOME, TMPDIR etc. are wrong in the guest.
	while IFS= read -r v; do
		[[ $v =~ ^[A-Za-z_][A-Za-z0-9_]*$ && $v != LVSMON_IN_VM ]] || continue
		[[ -n ${!v+x} ]] && echo "export $v=$(q "${!v}")"
	done < <({
		compgen -e | grep -E '^(LVSMON_|GOCOVERDIR$|GODEBUG$|GOTRACEBACK$|GOMAXPROCS$)' || true
		tr ' ' '\n' <<<"${LVSMON_VM_ENV:-}"
	} | sort -u)
	printf 'set --'
	for a in "$@"; do printf ' %s' "$(q "$a")"; done
	echo
} >"$P/lvsmon/run.conf"

# Second archive, appended: the kernel unpacks concatenated (compressed)
# cpio archives in order, later files win.
(cd "$P" && find . -mindepth 1 | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$TMP/payload.cpio.gz" ||
	die "building the payload cpio failed"
# Extras the package asks for (testdata/vm-extras, one name a line: the
# archives setup.sh builds, e.g. keepalived) go between the base and the
# payload.
ARCHIVES=("$KDIR/initramfs.gz")
if [[ -f $PKGDIR/testdata/vm-extras ]]; then
	while read -r name _; do
		[[ -z $name || $name == \#* ]] && continue
		f=$KDIR/extra-$name.cpio
		if [[ ! -f $f && ${LVSMON_VM_AUTOSETUP:-1} == 1 ]]; then
			debug "extra $name missing, running setup.sh"
			"$HERE/setup.sh" >&2 || die "setup.sh failed; run $HERE/setup.sh (as root) and retry"
		fi
		[[ -f $f ]] || die "$PKGDIR/testdata/vm-extras asks for $name, which setup.sh did not build: is it installed (scripts/deps.sh test)? Then run $HERE/setup.sh"
		ARCHIVES+=("$f")
	done <"$PKGDIR/testdata/vm-extras"
fi
ARCHIVES+=("$TMP/payload.cpio.gz")
# Zero padding to a 4-byte boundary between the archives: the kernel skips
# NULs there, and requires an uncompressed cpio to start aligned.
: >"$TMP/initrd"
for f in "${ARCHIVES[@]}"; do
	size=$(stat -c %s "$TMP/initrd")
	head -c $(((4 - size % 4) % 4)) /dev/zero >>"$TMP/initrd"
	cat "$f" >>"$TMP/initrd"
done
debug "payload $(du -h "$TMP/payload.cpio.gz" | cut -f1) built in $(elapsed "$T0"), vm timeout ${VM_TIMEOUT}s"
rm -rf "$P" "$TMP/payload.cpio.gz"

# ---------------------------------------------------------------- boot
# -serial #1 = ttyS0 = console -> file; -serial #2 = ttyS1 = test output ->
# our stdout, streamed. -nic none: the guest is isolated. -no-reboot +
# panic=-1: a panic ends qemu instead of hanging. The kernel options after
# "quiet" shave ~1 s of boot under TCG.
APPEND="console=ttyS0 panic=-1 quiet mitigations=off cryptomgr.notests tsc=reliable no_timer_check rdinit=/init ${LVSMON_VM_APPEND:-}"
CONSOLE=$TMP/console.log
: >"$CONSOLE"
# shellcheck disable=SC2054 # the commas are qemu syntax
QEMU=(qemu-system-x86_64 -nodefaults -no-user-config
	-accel tcg -cpu max -m "${LVSMON_VM_MEM:-512}" -smp "${LVSMON_VM_SMP:-1}"
	-nic none -no-reboot -display none -monitor none
	-serial "file:$CONSOLE" -serial stdio
	-device isa-debug-exit,iobase=0xf4,iosize=0x04
	-kernel "$KERNEL" -initrd "$TMP/initrd" -append "$APPEND")

# setpriv --pdeathsig: if go test SIGKILLs us (its last resort), qemu dies
# too instead of running on as an orphan.
setpriv --pdeathsig KILL -- "${QEMU[@]}" </dev/null &
QPID=$!
STOPPED= # why we stopped qemu, if we did
on_signal() {
	STOPPED="interrupted by SIG$1"
	kill -TERM "$QPID" 2>/dev/null || true
}
# shellcheck disable=SC2064 # $s is meant to expand now
for s in INT TERM HUP QUIT; do trap "on_signal $s" "$s"; done

# Watchdog: boot deadline (init must print its first line) and overall
# deadline. Writes the reason to a file, then stops qemu.
(
	trap - INT TERM HUP QUIT
	start=$SECONDS booted=0
	while kill -0 "$QPID" 2>/dev/null; do
		if ((!booted)) && grep -q "LVSMON-VM-INIT $NONCE" "$CONSOLE"; then booted=1; fi
		if ((!booted && SECONDS - start >= BOOT_TIMEOUT)); then
			echo "the VM did not reach /init within ${BOOT_TIMEOUT}s (LVSMON_VM_BOOT_TIMEOUT)" >"$TMP/stopped"
			kill -TERM "$QPID" 2>/dev/null
			break
		fi
		if ((SECONDS - start >= VM_TIMEOUT)); then
			echo "the VM run exceeded ${VM_TIMEOUT}s (LVSMON_VM_TIMEOUT / -test.timeout + 45s)" >"$TMP/stopped"
			kill -TERM "$QPID" 2>/dev/null
			break
		fi
		sleep 0.5
	done
) &
WPID=$!

QRC=0
while kill -0 "$QPID" 2>/dev/null; do
	if wait "$QPID"; then QRC=0; else QRC=$?; fi
done
QPID=
kill "$WPID" 2>/dev/null || true
wait "$WPID" 2>/dev/null || true
WPID=
[[ -f $TMP/stopped ]] && STOPPED=$(<"$TMP/stopped")

# ------------------------------------------------------------- results
tr -d '\r' <"$CONSOLE" >"$TMP/console.txt"
debug "qemu exited with $QRC after $(elapsed "$T0")"
if [[ ${LVSMON_VM_DEBUG:-0} == 1 ]]; then
	echo "----- VM console -----" >&2
	grep -v '^LVSMON-VM-OUTBOX\|^[A-Za-z0-9+/=]\{76\}$' "$TMP/console.txt" >&2 || true
	echo "----- end of VM console -----" >&2
fi

console_tail() {
	echo "----- last lines of the VM console -----" >&2
	grep -v "^[A-Za-z0-9+/=]\{76\}$" "$TMP/console.txt" | tail -n "${1:-40}" >&2 || true
	echo "----- end of VM console (LVSMON_VM_DEBUG=1 prints all, LVSMON_VM_KEEP=1 keeps it) -----" >&2
}

marker=$(grep -a "^LVSMON-VM-EXIT $NONCE rc=" "$TMP/console.txt" | tail -n1 || true)
if [[ -z $marker ]]; then
	if [[ -n $STOPPED ]]; then
		why=$STOPPED
	elif grep -q "Kernel panic" "$TMP/console.txt"; then
		why="the guest kernel panicked"
	else
		why="qemu exited (status $QRC) without the end marker"
	fi
	printf '\nvmexec.sh: ERROR: VM run of %s failed: %s\n' "$(basename "$BIN")" "$why" >&2
	console_tail 40
	exit $HARNESS_RC
fi
if grep -q "^LVSMON-VM-SETUP-FAILED $NONCE" "$TMP/console.txt"; then
	printf '\nvmexec.sh: ERROR: VM setup failed: %s\n' \
		"$(grep "^LVSMON-VM-SETUP-FAILED $NONCE" "$TMP/console.txt" | cut -d' ' -f3-)" >&2
	console_tail 40
	exit $HARNESS_RC
fi
RC=${marker#*rc=}
RC=${RC%% *}
if ((QRC != ((RC & 255) << 1 | 1) & 255)); then
	debug "note: qemu status $QRC does not match rc=$RC (isa-debug-exit missing?)"
fi

# Outbox: copy back the files go test expects (coverage, profiles).
if grep -q "^LVSMON-VM-OUTBOX-BEGIN $NONCE" "$TMP/console.txt"; then
	sum=$(grep "^LVSMON-VM-OUTBOX-BEGIN $NONCE" "$TMP/console.txt" | head -n1 | cut -d' ' -f3)
	sed -n "/^LVSMON-VM-OUTBOX-BEGIN $NONCE/,/^LVSMON-VM-OUTBOX-END $NONCE/{//!p}" "$TMP/console.txt" |
		base64 -d >"$TMP/outbox.tgz" 2>/dev/null || true
	if [[ $(sha256sum "$TMP/outbox.tgz" | cut -d' ' -f1) != "$sum" ]]; then
		echo "vmexec.sh: WARNING: the outbox (coverage/profile files) arrived corrupted; ignoring it" >&2
	else
		mkdir -p "$TMP/outbox"
		tar -xzf "$TMP/outbox.tgz" -C "$TMP/outbox"
		for d in "${OUTDIRS[@]}"; do
			[[ -d $TMP/outbox$d ]] && mkdir -p "$d" && cp -a "$TMP/outbox$d/." "$d/"
		done
		for f in "${OUTFILES[@]}"; do
			[[ -f $TMP/outbox$f ]] && mkdir -p "$(dirname "$f")" && cp "$TMP/outbox$f" "$f"
		done
	fi
fi

debug "$(basename "$BIN") exited with rc=$RC; total $(elapsed "$T0")"
exit "$RC"
