package tunnel

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// Set-up steps and tables the IPv6 (6in4, 6in4/UDP) and the v4v6 planes
// share; each plane passes in what its family needs.

// rollbackOn reverts everything when *err is set, adding a failed revert
// to the error. Constructors defer it right after creating the stack.
func (u *undoStack) rollbackOn(err *error) {
	if *err == nil {
		return
	}
	if uerr := u.run(); uerr != nil {
		*err = fmt.Errorf("%w (rollback: %v)", *err, uerr)
	}
}

// tunSetup describes a TUN device to create and configure.
type tunSetup struct {
	Netlink *rtlink.Handle // as in Config; nil: one for NetNS
	NetNS   netns.NsHandle
	IfName  string
	Offload bool
	// TSO4 switches the offloads to IPv4 TCP super-packets (v4v6).
	TSO4 bool
	Plan linkPlan
}

// setUpTUN removes a leftover device of the same name, opens the TUN
// device in its namespace and configures it by s.Plan, pushing the undo of
// each step on undo.
func setUpTUN(s tunSetup, undo *undoStack, log *logx.Logger) (*tunDevice, error) {
	h, owned, err := netlinkHandle(s.Netlink, s.NetNS)
	if err != nil {
		return nil, err
	}
	if owned {
		undo.push("netlink handle", func() error { h.Close(); return nil })
	}
	if err := removeLeftover(h, s.IfName, log); err != nil {
		return nil, err
	}
	var dev *tunDevice
	if err := InNetNS(s.NetNS, func() error {
		var err error
		dev, err = openTUN(s.IfName, s.Offload)
		return err
	}); err != nil {
		return nil, err
	}
	if s.TSO4 && dev.vnet {
		setTSO4(dev)
	}
	undo.push("device "+s.IfName, dev.Close)
	if err := configureLink(h, dev.name, s.Plan, undo); err != nil {
		return nil, err
	}
	return dev, nil
}

// routedPlan is the link plan of a broker device: its addresses, and
// routes into it.
func routedPlan(mtu int, addrs, routes []netip.Prefix) linkPlan {
	plan := linkPlan{MTU: mtu, Addrs: addrs}
	for _, r := range routes {
		plan.Routes = append(plan.Routes, plannedRoute{Dst: r})
	}
	return plan
}

// prefixTable maps inner addresses to the peers (outer endpoints of type
// K) that own them. It is immutable once published; updates copy it, so
// the packet path looks peers up without locks or allocation.
type prefixTable[K comparable] struct {
	byAddr   map[netip.Addr]K // host routes (/128, /32)
	prefixes []prefixRoute[K] // shorter prefixes, longest first
	byPeer   map[K][]netip.Prefix
}

type prefixRoute[K comparable] struct {
	p    netip.Prefix
	peer K
}

func makePrefixTable[K comparable](byPeer map[K][]netip.Prefix) prefixTable[K] {
	t := prefixTable[K]{byAddr: map[netip.Addr]K{}, byPeer: byPeer}
	for peer, ps := range byPeer {
		for _, p := range ps {
			if p.IsSingleIP() {
				t.byAddr[p.Addr()] = peer
			} else {
				t.prefixes = append(t.prefixes, prefixRoute[K]{p, peer})
			}
		}
	}
	slices.SortFunc(t.prefixes, func(a, b prefixRoute[K]) int { return b.p.Bits() - a.p.Bits() })
	return t
}

// route finds the peer for an inner destination.
func (t *prefixTable[K]) route(dst netip.Addr) (K, bool) {
	if peer, ok := t.byAddr[dst]; ok {
		return peer, true
	}
	for _, r := range t.prefixes {
		if r.p.Contains(dst) {
			return r.peer, true
		}
	}
	var none K
	return none, false
}

// accept tells whether peer may send from the inner source src.
func (t *prefixTable[K]) accept(src netip.Addr, peer K) bool {
	for _, p := range t.byPeer[peer] {
		if p.Contains(src) {
			return true
		}
	}
	return false
}

// withPeer returns the peers' prefixes after adding the masked prefixes to
// peer's. A prefix another peer had moves to peer: the newest session for
// an address wins, as on tsps.
func (t *prefixTable[K]) withPeer(peer K, masked []netip.Prefix) map[K][]netip.Prefix {
	m := make(map[K][]netip.Prefix, len(t.byPeer)+1)
	for other, ps := range t.byPeer {
		if other != peer {
			ps = slices.DeleteFunc(slices.Clone(ps), func(p netip.Prefix) bool { return slices.Contains(masked, p) })
		}
		if len(ps) > 0 {
			m[other] = ps
		}
	}
	ps := slices.Clone(m[peer])
	for _, p := range masked {
		if !slices.Contains(ps, p) {
			ps = append(ps, p)
		}
	}
	m[peer] = ps
	return m
}

// withoutPeer returns the peers' prefixes without peer.
func (t *prefixTable[K]) withoutPeer(peer K) map[K][]netip.Prefix {
	m := maps.Clone(t.byPeer)
	delete(m, peer)
	return m
}

