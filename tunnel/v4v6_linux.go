package tunnel

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// v4v6 (spec §1.7) carries IPv4 packets inside IPv6 (RFC 2473 without an
// encapsulation limit option, next header 4): the endpoints are IPv6, the
// inner addresses and the keepalive target IPv4.

// protoIPIP6 is IPPROTO_IPIP as an IPv6 payload.
const protoIPIP6 = "ip6:4"

const ipv4HeaderLen = 20

// ListenProto4 opens an unconnected raw IPv6 socket for protocol 4 in ns
// (<= 0: the current one), bound to local if valid: the broker side of
// v4v6, where one socket serves every client (see ForwarderV4V6).
func ListenProto4(ns netns.NsHandle, local netip.Addr) (*net.IPConn, error) {
	return listenRaw(ns, protoIPIP6, local)
}

// dialProto4 opens the client's protocol-4 socket connected to the broker,
// so the kernel only hands it packets from there. local (the address the
// broker saw) is tried first, then whatever source the route picks.
func dialProto4(ns netns.NsHandle, local, remote netip.Addr) (*net.IPConn, error) {
	return dialRaw(ns, protoIPIP6, local, remote)
}

// ipv4Packet returns p cut to the total length its IPv4 header announces,
// or false if p is not a well-formed IPv4 packet.
func ipv4Packet(p []byte) ([]byte, bool) {
	if len(p) < ipv4HeaderLen || p[0]>>4 != 4 {
		return nil, false
	}
	hl := int(p[0]&0x0f) * 4
	tl := int(binary.BigEndian.Uint16(p[2:4]))
	if hl < ipv4HeaderLen || tl < hl || tl > len(p) {
		return nil, false
	}
	return p[:tl], true
}

// pump4 moves IPv4 packets between a TUN device and a raw IPv6 protocol-4
// socket in batches. With a virtio-net device it segments the kernel's TCP
// super-packets on the way out and merges received segments on the way in
// (v4v6_offload.go); a raw socket has no GSO/GRO, so one datagram is one
// packet on the socket side either way.
type pump4 struct {
	pumpState
	dev  *tunDevice
	conn *batchConn
	// peers routes by inner IPv4 among many clients (broker side); nil for
	// a client on a connected socket.
	peers *atomic.Pointer[peer4Table]

	// device → socket
	arena   []byte
	maxPkt  int
	pkts    [][]byte
	seg     segmenter
	txBytes uint64

	// socket → device
	co *coalescer4
	// plain device: one write per packet
	parts  [][]byte
	ends   []int
	counts []int // all 1
}

// pump4Messages is the socket batch with offloads: one 64 KiB
// super-packet alone is about 50 datagrams.
const pump4Messages = 256

func newPump4(dev *tunDevice, c any, batch, mtu int) (*pump4, error) {
	size := bufSizeFor(mtu)
	msgs := batch
	if dev.vnet {
		msgs = max(batch, pump4Messages)
	}
	conn, err := newBatchConn(c, msgs, 2*msgs, size, false)
	if err != nil {
		return nil, err
	}
	p := &pump4{
		dev:    dev,
		conn:   conn,
		arena:  make([]byte, batch*size),
		maxPkt: size,
		pkts:   make([][]byte, batch),
		parts:  make([][]byte, 0, conn.maxRx),
		ends:   make([]int, 0, conn.maxRx),
		counts: make([]int, conn.maxRx),
	}
	for i := range p.counts {
		p.counts[i] = 1
	}
	p.seg = segmenter{arena: make([]byte, segmentHeader), flush: p.flushTx}
	dev.wiovs = make([]unix.Iovec, 0, conn.maxRx)
	if dev.vnet {
		p.arena, p.maxPkt = make([]byte, vnetArena), maxDevPacket
		p.co = newCoalescer4(conn.maxRx)
		dev.wiovs = make([]unix.Iovec, 0, 2*conn.maxRx)
	}
	return p, nil
}

