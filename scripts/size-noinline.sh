#!/usr/bin/env bash
# What `//go:noinline` on the broker XML reader's small helpers (tsp/xml.go:
# attr, errAt, at, addrsFromXML) would be worth in the router binary. They
# were there "for size" until this measurement showed less than the 20 KiB
# issue 19 asks of a size trick inside a parser of hostile input. Builds
# cmd/gogoc for mips twice in one run: as it is, and with the directives
# put back by a -overlay copy of tsp/xml.go (the tree is not touched); each
# with the shipped flags (-gcflags all=-l, as scripts/cross.sh;
# GOGOC_GCFLAGS overrides), then with the compiler's default inlining.
# Usage: scripts/size-noinline.sh [goarch]   (default mips, GOMIPS=softfloat)
set -euo pipefail
cd "$(dirname "$0")/.."
arch=${1:-mips}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

sed -E 's#^(func \(e \*xmlElem\) attr\(|func \(p \*xmlParser\) errAt\(|func \(p \*xmlParser\) at\(|func addrsFromXML\()#//go:noinline\n\1#' \
	tsp/xml.go >"$tmp/xml.go"
n=$(grep -c '^//go:noinline' "$tmp/xml.go" || true)
if [ "$n" -ne 4 ]; then
	echo "size-noinline: expected 4 directives in the overlay, got $n (tsp/xml.go changed?)" >&2
	exit 1
fi
printf '{"Replace":{"%s":"%s"}}\n' "$PWD/tsp/xml.go" "$tmp/xml.go" >"$tmp/overlay.json"

# shellcheck source=scripts/size-compare.sh
. scripts/size-compare.sh
for flags in "${GOGOC_GCFLAGS-all=-l}" ""; do
	echo
	echo "-gcflags '${flags}'${flags:+ (shipped)}:"
	build base -gcflags "$flags"
	build new -gcflags "$flags" -overlay "$tmp/overlay.json"
	compare "tsp/xml.go as it is" "with the 4 //go:noinline"
done
