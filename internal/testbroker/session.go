package testbroker

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
	"time"
)

// Transports as reported in SessionInfo.
const (
	TransportUDP = "udp"
	TransportTCP = "tcp"
)

// SessionInfo describes a session. Offer fields are set once the offer has
// been made.
type SessionInfo struct {
	ID        uint64
	Transport string         // TransportUDP or TransportTCP
	Client    netip.AddrPort // observed source address and port
	Version   string         // negotiated TSP version
	Mechanism string         // "ANONYMOUS", "PLAIN" or "DIGEST-MD5"
	User      string         // empty for anonymous sessions

	Requested  string     // tunnel type asked for (may be "v6anyv4")
	Type       string     // tunnel type offered: "v6v4", "v6udpv4" or "v4v6"
	DeclaredV4 netip.Addr // the client's own idea of its IPv4 (v6 types)
	NAT        bool       // DeclaredV4 differs from the observed source

	ServerV4 netip.Addr
	ServerV6 netip.Addr
	ClientV4 netip.Addr
	ClientV6 netip.Addr
	DNSName  string
	Prefix   netip.Prefix // delegated prefix; invalid when none

	KeepaliveInterval int // seconds; 0 when the offer had no keepalive
	KeepaliveAddr     netip.Addr
	Lifetime          int       // seconds
	Established       time.Time // zero until established
}

// state is where a session's negotiation stands.
type state int

const (
	stateVersion     state = iota // expecting VERSION= (or ECHO REQUEST)
	stateAuth                     // expecting AUTHENTICATE
	stateSASL                     // inside a mechanism's exchange
	stateAuthFinal                // DIGEST-MD5 proof sent; next UDP message gets 200
	stateTunnel                   // expecting the tunnel request
	stateAccept                   // offer sent; expecting accept or reject
	stateEstablished              // tunnel up
	stateDone                     // failed, refused or rejected: only retransmissions are answered
	stateSilent                   // Faults.CloseAt was hit: nothing more is said
)

// Session is one client's TSP session. Its methods may be called from any
// goroutine.
type Session struct {
	srv       *Server
	id        uint64
	transport string
	remote    netip.AddrPort
	local     netip.Addr // the server address the client reached

	// Guarded by srv.mu.
	faults   Faults // snapshot taken when the session started
	state    state
	mech     saslMech
	info     SessionInfo
	lastRecv time.Time
	notified bool // DataPlane.Established was (or is about to be) called; Closed is owed

	// UDP only (guarded by srv.mu).
	udp       *udpListener
	haveLast  bool
	lastWord  uint32 // first header word of the last message processed
	lastReq   []byte // its payload: a retransmission repeats both
	lastReply []byte // payload sent for it, for retransmissions
	pending   [][]byte
	inbound   int
	replies   int

	// TCP only.
	conn net.Conn

	dataOK atomic.Bool // WriteData allowed: established v6udpv4 over UDP
}

// ErrNotDataSession is WriteData's error for a session that does not carry
// tunnel data over its TSP socket: not v6udpv4 over UDP, not established, or
// ended.
var ErrNotDataSession = errors.New("testbroker: not an established v6udpv4 UDP session")

// Info returns a copy of the session's description.
func (c *Session) Info() SessionInfo {
	c.srv.mu.Lock()
	defer c.srv.mu.Unlock()
	return c.info
}

// ID is the session's number, unique within its server.
func (c *Session) ID() uint64 { return c.id }

// WriteData sends one raw IPv6 packet to a v6udpv4 client over the session's
// UDP 5-tuple, with no header (spec §1.6).
func (c *Session) WriteData(pkt []byte) error {
	if !c.dataOK.Load() {
		return ErrNotDataSession
	}
	return c.udp.write(pkt, c.remote)
}

// outcome is what the state machine wants sent after one client message.
type outcome struct {
	reply       []byte   // nil: an empty ack over UDP, nothing over TCP
	more        [][]byte // further pieces of a chunked reply (Faults.Chunk)
	end         bool     // the session is over once the reply is out
	silent      bool     // send nothing; close the connection / ignore the client
	established bool     // the session became established with this reply
}

