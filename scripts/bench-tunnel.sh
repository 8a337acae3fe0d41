#!/usr/bin/env bash
# Prints iperf3 TCP throughput through IPv6 tunnels and over the raw veth
# between the same namespaces, in the same run: Mbit/s each way, the ratio
# to the veth, CPU seconds per GB and peak RSS. Needs root and iperf3.
#
#   scripts/bench-tunnel.sh [--lab | --client | --all] [--client-cmd CMD] [seconds]
#
# --all (the default) runs both modes below, lab first.
#
# --lab: the userspace v6udpv4 engine of the tunnel package at both ends
#   (a Go test lab, go test -tags lab, client and broker namespaces), with
#   and without offloads. CPU s/GB of the one process running both tunnel
#   ends and of the whole machine, and that process's peak RSS.
#   Default 10 s per measurement.
#
# --client: the real client against the project's broker, the layout of
#   scripts/demo.sh:
#     gogoc-bt-client 192.0.2.2 ─veth─ 192.0.2.1 gogoc-bt-broker ─veth─ gogoc-bt-inet
#     client command                   tspbroker -dataplane              iperf3 -s 2001:db8:ffff::1
#   iperf3 from the client namespace to the inet namespace through the
#   tunnel, and to the broker namespace over the raw veth (IPv4). CPU s/GB
#   of the client process and of the broker process (utime+stime from
#   /proc/<pid>/stat) and of the whole machine; the client's peak RSS
#   (VmHWM). Default 5 s per measurement.
#   The client command defaults to
#       bin/gogoc run -f "$CONF"
#   and is replaced by --client-cmd CMD or the CLIENT_CMD environment
#   variable. It is run as `bash -c "exec CMD"` in the client namespace with
#   CONF (a gogoc.conf: server, anonymous, keepalive 30 s, tunnel_mode
#   v6anyv4 behind a declared NAT so v6udpv4) and SERVER (192.0.2.1,
#   port 3653) exported, so write '$CONF' and '$SERVER' in single quotes.
#   The exec'd process is the one measured. BENCH_MODE=v6v4 asks for the
#   protocol-41 tunnel instead (no NAT declared). The tunnel counts as up
#   at the first ping6 reply from 2001:db8:ffff::1 (within 10 s).
#   Needs bin/gogoc and bin/tspbroker (make build).
#
# seconds: per iperf3 measurement, for whichever modes run.
set -euo pipefail
cd "$(dirname "$0")/.."

modes=all
dur=
# shellcheck disable=SC2016 # expanded by the bash -c in the client namespace
CLIENT_CMD_DEFAULT='bin/gogoc run -f "$CONF"'
client_cmd=${CLIENT_CMD:-$CLIENT_CMD_DEFAULT}
while [ $# -gt 0 ]; do
	case $1 in
	--lab) modes=lab ;;
	--client) modes=client ;;
	--all) modes=all ;;
	--client-cmd) [ $# -ge 2 ] || { echo "bench-tunnel: --client-cmd needs an argument" >&2; exit 2; }
		client_cmd=$2; shift ;;
	--client-cmd=*) client_cmd=${1#--client-cmd=} ;;
	-h | --help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	[0-9]*) dur=$1 ;;
	*) echo "bench-tunnel: unknown argument $1 (see --help)" >&2; exit 2 ;;
	esac
	shift
done

# shellcheck source=scripts/lab.sh
. scripts/lab.sh
lab_need bench-tunnel
command -v iperf3 >/dev/null || { echo "bench-tunnel: needs iperf3 (apt-get install -y iperf3)" >&2; exit 1; }

