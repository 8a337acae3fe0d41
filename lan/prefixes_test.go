package lan

import (
	"net/netip"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/radv"
)

func TestLinkPrefixes(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	deleg := netip.MustParsePrefix("2001:db8:8000::/56")
	a := func(p string, mod ...func(*rtlink.Addr)) rtlink.Addr {
		x := rtlink.Addr{Prefix: netip.MustParsePrefix(p), Valid: rtlink.Forever, Preferred: rtlink.Forever}
		for _, m := range mod {
			m(&x)
		}
		return x
	}
	lifetimes := func(v, p time.Duration) func(*rtlink.Addr) {
		return func(x *rtlink.Addr) { x.Valid, x.Preferred = v, p }
	}
	flags := func(f uint32) func(*rtlink.Addr) { return func(x *rtlink.Addr) { x.Flags |= f } }
	addrs := []rtlink.Addr{
		a("fd12:3456:789a:10::1/60"), // netifd's ULA on br-lan: its /64
		a("2001:db8:8000::1/64"),     // gogoc's own LAN address
		a("2001:db8:8000:ff::5/64"),  // anything in the delegated prefix
		a("fe80::1/64", func(x *rtlink.Addr) { x.Scope = unix.RT_SCOPE_LINK }),
		a("2001:db8:77::1/64", lifetimes(time.Hour, 10*time.Minute)),  // another uplink's prefix
		a("2001:db8:77::2/64", lifetimes(2*time.Hour, 5*time.Minute)), // the same /64: longest lifetimes
		a("2001:db8:78::1/80"),  // on-link only
		a("2001:db8:79::1/128"), // no on-link prefix
		a("2001:db8:7a::1/100"), // too long, as odhcpd
		a("2001:db8:7b::1/64", func(x *rtlink.Addr) { x.Proto = rtlink.ProtoKernelRA }), // from a LAN host's RA
		a("2001:db8:7c::1/64", flags(unix.IFA_F_TEMPORARY)),
		a("2001:db8:7d::1/64", flags(unix.IFA_F_DADFAILED)),
		a("2001:db8:7e::1/64", flags(unix.IFA_F_DEPRECATED), lifetimes(time.Hour, 0)),
		a("fec0::1/64"), // site-local: neither global nor ULA
		a("3fff::1/64"),
	}
	got, dropped := linkPrefixes(addrs, deleg, now)
	want := []radv.Prefix{
		{Prefix: netip.MustParsePrefix("2001:db8:77::/64"), ValidUntil: now.Add(2 * time.Hour), PreferredUntil: now.Add(10 * time.Minute)},
		{Prefix: netip.MustParsePrefix("2001:db8:78::/80"), OnLinkOnly: true},
		{Prefix: netip.MustParsePrefix("2001:db8:7e::/64"), ValidUntil: now.Add(time.Hour), PreferredUntil: longAgo},
		{Prefix: netip.MustParsePrefix("3fff::/64")},
		{Prefix: netip.MustParsePrefix("fd12:3456:789a:10::/64")},
	}
	for i := range want {
		want[i].Valid, want[i].Preferred, want[i].KeepOnStop = radv.DefaultValidLifetime, radv.DefaultPreferredLifetime, true
	}
	if dropped != 0 || len(got) != len(want) {
		t.Fatalf("got %d prefixes (%d dropped): %s; want %s", len(got), dropped, prefixList(got), prefixList(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("prefix %d: %+v\nwant %+v", i, got[i], want[i])
		}
	}

	// Without a delegation (before the first tunnel) the LAN address of a
	// previous run would count; there is none then, as Close removed it.
	if got, _ := linkPrefixes(addrs[:1], netip.Prefix{}, now); len(got) != 1 {
		t.Fatalf("no delegation: %s", prefixList(got))
	}

	// A bound on the count, in address order.
	var many []rtlink.Addr
	for i := range 12 {
		many = append(many, a(netip.PrefixFrom(netip.AddrFrom16([16]byte{0xfd, 0, byte(11 - i), 15: 1}), 64).String()))
	}
	got, dropped = linkPrefixes(many, deleg, now)
	if len(got) != maxLinkPrefixes || dropped != 12-maxLinkPrefixes || got[0].Prefix.String() != "fd00::/64" {
		t.Fatalf("12 prefixes: %s, %d dropped", prefixList(got), dropped)
	}
}

func TestSameLink(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	p := radv.Prefix{Prefix: netip.MustParsePrefix("fd00::/64"), ValidUntil: now.Add(time.Hour), PreferredUntil: now.Add(time.Minute)}
	q := p
	q.ValidUntil = q.ValidUntil.Add(time.Second) // the same lifetime read a moment later
	if !sameLink([]radv.Prefix{p}, []radv.Prefix{q}) {
		t.Error("a second's difference counts as a change")
	}
	q.ValidUntil = q.ValidUntil.Add(time.Hour) // a renewed lease
	if sameLink([]radv.Prefix{p}, []radv.Prefix{q}) {
		t.Error("a renewed lifetime is not a change")
	}
	q = p
	q.ValidUntil = time.Time{}
	if sameLink([]radv.Prefix{p}, []radv.Prefix{q}) || sameLink(nil, []radv.Prefix{p}) {
		t.Error("forever or a new prefix is not a change")
	}
}
