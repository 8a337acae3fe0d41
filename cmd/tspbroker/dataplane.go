package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/vishvananda/netlink"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tunnel"
)

// Session types as testbroker.SessionInfo.Type reports them.
const (
	sessV6UDPV4 = "v6udpv4"
	sessV6V4    = "v6v4"
)

// dataPlaneConfig describes the broker's tunnel devices.
type dataPlaneConfig struct {
	ServerV6   netip.Addr   // assigned to the v6udpv4 device
	ServerV4   netip.Addr   // protocol-41 socket bound here when valid
	ClientPool netip.Prefix // routed into the v6udpv4 device
	PrefixPool netip.Prefix // routed into the v6udpv4 device
	V6V4       bool         // also carry v6v4 (raw protocol-41 socket)
	V4V6Pool   netip.Prefix // when valid, also carry v4v6 for this client IPv4 pool (dataplane_v4v6.go)
	Log        *logx.Logger
}

// dataPlane implements testbroker.DataPlane with tunnel.Forwarder.
//
// v6udpv4: the packets travel over the TSP session's own UDP socket, which
// the testbroker owns (FromClient / Session.WriteData). The Forwarder moves
// batches with recvmmsg/sendmmsg and so needs a real socket, not a
// net.PacketConn adapter. Each session therefore gets a loopback relay: a
// UDP socket connected to the Forwarder's loopback socket. The Forwarder
// knows the relay's address as the peer; FromClient writes into the relay
// and a goroutine per relay hands what the Forwarder sends to WriteData.
//
// v6v4: a second Forwarder on a raw protocol-41 socket, peers keyed by the
// client's IPv4. Its device carries no pool routes (they point at the
// v6udpv4 device); each session's /128 and prefix are routed to it.
type dataPlane struct {
	log *logx.Logger

	udp  *tunnel.Forwarder
	hub  *net.UDPConn // the Forwarder's loopback socket
	p41  *tunnel.Forwarder
	p41c *net.IPConn
	v46  *v4v6Plane

	mu       sync.Mutex
	relays   map[uint64]*relay
	v4owner  map[netip.AddrPort]uint64 // protocol-41 peer → newest session
	v4routes map[uint64][]netlink.Route
}

// relay is one v6udpv4 session's loopback socket.
type relay struct {
	conn *net.UDPConn
	ep   netip.AddrPort // its address, the Forwarder's peer
	sess *testbroker.Session
	done chan struct{}
}

func newDataPlane(ctx context.Context, cfg dataPlaneConfig) (_ *dataPlane, err error) {
	d := &dataPlane{
		log:      cfg.Log.With("component", "dataplane"),
		relays:   map[uint64]*relay{},
		v4owner:  map[netip.AddrPort]uint64{},
		v4routes: map[uint64][]netlink.Route{},
	}
	defer func() {
		if err != nil {
			d.Close()
		}
	}()
	d.hub, err = net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, fmt.Errorf("dataplane loopback socket: %w", err)
	}
	d.udp, err = tunnel.NewForwarder(ctx, tunnel.ForwarderConfig{
		Conn:   d.hub,
		IfName: "tsps0",
		Addrs:  []netip.Prefix{netip.PrefixFrom(cfg.ServerV6, 128)},
		Routes: []netip.Prefix{cfg.ClientPool, cfg.PrefixPool},
		Log:    d.log,
	})
	if err != nil {
		return nil, fmt.Errorf("dataplane v6udpv4: %w", err)
	}
	if cfg.V6V4 {
		if d.p41c, err = tunnel.ListenProto41(0, cfg.ServerV4); err != nil {
			return nil, fmt.Errorf("dataplane v6v4: %w", err)
		}
		d.p41, err = tunnel.NewForwarder(ctx, tunnel.ForwarderConfig{Conn: d.p41c, IfName: "tsps41", Log: d.log})
		if err != nil {
			return nil, fmt.Errorf("dataplane v6v4: %w", err)
		}
	}
	if cfg.V4V6Pool.IsValid() {
		if d.v46, err = newV4V6Plane(ctx, cfg.V4V6Pool, d.log); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// peerPrefixes are what a session may use: its /128 and delegated prefix.
func peerPrefixes(info testbroker.SessionInfo) []netip.Prefix {
	ps := []netip.Prefix{netip.PrefixFrom(info.ClientV6, 128)}
	if info.Prefix.IsValid() {
		ps = append(ps, info.Prefix)
	}
	return ps
}

// Established admits the session's addresses to the matching Forwarder.
func (d *dataPlane) Established(s *testbroker.Session) {
	info := s.Info()
	log := d.log.With("session", s.ID(), "type", info.Type, "client", info.ClientV6)
	var err error
	switch {
	case info.Type == sessV6UDPV4 && info.Transport == testbroker.TransportUDP:
		err = d.addRelay(s, info)
	case info.Type == sessV6V4 && d.p41 != nil:
		err = d.addProto41(s, info)
	case info.Type == sessV4V6 && d.v46 != nil:
		err = d.v46.established(s, info)
	default:
		log.Info("no data plane for this session")
		return
	}
	if err != nil {
		log.Error("data plane", "err", err)
		return
	}
	log.Info("data plane peer added", "prefix", info.Prefix)
}

func (d *dataPlane) addRelay(s *testbroker.Session, info testbroker.SessionInfo) error {
	hub := d.hub.LocalAddr().(*net.UDPAddr)
	c, err := net.DialUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, hub)
	if err != nil {
		return fmt.Errorf("relay socket: %w", err)
	}
	r := &relay{conn: c, ep: c.LocalAddr().(*net.UDPAddr).AddrPort(), sess: s, done: make(chan struct{})}
	if err := d.udp.AddPeer(r.ep, peerPrefixes(info)...); err != nil {
		c.Close()
		return err
	}
	d.mu.Lock()
	old := d.relays[s.ID()]
	d.relays[s.ID()] = r
	d.mu.Unlock()
	if old != nil {
		d.dropRelay(old)
	}
	go d.pump(r)
	return nil
}

