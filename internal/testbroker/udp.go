package testbroker

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"
)

// udpListener is one UDP socket and its sessions, keyed by client address
// and port. The map is guarded by the server's mutex.
type udpListener struct {
	conn     net.PacketConn
	local    netip.Addr
	sessions map[netip.AddrPort]*Session
}

func (l *udpListener) write(b []byte, to netip.AddrPort) error {
	var err error
	if uc, ok := l.conn.(*net.UDPConn); ok {
		_, err = uc.WriteToUDPAddrPort(b, to)
	} else {
		_, err = l.conn.WriteTo(b, net.UDPAddrFromAddrPort(to))
	}
	if err != nil {
		return fmt.Errorf("testbroker: send to %s: %w", to, err)
	}
	return nil
}

func (l *udpListener) read(buf []byte) (int, netip.AddrPort, error) {
	if uc, ok := l.conn.(*net.UDPConn); ok {
		return uc.ReadFromUDPAddrPort(buf)
	}
	n, from, err := l.conn.ReadFrom(buf)
	return n, addrPortOf(from), err
}

// maxDatagram is the read buffer: the largest UDP payload, so that nothing
// is truncated silently. TSP messages above maxMessage are refused.
const maxDatagram = 65535

// ServeUDP answers TSP over RUDP on conn until Close (then it returns
// ErrServerClosed) or a read error.
func (s *Server) ServeUDP(conn net.PacketConn) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrServerClosed
	}
	l := &udpListener{
		conn:     conn,
		local:    addrPortOf(conn.LocalAddr()).Addr(),
		sessions: make(map[netip.AddrPort]*Session),
	}
	s.udp[l] = struct{}{}
	s.wg.Add(2) // this loop and its sweeper
	s.mu.Unlock()
	defer s.wg.Done()

	stop := make(chan struct{})
	go s.sweepUDP(l, stop)
	defer func() {
		close(stop)
		s.dropListener(l)
	}()

	buf := make([]byte, maxDatagram)
	for {
		n, from, err := l.read(buf)
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			return fmt.Errorf("testbroker: UDP read on %s: %w", conn.LocalAddr(), err)
		}
		s.handleDatagram(l, from, buf[:n])
	}
}

// dropListener forgets a listener whose loop has ended.
func (s *Server) dropListener(l *udpListener) {
	s.mu.Lock()
	var owed []*Session
	for from, c := range l.sessions {
		if s.retire(c) {
			owed = append(owed, c)
		}
		delete(l.sessions, from)
		s.release(from.Addr())
	}
	delete(s.udp, l)
	s.mu.Unlock()
	s.notifyClosed(owed)
}

