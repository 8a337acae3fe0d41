#!/usr/bin/env bash
# What internal/rtlink saves in the mips binary, measured two ways in one
# run (GOARCH=mips GOMIPS=softfloat, stripped as shipped):
#
#  1. gogoc itself: fails if the library's link-type machinery is linked
#     again (linkModify, LinkDeserialize, ensureIndex, addBondAttrs, or
#     the route writer prepareRouteReq), or the library beyond its nl
#     layer at all, and prints the symbol sizes of
#     vishvananda/netlink and of internal/rtlink (go tool nm).
#  2. two probe programs doing the same netlink work gogoc does (sit and
#     ip6tnl create, lookups, up, MTU, delete, addresses, routes, route
#     lookup, address/route watch, fou ports over generic netlink): one
#     through the library's calls (the baseline), one through rtlink.
#     Prints both sizes, the saving and the ratio.
#
# Usage: scripts/size-rtlink.sh        Exit 1 if a forbidden symbol is linked.
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
export CGO_ENABLED=0 GOOS=linux GOARCH=mips GOMIPS=softfloat
tmp=$(mktemp -d)
# The probes import an internal package, so they must sit inside the
# module; a directory starting with "." is invisible to ./... patterns.
probes=$(mktemp -d "$ROOT/internal/rtlink/.dn-size.XXXXXX")
trap 'rm -rf "$tmp" "$probes"' EXIT

kib() { awk -v b="$1" 'BEGIN { printf "%.1f KiB", b / 1024 }'; }

# 1. gogoc
go build -trimpath -o "$tmp/g" ./cmd/gogoc
go build -trimpath -ldflags='-s -w' -o "$tmp/gs" ./cmd/gogoc
go tool nm -size "$tmp/g" >"$tmp/nm"
sum() { awk -v re="$1" '$0 ~ re { s += $2 } END { print s + 0 }' "$tmp/nm"; }
printf 'gogoc mips stripped: %d bytes\n' "$(stat -c %s "$tmp/gs")"
printf 'symbols vishvananda/netlink (+nl): %s   internal/rtlink: %s\n' \
	"$(kib "$(sum ' github.com/vishvananda/netlink')")" "$(kib "$(sum ' github.com/jsklein/gogoc/internal/rtlink')")"
fail=0
for s in '(*Handle).linkModify' 'netlink.LinkDeserialize' '(*Handle).ensureIndex' 'netlink.addBondAttrs' '(*Handle).prepareRouteReq'; do
	if grep -qF "$s" "$tmp/nm"; then
		echo "FAIL: gogoc links $s again" >&2
		fail=1
	fi
done
[ $fail = 1 ] || echo "ok: no linkModify, LinkDeserialize, ensureIndex, addBondAttrs, prepareRouteReq in gogoc"
# The library itself, not only its nl layer: its package initialisation
# costs bytes of its own (fou goes through rtlink).
if go list -deps ./cmd/gogoc | grep -qx github.com/vishvananda/netlink; then
	echo "FAIL: gogoc depends on github.com/vishvananda/netlink again (only its nl layer belongs in)" >&2
	fail=1
else
	echo "ok: of vishvananda/netlink, gogoc links only the nl layer"
fi

# 2. probes
mkdir -p "$probes/lib" "$probes/own"
cat >"$probes/lib/main.go" <<'EOF'
package main

import (
	"net"
	"os"

	"github.com/vishvananda/netlink"
)

