package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
)

// Values of the ip-tunnel encapsulation attributes (linux/if_tunnel.h).
const (
	tunnelEncapFOU      = 1 // TUNNEL_ENCAP_FOU
	tunnelEncapFlagCsum = 1 // TUNNEL_ENCAP_FLAG_CSUM
	protoIPv6InIPv4     = 41
	kernelTunnelTTL     = 64
)

// kernel is the Tunnel of the kernel data plane: a sit device (v6v4), or a
// sit device with fou encapsulation plus a fou receive port (v6udpv4). The
// kernel moves every packet; this only configures, probes and tears down.
//
// Broker control datagrams after the takeover are knowingly dropped: they
// arrive on the fou port, which hands every datagram to protocol 41; sit
// passes the payload on as IPv6 and the IPv6 input discards it, since a TSP
// control datagram starts with 0xF, not version 6 (Ip6InHdrErrors). So no
// BrokerControl event comes from this plane: a broker that ended the
// session stops answering the keepalive too, and the keepalive loss is
// what reports the dead session (TestKernelKeepaliveLost).
type kernel struct {
	session
	index int

	// genl speaks generic netlink (fou) in the tunnel's namespace.
	genl *rtlink.Genl
	// mu guards rt (used for the counters, closed by Close) and last.
	mu     sync.Mutex
	rt     *rtlink.Handle
	closed bool
	last   Stats
}

func (k *kernel) plane() string { return PlaneKernel }

// sitParams are the endpoints of the sit device; sport and dport are zero
// without fou encapsulation.
type sitParams struct {
	local, remote netip.Addr
	sport, dport  uint16
}

func newKernel(ctx context.Context, cfg Config) (_ Tunnel, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("tunnel config: %w", err)
	}
	k, h, err := openKernel(cfg, cfg.Type.String())
	if err != nil {
		return nil, err
	}
	defer k.undo.rollbackOn(&err)

	var p sitParams
	switch cfg.Type {
	case V6V4:
		p.remote = cfg.RemoteEndpoint
		if isLocal(h, unix.AF_INET, cfg.LocalEndpoint) {
			p.local = cfg.LocalEndpoint
		}
	case V6UDPV4:
		if p, err = fouParams(cfg.Conn); err != nil {
			return nil, err
		}
		if _, err := k.genl.FamilyID("fou"); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("fou: %w: %w", ErrNoKernelSupport, err)
			}
			return nil, fmt.Errorf("look up the fou netlink family: %w", err)
		}
	default:
		return nil, fmt.Errorf("kernel %v: %w", cfg.Type, ErrUnsupported)
	}

	d := kernelDevice{
		add:  func(undo *undoStack) error { return addSit(h, cfg.IfName, cfg.MTU, p, undo) },
		plan: planFor(cfg),
		flow: outerFlow{proto: protoIPv6InIPv4, local: p.local, remote: p.remote},
		ping: func() (PingConn, error) {
			return NewPingConn(cfg.NetNS, cfg.IfName, cfg.Local.Addr(), cfg.Keepalive.Target)
		},
	}
	if cfg.Type == V6UDPV4 {
		d.takeOver = func() error { return k.takeOver(cfg.Conn, p.sport) }
		d.flow.proto, d.flow.sport, d.flow.dport = unix.IPPROTO_UDP, p.sport, p.dport
	}
	if err := k.setUp(ctx, cfg, h, d); err != nil {
		return nil, err
	}
	k.log.Info("tunnel up", "client", cfg.Local, "server", cfg.Remote, "local", p.local,
		"remote", p.remote, "sport", p.sport, "dport", p.dport, "mtu", cfg.MTU, "keepalive", cfg.Keepalive.Interval)
	return k, nil
}