// handleDatagram is the whole UDP side of the protocol for one datagram: b
// is only valid during the call.
func (s *Server) handleDatagram(l *udpListener, from netip.AddrPort, b []byte) {
	from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
	now := time.Now()

	s.mu.Lock()
	s.stats.Datagrams++
	if len(b) < rudpHeaderLen {
		// Neither a TSP message nor an IPv6 packet: nothing to echo.
		s.mu.Unlock()
		return
	}
	control := b[0]>>4 == 0xF
	if s.st.strictRUDP && b[3]>>4 != 0xF {
		control = false
	}
	hdr, payload := b[:rudpHeaderLen], b[rudpHeaderLen:]
	word := binary.BigEndian.Uint32(hdr)

	c := l.sessions[from]
	if c == nil {
		if !control {
			s.stats.StatusErrors++
			s.mu.Unlock()
			s.send(l, from, statusErrorDatagram(now), 0)
			return
		}
		if !s.admit(from.Addr()) {
			s.mu.Unlock()
			s.st.log.Warn("session limit reached", "client", from)
			if hasPrefixFold(payload, "VERSION=") {
				s.send(l, from, append(slices.Clone(hdr), statusLine(stBusy)...), 0)
			}
			return
		}
		c = s.newSession(TransportUDP, from, l.local)
		c.udp = l
		l.sessions[from] = c
	}
	c.lastRecv = now
	c.inbound++
	if n := c.inbound; slices.Contains(c.faults.DropInbound, n) {
		s.stats.DroppedInbound++
		s.mu.Unlock()
		s.st.log.Info("fault: inbound datagram dropped", "session", c.id, "n", n)
		return
	}

	var replaced []*Session // ended here; DataPlane.Closed owed
	// A retransmission repeats the header word and the payload. The word
	// alone is not enough: a new socket that got the same port restarts at
	// the same sequence with a different message.
	retransmit := c.haveLast && word == c.lastWord && bytes.Equal(payload, c.lastReq)
	if control && c.state != stateVersion && hasPrefixFold(payload, "VERSION=") && !retransmit {
		// A new session from an address and port that already have one:
		// the client retried on a new socket that got the same port, or
		// its NAT kept the mapping. A network duplicate of the session's
		// own VERSION would look the same (a new RUDP engine restarts at
		// the same sequence, with a timestamp near 0), but only reordering
		// can make one arrive after later messages; the new session wins.
		s.st.log.Info("new session replaces the one on the same address and port", "session", c.id, "client", from)
		if s.retire(c) {
			replaced = append(replaced, c)
		}
		n := s.newSession(TransportUDP, from, l.local)
		n.udp, n.inbound, n.lastRecv = l, 1, now
		l.sessions[from] = n
		c = n
	}
	if c.state == stateSilent {
		s.mu.Unlock()
		s.notifyClosed(replaced)
		return
	}

	if !control {
		if c.state == stateEstablished && c.info.Type == typeV6UDPV4 {
			s.mu.Unlock()
			s.fromClient(c, b)
			return
		}
		// Data outside an established v6udpv4 tunnel: the client has lost
		// its session (tsps's answer, spec §13.3).
		if s.retire(c) {
			replaced = append(replaced, c)
		}
		s.stats.StatusErrors++
		s.mu.Unlock()
		s.st.log.Info("data on a session in the wrong state", "session", c.id, "client", from)
		s.send(l, from, statusErrorDatagram(now), 0)
		s.notifyClosed(replaced)
		return
	}

	if retransmit {
		// A retransmission: the reply was lost or is late. Send it again,
		// behind this copy's header (its fresh timestamp keeps the client's
		// RTT estimate honest), without running the state machine.
		s.stats.Retransmits++
		s.sendReply(c, hdr, c.lastReply, nil)
		return
	}
	if c.state == stateDone {
		// tsps would have forgotten the session, and a fresh one refuses
		// anything but VERSION: answer so that the client fails fast.
		c.haveLast, c.lastWord, c.lastReq = true, word, slices.Clone(payload)
		c.lastReply = statusLine(stBadRequest)
		s.sendReply(c, hdr, c.lastReply, nil)
		return
	}
	if c.haveLast && word < c.lastWord && c.state != stateEstablished {
		// A stale duplicate of an earlier message: nobody waits for its
		// reply any more.
		s.mu.Unlock()
		return
	}
	c.haveLast, c.lastWord, c.lastReq = true, word, slices.Clone(payload)

	var o outcome
	switch {
	case c.state == stateEstablished:
		o.reply = slices.Clone(payload) // TSP-level keepalive: echo it
	case len(payload) == 0 && len(c.pending) > 0:
		o.reply = c.pending[0]
		c.pending = c.pending[1:]
	case len(payload) == 0 && c.state != stateAuthFinal:
		// A poll with nothing to collect gets an empty ack.
	case len(payload) > maxMessage:
		o = s.fail(c, stBadRequest, fmt.Sprintf("%d-byte message", len(payload)))
	default:
		o = s.process(c, payload)
		c.pending = o.more
	}
	if o.silent {
		s.mu.Unlock()
		s.notifyClosed(replaced)
		return
	}
	c.lastReply = o.reply
	if o.established {
		replaced = append(replaced, s.establish(c)...)
	}
	s.sendReply(c, hdr, o.reply, func() {
		s.notifyClosed(replaced)
		if o.established {
			s.notifyEstablished(c)
		}
	})
}

