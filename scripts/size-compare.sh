# shellcheck shell=bash disable=SC2154  # arch and tmp come from the sourcing script
# Sourced by the scripts/size-*.sh comparisons: build cmd/gogoc as it is and
# as a baseline (a -overlay given by the caller; the tree is not touched),
# then print both sizes and the ratio. Needs $arch and $tmp set.

# build name [go build flags...]: $tmp/name with symbols, $tmp/name.s stripped.
build() {
	local name=$1
	shift
	GOOS=linux GOARCH=$arch GOMIPS=softfloat CGO_ENABLED=0 go build -trimpath "$@" -o "$tmp/$name" ./cmd/gogoc
	GOOS=linux GOARCH=$arch GOMIPS=softfloat CGO_ENABLED=0 go build -trimpath -ldflags='-s -w' "$@" -o "$tmp/$name.s" ./cmd/gogoc
}

# loaded file: the sum of the sections loaded into memory (flag A), .bss
# aside. Finer than the file size, which grows in 64 KiB steps on mips.
loaded() {
	local name size flags total=0
	while read -r name size flags; do
		case $name in .bss | .noptrbss) continue ;; esac
		[[ $flags == *A* ]] && total=$((total + 16#$size))
	done < <(readelf -SW "$1" | sed -n 's/^ *\[ *[0-9]*\] //p' | awk '{print $1, $5, $7}')
	echo "$total"
}

# syms binary regexp: count and bytes of the matching symbols.
syms() {
	go tool nm -size "$1" | awk -v re="$2" '$0 ~ re {n++; s += $2} END {printf "%d symbols, %d bytes", n, s}'
}

# compare base-label new-label: the table for $tmp/base.s against $tmp/new.s.
compare() {
	local fb fn lb ln
	fb=$(stat -c %s "$tmp/base.s")
	fn=$(stat -c %s "$tmp/new.s")
	lb=$(loaded "$tmp/base.s")
	ln=$(loaded "$tmp/new.s")
	echo "cmd/gogoc for $arch, stripped:"
	printf '  %-34s %10s %14s\n' "" "file bytes" "loaded bytes"
	printf '  %-34s %10d %14d\n' "$1" "$fb" "$lb"
	printf '  %-34s %10d %14d\n' "$2" "$fn" "$ln"
	awk -v fb="$fb" -v fn="$fn" -v lb="$lb" -v ln="$ln" -v r="ratio $2/baseline" 'BEGIN {
		printf "  %-34s %10d %14d\n", "saved", fb - fn, lb - ln
		printf "  %-34s %10.4f %14.4f\n", r, fn / fb, ln / lb
	}'
}

# json_importers: the packages of cmd/gogoc that import encoding/json.
json_importers() {
	local i
	i=$(GOOS=linux GOARCH=$arch go list -deps -f '{{.ImportPath}} {{join .Imports " "}}' ./cmd/gogoc | awk '/ encoding\/json( |$)/ {printf "%s ", $1}')
	echo "importers of encoding/json in cmd/gogoc: ${i:-none}"
}
