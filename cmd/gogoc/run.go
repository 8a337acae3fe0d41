package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// cmdRun negotiates a tunnel, brings it up and keeps it up until SIGINT or
// SIGTERM, renegotiating when the keepalive is lost or the broker ends the
// session. It is a simple loop; the full supervisor comes later.
func cmdRun(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("gogoc run", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bf := addBrokerFlags(fs)
	verbose := fs.Bool("v", false, "debug logging to stderr")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "gogoc run: unexpected arguments %q\n", fs.Args())
		return 2
	}
	c, ok := bf.config(fs, "gogoc run", stderr)
	if !ok {
		return 2
	}
	if !c.Enabled {
		// The OpenWrt default ships disabled: say how to turn it on rather
		// than dial a broker the owner has not configured yet.
		fmt.Fprintln(stderr, "gogoc run: disabled by the configuration (set option enabled '1')")
		return 1
	}
	level := slog.LevelInfo
	if *verbose {
		level = slog.LevelDebug
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: level}))

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r := &runner{cfg: c, log: log, stdout: stdout}
	r.loop(ctx)
	log.Info("stopped")
	return 0
}

// runner holds what one `gogoc run` needs across renegotiations.
type runner struct {
	cfg    *config.Config
	log    *slog.Logger
	stdout io.Writer
	// dial, when set, replaces tsp.NetDialer (tests).
	dial tsp.DialFunc
	// up, when set, is told about each tunnel that came up (tests).
	up func(tunnel.Tunnel)
}

// session is one established tunnel and the socket it came from.
type session struct {
	t      tunnel.Tunnel
	closer io.Closer // the TSP socket (v6udpv4: the detached one)
}

// close tears the tunnel down first (device, addresses, routes), then the
// socket it was using.
func (s *session) close() error {
	err := s.t.Close()
	if cerr := s.closer.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close tsp socket: %w", cerr)
	}
	return err
}

// loop runs until ctx is done: negotiate, hold the tunnel, and on failure
// or loss wait a back-off (1 s doubling up to retry_delay_max) and start
// over.
func (r *runner) loop(ctx context.Context) {
	const first = time.Second
	maxDelay := max(r.cfg.RetryDelayMax, first)
	delay := first
	for {
		s, err := r.establish(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			r.log.Error("tunnel set-up failed", "server", r.cfg.Server, "err", err, "retry_in", delay)
		} else {
			delay = first // it worked: the next failure starts small again
			reason := r.hold(ctx, s.t)
			if err := s.close(); err != nil {
				r.log.Error("tunnel tear-down", "err", err)
			}
			if ctx.Err() != nil {
				return
			}
			r.log.Warn("tunnel lost, renegotiating", "reason", reason, "retry_in", delay)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
		delay = min(delay*2, maxDelay)
	}
}

// establish negotiates, accepts and builds the tunnel. On error nothing it
// opened stays open.
func (r *runner) establish(ctx context.Context) (_ *session, err error) {
	req, creds := tspParams(r.cfg)
	dial := r.dial
	if dial == nil {
		d := &tsp.NetDialer{IPv6: req.Type == tsp.V4V6}
		dial = d.Dial
	}
	n := &tsp.Negotiator{Dial: dial, Request: req, Creds: creds, Log: r.log}
	res, err := n.Negotiate(ctx, r.cfg.Server)
	if err != nil {
		return nil, fmt.Errorf("negotiate: %w", err)
	}
	var closer io.Closer = res.Session.T
	defer func() {
		if err != nil {
			_ = closer.Close()
		}
	}()
	o := res.Offer
	ifName := r.cfg.TunnelInterface(config.TunnelMode(o.Type))
	tcfg := tunnel.Config{
		Offer:        *o,
		IfName:       ifName,
		DefaultRoute: true,
		RouteMetric:  r.cfg.RouteMetric,
		Keepalive: tunnel.KeepaliveConfig{
			Misses:  r.cfg.KeepaliveMisses,
			Timeout: r.cfg.KeepaliveTimeout,
		},
		Log: r.log,
	}
	switch o.Type {
	case tsp.V6UDPV4, tsp.V6V4:
	default:
		_ = res.Session.Reject(ctx)
		return nil, fmt.Errorf("offer of type %s: %w", o.Type, tunnel.ErrUnsupported)
	}
	if err := res.Session.Accept(ctx); err != nil {
		return nil, err
	}
	switch o.Type {
	case tsp.V6UDPV4:
		// The tunnel shares the TSP socket: same 5-tuple, same NAT mapping.
		ru, ok := res.Session.T.(*tsp.RUDP)
		if !ok {
			return nil, fmt.Errorf("v6udpv4 offer over %s transport", res.Session.T.Network())
		}
		conn := ru.Detach()
		if conn == nil {
			return nil, errors.New("v6udpv4: TSP socket already closed")
		}
		closer, tcfg.Conn = conn, conn
	case tsp.V6V4:
		// Send protocol 41 from the address the broker saw us use.
		tcfg.LocalV4 = res.Session.T.LocalAddr().Addr().Unmap()
	}
	t, err := tunnel.NewUserspace(ctx, tcfg)
	if err != nil {
		return nil, fmt.Errorf("tunnel %s on %s: %w", o.Type, ifName, err)
	}
	r.log.Info("tunnel established", "type", o.Type, "if", t.Name(), "client", o.ClientV6, "server", o.ServerV4,
		"prefix", o.Prefix, "keepalive", o.KeepaliveInterval, "broker", res.Server)
	fmt.Fprintf(r.stdout, "tunnel up: %s %s %s via %s\n", o.Type, t.Name(), o.ClientV6, o.ServerV4)
	if r.up != nil {
		r.up(t)
	}
	return &session{t: t, closer: closer}, nil
}

// hold waits for ctx or for an event that means the tunnel is gone, and
// says which.
func (r *runner) hold(ctx context.Context, t tunnel.Tunnel) string {
	for {
		select {
		case <-ctx.Done():
			return "signalled"
		case ev, ok := <-t.Events():
			if !ok {
				return "tunnel closed"
			}
			switch ev.Kind {
			case tunnel.KeepaliveLost, tunnel.BrokerControl, tunnel.IOError:
				return ev.String()
			default:
				r.log.Info("tunnel event", "event", ev.String())
			}
		}
	}
}
