#!/usr/bin/env bash
# Prints negotiation time over loopback (UDP and TCP, anonymous and
# DIGEST-MD5) against the project's test broker, and each as a ratio of the
# baseline in the same run: one bare RUDP ECHO exchange on a fresh socket.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-2000}
out=$(go test -run '^$' -bench '^BenchmarkNegotiate$' -benchtime "${n}x" -count 1 ./tsp/)
echo "$out" | awk '
/^BenchmarkNegotiate\// {
	name=$1; sub(/^BenchmarkNegotiate\//, "", name); sub(/-[0-9]+$/, "", name)
	ns[name]=$3; order[++k]=name
}
END {
	base=ns["baseline-echo"]
	if (base == "") { print "no baseline measured"; exit 1 }
	printf "%-22s %10s %8s\n", "negotiation", "ms", "x echo"
	for (i=1; i<=k; i++) printf "%-22s %10.3f %8.1f\n", order[i], ns[order[i]]/1e6, ns[order[i]]/base
}'
