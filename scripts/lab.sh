# shellcheck shell=bash
# The namespace lab shared by demo.sh, bench-startup.sh and bench-tunnel.sh,
# sourced from the repository root:
#
#   client 192.0.2.2 ──veth── 192.0.2.1 broker ──veth── inet 2001:db8:ffff::1
#                             tspbroker -dataplane (tunnel side 2001:db8:ab::1)
#
# and, for router mode (lab_lan), a LAN host behind the client:
#
#   lan (SLAAC) ──veth-TAG-h / veth-TAG-l── client (gogoc, host_type=router)
#
# One definition keeps the demo and the benchmarks on the same layout.

# lab_need NAME BINARY...: root and the built binaries, or a clear exit.
lab_need() {
	local name=$1 b
	shift
	if [ "$(id -u)" -ne 0 ]; then
		echo "$name: needs root (network namespaces, TUN devices)" >&2
		exit 1
	fi
	for b in "$@"; do
		[ -x "$b" ] || { echo "$name: $b missing; run make build" >&2; exit 1; }
	done
}

# lab_up TAG CLIENT_NS BROKER_NS [INET_NS]: fresh namespaces and the links
# above; veth names carry TAG so several labs can coexist.
lab_up() {
	local tag=$1 c=$2 b=$3 i=${4:-} ns
	for ns in "$c" "$b" ${i:+"$i"}; do
		ip netns del "$ns" 2>/dev/null || true
		ip netns add "$ns"
		# No duplicate address detection: tentative link-local addresses
		# would hold back neighbour discovery for a second.
		ip netns exec "$ns" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0
		ip -n "$ns" link set lo up
	done
	ip link add "veth-$tag-c" netns "$c" type veth peer name "veth-$tag-b" netns "$b"
	ip -n "$c" addr add 192.0.2.2/24 dev "veth-$tag-c"
	ip -n "$b" addr add 192.0.2.1/24 dev "veth-$tag-b"
	ip -n "$c" link set "veth-$tag-c" up
	ip -n "$b" link set "veth-$tag-b" up
	if [ -n "$i" ]; then
		ip link add "veth-$tag-i" netns "$i" type veth peer name "veth-$tag-bi" netns "$b"
		ip -n "$b" addr add 2001:db8:ffff::2/64 dev "veth-$tag-bi" nodad
		ip -n "$i" addr add 2001:db8:ffff::1/64 dev "veth-$tag-i" nodad
		ip -n "$b" link set "veth-$tag-bi" up
		ip -n "$i" link set "veth-$tag-i" up
		ip -n "$i" -6 route add default via 2001:db8:ffff::2
	fi
	ip netns exec "$b" sysctl -qw net.ipv6.conf.all.forwarding=1
}

# lab_down NS...: remove namespaces (and with them every device inside).
lab_down() {
	local ns
	for ns in "$@"; do ip netns del "$ns" 2>/dev/null; done
	return 0
}

# lab_lan TAG CLIENT_NS LAN_NS: a fresh LAN namespace linked to the client
# (router side veth-TAG-l, host side veth-TAG-h). The host takes RAs and
# forms SLAAC addresses, without duplicate address detection.
lab_lan() {
	local tag=$1 c=$2 l=$3
	ip netns del "$l" 2>/dev/null || true
	ip netns add "$l"
	ip netns exec "$l" sysctl -qw net.ipv6.conf.default.accept_dad=0 net.ipv6.conf.all.accept_dad=0 \
		net.ipv6.conf.default.accept_ra=1 net.ipv6.conf.default.autoconf=1
	ip -n "$l" link set lo up
	ip link add "veth-$tag-h" netns "$l" type veth peer name "veth-$tag-l" netns "$c"
	ip -n "$l" link set "veth-$tag-h" up
	ip -n "$c" link set "veth-$tag-l" up
}

# lab_broker BROKER_NS LOG [TSPBROKER_ARGS...]: start tspbroker -dataplane on
# 192.0.2.1:3653 (anonymous unless the extra arguments say otherwise), set
# broker_pid and wait until it listens.
lab_broker() {
	local ns=$1 log=$2
	shift 2
	ip netns exec "$ns" bin/tspbroker -dataplane -udp 192.0.2.1:3653 -tcp 192.0.2.1:3653 \
		-server-v4 192.0.2.1 -server-v6 2001:db8:ab::1 -auth ANONYMOUS "$@" >"$log" 2>&1 &
	broker_pid=$!
	for _ in $(seq 50); do
		grep -q '^listening udp' "$log" && return 0
		kill -0 "$broker_pid" 2>/dev/null || { echo "tspbroker exited" >&2; return 1; }
		sleep 0.1
	done
	echo "tspbroker did not start" >&2
	return 1
}