// openKernel makes the kernel Tunnel with its own netlink handle, and
// returns the handle to configure with: cfg.Netlink when given.
func openKernel(cfg Config, mode string) (*kernel, *rtlink.Handle, error) {
	k := &kernel{}
	k.init(cfg, cfg.Log.With("if", cfg.IfName, "mode", mode, "plane", PlaneKernel))
	// Our own handles read the counters and speak generic netlink (fou)
	// in the tunnel's namespace; cfg.Netlink, when given, still does the
	// configuration.
	rt, err := rtlink.NewHandleAt(cfg.NetNS)
	if err != nil {
		return nil, nil, fmt.Errorf("netlink handle: %w", err)
	}
	genl, err := rtlink.NewGenlAt(cfg.NetNS)
	if err != nil {
		rt.Close()
		return nil, nil, fmt.Errorf("netlink handle: %w", err)
	}
	k.rt, k.genl = rt, genl
	k.undo.push("netlink handle", func() error { rt.Close(); genl.Close(); return nil })
	h := cfg.Netlink
	if h == nil {
		h = rt
	}
	return k, h, nil
}

// kernelDevice is what a kind of kernel tunnel (sit, ip6tnl) brings to
// the set-up they share.
type kernelDevice struct {
	add      func(undo *undoStack) error // creates the device
	plan     linkPlan
	takeOver func() error // last step before the prober; may be nil
	ping     func() (PingConn, error)
	flow     outerFlow // the encapsulated packets, for the ICMP watch
}

// setUp creates and configures the device d after removing a leftover of
// the same name, then starts the keepalive.
func (k *kernel) setUp(ctx context.Context, cfg Config, h *rtlink.Handle, d kernelDevice) error {
	if err := removeLeftover(h, cfg.IfName, k.log); err != nil {
		return err
	}
	if err := d.add(&k.undo); err != nil {
		return err
	}
	if err := configureLink(h, cfg.IfName, d.plan, &k.undo); err != nil {
		return err
	}
	l, err := h.LinkByName(cfg.IfName)
	if err != nil {
		return fmt.Errorf("look up %s: %w", cfg.IfName, err)
	}
	k.index = l.Index
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("tunnel set-up: %w", err)
	}
	if d.takeOver != nil {
		if err := d.takeOver(); err != nil {
			return err
		}
	}
	if err := k.setUpKeepalive(cfg, d.ping); err != nil {
		return err
	}
	if k.prober != nil {
		// Without a prober an ICMP error could not be confirmed: no watch.
		w, err := newICMPWatch(cfg.NetNS, d.flow)
		if err != nil {
			return err
		}
		k.undo.push("ICMP watch", w.Close)
		k.wg.Add(1)
		go func() {
			defer k.wg.Done()
			w.run(func(err error) {
				k.cnt.unreach.Add(1)
				k.suspect(err)
			})
		}()
	}
	k.startKeepalive()
	return nil
}

// fouParams reads the 5-tuple of the TSP session's socket: the tunnel keeps
// it so that the NAT mapping the broker has seen stays in use.
func fouParams(c net.Conn) (sitParams, error) {
	if err := checkUDPConn(c); err != nil {
		return sitParams{}, err
	}
	la, ok := c.LocalAddr().(*net.UDPAddr)
	if !ok {
		return sitParams{}, fmt.Errorf("v6udpv4: local address %v is not UDP", c.LocalAddr())
	}
	lap, rap := la.AddrPort(), c.RemoteAddr().(*net.UDPAddr).AddrPort()
	p := sitParams{local: lap.Addr().Unmap(), remote: rap.Addr().Unmap(), sport: lap.Port(), dport: rap.Port()}
	if !p.remote.Is4() || p.dport == 0 || p.sport == 0 {
		return sitParams{}, fmt.Errorf("v6udpv4: session socket %v → %v is not IPv4 UDP", lap, rap)
	}
	if p.local.IsUnspecified() {
		p.local = netip.Addr{}
	}
	return p, nil
}

// isLocal reports whether a, an address of family (unix.AF_INET or
// AF_INET6), is assigned to an interface. Config.LocalEndpoint may be the
// address the broker saw, which a NAT (behind which it is the public IPv4),
// a NAT66 or a proxy may have changed.
func isLocal(h *rtlink.Handle, family int, a netip.Addr) bool {
	if family == unix.AF_INET && !a.Is4() || family == unix.AF_INET6 && !a.Is6() {
		return false
	}
	addrs, err := h.AddrList(0, family)
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if ip := ad.Prefix.Addr(); ip == a || ip.Unmap() == a {
			return true
		}
	}
	return false
}

