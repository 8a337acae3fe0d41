#!/usr/bin/env bash
# What writing gogoc's JSON (status file, `gogoc status --json`, `gogoc
# negotiate`) with internal/jsonw instead of encoding/json saves in the
# router binary. Builds cmd/gogoc twice in one run: as it is, and as a
# baseline that also marshals the same values (Status, the negotiate result
# with its Offer) with encoding/json, added by a -overlay file so that the
# tree is not touched. The baseline keeps jsonw too, so "saved" is the
# encoder's cost; jsonw's own code is printed beside it. Prints the stripped
# file size, the sum of the loaded sections (finer: the file grows in 64 KiB
# steps), the encoder's symbols and the ratios.
# Usage: scripts/size-jsonw.sh [goarch]   (default mips, GOMIPS=softfloat)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-mips}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# The condition is never true at run time but the linker cannot know, so
# the reflective encoder and its per-type code stay in the binary.
cat >"$tmp/baseline.go" <<'EOF'
package main

import (
	"encoding/json"
	"os"

	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/tsp"
)

func init() {
	if len(os.Args) > 1<<20 {
		s, _ := json.MarshalIndent(&daemon.Status{Keepalive: &daemon.Keepalive{}}, "", "  ")
		n, _ := json.MarshalIndent(negotiation{Offer: &tsp.Offer{}}, "", "  ")
		os.Stdout.Write(append(s, n...))
	}
}
EOF
printf '{"Replace":{"%s":"%s"}}\n' "$PWD/cmd/gogoc/zz_dw_baseline.go" "$tmp/baseline.go" >"$tmp/overlay.json"

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
syms() { # syms binary regexp: count and bytes of the matching symbols
	go tool nm -size "$1" | awk -v re="$2" '$0 ~ re {n++; s += $2} END {printf "%d symbols, %d bytes", n, s}'
}

fb=$(stat -c %s "$tmp/base.s")
fn=$(stat -c %s "$tmp/new.s")
lb=$(loaded "$tmp/base.s")
ln=$(loaded "$tmp/new.s")
echo "cmd/gogoc for $arch, stripped:"
printf '  %-34s %10s %14s\n' "" "file bytes" "loaded bytes"
printf '  %-34s %10d %14d\n' "baseline (+ encoding/json writer)" "$fb" "$lb"
printf '  %-34s %10d %14d\n' "jsonw only" "$fn" "$ln"
awk -v fb="$fb" -v fn="$fn" -v lb="$lb" -v ln="$ln" 'BEGIN {
	printf "  %-34s %10d %14d\n", "saved", fb - fn, lb - ln
	printf "  %-34s %10.4f %14.4f\n", "ratio jsonw/baseline", fn / fb, ln / lb
}'
echo "encoding/json: baseline $(syms "$tmp/base" 'encoding/json'); jsonw build $(syms "$tmp/new" 'encoding/json')"
echo "jsonw code: $(syms "$tmp/new" 'internal/jsonw')"
importers=$(GOOS=linux GOARCH=$arch go list -deps -f '{{.ImportPath}} {{join .Imports " "}}' ./cmd/gogoc | awk '/ encoding\/json( |$)/ {printf "%s ", $1}')
echo "importers of encoding/json in cmd/gogoc: ${importers:-none}"
