package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/tsp"
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
	o := cfg.Offer
	if o.Type != tsp.V4V6 {
		return nil, fmt.Errorf("kernel v4v6 for a %s offer: %w", o.Type, ErrUnsupported)
	}
	k := &kernel{
		log:    cfg.Log.With("if", cfg.IfName, "mode", string(o.Type), "plane", PlaneKernel),
		name:   cfg.IfName,
		events: make(chan Event, 16),
	}
	k.sink = eventSink{ch: k.events, cnt: &k.cnt, now: cfg.Keepalive.Clock.Now}
	defer func() {
		if err != nil {
			if uerr := k.undo.run(); uerr != nil {
				err = fmt.Errorf("%w (rollback: %v)", err, uerr)
			}
		}
	}()
	k.nl, err = openKernelHandle(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	k.undo.push("netlink handle", func() error { k.nl.Close(); return nil })
	h := cfg.Netlink
	if h == nil {
		h = k.nl
	}
	local := o.ClientV6
	if !isLocalV6(h, local) {
		local = netip.Addr{} // the route to the broker picks the source
	}
	if err := removeLeftover(h, cfg.IfName, k.log); err != nil {
		return nil, err
	}
	if err := addIP6Tnl(h, cfg.IfName, cfg.MTU, local, o.ServerV6, &k.undo); err != nil {
		return nil, err
	}
	if err := configureLink(h, cfg.IfName, planV4V6(cfg), &k.undo); err != nil {
		return nil, err
	}
	l, err := h.LinkByName(cfg.IfName)
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", cfg.IfName, err)
	}
	k.index = l.Attrs().Index
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tunnel set-up: %w", err)
	}
	if cfg.Keepalive.enabled() {
		ping := cfg.Keepalive.Conn
		if ping == nil {
			if ping, err = NewPingConn4(cfg.NetNS, cfg.IfName, o.ClientV4, o.KeepaliveAddr); err != nil {
				return nil, err
			}
		}
		k.undo.push("keepalive socket", ping.Close)
		k.prober = newProber(cfg.Keepalive, ping, k.sink.emit, k.log)
	}
	pctx, cancel := context.WithCancel(context.Background())
	k.cancel = cancel
	if k.prober != nil {
		k.wg.Add(1)
		go func() { defer k.wg.Done(); k.prober.run(pctx) }()
	}
	k.log.Info("tunnel up", "client", o.ClientV4, "server", o.ServerV4, "local", local, "remote", o.ServerV6,
		"mtu", cfg.MTU, "keepalive", cfg.Keepalive.Interval, "lifetime", o.Lifetime)
	return k, nil
}

// isLocalV6 reports whether a is assigned here: the offer's client IPv6 is
// the source the broker saw, which a NAT66 or a proxy may have changed.
func isLocalV6(h *netlink.Handle, a netip.Addr) bool {
	if !a.Is6() {
		return false
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip == a {
			return true
		}
	}
	return false
}

// addIP6Tnl creates the ip6tnl device carrying IPv4 (ipip6) to remote.
func addIP6Tnl(h *netlink.Handle, name string, mtu int, local, remote netip.Addr, undo *undoStack) error {
	t := &netlink.Ip6tnl{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu},
		Remote:    net.IP(remote.AsSlice()),
		Ttl:       kernelTunnelTTL,
		Proto:     protoIPIP,
		Flags:     ip6tnlIgnEncapLimit,
	}
	if local.IsValid() {
		t.Local = net.IP(local.AsSlice())
	}
	if err := h.LinkAdd(t); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			// rtnetlink knows no "ip6tnl" kind: ip6_tunnel missing.
			return fmt.Errorf("create ip6tnl device %s: %w: %v", name, ErrNoKernelSupport, err)
		}
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create ip6tnl device %s: a tunnel %v → %v exists already: %w", name, local, remote, err)
		}
		return fmt.Errorf("create ip6tnl device %s: %w", name, err)
	}
	undo.push("device "+name, func() error { return h.LinkDel(t) })
	return nil
}
