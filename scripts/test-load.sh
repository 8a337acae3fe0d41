#!/usr/bin/env bash
# The whole unit test run, as `make test-unit` runs it, while CPU burners
# (two by default, LOAD_BURNERS=n) compete for the cores at this script's own
# niceness: tests must hold on a small machine that is busy with other work.
# The burners end with this script however it ends: they are killed on exit,
# INT and TERM, and each one checks every few milliseconds that this script
# still lives, so a SIGKILLed run leaves none behind either.
set -euo pipefail
cd "$(dirname "$0")/.."
go=${GO:-go}
n=${LOAD_BURNERS:-2}
self=$$
pids=()
clk=$(getconf CLK_TCK)

# CPU seconds a process has used (utime + stime, /proc/PID/stat fields 14
# and 15; the command name in field 2 has no spaces here).
cpu() { awk -v hz="$clk" '{printf "%.1f", ($14 + $15) / hz}' "/proc/$1/stat" 2>/dev/null || echo "?"; }

stop() {
	local p
	for p in "${pids[@]}"; do
		echo "test-load: burner $p used $(cpu "$p") s of CPU in ${SECONDS} s"
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap stop EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

for _ in $(seq "$n"); do
	# shellcheck disable=SC2016 # expanded by the burner's own sh
	sh -c 'while kill -0 "$1" 2>/dev/null; do i=0; while [ $i -lt 5000 ]; do i=$((i+1)); done; done' burner "$self" &
	pids+=($!)
done
echo "test-load: $n burners (${pids[*]}) at niceness $(ps -o ni= -p "$self" | tr -d ' '), $(nproc) CPUs"
SECONDS=0
# go test's default of 10 minutes per package is a hang guard sized for an
# idle machine; a package's tests may take longer while they compete.
"$go" test -count=1 -timeout 30m ./... "$@"
