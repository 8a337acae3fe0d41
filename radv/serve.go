package radv

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"
)

// Conn is the socket a Server uses (Listen opens one). ReadFrom returns
// solicitations only, with the hop limit they came with: one without
// (-1) is dropped, since it cannot be checked. An error wrapping
// ErrMalformed from ReadFrom drops that one message; any other error ends
// Serve.
type Conn interface {
	ReadFrom() (rs *RouterSolicitation, hopLimit int, src netip.Addr, err error)
	WriteTo(ra *RouterAdvertisement, dst netip.Addr) error
	// SetReadDeadline unblocks ReadFrom when Serve returns.
	SetReadDeadline(t time.Time) error
}

// ErrLinkGone marks Serve's return when a write failed because the link
// is gone: the device was deleted or is down, or its address went away.
// The socket is of no more use; the caller re-opens one when the link is
// back.
var ErrLinkGone = errors.New("link gone")

// linkGone tells whether a write error means the socket's link is gone,
// rather than a passing shortage (ENOBUFS, a full neighbour queue).
func linkGone(err error) bool {
	return errors.Is(err, syscall.ENODEV) || errors.Is(err, syscall.ENXIO) ||
		errors.Is(err, syscall.ENETDOWN) || errors.Is(err, syscall.EADDRNOTAVAIL)
}

// allNodes is where multicast RAs go.
var allNodes = netip.MustParseAddr("ff02::1")

// verdict is what an incoming message asks for.
type verdict int

const (
	ignore     verdict = iota // not a valid RS
	replyUni                  // RS from an address: answer it directly
	replyMulti                // RS from ::: answer to all nodes, rate-limited
)

// classify checks a received solicitation the way RFC 4861 §6.1.1 asks
// of a router: hop limit 255 (so it was not forwarded), and no source
// link-layer address option when the source is unspecified.
func classify(rs *RouterSolicitation, hopLimit int, src netip.Addr) verdict {
	if rs == nil || hopLimit != ndpHopLimit {
		return ignore
	}
	if !src.IsValid() || !src.Unmap().Is6() || src.IsMulticast() {
		return ignore
	}
	if src.IsUnspecified() {
		if rs.SourceLinkAddr() != nil {
			return ignore
		}
		return replyMulti
	}
	return replyUni
}

// Serve advertises until ctx is done, then sends the final RA (router
// lifetime 0, prefixes deprecated) and returns nil. It returns early with
// an error when reading from conn fails or a write says the link is gone
// (ErrLinkGone: the device was deleted or went down, or lost its address).
// Serve does not close conn. One Serve runs at a time; a new one (on a
// socket re-opened after the link came back) starts with an RA at once,
// and keeps what the Server knows, deprecated prefixes included.
func (s *Server) Serve(ctx context.Context, conn Conn) error {
	gone := make(chan error, 1)
	send := func(dst netip.Addr, final bool) {
		err := conn.WriteTo(s.advertisement(final), dst)
		if err != nil && linkGone(err) {
			select {
			case gone <- err:
			default:
			}
		}
		s.count(func(st *Stats) {
			switch {
			case err != nil:
				st.WriteErrors++
			case dst == allNodes:
				st.Multicast++
			default:
				st.Unicast++
			}
		})
	}
	// The reader answers solicitations directly itself while the bucket
	// has tokens (no hand-over to the loop, which would cost a goroutine
	// wake-up per reply) and passes the others to the loop, which answers
	// them all with one multicast RA. pending keeps a flood from waking
	// the loop more than once per multicast reply.
	rsCh := make(chan struct{}, 1)
	var pending atomic.Bool
	readErr := make(chan error, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		for {
			m, hop, src, err := conn.ReadFrom()
			if errors.Is(err, ErrMalformed) {
				s.count(func(st *Stats) { st.Dropped++ })
				continue
			}
			if err != nil {
				readErr <- err
				return
			}
			v := classify(m, hop, src)
			if v == ignore {
				s.count(func(st *Stats) { st.Dropped++ })
				continue
			}
			direct := false
			s.count(func(st *Stats) {
				st.Wakeups++
				st.Solicits++
				direct = v == replyUni && s.direct.take(time.Now())
				if v == replyUni && !direct {
					st.Deferred++
				}
			})
			if direct {
				send(src, false)
				continue
			}
			if pending.CompareAndSwap(false, true) {
				select {
				case rsCh <- struct{}{}:
				default:
				}
			}
		}
	}()
	defer func() {
		_ = conn.SetReadDeadline(time.Unix(1, 0))
		<-readDone
	}()

	sent := 0 // multicast RAs so far, for the quick initial ones
	var lastMulti time.Time
	// The first RA goes now and carries whatever Update set before Serve.
	select {
	case <-s.changed:
	default:
	}
	// next is when the next multicast RA is due.
	next := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	reset := func(at time.Time) {
		next = at
		timer.Reset(time.Until(at))
	}
	for {
		select {
		case <-ctx.Done():
			send(allNodes, true)
			return nil
		case err := <-gone:
			return fmt.Errorf("radv: send: %w: %w", ErrLinkGone, err)
		case err := <-readErr:
			if errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil {
				continue // our own unblocking; ctx.Done follows
			}
			return fmt.Errorf("radv: read: %w", err)
		case <-timer.C:
			s.count(func(st *Stats) { st.Wakeups++ })
			// Solicitations from now on need another reply.
			pending.Store(false)
			send(allNodes, false)
			lastMulti = time.Now()
			sent++
			reset(lastMulti.Add(s.interval(sent)))
		case <-rsCh:
			// RFC 4861 §6.2.6: a random delay of up to MAX_RA_DELAY_TIME
			// from this first solicitation, and no closer than MinDelay
			// to the last multicast RA.
			at := time.Now().Add(s.random(s.cfg.MaxRADelay))
			if m := lastMulti.Add(s.cfg.MinDelay); m.After(at) {
				at = m
			}
			if at.Before(next) {
				reset(at)
			}
		case <-s.changed:
			s.count(func(st *Stats) { st.Wakeups++ })
			// New information restarts the quick initial sequence
			// (RFC 4861 §6.2.4), still within the rate limit.
			sent = 0
			reset(lastMulti.Add(s.cfg.MinDelay))
		}
	}
}

// interval is the wait after the n-th multicast RA: random in [min, max],
// capped for the first few.
func (s *Server) interval(n int) time.Duration {
	d := s.cfg.MinInterval + s.random(s.cfg.MaxInterval-s.cfg.MinInterval)
	if n < s.cfg.InitialCount {
		d = min(d, s.cfg.InitialInterval)
	}
	return d
}

// random is a random duration in [0, span].
func (s *Server) random(span time.Duration) time.Duration {
	if span <= 0 {
		return 0
	}
	if s.cfg.Rand != nil {
		return max(0, min(s.cfg.Rand(span), span))
	}
	return rand.N(span + 1)
}
