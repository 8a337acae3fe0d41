package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"sync"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tunnel"
)

const sessV4V6 = "v4v6"

// v4v6Plane carries v4v6 sessions: a TUN device (tsps4) holding the
// broker's inner IPv4 with the client pool routed into it, and one raw IPv6
// protocol-4 socket for every client. Clients are keyed by the outer IPv6
// source the session came from, which is what the offer told them to send
// from.
type v4v6Plane struct {
	log  *logx.Logger
	conn *net.IPConn
	fwd  *tunnel.ForwarderV4V6

	mu    sync.Mutex
	owner map[netip.Addr]uint64 // client outer IPv6 → newest session
}

// newV4V6Plane needs the server's inner IPv4 (first host of pool4, as the
// testbroker offers it) and the pool.
func newV4V6Plane(ctx context.Context, pool4 netip.Prefix, log *logx.Logger) (_ *v4v6Plane, err error) {
	p := &v4v6Plane{log: log, owner: map[netip.Addr]uint64{}}
	// Unbound: the broker may listen on several IPv6 addresses; the
	// kernel's source choice towards a client is the address it reached.
	if p.conn, err = tunnel.ListenProto4(0, netip.Addr{}); err != nil {
		return nil, fmt.Errorf("dataplane v4v6: %w", err)
	}
	p.fwd, err = tunnel.NewForwarderV4V6(ctx, tunnel.ForwarderV4V6Config{
		Conn:   p.conn,
		IfName: "tsps4",
		Addrs:  []netip.Prefix{netip.PrefixFrom(pool4.Addr().Next(), 32)},
		Routes: []netip.Prefix{pool4.Masked()},
		Log:    log,
	})
	if err != nil {
		p.conn.Close()
		return nil, fmt.Errorf("dataplane v4v6: %w", err)
	}
	return p, nil
}

func (p *v4v6Plane) established(s *testbroker.Session, info testbroker.SessionInfo) error {
	if err := p.fwd.AddPeer(info.ClientV6, netip.PrefixFrom(info.ClientV4, 32)); err != nil {
		return err
	}
	p.mu.Lock()
	p.owner[info.ClientV6] = s.ID()
	p.mu.Unlock()
	return nil
}

// closed forgets the session's client unless a newer session took it over.
func (p *v4v6Plane) closed(id uint64) {
	p.mu.Lock()
	var peer netip.Addr
	for a, owner := range p.owner {
		if owner == id {
			peer = a
			delete(p.owner, a)
		}
	}
	p.mu.Unlock()
	if peer.IsValid() {
		p.fwd.RemovePeer(peer)
		p.log.Info("data plane peer removed", "session", id)
	}
}

func (p *v4v6Plane) close() {
	if err := p.fwd.Close(); err != nil {
		p.log.Error("dataplane close", "if", p.fwd.Name(), "err", err)
	}
	p.conn.Close()
}
