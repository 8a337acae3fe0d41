#!/usr/bin/env bash
# Runs every fuzz target in the module briefly: $1 is a -fuzztime value,
# default 20000x (a count; see the Makefile for why not a duration).
# go test -fuzz accepts one target per run, so they are listed and run in turn.
set -euo pipefail
fuzztime=${1:-20000x}
cd "$(dirname "$0")/.."
n=0
for pkg in $(go list ./...); do
	dir=$(go list -f '{{.Dir}}' "$pkg")
	while read -r target; do
		[ -n "$target" ] || continue
		echo "fuzz $pkg $target ($fuzztime)"
		go test -run '^$' -fuzz "^${target}\$" -fuzztime "$fuzztime" "$pkg" >/tmp/fuzz.$$.log 2>&1 || { cat /tmp/fuzz.$$.log; exit 1; }
		n=$((n+1))
	done < <(grep -ho '^func Fuzz[A-Za-z0-9_]*' "$dir"/*_test.go 2>/dev/null | sed 's/^func //' | sort -u)
done
echo "fuzz-smoke: $n targets ran clean"
