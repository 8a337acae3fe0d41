package radv

import (
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps"
)

// allRouters is the group routers listen on for solicitations.
var allRouters = netip.MustParseAddr("ff02::2")

// ndpHopLimit is the hop limit of every NDP message: a receiver drops one
// with another, as it may have been forwarded (RFC 4861 §6.1).
const ndpHopLimit = 255

// ICMPConn is the Conn Listen opens: a raw ICMPv6 socket on one interface
// that reads Router Solicitations and writes Router Advertisements. It
// parses solicitations (parseRS), encodes advertisements (marshalRA) and
// sets the socket up itself, with x/sys/unix: golang.org/x/net/ipv6's
// PacketConn would add some 14 KB to the compressed binary for the same
// few socket options and control messages.
type ICMPConn struct {
	ic     *net.IPConn
	ifName string
	addr   netip.Addr // our link-local address, with zone
	buf    []byte     // ReadFrom's: one reader at a time, and parseRS copies out
	oob    []byte     // ReadFrom's control messages
	// pktinfo goes with every RA: from addr, out of the interface.
	pktinfo []byte
}

var _ Conn = (*ICMPConn)(nil)

// Listen opens the ICMPv6 socket for a Server on interface ifName, sending
// from its link-local address (hosts take the RA's source as their default
// router) with hop limit 255. It joins ff02::2, lets only Router
// Solicitations through, and turns on the hop-limit control message that
// classify needs. It also returns the interface's hardware address for
// Config.LinkAddr.
func Listen(ifName string) (*ICMPConn, net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return nil, nil, fmt.Errorf("radv: interface %s: %w", ifName, err)
	}
	ll, err := linkLocalOf(ifi)
	if err != nil {
		return nil, nil, err
	}
	// The zone by number: the net package's name cache may still hold
	// the index of a device of the same name that was deleted.
	ic, err := net.ListenIP("ip6:ipv6-icmp", &net.IPAddr{IP: ll.AsSlice(), Zone: strconv.Itoa(ifi.Index)})
	if err != nil {
		return nil, nil, fmt.Errorf("radv: listen on %s: %w", ifName, caps.Annotate(err, caps.NetRaw))
	}
	c := &ICMPConn{
		ic:     ic,
		ifName: ifName,
		addr:   ll.WithZone(ifName),
		// A solicitation cannot be larger than the link's MTU.
		buf:     make([]byte, max(ifi.MTU, 1280)),
		oob:     make([]byte, unix.CmsgSpace(4)*4),
		pktinfo: unix.PktInfo6(&unix.Inet6Pktinfo{Addr: ll.As16(), Ifindex: uint32(ifi.Index)}),
	}
	if what, err := c.setup(ifi.Index); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("radv: %s on %s: %w", what, ifName, err)
	}
	return c, ifi.HardwareAddr, nil
}

// setup readies the socket for a Server; on failure it says which step
// failed.
func (c *ICMPConn) setup(index int) (what string, err error) {
	rc, err := c.ic.SyscallConn()
	if err != nil {
		return "socket", err
	}
	// Everything a solicitation could get through is blocked (a set bit
	// blocks its type, on Linux), but solicitations.
	var filter unix.ICMPv6Filter
	for i := range filter.Data {
		filter.Data[i] = ^uint32(0)
	}
	filter.Data[icmpRouterSolicitation/32] &^= 1 << (icmpRouterSolicitation % 32)
	join := unix.IPv6Mreq{Multiaddr: allRouters.As16(), Interface: uint32(index)}
	cerr := rc.Control(func(fd uintptr) {
		s := int(fd)
		for _, o := range []struct {
			what            string
			level, opt, val int
		}{
			// RFC 4861 §6.1.2: RAs go out with hop limit 255, so hosts
			// can tell they were not forwarded.
			{"unicast hop limit", unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, ndpHopLimit},
			{"multicast hop limit", unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, ndpHopLimit},
			// Linux checksums raw ICMPv6 itself; this asks for it
			// (at offset 2) where a kernel would not.
			{"ICMPv6 checksum", unix.SOL_RAW, unix.IPV6_CHECKSUM, 2},
			// The hop limit of each solicitation, for classify.
			{"hop-limit control messages", unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1},
		} {
			if err = unix.SetsockoptInt(s, o.level, o.opt, o.val); err != nil {
				what = o.what
				return
			}
		}
		if err = unix.SetsockoptIPv6Mreq(s, unix.IPPROTO_IPV6, unix.IPV6_JOIN_GROUP, &join); err != nil {
			what = "join ff02::2"
			return
		}
		if err = unix.SetsockoptICMPv6Filter(s, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &filter); err != nil {
			what = "ICMPv6 filter"
		}
	})
	if cerr != nil {
		return "socket", cerr
	}
	return what, err
}

