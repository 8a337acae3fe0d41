package tsp

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
)

// ErrRedirectLoop: following redirects led back to a broker already tried,
// or went deeper than Negotiator.MaxRedirects.
var ErrRedirectLoop = errors.New("broker redirect loop")

// DefaultTCPFallbackDelay is how long UDP may stay silent before TCP is
// started beside it. The old client waited for three RUDP tries (≈6 s).
const DefaultTCPFallbackDelay = 1500 * time.Millisecond

// DialFunc opens a fresh transport of the given network to a server string
// (host, host:port, [v6]:port).
type DialFunc func(ctx context.Context, server string, network Network) (Transport, error)

// Negotiator adds to Session what the old client's main loop did around it:
// the version fallback (spec §2.4), UDP first then TCP (§1.5), and
// following redirects (§5.5), with loops detected instead of followed.
type Negotiator struct {
	Dial    DialFunc
	Creds   Credentials // Server is set per attempt
	Request Request
	// MaxRedirects bounds the redirect depth; 0 means 4.
	MaxRedirects int
	// TCPFallbackDelay is how long the first UDP attempt may go without any
	// answer before a TCP attempt is started beside it (v6v4, v6anyv4,
	// v4v6); the first to produce an offer wins and the other is closed.
	// 0 means DefaultTCPFallbackDelay; negative waits until UDP gives up,
	// as the old client did. v6udpv4 never uses TCP.
	TCPFallbackDelay time.Duration
	// TCPAtOnce starts TCP beside UDP from the first moment
	// (tcp_fallback_delay 0); TCPFallbackDelay is not used then.
	TCPAtOnce bool
	// OrderBrokers, when set, gets the servers of each redirect (those not
	// tried yet) and who named them, and returns them in the order to try,
	// e.g. by measured distance (spec §7.1). Servers it leaves out are not
	// tried; when it leaves none, its error says why.
	OrderBrokers func(ctx context.Context, servers []string, from Origin) ([]string, error)
	// From says who named the server given to Negotiate: the zero value
	// for the configured one. A remembered redirect target (a broker list
	// entry, the last server) is held to the redirect rules: the address
	// policy before any socket connects, and never PLAIN.
	From   Origin
	CNonce func() string
	Log    *logx.Logger

	// fallbackTimer, when set (tests), stands in for the TCP fallback
	// timer: it gets the delay and returns the channel that fires.
	fallbackTimer func(time.Duration) <-chan time.Time
}

// Result is a negotiated, not yet accepted, tunnel.
type Result struct {
	Session *Session // its transport is open; Accept or Reject, then Close
	Offer   *Offer
	Server  string // the broker that made the offer, after redirects
	Origin  Origin // who named Server
}

// Negotiate obtains an offer from server or from the brokers it redirects to.
func (n *Negotiator) Negotiate(ctx context.Context, server string) (*Result, error) {
	maxDepth := n.MaxRedirects
	if maxDepth == 0 {
		maxDepth = 4
	}
	if n.From.Redirect && n.Creds.Method == AuthPlain {
		return nil, fmt.Errorf("%w: %s was named by a broker's redirect and would get the password in clear; configure it as server, or use digest-md5", ErrPlainRedirect, server)
	}
	seen := map[string]bool{server: true}
	list := []string{server}
	from := n.From // who named the servers of list
	for depth := 0; ; depth++ {
		// A redirect's targets are dialled with the address policy
		// applied to where each one's name leads (see policy.go).
		cur := n
		if from.Redirect {
			m := *n
			m.Dial = policyDial(n.Dial, from)
			cur = &m
		}
		var lastErr error
		var redirect *RedirectError
		for _, cand := range list {
			res, err := cur.negotiateServer(ctx, cand)
			if err == nil {
				res.Origin = from
				return res, nil
			}
			if ctx.Err() != nil {
				return nil, err
			}
			if errors.As(err, &redirect) {
				break
			}
			lastErr = err
			if !unreachable(err) {
				return nil, err // the broker answered and refused: failing over would not help
			}
		}
		if redirect == nil {
			return nil, lastErr
		}
		if n.Creds.Method == AuthPlain {
			// PLAIN only to the broker the operator configured: a redirect
			// target is whoever the broker, or the path to it, names. The
			// operator may configure one of the listed brokers instead.
			return nil, fmt.Errorf("%w (it would send the password in clear to a broker not configured; configure one of them as server, or use digest-md5): %w", ErrPlainRedirect, redirect)
		}
		if depth+1 > maxDepth {
			return nil, fmt.Errorf("%w: more than %d redirects", ErrRedirectLoop, maxDepth)
		}
		list = list[:0:0]
		for _, b := range redirect.Brokers {
			s := b.ServerString()
			if !seen[s] {
				seen[s] = true
				list = append(list, s)
			}
		}
		if len(list) == 0 {
			return nil, fmt.Errorf("%w: every broker in the redirect was already tried", ErrRedirectLoop)
		}
		from = Origin{Redirect: true, SameHost: redirect.viaLoopback}
		if n.OrderBrokers != nil {
			var err error
			if list, err = n.OrderBrokers(ctx, list, from); len(list) == 0 {
				if err == nil {
					err = errors.New("the ordering left none")
				}
				return nil, fmt.Errorf("%w: no usable broker in the redirect: %w", ErrRedirect, err)
			}
		}
		n.log().Info("broker redirect", "brokers", len(list), "first", list[0])
	}
}

