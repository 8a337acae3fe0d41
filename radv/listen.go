package radv

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"golang.org/x/net/ipv6"

	"github.com/jsklein/gogoc/internal/caps"
)

// allRouters is the group routers listen on for solicitations.
var allRouters = netip.MustParseAddr("ff02::2")

// ndpHopLimit is the hop limit of every NDP message: a receiver drops one
// with another, as it may have been forwarded (RFC 4861 §6.1).
const ndpHopLimit = 255

// ICMPConn is the Conn Listen opens: a raw ICMPv6 socket on one interface
// that reads Router Solicitations and writes Router Advertisements. It
// parses solicitations (parseRS) and encodes advertisements (marshalRA)
// itself.
type ICMPConn struct {
	pc     *ipv6.PacketConn
	ifName string
	addr   netip.Addr // our link-local address, with zone
	buf    []byte     // ReadFrom's: one reader at a time, and parseRS copies out
	// cm is sent when WriteTo gets none: hop limit 255, from addr.
	cm *ipv6.ControlMessage
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
		pc:     ipv6.NewPacketConn(ic),
		ifName: ifName,
		addr:   ll.WithZone(ifName),
		// A solicitation cannot be larger than the link's MTU.
		buf: make([]byte, max(ifi.MTU, 1280)),
		cm:  &ipv6.ControlMessage{HopLimit: ndpHopLimit, Src: ll.AsSlice(), IfIndex: ifi.Index},
	}
	if what, err := c.setup(ifi); err != nil {
		_ = c.Close()
		return nil, nil, fmt.Errorf("radv: %s on %s: %w", what, ifName, err)
	}
	return c, ifi.HardwareAddr, nil
}

// setup readies the socket for a Server; on failure it says which step
// failed.
func (c *ICMPConn) setup(ifi *net.Interface) (string, error) {
	// RFC 4861 §6.1.2: RAs go out with hop limit 255, so hosts can tell
	// they were not forwarded.
	if err := c.pc.SetHopLimit(ndpHopLimit); err != nil {
		return "unicast hop limit", err
	}
	if err := c.pc.SetMulticastHopLimit(ndpHopLimit); err != nil {
		return "multicast hop limit", err
	}
	// Linux checksums raw ICMPv6 itself; this asks for it where a kernel
	// would not.
	if err := c.pc.SetChecksum(true, 2); err != nil {
		return "ICMPv6 checksum", err
	}
	if err := c.pc.JoinGroup(ifi, &net.IPAddr{IP: allRouters.AsSlice(), Zone: c.ifName}); err != nil {
		return "join ff02::2", err
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	if err := c.pc.SetICMPFilter(&f); err != nil {
		return "ICMPv6 filter", err
	}
	if err := c.pc.SetControlMessage(ipv6.FlagHopLimit, true); err != nil {
		return "hop-limit control messages", err
	}
	return "", nil
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

// ReadFrom returns the next Router Solicitation, its control message and
// its source (with the interface as zone). A message that does not parse
// as one comes back as an error wrapping ErrMalformed, with the control
// message and source. Messages from our own address are skipped. It is
// meant for one reader at a time.
func (c *ICMPConn) ReadFrom() (*RouterSolicitation, *ipv6.ControlMessage, netip.Addr, error) {
	b := c.buf
	for {
		n, cm, src, err := c.pc.ReadFrom(b)
		if err != nil {
			return nil, nil, netip.Addr{}, err
		}
		ipa, ok := src.(*net.IPAddr)
		if !ok {
			return nil, nil, netip.Addr{}, fmt.Errorf("radv: read: source %v is not an IP address", src)
		}
		ip, ok := netip.AddrFromSlice(ipa.IP)
		if !ok {
			return nil, nil, netip.Addr{}, fmt.Errorf("radv: read: bad source address %v", ipa.IP)
		}
		ip = ip.WithZone(c.ifName)
		if ip == c.addr {
			continue
		}
		rs, err := parseRS(b[:n])
		if err != nil {
			return nil, cm, ip, err
		}
		return rs, cm, ip, nil
	}
}

// WriteTo sends ra to dst on the interface (dst's zone is ignored). A nil
// cm sends from the link-local address with hop limit 255.
func (c *ICMPConn) WriteTo(ra *RouterAdvertisement, cm *ipv6.ControlMessage, dst netip.Addr) error {
	b, err := marshalRA(ra)
	if err != nil {
		return fmt.Errorf("radv: marshal: %w", err)
	}
	if cm == nil {
		cm = c.cm
	}
	// No zone: the socket is bound to the device, and the control message
	// names it too. A zone name would go through the net package's name
	// cache, which may still map it to a deleted device.
	if _, err := c.pc.WriteTo(b, cm, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return fmt.Errorf("radv: send to %v: %w", dst, err)
	}
	return nil
}

// SetReadDeadline sets when a blocked ReadFrom gives up.
func (c *ICMPConn) SetReadDeadline(t time.Time) error { return c.pc.SetReadDeadline(t) }

// Close closes the socket.
func (c *ICMPConn) Close() error { return c.pc.Close() }
