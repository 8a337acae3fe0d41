package tunnel

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps"
)

// protoIPv6 is IPPROTO_IPV6 as an IPv4 payload: 6in4 (protocol 41).
const protoIPv6 = "ip4:41"

// ListenProto41 opens an unconnected raw IPv4 socket for protocol 41 in ns
// (<= 0: the current one), bound to local if valid: the broker side of
// v6v4, where one socket serves every client (see Forwarder).
func ListenProto41(ns netns.NsHandle, local netip.Addr) (*net.IPConn, error) {
	return listenRaw(ns, protoIPv6, local)
}

// dialProto41 opens the client's protocol-41 socket connected to the
// broker, so the kernel only hands it packets from there. local is tried
// first; if it is not an address of this host (e.g. the public address a
// NAT'd client was told), the route to the broker picks the source.
func dialProto41(ns netns.NsHandle, local, remote netip.Addr) (*net.IPConn, error) {
	return dialRaw(ns, protoIPv6, local, remote)
}

// rawName names a raw socket's protocol in errors: "ip4:41" → "protocol-41".
func rawName(network string) string {
	return "protocol-" + network[strings.IndexByte(network, ':')+1:]
}

// listenRaw opens an unconnected raw socket for network ("ip4:41",
// "ip6:4") in ns, bound to local if valid.
func listenRaw(ns netns.NsHandle, network string, local netip.Addr) (*net.IPConn, error) {
	var c *net.IPConn
	err := InNetNS(ns, func() error {
		var err error
		c, err = net.ListenIP(network, ipAddr(local))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s socket on %v: %w", rawName(network), local, caps.Annotate(err, caps.NetRaw))
	}
	return c, nil
}

// dialRaw opens a raw socket for network in ns connected to remote, from
// local if that is an address of this host, else from the source the route
// picks.
func dialRaw(ns netns.NsHandle, network string, local, remote netip.Addr) (*net.IPConn, error) {
	var c *net.IPConn
	err := InNetNS(ns, func() error {
		var err error
		if local.IsValid() {
			c, err = net.DialIP(network, ipAddr(local), ipAddr(remote))
			if err == nil || !errors.Is(err, unix.EADDRNOTAVAIL) {
				return err
			}
		}
		c, err = net.DialIP(network, nil, ipAddr(remote))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("%s socket to %v: %w", rawName(network), remote, caps.Annotate(err, caps.NetRaw))
	}
	return c, nil
}

func ipAddr(a netip.Addr) *net.IPAddr {
	if !a.IsValid() {
		return nil
	}
	return &net.IPAddr{IP: net.IP(a.Unmap().AsSlice())}
}
