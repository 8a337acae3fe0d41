#!/usr/bin/env bash
# Builds the OpenWrt packages with nfpm (go tool nfpm) into outdir (dist):
#   gogoc_<version>_<arch>.ipk for mips_24kc, mipsel_24kc,
#   arm_cortex-a7_neon-vfpv4, aarch64_cortex-a53, x86_64, and
#   luci-app-gogoc_<version>_all.ipk.
# Usage: scripts/ipk.sh [outdir] [openwrt-arch...]
# The binaries come from scripts/cross.sh (outdir/gogoc-<goarch>), built
# here unless GOGOC_NO_BUILD=1. <version> is OpenWrt's <version>-r<release>:
# see pkg_version.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
shift || true
want=("$@")

# OpenWrt architecture → GOARCH (cross.sh sets GOMIPS/GOARM to match).
declare -A goarch=(
	[mips_24kc]=mips [mipsel_24kc]=mipsle [arm_cortex-a7_neon-vfpv4]=arm
	[aarch64_cortex-a53]=arm64 [x86_64]=amd64
)
order=(mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64)
[ ${#want[@]} -gt 0 ] || want=("${order[@]}")

# pkg_version turns `git describe` into a version both opkg and apk order
# correctly: tag v1.2.3 → 1.2.3; 4 commits later → 1.2.3.4~<hash>; no tag
# → 0.0.0~<hash> (apk takes only hex after ~, so no "g").
pkg_version() {
	local d base n h
	if d=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
		h=${d##*-g}
		d=${d%-g*}
		n=${d##*-}
		base=${d%-*}
		base=${base#v}
		if [ "$n" = 0 ]; then echo "$base"; else echo "$base.$n~$h"; fi
	elif h=$(git rev-parse --short=7 HEAD 2>/dev/null); then
		echo "0.0.0~$h"
	else
		echo 0.0.0
	fi
}
version=${GOGOC_PKG_VERSION:-$(pkg_version)}
release=${GOGOC_PKG_RELEASE:-1}
if ! [[ $version =~ ^[0-9]+(\.[0-9]+)*(~[0-9a-f]+)?$ && $release =~ ^[0-9]+$ ]]; then
	echo "ipk.sh: version '$version-r$release' is not a valid OpenWrt version (want 1.2.3[~hash]-rN); tag as vX.Y.Z" >&2
	exit 1
fi

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# recompress rewrites an ipk's data.tar.gz with zopfli: the same gzip
# format opkg reads, about 7 % smaller than nfpm's default-level gzip, at
# some seconds per package. Without zopfli, gzip -9. Member order, names,
# owners and modes stay as nfpm wrote them.
recompress() { # ipk
	local d members
	d=$(mktemp -d -p "$tmp")
	mapfile -t members < <(tar -tzf "$1")
	tar -xzf "$1" -C "$d"
	gzip -dc "$d/data.tar.gz" >"$d/data.tar"
	if command -v zopfli >/dev/null; then
		zopfli "--i${GOGOC_ZOPFLI_ITERATIONS:-1}" -c "$d/data.tar" >"$d/data.tar.gz"
	else
		gzip -9n -c "$d/data.tar" >"$d/data.tar.gz"
	fi
	rm "$d/data.tar"
	tar -C "$d" --owner=0 --group=0 --numeric-owner --mtime="$d/debian-binary" \
		-cf - "${members[@]}" | gzip -9n >"$1"
	rm -rf "$d"
}
command -v zopfli >/dev/null || echo "ipk.sh: zopfli not installed, using gzip -9 (larger packages)" >&2

# subst fills a recipe's @NAMES@ into a copy nfpm reads.
subst() { # recipe arch binary
	sed -e "s|@IPK_ARCH@|$2|g" -e "s|@VERSION@|$version|g" \
		-e "s|@RELEASE@|$release|g" -e "s|@BINARY@|$3|g" "$1" >"$tmp/nfpm.yaml"
}

if [ "${GOGOC_NO_BUILD:-0}" != 1 ]; then
	gas=()
	for a in "${want[@]}"; do
		[ -n "${goarch[$a]:-}" ] || { echo "ipk.sh: unknown OpenWrt arch $a" >&2; exit 2; }
		gas+=("${goarch[$a]}")
	done
	scripts/cross.sh "$out" "${gas[@]}"
fi

for a in "${want[@]}"; do
	bin="$out/gogoc-${goarch[$a]}"
	[ -f "$bin" ] || { echo "ipk.sh: $bin missing (run scripts/cross.sh)" >&2; exit 1; }
	subst openwrt/gogoc/nfpm.yaml "$a" "$bin"
	f="$out/gogoc_${version}-r${release}_$a.ipk"
	go tool nfpm package --config "$tmp/nfpm.yaml" --packager ipk --target "$f" >/dev/null
	recompress "$f"
	echo "built $f"
done
subst openwrt/luci-app-gogoc/nfpm.yaml all ""
f="$out/luci-app-gogoc_${version}-r${release}_all.ipk"
go tool nfpm package --config "$tmp/nfpm.yaml" --packager ipk --target "$f" >/dev/null
echo "built $f"
