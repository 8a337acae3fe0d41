package tunnel

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

const (
	icmpv4EchoReply   = 0
	icmpv4EchoRequest = 8
)

// icmp4 is ICMPv4 echo for the v4v6 keepalive (spec §6: ICMPv4 echo from
// the client tunnel IPv4 to the keepalive address). Unlike ICMPv6, the
// kernel leaves the checksum of a raw socket to us and delivers the IPv4
// header with the message.
type icmp4 struct{}

func (icmp4) socket() pingSocket {
	return pingSocket{
		domain: unix.AF_INET, proto: unix.IPPROTO_ICMP, name: "icmpv4",
		// ICMP_FILTER: a set bit drops that type; keep only echo replies,
		// so the reader is not woken by every ICMP message on the device.
		filter: func(fd int) error {
			if err := unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(^int32(1<<icmpv4EchoReply))); err != nil {
				return fmt.Errorf("ICMP filter: %w", err)
			}
			return nil
		},
		sockaddr: func(a netip.Addr) unix.Sockaddr { return &unix.SockaddrInet4{Addr: a.As4()} },
	}
}

func (icmp4) request(b []byte, id, seq uint16, payload []byte) []byte {
	return marshalEcho4(b, id, seq, payload)
}

func (icmp4) reply(pkt []byte) ([]byte, bool) {
	b := stripIPv4(pkt)
	return b, fold(sum(b, 0)) == 0xffff
}

func (icmp4) replyType() byte { return icmpv4EchoReply }

// pingConn4 is the ICMPv4 keepalive socket of v4v6.
type pingConn4 = echoConn[icmp4]

// NewPingConn4 opens the ICMPv4 keepalive socket in ns (<= 0: the current
// one): echo from src, through device ifName, to dst.
func NewPingConn4(ns netns.NsHandle, ifName string, src, dst netip.Addr) (PingConn, error) {
	if !dst.Is4() || src.IsValid() && !src.Is4() {
		return nil, fmt.Errorf("keepalive socket: %v → %v is not IPv4", src, dst)
	}
	p, err := newEchoConn[icmp4](ns, ifName, src, dst)
	if err != nil {
		return nil, err // not a typed nil in the interface
	}
	return p, nil
}

// marshalEcho4 writes an ICMPv4 echo request with payload into b.
func marshalEcho4(b []byte, id, seq uint16, payload []byte) []byte {
	b = marshalEcho(b, icmpv4EchoRequest, id, seq, payload)
	binary.BigEndian.PutUint16(b[2:4], ^fold(sum(b, 0)))
	return b
}
