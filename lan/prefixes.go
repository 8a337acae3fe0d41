package lan

import (
	"net/netip"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/radv"
)

// maxLinkPrefixes bounds the device's prefixes in one RA: 8 PIOs are 256
// bytes, and the RA must stay well inside the 1280-byte minimum MTU with
// the delegated prefix, routes, DNS and the deprecated prefixes (hosts
// drop fragmented neighbour discovery, RFC 6980).
const maxLinkPrefixes = 8

// longAgo is the preferred deadline of a deprecated address's prefix.
var longAgo = time.Unix(1, 0)

var (
	global = netip.MustParsePrefix("2000::/3")
	ula    = netip.MustParsePrefix("fc00::/7")
)

// linkPrefixes turns the LAN device's IPv6 addresses into the PIOs that
// the RAs carry besides the delegated prefix, the way odhcpd builds its
// RAs from the same addresses, so that taking the RAs over from odhcpd
// changes nothing for the LAN's hosts:
//
//   - Only global (2000::/3) and unique local (fc00::/7) addresses of
//     universe scope count; link-local, site-local and others do not.
//   - An address inside the delegated prefix is gogoc's own (the LAN /64
//     comes from there) and is left out.
//   - So are addresses the kernel formed from someone else's RA (a LAN
//     host could otherwise have its prefix relayed to every host),
//     temporary (privacy) addresses, and ones whose duplicate address
//     detection failed.
//   - Prefix lengths as odhcpd reads them: up to /64 the PIO is the /64
//     that holds the address, autonomous (a ULA /60 on br-lan advertises
//     its /64); /65 to /96 an on-link-only PIO of that length (hosts
//     cannot form addresses in it, but reach it directly); longer ones,
//     /128 included, name no on-link prefix and are left out.
//   - Lifetimes are the address's, counting down, bounded like the
//     delegated prefix's (1 d valid, 4 h preferred); a deprecated
//     address's prefix is advertised with preferred lifetime 0.
//   - Each PIO is kept on stop: the ULA is netifd's, odhcpd advertises it
//     again after gogoc, and hosts should keep their addresses meanwhile.
//
// Several addresses in one prefix make one PIO with the longest
// lifetimes. At most maxLinkPrefixes are returned, in address order;
// dropped says how many were left out for that.
func linkPrefixes(addrs []rtlink.Addr, delegated netip.Prefix, now time.Time) (out []radv.Prefix, dropped int) {
	for _, a := range addrs {
		ip := a.Prefix.Addr()
		if !ip.Is6() || ip.Is4In6() || a.Scope != unix.RT_SCOPE_UNIVERSE || !(global.Contains(ip) || ula.Contains(ip)) {
			continue
		}
		if delegated.IsValid() && delegated.Contains(ip) {
			continue
		}
		if a.Proto == rtlink.ProtoKernelRA || a.Flags&(unix.IFA_F_TEMPORARY|unix.IFA_F_DADFAILED) != 0 {
			continue
		}
		bits := a.Prefix.Bits()
		if bits > 96 {
			continue
		}
		x := radv.Prefix{Valid: radv.DefaultValidLifetime, Preferred: radv.DefaultPreferredLifetime, KeepOnStop: true}
		if bits <= 64 {
			x.Prefix = netip.PrefixFrom(ip, 64).Masked()
		} else {
			x.Prefix, x.OnLinkOnly = a.Prefix.Masked(), true
		}
		if a.Valid != rtlink.Forever {
			x.ValidUntil = now.Add(a.Valid)
		}
		switch {
		case a.Flags&unix.IFA_F_DEPRECATED != 0:
			x.PreferredUntil = longAgo // fixed: readings compare equal
		case a.Preferred != rtlink.Forever:
			x.PreferredUntil = now.Add(a.Preferred)
		}
		i := 0
		for i < len(out) && out[i].Prefix != x.Prefix {
			i++
		}
		if i == len(out) {
			out = append(out, x)
			continue
		}
		out[i].ValidUntil = later(out[i].ValidUntil, x.ValidUntil)
		out[i].PreferredUntil = later(out[i].PreferredUntil, x.PreferredUntil)
	}
	// Sorted through an index, as radv does: []int's sort is linked
	// anyway, one of []radv.Prefix would add its own code to the binary.
	order := make([]int, len(out))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return out[i].Prefix.Addr().Compare(out[j].Prefix.Addr()) })
	sorted := make([]radv.Prefix, len(out))
	for i, j := range order {
		sorted[i] = out[j]
	}
	out = sorted
	if len(out) > maxLinkPrefixes {
		dropped = len(out) - maxLinkPrefixes
		out = out[:maxLinkPrefixes]
	}
	return out, dropped
}

// later is the later deadline, the zero time standing for none (forever).
func later(a, b time.Time) time.Time {
	if a.IsZero() || b.IsZero() {
		return time.Time{}
	}
	if b.After(a) {
		return b
	}
	return a
}

// sameLink tells whether two readings of the device's prefixes say the
// same. Deadlines come from lifetimes in whole seconds read at different
// moments, so they match within a couple of seconds; a real change (a
// renewed lease) moves them further.
func sameLink(a, b []radv.Prefix) bool {
	if len(a) != len(b) {
		return false
	}
	for i, x := range a {
		y := b[i]
		if x.Prefix != y.Prefix || x.OnLinkOnly != y.OnLinkOnly || !near(x.ValidUntil, y.ValidUntil) || !near(x.PreferredUntil, y.PreferredUntil) {
			return false
		}
	}
	return true
}

func near(a, b time.Time) bool {
	if a.IsZero() || b.IsZero() {
		return a.IsZero() == b.IsZero()
	}
	d := a.Sub(b)
	return d < 2*time.Second && d > -2*time.Second
}

// prefixList is the prefixes for a log line.
func prefixList(ps []radv.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.Prefix.String()
	}
	return strings.Join(s, " ")
}
