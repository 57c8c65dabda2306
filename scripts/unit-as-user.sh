#!/usr/bin/env bash
# unit-as-user.sh — run the unit tier (plain `go test ./...`) the way README's
# Tests section promises it runs: as a non-root user, offline, on a machine
# with nothing but Go, a C compiler, pkg-config and librrd-dev. Run it as
# root on a machine that has everything else installed (a developer's box,
# or CI after `make test`'s dependencies): it
#
#   - creates the user $LVSMON_TEST_USER (lvsmontest) if it does not exist;
#   - copies this worktree (without .git) to that user's home and fills a
#     module cache of its own from root's, so the run needs no network
#     (GOPROXY=off);
#   - in a private mount namespace, replaces /usr/bin and /usr/sbin with
#     only the programs of Debian's required and essential packages and of
#     the build tools, and hides the HA daemons' directories, so a test
#     that reaches for keepalived, heartbeat, pacemaker, chromium, python3
#     (aiosmtpd), prometheus, promtool, rrdtool, rrdcached, ip, ipvsadm,
#     docker-compose, qemu, ... fails here instead of passing by luck;
#   - runs `go test ./...` as the user and prints the wall time. Arguments
#     go to go test; packages given replace ./... (e.g.
#     scripts/unit-as-user.sh -count=1 -v ./probe/).
#
# A test that fails here belongs in the lab tier (//go:build lab), never
# behind a t.Skip.
set -euo pipefail
src=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
user=${LVSMON_TEST_USER:-lvsmontest}
goroot=${GOROOT:-/usr/local/go}
export PATH=$PATH:$goroot/bin

if [[ $(id -u) != 0 ]]; then
	echo "unit-as-user: run as root (it creates $user, copies the tree and hides the host's tools)" >&2
	exit 2
fi
id "$user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$user"
home=$(getent passwd "$user" | cut -d: -f6)
work=$home/lvsmon

# The tree, as the user's own files.
rm -rf "$work"
mkdir -p "$work"
tar -C "$src" --exclude=./.git --exclude=./bin --exclude=./dist --exclude=./.cache -cf - . | tar -C "$work" -xf -

# Modules: downloaded from root's cache into the user's, never the network.
modcache=$home/go/pkg/mod
proxy=file://$(go env GOMODCACHE)/cache/download
(cd "$work" && GOFLAGS=-modcacherw GOMODCACHE=$modcache GOPROXY=$proxy \
	GOSUMDB=off go mod download)
chown -R "$user:" "$work" "$home/go"

# The programs a bare Debian 12 with Go and librrd-dev has.
pkgs=$(dpkg-query -W -f '${Package} ${Priority} ${Essential}\n' | awk '$2 == "required" || $3 == "yes" {print $1}')
pkgs+=" gcc gcc-12 cpp cpp-12 binutils binutils-x86-64-linux-gnu libc-dev-bin pkgconf pkgconf-bin pkg-config"
allowed=$(for p in $pkgs; do dpkg -L "$p" 2>/dev/null; done | grep -E '^/usr/s?bin/[^/]+$|^/s?bin/[^/]+$' |
	sed -E 's#^/(s?bin)/#/usr/\1/#' | sort -u)

inner=$(
	cat <<'EOF'
set -euo pipefail
user=$1 work=$2 home=$3 goroot=$4 args=$5 allowed=$6 real=$7
# All of /usr stays reachable under $real/usr for the allowed programs'
# symlinks (gcc finds cc1 relative to where its binary really is).
mkdir -p "$real/usr"
mount --bind /usr "$real/usr"
export PATH=$real/usr/bin:$real/usr/sbin
for d in bin sbin; do
	mount -t tmpfs -o mode=0755 "unit-$d" "/usr/$d"
done
while read -r f; do
	[[ -n $f ]] || continue
	ln -sf "$real$f" "$f"
done <<<"$allowed"
for d in /usr/lib/heartbeat /usr/libexec/heartbeat /usr/lib/ocf /etc/ha.d /usr/lib/chromium \
	/usr/lib/python3/dist-packages /usr/share/prometheus /root/go/bin; do
	[[ -d $d ]] && mount -t tmpfs -o mode=0755 unit-hidden "$d"
done
for tool in keepalived heartbeat corosync pacemakerd crm_mon chromium python3 aiosmtpd prometheus promtool \
	rrdtool rrdcached ip ipvsadm docker-compose qemu-system-x86_64 ldirectord busybox; do
	if PATH=$goroot/bin:/usr/bin:/bin type -P "$tool" >/dev/null; then
		echo "unit-as-user: $tool is still reachable" >&2
		exit 1
	fi
done
cd "$work"
start=$(date +%s)
rc=0
"$real/usr/bin/setpriv" --reuid="$user" --regid="$user" --init-groups --reset-env \
	env -i HOME="$home" USER="$user" PATH="$goroot/bin:/usr/bin:/bin" TMPDIR=/tmp \
	GOPATH="$home/go" GOMODCACHE="$home/go/pkg/mod" GOCACHE="$home/.cache/go-build" \
	GOPROXY=off GOSUMDB=off GOTOOLCHAIN=local GOFLAGS=-buildvcs=false \
	CGO_CFLAGS='-O2 -g -Wno-incompatible-pointer-types' \
	go test $args || rc=$?
echo "unit-as-user: go test $args as $user: exit $rc, $(($(date +%s) - start)) s wall"
exit $rc
EOF
)
# Flags only (e.g. -count=1 -v): all packages.
args="$*"
[[ " $args " == *" ./"* || " $args " == *" github.com/"* ]] || args="$args ./..."
real=$(mktemp -d /tmp/lvsmon-unit-real.XXXXXX)
chmod 0755 "$real"
# Only empty directories: the bind mount lives in the namespace alone.
trap 'rmdir "$real/usr" "$real" 2>/dev/null || true' EXIT
rc=0
unshare -m --propagation private bash -c "$inner" unit-as-user "$user" "$work" "$home" "$goroot" "$args" "$allowed" "$real" </dev/null || rc=$?
exit $rc