// sendReply counts a reply against Faults.DropReply, unlocks s.mu, sends it
// unless dropped, then runs after.
func (s *Server) sendReply(c *Session, hdr, payload []byte, after func()) {
	c.replies++
	drop := slices.Contains(c.faults.DropReply, c.replies)
	if drop {
		s.stats.DroppedReplies++
	}
	delay := c.faults.Delay
	n := c.replies
	s.mu.Unlock()

	if drop {
		s.st.log.Info("fault: reply dropped", "session", c.id, "n", n)
	} else {
		msg := make([]byte, 0, len(hdr)+len(payload))
		msg = append(append(msg, hdr...), payload...)
		s.send(c.udp, c.remote, msg, delay)
	}
	if after != nil {
		after()
	}
}

// send writes a datagram now, or after delay without holding up the read
// loop.
func (s *Server) send(l *udpListener, to netip.AddrPort, b []byte, delay time.Duration) {
	if delay <= 0 {
		if err := l.write(b, to); err != nil {
			s.st.log.Debug("send", "err", err)
		}
		return
	}
	s.wg.Add(1) // the read loop holds a count, so this cannot race Close's Wait
	go func() {
		defer s.wg.Done()
		t := time.NewTimer(delay)
		defer t.Stop()
		select {
		case <-t.C:
			if err := l.write(b, to); err != nil {
				s.st.log.Debug("send", "err", err)
			}
		case <-s.done:
		}
	}()
}

// fromClient hands a tunnel packet to the data plane, or without one
// answers ICMPv6 echo requests to the keepalive address.
func (s *Server) fromClient(c *Session, pkt []byte) {
	if s.st.dp != nil {
		s.st.dp.FromClient(c, pkt)
		return
	}
	if r := echoReply(pkt, c.serverV6()); r != nil {
		if err := c.WriteData(r); err != nil {
			s.st.log.Debug("echo reply", "session", c.id, "err", err)
		}
	}
}

// sweepUDP expires idle sessions of one listener.
func (s *Server) sweepUDP(l *udpListener, stop <-chan struct{}) {
	defer s.wg.Done()
	every := min(max(s.st.limits.IdleTimeout/4, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.done:
			return
		case now := <-t.C:
			s.expire(l, now)
		}
	}
}

func (s *Server) expire(l *udpListener, now time.Time) {
	s.mu.Lock()
	var owed []*Session
	for from, c := range l.sessions {
		if now.Before(s.expiry(c)) {
			continue
		}
		s.st.log.Info("session expired", "session", c.id, "client", from, "established", c.state == stateEstablished)
		if s.retire(c) {
			owed = append(owed, c)
		}
		delete(l.sessions, from)
		s.release(from.Addr())
	}
	s.mu.Unlock()
	s.notifyClosed(owed)
}

// expiry is when a UDP session is forgotten (s.mu held). A v6udpv4 tunnel
// with keepalive goes after 5 intervals of silence, like tsps; other
// established sessions carry no traffic on this socket and last for the
// lease; anything else gets IdleTimeout.
func (s *Server) expiry(c *Session) time.Time {
	if c.state != stateEstablished {
		return c.lastRecv.Add(s.st.limits.IdleTimeout)
	}
	if c.info.Type == typeV6UDPV4 && c.info.KeepaliveInterval > 0 {
		return c.lastRecv.Add(5 * time.Duration(c.info.KeepaliveInterval) * time.Second)
	}
	return c.info.Established.Add(time.Duration(c.info.Lifetime) * time.Second)
}

// serverV6 is the address the built-in echo responder answers for.
func (c *Session) serverV6() netip.Addr {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.info.ServerV6
}
