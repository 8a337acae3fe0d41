#!/usr/bin/env bash
# Builds the VM lane's big-endian MIPS kernel (qemu's Malta board, 24Kc),
# since Debian ships none: Debian's linux-source-6.1 with Debian's
# gcc-mips-linux-gnu, allnoconfig plus scripts/vm/mips.config.
#
#   scripts/vm/build-kernel.sh CACHE
#
# Prints the directory that holds vmlinux and lib/modules/<release>/ (the
# modules the lane loads). The result is kept in CACHE under a key made of
# the config fragment, this script and the versions of the source and the
# compiler: a second run with the same key prints the directory at once;
# a changed key builds anew and removes the older builds.
# The packages it needs are installed by scripts/vm-test.sh.
set -euo pipefail

cache=${1:?usage: build-kernel.sh CACHE}
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
frag=$here/mips.config
cross=mips-linux-gnu-
log() { echo "build-kernel: $*" >&2; }
die() {
	log "$*"
	exit 1
}

versions=$(dpkg-query -W -f '${Package} ${Version}\n' linux-source-6.1 gcc-mips-linux-gnu binutils-mips-linux-gnu) ||
	die "linux-source-6.1, gcc-mips-linux-gnu and binutils-mips-linux-gnu must be installed"
key=$({ cat "$frag" "${BASH_SOURCE[0]}"; echo "$versions"; } | sha256sum | cut -c1-16)
out=$cache/kernel-mips-$key
if [[ -f $out/ready ]]; then
	echo "$out"
	exit 0
fi

tarball=$(find /usr/src -maxdepth 1 -name 'linux-source-6.1.tar.*' | head -n 1)
[[ -n $tarball ]] || die "no /usr/src/linux-source-6.1.tar.* (package linux-source-6.1)"
mkdir -p "$cache"
build=$(mktemp -d "$cache/build-kernel.XXXXXX")
trap 'rm -rf "$build"' EXIT
t0=$(date +%s)
log "unpacking $(basename "$tarball") ($(sed -n 's/^linux-source-6.1 //p' <<<"$versions"))"
tar -xf "$tarball" -C "$build"
src=$(find "$build" -mindepth 1 -maxdepth 1 -type d -name 'linux-source-*' | head -n 1)
[[ -n $src ]] || die "no linux-source-* directory in $tarball"
kmake() { nice -n 10 make -s -C "$src" O="$build/o" ARCH=mips CROSS_COMPILE="$cross" "$@"; }

kmake KCONFIG_ALLCONFIG="$frag" allnoconfig
# Kconfig drops a symbol whose dependencies are unmet without a word:
# every line of the fragment must be in the result.
missing=()
while IFS= read -r line; do
	case $line in '' | '#'*) continue ;; esac
	grep -qxF "$line" "$build/o/.config" || missing+=("$line")
done <"$frag"
((${#missing[@]} == 0)) || die "Kconfig did not take: ${missing[*]}"

log "building vmlinux and modules (nice -n 10 make -j2)"
kmake -j2 vmlinux modules >"$build/make.log" 2>&1 || {
	tail -n 40 "$build/make.log" >&2
	die "kernel build failed"
}
release=$(cat "$build/o/include/config/kernel.release")
stage=$build/stage
mkdir -p "$stage/lib/modules/$release/kernel"
"${cross}strip" --strip-debug -o "$stage/vmlinux" "$build/o/vmlinux"
while IFS= read -r ko; do
	"${cross}strip" --strip-debug -o "$stage/lib/modules/$release/kernel/$(basename "$ko")" "$ko"
done < <(find "$build/o" -name '*.ko')
cp "$build/o/.config" "$stage/config"
echo "$release ($key, built in $(($(date +%s) - t0)) s)" >"$stage/ready"
rm -rf "$out"
mv "$stage" "$out"
# Older keys are builds nobody asks for any more.
find "$cache" -mindepth 1 -maxdepth 1 -name 'kernel-mips-*' ! -name "kernel-mips-$key" -exec rm -rf {} +
log "kernel $release ready in $(($(date +%s) - t0)) s: $out"
echo "$out"
