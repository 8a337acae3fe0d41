package tsp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// RUDP header layout and sequence space (spec §1.3, §13.2).
const (
	// RUDPHeaderLen is the size of the header that starts every TSP datagram.
	RUDPHeaderLen = 8

	rudpMarker   = 0xF0000000 // top nibble 0xF: a TSP control datagram
	rudpSeqMask  = 0x0FFFFFFF
	rudpFirstSeq = 0xF0
	// Little-endian brokers test the high nibble of the fourth wire byte, so
	// the sequence must stay within F0..FF: 16 exchanges per session.
	rudpLastSeq = 0xFF

	// Back-off starts once a peer-seen exchange has been sent this often.
	rudpBackoffAfter = 3
)

// Spec defaults for RUDPConfig's zero values (Appendix B).
const (
	DefaultRUDPInitialRTO     = 2 * time.Second
	DefaultRUDPMinRTO         = 2 * time.Second
	DefaultRUDPMaxRTO         = 30 * time.Second
	DefaultRUDPMaxTriesNoPeer = 3
	DefaultRUDPMaxTriesPeer   = 8
)

// rudpClockGranularity is the resolution of the header timestamps; RFC 6298
// keeps the variance term at least one tick.
const rudpClockGranularity = time.Millisecond

// echoRequest is the broker-distance probe payload (spec §7.1): 12 bytes, no
// CRLF.
var echoRequest = []byte("ECHO REQUEST")

// RUDPConfig tunes the retransmission engine. Zero values select the spec
// defaults, so tests can shrink the timers to milliseconds.
type RUDPConfig struct {
	InitialRTO     time.Duration // first retransmission timeout (2 s)
	MinRTO         time.Duration // lower clamp of the computed timeout (2 s)
	MaxRTO         time.Duration // upper clamp, also for back-off (30 s)
	MaxTriesNoPeer int           // transmissions before giving up while no reply was ever seen (3)
	MaxTriesPeer   int           // transmissions before giving up once the peer answered (8)
	// Now drives the header timestamps and the RTT samples taken from them
	// (time.Now). Retransmission timers always run on the real clock, since
	// socket deadlines do.
	Now func() time.Time
}

func (c RUDPConfig) withDefaults() RUDPConfig {
	if c.InitialRTO <= 0 {
		c.InitialRTO = DefaultRUDPInitialRTO
	}
	if c.MinRTO <= 0 {
		c.MinRTO = DefaultRUDPMinRTO
	}
	if c.MaxRTO <= 0 {
		c.MaxRTO = DefaultRUDPMaxRTO
	}
	if c.MaxRTO < c.MinRTO {
		c.MaxRTO = c.MinRTO
	}
	if c.MaxTriesNoPeer <= 0 {
		c.MaxTriesNoPeer = DefaultRUDPMaxTriesNoPeer
	}
	if c.MaxTriesPeer <= 0 {
		c.MaxTriesPeer = DefaultRUDPMaxTriesPeer
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Lifecycle of the socket owned by an RUDP engine.
const (
	rudpOpen int32 = iota
	rudpClosed
	rudpDetached
)

// RUDP is the "reliable UDP" transport of the old client: every message is
// one datagram with an 8-byte header, answered by exactly one datagram that
// echoes the header. It implements Transport. Calls are serialised; after
// any failure once something was sent the engine is dead, because the
// broker may have acted on a request whose answer was lost and tsps has no
// duplicate detection to make a retry safe.
type RUDP struct {
	conn  net.Conn
	cfg   RUDPConfig
	start time.Time

	state atomic.Int32 // rudpOpen, rudpClosed or rudpDetached

	mu       sync.Mutex // serialises exchanges; guards everything below
	seq      uint32
	dead     error // sticky failure
	peerSeen bool  // some reply matched in this session
	backoff  bool  // exponential back-off on; stays on for the session
	haveRTT  bool
	srtt     time.Duration
	rttvar   time.Duration
	rto      time.Duration
	tx       []byte    // outgoing datagram, reused
	big      []byte    // MaxMessage receive buffer, allocated on first use
	small    [512]byte // receive buffer for acks and echo replies
}

// NewRUDP wraps a connected UDP socket. The engine's clock (timestamp 0)
// starts now.
func NewRUDP(conn net.Conn, cfg RUDPConfig) *RUDP {
	cfg = cfg.withDefaults()
	return &RUDP{
		conn:  conn,
		cfg:   cfg,
		start: cfg.Now(),
		seq:   rudpFirstSeq,
		rto:   cfg.InitialRTO,
		tx:    make([]byte, 0, 512),
	}
}

// AppendRUDPHeader appends the 8-byte header for seq (28 bits are kept) and
// timestamp ts to b.
func AppendRUDPHeader(b []byte, seq, ts uint32) []byte {
	b = binary.BigEndian.AppendUint32(b, rudpMarker|seq&rudpSeqMask)
	return binary.BigEndian.AppendUint32(b, ts)
}

// ParseRUDPHeader splits a datagram into sequence, timestamp and payload.
// The payload aliases b. It fails on datagrams shorter than the header and
// on ones whose top nibble is not 0xF (an IPv6 data packet, for instance).
func ParseRUDPHeader(b []byte) (seq, ts uint32, payload []byte, err error) {
	if len(b) < RUDPHeaderLen {
		return 0, 0, nil, malformed("rudp", "datagram of %d bytes is shorter than the %d-byte header", len(b), RUDPHeaderLen)
	}
	w := binary.BigEndian.Uint32(b)
	if w&^rudpSeqMask != rudpMarker {
		return 0, 0, nil, malformed("rudp", "datagram starts with %#08x, not a TSP header", w)
	}
	return w & rudpSeqMask, binary.BigEndian.Uint32(b[4:]), b[RUDPHeaderLen:], nil
}

// Exchange sends msg and returns the payload of the broker's reply.
func (r *RUDP) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.big == nil {
		r.big = make([]byte, MaxMessage)
	}
	reply, _, err := r.roundTrip(ctx, "exchange", msg, r.big, nil)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(reply), nil
}

// Send sends msg and waits for the broker's acknowledgement, whose payload
// (normally empty) is ignored.
func (r *RUDP) Send(ctx context.Context, msg []byte) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, _, err := r.roundTrip(ctx, "send", msg, r.small[:], nil)
	return err
}

