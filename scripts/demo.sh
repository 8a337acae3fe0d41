#!/usr/bin/env bash
# make demo: a real tunnel between network namespaces, in router mode.
#
#   gogoc-demo-lan ──veth── gogoc-demo-client 192.0.2.2 ──veth── 192.0.2.1 gogoc-demo-broker ──veth── gogoc-demo-inet
#   SLAAC host              gogoc run (router, /56)                tspbroker -dataplane              2001:db8:ffff::1
#
# The client declares a client_v4 that differs from its source address, so
# the broker "sees" NAT and offers v6udpv4 for tunnel_mode=v6anyv4. It asks
# for a /56 and advertises the first /64 on the LAN with its own Router
# Advertisements; the LAN host configures itself from them and pings the
# host behind the broker through the tunnel. SIGTERM then sends the final
# RA: the LAN host loses its default route and its address is deprecated;
# the tunnel device is gone. Everything is created inside the namespaces and
# removed on exit.
#
# gogoc runs as on the router: as the system user gogoc (created here when
# missing), holding only CAP_NET_ADMIN and CAP_NET_RAW, with no_new_privs
# (util-linux setpriv), reading a configuration and writing a state
# directory that belong to that user.
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lab.sh
. scripts/lab.sh
lab_need demo.sh bin/gogoc bin/tspbroker
command -v setpriv >/dev/null || { echo "demo.sh: needs setpriv (util-linux)" >&2; exit 1; }

B=gogoc-demo-broker
C=gogoc-demo-client
I=gogoc-demo-inet
L=gogoc-demo-lan
LANIF=veth-demo-h
# DEMO_MODE=v6v4 shows the protocol-41 path instead (no NAT declared).
mode=${DEMO_MODE:-v6anyv4}
case $mode in
v6anyv4 | v6udpv4) TUN=gogoc natline='client_v4=198.51.100.7' ;;
v6v4) TUN=gogoc6in4 natline='client_v4=auto' ;;
*) echo "demo.sh: DEMO_MODE must be v6anyv4, v6udpv4 or v6v4" >&2; exit 2 ;;
esac
work=$(mktemp -d)
# The daemon's user reaches its files and binary in here (mktemp: 0700).
chmod 0755 "$work"
broker_pid=
client_pid=

