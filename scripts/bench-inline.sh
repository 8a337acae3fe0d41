#!/usr/bin/env bash
# What `-gcflags all=-l` (no inlining, used by scripts/cross.sh and the feed
# Makefile) costs and saves, measured in one run against the default build:
#   size: the stripped mips binary with and without -l;
#   speed: the real client's CPU seconds per GB through a userspace v6udpv4
#   tunnel (scripts/bench-tunnel.sh --client), both builds alternately,
#   ROUNDS rounds (default 3), median of each, and the ratio.
# Needs root, iperf3 and bin/tspbroker (make build).
# Usage: scripts/bench-inline.sh [seconds-per-measurement]
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-4}
rounds=${ROUNDS:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

build() { # goarch out [gcflags]
	env CGO_ENABLED=0 GOOS=linux GOARCH="$1" GOMIPS=softfloat \
		go build -trimpath ${3:+-gcflags "$3"} -ldflags '-s -w' -o "$2" ./cmd/gogoc
}
build mips "$tmp/mips-inline"
build mips "$tmp/mips-noinline" all=-l
si=$(stat -c %s "$tmp/mips-inline")
sn=$(stat -c %s "$tmp/mips-noinline")
printf 'size mips: inline %d, -l %d bytes, ratio %s\n' "$si" "$sn" "$(awk -v a="$sn" -v b="$si" 'BEGIN { printf "%.3f", a / b }')"

build "$(go env GOARCH)" "$tmp/inline"
build "$(go env GOARCH)" "$tmp/noinline" all=-l
for r in $(seq "$rounds"); do
	for v in inline noinline; do
		# client CPU s/GB, up and down, from the tunnel rows.
		scripts/bench-tunnel.sh --client --client-cmd "$tmp/$v run -f \$CONF" "$secs" 2>&1 |
			awk -v v="$v" '$1 == "tunnel" { print v, $5, $8 }' >>"$tmp/cpu"
	done
	echo "round $r done" >&2
done
med() { sort -n | awk '{ a[NR] = $1 } END { if (NR == 0) exit 1; print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
for dir in up down; do
	i=$(awk -v d="$dir" '$1 == "inline" && $2 == d { print $3 }' "$tmp/cpu" | med)
	n=$(awk -v d="$dir" '$1 == "noinline" && $2 == d { print $3 }' "$tmp/cpu" | med)
	printf 'client CPU s/GB %-4s: inline %s, -l %s, ratio %s (median of %d)\n' "$dir" "$i" "$n" \
		"$(awk -v a="$n" -v b="$i" 'BEGIN { printf "%.3f", a / b }')" "$rounds"
done
