#!/usr/bin/env bash
# Builds the big-endian MIPS guest's userland, since Debian 12 has no mips
# port: static busybox (scripts/vm/busybox.config), iproute2's ip and
# ndisc6's rdisc6, each from Debian's own source package, with Debian's
# gcc-mips-linux-gnu (ip linked against its glibc, the others static).
# The other guests take Debian's binary packages.
#
#   scripts/vm/build-tools.sh CACHE
#
# Prints a directory holding bin/busybox, usr/sbin/ip, usr/sbin/rdisc6 and
# the loader and libc that ip links.
# Kept in CACHE under a key made of this script, the busybox config and
# the versions of the sources and the compiler; a second run with the same
# key prints the directory at once. The source packages come through a
# private apt state in CACHE (a deb-src list of its own): the host's apt
# configuration stays untouched. Packages it needs are installed by
# scripts/vm-test.sh.
set -euo pipefail

cache=${1:?usage: build-tools.sh CACHE}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bbconf=$here/busybox.config
cross=mips-linux-gnu-
srcpkgs=(busybox iproute2 ndisc6)
log() { echo "build-tools: $*" >&2; }
die() {
	log "$*"
	exit 1
}

# apt_src runs an apt command against the private deb-src state.
st=$cache/apt-src
apt_src() {
	mkdir -p "$st/lists/partial" "$st/cache/archives/partial"
	[[ -f $st/status ]] || : >"$st/status"
	[[ -f $st/sources.list ]] ||
		echo "deb-src http://deb.debian.org/debian bookworm main" >"$st/sources.list"
	"$@" -o Dir::Etc::SourceList="$st/sources.list" -o Dir::Etc::SourceParts=/nonexistent \
		-o Dir::State::Lists="$st/lists" -o Dir::State::status="$st/status" \
		-o Dir::Cache="$st/cache" -o Debug::NoLocking=1 -o APT::Sandbox::User=root
}
if ! compgen -G "$st/lists/*_Sources*" >/dev/null; then
	log "fetching the source package lists into $st"
	apt_src apt-get update >/dev/null || die "apt-get update (deb-src) failed"
fi
versions=$(for p in "${srcpkgs[@]}"; do
	v=$(apt_src apt-cache showsrc --only-source "$p" 2>/dev/null | sed -n 's/^Version: //p' | sort -V | tail -n 1)
	[[ -n $v ]] || die "no source package $p known to apt"
	echo "$p $v"
done)
versions+=$'\n'$(dpkg-query -W -f '${Package} ${Version}\n' gcc-mips-linux-gnu libc6-dev-mips-cross) ||
	die "gcc-mips-linux-gnu and libc6-dev-mips-cross must be installed"
key=$({ cat "${BASH_SOURCE[0]}" "$bbconf"; echo "$versions"; } | sha256sum | cut -c1-16)
out=$cache/tools-mips-$key
if [[ -f $out/ready ]]; then
	echo "$out"
	exit 0
fi

mkdir -p "$cache"
build=$(mktemp -d "$cache/build-tools.XXXXXX")
trap 'rm -rf "$build"' EXIT
t0=$(date +%s)
log "fetching and unpacking the sources of ${srcpkgs[*]}"
(cd "$build" && apt_src apt-get source --download-only "${srcpkgs[@]}" >/dev/null 2>&1) ||
	die "apt-get source ${srcpkgs[*]} failed"
for dsc in "$build"/*.dsc; do
	(cd "$build" && dpkg-source -x "$dsc" >/dev/null 2>&1) || die "dpkg-source -x $(basename "$dsc") failed"
done
srcdir() { find "$build" -mindepth 1 -maxdepth 1 -type d -name "$1-*" | head -n 1; }
stage=$build/stage
mkdir -p "$stage/bin" "$stage/usr/sbin"
nmake() { nice -n 10 make -s "$@"; }

# busybox: allnoconfig, then the fragment's lines, each checked afterwards.
bb=$(srcdir busybox)
log "building busybox"
nmake -C "$bb" allnoconfig >/dev/null
syms=$(grep -o '^CONFIG_[A-Z0-9_]*' "$bbconf" | paste -sd'|')
{
	grep -vE "^(# )?($syms)[= ]" "$bb/.config"
	grep '^CONFIG_' "$bbconf"
} >"$build/bb.config"
mv "$build/bb.config" "$bb/.config"
nmake -C "$bb" oldconfig < <(yes '') >/dev/null 2>&1 || die "busybox oldconfig failed"
missing=()
while IFS= read -r line; do
	case $line in '' | '#'*) continue ;; esac
	grep -qxF "$line" "$bb/.config" || missing+=("$line")
done <"$bbconf"
((${#missing[@]} == 0)) || die "busybox config did not take: ${missing[*]}"
nmake -C "$bb" -j2 CROSS_COMPILE="$cross" busybox >"$build/busybox.log" 2>&1 || {
	tail -n 30 "$build/busybox.log" >&2
	die "busybox build failed"
}
cp "$bb/busybox" "$stage/bin/busybox"

# ip alone: no optional libraries (pkg-config answers no). Linked
# dynamically, with the cross glibc's loader and libc in the guest: ip
# finds its link types (veth's "peer", bridge...) with dlsym in its own
# symbols, which a static binary cannot do.
ipr=$(srcdir iproute2)
log "building ip (iproute2)"
(cd "$ipr" && CC=${cross}gcc AR=${cross}ar PKG_CONFIG=false ./configure >"$build/ip-configure.log" 2>&1) ||
	die "iproute2 configure failed"
nmake -C "$ipr" -j2 SUBDIRS="lib ip" >"$build/ip.log" 2>&1 || {
	tail -n 30 "$build/ip.log" >&2
	die "ip build failed"
}
"${cross}strip" -o "$stage/usr/sbin/ip" "$ipr/ip/ip"
mkdir -p "$stage/lib"
for lib in ld.so.1 libc.so.6; do
	cp -L "/usr/${cross%-}/lib/$lib" "$stage/lib/$lib" || die "no $lib in libc6-mips-cross"
done

nd=$(srcdir ndisc6)
log "building rdisc6 (ndisc6)"
(cd "$nd" && ./configure -q --host="${cross%-}" --disable-nls LDFLAGS=-static >"$build/ndisc6-configure.log" 2>&1) ||
	die "ndisc6 configure failed"
nmake -C "$nd" rdisc6 >"$build/ndisc6.log" 2>&1 || {
	tail -n 30 "$build/ndisc6.log" >&2
	die "rdisc6 build failed"
}
"${cross}strip" -o "$stage/usr/sbin/rdisc6" "$nd/rdisc6"

echo "$versions" | tr '\n' ';' >"$stage/ready"
rm -rf "$out"
mv "$stage" "$out"
find "$cache" -mindepth 1 -maxdepth 1 -name 'tools-mips-*' ! -name "tools-mips-$key" -exec rm -rf {} +
log "busybox, ip and rdisc6 for mips ready in $(($(date +%s) - t0)) s: $out"
echo "$out"
