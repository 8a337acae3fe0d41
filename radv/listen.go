package radv

import (
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// allRouters is the group routers listen on for solicitations.
var allRouters = netip.MustParseAddr("ff02::2")

// Listen opens the ICMPv6 socket for a Server on interface ifName, sending
// from its link-local address (hosts take the RA's source as their default
// router). It joins ff02::2, lets only Router Solicitations through, and
// turns on the hop-limit control message that classify needs. It also
// returns the interface's hardware address for Config.LinkAddr.
func Listen(ifName string) (*ndp.Conn, net.HardwareAddr, error) {
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		return nil, nil, fmt.Errorf("radv: interface %s: %w", ifName, err)
	}
	c, _, err := ndp.Listen(ifi, ndp.LinkLocal)
	if err != nil {
		return nil, nil, fmt.Errorf("radv: listen on %s: %w", ifName, err)
	}
	var f ipv6.ICMPFilter
	f.SetAll(true)
	f.Accept(ipv6.ICMPTypeRouterSolicitation)
	steps := []struct {
		what string
		fn   func() error
	}{
		{"join ff02::2", func() error { return c.JoinGroup(allRouters) }},
		{"ICMPv6 filter", func() error { return c.SetICMPFilter(&f) }},
		{"hop-limit control messages", func() error { return c.SetControlMessage(ipv6.FlagHopLimit, true) }},
	}
	for _, st := range steps {
		if err := st.fn(); err != nil {
			_ = c.Close()
			return nil, nil, fmt.Errorf("radv: %s on %s: %w", st.what, ifName, err)
		}
	}
	return c, ifi.HardwareAddr, nil
}