// session is the part of a client Tunnel every plane has alike: name,
// events, keepalive prober and the undo stack of its set-up.
type session struct {
	log    *logx.Logger
	name   string
	prober *prober
	cancel context.CancelFunc // stops the prober
	undo   undoStack

	cnt    counters // the kernel plane uses only eventsDropped
	events chan Event
	sink   eventSink
	wg     sync.WaitGroup

	closeOnce sync.Once
	closeErr  error
}

func (s *session) init(cfg Config, log *logx.Logger) {
	s.log, s.name = log, cfg.IfName
	s.events = make(chan Event, 16)
	s.sink = eventSink{ch: s.events, cnt: &s.cnt, now: cfg.Keepalive.Clock.Now}
	s.cancel = func() {}
}

func (s *session) Name() string         { return s.name }
func (s *session) Events() <-chan Event { return s.events }

// setUpKeepalive makes the prober when cfg asks for one, on
// cfg.Keepalive.Conn or else on the socket open returns.
func (s *session) setUpKeepalive(cfg Config, open func() (PingConn, error)) error {
	if !cfg.Keepalive.enabled() {
		return nil
	}
	ping := cfg.Keepalive.Conn
	if ping == nil {
		var err error
		if ping, err = open(); err != nil {
			return err
		}
	}
	s.undo.push("keepalive socket", ping.Close)
	s.prober = newProber(cfg.Keepalive, ping, s.sink.emit, s.log)
	return nil
}

// startKeepalive runs the prober, if any, until s.cancel.
func (s *session) startKeepalive() {
	ctx, cancel := context.WithCancel(context.Background())
	s.cancel = cancel
	if s.prober != nil {
		s.wg.Add(1)
		go func() { defer s.wg.Done(); s.prober.run(ctx) }()
	}
}

// suspect passes an ICMP error about our packets to the broker to the
// prober, which confirms it with probes before anything is reported.
// Without keepalive there is nothing to confirm with: it is only counted.
func (s *session) suspect(err error) {
	if s.prober != nil {
		s.prober.suspect(err)
	}
}

// keepaliveStats adds the prober's figures to st.
func (s *session) keepaliveStats(st Stats) Stats {
	if s.prober != nil {
		st.Keepalive = s.prober.stats()
	}
	return st
}

// pumpState is what the IPv6 engine and the v4v6 pump4 share around their
// packet loops: where they count, how they report, when they stop.
type pumpState struct {
	cnt     *counters
	log     *logx.Logger
	closing *atomic.Bool
	// fail reports an error that stopped a pump.
	fail func(error)
	// unreach, when set, hears of each ICMP error about our packets to
	// the peer that the connected socket reports (on a send or a receive).
	unreach func(error)
}

// run calls once until it fails. On the receiving side (skipTransient) an
// error that only reports an earlier ICMP error for a connected socket
// (peer port closed, no route) is counted and skipped.
func (s *pumpState) run(dir string, once func() error, skipTransient bool) {
	for {
		err := once()
		if err == nil {
			continue
		}
		if skipTransient && transientRecvErr(err) && !s.closing.Load() {
			if e := (syscall.Errno)(0); errors.As(err, &e) && unreachErrno(e) {
				s.noteUnreach(e)
			} else {
				s.cnt.rxErrors.Add(1)
			}
			continue
		}
		s.stop(dir, err)
		return
	}
}

// noteUnreach counts an ICMP error the socket reported (e, 0 if none) and
// passes it on.
func (s *pumpState) noteUnreach(e syscall.Errno) {
	if e == 0 {
		return
	}
	s.cnt.unreach.Add(1)
	if s.unreach != nil {
		s.unreach(e)
	}
}

// stop ends a pump: quietly when the tunnel is closing, else reported.
func (s *pumpState) stop(dir string, err error) {
	if s.closing.Load() {
		return
	}
	s.log.Error("tunnel pump stopped", "direction", dir, "err", err)
	if s.fail != nil {
		s.fail(fmt.Errorf("%s: %w", dir, err))
	}
}

// countTx counts a flushed send batch; bytes include refused datagrams,
// which are rare.
func (s *pumpState) countTx(sent, failed int, bytes uint64) {
	if sent > 0 {
		s.cnt.txPackets.Add(uint64(sent))
	}
	if bytes > 0 {
		s.cnt.txBytes.Add(bytes)
	}
	if failed > 0 {
		s.cnt.txErrors.Add(uint64(failed))
	}
}

// countRx counts a write of pkts packets (bytes in all) to the device.
func (s *pumpState) countRx(pkts, failed int, bytes uint64) {
	if pkts > failed {
		s.cnt.rxPackets.Add(uint64(pkts - failed))
	}
	s.cnt.rxBytes.Add(bytes)
	if failed > 0 {
		s.cnt.rxErrors.Add(uint64(failed))
	}
}
