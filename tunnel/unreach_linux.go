package tunnel

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"os"
	"syscall"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// The kernel planes have no socket of their own that could report an ICMP
// error about the tunnel's packets. What the kernel does with one (Debian's
// 6.1, the VM lane):
//
//   - sit and sit+fou: the broker's host answers "port unreachable" (no
//     handler for protocol 41, or no socket on the fou port). The kernel
//     only notes it in the sit device; nothing reaches the echo socket,
//     even with IPV6_RECVERR. Only a raw ICMPv4 socket sees it.
//   - ip6tnl (v4v6): the broker answers ICMPv6 "port unreachable"; ip6_tunnel
//     turns it into an ICMPv4 "host unreachable" to the inner source, which
//     the echo socket sees with IP_RECVERR, but only for our probes. A raw
//     ICMPv6 socket sees it for every packet.
//
// So the kernel planes watch the ICMP errors arriving at this host on a raw
// socket of the outer family and pick those about their own outer packets.

// Message types of ICMP errors that say the peer cannot be reached.
const (
	icmpv4DestUnreach = 3
	icmpv4FragNeeded  = 4 // a code of icmpv4DestUnreach: path MTU, not a dead peer
	icmpv6DestUnreach = 1
	icmpv6ParamProb   = 4
	icmpv6UnknownNext = 1 // a code of icmpv6ParamProb: unrecognized next header
	ipv6HdrLen        = 40
)

// outerFlow describes the tunnel's encapsulated packets as an ICMP error
// quotes them: protocol, endpoints and, for fou, UDP ports.
type outerFlow struct {
	v6            bool  // outer IPv6 (ip6tnl), else IPv4 (sit, fou)
	proto         uint8 // 41 (sit), 17 (fou), 4 (ip6tnl)
	local, remote netip.Addr
	sport, dport  uint16 // fou only
}

// UnreachableError is an ICMP error about a packet the tunnel sent to the
// broker. It unwraps to the errno a connected socket would have reported
// for it, so errors.Is(err, unix.ECONNREFUSED) holds for a port
// unreachable on every plane.
type UnreachableError struct {
	From       netip.Addr // who sent the ICMP error
	V6         bool
	Type, Code uint8
	Errno      syscall.Errno
}

func (e *UnreachableError) Error() string {
	v := "ICMP"
	if e.V6 {
		v = "ICMPv6"
	}
	return fmt.Sprintf("%s type %d code %d from %v: %v", v, e.Type, e.Code, e.From, e.Errno)
}

func (e *UnreachableError) Unwrap() error { return e.Errno }

// errno4 is what Linux reports on a connected socket for an ICMPv4
// destination unreachable of code c (net/ipv4/icmp.c, icmp_err_convert).
func errno4(c uint8) syscall.Errno {
	switch c {
	case 0, 6, 11: // network unreachable, unknown, unreachable for TOS
		return unix.ENETUNREACH
	case 2:
		return unix.ENOPROTOOPT
	case 3:
		return unix.ECONNREFUSED
	}
	return unix.EHOSTUNREACH
}

// errno6 is the same for ICMPv6 (net/ipv6/icmp.c, icmpv6_err_convert).
func errno6(typ, c uint8) syscall.Errno {
	if typ == icmpv6ParamProb {
		return unix.EPROTO
	}
	switch c {
	case 0:
		return unix.ENETUNREACH
	case 1, 5, 6: // administratively prohibited, policy, reject route
		return unix.EACCES
	case 4:
		return unix.ECONNREFUSED
	}
	return unix.EHOSTUNREACH
}

// match4 examines an ICMPv4 message as a raw socket delivers it (IPv4
// header first) and returns the error it reports about one of f's
// packets, or nil. Everything it reads is bounds-checked: anyone can send
// us ICMP.
func (f *outerFlow) match4(pkt []byte) *UnreachableError {
	outer, ok := ipv4Packet(pkt)
	if !ok {
		return nil
	}
	from := netip.AddrFrom4([4]byte(outer[12:16]))
	icmp := outer[int(outer[0]&0x0f)*4:]
	// ICMP header (8), then the quoted IPv4 header and at least 8 bytes
	// of what followed it (RFC 792).
	if len(icmp) < 8+ipv4HeaderLen || icmp[0] != icmpv4DestUnreach || icmp[1] == icmpv4FragNeeded {
		return nil
	}
	q := icmp[8:]
	hl := int(q[0]&0x0f) * 4
	if q[0]>>4 != 4 || hl < ipv4HeaderLen || len(q) < hl {
		return nil
	}
	if q[9] != f.proto || netip.AddrFrom4([4]byte(q[16:20])) != f.remote ||
		f.local.IsValid() && netip.AddrFrom4([4]byte(q[12:16])) != f.local {
		return nil
	}
	if f.proto == unix.IPPROTO_UDP {
		if len(q) < hl+4 || binary.BigEndian.Uint16(q[hl:]) != f.sport || binary.BigEndian.Uint16(q[hl+2:]) != f.dport {
			return nil
		}
	}
	return &UnreachableError{From: from, Type: icmp[0], Code: icmp[1], Errno: errno4(icmp[1])}
}

