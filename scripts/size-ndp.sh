#!/usr/bin/env bash
# What radv's own wire code (radv/message.go, radv/rs.go) saves in the
# router binary against github.com/mdlayher/ndp, which encoded the RAs
# until then. Importing ndp at all links golang.org/x/net/idna (ndp's DNSSL
# option), whose package initialisation keeps the IDNA and Unicode bidi
# tables. Builds cmd/gogoc for mips twice in one run, with the shipped flags
# (-gcflags all=-l, as scripts/cross.sh; GOGOC_GCFLAGS overrides): as it
# is, and as a baseline that also marshals an RA with every option radv
# sends through ndp.MarshalMessage, added by a -overlay file so that the
# tree is not touched. The baseline keeps radv's encoder too, so "saved" is
# ndp's cost; the encoder's own code is printed beside it. Prints the
# stripped file size, the loaded sections, gzip -9 (what the packages'
# zopfli compression follows) and the ratios.
# Fails if gogoc links ndp or x/net/idna again.
# Usage: scripts/size-ndp.sh [goarch]   (default mips, GOMIPS=softfloat)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-mips}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail=0
for p in github.com/mdlayher/ndp golang.org/x/net/idna; do
	if GOOS=linux GOARCH=$arch go list -deps ./cmd/gogoc | grep -qx "$p"; then
		echo "FAIL: cmd/gogoc depends on $p again" >&2
		fail=1
	fi
done
[ $fail = 1 ] || echo "ok: cmd/gogoc links neither mdlayher/ndp nor x/net/idna"

# The condition is never true at run time but the linker cannot know, so
# ndp's encoder of each option radv sends stays in the binary.
cat >"$tmp/baseline.go" <<'EOF'
package main

import (
	"os"

	"github.com/mdlayher/ndp"
)

func init() {
	if len(os.Args) > 1<<20 {
		b, _ := ndp.MarshalMessage(&ndp.RouterAdvertisement{Options: []ndp.Option{&ndp.PrefixInformation{},
			&ndp.RouteInformation{}, &ndp.RecursiveDNSServer{}, ndp.NewMTU(1280), &ndp.LinkLayerAddress{}}})
		os.Stdout.Write(b)
	}
}
EOF
printf '{"Replace":{"%s":"%s"}}\n' "$PWD/cmd/gogoc/zz_ndp_baseline.go" "$tmp/baseline.go" >"$tmp/overlay.json"

# shellcheck source=scripts/size-compare.sh
. scripts/size-compare.sh
flags=${GOGOC_GCFLAGS-all=-l}
build base -gcflags "$flags" -overlay "$tmp/overlay.json"
build new -gcflags "$flags"

compare "baseline (+ mdlayher/ndp encoder)" "radv's own wire code"
gb=$(gzip -9 -c "$tmp/base.s" | wc -c)
gn=$(gzip -9 -c "$tmp/new.s" | wc -c)
printf '  %-34s %10d (baseline %d; ratio %s)\n' "gzip -9 saved" "$((gb - gn))" "$gb" \
	"$(awk -v a="$gn" -v b="$gb" 'BEGIN { printf "%.4f", a / b }')"
echo "ndp, idna, bidi in the baseline: $(syms "$tmp/base" 'mdlayher/ndp|x/net/idna|x/text/')"
echo "radv's encoder and parser: $(syms "$tmp/new" 'radv\.(marshalRA|seconds|is6|parseRS|decodeRS|\(\*RouterSolicitation\))')"
exit $fail
