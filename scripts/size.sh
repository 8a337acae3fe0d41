#!/usr/bin/env bash
# Prints each cross-built binary's size and gzip -9 size, its ipk's and
# apk's size, and the ratio to the amd64 build (the baseline measured in
# the same run); checks the budgets: the mips binary under its 4.5 MiB
# ceiling, its ipk and apk each under 1.3 MiB. The floor program
# (scripts/floor) is built in the same run and shows what gogoc adds.
# Usage: scripts/size.sh [outdir]   (builds with scripts/packages.sh
# first unless GOGOC_NO_BUILD=1). Exits 1, loudly, when a budget is
# exceeded.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
[ "${GOGOC_NO_BUILD:-0}" = 1 ] || scripts/packages.sh "$out" >/dev/null

bin_budget=$((45 * 1024 * 1024 / 10)) # 4.5 MiB ceiling
pkg_budget=$((13 * 1024 * 1024 / 10)) # 1.3 MiB, ipk and apk alike
declare -A ow=([mips]=mips_24kc [mipsle]=mipsel_24kc [arm]=arm_cortex-a7_neon-vfpv4 [arm64]=aarch64_cortex-a53 [amd64]=x86_64)

size() { stat -c %s "$1"; }
mib() { awk -v b="$1" 'BEGIN { printf "%.2f", b / 1048576 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", a / b }'; }
newest() { # glob... → the newest existing file
	local f best=
	for f in "$@"; do
		[ -f "$f" ] || continue
		[ -n "$best" ] && [ ! "$f" -nt "$best" ] || best=$f
	done
	[ -n "$best" ] || { echo "size.sh: none of $* in $out (scripts/packages.sh)" >&2; exit 1; }
	echo "$best"
}
ipk_of() { newest "$out"/gogoc_*_"${ow[$1]}".ipk; }
apk_of() { newest "$out/${ow[$1]}"/gogoc-*.apk; }

base=$(size "$out/gogoc-amd64")
printf '%-7s %-26s %10s %8s %10s %10s %10s %7s\n' goarch openwrt-arch binary MiB gzip-9 ipk apk vs-amd64
for a in mips mipsle arm arm64 amd64; do
	b=$(size "$out/gogoc-$a")
	g=$(gzip -9 -c "$out/gogoc-$a" | wc -c)
	i=$(size "$(ipk_of "$a")")
	k=$(size "$(apk_of "$a")")
	printf '%-7s %-26s %10d %8s %10d %10d %10d %7s\n' "$a" "${ow[$a]}" "$b" "$(mib "$b")" "$g" "$i" "$k" "$(ratio "$b" "$base")"
done

# The floor (scripts/floor), built in the same run with the same flags.
env CGO_ENABLED=0 GOOS=linux GOARCH=mips GOMIPS=softfloat go build -trimpath \
	-gcflags "${GOGOC_GCFLAGS-all=-l}" -ldflags '-s -w' -o "$out/floor-mips" ./scripts/floor
fl=$(size "$out/floor-mips")

mb=$(size "$out/gogoc-mips")
mi=$(size "$(ipk_of mips)")
mk=$(size "$(apk_of mips)")
fail=0
printf 'budget: mips binary %d / %d bytes = %s of the ceiling\n' "$mb" "$bin_budget" "$(ratio "$mb" "$bin_budget")"
printf 'budget: mips ipk    %d / %d bytes = %s of budget\n' "$mi" "$pkg_budget" "$(ratio "$mi" "$pkg_budget")"
printf 'budget: mips apk    %d / %d bytes = %s of budget\n' "$mk" "$pkg_budget" "$(ratio "$mk" "$pkg_budget")"
printf 'floor:  mips %s MiB (scripts/floor: runtime, net, fmt, flag, signals, MD5/SHA-1/HMAC/3DES/DSA); gogoc adds %s MiB on top\n' \
	"$(mib "$fl")" "$(mib $((mb - fl)))"
if [ "$mb" -gt "$bin_budget" ]; then
	echo "FAIL: mips binary is $(mib "$mb") MiB, over the 4.5 MiB ceiling" >&2
	fail=1
fi
for p in ipk:"$mi" apk:"$mk"; do
	if [ "${p#*:}" -gt "$pkg_budget" ]; then
		echo "FAIL: mips ${p%%:*} is $(mib "${p#*:}") MiB, over the 1.3 MiB budget" >&2
		fail=1
	fi
done
exit $fail
