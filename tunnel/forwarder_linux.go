package tunnel

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// ForwarderConfig describes the broker side of userspace tunnels.
type ForwarderConfig struct {
	// Conn is the broker's unconnected socket: the TSP UDP socket for
	// v6udpv4 (control and data share it, spec §1.6) or a raw protocol-41
	// socket from ListenProto41 for v6v4. The caller keeps it.
	Conn net.PacketConn

	IfName string // default "tsps0"
	MTU    int    // default 1280
	// Addrs are assigned to the device, e.g. the broker's tunnel IPv6/128.
	Addrs []netip.Prefix
	// Routes are routed into the device, e.g. the client address pool.
	Routes []netip.Prefix

	// Control receives the TSP control datagrams (first nibble 0xF) from
	// any source, header included, on the socket reader's goroutine. msg
	// is only valid during the call; answer with f.WriteControl and admit
	// the client with f.AddPeer.
	Control func(f *Forwarder, from netip.AddrPort, msg []byte)

	NetNS     netns.NsHandle // as in Config
	Netlink   *rtlink.Handle // as in Config
	Log       *logx.Logger
	BatchSize int
	// DisableOffload: as in Config.
	DisableOffload bool
}

// Forwarder is the broker's data plane: it pumps between one TUN device and
// many peers on one socket. Packets from the device go to the peer whose
// prefixes hold the destination; packets from a peer go into the device only
// when their source is one of that peer's prefixes (as tsps checks).
type Forwarder struct {
	cfg  ForwarderConfig
	log  *logx.Logger
	dev  *tunDevice
	eng  *engine
	undo undoStack

	mu    sync.Mutex // serialises table updates; readers never lock
	peers atomic.Pointer[peerTable]

	cnt     counters
	closing atomic.Bool
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// peerTable is the IPv6 planes' table: peers are UDP (or, port 0,
// protocol-41) endpoints, and route and accept take the IPv6 packet.
type peerTable struct {
	prefixTable[netip.AddrPort]
}

func buildTable(byPeer map[netip.AddrPort][]netip.Prefix) *peerTable {
	return &peerTable{makePrefixTable(byPeer)}
}

// route finds the peer for an IPv6 packet's destination.
func (t *peerTable) route(pkt []byte) (netip.AddrPort, bool) {
	return t.prefixTable.route(netip.AddrFrom16([16]byte(pkt[24:40])))
}

// accept tells whether the peer at from may send this packet.
func (t *peerTable) accept(pkt []byte, from netip.AddrPort) bool {
	return t.prefixTable.accept(netip.AddrFrom16([16]byte(pkt[8:24])), from)
}

// NewForwarder creates and configures the device and starts the pumps.
// ctx bounds only the set-up.
func NewForwarder(ctx context.Context, cfg ForwarderConfig) (_ *Forwarder, err error) {
	if cfg.Conn == nil {
		return nil, errors.New("forwarder: no socket")
	}
	if cfg.IfName == "" {
		cfg.IfName = "tsps0"
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = defaultBatch
	}
	if cfg.Log == nil {
		cfg.Log = logx.Discard()
	}
	f := &Forwarder{cfg: cfg, log: cfg.Log.With("if", cfg.IfName, "side", "broker")}
	f.peers.Store(buildTable(map[netip.AddrPort][]netip.Prefix{}))
	defer f.undo.rollbackOn(&err)

	f.dev, err = setUpTUN(tunSetup{Netlink: cfg.Netlink, NetNS: cfg.NetNS, IfName: cfg.IfName,
		Offload: !cfg.DisableOffload, Plan: routedPlan(cfg.MTU, cfg.Addrs, cfg.Routes)}, &f.undo, f.log)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("forwarder set-up: %w", err)
	}
	setSocketBuffers(cfg.Conn, socketBuffer, f.log)
	f.eng, err = newEngine(f.dev, cfg.Conn, engineConfig{batch: cfg.BatchSize, mtu: cfg.MTU, offload: !cfg.DisableOffload})
	if err != nil {
		return nil, fmt.Errorf("forwarder socket: %w", err)
	}
	f.eng.cnt, f.eng.log, f.eng.closing = &f.cnt, f.log, &f.closing
	f.eng.peers = &f.peers
	if cfg.Control != nil {
		f.eng.control = func(from netip.AddrPort, msg []byte) { cfg.Control(f, from, msg) }
	}
	f.eng.fail = func(err error) { f.log.Error("forwarder stopped", "err", err) }

	f.wg.Add(2)
	go func() { defer f.wg.Done(); f.eng.devToNet() }()
	go func() { defer f.wg.Done(); f.eng.netToDev() }()
	return f, nil
}

// Name is the device name.
func (f *Forwarder) Name() string { return f.dev.name }

// AddPeer routes prefixes (a client's /128, a delegated prefix) to the peer
// at ep (port 0 for protocol 41) and lets it send from them. Prefixes are
// added to those the peer has. A prefix another peer had moves to ep: the
// newest session for an address wins, as on tsps.
func (f *Forwarder) AddPeer(ep netip.AddrPort, prefixes ...netip.Prefix) error {
	masked := make([]netip.Prefix, len(prefixes))
	for i, p := range prefixes {
		if !p.IsValid() || !p.Addr().Is6() || p.Addr().Is4In6() {
			return fmt.Errorf("forwarder peer %v: %v is not an IPv6 prefix", ep, p)
		}
		masked[i] = p.Masked()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers.Store(buildTable(f.peers.Load().withPeer(ep, masked)))
	return nil
}

// RemovePeer forgets the peer at ep.
func (f *Forwarder) RemovePeer(ep netip.AddrPort) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers.Store(buildTable(f.peers.Load().withoutPeer(ep)))
}

// WriteControl sends a TSP control datagram to a peer over the shared
// socket.
func (f *Forwarder) WriteControl(to netip.AddrPort, msg []byte) error {
	if _, err := f.cfg.Conn.WriteTo(msg, net.UDPAddrFromAddrPort(to)); err != nil {
		return fmt.Errorf("control to %v: %w", to, err)
	}
	return nil
}

// Stats counts the packets of all peers; Tx is towards the peers.
func (f *Forwarder) Stats() Stats { return f.cnt.snapshot() }

// Close stops the pumps and removes the device and what was configured on
// it. The socket stays open, without deadlines.
func (f *Forwarder) Close() error {
	f.closeOnce.Do(func() {
		f.closing.Store(true)
		_ = f.cfg.Conn.SetDeadline(time.Unix(1, 0)) // wakes the pumps
		f.closeErr = f.undo.run()
		f.wg.Wait()
		_ = f.cfg.Conn.SetDeadline(time.Time{})
	})
	return f.closeErr
}
