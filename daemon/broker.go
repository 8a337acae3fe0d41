package daemon

import (
	"context"
	"errors"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/tsp"
)

// Broker is how the daemon talks to tunnel brokers. The configuration is
// passed on each call because SIGHUP may replace it.
type Broker interface {
	// Negotiate obtains an offer from server, which from names (a
	// remembered redirect target is held to the redirect rules), following
	// redirects; order ranks the brokers a redirect names (those it leaves
	// out are not tried; with none left, its error says why).
	Negotiate(ctx context.Context, c *config.Config, server string, from tsp.Origin,
		order func(context.Context, []string, tsp.Origin) ([]string, error)) (*tsp.Result, error)
	// Probe measures one broker's distance (spec §7.1): the round trip of
	// an answered echo and whether its address is of the wanted family.
	// The address a redirect target leads to passes the address policy
	// (from.Check) before anything is sent.
	Probe(ctx context.Context, c *config.Config, server string, from tsp.Origin) (rtt time.Duration, rightFamily bool, err error)
}

// Dialer opens a fresh TSP transport to server. v6 asks for the broker's
// IPv6 address (v4v6 reaches its broker over IPv6), else its IPv4 one.
type Dialer interface {
	Dial(ctx context.Context, server string, network tsp.Network, v6 bool) (tsp.Transport, error)
}

// SocketDialer is the production Dialer: real sockets, RUDP tuned by RUDP.
type SocketDialer struct {
	RUDP     tsp.RUDPConfig
	Resolver tsp.Resolver // nil: net.DefaultResolver
}

// Dial implements Dialer.
func (s SocketDialer) Dial(ctx context.Context, server string, network tsp.Network, v6 bool) (tsp.Transport, error) {
	nd := tsp.NetDialer{IPv6: v6, RUDP: s.RUDP, Resolver: s.Resolver}
	return nd.Dial(ctx, server, network)
}

// DefaultRUDP is the retransmission the daemon's sockets use: the spec's
// values except the 1 s timeout (DefaultRTO).
func DefaultRUDP() tsp.RUDPConfig {
	return tsp.RUDPConfig{
		InitialRTO:     DefaultRTO,
		MinRTO:         DefaultRTO,
		MaxRTO:         tsp.DefaultRUDPMaxRTO,
		MaxTriesNoPeer: tsp.DefaultRUDPMaxTriesNoPeer,
		MaxTriesPeer:   tsp.DefaultRUDPMaxTriesPeer,
		Now:            time.Now,
	}
}

// TSPBroker is the production Broker: tsp.Negotiator over Dialer's
// transports, and the TSP echo for distances. Build it with NewTSPBroker
// and change what a test needs.
type TSPBroker struct {
	// Params maps the configuration onto the request and credentials
	// (Params, or the command's mapping with its key prompt).
	Params func(*config.Config) (tsp.Request, tsp.Credentials)
	Dialer Dialer
	// ProbeTries echoes of ProbeTimeout each measure one broker.
	ProbeTries   int
	ProbeTimeout time.Duration
	// Resolver looks broker names up for the distance probes (nil:
	// net.DefaultResolver); the Dialer has its own.
	Resolver tsp.Resolver
	Log      *logx.Logger
}

// NewTSPBroker returns a TSPBroker with real sockets (DefaultRUDP) and
// two echoes of 1 s per distance probe.
func NewTSPBroker(params func(*config.Config) (tsp.Request, tsp.Credentials), log *logx.Logger) *TSPBroker {
	return &TSPBroker{Params: params, Dialer: SocketDialer{RUDP: DefaultRUDP()}, ProbeTries: 2, ProbeTimeout: time.Second, Log: log}
}

// Negotiate implements Broker.
func (b *TSPBroker) Negotiate(ctx context.Context, c *config.Config, server string, from tsp.Origin,
	order func(context.Context, []string, tsp.Origin) ([]string, error)) (*tsp.Result, error) {
	if b.Params == nil || b.Dialer == nil {
		return nil, errors.New("daemon: TSPBroker needs Params and a Dialer (NewTSPBroker)")
	}
	req, creds := b.Params(c)
	v6 := req.Type == tsp.V4V6
	n := &tsp.Negotiator{
		Dial: func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
			return b.Dialer.Dial(ctx, server, network, v6)
		},
		Request: req, Creds: creds, Log: b.Log,
		// tcp_fallback_delay 0 is "at once", not the protocol default.
		TCPFallbackDelay: c.TCPFallbackDelay, TCPAtOnce: c.TCPFallbackDelay == 0,
		OrderBrokers: order, From: from,
	}
	return n.Negotiate(ctx, server)
}

// Probe implements Broker with the TSP echo.
func (b *TSPBroker) Probe(ctx context.Context, c *config.Config, server string, from tsp.Origin) (time.Duration, bool, error) {
	e := Echo{V6: c.TunnelMode == config.TunnelV4V6, From: from, Resolver: b.Resolver, Tries: b.ProbeTries, Timeout: b.ProbeTimeout}
	return e.Probe(ctx, server)
}