// linkLocalOf returns ifi's first IPv6 link-local address.
func linkLocalOf(ifi *net.Interface) (netip.Addr, error) {
	addrs, err := ifi.Addrs()
	if err != nil {
		return netip.Addr{}, fmt.Errorf("radv: addresses of %s: %w", ifi.Name, err)
	}
	for _, a := range addrs {
		n, ok := a.(*net.IPNet)
		if !ok {
			continue
		}
		if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Is6() && !ip.Is4In6() && ip.IsLinkLocalUnicast() {
			return ip, nil
		}
	}
	return netip.Addr{}, fmt.Errorf("radv: %s has no IPv6 link-local address", ifi.Name)
}

// ReadFrom returns the next Router Solicitation, the hop limit it came
// with (-1 when the kernel did not say) and its source (with the interface
// as zone). A message that does not parse as one comes back as an error
// wrapping ErrMalformed, with the hop limit and source. Messages from our
// own address are skipped. It is meant for one reader at a time.
func (c *ICMPConn) ReadFrom() (*RouterSolicitation, int, netip.Addr, error) {
	b := c.buf
	for {
		n, oobn, _, src, err := c.ic.ReadMsgIP(b, c.oob)
		if err != nil {
			return nil, -1, netip.Addr{}, err
		}
		ip, ok := netip.AddrFromSlice(src.IP)
		if !ok {
			return nil, -1, netip.Addr{}, fmt.Errorf("radv: read: bad source address %v", src.IP)
		}
		ip = ip.WithZone(c.ifName)
		if ip == c.addr {
			continue
		}
		hop := hopLimit(c.oob[:oobn])
		rs, err := parseRS(b[:n])
		if err != nil {
			return nil, hop, ip, err
		}
		return rs, hop, ip, nil
	}
}

// hopLimit finds the IPV6_HOPLIMIT control message in oob: -1 when there
// is none.
func hopLimit(oob []byte) int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1
	}
	for _, m := range msgs {
		if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4 {
			return int(binary.NativeEndian.Uint32(m.Data))
		}
	}
	return -1
}

// WriteTo sends ra to dst on the interface (dst's zone is ignored), from
// the link-local address with hop limit 255.
func (c *ICMPConn) WriteTo(ra *RouterAdvertisement, dst netip.Addr) error {
	b, err := marshalRA(ra)
	if err != nil {
		return fmt.Errorf("radv: marshal: %w", err)
	}
	// No zone: the socket is bound to the device, and the packet's
	// control message names it too. A zone name would go through the net
	// package's name cache, which may still map it to a deleted device.
	if _, _, err := c.ic.WriteMsgIP(b, c.pktinfo, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return fmt.Errorf("radv: send to %v: %w", dst, err)
	}
	return nil
}

// SetReadDeadline sets when a blocked ReadFrom gives up.
func (c *ICMPConn) SetReadDeadline(t time.Time) error { return c.ic.SetReadDeadline(t) }

// Close closes the socket.
func (c *ICMPConn) Close() error { return c.ic.Close() }
