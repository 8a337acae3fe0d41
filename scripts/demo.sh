#!/usr/bin/env bash
# make demo: the test broker on loopback and gogoc negotiating with it, once
# anonymously and once as a DIGEST-MD5 router asking for a /56.
set -euo pipefail
cd "$(dirname "$0")/.."
port=${DEMO_PORT:-13653}
bin/tspbroker -udp 127.0.0.1:$port -tcp 127.0.0.1:$port -server-v6 2001:db8:ab::1 -user demo:demo-password &
broker=$!
trap 'kill $broker 2>/dev/null; wait $broker 2>/dev/null || true' EXIT
sleep 0.3
echo "== anonymous host, tunnel_mode=v6anyv4 behind a (declared) NAT"
bin/gogoc negotiate -server 127.0.0.1:$port -client-v4 192.0.2.10
echo "== DIGEST-MD5 router asking for a /56"
GOGOC_PASSWD=demo-password bin/gogoc negotiate -server 127.0.0.1:$port -auth digest-md5 -user demo -router -prefixlen 56