// addSit creates the sit device, with fou encapsulation when p has ports.
func addSit(h *rtlink.Handle, name string, mtu int, p sitParams, undo *undoStack) error {
	sit := rtlink.Sit{
		Name: name, MTU: mtu,
		Local:    p.local, // may be invalid: no local address
		Remote:   p.remote,
		TTL:      kernelTunnelTTL,
		PMTUDisc: true, // the kernel refuses a fixed TTL without it
	}
	if p.sport != 0 {
		sit.EncapType = tunnelEncapFOU
		// A UDP checksum costs little with offloads and keeps middleboxes
		// that drop zero-checksum datagrams from breaking the tunnel.
		sit.EncapFlags = tunnelEncapFlagCsum
		sit.EncapSport, sit.EncapDport = p.sport, p.dport
	}
	return addTunnelLink(h, sit, p.local, p.remote, undo)
}

// addTunnelLink creates the tunnel device l from local to remote.
func addTunnelLink(h *rtlink.Handle, spec rtlink.LinkSpec, local, remote netip.Addr, undo *undoStack) error {
	name := spec.LinkName()
	l, err := h.LinkAdd(spec)
	if err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			// rtnetlink knows no such kind: module missing or not loadable.
			return fmt.Errorf("create %s device %s: %w: %w", spec.Kind(), name, ErrNoKernelSupport, err)
		}
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create %s device %s: a tunnel %v → %v exists already: %w", spec.Kind(), name, local, remote, err)
		}
		return fmt.Errorf("create %s device %s: %w", spec.Kind(), name, err)
	}
	undo.push("device "+name, func() error { return h.LinkDel(l.Index) })
	return nil
}

// takeOver moves the UDP port from the TSP socket to a fou receive port.
// The kernel's fou socket binds without SO_REUSEADDR, so the port must be
// free: close the session socket and add the fou port right away. For the
// few microseconds in between a datagram from the broker meets a closed
// port; TCP inside the tunnel retransmits it.
func (k *kernel) takeOver(c net.Conn, port uint16) error {
	if err := c.Close(); err != nil {
		return fmt.Errorf("release the session socket: %w", err)
	}
	f := rtlink.FouPort{Family: unix.AF_INET, Port: port, Protocol: protoIPv6InIPv4}
	if err := k.genl.FouAdd(f); err != nil {
		// The session socket is gone: no fall-back to userspace from here.
		return fmt.Errorf("add fou port %d (the session socket is already released): %w", port, err)
	}
	k.undo.push(fmt.Sprintf("fou port %d", port), func() error { return k.genl.FouDel(f) })
	return nil
}

// Stats reads the device's counters from the kernel; after Close it returns
// the last ones read.
func (k *kernel) Stats() Stats {
	k.mu.Lock()
	k.refreshLocked()
	s := k.last
	k.mu.Unlock()
	s.EventsDropped = k.cnt.eventsDropped.Load()
	s.Unreachable = k.cnt.unreach.Load()
	return k.keepaliveStats(s)
}

func (k *kernel) refreshLocked() {
	if k.closed {
		return
	}
	l, err := k.rt.LinkByIndex(k.index)
	if err != nil || l.Stats == nil {
		return
	}
	st := l.Stats
	k.last = Stats{
		TxPackets: st.TxPackets, TxBytes: st.TxBytes,
		RxPackets: st.RxPackets, RxBytes: st.RxBytes,
		TxErrors: st.TxErrors, RxErrors: st.RxErrors,
		Dropped: st.TxDropped + st.RxDropped,
	}
}

// Close stops the prober and removes the fou port, routes, addresses and
// device. For v6udpv4 the session socket was closed at set-up.
func (k *kernel) Close() error {
	k.closeOnce.Do(func() {
		k.cancel()
		k.mu.Lock()
		k.refreshLocked()
		k.closed = true
		k.mu.Unlock()
		k.closeErr = k.undo.run()
		k.wg.Wait()
		close(k.events)
		k.log.Info("tunnel down")
	})
	return k.closeErr
}
