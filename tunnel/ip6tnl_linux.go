package tunnel

import (
	"context"
	"fmt"
	"net/netip"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
)

// ip6tnl parameters for v4v6 (linux/ip6_tunnel.h).
const (
	protoIPIP = 4 // IPPROTO_IPIP: the ip6tnl "ipip6" mode
	// ip6tnlIgnEncapLimit (IP6_TNL_F_IGN_ENCAP_LIMIT) leaves out the RFC
	// 2473 encapsulation-limit option, so the wire carries plain IPv6 with
	// next header 4, which is what a broker's raw socket expects.
	ip6tnlIgnEncapLimit = 0x1
)

// newKernelV4V6 builds v4v6 on an ip6tnl device in ipip6 mode: the kernel
// encapsulates, the rest (plan, undo, ICMPv4 prober, counters) is shared
// with the sit plane. Without the ip6_tunnel module it fails with
// ErrNoKernelSupport, on which "auto" falls back to userspace.
func newKernelV4V6(ctx context.Context, cfg Config) (_ Tunnel, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("tunnel config: %w", err)
	}
	if cfg.Type != V4V6 {
		return nil, fmt.Errorf("kernel v4v6 for a %v tunnel: %w", cfg.Type, ErrUnsupported)
	}
	k, h, err := openKernel(cfg, cfg.Type.String())
	if err != nil {
		return nil, err
	}
	defer k.undo.rollbackOn(&err)
	local := cfg.LocalEndpoint
	if !isLocal(h, unix.AF_INET6, local) {
		local = netip.Addr{} // the route to the broker picks the source
	}
	if err := k.setUp(ctx, cfg, h, kernelDevice{
		add:  func(undo *undoStack) error { return addIP6Tnl(h, cfg.IfName, cfg.MTU, local, cfg.RemoteEndpoint, undo) },
		plan: planFor(cfg),
		flow: outerFlow{v6: true, proto: protoIPIP, local: local, remote: cfg.RemoteEndpoint},
		ping: func() (PingConn, error) {
			return NewPingConn4(cfg.NetNS, cfg.IfName, cfg.Local.Addr(), cfg.Keepalive.Target)
		},
	}); err != nil {
		return nil, err
	}
	k.log.Info("tunnel up", "client", cfg.Local, "server", cfg.Remote, "local", local, "remote", cfg.RemoteEndpoint,
		"mtu", cfg.MTU, "keepalive", cfg.Keepalive.Interval)
	return k, nil
}

// addIP6Tnl creates the ip6tnl device carrying IPv4 (ipip6) to remote.
func addIP6Tnl(h *rtlink.Handle, name string, mtu int, local, remote netip.Addr, undo *undoStack) error {
	t := rtlink.Ip6tnl{
		Name: name, MTU: mtu,
		Local:  local, // may be invalid: no local address
		Remote: remote,
		TTL:    kernelTunnelTTL,
		Proto:  protoIPIP,
		Flags:  ip6tnlIgnEncapLimit,
	}
	return addTunnelLink(h, t, local, remote, undo)
}
