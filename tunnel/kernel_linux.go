package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/tsp"
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
	log    *slog.Logger
	name   string
	index  int
	prober *prober
	cancel context.CancelFunc
	undo   undoStack

	// mu guards nl (used for the counters, closed by Close) and last.
	mu     sync.Mutex
	nl     *netlink.Handle
	closed bool
	last   Stats

	cnt    counters // only eventsDropped: the kernel counts the packets
	events chan Event
	sink   eventSink
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
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
	o := cfg.Offer
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

	// Our own handle also speaks generic netlink (fou) in the tunnel's
	// namespace; cfg.Netlink, when given, still does the configuration.
	k.nl, err = openKernelHandle(cfg.NetNS)
	if err != nil {
		return nil, err
	}
	k.undo.push("netlink handle", func() error { k.nl.Close(); return nil })
	h := cfg.Netlink
	if h == nil {
		h = k.nl
	}

	var p sitParams
	switch o.Type {
	case tsp.V6V4:
		if !o.ServerV4.Is4() {
			return nil, fmt.Errorf("v6v4 offer without server IPv4 (%v)", o.ServerV4)
		}
		p.remote = o.ServerV4
		p.local = cfg.LocalV4
		if !p.local.IsValid() && isLocalV4(h, o.ClientV4) {
			p.local = o.ClientV4
		}
	case tsp.V6UDPV4:
		if p, err = fouParams(cfg.Conn); err != nil {
			return nil, err
		}
		if _, err := k.nl.GenlFamilyGet("fou"); err != nil {
			if errors.Is(err, unix.ENOENT) {
				return nil, fmt.Errorf("fou: %w: %v", ErrNoKernelSupport, err)
			}
			return nil, fmt.Errorf("look up the fou netlink family: %w", err)
		}
	default:
		return nil, fmt.Errorf("kernel %s: %w", o.Type, ErrUnsupported)
	}

	if err := removeLeftover(h, cfg.IfName, k.log); err != nil {
		return nil, err
	}
	if err := addSit(h, cfg.IfName, cfg.MTU, p, &k.undo); err != nil {
		return nil, err
	}
	if err := configureLink(h, cfg.IfName, planFor(cfg), &k.undo); err != nil {
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

	if o.Type == tsp.V6UDPV4 {
		if err := k.takeOver(cfg.Conn, p.sport); err != nil {
			return nil, err
		}
	}

	if cfg.Keepalive.enabled() {
		ping := cfg.Keepalive.Conn
		if ping == nil {
			if ping, err = NewPingConn(cfg.NetNS, cfg.IfName, o.ClientV6, o.KeepaliveAddr); err != nil {
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
	k.log.Info("tunnel up", "client", o.ClientV6, "server", o.ServerV6, "local", p.local,
		"remote", p.remote, "sport", p.sport, "dport", p.dport, "mtu", cfg.MTU, "keepalive", cfg.Keepalive.Interval)
	return k, nil
}

func openKernelHandle(ns netns.NsHandle) (*netlink.Handle, error) {
	var (
		h   *netlink.Handle
		err error
	)
	if ns > 0 {
		h, err = netlink.NewHandleAt(ns, unix.NETLINK_ROUTE, unix.NETLINK_GENERIC)
	} else {
		h, err = netlink.NewHandle(unix.NETLINK_ROUTE, unix.NETLINK_GENERIC)
	}
	if err != nil {
		return nil, fmt.Errorf("netlink handle: %w", err)
	}
	return h, nil
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

// isLocalV4 reports whether a is assigned to an interface (behind a NAT the
// offer's client address is the public one, which is not).
func isLocalV4(h *netlink.Handle, a netip.Addr) bool {
	if !a.Is4() {
		return false
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		return false
	}
	for _, ad := range addrs {
		if ip, ok := netip.AddrFromSlice(ad.IP); ok && ip.Unmap() == a {
			return true
		}
	}
	return false
}

// addSit creates the sit device, with fou encapsulation when p has ports.
func addSit(h *netlink.Handle, name string, mtu int, p sitParams, undo *undoStack) error {
	sit := &netlink.Sittun{
		LinkAttrs: netlink.LinkAttrs{Name: name, MTU: mtu},
		Remote:    net.IP(p.remote.AsSlice()),
		Ttl:       kernelTunnelTTL,
		PMtuDisc:  1, // the kernel refuses a fixed TTL without it
	}
	if p.local.IsValid() {
		sit.Local = net.IP(p.local.AsSlice())
	}
	if p.sport != 0 {
		sit.EncapType = tunnelEncapFOU
		// A UDP checksum costs little with offloads and keeps middleboxes
		// that drop zero-checksum datagrams from breaking the tunnel.
		sit.EncapFlags = tunnelEncapFlagCsum
		sit.EncapSport, sit.EncapDport = p.sport, p.dport
	}
	if err := h.LinkAdd(sit); err != nil {
		if errors.Is(err, unix.EOPNOTSUPP) {
			// rtnetlink knows no "sit" kind: module missing or not loadable.
			return fmt.Errorf("create sit device %s: %w: %v", name, ErrNoKernelSupport, err)
		}
		if errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("create sit device %s: a tunnel %v → %v exists already: %w", name, p.local, p.remote, err)
		}
		return fmt.Errorf("create sit device %s: %w", name, err)
	}
	undo.push("device "+name, func() error { return h.LinkDel(sit) })
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
	f := netlink.Fou{Family: netlink.FAMILY_V4, Port: int(port), Protocol: protoIPv6InIPv4, EncapType: netlink.FOU_ENCAP_DIRECT}
	if err := k.nl.FouAdd(f); err != nil {
		// The session socket is gone: no fall-back to userspace from here.
		return fmt.Errorf("add fou port %d (the session socket is already released): %w", port, err)
	}
	k.undo.push(fmt.Sprintf("fou port %d", port), func() error { return k.nl.FouDel(f) })
	return nil
}

func (k *kernel) Name() string         { return k.name }
func (k *kernel) Events() <-chan Event { return k.events }

// Stats reads the device's counters from the kernel; after Close it returns
// the last ones read.
func (k *kernel) Stats() Stats {
	k.mu.Lock()
	k.refreshLocked()
	s := k.last
	k.mu.Unlock()
	s.EventsDropped = k.cnt.eventsDropped.Load()
	if k.prober != nil {
		s.Keepalive = k.prober.stats()
	}
	return s
}

func (k *kernel) refreshLocked() {
	if k.closed {
		return
	}
	l, err := k.nl.LinkByIndex(k.index)
	if err != nil || l.Attrs().Statistics == nil {
		return
	}
	st := l.Attrs().Statistics
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
