package testbroker

import (
	"cmp"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// ErrServerClosed is returned by ServeUDP and ServeTCP after Close.
var ErrServerClosed = errors.New("testbroker: server closed")

// Server is a TSP broker. Serve it on any number of UDP sockets and TCP
// listeners; Close stops them all.
type Server struct {
	st *settings

	mu          sync.Mutex
	faults      Faults
	alloc       *allocator
	udp         map[*udpListener]struct{}
	tcp         map[net.Listener]struct{}
	tcpSessions map[*Session]struct{}
	perSource   map[netip.Addr]int
	live        int
	nextID      uint64
	stats       Stats
	closed      bool

	done chan struct{} // closed by Close
	wg   sync.WaitGroup
}

// Stats counts what the server has seen since it started.
type Stats struct {
	Datagrams      uint64 // UDP datagrams received
	Retransmits    uint64 // retransmissions answered from the reply cache
	DroppedInbound uint64 // datagrams dropped by Faults.DropInbound
	DroppedReplies uint64 // replies dropped by Faults.DropReply
	StatusErrors   uint64 // "310 TSP status error" datagrams sent
	Sessions       uint64 // sessions started
	Established    uint64 // sessions established
	AuthFailures   uint64 // authentications refused
}

// New checks cfg and builds a server. cfg is copied; later changes to it
// have no effect (use SetFaults to change faults).
func New(cfg Config) (*Server, error) {
	st, err := cfg.settings()
	if err != nil {
		return nil, err
	}
	if err := cfg.Faults.check(); err != nil {
		return nil, err
	}
	return &Server{
		st:          st,
		faults:      cfg.Faults.clone(),
		alloc:       newAllocator(st.clientPool, st.clientPool4, st.prefixPool),
		udp:         make(map[*udpListener]struct{}),
		tcp:         make(map[net.Listener]struct{}),
		tcpSessions: make(map[*Session]struct{}),
		perSource:   make(map[netip.Addr]int),
		done:        make(chan struct{}),
	}, nil
}

// SetFaults replaces the fault set for sessions started from now on;
// running sessions keep the set they started with.
func (s *Server) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	f = f.clone()
	s.mu.Lock()
	s.faults = f
	s.mu.Unlock()
	return nil
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Sessions lists the established sessions, oldest first.
func (s *Server) Sessions() []SessionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []SessionInfo
	add := func(c *Session) {
		if c.state == stateEstablished {
			out = append(out, c.info)
		}
	}
	for l := range s.udp {
		for _, c := range l.sessions {
			add(c)
		}
	}
	for c := range s.tcpSessions {
		add(c)
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Start listens on the given UDP and TCP addresses (either may be empty to
// skip it) and serves them in the background until Close. It returns the
// bound addresses, useful with port 0.
func (s *Server) Start(udpAddr, tcpAddr string) (udp, tcp netip.AddrPort, err error) {
	var pc net.PacketConn
	if udpAddr != "" {
		if pc, err = net.ListenPacket("udp", udpAddr); err != nil {
			return udp, tcp, fmt.Errorf("testbroker: listen udp %s: %w", udpAddr, err)
		}
		udp = addrPortOf(pc.LocalAddr())
	}
	if tcpAddr != "" {
		ln, err := net.Listen("tcp", tcpAddr)
		if err != nil {
			if pc != nil {
				pc.Close()
			}
			return udp, tcp, fmt.Errorf("testbroker: listen tcp %s: %w", tcpAddr, err)
		}
		tcp = addrPortOf(ln.Addr())
		if err := s.background(func() error { return s.ServeTCP(ln) }); err != nil {
			ln.Close()
			if pc != nil {
				pc.Close()
			}
			return udp, tcp, err
		}
	}
	if pc != nil {
		if err := s.background(func() error { return s.ServeUDP(pc) }); err != nil {
			pc.Close()
			return udp, tcp, err
		}
	}
	return udp, tcp, nil
}

// background runs serve in a goroutine counted by Close.
func (s *Server) background(serve func() error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return ErrServerClosed
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := serve(); err != nil && !errors.Is(err, ErrServerClosed) {
			s.st.log.Error("serve", "err", err)
		}
	}()
	return nil
}

// Close stops every listener and connection, waits for the server's
// goroutines, and tells the data plane about each established session.
func (s *Server) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	close(s.done)
	var closers []func() error
	var owed []*Session
	for l := range s.udp {
		closers = append(closers, l.conn.Close)
		for _, c := range l.sessions {
			if s.retire(c) {
				owed = append(owed, c)
			}
		}
	}
	for ln := range s.tcp {
		closers = append(closers, ln.Close)
	}
	for c := range s.tcpSessions {
		closers = append(closers, c.conn.Close)
		if s.retire(c) {
			owed = append(owed, c)
		}
	}
	s.mu.Unlock()

	var errs []error
	for _, f := range closers {
		if err := f(); err != nil && !errors.Is(err, net.ErrClosed) {
			errs = append(errs, err)
		}
	}
	s.wg.Wait()
	s.notifyClosed(owed)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("testbroker: close: %w", err)
	}
	return nil
}

