// Package radv sends IPv6 Router Advertisements (RFC 4861) for the prefix a
// tunnel broker delegated, on the router's LAN interface.
//
// A Server holds what to advertise (Params) and a Serve loop that sends
// unsolicited RAs at random intervals and answers Router Solicitations. The
// ICMPv6 socket is injected as a Conn, so the loop runs against an
// in-memory fake in tests and against a raw ICMPv6 socket (Listen) on a
// real link.
//
// Beyond what a bare sender does, it keeps hosts out of trouble when the
// uplink changes: router lifetime 0 while the tunnel is down, a prefix that
// was replaced is still advertised as deprecated until its valid lifetime
// (at most 2 h) runs out, and stopping sends a final RA with router
// lifetime 0 and every prefix deprecated.
//
// LAN hosts are not trusted. A solicitation is answered directly only
// while a token bucket allows (10 in a row, then 10 a second): each
// direct reply may cost the router a neighbour resolution, and a flood of
// spoofed solicitations must cost neither CPU nor neighbour entries. The
// rest share one multicast RA, after a random delay of up to 0.5 s and
// never within 3 s of the previous one (RFC 4861 §6.2.6). The kernel still
// reads every solicitation (and, with forwarding on, notes a neighbour
// entry for each source link-layer address, within its own table limits).
package radv