func (p *pump4) start(wg *sync.WaitGroup) {
	wg.Add(2)
	go func() { defer wg.Done(); p.run("device → socket", p.devToNetOnce, false) }()
	// A connected raw socket reports an earlier ICMPv6 error (broker
	// unreachable) on the next receive.
	go func() { defer wg.Done(); p.run("socket → device", p.netToDevOnce, true) }()
}

// devToNetOnce sends what the device has queued, cut into MTU-sized
// packets where the kernel handed over a super-packet.
func (p *pump4) devToNetOnce() error {
	n, err := p.dev.read(p.arena, p.maxPkt, p.pkts)
	if err != nil {
		return err
	}
	var table *peer4Table
	if p.peers != nil {
		table = p.peers.Load()
	}
	var dropped uint64
	for _, pkt := range p.pkts[:n] {
		var vh vnetHdr
		if p.dev.vnet {
			if len(pkt) < vnetHdrLen {
				dropped++
				continue
			}
			vh = decodeVnetHdr(pkt)
			pkt = pkt[vnetHdrLen:]
		}
		pkt, ok := ipv4Packet(pkt)
		if !ok {
			dropped++ // only IPv4 goes into an IPv4 tunnel
			continue
		}
		var to netip.AddrPort
		if table != nil {
			peer, ok := table.route(netip.AddrFrom4([4]byte(pkt[16:20])))
			if !ok {
				dropped++
				continue
			}
			to = netip.AddrPortFrom(peer, 0)
		}
		if vh.gsoType != gsoNone {
			_, b, err := p.seg.segment4(p.conn, vh, pkt, to)
			p.txBytes += uint64(b)
			if errors.Is(err, errBadOffload) {
				dropped++
				continue
			}
			if err != nil {
				return err
			}
			continue
		}
		if vh.flags&vnetNeedsCsum != 0 && !finishChecksum4(pkt, int(vh.csumStart), int(vh.csumOffset)) {
			dropped++
			continue
		}
		if !p.conn.room(1) {
			if err := p.flushTx(); err != nil {
				return err
			}
		}
		p.conn.startMsg(to)
		p.conn.appendPart(pkt)
		p.conn.endMsg(0)
		p.txBytes += uint64(len(pkt))
	}
	if dropped > 0 {
		p.cnt.dropped.Add(dropped)
	}
	return p.flushTx()
}

// flushTx sends the queued datagrams and frees the segment headers.
func (p *pump4) flushTx() error {
	sent, failed, err := p.conn.send()
	p.noteUnreach(p.conn.takeUnreach())
	p.seg.reset()
	p.countTx(sent, failed, p.txBytes)
	p.txBytes = 0
	return err
}

// netToDevOnce writes the received IPv4 packets to the device; a raw IPv6
// socket hands over the payload only, so each datagram is one packet.
func (p *pump4) netToDevOnce() error {
	n, err := p.conn.recv()
	if err != nil {
		return err
	}
	var table *peer4Table
	if p.peers != nil {
		table = p.peers.Load()
	}
	r := &p.conn.r
	p.parts, p.ends = p.parts[:0], p.ends[:0]
	var dropped, bytes uint64
	for i := 0; i < n; i++ {
		pkt, ok := ipv4Packet(r.msgs[i]) // nil when truncated
		if !ok {
			dropped++
			continue
		}
		if table != nil && !table.accept(netip.AddrFrom4([4]byte(pkt[12:16])), r.from[i].Addr()) {
			dropped++ // unknown peer, or a source it may not use
			continue
		}
		if p.co != nil {
			p.co.add(pkt)
			continue
		}
		p.parts = append(p.parts, pkt)
		p.ends = append(p.ends, len(p.parts))
		bytes += uint64(len(pkt))
	}
	if dropped > 0 {
		p.cnt.dropped.Add(dropped)
	}
	parts, ends, counts := p.parts, p.ends, p.counts[:len(p.parts)]
	if p.co != nil {
		p.co.finish()
		parts, ends, counts, bytes = p.co.parts, p.co.ends, p.co.pkts, p.co.bytes
	}
	failed, err := p.dev.write(parts, ends, counts)
	var pkts int
	for _, c := range counts {
		pkts += c
	}
	if p.co != nil {
		p.co.reset()
	}
	p.countRx(pkts, failed, bytes)
	return err
}

