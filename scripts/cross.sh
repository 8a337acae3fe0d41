#!/usr/bin/env bash
# Cross-builds static, stripped, version-stamped gogoc binaries for the
# OpenWrt targets into dist/: gogoc-<goarch> (mips, mipsle, arm, arm64, amd64).
# Usage: scripts/cross.sh [outdir] [goarch...]   (VERSION from the environment)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-dist}
shift || true
archs=("$@")
[ ${#archs[@]} -gt 0 ] || archs=(mips mipsle arm arm64 amd64)
version=${VERSION:-$(scripts/version.sh)}
mkdir -p "$out"
for a in "${archs[@]}"; do
	# Soft float: the 24Kc cores of the mips targets have no FPU, and
	# OpenWrt kernels do not all carry the FPU emulator.
	case $a in
	mips | mipsle) extra=(GOMIPS=softfloat) ;;
	arm) extra=(GOARM=7) ;;
	arm64 | amd64) extra=() ;;
	*) echo "cross.sh: unknown GOARCH $a" >&2; exit 2 ;;
	esac
	# -l (no inlining, every package) makes the mips binary 9 % smaller;
	# the client's CPU per GB through a userspace tunnel stayed within the
	# run-to-run noise (scripts/bench-inline.sh measures both).
	env CGO_ENABLED=0 GOOS=linux GOARCH="$a" "${extra[@]}" \
		go build -trimpath -gcflags "${GOGOC_GCFLAGS-all=-l}" \
		-ldflags "-s -w -X main.version=$version" \
		-o "$out/gogoc-$a" ./cmd/gogoc
	echo "built $out/gogoc-$a ($version)"
done
