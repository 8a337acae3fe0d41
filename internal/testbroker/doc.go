// Package testbroker is a real TSP (RFC 5572) tunnel-broker server for tests,
// benchmarks and the demo. It speaks the wire protocol described in the
// project's TSP-CLIENT-SPEC.md (§13 describes the open tsps server, whose
// behaviour it follows) over RUDP and TCP, and is written from the spec alone:
// it must not share code with the client in package tsp, so that a client bug
// shows up as a failure instead of being mirrored.
//
// Differences from tsps, all on purpose:
//
//   - Retransmissions are recognised: each UDP session keeps its last reply,
//     and a datagram repeating the last sequence word gets that reply again
//     (with the retransmission's own header) instead of moving the state
//     machine on.
//   - Every client datagram is answered (except stale duplicates and the
//     Faults that say otherwise): a session that has failed answers further
//     messages with 500, and a new VERSION= from the same address and port
//     (a retry whose socket got the same port, or a NAT keeping its
//     mapping) replaces the old session.
//   - TCP is served as well as UDP, with a record reader that copes with the
//     client's back-to-back writes (AUTHENTICATE PLAIN plus credentials).
//   - The control/data test uses the top nibble of the first header byte in
//     network order. Config.StrictRUDP restores tsps's little-endian view, so
//     a client that numbers its datagrams differently from gogoc, or that
//     overruns 16 exchanges, fails here as it would against tsps.
//   - DIGEST-MD5 values may hold any character and are parsed as RFC 2831
//     quoted strings.
//   - Tunnel types v6v4, v6udpv4 and v4v6, prefix delegation, redirects and
//     ECHO REQUEST are supported; errors during tunnel creation are framed
//     with Content-length, as gogoc expects.
//   - Addresses in offers are written in the fully expanded 4-hex-digit form
//     of the gogo6 brokers.
//
// A Server is configured once with New; Faults can be swapped at run time
// with SetFaults to script misbehaviour (lost datagrams, delays, error
// statuses, malformed replies, silence). A DataPlane, when given, is told
// about established sessions and receives the IPv6 packets a v6udpv4 client
// sends on its TSP socket.
package testbroker