// policyDial wraps dial for the targets of a redirect: the address a
// target's name leads to must pass the policy too, checked before anything
// is sent. The context tells the dialer who named the server, so that
// NetDialer checks each address before it connects; the check of the
// connected transport catches a dialer that does not. A refused target
// counts as a failed dial, so the next one in the list is tried.
func policyDial(dial DialFunc, from Origin) DialFunc {
	return func(ctx context.Context, server string, network Network) (Transport, error) {
		t, err := dial(WithOrigin(ctx, from), server, network)
		if err != nil {
			return nil, err
		}
		if err := from.Check(server, t.RemoteAddr().Addr()); err != nil {
			t.Close()
			return nil, err
		}
		return t, nil
	}
}

// dialError marks a failure to open the transport at all.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// unreachable: the broker never took part (no answer, port closed, no
// route), so another transport or broker may do better.
func unreachable(err error) bool {
	var d *dialError
	return errors.As(err, &d) || errors.Is(err, ErrNoReply) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EHOSTUNREACH) || errors.Is(err, syscall.ENETUNREACH)
}

// Unreachable reports whether err means the broker never took part in the
// exchange (no answer, port closed, no route), as opposed to a broker that
// answered and refused. Supervisors fail over to another broker on it.
func Unreachable(err error) bool { return unreachable(err) }

// lane is the outcome of one transport's walk through the versions.
type lane struct {
	res       *Result
	err       error
	tcp       bool
	exhausted bool // UDP: every 2.0.x version was refused
}

