package tsp

import (
	"context"
	"errors"
	"net/netip"
	"strconv"
)

// The address policy: which broker-supplied values the client lets near the
// router. Everything a broker sends that becomes a route, an interface
// address, a socket peer or a LAN host's DNS server passes through here,
// and only here, once it has parsed.
//
// The broker and everything on the path to it are untrusted. Without this
// policy an offer could delegate 2000::/3 (the router then installs an
// unreachable route for all global IPv6 and advertises it on the LAN), aim
// the tunnel at the router's own loopback services, put ::1 in the LAN's
// RDNSS, or route a link-local or multicast address into the tunnel.
//
// The rules:
//
//   - The delegated prefix is IPv6 global unicast (inside 2000::/3, RFC 4291
//     §2.4), /16 to /64 (the LAN needs a /64 for SLAAC), and not shorter
//     than the length the client asked for.
//   - No address (tunnel endpoints, the tunnel's inner addresses, the
//     keepalive address, DNS servers, redirect targets) may be unspecified,
//     loopback, link-local, multicast, IPv4 "this network" (0.0.0.0/8) or
//     IPv4 reserved (240.0.0.0/4, which holds the limited broadcast
//     255.255.255.255); nor, for IPv6, IPv4-mapped (::ffff:0:0/96, an IPv4
//     address in IPv6 clothes, whose family the kernel would guess),
//     IPv4-compatible (::/96, deprecated; a sit device tunnels to the
//     embedded IPv4 address) or site-local (fec0::/10, deprecated).
//   - One exception: a broker reached at a loopback address runs on this
//     host, and may name loopback addresses as its tunnel endpoints and as
//     redirect targets. Nothing from off the host can arrive from a loopback
//     address (the kernel drops such packets as martians).
//   - A redirect target stays one wherever it is used (Origin): when a
//     supervisor remembers it (a broker list, the last server) and dials it
//     later, the address its name leads to then passes the policy before a
//     socket connects (NetDialer, WithOrigin), the distance probe included,
//     and it never gets a PLAIN password.
//
// Private and documentation ranges (10/8, 192.168/16, fc00::/7 addresses,
// 2001:db8::/32, …) stay allowed as addresses: brokers behind carrier-grade
// NAT or in labs use them, and they reach nothing the router itself owns.

// ErrUnsafeOffer: a broker value parsed but the address policy refuses it.
// Errors that match it also match ErrMalformed: the offer is broken.
var ErrUnsafeOffer = errors.New("broker value refused by the address policy")

// Fields a PolicyError names, as in the offer's XML.
const (
	FieldServerV4  = "server ipv4"
	FieldServerV6  = "server ipv6"
	FieldClientV4  = "client ipv4"
	FieldClientV6  = "client ipv6"
	FieldKeepalive = "keepalive address"
	FieldDNSServer = "dns_server"
	FieldPrefix    = "delegated prefix"
	FieldRedirect  = "redirect broker"
)

// PolicyError is a broker value the address policy refuses.
type PolicyError struct {
	Phase  string // "offer", or the phase a redirect came in
	Field  string // one of the Field constants
	Value  string
	Reason string
}

func (e *PolicyError) Error() string {
	return "tsp " + e.Phase + ": " + e.Field + " " + e.Value + " refused: " + e.Reason
}

// Unwrap makes errors.Is match both ErrUnsafeOffer and ErrMalformed.
func (e *PolicyError) Unwrap() []error { return []error{ErrUnsafeOffer, ErrMalformed} }

// Delegated prefix bounds.
var globalUnicast = netip.MustParsePrefix("2000::/3")

const (
	minDelegatedBits = 16
	maxDelegatedBits = 64
)

// unusable says why a cannot be a peer, a routed address or a DNS server;
// "" when it can. Loopback is judged by the caller (see loopbackOK).
func unusable(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "missing"
	case a.Is4In6():
		return "IPv4-mapped (::ffff:0:0/96)"
	case a.IsUnspecified():
		return "unspecified"
	case a.IsLoopback():
		return "loopback"
	case a.IsMulticast():
		return "multicast"
	case a.IsLinkLocalUnicast():
		return "link-local"
	}
	if a.Is4() {
		switch b := a.As4(); {
		case b[0] == 0:
			return "in 0.0.0.0/8 (this network)"
		case b[0] >= 240:
			return "reserved (240.0.0.0/4, with the limited broadcast 255.255.255.255)"
		}
		return ""
	}
	b := a.As16()
	switch {
	case [12]byte(b[:12]) == [12]byte{}:
		return "IPv4-compatible (::/96, deprecated)"
	case b[0] == 0xfe && b[1]&0xc0 == 0xc0:
		return "site-local (fec0::/10, deprecated)"
	}
	return ""
}

