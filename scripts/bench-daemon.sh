#!/usr/bin/env bash
# bench-daemon.sh: the idle daemon's footprint. Brings up `gogoc run` (the
# supervisor, userspace data plane, v6udpv4, keepalive every 30 s) against
# tspbroker -dataplane in the namespace lab, lets it settle, and prints
#   - RSS (VmRSS, and VmHWM the peak) against the 8 MiB target, the old C
#     client's ≈ 4 MiB and a `sleep` process started in the same run;
#   - wake-ups per minute while idle: voluntary + involuntary context
#     switches of all its threads over WINDOW seconds (default 60: two whole keepalive periods), scaled,
#     against the old client's tunnel loop, which woke every 500 ms (120/min).
# The kernel data plane is not measured here: this machine's kernel has no
# sit/fou modules (the VM lane has them).
#
#   sudo scripts/bench-daemon.sh            # after make build
#   WINDOW=60 sudo scripts/bench-daemon.sh
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lab.sh
. scripts/lab.sh
lab_need bench-daemon bin/gogoc bin/tspbroker

window=${WINDOW:-60}
tag=gdm$$
C=gdm-bc-$$
B=gdm-bb-$$
work=$(mktemp -d)
gogoc_pid=
sleep_pid=
cleanup() {
	[ -n "$gogoc_pid" ] && kill "$gogoc_pid" 2>/dev/null && wait "$gogoc_pid" 2>/dev/null
	[ -n "$sleep_pid" ] && kill "$sleep_pid" 2>/dev/null
	[ -n "${broker_pid:-}" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
	lab_down "$C" "$B"
	rm -rf "$work"
}
trap cleanup EXIT

lab_up "$tag" "$C" "$B"
lab_broker "$B" "$work/broker.log"
cat >"$work/gogoc.conf" <<CONF
server=192.0.2.1
auth_method=anonymous
tunnel_mode=v6udpv4
keepalive=yes
keepalive_interval=30
log_stderr=1
CONF
ip netns exec "$C" bin/gogoc run -f "$work/gogoc.conf" -status-file "$work/status.json" >"$work/gogoc.log" 2>&1 &
gogoc_pid=$!
for _ in $(seq 50); do
	grep -q '^tunnel up:' "$work/gogoc.log" && break
	sleep 0.1
done
grep -q '^tunnel up:' "$work/gogoc.log" || { echo "no tunnel within 5 s"; cat "$work/gogoc.log"; exit 1; }
sleep 1000 &
sleep_pid=$!
sleep 3 # settle: set-up garbage collected, first keepalives done

kib() { awk -v k="$2" '$1 == k":" {print $2}' "/proc/$1/status"; }
# switches PID: context switches of every thread of PID.
switches() {
	local sum=0 f v n
	for f in /proc/"$1"/task/*/status; do
		v=$(awk '$1 == "voluntary_ctxt_switches:" {print $2}' "$f")
		n=$(awk '$1 == "nonvoluntary_ctxt_switches:" {print $2}' "$f")
		sum=$((sum + v + n))
	done
	echo "$sum"
}
s0=$(switches "$gogoc_pid")
t0=$(date +%s.%N)
sleep "$window"
s1=$(switches "$gogoc_pid")
t1=$(date +%s.%N)
rss=$(kib "$gogoc_pid" VmRSS)
hwm=$(kib "$gogoc_pid" VmHWM)
sleep_rss=$(kib "$sleep_pid" VmRSS)
threads=$(kib "$gogoc_pid" Threads)
state=$(grep -o '"state": "[a-z]*"' "$work/status.json")

awk -v rss="$rss" -v hwm="$hwm" -v srss="$sleep_rss" -v s="$((s1 - s0))" -v t0="$t0" -v t1="$t1" \
	-v th="$threads" -v st="$state" 'BEGIN {
	el = t1 - t0; wpm = s * 60 / el
	printf "idle gogoc run (userspace data plane, v6udpv4, keepalive 30 s; %s; %d threads)\n", st, th
	printf "  RSS            %6.2f MiB (peak %.2f MiB)\n", rss / 1024, hwm / 1024
	printf "    vs target 8 MiB:         %.2fx\n", rss / 8192
	printf "    vs old C client ~4 MiB:  %.2fx\n", rss / 4096
	printf "    vs sleep(1) process:     %.2fx (%.2f MiB)\n", rss / srss, srss / 1024
	printf "  wake-ups       %6.1f /min (%d context switches in %.1f s)\n", wpm, s, el
	printf "    vs old client tunnel loop (500 ms poll, 120/min): %.2fx\n", wpm / 120
	printf "  kernel data plane: not measured on this machine (no sit/fou modules; the VM lane has them)\n"
}'
