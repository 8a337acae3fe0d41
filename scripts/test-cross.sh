#!/usr/bin/env bash
# Runs the pure-Go packages' tests for mips, mipsle (GOMIPS=softfloat),
# arm (GOARM=7) and arm64 under qemu-user (qemu-*-static, called directly:
# no binfmt registration needed).
# Usage: scripts/test-cross.sh [goarch...]
#
# A package runs here unless it or its tests use netlink or network
# namespaces (vishvananda/netlink, its nl layer, which internal/rtlink is
# built on, or vishvananda/netns): under qemu-user, netlink on big-endian
# mips is mistranslated and generic netlink refused, so those tests belong
# to the native and VM lanes. The
# skipped packages are listed with that reason. openwrt/pkgtest is skipped
# too: it tests shell scripts and a browser, nothing that depends on the
# CPU.
set -euo pipefail
cd "$(dirname "$0")/.."
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(mips mipsle arm arm64)

declare -A qemu=([mips]=qemu-mips-static [mipsle]=qemu-mipsel-static [arm]=qemu-arm-static [arm64]=qemu-aarch64-static)
module=$(go list -m)

pkgs=()
while read -r p; do
	rel=${p#"$module"}
	rel=./${rel#/}
	if [ "$rel" = ./openwrt/pkgtest ]; then
		echo "skip $rel: shell scripts and a browser, not CPU-dependent"
		continue
	fi
	if go list -test -deps "$p" | grep -qxE 'github.com/vishvananda/(netlink|netlink/nl|netns)'; then
		echo "skip $rel: uses netlink or network namespaces, which qemu-user does not translate faithfully"
		continue
	fi
	pkgs+=("$rel")
done < <(go list -f '{{if or .TestGoFiles .XTestGoFiles}}{{.ImportPath}}{{end}}' ./...)
[ ${#pkgs[@]} -gt 0 ] || { echo "test-cross.sh: no packages to test" >&2; exit 1; }

# The lane installs its own emulators (qemu-user-static) when missing.
# shellcheck source=SCRIPTDIR/lib/apt.sh
. scripts/lib/apt.sh
if [ -n "$(apt_missing qemu-user-static)" ]; then
	[ "$(id -u)" -eq 0 ] || { echo "test-cross.sh: qemu-user-static missing (apt-get install qemu-user-static)" >&2; exit 1; }
	echo "test-cross.sh: installing qemu-user-static" >&2
	apt_install qemu-user-static
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
fail=0
for a in "${archs[@]}"; do
	q=${qemu[$a]:-}
	[ -n "$q" ] || { echo "test-cross.sh: unknown GOARCH $a" >&2; exit 2; }
	command -v "$q" >/dev/null || { echo "test-cross.sh: $q missing (apt-get install qemu-user-static)" >&2; exit 1; }
	for p in "${pkgs[@]}"; do
		bin="$tmp/$a-$(echo "${p#./}" | tr / _).test"
		env CGO_ENABLED=0 GOOS=linux GOARCH="$a" GOMIPS=softfloat GOARM=7 \
			go test -c -o "$bin" "$p"
		start=$(date +%s)
		# Tests read testdata relative to their package directory.
		if (cd "$p" && "$q" "$bin" -test.v -test.count=1 -test.timeout=10m >"$tmp/out" 2>&1); then
			echo "ok   $a $p ($(($(date +%s) - start)) s)"
			# A skip is shown with its reason, never hidden in an ok.
			grep -B1 -e '^--- SKIP' -e '^    --- SKIP' "$tmp/out" | grep -v -e '^--$' | sed 's/^/     /' || true
		else
			echo "FAIL $a $p"
			grep -v -e '^=== ' -e '^--- PASS' -e '^    --- PASS' "$tmp/out"
			fail=1
		fi
	done
done
exit $fail
