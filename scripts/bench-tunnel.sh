#!/usr/bin/env bash
# Prints iperf3 TCP throughput through the userspace v6udpv4 tunnel (client
# and broker namespaces, the tunnel package's engine at both ends, with and
# without offloads) and over the raw veth between the same namespaces, in
# the same run: Mbit/s each way, the ratio to the veth, CPU seconds per GB
# (of the process running both tunnel ends, and of the whole machine) and
# the tunnel process's peak RSS. Needs root and iperf3.
#
#   scripts/bench-tunnel.sh [seconds per measurement, default 10]
set -euo pipefail
cd "$(dirname "$0")/.."
dur=${1:-10}

[ "$(id -u)" = 0 ] || { echo "bench-tunnel: needs root (network namespaces, TUN)" >&2; exit 1; }
command -v iperf3 >/dev/null || { echo "bench-tunnel: needs iperf3 (apt-get install -y iperf3)" >&2; exit 1; }

work=$(mktemp -d)
labpid=
cleanup() {
	[ -n "$labpid" ] && { touch "$work/lab/stop"; wait "$labpid" 2>/dev/null || true; }
	rm -rf "$work"
}
trap cleanup EXIT

go test -tags lab -c -o "$work/tunnel.test" ./tunnel/

tck=$(getconf CLK_TCK)
# CPU ticks (user+system) of one process, and busy ticks of the machine.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# start_lab [plain]: brings the lab up and sources its addresses.
start_lab() {
	mkdir -p "$work/lab"
	rm -f "$work/lab/"*
	GOGOC_TUNNEL_LAB="$work/lab" GOGOC_TUNNEL_LAB_PLAIN="${1:-0}" \
		"$work/tunnel.test" -test.run '^TestLab$' -test.timeout 40m >"$work/lab.log" 2>&1 &
	labpid=$!
	for _ in $(seq 100); do [ -f "$work/lab/ready" ] && break; sleep 0.1; done
	[ -f "$work/lab/ready" ] || { cat "$work/lab.log"; echo "bench-tunnel: lab did not come up" >&2; exit 1; }
	# shellcheck disable=SC1091
	. "$work/lab/ready"
}

stop_lab() {
	touch "$work/lab/stop"
	wait "$labpid" || { cat "$work/lab.log"; exit 1; }
	labpid=
}

# measure NAME SERVER_NS CLIENT_NS ADDR [-R]: one iperf3 run; prints a row.
port=5300
measure() {
	local name=$1 sns=$2 cns=$3 addr=$4 rev=${5:-}
	port=$((port + 1))
	ip netns exec "$sns" iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
	local srv=$!
	sleep 0.3
	local p0 m0 out
	p0=$(proc_ticks "$LAB_PID")
	m0=$(machine_ticks)
	out=$(ip netns exec "$cns" iperf3 -c "$addr" -p "$port" -t "$dur" -f m $rev)
	local p1 m1
	p1=$(proc_ticks "$LAB_PID")
	m1=$(machine_ticks)
	wait "$srv" || true
	echo "$out" | awk -v name="$name" -v dir="${rev:+down}" -v p="$((p1 - p0))" -v m="$((m1 - m0))" -v tck="$tck" -v tunnel="$TUNNEL" '
	/receiver/ { split($3, iv, "-"); secs = iv[2] - iv[1]; mbit = $7 }
	/sender/ && $9 != "" { retr = $9 }
	END {
		gb = mbit * secs / 8000 # transfer shows in auto-scaled units
		if (dir == "") dir = "up"
		pc = tunnel ? sprintf("%.2f", p / tck / gb) : "-"
		printf "%-28s %-5s %10.0f %8s %12s %12.2f\n", name, dir, mbit, retr, pc, m / tck / gb
	}'
}

printf "%-28s %-5s %10s %8s %12s %12s\n" "path" "dir" "Mbit/s" "retr" "tun CPU s/GB" "all CPU s/GB"
rows=$work/rows
: >"$rows"

start_lab 0
TUNNEL=0 measure "veth (IPv4, no tunnel)" "$BROKER_NS" "$CLIENT_NS" "$BROKER_V4" | tee -a "$rows"
TUNNEL=0 measure "veth (IPv4, no tunnel)" "$BROKER_NS" "$CLIENT_NS" "$BROKER_V4" -R | tee -a "$rows"
TUNNEL=1 measure "v6udpv4 userspace, offload" "$BROKER_NS" "$CLIENT_NS" "$SERVER_V6" | tee -a "$rows"
TUNNEL=1 measure "v6udpv4 userspace, offload" "$BROKER_NS" "$CLIENT_NS" "$SERVER_V6" -R | tee -a "$rows"
rss=$(awk '/VmHWM/ {print $2}' "/proc/$LAB_PID/status")
stop_lab
start_lab 1
TUNNEL=1 measure "v6udpv4 userspace, plain" "$BROKER_NS" "$CLIENT_NS" "$SERVER_V6" | tee -a "$rows"
TUNNEL=1 measure "v6udpv4 userspace, plain" "$BROKER_NS" "$CLIENT_NS" "$SERVER_V6" -R | tee -a "$rows"
rss_plain=$(awk '/VmHWM/ {print $2}' "/proc/$LAB_PID/status")
stop_lab

echo
awk '
/^veth/ { veth[$(NF-4)] = $(NF-3) }
/offload/ { off[$(NF-4)] = $(NF-3) }
/plain/ { pl[$(NF-4)] = $(NF-3) }
END {
	for (d in veth) printf "ratio %-4s tunnel/veth: offload %.3f, plain %.3f\n", d, off[d] / veth[d], pl[d] / veth[d]
}' "$rows" | sort
echo "peak RSS of the process running both tunnel ends: offload ${rss} kB, plain ${rss_plain} kB"
echo "(both tunnel ends, both TCP stacks and iperf3 share this machine's $(nproc) CPUs; load before the run: $(cut -d' ' -f1-3 /proc/loadavg))"