// pump hands what the Forwarder routed to this session to its client.
func (d *dataPlane) pump(r *relay) {
	defer close(r.done)
	buf := make([]byte, 65536)
	for {
		n, err := r.conn.Read(buf)
		if err != nil {
			if !errors.Is(err, net.ErrClosed) {
				d.log.Debug("relay read", "session", r.sess.ID(), "err", err)
			}
			return
		}
		if err := r.sess.WriteData(buf[:n]); err != nil {
			d.log.Debug("relay to client", "session", r.sess.ID(), "err", err)
		}
	}
}

func (d *dataPlane) dropRelay(r *relay) {
	d.udp.RemovePeer(r.ep)
	r.conn.Close()
	<-r.done
}

func (d *dataPlane) addProto41(s *testbroker.Session, info testbroker.SessionInfo) error {
	ep := netip.AddrPortFrom(info.ClientV4, 0)
	ps := peerPrefixes(info)
	if err := d.p41.AddPeer(ep, ps...); err != nil {
		return err
	}
	link, err := netlink.LinkByName(d.p41.Name())
	if err != nil {
		return fmt.Errorf("protocol-41 device: %w", err)
	}
	var routes []netlink.Route
	for _, p := range ps {
		rt := netlink.Route{LinkIndex: link.Attrs().Index, Dst: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), 128)}}
		// Replace: a newer session for the same addresses takes them over.
		if err := netlink.RouteReplace(&rt); err != nil {
			return fmt.Errorf("route %v to %s: %w", p, d.p41.Name(), err)
		}
		routes = append(routes, rt)
	}
	d.mu.Lock()
	d.v4owner[ep] = s.ID()
	d.v4routes[s.ID()] = routes
	d.mu.Unlock()
	return nil
}

// FromClient feeds a v6udpv4 packet to the Forwarder through the session's
// relay. A loopback send does not block for long.
func (d *dataPlane) FromClient(s *testbroker.Session, pkt []byte) {
	d.mu.Lock()
	r := d.relays[s.ID()]
	d.mu.Unlock()
	if r == nil {
		return
	}
	if _, err := r.conn.Write(pkt); err != nil {
		d.log.Debug("relay to forwarder", "session", s.ID(), "err", err)
	}
}

// Closed forgets the session's peer, unless a newer session took it over.
func (d *dataPlane) Closed(s *testbroker.Session) {
	id := s.ID()
	d.mu.Lock()
	r := d.relays[id]
	delete(d.relays, id)
	routes := d.v4routes[id]
	delete(d.v4routes, id)
	var ep41 netip.AddrPort
	for ep, owner := range d.v4owner {
		if owner == id {
			ep41 = ep
			delete(d.v4owner, ep)
		}
	}
	d.mu.Unlock()
	if d.v46 != nil {
		d.v46.closed(id)
	}
	if r != nil {
		d.dropRelay(r)
		d.log.Info("data plane peer removed", "session", id)
	}
	if ep41.IsValid() {
		d.p41.RemovePeer(ep41)
		for i := range routes {
			_ = netlink.RouteDel(&routes[i]) // gone already if a newer session replaced it
		}
		d.log.Info("data plane peer removed", "session", id)
	}
}

// Close removes the devices and closes the sockets. Call it after the
// server is closed, so that no more sessions arrive.
func (d *dataPlane) Close() {
	d.mu.Lock()
	relays := d.relays
	d.relays = map[uint64]*relay{}
	d.mu.Unlock()
	for _, r := range relays {
		d.dropRelay(r)
	}
	for _, f := range []*tunnel.Forwarder{d.udp, d.p41} {
		if f != nil {
			if err := f.Close(); err != nil {
				d.log.Error("dataplane close", "if", f.Name(), "err", err)
			}
		}
	}
	if d.hub != nil {
		d.hub.Close()
	}
	if d.p41c != nil {
		d.p41c.Close()
	}
	if d.v46 != nil {
		d.v46.close()
	}
}