// userspaceV4V6 is the userspace v4v6 Tunnel: TUN ⇄ pump4 ⇄ raw IPv6
// protocol-4 socket connected to the broker, plus the ICMPv4 prober.
type userspaceV4V6 struct {
	session
	dev     *tunDevice
	pump    *pump4
	closing atomic.Bool
}

// newUserspaceV4V6 builds the userspace v4v6 data plane. On error nothing
// it added remains; ctx bounds only the set-up.
func newUserspaceV4V6(ctx context.Context, cfg Config) (_ Tunnel, err error) {
	cfg, err = cfg.withDefaults()
	if err != nil {
		return nil, fmt.Errorf("tunnel config: %w", err)
	}
	if cfg.Type != V4V6 {
		return nil, fmt.Errorf("userspace v4v6 for a %v tunnel: %w", cfg.Type, ErrUnsupported)
	}
	u := &userspaceV4V6{}
	u.init(cfg, cfg.Log.With("if", cfg.IfName, "mode", cfg.Type.String(), "plane", "userspace"))
	defer u.undo.rollbackOn(&err)

	u.dev, err = setUpTUN(tunSetup{Netlink: cfg.Netlink, NetNS: cfg.NetNS, IfName: cfg.IfName,
		Offload: !cfg.DisableOffload, TSO4: true, Plan: planFor(cfg)}, &u.undo, u.log)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("tunnel set-up: %w", err)
	}
	conn, err := dialProto4(cfg.NetNS, cfg.LocalEndpoint, cfg.RemoteEndpoint)
	if err != nil {
		return nil, err
	}
	u.undo.push("protocol-4 socket", conn.Close)
	setSocketBuffers(conn, socketBuffer, u.log)
	if u.pump, err = newPump4(u.dev, conn, cfg.BatchSize, cfg.MTU); err != nil {
		return nil, fmt.Errorf("tunnel socket: %w", err)
	}
	u.pump.cnt, u.pump.log, u.pump.closing = &u.cnt, u.log, &u.closing
	u.pump.fail = func(err error) { u.sink.emit(Event{Kind: IOError, Err: err}) }
	u.pump.unreach = u.suspect

	if err := u.setUpKeepalive(cfg, func() (PingConn, error) {
		return NewPingConn4(cfg.NetNS, u.dev.name, cfg.Local.Addr(), cfg.Keepalive.Target)
	}); err != nil {
		return nil, err
	}

	u.pump.start(&u.wg)
	u.startKeepalive()
	u.log.Info("tunnel up", "client", cfg.Local, "server", cfg.Remote, "local", connLocalAddr(conn),
		"remote", cfg.RemoteEndpoint, "mtu", cfg.MTU, "keepalive", cfg.Keepalive.Interval)
	return u, nil
}

func (u *userspaceV4V6) Stats() Stats { return u.keepaliveStats(u.cnt.snapshot()) }

// Close stops the pumps and the prober and removes socket, routes,
// address and device.
func (u *userspaceV4V6) Close() error {
	u.closeOnce.Do(func() {
		u.closing.Store(true)
		u.cancel()
		u.closeErr = u.undo.run() // closing socket and device wakes the pumps
		u.wg.Wait()
		close(u.events)
		u.log.Info("tunnel down")
	})
	return u.closeErr
}

func (u *userspaceV4V6) plane() string { return PlaneUserspace }
