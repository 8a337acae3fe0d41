package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// protoIPv6 is IPPROTO_IPV6 as an IPv4 payload: 6in4 (protocol 41).
const protoIPv6 = "ip4:41"

// ListenProto41 opens an unconnected raw IPv4 socket for protocol 41 in ns
// (<= 0: the current one), bound to local if valid: the broker side of
// v6v4, where one socket serves every client (see Forwarder).
func ListenProto41(ns netns.NsHandle, local netip.Addr) (*net.IPConn, error) {
	var c *net.IPConn
	err := InNetNS(ns, func() error {
		var err error
		c, err = net.ListenIP(protoIPv6, ipAddr(local))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("protocol-41 socket on %v: %w", local, err)
	}
	return c, nil
}

// dialProto41 opens the client's protocol-41 socket connected to the
// broker, so the kernel only hands it packets from there. local is tried
// first; if it is not an address of this host (e.g. the public address a
// NAT'd client was told), the route to the broker picks the source.
func dialProto41(ns netns.NsHandle, local, remote netip.Addr) (*net.IPConn, error) {
	var c *net.IPConn
	err := InNetNS(ns, func() error {
		var err error
		if local.IsValid() {
			c, err = net.DialIP(protoIPv6, ipAddr(local), ipAddr(remote))
			if err == nil || !errors.Is(err, unix.EADDRNOTAVAIL) {
				return err
			}
		}
		c, err = net.DialIP(protoIPv6, nil, ipAddr(remote))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("protocol-41 socket to %v: %w", remote, err)
	}
	return c, nil
}

func ipAddr(a netip.Addr) *net.IPAddr {
	if !a.IsValid() {
		return nil
	}
	return &net.IPAddr{IP: net.IP(a.Unmap().AsSlice())}
}
