package testbroker

import (
	"bytes"
	"encoding/binary"
	"net/netip"
)

// DataPlane carries tunnel traffic for established sessions. The broker
// only negotiates; for v6v4 and v4v6 the data plane moves the packets
// itself (it learns the endpoints from Session.Info), for v6udpv4 it gets
// them from FromClient and sends with Session.WriteData.
//
// Calls come from the server's goroutines, concurrently for different
// sessions; none may block for long. Established is called after the
// session's last negotiation reply has been sent; Closed once when it ends
// (replaced by a newer session of the same user, expired, refused data, or
// the server closed).
type DataPlane interface {
	Established(s *Session)
	// FromClient gets each datagram of an established v6udpv4 UDP session
	// whose first nibble is not 0xF, normally one IPv6 packet. pkt is only
	// valid during the call.
	FromClient(s *Session, pkt []byte)
	Closed(s *Session)
}

const (
	ipv6HeaderLen    = 40
	protoICMPv6      = 58
	icmpEchoRequest  = 128
	icmpEchoReply    = 129
	replyHopLimit    = 64
	icmpHeaderLength = 8
)

// echoReply answers an ICMPv6 echo request addressed to server, the way
// tsps does for gogoc's keepalive (spec §13.3): addresses swapped, type 129,
// checksum recomputed. It returns nil for any other packet.
func echoReply(pkt []byte, server netip.Addr) []byte {
	if len(pkt) < ipv6HeaderLen+icmpHeaderLength || pkt[0]>>4 != 6 || pkt[6] != protoICMPv6 {
		return nil
	}
	plen := int(binary.BigEndian.Uint16(pkt[4:6]))
	if plen < icmpHeaderLength || ipv6HeaderLen+plen > len(pkt) {
		return nil
	}
	if netip.AddrFrom16([16]byte(pkt[24:40])) != server {
		return nil
	}
	if pkt[40] != icmpEchoRequest || pkt[41] != 0 {
		return nil
	}
	out := bytes.Clone(pkt[:ipv6HeaderLen+plen])
	copy(out[8:24], pkt[24:40])
	copy(out[24:40], pkt[8:24])
	out[7] = replyHopLimit
	out[40] = icmpEchoReply
	out[42], out[43] = 0, 0
	binary.BigEndian.PutUint16(out[42:44], icmpv6Checksum(out[8:24], out[24:40], out[40:]))
	return out
}

// icmpv6Checksum is the RFC 8200 §8.1 checksum over the pseudo-header and
// the ICMPv6 message (whose checksum field must be zero).
func icmpv6Checksum(src, dst, msg []byte) uint16 {
	var sum uint32
	add := func(b []byte) {
		for len(b) >= 2 {
			sum += uint32(binary.BigEndian.Uint16(b))
			b = b[2:]
		}
		if len(b) == 1 {
			sum += uint32(b[0]) << 8
		}
	}
	add(src)
	add(dst)
	var pseudo [8]byte
	binary.BigEndian.PutUint32(pseudo[0:4], uint32(len(msg)))
	pseudo[7] = protoICMPv6
	add(pseudo[:])
	add(msg)
	for sum>>16 != 0 {
		sum = sum&0xFFFF + sum>>16
	}
	return ^uint16(sum)
}
