#!/usr/bin/env bash
# deps.sh — install what lvsmon's build, demo or tests need on Debian 12,
# and nothing that is already there. Called by the Makefile; safe to re-run.
#
#   scripts/deps.sh build   Go toolchain check and Go modules
#   scripts/deps.sh test    + Debian packages the tests use (qemu, busybox, ...)
#   scripts/deps.sh bench   + what make bench compares lvsmon with (node_exporter)
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
what=${1:-build}

need_go="1.26"
if ! command -v go >/dev/null 2>&1; then
	if [[ -x /usr/local/go/bin/go ]]; then
		export PATH=/usr/local/go/bin:$PATH
	else
		echo "deps: Go $need_go or newer is required (https://go.dev/dl/); Debian 12's golang package is too old" >&2
		exit 1
	fi
fi
have=$(go env GOVERSION | sed 's/^go//')
if [[ "$(printf '%s\n%s\n' "$need_go" "$have" | sort -V | head -1)" != "$need_go" ]]; then
	echo "deps: Go $need_go or newer is required, found $have" >&2
	exit 1
fi

# Debian packages per purpose. Each list is only what that purpose needs.
# graphs/ links librrd through cgo, so even a build needs its headers.
pkgs=(gcc pkg-config librrd-dev)
case $what in
build) ;;
test) pkgs+=(qemu-system-x86 busybox-static kmod cpio iproute2 ipvsadm file rrdtool rrdcached
	# promtool and a real Prometheus for the exporter's and the rules' tests;
	# docker-compose validates docker-compose.yml (no Docker engine needed).
	prometheus docker-compose
	# a second SMTP implementation for alerting's delivery test.
	python3-aiosmtpd
	# a real Alertmanager for the alerting channels' test.
	prometheus-alertmanager
	# the ldap, ldaps and radius checks' lab tests run a private slapd
	# and freeradius.
	slapd freeradius
	# real HA pairs in network namespaces for the HA role tests: a
	# keepalived VRRP pair, a heartbeat (haresources) pair and a
	# corosync + pacemaker pair.
	keepalived heartbeat corosync pacemaker pacemaker-cli-utils resource-agents
	# headless Chromium opens the dashboard pages in a browser test.
	chromium
	# the packages' tests: a Debian 12 root to install the .deb into, the
	# .rpm's file list, the unit's verify and security score (systemd),
	# and the zsh and fish completions run by their shells.
	debootstrap rpm systemd zsh fish
	# a private dovecot and kamailio for the imap(s), pop3(s) and sip
	# checks' lab tests.
	dovecot-imapd dovecot-pop3d kamailio
	# lvsmon import reads ldirectord's example config in a lab test
	# (keepalived's samples come with keepalived above); test/sidebyside
	# runs ldirectord beside lvsmon, its fake ipvsadm bind-mounted over
	# the real one (ipvsadm above) in a mount namespace of its own.
	ldirectord util-linux mount
	# the mysql and pgsql checks' lab tests run a private MariaDB and
	# PostgreSQL (postgresql-client: psql sets the database up).
	mariadb-server postgresql postgresql-client) ;;
bench) pkgs+=(prometheus-node-exporter
	# bench/checker measures Debian's ldirectord, with a fake ipvsadm
	# bind-mounted over the real one in a private mount namespace.
	ldirectord ipvsadm util-linux mount) ;;
*)
	echo "deps: unknown purpose $what (build, test or bench)" >&2
	exit 2
	;;
esac

missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
	echo "deps: installing ${missing[*]}"
	sudo=""
	[[ $(id -u) == 0 ]] || sudo=sudo
	$sudo apt-get -o DPkg::Lock::Timeout=900 update -qq
	DEBIAN_FRONTEND=noninteractive $sudo apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
go mod download
