#!/usr/bin/env bash
# Builds the OpenWrt packages with nfpm (go tool nfpm) into outdir (dist),
# for opkg (OpenWrt 24.10 and older) and apk-tools 3 (25.12 and later):
#   gogoc_<version>_<arch>.ipk and <arch>/gogoc-<version>.apk for
#   mips_24kc, mipsel_24kc, arm_cortex-a7_neon-vfpv4, aarch64_cortex-a53,
#   x86_64; luci-app-gogoc_<version>_all.ipk and
#   luci-app-gogoc-<version>.apk (noarch).
# Usage: scripts/packages.sh [outdir] [openwrt-arch...]
# PKG_FORMATS="ipk apk" (default) picks the formats. The binaries come
# from scripts/cross.sh (outdir/gogoc-<goarch>), built here unless
# GOGOC_NO_BUILD=1. <version> comes from scripts/version.sh.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
shift || true
want=("$@")
read -r -a formats <<<"${PKG_FORMATS:-ipk apk}"

# OpenWrt architecture → GOARCH (cross.sh sets GOMIPS/GOARM to match).
declare -A goarch=(
	[mips_24kc]=mips [mipsel_24kc]=mipsle [arm_cortex-a7_neon-vfpv4]=arm
	[aarch64_cortex-a53]=arm64 [x86_64]=amd64
)
order=(mips_24kc mipsel_24kc arm_cortex-a7_neon-vfpv4 aarch64_cortex-a53 x86_64)
[ ${#want[@]} -gt 0 ] || want=("${order[@]}")

full=$(scripts/version.sh)
version=${full%-r*}
release=${full##*-r}

mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# recompress rewrites an ipk's data.tar.gz with zopfli: the same gzip
# format opkg reads, about 7 % smaller than nfpm's default-level gzip.
# 15 iterations (GOGOC_ZOPFLI_ITERATIONS) take some 13 s per package on
# a mips binary and save about 6 KB over 1 iteration (7 s). Without
# zopfli, gzip -9. Member order, names,
# owners and modes stay as nfpm wrote them.
recompress() { # ipk
	local d members
	d=$(mktemp -d -p "$tmp")
	mapfile -t members < <(tar -tzf "$1")
	tar -xzf "$1" -C "$d"
	gzip -dc "$d/data.tar.gz" >"$d/data.tar"
	if [ "${GOGOC_NO_ZOPFLI:-0}" != 1 ] && command -v zopfli >/dev/null; then
		zopfli "--i${GOGOC_ZOPFLI_ITERATIONS:-15}" -c "$d/data.tar" >"$d/data.tar.gz"
	else
		gzip -9n -c "$d/data.tar" >"$d/data.tar.gz"
	fi
	rm "$d/data.tar"
	tar -C "$d" --owner=0 --group=0 --numeric-owner --mtime="$d/debian-binary" \
		-cf - "${members[@]}" | gzip -9n >"$1"
	rm -rf "$d"
}
command -v zopfli >/dev/null || echo "packages.sh: zopfli not installed, using gzip -9 (larger packages)" >&2

# meta writes what OpenWrt's package build puts under /lib/apk/packages
# (include/package-pack.mk) for a rendered recipe: <name>.list, every
# file and symlink the package installs, absolute and sorted, without
# the .list, .conffiles and .conffiles_static themselves (the build lists
# the tree before it adds those); <name>.conffiles; and
# <name>.conffiles_static, "<path> <sha256>" of each conffile as shipped.
meta() { # name recipe
	local name=$1 recipe=$2 dst src f
	mkdir -p "$tmp/meta"
	: >"$tmp/meta/$name.conffiles"
	: >"$tmp/meta/$name.conffiles_static"
	sed -n 's/^    dst: //p' "$recipe" |
		grep -v -e '\.list$' -e '\.conffiles$' -e '\.conffiles_static$' |
		LC_ALL=C sort >"$tmp/meta/$name.list"
	# conffiles: the entries of type config|noreplace, src then dst.
	while read -r src dst; do
		echo "$dst" >>"$tmp/meta/$name.conffiles"
		f=$(sha256sum "$src")
		echo "$dst ${f%% *}" >>"$tmp/meta/$name.conffiles_static"
	done < <(awk '/^  - src: /{s=$3} /^    dst: /{d=$2} /^    type: config/{print s, d}' "$recipe")
}

# subst fills a recipe's @NAMES@ into a copy nfpm reads.
subst() { # recipe arch binary
	sed -e "s|@ARCH@|$2|g" -e "s|@VERSION@|$version|g" -e "s|@RELEASE@|$release|g" \
		-e "s|@BINARY@|$3|g" -e "s|@META@|$tmp/meta|g" "$1" >"$tmp/nfpm.yaml"
}

# build packages the rendered recipe in each format.
build() { # ipk-target apk-target
	local fmt
	for fmt in "${formats[@]}"; do
		case $fmt in
		ipk)
			go tool nfpm package --config "$tmp/nfpm.yaml" --packager ipk --target "$1" >/dev/null
			recompress "$1"
			echo "built $1"
			;;
		apk)
			mkdir -p "$(dirname "$2")"
			go tool nfpm package --config "$tmp/nfpm.yaml" --packager apk --target "$2" >/dev/null
			go run ./scripts/apkrepack "-zopfli-iterations=${GOGOC_ZOPFLI_ITERATIONS:-15}" \
				"-zopfli=$([ "${GOGOC_NO_ZOPFLI:-0}" = 1 ] && echo false || echo true)" "$2"
			echo "built $2"
			;;
		*) echo "packages.sh: unknown format $fmt (ipk, apk)" >&2; exit 2 ;;
		esac
	done
}

if [ "${GOGOC_NO_BUILD:-0}" != 1 ]; then
	gas=()
	for a in "${want[@]}"; do
		[ -n "${goarch[$a]:-}" ] || { echo "packages.sh: unknown OpenWrt arch $a" >&2; exit 2; }
		gas+=("${goarch[$a]}")
	done
	VERSION=$full scripts/cross.sh "$out" "${gas[@]}"
fi

for a in "${want[@]}"; do
	bin="$out/gogoc-${goarch[$a]}"
	[ -f "$bin" ] || { echo "packages.sh: $bin missing (run scripts/cross.sh)" >&2; exit 1; }
	subst openwrt/gogoc/nfpm.yaml "$a" "$bin"
	meta gogoc "$tmp/nfpm.yaml"
	build "$out/gogoc_${full}_$a.ipk" "$out/$a/gogoc-$full.apk"
done
subst openwrt/luci-app-gogoc/nfpm.yaml all ""
meta luci-app-gogoc "$tmp/nfpm.yaml"
build "$out/luci-app-gogoc_${full}_all.ipk" "$out/luci-app-gogoc-$full.apk"
