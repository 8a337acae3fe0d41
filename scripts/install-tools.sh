#!/usr/bin/env bash
# Installs what `make demo` and `make test` need on a fresh Debian 12
# machine (as root), and nothing when it is all there: `make demo` and
# `make test` call it first, so a second run costs one dpkg-query and a
# version check (well under a second).
#
#   scripts/install-tools.sh demo   namespaces and the LAN host: iproute2,
#                                   sysctl (procps), ping, rdisc6 (ndisc6)
#   scripts/install-tools.sh test   (the default) also shellcheck and
#                                   staticcheck (lint), nft (NAT and loss in
#                                   the namespace tests), busybox (OpenWrt's
#                                   ash for the init/hotplug script tests),
#                                   chromium (the LuCI page test), zopfli
#                                   (the packages' data, scripts/packages.sh),
#                                   strace (files written durably, atomictest); the go command
#                                   fetches the modules itself
#   scripts/install-tools.sh all    also iperf3 (scripts/bench-tunnel.sh)
#
# The VM and qemu-user lanes install their own packages when they run
# (scripts/vm-test.sh, scripts/test-cross.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-test}
staticcheck_version=0.8.2

pkgs=(iproute2 procps iputils-ping ndisc6)
case $what in
demo) ;;
test) pkgs+=(shellcheck nftables busybox-static chromium zopfli strace) ;;
all) pkgs+=(shellcheck nftables busybox-static chromium zopfli strace iperf3) ;;
*)
	echo "install-tools.sh: unknown set $what (demo, test, all)" >&2
	exit 2
	;;
esac

# shellcheck source=SCRIPTDIR/lib/apt.sh
. scripts/lib/apt.sh
mapfile -t missing < <(apt_missing "${pkgs[@]}")
if ((${#missing[@]})); then
	if [ "$(id -u)" -ne 0 ]; then
		echo "install-tools.sh: missing ${missing[*]}; as root: apt-get install ${missing[*]}" >&2
		exit 1
	fi
	echo "install-tools.sh: installing ${missing[*]}" >&2
	apt_install "${missing[@]}"
fi
[ "$what" = demo ] && exit 0

command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
# make lint runs this one, whatever else is on PATH.
sc=$(go env GOPATH)/bin/staticcheck
if ! [ -x "$sc" ] || [[ $("$sc" -version 2>/dev/null) != *"($staticcheck_version)"* ]]; then
	echo "install-tools.sh: installing staticcheck v$staticcheck_version" >&2
	go install "honnef.co/go/tools/cmd/staticcheck@v$staticcheck_version"
fi
