#!/usr/bin/env bash
# Router-mode figures, each printed with a baseline from the same run:
#
#  1. RS → RA reply latency (median; target <= 5 ms): go test -bench
#     RSReply ./radv/ on a veth link between two namespaces, against a
#     kernel ICMPv6 echo and a Go UDP echo on the same link.
#  2. Tunnel up → LAN host holding a global SLAAC address: lab of
#     scripts/lab.sh plus a LAN namespace; gogoc run in router mode (/56).
#     Both moments come from `ip -ts monitor address` (µs, kernel events):
#     "tunnel up" is the tunnel address 2001:db8:ab::… appearing on the
#     tunnel device in the router namespace, the other the LAN host's
#     global address. Baseline: process start → tunnel up in the same runs.
#     N runs, default 10.
#  3. Wake-ups per minute of an idle gogoc: context switches of all its
#     threads (/proc/PID/task/*/status, voluntary + involuntary) over a
#     window, router mode (with RAs) against host mode, both v6v4 without
#     keepalive so that nothing else is scheduled. The RA server's own wake
#     counter (logged on exit) is printed too. The window starts SETTLE s
#     after the tunnel is up; during the first ~48 s the RA server is in its
#     quick initial sequence (3 RAs at most 16 s apart), later it wakes once
#     per 198..600 s.
#
#   scripts/bench-router.sh [runs=10] [window_s=60] [settle_s=60]
#
# Needs root and bin/gogoc, bin/tspbroker (make build). Namespaces
# gogoc-br-*, removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lab.sh
. scripts/lab.sh
lab_need bench-router.sh bin/gogoc bin/tspbroker
command -v go >/dev/null || export PATH=$PATH:/usr/local/go/bin

runs=${1:-10}
window=${2:-60}
settle=${3:-60}
B=gogoc-br-broker C=gogoc-br-client I=gogoc-br-inet L=gogoc-br-lan
LANIF=veth-br-h
work=$(mktemp -d)
broker_pid='' gogoc_pid='' mon_pid='' monc_pid=''