// match6 does the same for an ICMPv6 message (a raw ICMPv6 socket
// delivers it without the IPv6 header) from from.
func (f *outerFlow) match6(msg []byte, from netip.Addr) *UnreachableError {
	if len(msg) < 8+ipv6HdrLen {
		return nil
	}
	typ, code := msg[0], msg[1]
	if typ != icmpv6DestUnreach && (typ != icmpv6ParamProb || code != icmpv6UnknownNext) {
		return nil
	}
	q := msg[8:]
	if q[0]>>4 != 6 || q[6] != f.proto || netip.AddrFrom16([16]byte(q[24:40])) != f.remote ||
		f.local.IsValid() && netip.AddrFrom16([16]byte(q[8:24])) != f.local {
		return nil
	}
	return &UnreachableError{From: from, V6: true, Type: typ, Code: code, Errno: errno6(typ, code)}
}

// icmpWatch reads the ICMP errors arriving in a namespace and reports
// those about one outer flow.
type icmpWatch struct {
	c    net.Conn
	rc   syscall.RawConn
	flow outerFlow
	buf  [1500]byte
}

// newICMPWatch opens a raw ICMP (ICMPv6 for a v6 flow) socket in ns that
// lets only destination unreachable (and ICMPv6 parameter problem)
// through, so nothing else wakes its reader.
func newICMPWatch(ns netns.NsHandle, flow outerFlow) (*icmpWatch, error) {
	var c net.Conn
	err := InNetNS(ns, func() error {
		domain, proto, name := unix.AF_INET, unix.IPPROTO_ICMP, "icmp-watch"
		if flow.v6 {
			domain, proto, name = unix.AF_INET6, unix.IPPROTO_ICMPV6, "icmpv6-watch"
		}
		fd, err := unix.Socket(domain, unix.SOCK_RAW|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			return fmt.Errorf("ICMP watch socket: %w", err)
		}
		f := os.NewFile(uintptr(fd), name)
		defer f.Close() // net.FileConn holds its own duplicate
		if flow.v6 {
			var filt unix.ICMPv6Filter
			for i := range filt.Data {
				filt.Data[i] = 0xffffffff
			}
			for _, t := range []uint8{icmpv6DestUnreach, icmpv6ParamProb} {
				filt.Data[t>>5] &^= 1 << (t & 31)
			}
			err = unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &filt)
		} else {
			err = unix.SetsockoptInt(fd, unix.SOL_RAW, unix.ICMP_FILTER, int(^int32(1<<icmpv4DestUnreach)))
		}
		if err != nil {
			return fmt.Errorf("ICMP watch filter: %w", err)
		}
		if c, err = net.FileConn(f); err != nil {
			return fmt.Errorf("ICMP watch socket: %w", err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	rc, err := c.(syscall.Conn).SyscallConn()
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("ICMP watch socket: %w", err)
	}
	return &icmpWatch{c: c, rc: rc, flow: flow}, nil
}

// run reports each matching error until the socket is closed. It reads
// with recvfrom itself: a raw IPv4 socket delivers the IPv4 header, which
// net.IPConn would strip.
func (w *icmpWatch) run(report func(error)) {
	var (
		n    int
		from unix.Sockaddr
		rerr error
	)
	read := func(fd uintptr) bool {
		n, from, rerr = unix.Recvfrom(int(fd), w.buf[:], 0)
		return rerr != unix.EAGAIN
	}
	for {
		if err := w.rc.Read(read); err != nil {
			return // closed
		}
		if rerr != nil {
			continue // a raw socket has no errors worth stopping for
		}
		var ue *UnreachableError
		if sa, ok := from.(*unix.SockaddrInet6); ok && w.flow.v6 {
			ue = w.flow.match6(w.buf[:n], netip.AddrFrom16(sa.Addr))
		} else if !w.flow.v6 {
			ue = w.flow.match4(w.buf[:n])
		}
		if ue != nil {
			report(ue)
		}
	}
}

func (w *icmpWatch) Close() error { return w.c.Close() }
