package radv

import (
	"encoding/binary"
	"errors"
	"math"
	"net"
	"net/netip"
	"time"
)

// The two messages a Server exchanges, in its own types: what it sends
// (Router Advertisements, RFC 4861 §4.2, with the options of §4.6, RFC
// 4191 §2.3 and RFC 8106 §5.1) and what it reads (Router Solicitations,
// parseRS). They replace github.com/mdlayher/ndp in the binary: importing
// ndp at all links golang.org/x/net/idna for its DNSSL option, whose
// package initialisation keeps IDNA's and Unicode bidi's tables, about
// 22 KB of a compressed mips package (scripts/size-ndp.sh). The tests hold
// them to ndp: marshalRA must give the bytes ndp.MarshalMessage gives for
// the same RA (TestMarshalRAMatchesNDP, FuzzMarshalRA), and parseRS must
// decode what ndp.ParseMessage decodes (FuzzParseRS).

// ICMPv6 types and NDP option types (RFC 4861 §4.1, §4.2, §4.6; RFC 4191
// §2.3; RFC 8106 §5.1).
const (
	icmpRouterSolicitation  = 133
	icmpRouterAdvertisement = 134

	optSourceLLA = 1
	optTargetLLA = 2
	optPrefix    = 3
	optMTU       = 5
	optRoute     = 24
	optRDNSS     = 25
)

// Wire sizes.
const (
	// rsHeaderLen is type, code, checksum and the reserved word (§4.1).
	rsHeaderLen = 8
	// raHeaderLen adds hop limit, flags, router lifetime, reachable time
	// and retransmission timer to type, code and checksum (§4.2).
	raHeaderLen = 16
	// ethAddrLen is the only link-layer address length radv encodes or
	// accepts: other links lay the option out differently (RFC 4391 puts
	// two bytes before an InfiniBand address).
	ethAddrLen = 6
	// ethLLAOptLen is the option length, in units of 8 bytes, of an
	// Ethernet link-layer address option.
	ethLLAOptLen = 1
	// maxRDNSS is the most addresses one RDNSS option holds: its length
	// byte counts 8-byte units, one for the header and two per address.
	maxRDNSS = (math.MaxUint8 - 1) / 2
)

// RA flags (§4.2; RFC 6275 §7.1 for H).
const (
	flagManaged   = 0x80
	flagOther     = 0x40
	flagHomeAgent = 0x20
	// Prefix information flags (§4.6.2).
	flagOnLink     = 0x80
	flagAutonomous = 0x40
)

// RouterAdvertisement is an RA as a Server sends it. Reachable time and
// retransmission timer are left unspecified (0), the router preference
// and route preferences medium. The options go out in the order of the
// fields.
type RouterAdvertisement struct {
	// HopLimit is the hop limit hosts should use (0: unspecified).
	HopLimit uint8
	// Managed, Other and HomeAgent are the M, O and H flags.
	Managed, Other, HomeAgent bool
	// RouterLifetime 0 says this is not a default router. Sent in whole
	// seconds, at most 65535.
	RouterLifetime time.Duration
	// Prefixes are prefix information options.
	Prefixes []PrefixInformation
	// Routes are route information options (RFC 4191).
	Routes []RouteInformation
	// DNSServers, when there are any, go in one RDNSS option with
	// DNSLifetime (at most maxRDNSS of them).
	DNSServers  []netip.Addr
	DNSLifetime time.Duration
	// MTU, when not 0, is sent as an MTU option.
	MTU uint32
	// SourceLinkAddr, when not empty, is sent as the source link-layer
	// address option; it must be an Ethernet (6-byte) address.
	SourceLinkAddr net.HardwareAddr
}

// PrefixInformation is a prefix information option (RFC 4861 §4.6.2).
// Lifetimes go out in whole seconds; 0xffffffff s (or more) is infinity.
type PrefixInformation struct {
	Prefix             netip.Prefix
	OnLink, Autonomous bool
	Valid, Preferred   time.Duration
}

// RouteInformation is a route information option (RFC 4191 §2.3) of
// medium preference.
type RouteInformation struct {
	Prefix   netip.Prefix
	Lifetime time.Duration
}

// seconds is d in whole seconds for a lifetime field that holds up to
// limit: truncated, never below 0, at most limit.
func seconds(d time.Duration, limit uint32) uint32 {
	s := d / time.Second
	switch {
	case s < 0:
		return 0
	case s > time.Duration(limit):
		return limit
	}
	return uint32(s)
}

