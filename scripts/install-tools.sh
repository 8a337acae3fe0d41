#!/usr/bin/env bash
# Installs what the tests and demo need on a fresh Debian machine (root).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
# qemu-system-x86 and busybox-static: the VM lane; qemu-user-static: the
# cross lane; busybox-static is also OpenWrt's shell (ash) for the init/hotplug script tests;
# chromium: the LuCI page test. zopfli: the packages' data (scripts/packages.sh).
# strace: the tests that check files are written durably (atomictest).
pkgs=(iproute2 nftables ndisc6 iperf3 shellcheck iputils-ping procps strace
	qemu-system-x86 qemu-user-static busybox-static chromium zopfli)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
	if [ "$(id -u)" -ne 0 ]; then echo "install as root: ${missing[*]}" >&2; exit 1; fi
	apt-get update -qq
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin
go install honnef.co/go/tools/cmd/staticcheck@v0.8.2
go mod download