// process runs one client message (UDP payload or TCP record) through the
// state machine. It is called with s.mu held and must not block.
func (s *Server) process(c *Session, msg []byte) outcome {
	switch c.state {
	case stateVersion:
		return s.onVersion(c, msg)
	case stateAuth:
		return s.onAuthenticate(c, msg)
	case stateSASL:
		return s.atPhase(c, PhaseAuthStep, func() outcome { return s.afterStep(c, c.mech.step(msg)) })
	case stateAuthFinal:
		// tsps answers whatever comes next; gogoc sends a header-only poll.
		return s.atPhase(c, PhaseAuthFinal, func() outcome {
			c.state = stateTunnel
			return outcome{reply: statusLine(stOK)}
		})
	case stateTunnel:
		return s.chunk(c, s.atPhase(c, PhaseTunnel, func() outcome { return s.onRequest(c, msg) }))
	case stateAccept:
		return s.atPhase(c, PhaseAccept, func() outcome { return s.onAccept(c, msg) })
	case stateEstablished:
		s.st.log.Debug("message on an established session ignored", "session", c.info.ID, "len", len(msg))
	}
	return outcome{}
}

// atPhase applies the session's faults at a reply point, in this order:
// CloseAt, redirect, StatusAt, then the normal reply (replaced by RawAt).
func (s *Server) atPhase(c *Session, phase string, normal func() outcome) outcome {
	f := &c.faults
	framedPhase := phase == PhaseTunnel
	switch {
	case f.CloseAt == phase:
		s.st.log.Info("fault: closing", "session", c.info.ID, "phase", phase)
		c.state = stateSilent
		return outcome{silent: true}
	case len(s.st.redirect) > 0 && f.RedirectPhase == phase:
		s.st.log.Info("redirecting", "session", c.info.ID, "phase", phase, "brokers", len(s.st.redirect))
		c.state = stateDone
		body := redirectBody(s.st.redirect)
		if framedPhase {
			body = framed(body)
		}
		return outcome{reply: body, end: true}
	}
	if code, ok := f.StatusAt[phase]; ok {
		s.st.log.Info("fault: status", "session", c.info.ID, "phase", phase, "code", code)
		c.state = stateDone
		body := statusLine(code)
		if framedPhase {
			body = framed(body)
		}
		return outcome{reply: body, end: true}
	}
	o := normal()
	if raw, ok := f.RawAt[phase]; ok {
		s.st.log.Info("fault: raw reply", "session", c.info.ID, "phase", phase, "len", len(raw))
		o.reply = slices.Clone(raw)
		o.more = nil
	}
	return o
}

// fail ends the session with a status line.
func (s *Server) fail(c *Session, code int, why string) outcome {
	s.st.log.Info("refused", "session", c.info.ID, "client", c.remote, "code", code, "why", why)
	c.state = stateDone
	return outcome{reply: statusLine(code), end: true}
}

// failFramed is fail inside a Content-length body, as the client reads
// tunnel-phase replies (spec §4.4).
func (s *Server) failFramed(c *Session, code int, why string) outcome {
	o := s.fail(c, code, why)
	o.reply = framed(o.reply)
	return o
}

// chunk cuts a reply into Faults.Chunk-sized pieces.
func (s *Server) chunk(c *Session, o outcome) outcome {
	n := c.faults.Chunk
	if n <= 0 || len(o.reply) <= n {
		return o
	}
	all := o.reply
	o.reply = all[:n:n]
	for rest := all[n:]; len(rest) > 0; {
		k := min(n, len(rest))
		o.more = append(o.more, rest[:k:k])
		rest = rest[k:]
	}
	return o
}

func (s *Server) onVersion(c *Session, msg []byte) outcome {
	line := trimLine(msg)
	if string(line) == "ECHO REQUEST" {
		// Broker distance probe (spec §7.1); the session stays fresh.
		return s.atPhase(c, PhaseEcho, func() outcome { return outcome{reply: statusLine(stOK)} })
	}
	return s.atPhase(c, PhaseVersion, func() outcome {
		if !hasPrefixFold(msg, "VERSION=") || !bytes.HasSuffix(msg, []byte("\r\n")) ||
			bytes.ContainsAny(msg[:len(msg)-2], "\r\n\x00") {
			return s.fail(c, stBadRequest, "expected VERSION=x.y.z CRLF")
		}
		v := string(msg[len("VERSION=") : len(msg)-2])
		if !slices.Contains(s.st.versions, v) {
			return s.fail(c, stBadVersion, "version "+v+" not accepted")
		}
		if v == "1.0.1" && c.transport == TransportUDP {
			return s.fail(c, stBadVersion, "version 1.0.1 is TCP only")
		}
		c.info.Version = v
		c.state = stateAuth
		return outcome{reply: s.capability()}
	})
}

