#!/usr/bin/env bash
# Prints gogoc's version: the one string the ipk, the apk, the SDK feed
# Makefiles and `gogoc version` carry. It must be valid for apk-tools 3
# and opkg and grow from commit to commit under both comparators:
#
#   at a tag vX.Y.Z                  X.Y.Z-r<release>
#   n commits after that tag         X.Y.Z.n~<hash>-r<release>
#   no tag: n commits in the history 0.0.0.n~<hash>-r<release>
#
# n grows with every commit (an ancestor has fewer ancestors), so the
# fourth number orders commits; the hash after "~" is for people (apk
# reads ~ as a commit hash, opkg as "sorts first"; both only reach it when
# n is equal). A tag is only numbers and dots: a suffix like -rc1 would be
# a pre-release for apk and a post-release for opkg.
#
# Usage: scripts/version.sh [--upstream]
#   --upstream  without -r<release> (the feed Makefiles' PKG_VERSION)
# GOGOC_PKG_VERSION overrides the upstream part, GOGOC_PKG_RELEASE the
# release (default 1). A shallow clone cannot count its commits: the
# script fails rather than print a version that goes backwards.
set -euo pipefail
cd "$(dirname "$0")/.."

upstream() {
	local d n h base
	if [ "$(git rev-parse --is-shallow-repository 2>/dev/null)" = true ]; then
		echo "version.sh: shallow clone: the commit count is unknown (fetch the full history, or src-git-full in feeds.conf)" >&2
		return 1
	fi
	h=$(git rev-parse --short=7 HEAD 2>/dev/null) || {
		echo "version.sh: not a git checkout; set GOGOC_PKG_VERSION" >&2
		return 1
	}
	if d=$(git describe --tags --long --match 'v[0-9]*' 2>/dev/null); then
		d=${d%-g*}
		n=${d##*-}
		base=${d%-*}
		base=${base#v}
		if ! [[ $base =~ ^[0-9]+(\.[0-9]+)*$ ]]; then
			echo "version.sh: tag v$base is not vX.Y.Z (numbers and dots only)" >&2
			return 1
		fi
		if [ "$n" = 0 ]; then echo "$base"; else echo "$base.$n~$h"; fi
	else
		echo "0.0.0.$(git rev-list --count HEAD)~$h"
	fi
}

v=${GOGOC_PKG_VERSION:-}
[ -n "$v" ] || v=$(upstream)
r=${GOGOC_PKG_RELEASE:-1}
if ! [[ $v =~ ^[0-9]+(\.[0-9]+)*(~[0-9a-f]+)?$ && $r =~ ^[0-9]+$ ]]; then
	echo "version.sh: '$v-r$r' is not a version apk and opkg both order (want 1.2.3[.n~hash]-rN)" >&2
	exit 1
fi
if [ "${1:-}" = --upstream ]; then echo "$v"; else echo "$v-r$r"; fi
