package daemon

import (
	"fmt"
	"net/netip"

	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// tunnelConfig maps a negotiated offer onto the data plane's plain values:
// the one place where the protocol's offer meets the tunnel package. local
// is the TSP session's local address, the source the broker saw us use:
// the preferred outer source of a v6v4 or v4v6 tunnel (the offer's client
// address may be a NAT's). The caller adds what the configuration decides
// (interface, data plane, routes, keepalive tuning) and, for v6udpv4, the
// session socket.
func tunnelConfig(o *tsp.Offer, local netip.Addr) (tunnel.Config, error) {
	c := tunnel.Config{
		Keepalive: tunnel.KeepaliveConfig{Target: o.KeepaliveAddr, Interval: o.KeepaliveInterval},
	}
	if o.MTU >= 1280 && o.MTU <= 65535 {
		c.MTU = o.MTU // else the tunnel's default
	}
	local = local.Unmap()
	switch o.Type {
	case tsp.V6V4, tsp.V6UDPV4:
		c.Type = tunnel.V6V4
		if o.Type == tsp.V6UDPV4 {
			c.Type = tunnel.V6UDPV4 // endpoints: the session socket's
		}
		c.Local, c.Remote = netip.PrefixFrom(o.ClientV6, 128), o.ServerV6
		c.RemoteEndpoint, c.LocalEndpoint = o.ServerV4, o.ClientV4
		if local.Is4() {
			c.LocalEndpoint = local
		}
	case tsp.V4V6:
		// The families swap (spec §1.7): IPv4 inside, IPv6 outside.
		c.Type = tunnel.V4V6
		c.Local, c.Remote = netip.PrefixFrom(o.ClientV4, 32), o.ServerV4
		c.RemoteEndpoint, c.LocalEndpoint = o.ServerV6, o.ClientV6
		if local.Is6() {
			c.LocalEndpoint = local
		}
	default:
		return tunnel.Config{}, fmt.Errorf("tunnel type %q: %w", o.Type, tunnel.ErrUnsupported)
	}
	return c, nil
}