cleanup() {
	local rc=$?
	set +e
	[ -n "$client_pid" ] && kill "$client_pid" 2>/dev/null && wait "$client_pid" 2>/dev/null
	[ -n "$broker_pid" ] && kill "$broker_pid" 2>/dev/null && wait "$broker_pid" 2>/dev/null
	lab_down $L $C $B $I
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

step "namespaces $L, $C, $B, $I"
lab_up demo $C $B $I
lab_lan demo $C $L

# Prefix delegation is for authenticated users only.
step "broker: tspbroker -dataplane on 192.0.2.1:3653, user demo, DNS 2001:db8:ffff::53"
lab_broker $B "$work/broker.log" -auth DIGEST-MD5 -user demo:demo -dns 2001:db8:ffff::53
grep '^listening' "$work/broker.log"

cat >"$work/gogoc.conf" <<EOF
server=192.0.2.1
auth_method=digest-md5
userid=demo
passwd=demo
tunnel_mode=$mode
$natline
keepalive=yes
keepalive_interval=5
host_type=router
prefixlen=56
if_prefix=veth-demo-l
EOF
step "user gogoc: a system account without login, as the OpenWrt package creates"
if ! id -u gogoc >/dev/null 2>&1; then
	useradd --system --user-group --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin gogoc
fi
id gogoc
# What the init script hands the daemon: its configuration (0600) and its
# state directory (0750), both the daemon's user's; the binary where that
# user may run it.
install -d -o gogoc -g gogoc -m 0750 "$work/state"
chown gogoc:gogoc "$work/gogoc.conf"
chmod 0600 "$work/gogoc.conf"
install -m 0755 bin/gogoc "$work/gogoc"
caps=+net_admin,+net_raw
PRIVS=(setpriv --reuid gogoc --regid gogoc --clear-groups
	--inh-caps "$caps" --ambient-caps "$caps" --bounding-set "-all,$caps" --no-new-privs)

step "client: ${PRIVS[*]} gogoc run -f gogoc.conf (router mode)"
sed -e 's/^passwd=.*/passwd=********/' -e 's/^/   /' "$work/gogoc.conf"
ip netns exec $C "${PRIVS[@]}" "$work/gogoc" run -f "$work/gogoc.conf" -status-file "$work/state/status.json" >"$work/gogoc.log" 2>&1 &
client_pid=$!
for _ in $(seq 50); do
	grep -q '^tunnel up:' "$work/gogoc.log" && break
	kill -0 "$client_pid" 2>/dev/null || { echo "gogoc exited"; exit 1; }
	sleep 0.1
done
grep '^tunnel up:' "$work/gogoc.log" || { echo "no 'tunnel up' within 5 s"; exit 1; }

step "client: gogoc's credentials (/proc/$client_pid/status): user gogoc, CAP_NET_ADMIN (bit 12) and CAP_NET_RAW (bit 13) only"
grep -E '^(Uid|Gid|Groups|CapInh|CapPrm|CapEff|CapBnd|CapAmb|NoNewPrivs):' "/proc/$client_pid/status" | sed 's/^/   /'
uid=$(awk '/^Uid:/ { print $3 }' "/proc/$client_pid/status")
[ "$uid" = "$(id -u gogoc)" ] || { echo "gogoc runs as uid $uid, not as user gogoc"; exit 1; }
for set in CapEff CapPrm CapAmb CapBnd; do
	v=$(awk -v s="$set:" '$1 == s { print $2 }' "/proc/$client_pid/status")
	[ "$v" = 0000000000003000 ] || { echo "$set is $v, want 0000000000003000 (CAP_NET_ADMIN, CAP_NET_RAW)"; exit 1; }
done
find "$work/state" -printf '   %M %u:%g %p\n'

step "client: ip -6 addr show dev $TUN"
ip -n $C -6 addr show dev $TUN
step "client: ip -6 route"
ip -n $C -6 route

step "client: ip -6 route show type unreachable (the unused rest of the /56)"
ip -n $C -6 route show type unreachable

step "ping the broker's tunnel address 2001:db8:ab::1"
ip netns exec $C ping -6 -c 3 -i 0.2 -W 2 2001:db8:ab::1

step "LAN host: waiting for a SLAAC address from gogoc's Router Advertisement"
for _ in $(seq 50); do
	ip -n $L -6 addr show dev $LANIF scope global | grep -q inet6 && break
	sleep 0.1
done
ip -n $L -6 addr show dev $LANIF scope global | grep -q inet6 || { echo "no global address on the LAN host within 5 s"; exit 1; }
ip -n $L -6 addr show dev $LANIF
step "LAN host: ip -6 route"
ip -n $L -6 route
step "LAN host: rdisc6 $LANIF"
ip netns exec $L rdisc6 -1 -w 1000 $LANIF
step "LAN host: ping the host behind the broker 2001:db8:ffff::1 through the router and the tunnel"
ip netns exec $L ping -6 -c 3 -i 0.2 -W 2 2001:db8:ffff::1

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
step "LAN host after the final RA: no default route, address deprecated"
if ip -n $L -6 route show default | grep .; then echo "LAN host still has a default route"; exit 1; fi
ip -n $L -6 addr show dev $LANIF scope global
ip -n $L -6 addr show dev $LANIF scope global | grep -q deprecated || { echo "LAN address not deprecated"; exit 1; }
step "gogoc log"
sed 's/^/   /' "$work/gogoc.log"
echo
echo "== demo OK"