// capability renders the CAPABILITY line (spec §2.2), CRLF-terminated since
// gogoc ignores a last item that is not followed by one.
func (s *Server) capability() []byte {
	var b strings.Builder
	b.WriteString("CAPABILITY")
	for _, t := range s.st.tunnels {
		b.WriteString(" TUNNEL=" + t)
	}
	for _, a := range s.st.auth {
		b.WriteString(" AUTH=" + a)
	}
	b.WriteString("\r\n")
	return []byte(b.String())
}

func (s *Server) onAuthenticate(c *Session, msg []byte) outcome {
	line := trimLine(msg)
	if !hasPrefixFold(line, "AUTHENTICATE ") {
		s.stats.AuthFailures++
		return s.fail(c, stAuthFailed, "expected AUTHENTICATE")
	}
	name := strings.ToUpper(strings.TrimSpace(string(line[len("AUTHENTICATE "):])))
	return s.atPhase(c, PhaseAuth, func() outcome {
		if !slices.Contains(s.st.auth, name) {
			s.stats.AuthFailures++
			return s.fail(c, stAuthFailed, "mechanism "+name+" not offered")
		}
		nonce := c.faults.FixedNonce
		if nonce == "" {
			nonce = newNonce()
		}
		c.mech = newMech(name, s.st, &c.faults, c.info.Version, nonce)
		c.info.Mechanism = name
		return s.afterStep(c, c.mech.start())
	})
}

// afterStep turns a mechanism's step into a reply and the next state.
func (s *Server) afterStep(c *Session, step saslStep) outcome {
	switch step.outcome {
	case saslMore:
		c.state = stateSASL
		return outcome{reply: step.reply}
	case saslOK:
		s.authenticated(c, step.user)
		return outcome{reply: append(step.reply, statusLine(stOK)...)}
	case saslProof:
		s.authenticated(c, step.user)
		if c.transport == TransportUDP {
			c.state = stateAuthFinal
			return outcome{reply: step.reply}
		}
		// Over TCP gogoc reads the proof and the status with two recv()
		// calls; sending both in one write checks that the client's record
		// reader copes (spec §14).
		c.state = stateAuthFinal
		final := s.process(c, nil)
		if final.silent {
			return outcome{reply: step.reply, end: true}
		}
		final.reply = append(step.reply, final.reply...)
		return final
	}
	s.stats.AuthFailures++
	s.st.log.Info("authentication failed", "session", c.info.ID, "client", c.remote,
		"mechanism", c.info.Mechanism, "user", step.user, "why", step.why)
	c.state = stateDone
	return outcome{reply: statusLine(stAuthFailed), end: true}
}

func (s *Server) authenticated(c *Session, user string) {
	c.info.User = user
	c.state = stateTunnel
	s.st.log.Info("authenticated", "session", c.info.ID, "client", c.remote,
		"mechanism", c.info.Mechanism, "user", user)
}

func (s *Server) onRequest(c *Session, msg []byte) outcome {
	body, err := parseContentLength(msg)
	if err != nil {
		return s.failFramed(c, stBadRequest, "tunnel request: "+err.Error())
	}
	req, err := parseRequest(body)
	if err != nil {
		return s.failFramed(c, stBadRequest, "tunnel request: "+err.Error())
	}
	info, oerr := s.decideOffer(c, req)
	if oerr != nil {
		return s.failFramed(c, oerr.code, oerr.why)
	}
	c.info = *info
	s.st.log.Info("offer", "session", c.info.ID, "client", c.remote, "requested", info.Requested,
		"type", info.Type, "nat", info.NAT, "client_v6", info.ClientV6, "prefix", info.Prefix)
	o := outcome{reply: framed(s.offerBody(info))}
	if c.info.Version == "1.0.1" {
		// TSP 1.0.1 has no accept message: the offer is the end of it.
		c.state = stateEstablished
		o.established = true
		return o
	}
	c.state = stateAccept
	return o
}

func (s *Server) onAccept(c *Session, msg []byte) outcome {
	body, err := parseContentLength(msg)
	if err != nil {
		return s.fail(c, stBadRequest, "accept: "+err.Error())
	}
	t, err := decodeTunnel(body)
	if err != nil {
		return s.fail(c, stBadRequest, "accept: "+err.Error())
	}
	switch t.Action {
	case "accept":
		c.state = stateEstablished
		return outcome{established: true}
	case "reject":
		s.st.log.Info("offer rejected by the client", "session", c.info.ID, "client", c.remote)
		c.state = stateDone
		return outcome{end: true}
	}
	return s.fail(c, stBadRequest, "accept: action "+t.Action)
}