func main() {
	if len(os.Args) < 9 { // never true when measured: only linking counts
		return
	}
	h, _ := netlink.NewHandle()
	ip := net.ParseIP(os.Args[1])
	dst := &net.IPNet{IP: ip, Mask: net.CIDRMask(64, 128)}
	_ = h.LinkAdd(&netlink.Sittun{LinkAttrs: netlink.LinkAttrs{Name: os.Args[2], MTU: 1280}, Remote: ip, Ttl: 64, PMtuDisc: 1, EncapType: 1})
	_ = h.LinkAdd(&netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: os.Args[3], MTU: 1280}, Remote: ip, Ttl: 64, Proto: 4, Flags: 1})
	l, _ := h.LinkByName(os.Args[2])
	_, _ = h.LinkByIndex(l.Attrs().Index)
	_ = h.LinkSetMTU(l, 1280)
	_ = h.LinkSetUp(l)
	a := &netlink.Addr{IPNet: dst, Flags: 2}
	_ = h.AddrAdd(l, a)
	_ = h.AddrReplace(l, a)
	_ = h.AddrDel(l, a)
	as, _ := h.AddrList(nil, netlink.FAMILY_V6)
	r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: dst, Priority: 5, Protocol: 4}
	_ = h.RouteAdd(r)
	_ = h.RouteReplace(r)
	_ = h.RouteDel(r)
	rs, _ := h.RouteGet(ip)
	_ = h.LinkDel(l)
	done := make(chan struct{})
	_ = netlink.AddrSubscribeWithOptions(make(chan netlink.AddrUpdate), done, netlink.AddrSubscribeOptions{})
	_ = netlink.RouteSubscribeWithOptions(make(chan netlink.RouteUpdate), done, netlink.RouteSubscribeOptions{})
	f := netlink.Fou{Family: netlink.FAMILY_V4, Port: 3653, Protocol: 41, EncapType: netlink.FOU_ENCAP_DIRECT}
	_, _ = h.GenlFamilyGet("fou")
	_ = h.FouAdd(f)
	_ = h.FouDel(f)
	println(len(as), len(rs))
}
EOF
cat >"$probes/own/main.go" <<'EOF'
package main

import (
	"net/netip"
	"os"

	"github.com/jsklein/gogoc/internal/rtlink"
)

func main() {
	if len(os.Args) < 9 { // never true when measured: only linking counts
		return
	}
	h, _ := rtlink.NewHandle()
	ip, _ := netip.ParseAddr(os.Args[1])
	dst := netip.PrefixFrom(ip, 64)
	_, _ = h.LinkAdd(rtlink.Sit{Name: os.Args[2], MTU: 1280, Remote: ip, TTL: 64, PMTUDisc: true, EncapType: 1})
	_, _ = h.LinkAdd(rtlink.Ip6tnl{Name: os.Args[3], MTU: 1280, Remote: ip, TTL: 64, Proto: 4, Flags: 1})
	l, _ := h.LinkByName(os.Args[2])
	_, _ = h.LinkByIndex(l.Index)
	_ = h.LinkSetMTU(l.Index, 1280)
	_ = h.LinkSetUp(l.Index)
	a := rtlink.Addr{Prefix: dst, Flags: 2}
	_ = h.AddrAdd(l.Index, a)
	_ = h.AddrReplace(l.Index, a)
	_ = h.AddrDel(l.Index, a)
	as, _ := h.AddrList(0, 10)
	r := rtlink.Route{Index: l.Index, Dst: dst, Metric: 5, Protocol: 4}
	_ = h.RouteAdd(r)
	_ = h.RouteReplace(r)
	_ = h.RouteDel(r)
	p, _ := h.RouteGet(ip)
	_ = h.LinkDel(l.Index)
	_, _ = rtlink.WatchChanges(make(chan struct{}), 0, nil)
	g, _ := rtlink.NewGenlAt(0)
	f := rtlink.FouPort{Family: 2, Port: 3653, Protocol: 41}
	_, _ = g.FamilyID("fou")
	_ = g.FouAdd(f)
	_ = g.FouDel(f)
	println(len(as), p.Index)
}
EOF
for v in lib own; do
	go build -trimpath -ldflags='-s -w' -o "$tmp/$v" "./internal/rtlink/$(basename "$probes")/$v"
done
lib=$(stat -c %s "$tmp/lib") own=$(stat -c %s "$tmp/own")
printf 'probe via the library (baseline): %d bytes\n' "$lib"
printf 'probe via rtlink:                 %d bytes\n' "$own"
printf 'saving: %d bytes (%s), ratio rtlink/library %s\n' "$((lib - own))" "$(kib $((lib - own)))" \
	"$(awk -v a="$own" -v b="$lib" 'BEGIN { printf "%.3f", a / b }')"
exit $fail