// isClosed reports whether Close has been called.
func (s *Server) isClosed() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// newSession starts a session. Called with s.mu held, after admit.
func (s *Server) newSession(transport string, remote netip.AddrPort, local netip.Addr) *Session {
	s.nextID++
	s.stats.Sessions++
	c := &Session{
		srv:       s,
		id:        s.nextID,
		transport: transport,
		remote:    remote,
		local:     local,
		faults:    s.faults, // never mutated: SetFaults installs a fresh copy
		state:     stateVersion,
		lastRecv:  time.Now(),
	}
	c.info = SessionInfo{ID: c.id, Transport: transport, Client: remote}
	return c
}

// admit reserves room for a new session from addr (s.mu held).
func (s *Server) admit(addr netip.Addr) bool {
	if s.live >= s.st.limits.MaxSessions || s.perSource[addr] >= s.st.limits.MaxPerSource {
		return false
	}
	s.live++
	s.perSource[addr]++
	return true
}

// release gives back what admit reserved (s.mu held).
func (s *Server) release(addr netip.Addr) {
	s.live--
	if s.perSource[addr]--; s.perSource[addr] <= 0 {
		delete(s.perSource, addr)
	}
}

// retire ends a session and reports whether DataPlane.Closed is owed for it
// (s.mu held). The caller calls notifyClosed after unlocking.
func (s *Server) retire(c *Session) bool {
	c.dataOK.Store(false)
	if c.state != stateSilent {
		c.state = stateDone
	}
	owed := c.notified
	c.notified = false
	return owed
}

// establish records a session as established and ends any other
// established session of the same user, as tsps does, since they would
// share the user's address and prefix. It returns the sessions ended, for
// notifyClosed (s.mu held).
func (s *Server) establish(c *Session) []*Session {
	c.info.Established = time.Now()
	c.notified = true
	s.stats.Established++
	if c.transport == TransportUDP && c.info.Type == typeV6UDPV4 {
		c.dataOK.Store(true)
	}
	s.st.log.Info("established", "session", c.id, "client", c.remote, "transport", c.transport,
		"type", c.info.Type, "user", c.info.User)
	if c.info.User == "" {
		return nil
	}
	var kicked []*Session
	kick := func(o *Session) {
		if o == c || o.state != stateEstablished || o.info.User != c.info.User {
			return
		}
		s.st.log.Info("session replaced by a newer one of the same user", "session", o.id, "by", c.id)
		if s.retire(o) {
			kicked = append(kicked, o)
		}
		if o.conn != nil {
			o.conn.Close() // its goroutine sees the error and cleans up
		}
	}
	for l := range s.udp {
		for _, o := range l.sessions {
			kick(o)
		}
	}
	for o := range s.tcpSessions {
		kick(o)
	}
	return kicked
}

// notifyClosed tells the data plane about ended sessions (without s.mu).
func (s *Server) notifyClosed(list []*Session) {
	if s.st.dp == nil {
		return
	}
	for _, c := range list {
		s.st.dp.Closed(c)
	}
}

// notifyEstablished tells the data plane about a new session (without s.mu).
func (s *Server) notifyEstablished(c *Session) {
	if s.st.dp != nil {
		s.st.dp.Established(c)
	}
}

// addrPortOf converts a net.Addr from the standard library's sockets.
func addrPortOf(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	default:
		if a != nil {
			ap, _ = netip.ParseAddrPort(a.String())
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