var (
	errLinkAddr  = errors.New("source link-layer address is not an Ethernet address")
	errNotIPv6   = errors.New("a prefix or DNS server in the RA is not IPv6")
	errManyRDNSS = errors.New("more DNS servers than one RDNSS option holds")
)

// marshalRA encodes ra as an ICMPv6 message with its checksum 0 (the
// kernel computes it for a raw ICMPv6 socket).
func marshalRA(ra *RouterAdvertisement) ([]byte, error) {
	if n := len(ra.SourceLinkAddr); n != 0 && n != ethAddrLen {
		return nil, errLinkAddr
	}
	if len(ra.DNSServers) > maxRDNSS {
		return nil, errManyRDNSS
	}
	b := make([]byte, raHeaderLen, raHeaderLen+32*len(ra.Prefixes)+24*len(ra.Routes)+8+16*len(ra.DNSServers)+16)
	b[0] = icmpRouterAdvertisement
	b[4] = ra.HopLimit
	if ra.Managed {
		b[5] |= flagManaged
	}
	if ra.Other {
		b[5] |= flagOther
	}
	if ra.HomeAgent {
		b[5] |= flagHomeAgent
	}
	binary.BigEndian.PutUint16(b[6:], uint16(seconds(ra.RouterLifetime, math.MaxUint16)))
	for _, p := range ra.Prefixes {
		if !p.Prefix.IsValid() || !is6(p.Prefix.Addr()) {
			return nil, errNotIPv6
		}
		var flags byte
		if p.OnLink {
			flags |= flagOnLink
		}
		if p.Autonomous {
			flags |= flagAutonomous
		}
		b = append(b, optPrefix, 4, byte(p.Prefix.Bits()), flags)
		b = binary.BigEndian.AppendUint32(b, seconds(p.Valid, math.MaxUint32))
		b = binary.BigEndian.AppendUint32(b, seconds(p.Preferred, math.MaxUint32))
		b = append(b, 0, 0, 0, 0) // reserved
		a := p.Prefix.Masked().Addr().As16()
		b = append(b, a[:]...)
	}
	for _, r := range ra.Routes {
		if !r.Prefix.IsValid() || !is6(r.Prefix.Addr()) {
			return nil, errNotIPv6
		}
		// The prefix takes as many 8-byte units as its length needs:
		// none for ::/0, one up to /64, two beyond (RFC 4191 §2.3).
		units := 0
		switch bits := r.Prefix.Bits(); {
		case bits > 64:
			units = 2
		case bits > 0:
			units = 1
		}
		b = append(b, optRoute, byte(1+units), byte(r.Prefix.Bits()), 0) // preference medium
		b = binary.BigEndian.AppendUint32(b, seconds(r.Lifetime, math.MaxUint32))
		a := r.Prefix.Masked().Addr().As16()
		b = append(b, a[:8*units]...)
	}
	if len(ra.DNSServers) > 0 {
		b = append(b, optRDNSS, byte(1+2*len(ra.DNSServers)), 0, 0)
		b = binary.BigEndian.AppendUint32(b, seconds(ra.DNSLifetime, math.MaxUint32))
		for _, a := range ra.DNSServers {
			if !is6(a) {
				return nil, errNotIPv6
			}
			a16 := a.As16()
			b = append(b, a16[:]...)
		}
	}
	if ra.MTU != 0 {
		b = append(b, optMTU, 1, 0, 0)
		b = binary.BigEndian.AppendUint32(b, ra.MTU)
	}
	if len(ra.SourceLinkAddr) > 0 {
		b = append(b, optSourceLLA, ethLLAOptLen)
		b = append(b, ra.SourceLinkAddr...)
	}
	return b, nil
}

// is6 tells whether a is an IPv6 address that is not IPv4-mapped.
func is6(a netip.Addr) bool { return a.Is6() && !a.Is4In6() }

// RouterSolicitation is a Router Solicitation as read (RFC 4861 §4.1),
// reduced to what a router uses of it.
type RouterSolicitation struct {
	sourceLinkAddr net.HardwareAddr
}

// SourceLinkAddr returns the address in the first source link-layer
// address option, or nil when there is none.
func (rs *RouterSolicitation) SourceLinkAddr() net.HardwareAddr { return rs.sourceLinkAddr }
