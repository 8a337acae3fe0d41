package tsp

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
)

// ErrRedirectLoop: following redirects led back to a broker already tried,
// or went deeper than Negotiator.MaxRedirects.
var ErrRedirectLoop = errors.New("broker redirect loop")

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
	CNonce       func() string
	Log          *slog.Logger
}

// Result is a negotiated, not yet accepted, tunnel.
type Result struct {
	Session *Session // its transport is open; Accept or Reject, then Close
	Offer   *Offer
	Server  string // the broker that made the offer, after redirects
}

// Negotiate obtains an offer from server or from the brokers it redirects to.
func (n *Negotiator) Negotiate(ctx context.Context, server string) (*Result, error) {
	maxDepth := n.MaxRedirects
	if maxDepth == 0 {
		maxDepth = 4
	}
	seen := map[string]bool{server: true}
	list := []string{server}
	for depth := 0; ; depth++ {
		var lastErr error
		var redirect *RedirectError
		for _, cand := range list {
			res, err := n.negotiateServer(ctx, cand)
			if err == nil {
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
		n.log().Info("broker redirect", "brokers", len(list), "first", list[0])
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

// negotiateServer walks the transports and versions for one broker.
func (n *Negotiator) negotiateServer(ctx context.Context, server string) (*Result, error) {
	networks := []Network{UDP, TCP}
	if n.Request.Type == V6UDPV4 {
		networks = networks[:1] // the tunnel must share the UDP socket
	}
	versionsExhausted := false
	var lastErr error
	for _, network := range networks {
		versions := versionOrder[:3]
		if network == TCP {
			if versionsExhausted {
				// UDP refused every 2.0.x: only the TCP-only 1.0.1 is left.
				versions = versionOrder[3:]
			} else {
				versions = versionOrder[:]
			}
			if n.Request.Type == V4V6 {
				versions = versions[:min(len(versions), 3)]
			}
		}
		for _, v := range versions {
			res, err := n.attempt(ctx, server, network, v)
			if err == nil {
				return res, nil
			}
			lastErr = err
			var st *StatusError
			if errors.As(err, &st) && st.Phase == "capability" && st.Code == StatusBadVersion {
				n.log().Info("broker refused version, falling back", "server", server, "version", v)
				versionsExhausted = true
				continue
			}
			versionsExhausted = false
			if network == UDP && unreachable(err) && len(networks) > 1 {
				n.log().Info("no answer over UDP, trying TCP", "server", server)
				break
			}
			return nil, err
		}
	}
	return nil, lastErr
}

func (n *Negotiator) attempt(ctx context.Context, server string, network Network, version string) (*Result, error) {
	t, err := n.Dial(ctx, server, network)
	if err != nil {
		return nil, &dialError{fmt.Errorf("tsp dial %s %s: %w", network, server, err)}
	}
	creds := n.Creds
	creds.Server = server
	s := &Session{T: t, Version: version, Creds: creds, Request: n.Request, CNonce: n.CNonce, Log: n.Log}
	offer, err := s.Negotiate(ctx)
	if err != nil {
		t.Close()
		return nil, err
	}
	return &Result{Session: s, Offer: offer, Server: server}, nil
}

func (n *Negotiator) log() *slog.Logger {
	if n.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return n.Log
}
