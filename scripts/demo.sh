#!/usr/bin/env bash
# make demo: a real tunnel between two network namespaces.
#
#   gogoc-demo-client  192.0.2.2 ──veth── 192.0.2.1  gogoc-demo-broker ──veth── gogoc-demo-inet
#   gogoc run                               tspbroker -dataplane               2001:db8:ffff::1
#
# The client declares a client_v4 that differs from its source address, so
# the broker "sees" NAT and offers v6udpv4 for tunnel_mode=v6anyv4. The
# demo pings the broker's tunnel address and the host behind the broker,
# then stops gogoc with SIGTERM and checks that the tunnel device is gone.
# Everything is created inside the namespaces and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
	echo "demo.sh: needs root (network namespaces, TUN devices); try: sudo make demo" >&2
	exit 1
fi
for b in bin/gogoc bin/tspbroker; do
	[ -x "$b" ] || { echo "demo.sh: $b missing; run make build" >&2; exit 1; }
done

B=gogoc-demo-broker
C=gogoc-demo-client
I=gogoc-demo-inet
# DEMO_MODE=v6v4 shows the protocol-41 path instead (no NAT declared).
mode=${DEMO_MODE:-v6anyv4}
case $mode in
v6anyv4 | v6udpv4) TUN=gogoc natline='client_v4=198.51.100.7' ;;
v6v4) TUN=gogoc6in4 natline='client_v4=auto' ;;
*) echo "demo.sh: DEMO_MODE must be v6anyv4, v6udpv4 or v6v4" >&2; exit 2 ;;
esac
work=$(mktemp -d)
broker_pid=
client_pid=

cleanup() {
	local rc=$?
	set +e
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
	for ns in $C $B $I; do ip netns del "$ns" 2>/dev/null; done
	if [ "$rc" -ne 0 ]; then
		echo "== demo FAILED (exit $rc); logs:"
		echo "-- broker"; tail -n 30 "$work/broker.log" 2>/dev/null
		echo "-- gogoc"; tail -n 30 "$work/gogoc.log" 2>/dev/null
	fi
	rm -rf "$work"
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step() { echo; echo "== $*"; }

step "namespaces $C, $B, $I"
for ns in $C $B $I; do
	ip netns del "$ns" 2>/dev/null || true
	ip netns add "$ns"
	# No duplicate address detection: tentative link-local addresses would
	# hold back neighbour discovery for a second.
	ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
	ip -n "$ns" link set lo up
done
ip link add veth-demo-c netns $C type veth peer name veth-demo-b netns $B
ip -n $C addr add 192.0.2.2/24 dev veth-demo-c
ip -n $B addr add 192.0.2.1/24 dev veth-demo-b
ip -n $C link set veth-demo-c up
ip -n $B link set veth-demo-b up
ip link add veth-demo-i netns $I type veth peer name veth-demo-bi netns $B
ip -n $B addr add 2001:db8:ffff::2/64 dev veth-demo-bi nodad
ip -n $I addr add 2001:db8:ffff::1/64 dev veth-demo-i nodad
ip -n $B link set veth-demo-bi up
ip -n $I link set veth-demo-i up
ip -n $I -6 route add default via 2001:db8:ffff::2
ip netns exec $B sysctl -qw net.ipv6.conf.all.forwarding=1

step "broker: tspbroker -dataplane on 192.0.2.1:3653"
ip netns exec $B bin/tspbroker -dataplane -udp 192.0.2.1:3653 -tcp 192.0.2.1:3653 \
	-server-v4 192.0.2.1 -server-v6 2001:db8:ab::1 -auth ANONYMOUS >"$work/broker.log" 2>&1 &
broker_pid=$!
for _ in $(seq 50); do
	grep -q '^listening udp' "$work/broker.log" && break
	kill -0 "$broker_pid" 2>/dev/null || { echo "tspbroker exited"; exit 1; }
	sleep 0.1
done
grep -q '^listening udp' "$work/broker.log" || { echo "tspbroker did not start"; exit 1; }
grep '^listening' "$work/broker.log"

cat >"$work/gogoc.conf" <<EOF
server=192.0.2.1
auth_method=anonymous
tunnel_mode=$mode
$natline
keepalive=yes
keepalive_interval=5
EOF
step "client: gogoc run -f gogoc.conf"
sed 's/^/   /' "$work/gogoc.conf"
ip netns exec $C bin/gogoc run -f "$work/gogoc.conf" >"$work/gogoc.log" 2>&1 &
client_pid=$!
for _ in $(seq 50); do
	grep -q '^tunnel up:' "$work/gogoc.log" && break
	kill -0 "$client_pid" 2>/dev/null || { echo "gogoc exited"; exit 1; }
	sleep 0.1
done
grep '^tunnel up:' "$work/gogoc.log" || { echo "no 'tunnel up' within 5 s"; exit 1; }

step "client: ip -6 addr show dev $TUN"
ip -n $C -6 addr show dev $TUN
step "client: ip -6 route"
ip -n $C -6 route

step "ping the broker's tunnel address 2001:db8:ab::1"
ip netns exec $C ping -6 -c 3 -i 0.2 -W 2 2001:db8:ab::1
step "ping the host behind the broker 2001:db8:ffff::1"
ip netns exec $C ping -6 -c 3 -i 0.2 -W 2 2001:db8:ffff::1

step "SIGTERM to gogoc"
kill -TERM "$client_pid"
for _ in $(seq 20); do kill -0 "$client_pid" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$client_pid" 2>/dev/null; then echo "gogoc still running 2 s after SIGTERM"; exit 1; fi
rc=0; wait "$client_pid" || rc=$?
client_pid=
echo "gogoc exited with status $rc"
[ "$rc" -eq 0 ] || exit 1
if ip -n $C link show dev $TUN >/dev/null 2>&1; then
	echo "tunnel device $TUN still present"; exit 1
fi
echo "tunnel device $TUN is gone"
step "gogoc log"
sed 's/^/   /' "$work/gogoc.log"
echo
echo "== demo OK"