// negotiateServer tries one broker: UDP through the versions and, except
// for v6udpv4, TCP when UDP stays silent for TCPFallbackDelay or fails to
// reach the broker, whichever comes first.
func (n *Negotiator) negotiateServer(ctx context.Context, server string) (*Result, error) {
	if n.Request.Type == V6UDPV4 {
		// The tunnel must share the UDP socket.
		res, _, err := n.udpLane(ctx, server, nil)
		return res, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	lanes := make(chan lane, 2)
	var answered atomic.Bool
	go func() {
		res, exhausted, err := n.udpLane(ctx, server, &answered)
		lanes <- lane{res: res, err: err, exhausted: exhausted}
	}()
	pending, tcpStarted := 1, false
	startTCP := func(onlyOld bool) {
		pending++
		tcpStarted = true
		go func() {
			res, err := n.tcpLane(ctx, server, onlyOld)
			lanes <- lane{res: res, err: err, tcp: true}
		}()
	}
	var timer <-chan time.Time
	if d := n.fallbackDelay(); d >= 0 && n.fallbackTimer != nil {
		timer = n.fallbackTimer(d)
	} else if d >= 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	// finish stops the other lane and waits for it, discarding an offer it
	// may have obtained meanwhile, so nothing stays open after return.
	finish := func(res *Result, err error) (*Result, error) {
		cancel()
		for ; pending > 0; pending-- {
			if l := <-lanes; l.err == nil {
				l.res.discard()
			}
		}
		return res, err
	}
	var udpErr error
	for pending > 0 {
		select {
		case <-timer:
			timer = nil
			if !answered.Load() && !tcpStarted {
				n.log().Info("no answer over UDP yet, trying TCP beside it", "server", server, "after", n.fallbackDelay())
				startTCP(false)
			}
		case l := <-lanes:
			pending--
			switch {
			case l.err == nil:
				return finish(l.res, nil)
			case !l.tcp && (l.exhausted || unreachable(l.err)):
				udpErr = l.err
				if !tcpStarted {
					if !l.exhausted {
						n.log().Info("no answer over UDP, trying TCP", "server", server)
					}
					startTCP(l.exhausted)
				}
			case l.tcp && unreachable(l.err) && pending > 0:
				// UDP may still get through.
				udpErr = l.err
			default:
				// A broker that answered and refused, or the last lane.
				return finish(nil, l.err)
			}
		}
	}
	return nil, udpErr
}

func (n *Negotiator) fallbackDelay() time.Duration {
	if n.TCPAtOnce {
		return 0
	}
	if n.TCPFallbackDelay == 0 {
		return DefaultTCPFallbackDelay
	}
	return n.TCPFallbackDelay
}

// udpLane walks the 2.0.x versions over UDP. exhausted reports that the
// broker refused every one of them.
func (n *Negotiator) udpLane(ctx context.Context, server string, answered *atomic.Bool) (_ *Result, exhausted bool, _ error) {
	var lastErr error
	for _, v := range versionOrder[:3] {
		res, err := n.attempt(ctx, server, UDP, v, answered)
		if err == nil {
			return res, false, nil
		}
		lastErr = err
		if !badVersion(err) {
			return nil, false, err
		}
		n.log().Info("broker refused version, falling back", "server", server, "version", v)
	}
	return nil, true, lastErr
}

// tcpLane walks the versions over TCP; onlyOld when UDP already saw every
// 2.0.x refused, so that only the TCP-only 1.0.1 is left.
func (n *Negotiator) tcpLane(ctx context.Context, server string, onlyOld bool) (*Result, error) {
	versions := versionOrder[:]
	if onlyOld {
		versions = versionOrder[3:]
	}
	if n.Request.Type == V4V6 {
		versions = versions[:min(len(versions), 3)]
	}
	var lastErr error
	for _, v := range versions {
		res, err := n.attempt(ctx, server, TCP, v, nil)
		if err == nil {
			return res, nil
		}
		lastErr = err
		if !badVersion(err) {
			return nil, err
		}
		n.log().Info("broker refused version, falling back", "server", server, "version", v)
	}
	return nil, lastErr
}

func badVersion(err error) bool {
	var st *StatusError
	return errors.As(err, &st) && st.Phase == "capability" && st.Code == StatusBadVersion
}

// answerWatch marks answered once the broker replied to anything, so the
// TCP fallback is not started beside a session that is merely slow.
type answerWatch struct {
	Transport
	answered *atomic.Bool
}

func (w answerWatch) Exchange(ctx context.Context, msg []byte) ([]byte, error) {
	b, err := w.Transport.Exchange(ctx, msg)
	if err == nil {
		w.answered.Store(true)
	}
	return b, err
}

func (n *Negotiator) attempt(ctx context.Context, server string, network Network, version string, answered *atomic.Bool) (*Result, error) {
	t, err := n.Dial(ctx, server, network)
	if err != nil {
		return nil, &dialError{fmt.Errorf("tsp dial %s %s: %w", network, server, err)}
	}
	creds := n.Creds
	creds.Server = server
	s := &Session{T: t, Version: version, Creds: creds, Request: n.Request, CNonce: n.CNonce, Log: n.Log}
	if answered != nil {
		s.T = answerWatch{Transport: t, answered: answered}
	}
	offer, err := s.Negotiate(ctx)
	s.T = t // callers type-assert the transport (RUDP.Detach)
	if err != nil {
		t.Close()
		return nil, err
	}
	return &Result{Session: s, Offer: offer, Server: server}, nil
}

// discard rejects an offer that lost the race and closes its transport.
func (r *Result) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	_ = r.Session.Reject(ctx)
	_ = r.Session.T.Close()
}

func (n *Negotiator) log() *logx.Logger {
	if n.Log == nil {
		return logx.Discard()
	}
	return n.Log
}
