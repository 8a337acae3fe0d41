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

// ForwarderV4V6Config describes the broker side of userspace v4v6 tunnels.
type ForwarderV4V6Config struct {
	// Conn is the broker's unconnected raw IPv6 protocol-4 socket from
	// ListenProto4. The caller keeps it.
	Conn net.PacketConn

	IfName string // default "tsps4"
	MTU    int    // default 1280
	// Addrs are assigned to the device, e.g. the broker's inner IPv4/32.
	Addrs []netip.Prefix
	// Routes are routed into the device, e.g. the client IPv4 pool.
	Routes []netip.Prefix

	NetNS     netns.NsHandle // as in Config
	Netlink   *rtlink.Handle // as in Config
	Log       *logx.Logger
	BatchSize int
	// DisableOffload: as in Config.
	DisableOffload bool
}

// ForwarderV4V6 is the broker's v4v6 data plane: one TUN device carrying
// IPv4, many clients on one raw IPv6 socket. Packets from the device go to
// the client whose IPv4 prefixes hold the destination; packets from a
// client go into the device only when their inner source is one of its
// prefixes.
type ForwarderV4V6 struct {
	log  *logx.Logger
	conn net.PacketConn
	dev  *tunDevice
	pump *pump4
	undo undoStack

	mu    sync.Mutex // serialises table updates; readers never lock
	peers atomic.Pointer[peer4Table]

	cnt     counters
	closing atomic.Bool
	wg      sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

// peer4Table maps inner IPv4 prefixes to clients' outer IPv6 addresses.
type peer4Table = prefixTable[netip.Addr]

func buildTable4(byPeer map[netip.Addr][]netip.Prefix) *peer4Table {
	t := makePrefixTable(byPeer)
	return &t
}

// NewForwarderV4V6 creates and configures the device and starts the pumps.
// ctx bounds only the set-up.
func NewForwarderV4V6(ctx context.Context, cfg ForwarderV4V6Config) (_ *ForwarderV4V6, err error) {
	if cfg.Conn == nil {
		return nil, errors.New("v4v6 forwarder: no socket")
	}
	if cfg.IfName == "" {
		cfg.IfName = "tsps4"
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
	f := &ForwarderV4V6{conn: cfg.Conn, log: cfg.Log.With("if", cfg.IfName, "side", "broker", "mode", "v4v6")}
	f.peers.Store(buildTable4(map[netip.Addr][]netip.Prefix{}))
	defer f.undo.rollbackOn(&err)
	f.dev, err = setUpTUN(tunSetup{Netlink: cfg.Netlink, NetNS: cfg.NetNS, IfName: cfg.IfName,
		Offload: !cfg.DisableOffload, TSO4: true, Plan: routedPlan(cfg.MTU, cfg.Addrs, cfg.Routes)}, &f.undo, f.log)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("v4v6 forwarder set-up: %w", err)
	}
	setSocketBuffers(cfg.Conn, socketBuffer, f.log)
	if f.pump, err = newPump4(f.dev, cfg.Conn, cfg.BatchSize, cfg.MTU); err != nil {
		return nil, fmt.Errorf("v4v6 forwarder socket: %w", err)
	}
	f.pump.cnt, f.pump.log, f.pump.closing = &f.cnt, f.log, &f.closing
	f.pump.peers = &f.peers
	f.pump.fail = func(err error) { f.log.Error("v4v6 forwarder stopped", "err", err) }
	f.pump.start(&f.wg)
	return f, nil
}

// Name is the device name.
func (f *ForwarderV4V6) Name() string { return f.dev.name }

// AddPeer routes IPv4 prefixes (a client's /32) to the client at the outer
// IPv6 address peer and lets it send from them. A prefix another client
// had moves to peer: the newest session for an address wins.
func (f *ForwarderV4V6) AddPeer(peer netip.Addr, prefixes ...netip.Prefix) error {
	if !peer.Is6() || peer.Is4In6() {
		return fmt.Errorf("v4v6 forwarder peer %v is not an IPv6 address", peer)
	}
	masked := make([]netip.Prefix, len(prefixes))
	for i, p := range prefixes {
		if !p.IsValid() || !p.Addr().Is4() {
			return fmt.Errorf("v4v6 forwarder peer %v: %v is not an IPv4 prefix", peer, p)
		}
		masked[i] = p.Masked()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers.Store(buildTable4(f.peers.Load().withPeer(peer, masked)))
	return nil
}

// RemovePeer forgets the client at peer.
func (f *ForwarderV4V6) RemovePeer(peer netip.Addr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.peers.Store(buildTable4(f.peers.Load().withoutPeer(peer)))
}

// Stats counts the packets of all clients; Tx is towards the clients.
func (f *ForwarderV4V6) Stats() Stats { return f.cnt.snapshot() }

// Close stops the pumps and removes the device and what was configured on
// it. The socket stays open, without deadlines.
func (f *ForwarderV4V6) Close() error {
	f.closeOnce.Do(func() {
		f.closing.Store(true)
		_ = f.conn.SetDeadline(time.Unix(1, 0)) // wakes the socket pump
		f.closeErr = f.undo.run()
		f.wg.Wait()
		_ = f.conn.SetDeadline(time.Time{})
	})
	return f.closeErr
}