// Receive polls the broker with a header-only datagram and returns the
// payload of its reply.
func (r *RUDP) Receive(ctx context.Context) ([]byte, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.big == nil {
		r.big = make([]byte, MaxMessage)
	}
	reply, _, err := r.roundTrip(ctx, "poll", nil, r.big, nil)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(reply), nil
}

// Network reports UDP.
func (r *RUDP) Network() Network { return UDP }

// LocalAddr is the socket's local address, IPv4 unmapped.
func (r *RUDP) LocalAddr() netip.AddrPort { return netAddrPort(r.conn.LocalAddr()) }

// RemoteAddr is the broker's address, IPv4 unmapped.
func (r *RUDP) RemoteAddr() netip.AddrPort { return netAddrPort(r.conn.RemoteAddr()) }

// Close closes the socket, interrupting a call in progress. After Detach it
// does nothing: the data plane owns the socket then.
func (r *RUDP) Close() error {
	if !r.state.CompareAndSwap(rudpOpen, rudpClosed) {
		return nil
	}
	if err := r.conn.Close(); err != nil {
		return fmt.Errorf("tsp udp: close: %w", err)
	}
	return nil
}

// Detach hands the socket over without closing it: after a v6udpv4 accept
// the same 5-tuple carries the tunnel (spec §1.6). It waits for a call in
// progress, clears any deadline the engine set, and leaves the RUDP
// unusable. It returns nil if the RUDP was already closed or detached.
func (r *RUDP) Detach() net.Conn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.state.CompareAndSwap(rudpOpen, rudpDetached) {
		return nil
	}
	_ = r.conn.SetDeadline(time.Time{})
	return r.conn
}

// echoPlan replaces the adaptive retransmission policy for the distance
// probe: a fixed timeout per try and a fixed number of tries.
type echoPlan struct {
	tries   int
	timeout time.Duration
}