work=$(mktemp -d)
labpid=
client_pid=
broker_pid=
B=gogoc-bt-broker
C=gogoc-bt-client
I=gogoc-bt-inet
cleanup() {
	local rc=$?
	set +e
	[ -n "$labpid" ] && { touch "$work/lab/stop"; wait "$labpid" 2>/dev/null; }
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
	lab_down $C $B $I
	if [ "$rc" -ne 0 ] && [ -f "$work/broker.log" ]; then
		echo "== bench-tunnel FAILED (exit $rc); logs:"
		echo "-- broker"; tail -n 20 "$work/broker.log"
		echo "-- client"; tail -n 20 "$work/client.log" 2>/dev/null
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

tck=$(getconf CLK_TCK)
# CPU ticks (user+system) of one process, and busy ticks of the machine.
proc_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
machine_ticks() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8 + $9}' /proc/stat; }

# measure NAME SERVER_NS CLIENT_NS ADDR [-R]: one iperf3 run; prints a row:
# name, direction, Mbit/s, retransmits, CPU s/GB of each process in $PIDS
# ("-" for all when TUNNEL=0), CPU s/GB of the machine.
port=5300
measure() {
	local name=$1 sns=$2 cns=$3 addr=$4 rev=${5:-}
	port=$((port + 1))
	ip netns exec "$sns" iperf3 -s -1 -p "$port" >/dev/null 2>&1 &
	local srv=$!
	sleep 0.3
	local pid p0=() p1=() m0 m1 out
	for pid in $PIDS; do p0+=("$(proc_ticks "$pid")"); done
	m0=$(machine_ticks)
	out=$(ip netns exec "$cns" iperf3 -c "$addr" -p "$port" -t "$dur" -f m ${rev:+"$rev"})
	for pid in $PIDS; do p1+=("$(proc_ticks "$pid")"); done
	m1=$(machine_ticks)
	wait "$srv" || true
	local i d=
	for i in "${!p0[@]}"; do d="$d $((p1[i] - p0[i]))"; done
	echo "$out" | awk -v name="$name" -v dir="${rev:+down}" -v p="$d" -v m="$((m1 - m0))" -v tck="$tck" -v tunnel="$TUNNEL" '
	/receiver/ { split($3, iv, "-"); secs = iv[2] - iv[1]; mbit = $7 }
	/sender/ && $9 != "" { retr = $9 }
	END {
		gb = mbit * secs / 8000 # transfer shows in auto-scaled units
		if (dir == "") dir = "up"
		n = split(p, pt, " ")
		printf "%-28s %-5s %10.0f %8s", name, dir, mbit, retr
		for (i = 1; i <= n; i++) printf " %12s", tunnel ? sprintf("%.2f", pt[i] / tck / gb) : "-"
		printf " %12.2f\n", m / tck / gb
	}'
}

# ---------------------------------------------------------------- lab mode
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

run_lab() {
	local dur=${dur:-10}
	go test -tags lab -c -o "$work/tunnel.test" ./tunnel/
	echo "== lab: the tunnel package's userspace v6udpv4 engine at both ends, ${dur} s each"
	printf "%-28s %-5s %10s %8s %12s %12s\n" "path" "dir" "Mbit/s" "retr" "tun CPU s/GB" "all CPU s/GB"
	local rows=$work/rows rss rss_plain
	: >"$rows"

	start_lab 0
	PIDS=$LAB_PID
	TUNNEL=0 measure "veth (IPv4, no tunnel)" "$BROKER_NS" "$CLIENT_NS" "$BROKER_V4" | tee -a "$rows"
	TUNNEL=0 measure "veth (IPv4, no tunnel)" "$BROKER_NS" "$CLIENT_NS" "$BROKER_V4" -R | tee -a "$rows"
	TUNNEL=1 measure "v6udpv4 userspace, offload" "$BROKER_NS" "$CLIENT_NS" "$SERVER_V6" | tee -a "$rows"
	TUNNEL=1 measure "v6udpv4 userspace, offload" "$BROKER_NS" "$CLIENT_NS" "$SERVER_V6" -R | tee -a "$rows"
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$LAB_PID/status")
	stop_lab
	start_lab 1
	PIDS=$LAB_PID
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
}

