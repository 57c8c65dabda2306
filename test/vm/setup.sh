#!/usr/bin/env bash
# setup.sh — prepare the host for running Go tests inside a qemu VM that has
# real IPVS (the host kernel has none).
#
# What it produces, under ${LVSMON_VM_CACHE:-/var/cache/lvsmon-vm}:
#   <kernel-pkg>_<version>/<pkg>.deb      Debian kernel package (kept for rebuilds)
#   <kernel-pkg>_<version>/vmlinux        ELF kernel extracted from the bzImage
#                                         (boots via PVH, ~3x faster than the
#                                         xz bzImage under TCG)
#   <kernel-pkg>_<version>/modules/       the IPVS/veth/dummy/bridge module
#                                         closure + depmod metadata
#   <kernel-pkg>_<version>/initramfs.gz   base initramfs: busybox, ip, ipvsadm,
#                                         their libs, the modules. No /init:
#                                         vmexec.sh appends one per run.
#   <kernel-pkg>_<version>/ready          sha256 of this script; vmexec.sh
#                                         compares it to decide whether setup
#                                         must run again
#   current -> <kernel-pkg>_<version>     what vmexec.sh boots
#
# It is idempotent: each stage is skipped when its stamp matches, so a warm
# run costs about a second (mostly apt-cache resolving the kernel package).
#
# Usage: setup.sh [--force]     --force rebuilds everything (keeps the .deb)
#
# Environment:
#   LVSMON_VM_CACHE       cache dir (default /var/cache/lvsmon-vm)
#   LVSMON_VM_KERNEL_PKG  use this kernel package instead of resolving
#                         linux-image-amd64 (e.g. linux-image-6.1.0-56-amd64)
#
# Exit status: 0 ready, non-zero with a "setup.sh: ERROR:" line otherwise.
set -euo pipefail

# depmod, modprobe and ip live in /usr/sbin, often not in a user's PATH.
export PATH="$PATH:/usr/sbin:/sbin"
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
CACHE=${LVSMON_VM_CACHE:-/var/cache/lvsmon-vm}
FORCE=0

for a in "$@"; do
	case $a in
	--force) FORCE=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$SELF" | sed '$d; s/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "setup.sh: ERROR: unknown argument: $a (try --help)" >&2
		exit 2
		;;
	esac
done

# Host packages. qemu-system-x86 without recommends is ~85 MB instead of
# ~900 MB (the recommends pull GTK, mesa, ovmf...). ipvsadm is copied into the
# guest so tests can compare against the reference tool; kmod gives depmod and
# modprobe -d for resolving the module closure on the host.
PACKAGES=(qemu-system-x86 busybox-static kmod cpio iproute2 ipvsadm xz-utils)

# Modules for the guest, in load order. libcrc32c has only a *soft*
# dependency on a crc32c implementation, which busybox modprobe does not
# follow, so crc32c_generic comes first explicitly. dummy gets numdummies=0 or
# it creates dummy0 on load and tests that add dummy0 fail with EEXIST.
# Entries marked "?" are optional: skipped when this kernel does not ship them
# (e.g. ip_vs_twos appeared in 6.2).
MODULES_LOAD=(
	crc32c_generic libcrc32c nf_defrag_ipv4 nf_defrag_ipv6 nf_conntrack
	ip_vs ip_vs_rr
	"?ip_vs_wrr" "?ip_vs_wlc" "?ip_vs_lc" "?ip_vs_sh" "?ip_vs_sed" "?ip_vs_nq"
	"?ip_vs_dh" "?ip_vs_lblc" "?ip_vs_lblcr" "?ip_vs_mh" "?ip_vs_fo"
	"?ip_vs_ovf" "?ip_vs_twos"
	veth "dummy numdummies=0" "?bridge"
)
# Shipped in the initramfs but not loaded at boot; the kernel loads them on
# demand through /sbin/modprobe (e.g. `ip link add t0 type ipip`), which is
# what a test of IPVS tunnel mode on the real-server side would need.
MODULES_EXTRA=("?ipip" "?ip6_tunnel" "?macvlan")