// roundTrip sends one request (seq, timestamp, payload) until the matching
// reply arrives in buf or the retransmission policy gives up. It returns the
// reply payload (aliasing buf) and the round-trip time of the answered
// transmission. r.mu is held.
func (r *RUDP) roundTrip(ctx context.Context, op string, payload, buf []byte, plan *echoPlan) ([]byte, time.Duration, error) {
	switch r.state.Load() {
	case rudpClosed:
		return nil, 0, fmt.Errorf("tsp udp %s: %w", op, net.ErrClosed)
	case rudpDetached:
		return nil, 0, fmt.Errorf("tsp udp %s: socket detached to the data plane: %w", op, net.ErrClosed)
	}
	if r.dead != nil {
		return nil, 0, fmt.Errorf("tsp udp %s: engine failed earlier: %w", op, r.dead)
	}
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("tsp udp %s: %w", op, err)
	}
	if r.seq > rudpLastSeq {
		return nil, 0, fmt.Errorf("tsp udp %s: sequence would pass %#x: %w", op, uint32(rudpMarker|rudpLastSeq), ErrTooManyExchanges)
	}
	if RUDPHeaderLen+len(payload) > MaxMessage {
		return nil, 0, fmt.Errorf("tsp udp %s: message of %d bytes does not fit one datagram", op, len(payload))
	}
	seq := r.seq
	r.seq++

	release := interruptOnDone(ctx, r.conn)
	defer release()
	// A write never blocks long on UDP; bounding it by ctx is enough.
	ctxDeadline, hasCtxDeadline := ctx.Deadline()
	if err := r.conn.SetWriteDeadline(ctxDeadline); err != nil {
		return nil, 0, r.fail(fmt.Errorf("tsp udp %s: set write deadline: %w", op, err))
	}

	r.tx = AppendRUDPHeader(r.tx[:0], seq, 0)
	r.tx = append(r.tx, payload...)
	var firstTS, ts uint32
	for tries := 1; ; tries++ {
		ts = r.stamp()
		if tries == 1 {
			firstTS = ts
		}
		binary.BigEndian.PutUint32(r.tx[4:RUDPHeaderLen], ts)
		if _, err := r.conn.Write(r.tx); err != nil {
			return nil, 0, r.fail(r.ioError(ctx, op, "send", err))
		}

		wait := r.rto
		if plan != nil {
			wait = plan.timeout
		}
		deadline := time.Now().Add(wait)
		byCtx := hasCtxDeadline && ctxDeadline.Before(deadline)
		if byCtx {
			deadline = ctxDeadline
		}
		if err := r.conn.SetReadDeadline(deadline); err != nil {
			return nil, 0, r.fail(fmt.Errorf("tsp udp %s: set read deadline: %w", op, err))
		}
		// interruptOnDone may have fired before the deadline above replaced
		// its own; ctx is already done in that case.
		if err := ctx.Err(); err != nil {
			return nil, 0, r.fail(fmt.Errorf("tsp udp %s: %w", op, err))
		}

		for {
			n, err := r.conn.Read(buf)
			if err != nil {
				if !errors.Is(err, os.ErrDeadlineExceeded) {
					return nil, 0, r.fail(r.ioError(ctx, op, "receive", err))
				}
				if cerr := ctx.Err(); cerr != nil {
					return nil, 0, r.fail(fmt.Errorf("tsp udp %s: %w", op, cerr))
				}
				if byCtx {
					// The socket deadline can beat ctx's own timer by a hair.
					return nil, 0, r.fail(fmt.Errorf("tsp udp %s: %w", op, context.DeadlineExceeded))
				}
				break // retransmission timeout
			}
			// Only the first word is compared, like the old client: brokers
			// echo the whole header but a timestamp rewrite must not matter.
			if n < RUDPHeaderLen || !bytes.Equal(buf[:4], r.tx[:4]) {
				continue // stray or stale datagram; the deadline keeps running
			}
			sample := r.observe(firstTS, binary.BigEndian.Uint32(buf[4:RUDPHeaderLen]))
			if sample < 0 { // unusable echo: count from the latest transmission
				sample = time.Duration(r.stamp()-ts) * time.Millisecond
			}
			r.peerSeen = true
			return buf[RUDPHeaderLen:n], sample, nil
		}

		if plan != nil {
			if tries >= plan.tries {
				return nil, 0, r.fail(fmt.Errorf("tsp udp %s: %w after %d tries of %v", op, ErrNoReply, tries, plan.timeout))
			}
			continue
		}
		if r.timedOut(tries) {
			return nil, 0, r.fail(fmt.Errorf("tsp udp %s (seq %#x): %w after %d tries", op, rudpMarker|seq, ErrNoReply, tries))
		}
	}
}

