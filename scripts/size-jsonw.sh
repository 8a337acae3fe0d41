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

# shellcheck source=scripts/size-compare.sh
. scripts/size-compare.sh
build base -overlay "$tmp/overlay.json"
build new

compare "baseline (+ encoding/json writer)" "jsonw only"
echo "encoding/json: baseline $(syms "$tmp/base" 'encoding/json'); jsonw build $(syms "$tmp/new" 'encoding/json')"
echo "jsonw code: $(syms "$tmp/new" 'internal/jsonw')"
json_importers