// checkAddr applies the rule to one field; loopbackOK for the tunnel
// endpoints and redirect targets of a broker on this host.
func checkAddr(phase, field string, a netip.Addr, loopbackOK bool) error {
	why := unusable(a)
	if why == "" || loopbackOK && a.IsLoopback() && !a.Is4In6() {
		return nil
	}
	return &PolicyError{Phase: phase, Field: field, Value: a.String(), Reason: why}
}

// checkPrefix applies the delegation rule; requested is the length asked
// for (0 when no prefix was asked for).
func checkPrefix(phase string, p netip.Prefix, requested int) error {
	bad := func(why string) error {
		return &PolicyError{Phase: phase, Field: FieldPrefix, Value: p.String(), Reason: why}
	}
	switch {
	case !p.Addr().Is6() || !globalUnicast.Contains(p.Addr()):
		return bad("outside global unicast " + globalUnicast.String())
	case p.Bits() < minDelegatedBits || p.Bits() > maxDelegatedBits:
		return bad("length /" + strconv.Itoa(p.Bits()) + " outside /" + strconv.Itoa(minDelegatedBits) + "../" + strconv.Itoa(maxDelegatedBits))
	case p.Bits() < requested:
		return bad("shorter than the /" + strconv.Itoa(requested) + " requested")
	}
	return nil
}

// checkOffer applies the policy to a parsed offer. sameHost: the broker was
// reached at a loopback address.
func checkOffer(o *Offer, req Request, sameHost bool) error {
	const phase = "offer"
	// Outer endpoints are IPv4 for the v6-in-v4 types, IPv6 for v4v6; the
	// other pair lives inside the tunnel.
	outer4 := o.Type != V4V6
	for _, f := range [...]struct {
		name  string
		a     netip.Addr
		outer bool
	}{
		{FieldServerV4, o.ServerV4, outer4}, {FieldClientV4, o.ClientV4, outer4},
		{FieldServerV6, o.ServerV6, !outer4}, {FieldClientV6, o.ClientV6, !outer4},
	} {
		if err := checkAddr(phase, f.name, f.a, f.outer && sameHost); err != nil {
			return err
		}
	}
	if o.KeepaliveAddr.IsValid() {
		if err := checkAddr(phase, FieldKeepalive, o.KeepaliveAddr, false); err != nil {
			return err
		}
	}
	for _, a := range o.DNSServers {
		if err := checkAddr(phase, FieldDNSServer, a, false); err != nil {
			return err
		}
	}
	if o.Prefix.IsValid() {
		requested := 0
		if req.Router {
			requested = req.PrefixLen
		}
		return checkPrefix(phase, o.Prefix, requested)
	}
	return nil
}

// Origin says who named a server: the operator (the zero value) or a
// broker's redirect. A supervisor keeps it with every server it remembers.
type Origin struct {
	// Redirect: a broker's redirect named the server.
	Redirect bool
	// SameHost: that broker was reached at a loopback address, so it runs
	// on this host and loopback targets are its own.
	SameHost bool
}

// Check applies the address policy to a, an address server leads to; a
// configured server passes whatever its address.
func (o Origin) Check(server string, a netip.Addr) error {
	if !o.Redirect {
		return nil
	}
	a = a.Unmap() // a dual-stack socket's view of an IPv4 peer
	err := checkAddr("dial", FieldRedirect, a, o.SameHost)
	if pe, ok := err.(*PolicyError); ok && server != a.String() {
		pe.Value = server + " (" + pe.Value + ")"
	}
	return err
}

type originKey struct{}

// WithOrigin returns a context that tells a dialer who named the server
// it is asked for. NetDialer checks each address the name leads to with
// Origin.Check before it connects; the Negotiator sets it for the targets
// of a redirect.
func WithOrigin(ctx context.Context, o Origin) context.Context {
	return context.WithValue(ctx, originKey{}, o)
}

// OriginOf returns the Origin ctx carries: a configured server's (the zero
// value) when none.
func OriginOf(ctx context.Context) Origin {
	o, _ := ctx.Value(originKey{}).(Origin)
	return o
}

// checkRedirect applies the policy to a redirect's address entries. Names
// are checked once resolved, when dialled (see Negotiator).
func checkRedirect(rd *RedirectError, sameHost bool) error {
	for _, b := range rd.Brokers {
		if b.Kind != "ipv4" && b.Kind != "ipv6" {
			continue
		}
		a, err := netip.ParseAddr(b.Address)
		if err != nil { // parseRedirect let it through as an address
			return malformed(rd.Phase, "broker %s is not an IP address", quoteSnippet([]byte(b.Address)))
		}
		if err := checkAddr(rd.Phase, FieldRedirect, a, sameHost); err != nil {
			return err
		}
	}
	return nil
}