# ------------------------------------------------------------- client mode
run_client() {
	local dur=${dur:-5}
	# shellcheck disable=SC2046 # an empty or one-word list is meant
	lab_need bench-tunnel bin/tspbroker $([ "$client_cmd" = "${CLIENT_CMD_DEFAULT}" ] && echo bin/gogoc)
	local mode=${BENCH_MODE:-v6anyv4} natline
	case $mode in
	v6anyv4 | v6udpv4) natline='client_v4=198.51.100.7' ;;
	v6v4) natline='client_v4=auto' ;;
	*) echo "bench-tunnel: BENCH_MODE must be v6anyv4, v6udpv4 or v6v4" >&2; exit 2 ;;
	esac

	lab_up bt $C $B $I

	lab_broker $B "$work/broker.log"

	cat >"$work/gogoc.conf" <<-EOF
	server=192.0.2.1
	auth_method=anonymous
	tunnel_mode=$mode
	$natline
	keepalive=yes
	keepalive_interval=30
	EOF
	CONF=$work/gogoc.conf SERVER=192.0.2.1 ip netns exec $C bash -c "exec $client_cmd" >"$work/client.log" 2>&1 &
	client_pid=$!
	local up=
	for _ in $(seq 100); do
		kill -0 "$client_pid" 2>/dev/null || { echo "bench-tunnel: client exited" >&2; exit 1; }
		if ip netns exec $C ping -6 -n -q -c1 -W 0.1 2001:db8:ffff::1 >/dev/null 2>&1; then up=1; break; fi
		sleep 0.1
	done
	[ -n "$up" ] || { echo "bench-tunnel: no ping6 reply from 2001:db8:ffff::1 through the tunnel within 10 s" >&2; exit 1; }

	echo "== client: $client_cmd  (CONF: tunnel_mode=$mode) against tspbroker -dataplane, ${dur} s each"
	echo "   client pid $client_pid ($(cat "/proc/$client_pid/comm")), broker pid $broker_pid; $(grep -m1 '^tunnel up:' "$work/client.log" || echo 'tunnel up (ping6 ok)')"
	printf "%-28s %-5s %10s %8s %12s %12s %12s\n" "path" "dir" "Mbit/s" "retr" "cli CPU s/GB" "brk CPU s/GB" "all CPU s/GB"
	local rows=$work/crows
	: >"$rows"
	PIDS="$client_pid $broker_pid"
	TUNNEL=0 measure "veth (IPv4, no tunnel)" $B $C 192.0.2.1 | tee -a "$rows"
	TUNNEL=0 measure "veth (IPv4, no tunnel)" $B $C 192.0.2.1 -R | tee -a "$rows"
	TUNNEL=1 measure "tunnel $mode to inet" $I $C 2001:db8:ffff::1 | tee -a "$rows"
	TUNNEL=1 measure "tunnel $mode to inet" $I $C 2001:db8:ffff::1 -R | tee -a "$rows"
	local rss brss
	rss=$(awk '/VmHWM/ {print $2}' "/proc/$client_pid/status")
	brss=$(awk '/VmHWM/ {print $2}' "/proc/$broker_pid/status")

	kill -TERM "$client_pid" 2>/dev/null || true
	wait "$client_pid" 2>/dev/null || true
	client_pid=
	kill -TERM "$broker_pid" 2>/dev/null || true
	wait "$broker_pid" 2>/dev/null || true
	broker_pid=

	echo
	awk '
	/^veth/ { veth[$(NF-5)] = $(NF-4) }
	/^tunnel/ { tun[$(NF-5)] = $(NF-4) }
	END { for (d in veth) printf "ratio %-4s tunnel/veth: %.3f\n", d, tun[d] / veth[d] }' "$rows" | sort
	echo "peak RSS (VmHWM): client ${rss} kB, broker ${brss} kB"
}

load="$(cut -d' ' -f1-3 /proc/loadavg)"
case $modes in
lab) run_lab ;;
client) run_client ;;
all) run_lab; echo; run_client ;;
esac
echo "(tunnel ends, both TCP stacks and iperf3 share this machine's $(nproc) CPUs; load before the run: $load)"