// timedOut applies the old client's rules after the tries-th transmission
// of an exchange went unanswered (spec §1.3) and reports whether to give
// up. With the defaults: no peer yet, sends at 0, 2, 4 s and failure at 6 s;
// peer seen, sends at 0, 2, 4, 6, 8, 12, 20, 36 s and failure at 66 s.
func (r *RUDP) timedOut(tries int) (giveUp bool) {
	limit := r.cfg.MaxTriesNoPeer
	if r.peerSeen {
		limit = r.cfg.MaxTriesPeer
	}
	if tries >= limit {
		return true
	}
	if r.backoff {
		r.rto = min(2*r.rto, r.cfg.MaxRTO)
	}
	if r.peerSeen && tries >= rudpBackoffAfter {
		r.backoff = true
	}
	return false
}

// stamp is the header timestamp: milliseconds since the engine started,
// modulo 2^32 like the wire field.
func (r *RUDP) stamp() uint32 {
	return uint32(r.cfg.Now().Sub(r.start) / time.Millisecond)
}

// observe feeds the RTT estimator from a matched reply and recomputes the
// RTO. The echoed timestamp tells which transmission was answered, so
// samples stay valid across retransmissions; one outside the range this
// exchange sent (a broker that rewrites it) is ignored and -1 returned.
//
// Deviation from the old client (spec §1.3): rttvar follows RFC 6298
// (first sample sets srtt=R, rttvar=R/2; then rttvar = ¾·rttvar + ¼·|srtt−R|)
// instead of only ever growing, and the RTO keeps its fractional part
// instead of being truncated to whole seconds.
func (r *RUDP) observe(firstTS, echoed uint32) time.Duration {
	now := r.stamp()
	age, span := now-echoed, now-firstTS // modular: survives the 49-day wrap
	if age > span {
		return -1
	}
	sample := time.Duration(age) * time.Millisecond
	if !r.haveRTT {
		r.srtt, r.rttvar, r.haveRTT = sample, sample/2, true
	} else {
		delta := r.srtt - sample
		if delta < 0 {
			delta = -delta
		}
		r.rttvar += (delta - r.rttvar) / 4
		r.srtt += (sample - r.srtt) / 8
	}
	r.rto = min(max(r.srtt+max(rudpClockGranularity, 4*r.rttvar), r.cfg.MinRTO), r.cfg.MaxRTO)
	return sample
}

// fail makes err the engine's sticky failure.
func (r *RUDP) fail(err error) error {
	r.dead = err
	return err
}

// ioError describes a socket error; when ctx ended, that is the reason the
// call was interrupted and it is what the caller gets.
func (r *RUDP) ioError(ctx context.Context, op, what string, err error) error {
	if cerr := ctx.Err(); cerr != nil {
		return fmt.Errorf("tsp udp %s: %w", op, cerr)
	}
	return fmt.Errorf("tsp udp %s: %s to %v: %w", op, what, r.conn.RemoteAddr(), err)
}

// interruptOnDone pulls conn's deadlines into the past as soon as ctx ends,
// which makes a blocked Read or Write return at once. The returned release
// must be called before the caller sets new deadlines again: it stops the
// watcher and, if the watcher already started, waits for it to finish so
// it cannot clobber a later deadline.
func interruptOnDone(ctx context.Context, conn net.Conn) (release func()) {
	if ctx.Done() == nil {
		return func() {}
	}
	done := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(done)
		_ = conn.SetDeadline(time.Unix(1, 0))
	})
	return func() {
		if !stop() {
			<-done
		}
	}
}

// netAddrPort converts a socket address to netip form, unmapping
// IPv4-in-IPv6 so callers see plain IPv4 for IPv4 peers.
func netAddrPort(a net.Addr) netip.AddrPort {
	var ap netip.AddrPort
	switch a := a.(type) {
	case *net.UDPAddr:
		ap = a.AddrPort()
	case *net.TCPAddr:
		ap = a.AddrPort()
	case nil:
		return netip.AddrPort{}
	default:
		var err error
		if ap, err = netip.ParseAddrPort(a.String()); err != nil {
			return netip.AddrPort{}
		}
	}
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