T0=$EPOCHREALTIME
TMPS=() # temp dirs removed on exit, also when we die half-way
cleanup() { ((${#TMPS[@]})) && rm -rf "${TMPS[@]}"; return 0; }
trap cleanup EXIT
log() { printf 'setup.sh: %s\n' "$*" >&2; }
die() {
	printf 'setup.sh: ERROR: %s\n' "$*" >&2
	exit 1
}
# elapsed START -> "1.23s"
elapsed() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2fs", b-a}'; }
# step "message" cmd...: run a command, print how long it took.
step() {
	local msg=$1 t=$EPOCHREALTIME
	shift
	"$@" || die "$msg failed"
	log "$msg ($(elapsed "$t"))"
}

[[ $(uname -m) == x86_64 ]] || die "only x86_64 hosts are supported"
command -v apt-get >/dev/null || die "needs a Debian/Ubuntu host with apt"

mkdir -p "$CACHE" 2>/dev/null || die "cannot create $CACHE (run as root or set LVSMON_VM_CACHE to a writable dir)"
[[ -w $CACHE ]] || die "$CACHE is not writable (run as root or set LVSMON_VM_CACHE)"
CACHE=$(cd "$CACHE" && pwd)

# Serialise concurrent setups (go test runs packages in parallel and each
# vmexec.sh may call us).
exec 9>"$CACHE/.setup.lock"
if ! flock -n 9; then
	log "another setup.sh is running, waiting for it"
	flock 9
	log "waited $(elapsed "$T0")"
	T0=$EPOCHREALTIME
fi

# Leftovers of an interrupted run (we hold the lock, so nobody uses them).
rm -rf "$CACHE"/*/.rootfs.* "$CACHE"/*/.dl.* "$CACHE"/*/.kroot "$CACHE"/*/.modules.new \
	"$CACHE"/*/.vmlinux.new "$CACHE"/*/.initramfs.gz.new

APT_UPDATED=0
apt_update() {
	[[ $APT_UPDATED == 1 ]] && return 0
	[[ $EUID == 0 ]] || die "apt-get update needed but not root; run: sudo apt-get update"
	step "apt-get update" apt-get update -qq >/dev/null
	APT_UPDATED=1
}

# ---------------------------------------------------------------- packages
missing=()
for p in "${PACKAGES[@]}"; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[[ $st == installed ]] || missing+=("$p")
done
if ((${#missing[@]})); then
	log "missing packages: ${missing[*]}"
	[[ $EUID == 0 ]] || die "run as root, or: sudo apt-get install -y --no-install-recommends ${missing[*]}"
	apt_update
	# dpkg is chatty even with -qq; keep its output in a log, show it on error.
	t=$EPOCHREALTIME
	if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
		"${missing[@]}" >"$CACHE/apt-install.log" 2>&1; then
		tail -n 30 "$CACHE/apt-install.log" >&2
		die "apt-get install ${missing[*]} failed (full log: $CACHE/apt-install.log)"
	fi
	log "apt-get install --no-install-recommends ${missing[*]} ($(elapsed "$t"))"
else
	log "packages present: ${PACKAGES[*]}"
fi
for t in qemu-system-x86_64 depmod modprobe cpio gzip xz dd od flock setpriv timeout sha256sum; do
	command -v "$t" >/dev/null || die "required tool '$t' not found"
done
BUSYBOX=/bin/busybox
[[ -x $BUSYBOX ]] || die "$BUSYBOX missing (package busybox-static)"
# busybox-static and busybox (dynamic) share /bin/busybox; make sure we got
# the static one, because the guest has only the libs of ip/ipvsadm.
if LC_ALL=C od -An -c -N 4096 "$BUSYBOX" | tr -d ' \n' | grep -q 'ld-linux'; then
	die "$BUSYBOX is dynamically linked; install busybox-static"
fi

# ------------------------------------------------------------ kernel: pick
# The kernel package is resolved at run time: bookworm-security replaces
# linux-image-6.1.0-N-amd64 regularly and old ones vanish from the mirror.
# We never install it (that would upgrade systemd/udev and run
# update-initramfs on the host); we only download and unpack it.
resolve_kernel() {
	local sig line
	KPKG=${LVSMON_VM_KERNEL_PKG:-} KVER=
	# apt-cache costs ~1 s per call here (Docker images disable pkgcache.bin),
	# so memoise the answer keyed by the apt lists it is computed from.
	sig=$({
		echo "${LVSMON_VM_KERNEL_PKG:-}"
		stat -c '%n %s %Y' /var/lib/apt/lists/*Packages* /etc/apt/sources.list \
			/etc/apt/sources.list.d/* /etc/apt/preferences.d/* 2>/dev/null
	} | sha256sum | cut -c1-16)
	if [[ -f $CACHE/resolved ]] && read -r line KPKG KVER <"$CACHE/resolved" &&
		[[ $line == "$sig" && -n $KPKG && -n $KVER ]]; then
		return 0
	fi
	KPKG=${LVSMON_VM_KERNEL_PKG:-} KVER=
	if [[ -z $KPKG ]]; then
		# The metapackage pins the versioned image: "Depends: linux-image-6.1.0-56-amd64 (= 6.1.192-2)".
		line=$(apt-cache show --no-all-versions linux-image-amd64 2>/dev/null |
			awk '/^Depends:/{print; exit}') || true
		KPKG=$(grep -o 'linux-image-[0-9][^ ,]*' <<<"$line" | head -n1) || true
		KVER=$(sed -n 's/.*linux-image-[0-9][^ ,]* (= \([^)]*\)).*/\1/p' <<<"$line")
	fi
	if [[ -n $KPKG && -z $KVER ]]; then
		KVER=$(apt-cache show --no-all-versions "$KPKG" 2>/dev/null |
			awk '/^Version:/{print $2; exit}') || true
	fi
	[[ -n $KPKG && -n $KVER ]] || return 1
	echo "$sig $KPKG $KVER" >"$CACHE/resolved"
}
t=$EPOCHREALTIME
if ! resolve_kernel; then
	# No or stale apt lists (fresh container): refresh once and retry.
	if [[ $EUID == 0 ]]; then
		apt_update
		resolve_kernel || true
	fi
fi
if [[ -z ${KPKG:-} || -z ${KVER:-} ]]; then
	if [[ -f $CACHE/current/ready ]]; then
		log "WARNING: cannot resolve the kernel package via apt; keeping cached $(readlink "$CACHE/current")"
		exit 0
	fi
	die "cannot resolve the kernel package (apt-cache depends linux-image-amd64 gave nothing); run apt-get update"
fi
KEY="${KPKG}_${KVER//[:\/]/_}"
KDIR="$CACHE/$KEY"
log "kernel package: $KPKG $KVER ($(elapsed "$t"))"
mkdir -p "$KDIR"

# Stamp of the kernel stage: what goes into vmlinux + modules/. Only the
# module lists matter, not the whole script, so editing unrelated parts does
# not re-extract 400 MB.
KSTAMP=$(printf '%s\n' "v1" "$KPKG" "$KVER" "${MODULES_LOAD[@]}" -- "${MODULES_EXTRA[@]}" | sha256sum | cut -c1-16)

# ------------------------------------------------------- kernel: download
fetch_deb() {
	local d
	DEB=$(ls "$KDIR"/"${KPKG}"_*.deb 2>/dev/null | head -n1 || true)
	[[ -n $DEB ]] && return 0
	d=$(mktemp -d "$KDIR/.dl.XXXXXX")
	TMPS+=("$d")
	# APT::Sandbox::User=root avoids the harmless "unsandboxed download as
	# root" warning; as non-root apt downloads as the user anyway.
	if ! (cd "$d" && apt-get download -qq -o APT::Sandbox::User="$(id -un)" "$KPKG=$KVER"); then
		rm -rf "$d"
		return 1
	fi
	mv "$d"/*.deb "$KDIR/"
	rm -rf "$d"
	DEB=$(ls "$KDIR"/"${KPKG}"_*.deb | head -n1)
}

# ------------------------------------------------- kernel: vmlinux, modules
# Extract the ELF vmlinux from a bzImage. The x86 boot header tells where the
# compressed payload is: setup_sects at 0x1f1 (0 means 4), payload_offset at
# 0x248 and payload_length at 0x24c, relative to the protected-mode code that
# starts at (setup_sects+1)*512. Debian uses xz; the kbuild appends the 4-byte
# uncompressed size, hence --single-stream / tolerated trailing garbage.
extract_vmlinux() {
	local bz=$1 out=$2 ss off len magic rc=0
	ss=$(od -An -tu1 -j $((0x1f1)) -N1 "$bz" | tr -d ' ')
	((ss == 0)) && ss=4
	off=$(od -An -tu4 -j $((0x248)) -N4 "$bz" | tr -d ' ')
	len=$(od -An -tu4 -j $((0x24c)) -N4 "$bz" | tr -d ' ')
	off=$(((ss + 1) * 512 + off))
	magic=$(od -An -tx1 -j "$off" -N4 "$bz" | tr -d ' ')
	case $magic in
	fd377a58) dd if="$bz" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none |
		xz -dc --single-stream >"$out" || rc=$? ;;
	1f8b*) dd if="$bz" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$len" status=none |
		gzip -dc >"$out" 2>/dev/null || rc=$? ; ((rc == 2)) && rc=0 ;;
	28b52ffd) dd if="$bz" bs=1M iflag=skip_bytes,count_bytes skip="$off" count="$((len - 4))" status=none |
		zstd -dcq >"$out" || rc=$? ;;
	*) log "unknown kernel payload magic $magic"; return 1 ;;
	esac
	((rc == 0)) || return 1
	[[ $(od -An -tx1 -N4 "$out" | tr -d ' ') == 7f454c46 ]] || return 1
}

build_kernel_stage() {
	local t kroot mroot kmod relpath line path mod params opt
	t=$EPOCHREALTIME
	if ! fetch_deb; then
		# The candidate may have left the mirror since the last apt-get update.
		log "download of $KPKG=$KVER failed; refreshing apt lists and retrying"
		apt_update
		resolve_kernel || die "cannot resolve the kernel package after apt-get update"
		[[ "${KPKG}_${KVER//[:\/]/_}" == "$KEY" ]] || {
			log "kernel changed to $KPKG $KVER after apt-get update; restarting"
			exec "$SELF" "$@"
		}
		fetch_deb || die "apt-get download $KPKG=$KVER failed"
	fi
	log "kernel .deb: $(basename "$DEB") $(du -h "$DEB" | cut -f1) ($(elapsed "$t"))"

	kroot="$KDIR/.kroot"
	rm -rf "$kroot" "$KDIR/.modules.new"
	TMPS+=("$kroot" "$KDIR/.modules.new" "$KDIR/.vmlinux.new")
	step "dpkg-deb -x" dpkg-deb -x "$DEB" "$kroot"
	# bookworm ships /lib/modules; newer (merged-/usr) packages use
	# /usr/lib/modules. kmod's -d/-b expect <root>/lib/modules.
	if [[ ! -d $kroot/lib/modules && -d $kroot/usr/lib/modules ]]; then
		ln -s usr/lib "$kroot/lib"
	fi
	KREL=$(ls "$kroot/lib/modules" | head -n1)
	[[ -n $KREL && -d $kroot/lib/modules/$KREL/kernel ]] || die "no modules in $DEB"
	# The .deb carries no modules.dep; generate it so modprobe can resolve.
	step "depmod (full tree, $KREL)" depmod -b "$kroot" "$KREL"

	# Resolve the module closure with the real modprobe and copy only it.
	mroot="$KDIR/.modules.new"
	kmod="lib/modules/$KREL"
	mkdir -p "$mroot/$kmod" "$mroot/etc/lvsmon-vm"
	: >"$mroot/etc/lvsmon-vm/modules.load"
	for line in "${MODULES_LOAD[@]}" -- "${MODULES_EXTRA[@]}"; do
		[[ $line == -- ]] && { opt=extra; continue; }
		read -r mod params <<<"$line"
		local optional=0
		[[ $mod == \?* ]] && { optional=1; mod=${mod#\?}; }
		local deps
		if ! deps=$(modprobe -d "$kroot" -S "$KREL" --show-depends "$mod" 2>/dev/null); then
			((optional)) && { log "module $mod not in this kernel, skipped"; continue; }
			die "module $mod not found in $KREL"
		fi
		while read -r kw path _; do
			[[ $kw == insmod ]] || continue # "builtin x" lines need nothing
			relpath=${path#"$kroot"/}
			relpath=${relpath#/} # modprobe may print //lib/modules/...
			mkdir -p "$mroot/$(dirname "$relpath")"
			cp -n "$kroot/$relpath" "$mroot/$relpath"
		done <<<"$deps"
		# Only the boot list goes to modules.load; extras load on demand.
		[[ ${opt:-} == extra ]] || printf '%s %s\n' "$mod" "${params:-}" >>"$mroot/etc/lvsmon-vm/modules.load"
	done
	for f in modules.order modules.builtin modules.builtin.modinfo; do
		[[ -f $kroot/$kmod/$f ]] && cp "$kroot/$kmod/$f" "$mroot/$kmod/"
	done
	depmod -b "$mroot" "$KREL" || die "depmod of the module closure failed"
	log "modules: $(find "$mroot" -name '*.ko*' | wc -l) files, $(du -sh "$mroot/lib" | cut -f1)"

	t=$EPOCHREALTIME
	local bz="$kroot/boot/vmlinuz-$KREL"
	[[ -f $bz ]] || die "no $bz in $DEB"
	if extract_vmlinux "$bz" "$KDIR/.vmlinux.new"; then
		mv -f "$KDIR/.vmlinux.new" "$KDIR/vmlinux"
		rm -f "$KDIR/vmlinuz"
		log "vmlinux extracted: $(du -h --apparent-size "$KDIR/vmlinux" | cut -f1) ($(elapsed "$t"))"
	else
		# Fallback: boot the bzImage itself (works, ~5-10 s slower per boot).
		rm -f "$KDIR/.vmlinux.new" "$KDIR/vmlinux"
		cp "$bz" "$KDIR/vmlinuz"
		log "WARNING: could not extract vmlinux, will boot the bzImage (slower)"
	fi
	rm -rf "$KDIR/modules"
	mv "$mroot" "$KDIR/modules"
	echo "$KREL" >"$KDIR/release"
	rm -rf "$kroot" # ~400 MB; the .deb stays for rebuilds
	echo "$KSTAMP" >"$KDIR/kernel.stamp"
}

if [[ $FORCE == 1 || ! -f $KDIR/kernel.stamp || $(cat "$KDIR/kernel.stamp") != "$KSTAMP" ]] ||
	[[ ! -f $KDIR/vmlinux && ! -f $KDIR/vmlinuz ]]; then
	build_kernel_stage "$@"
else
	log "kernel stage cached: $KDIR"
fi
KREL=$(cat "$KDIR/release")

# ----------------------------------------------------------- initramfs
# Copy a dynamic executable plus every library ldd reports, at the same
# paths, so the guest's ld.so finds them without ld.so.cache (Debian's
# ld.so searches /lib/x86_64-linux-gnu by default).
copy_with_libs() {
	local bin=$1 dest=$2 root=$3 lib
	install -D -m 0755 "$bin" "$root/$dest"
	while read -r lib; do
		[[ -e $root/$lib ]] && continue
		install -D -m 0755 "$(readlink -f "$lib")" "$root/$lib"
	done < <(ldd "$bin" | awk '/=> \//{print $3} /^[ \t]*\/[^ ]+ \(/{print $1}')
}

build_initramfs() {
	local root t name
	t=$EPOCHREALTIME
	root=$(mktemp -d "$KDIR/.rootfs.XXXXXX")
	TMPS+=("$root")
	mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,tmp,root,var/tmp,lib64}
	chmod 1777 "$root/tmp" "$root/var/tmp"

	# busybox + one symlink per applet at its canonical place. /sbin/ip is
	# replaced below by iproute2's (busybox ip has no netns). Note that the
	# guest *shell* still prefers busybox applets, so scripts must call
	# /sbin/ip by absolute path; exec from Go follows PATH and is fine.
	install -m 0755 "$BUSYBOX" "$root/bin/busybox"
	while read -r name; do
		[[ $name == */* && $name != bin/busybox && ! -e $root/$name ]] || continue
		[[ -d $root/${name%/*} ]] || mkdir -p "$root/${name%/*}"
		ln -s /bin/busybox "$root/$name"
	done < <("$BUSYBOX" --list-full)
	[[ -e $root/bin/sh ]] || ln -s busybox "$root/bin/sh"

	rm -f "$root/sbin/ip" "$root/bin/ip"
	copy_with_libs "$(command -v ip)" sbin/ip "$root"
	copy_with_libs "$(command -v ipvsadm)" sbin/ipvsadm "$root"
	# Quick check that the copied libs are complete: ask the copied loader to
	# resolve them using only the copied library dir. (Running the tools is
	# no test here: ipvsadm fails on a host without IPVS.)
	local ld=$root/lib64/ld-linux-x86-64.so.2 out
	[[ -x $ld ]] || die "no dynamic loader copied"
	for name in ip ipvsadm; do
		if ! out=$("$ld" --library-path "$root/lib/x86_64-linux-gnu" --list "$root/sbin/$name" 2>&1) ||
			grep -q 'not found' <<<"$out"; then
			die "copied /sbin/$name misses libraries: $out"
		fi
	done

	cp -a "$KDIR/modules/." "$root/"

	# Minimal /etc so Go's resolver and user lookups behave.
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
	printf '127.0.0.1 localhost\n::1 localhost ip6-localhost ip6-loopback\n' >"$root/etc/hosts"
	printf 'hosts: files dns\n' >"$root/etc/nsswitch.conf"
	echo lvsmon-vm >"$root/etc/hostname"
	mkdir -p "$root/etc/iproute2" "$root/var/run"
	rmdir "$root/var/run" && ln -s /run "$root/var/run"

	# newc cpio, owned by root, sorted for reproducibility. Device nodes are
	# not needed: the kernel's built-in initramfs provides /dev/console and
	# init mounts devtmpfs.
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet --reproducible | gzip -6 -n) >"$KDIR/.initramfs.gz.new" ||
		die "building the cpio failed"
	mv -f "$KDIR/.initramfs.gz.new" "$KDIR/initramfs.gz"
	rm -rf "$root"
	log "initramfs.gz built: $(du -h "$KDIR/initramfs.gz" | cut -f1) ($(elapsed "$t"))"
}

# Rebuild when this script, the kernel stage or the copied host packages
# change (a libc upgrade on the host must reach the guest's copies too).
SELF_SUM=$(sha256sum "$SELF" | cut -d' ' -f1)
ISTAMP=$( {
	echo "$SELF_SUM" "$KSTAMP"
	dpkg-query -W -f='${Package} ${Version}\n' busybox-static iproute2 ipvsadm libc6 2>/dev/null
} | sha256sum | cut -c1-16)
if [[ $FORCE == 1 || ! -f $KDIR/initramfs.gz || ! -f $KDIR/initramfs.stamp ||
	$(cat "$KDIR/initramfs.stamp") != "$ISTAMP" ]]; then
	build_initramfs
	echo "$ISTAMP" >"$KDIR/initramfs.stamp"
else
	log "initramfs cached: $KDIR/initramfs.gz"
fi

# ------------------------------------------------------------- extras
# Programs only some packages' tests need in the guest (keepalived for the
# side-by-side comparison) go in archives of their own, cached next to the
# base: vmexec.sh appends one only for a package that names it in its
# testdata/vm-extras, so the base stays small and the other packages boot
# as fast as before. keepalived and its libraries are ~25 MB: gzip'd they
# would cost the guest a second or more of decompression under TCG, so the
# archive stays uncompressed (qemu loads it as it is). An extra whose
# program is not installed is skipped here; vmexec.sh then says what to
# install.
EXTRAS=(keepalived:/usr/sbin/keepalived)

build_extra() {
	local name=$1 bin=$2 out=$3 root ld lib outl
	root=$(mktemp -d "$KDIR/.rootfs.XXXXXX")
	TMPS+=("$root")
	copy_with_libs "$bin" "${bin#/}" "$root"
	ld=$root/lib64/ld-linux-x86-64.so.2
	if ! outl=$("$ld" --library-path "$root/lib/x86_64-linux-gnu" --list "$root$bin" 2>&1) ||
		grep -q 'not found' <<<"$outl"; then
		die "copied $bin misses libraries: $outl"
	fi
	# The base has the loader, libc and more, copied from the same host
	# files: leave out what it already holds.
	while read -r lib; do
		[[ -n ${BASE_FILES[$lib]:-} ]] && rm -f "$root/$lib"
	done < <(cd "$root" && find . -type f ! -path "./${bin#/}" -printf '%P\n')
	(cd "$root" && find . -mindepth 1 | LC_ALL=C sort |
		cpio -o -H newc -R 0:0 --quiet --reproducible) >"$out.new" || die "building the $name archive failed"
	mv -f "$out.new" "$out"
	rm -rf "$root"
}

# The files of the base, so that an extra does not carry them again.
declare -A BASE_FILES=()
base_listed=0
for e in "${EXTRAS[@]}"; do
	name=${e%%:*} bin=${e#*:}
	out=$KDIR/extra-$name.cpio
	if [[ ! -x $bin ]]; then
		rm -f "$out" "$out.stamp"
		log "extra $name skipped: $bin is not installed"
		continue
	fi
	# Rebuilt when this script, the base, the program or its libraries change.
	estamp=$( {
		echo "$SELF_SUM" "$ISTAMP"
		sha256sum "$bin"
		ldd "$bin" | awk '/=> \//{print $3}' | xargs -r stat -L -c '%n %s %Y'
	} | sha256sum | cut -c1-16)
	if [[ $FORCE == 0 && -f $out && -f $out.stamp && $(cat "$out.stamp") == "$estamp" ]]; then
		log "extra $name cached: $out"
		continue
	fi
	if ((!base_listed)); then
		while read -r f; do BASE_FILES[${f#./}]=1; done < <(gzip -dc "$KDIR/initramfs.gz" | cpio -it --quiet 2>/dev/null)
		base_listed=1
	fi
	t=$EPOCHREALTIME
	build_extra "$name" "$bin" "$out"
	echo "$estamp" >"$out.stamp"
	log "extra $name built: $(du -h "$out" | cut -f1) ($(elapsed "$t"))"
done

# ---------------------------------------------------------------- publish
echo "$SELF_SUM" >"$KDIR/ready"
if [[ $(readlink "$CACHE/current" 2>/dev/null) != "$KEY" ]]; then
	ln -sfn "$KEY" "$CACHE/.current.new"
	mv -T "$CACHE/.current.new" "$CACHE/current" # atomic switch
	log "current -> $KEY"
fi

# Drop other kernels, but only if no VM is running right now (vmexec.sh holds
# a shared lock on .use.lock while qemu runs).
exec 8>"$CACHE/.use.lock"
if flock -n -x 8; then
	for d in "$CACHE"/*/; do
		d=${d%/}
		[[ -L $d || $(basename "$d") == "$KEY" ]] && continue
		[[ -f $d/ready || -f $d/kernel.stamp || -d $d/.kroot ]] || continue
		log "removing old kernel cache $(basename "$d")"
		rm -rf "$d"
	done
	flock -u 8
fi
exec 8>&-

K=vmlinux
[[ -f $KDIR/vmlinux ]] || K=vmlinuz
log "ready: kernel $KREL ($K), initramfs $(du -h "$KDIR/initramfs.gz" | cut -f1), cache $CACHE/current; total $(elapsed "$T0")"
