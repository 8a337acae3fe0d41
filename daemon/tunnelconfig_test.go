package daemon

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

func TestTunnelConfig(t *testing.T) {
	a := netip.MustParseAddr
	v6 := tsp.Offer{
		Type: tsp.V6V4, MTU: 1400,
		ServerV4: a("198.51.100.1"), ClientV4: a("203.0.113.7"), // the NAT's address, as the broker saw it
		ServerV6: a("2001:db8::1"), ClientV6: a("2001:db8::2"),
		KeepaliveInterval: 30 * time.Second, KeepaliveAddr: a("2001:db8::1"),
		Prefix: netip.MustParsePrefix("2001:db8:100::/56"), Lifetime: time.Hour,
	}
	v46 := tsp.Offer{
		Type:     tsp.V4V6,
		ServerV6: a("2001:db8:46::1"), ClientV6: a("2001:db8:46::2"),
		ServerV4: a("198.18.0.1"), ClientV4: a("198.18.0.2"),
		KeepaliveInterval: 10 * time.Second, KeepaliveAddr: a("198.18.0.1"),
	}
	udp := v6
	udp.Type, udp.MTU = tsp.V6UDPV4, 70000 // out of range: the tunnel's default
	for _, tc := range []struct {
		name  string
		o     tsp.Offer
		local netip.Addr
		want  tunnel.Config
	}{
		{"v6v4 behind a NAT: the session's source", v6, a("::ffff:192.168.1.2"), tunnel.Config{
			Type: tunnel.V6V4, MTU: 1400,
			Local: netip.MustParsePrefix("2001:db8::2/128"), Remote: a("2001:db8::1"),
			LocalEndpoint: a("192.168.1.2"), RemoteEndpoint: a("198.51.100.1"),
			Keepalive: tunnel.KeepaliveConfig{Target: a("2001:db8::1"), Interval: 30 * time.Second},
		}},
		{"v6v4 without a session address", v6, netip.Addr{}, tunnel.Config{
			Type: tunnel.V6V4, MTU: 1400,
			Local: netip.MustParsePrefix("2001:db8::2/128"), Remote: a("2001:db8::1"),
			LocalEndpoint: a("203.0.113.7"), RemoteEndpoint: a("198.51.100.1"),
			Keepalive: tunnel.KeepaliveConfig{Target: a("2001:db8::1"), Interval: 30 * time.Second},
		}},
		{"v6udpv4", udp, a("192.168.1.2"), tunnel.Config{
			Type:  tunnel.V6UDPV4,
			Local: netip.MustParsePrefix("2001:db8::2/128"), Remote: a("2001:db8::1"),
			LocalEndpoint: a("192.168.1.2"), RemoteEndpoint: a("198.51.100.1"),
			Keepalive: tunnel.KeepaliveConfig{Target: a("2001:db8::1"), Interval: 30 * time.Second},
		}},
		{"v4v6: families swap", v46, a("2001:db8:46::2"), tunnel.Config{
			Type:  tunnel.V4V6,
			Local: netip.MustParsePrefix("198.18.0.2/32"), Remote: a("198.18.0.1"),
			LocalEndpoint: a("2001:db8:46::2"), RemoteEndpoint: a("2001:db8:46::1"),
			Keepalive: tunnel.KeepaliveConfig{Target: a("198.18.0.1"), Interval: 10 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tunnelConfig(&tc.o, tc.local)
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
	if _, err := tunnelConfig(&tsp.Offer{Type: "v6v6"}, netip.Addr{}); !errors.Is(err, tunnel.ErrUnsupported) {
		t.Errorf("unknown type: err = %v, want ErrUnsupported", err)
	}
}
