#!/usr/bin/env bash
# Prints (does not assert) how long gogoc takes from process start to the
# first ping6 reply through the tunnel: client namespace -> broker's tunnel
# address 2001:db8:ab::1, with bin/tspbroker -dataplane in the broker
# namespace (the layout of scripts/demo.sh, v6anyv4 behind a declared NAT,
# so v6udpv4). N runs (default 20); per run, in the client namespace:
#
#   t0 = $EPOCHREALTIME; spawn `gogoc run -f conf` (keepalive 30 s)
#   loop: ping -6 -c1 -i 0.002 -w 1 2001:db8:ab::1 until it gets a reply
#         (before the tunnel route exists ping fails at once with
#          "Network is unreachable"; after, it probes every 2 ms)
#   t1 = $EPOCHREALTIME; SIGTERM gogoc and wait for it to exit
#
# and, in the same run, a baseline measured the same way: spawn a trivial
# process (sleep) in the client namespace and loop ping -4 over the raw
# veth to 192.0.2.1 (the fork+exec+ping cost). Prints every run, median,
# min and max in ms, and the ratio tunnel/baseline (of medians). Target:
# <= 50 ms to first reply (the old C client needed ~190 ms).
#
#   scripts/bench-startup.sh [runs, default 20]
#
# Needs root (network namespaces, TUN devices) and bin/gogoc, bin/tspbroker
# (make build). Everything is created inside namespaces gogoc-bs-* and
# removed on exit.
set -euo pipefail
self=$(realpath "$0")
cd "$(dirname "$self")/.."

# ms_since T0: milliseconds (3 decimals) from an $EPOCHREALTIME value to now.
ms_since() {
	local t1=$EPOCHREALTIME
	local a=${1/./} b=${t1/./}
	local d=$((10#$b - 10#$a))
	printf '%d.%03d\n' $((d / 1000)) $((d % 1000))
}

# ping_until ARGS...: the tight loop; returns 1 after 5 s without a reply.
ping_until() {
	local deadline=$((${EPOCHREALTIME/./} + 5000000))
	until ping -n -q -c1 -i 0.002 -w 1 "$@" >/dev/null 2>&1; do
		[ "${EPOCHREALTIME/./}" -lt "$deadline" ] || return 1
	done
}

# Inner mode, run inside the client namespace by the outer script:
#   bench-startup.sh --inner tunnel|baseline CONF GOGOC_LOG
# prints one time in ms, or "fail".
if [ "${1:-}" = --inner ]; then
	kind=$2 conf=$3 log=$4
	pid=
	case $kind in
	tunnel)
		t0=$EPOCHREALTIME
		bin/gogoc run -f "$conf" >>"$log" 2>&1 &
		pid=$!
		if ping_until -6 2001:db8:ab::1; then ms_since "$t0"; else echo fail; fi
		;;
	baseline)
		t0=$EPOCHREALTIME
		sleep 30 &
		pid=$!
		if ping_until -4 192.0.2.1; then ms_since "$t0"; else echo fail; fi
		;;
	esac
	kill -TERM "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	exit 0
fi

runs=${1:-20}
case $runs in '' | *[!0-9]*) echo "usage: bench-startup.sh [runs]" >&2; exit 2 ;; esac

# shellcheck source=scripts/lab.sh
. scripts/lab.sh
lab_need bench-startup.sh bin/gogoc bin/tspbroker

B=gogoc-bs-broker
C=gogoc-bs-client
work=$(mktemp -d)
broker_pid=

cleanup() {
	local rc=$?
	set +e
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
	lab_down $C $B
	if [ "$rc" -ne 0 ]; then
		echo "== bench-startup FAILED (exit $rc); logs:"
		echo "-- broker"; tail -n 20 "$work/broker.log" 2>/dev/null
		echo "-- gogoc"; tail -n 20 "$work/gogoc.log" 2>/dev/null
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

lab_up bs $C $B

lab_broker $B "$work/broker.log"

cat >"$work/gogoc.conf" <<EOF
server=192.0.2.1
auth_method=anonymous
tunnel_mode=v6anyv4
client_v4=198.51.100.7
keepalive=yes
keepalive_interval=30
EOF
: >"$work/gogoc.log"

# Warm the page cache and ARP/ND once; these runs are not counted.
ip netns exec $C "$self" --inner baseline "$work/gogoc.conf" "$work/gogoc.log" >/dev/null
ip netns exec $C "$self" --inner tunnel "$work/gogoc.conf" "$work/gogoc.log" >/dev/null

echo "gogoc start -> first ping6 reply via the tunnel ($runs runs; baseline: spawn + ping -4 over the raw veth)"
printf "%4s %14s %14s\n" run "tunnel ms" "baseline ms"
: >"$work/t"
: >"$work/b"
for i in $(seq "$runs"); do
	t=$(ip netns exec $C "$self" --inner tunnel "$work/gogoc.conf" "$work/gogoc.log")
	b=$(ip netns exec $C "$self" --inner baseline "$work/gogoc.conf" "$work/gogoc.log")
	printf "%4d %14s %14s\n" "$i" "$t" "$b"
	[ "$t" = fail ] || echo "$t" >>"$work/t"
	[ "$b" = fail ] || echo "$b" >>"$work/b"
done

# stats FILE: "median min max n" in ms.
stats() {
	sort -g "$1" | awk '{ v[NR] = $1 }
	END {
		if (NR == 0) { print "- - - 0"; exit }
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.1f %.1f %.1f %d\n", m, v[1], v[NR], NR
	}'
}
read -r tm tmin tmax tn < <(stats "$work/t")
read -r bm bmin bmax bn < <(stats "$work/b")
echo
printf "%-10s %8s %8s %8s %6s\n" "" "median" min max ok
printf "%-10s %8s %8s %8s %6s\n" tunnel "$tm" "$tmin" "$tmax" "$tn/$runs"
printf "%-10s %8s %8s %8s %6s\n" baseline "$bm" "$bmin" "$bmax" "$bn/$runs"
awk -v t="$tm" -v b="$bm" 'BEGIN {
	if (t == "-" || b == "-" || b == 0) { print "ratio tunnel/baseline (medians): -"; exit }
	printf "ratio tunnel/baseline (medians): %.1fx\n", t / b
	printf "target: tunnel median <= 50 ms (the old client: ~190 ms): %s\n", (t <= 50 ? "met" : "NOT met")
}'
echo "(ms from spawn to first reply; ping probes every 2 ms once a route exists; $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg))"