cleanup() {
	local rc=$?
	set +e
	for p in $gogoc_pid $mon_pid $monc_pid $broker_pid; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	lab_down $L $C $B $I
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# us TIMESTAMP: microseconds since the epoch of an ISO time (UTC if no zone).
us() { date -u -d "$1" +%s%6N; }

median() { sort -n | awk '{a[NR]=$1} END {if (NR) printf "%.3f", a[int((NR+1)/2)]}'; }

echo "== 1. RS → RA latency (go test -bench RSReply ./radv/)"
go test -run '^$' -bench RSReply -benchtime 2000x -v ./radv/ | grep -E 'median|ratio'

lab_up br $C $B $I
lab_lan br $C $L
lab_broker $B "$work/broker.log" -auth DIGEST-MD5 -user bench:bench

conf() { # conf FILE MODE HOSTTYPE
	cat >"$1" <<EOF
server=192.0.2.1
auth_method=digest-md5
userid=bench
passwd=bench
host_type=$3
prefixlen=56
if_prefix=veth-br-l
log_stderr=2
EOF
	if [ "$2" = v6udpv4 ]; then
		printf 'tunnel_mode=v6anyv4\nclient_v4=198.51.100.7\nkeepalive=yes\nkeepalive_interval=30\n' >>"$1"
	else
		printf 'tunnel_mode=v6v4\nkeepalive=no\n' >>"$1"
	fi
}

# stamp: prefix each line with the time it arrived (µs since the epoch).
stamp() {
	local line
	while IFS= read -r line; do echo "${EPOCHREALTIME/./} $line"; done
}

# start_gogoc CONF LOG: sets gogoc_pid and t_start (µs); waits for the
# tunnel. LOG.out gets gogoc's stamped stdout, LOG its log.
start_gogoc() {
	t_start=${EPOCHREALTIME/./}
	ip netns exec $C bin/gogoc run -f "$1" > >(stamp >"$2.out") 2>"$2" &
	gogoc_pid=$!
	for _ in $(seq 100); do
		grep -q ' tunnel up:' "$2.out" && return 0
		sleep 0.05
	done
	echo "gogoc: no tunnel within 5 s" >&2
	cat "$2" "$2.out" >&2
	return 1
}

stop_gogoc() {
	kill -TERM "$gogoc_pid"
	wait "$gogoc_pid" || true
	gogoc_pid=
}

echo
echo "== 2. tunnel up → LAN host global address ($runs runs, v6udpv4, /56)"
conf "$work/router.conf" v6udpv4 router
: >"$work/lan.ms"
: >"$work/up.ms"
for i in $(seq "$runs"); do
	ip -n $L -6 addr flush dev $LANIF scope global
	ip -n $L -ts -6 monitor address dev $LANIF >"$work/mon.log" 2>&1 &
	mon_pid=$!
	ip -n $C -ts -6 monitor address >"$work/monc.log" 2>&1 &
	monc_pid=$!
	sleep 0.1 # the monitors subscribe
	start_gogoc "$work/router.conf" "$work/gogoc.log"
	for _ in $(seq 100); do
		grep -q 'scope global' "$work/mon.log" && break
		sleep 0.05
	done
	addr=$(grep -m1 'scope global' "$work/mon.log" | sed -E 's/^\[([^]]+)\].*/\1/')
	up=$(grep -m1 'inet6 2001:db8:ab::' "$work/monc.log" | sed -E 's/^\[([^]]+)\].*/\1/')
	stop_gogoc
	kill "$mon_pid" "$monc_pid" 2>/dev/null; wait "$mon_pid" "$monc_pid" 2>/dev/null || true
	mon_pid='' monc_pid=''
	if [ -z "$addr" ] || [ -z "$up" ]; then echo "run $i: no tunnel or LAN address event within 5 s"; continue; fi
	t_addr=$(us "$addr") t_up=$(us "$up")
	lan=$(awk -v a="$t_addr" -v u="$t_up" 'BEGIN {printf "%.3f", (a-u)/1000}')
	st=$(awk -v u="$t_up" -v s="$t_start" 'BEGIN {printf "%.3f", (u-s)/1000}')
	echo "run $i: tunnel up → LAN address ${lan} ms   (process start → tunnel up ${st} ms)"
	echo "$lan" >>"$work/lan.ms"
	echo "$st" >>"$work/up.ms"
done
ml=$(median <"$work/lan.ms") mu=$(median <"$work/up.ms")
echo "median: tunnel up → LAN global address $ml ms; baseline process start → tunnel up $mu ms; ratio $(awk -v a="$ml" -v b="$mu" 'BEGIN {printf "%.2f", a/b}')"

echo
echo "== 3. idle wake-ups per minute (v6v4, no keepalive; window ${window} s after ${settle} s)"
# switches PID: voluntary + involuntary context switches of all threads.
switches() {
	cat /proc/"$1"/task/*/status 2>/dev/null | awk '/^(non)?voluntary_ctxt_switches/ {s+=$2} END {print s+0}'
}
declare -A rate
for kind in host router; do
	conf "$work/$kind.conf" v6v4 $kind
	start_gogoc "$work/$kind.conf" "$work/$kind.log"
	sleep "$settle"
	# The process under `ip netns exec` is gogoc itself (exec), so the pid is right.
	a=$(switches "$gogoc_pid")
	sleep "$window"
	b=$(switches "$gogoc_pid")
	stop_gogoc
	rate[$kind]=$(awk -v a="$a" -v b="$b" -v w="$window" 'BEGIN {printf "%.1f", (b-a)*60/w}')
	echo "$kind mode: $((b - a)) context switches in ${window} s = ${rate[$kind]} per minute"
done
grep -o 'router advertisements stopped.*' "$work/router.log" || true
echo "router/host: $(awk -v a="${rate[router]}" -v b="${rate[host]}" 'BEGIN {if (b > 0) printf "%.2f", a/b; else print "n/a (host mode had no switches)"}')"
echo "steady state of the RA timer alone: 60 s / mean(198..600 s) = 0.15 wake-ups per minute"
