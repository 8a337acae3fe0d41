#!/usr/bin/env bash
# What reading the status file with internal/jsonread instead of
# encoding/json saves in the mips binary. Builds cmd/gogoc twice in one run:
# as it is, and as a baseline whose ReadStatus calls json.Unmarshal (via a
# -overlay copy of daemon/status.go; the tree is not touched). Prints the
# stripped file size, the sum of its loaded sections (finer: the file grows
# in 64 KiB steps), the encoding/json decoder's symbols, and the ratios.
# Usage: scripts/size-jsonread.sh [goarch]   (default mips, GOMIPS=softfloat)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-mips}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The baseline: ReadStatus decodes with encoding/json, as it did before.
call='	s, err := parseStatus(b)'
grep -qxF "$call" daemon/status.go || { echo "size-jsonread.sh: daemon/status.go no longer has the line: $call" >&2; exit 1; }
awk -v call="$call" '
	$0 == call { print "\tvar st Status\n\terr = json.Unmarshal(b, &st)\n\ts := &st"; next }
	{ print }' daemon/status.go >"$tmp/status.go"
grep -q '"encoding/json"' "$tmp/status.go" || sed -i 's|^import (|import (\n\t"encoding/json"|' "$tmp/status.go"
printf '{"Replace":{"%s":"%s"}}\n' "$PWD/daemon/status.go" "$tmp/status.go" >"$tmp/overlay.json"

# shellcheck source=scripts/size-compare.sh
. scripts/size-compare.sh
build base -overlay "$tmp/overlay.json"
build new

jsonread() { go tool nm -size "$1" | awk '/internal\/jsonread|daemon\.parse(Status|Keepalive)/ {s += $2} END {print s + 0}'; }

compare "baseline (json.Unmarshal)" "jsonread"
dec='encoding/json\.(\(\*decodeState\)|Unmarshal)'
echo "encoding/json decoder: baseline $(syms "$tmp/base" "$dec"); jsonread build $(syms "$tmp/new" "$dec")"
echo "jsonread + parseStatus code: $(jsonread "$tmp/new") bytes"
json_importers
