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

build() { # build name [extra go build flags...]
	local name=$1
	shift
	GOOS=linux GOARCH=$arch GOMIPS=softfloat CGO_ENABLED=0 go build -trimpath "$@" -o "$tmp/$name" ./cmd/gogoc
	GOOS=linux GOARCH=$arch GOMIPS=softfloat CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' "$@" -o "$tmp/$name.s" ./cmd/gogoc
}
build base -overlay "$tmp/overlay.json"
build new

# Sum of the sizes of the sections loaded into memory (flag A), .bss aside.
loaded() {
	local name size flags total=0
	while read -r name size flags; do
		case $name in .bss | .noptrbss) continue ;; esac
		[[ $flags == *A* ]] && total=$((total + 16#$size))
	done < <(readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk '{print $1, $5, $7}')
	echo "$total"
}
decoder() { go tool nm -size "$1" | awk '/encoding\/json\.\(\*decodeState\)|encoding\/json\.Unmarshal/ {n++; s += $2} END {printf "%d symbols, %d bytes", n, s}'; }
jsonread() { go tool nm -size "$1" | awk '/internal\/jsonread|daemon\.parse(Status|Keepalive)/ {s += $2} END {print s + 0}'; }

fb=$(stat -c %s "$tmp/base.s")
fn=$(stat -c %s "$tmp/new.s")
lb=$(loaded "$tmp/base.s")
ln=$(loaded "$tmp/new.s")
echo "cmd/gogoc for $arch, stripped:"
printf '  %-34s %10s %14s\n' "" "file bytes" "loaded bytes"
printf '  %-34s %10d %14d\n' "baseline (json.Unmarshal)" "$fb" "$lb"
printf '  %-34s %10d %14d\n' "jsonread" "$fn" "$ln"
awk -v fb="$fb" -v fn="$fn" -v lb="$lb" -v ln="$ln" 'BEGIN {
	printf "  %-34s %10d %14d\n", "saved", fb - fn, lb - ln
	printf "  %-34s %10.4f %14.4f\n", "ratio jsonread/baseline", fn / fb, ln / lb
}'
echo "encoding/json decoder: baseline $(decoder "$tmp/base"); jsonread build $(decoder "$tmp/new")"
echo "jsonread + parseStatus code: $(jsonread "$tmp/new") bytes"
# Nothing should import it any more (internal/jsonw writes).
echo "importers of encoding/json: $(GOOS=linux GOARCH=$arch go list -deps -f '{{.ImportPath}} {{join .Imports " "}}' ./cmd/gogoc | awk '/ encoding\/json( |$)/ {printf "%s ", $1}')"
