package main

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/radv"
	"github.com/jsklein/gogoc/router"
	"github.com/jsklein/gogoc/tsp"
	"github.com/jsklein/gogoc/tunnel"
)

// lanSide is router mode's LAN half, driven by the tunnel's life cycle.
type lanSide interface {
	// Up applies the offer's prefix (deprecating a different previous one)
	// and advertises a router lifetime > 0.
	Up(ctx context.Context, o *tsp.Offer, tunIf string) error
	// Down: the tunnel is lost. RAs say router lifetime 0; the prefix stays.
	Down()
	// Close sends the final RA (lifetime 0, prefixes deprecated) and
	// removes everything.
	Close() error
}

// newLAN returns the LAN side for a router configuration, nil for a host.
func newLAN(c *config.Config, log *logx.Logger) (lanSide, error) {
	if c.HostType != config.HostTypeRouter {
		return nil, nil
	}
	if c.IfPrefix == "" {
		return nil, errors.New("router mode needs if_prefix (the LAN device)")
	}
	h, err := rtlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("netlink: %w", err)
	}
	return &lan{cfg: c, log: log.With("lan", c.IfPrefix), h: h, rt: router.New(h, router.ProcSysctl{}, log)}, nil
}

// lan implements lanSide with package router and, for ra builtin, a radv
// Server that lives from the first Up to Close.
type lan struct {
	cfg *config.Config
	log *logx.Logger
	h   *rtlink.Handle
	rt  *router.Router

	mu     sync.Mutex
	srv    *radv.Server
	params radv.Params
	stop   context.CancelFunc
	done   chan error
}

func (l *lan) Up(ctx context.Context, o *tsp.Offer, tunIf string) error {
	if !o.Prefix.IsValid() {
		return errors.New("router mode: the broker delegated no prefix")
	}
	// The configuration checked subnet_id against the requested length;
	// the broker may have delegated a longer prefix.
	lanPfx, err := router.LANPrefix(o.Prefix, l.cfg.SubnetID)
	if err != nil {
		return fmt.Errorf("router mode: %w", err)
	}
	if err := l.rt.Apply(router.Plan{LANIf: l.cfg.IfPrefix, TunIf: tunIf, Delegated: o.Prefix, LAN: lanPfx}); err != nil {
		return err
	}
	if l.cfg.RA == config.RANone {
		return nil
	}
	p := radv.Params{Up: true, Prefixes: []radv.Prefix{lifetimes(lanPfx, o.Lifetime)}, MTU: tunnel.DefaultMTU}
	if o.MTU >= 1280 && o.MTU <= 65535 {
		p.MTU = o.MTU
	}
	if o.Prefix.Bits() < 64 {
		p.Routes = []netip.Prefix{o.Prefix}
	}
	p.DNS = l.cfg.DNSServersRA
	if len(p.DNS) == 0 {
		for _, a := range o.DNSServers {
			if a.Is6() && !a.Is4In6() {
				p.DNS = append(p.DNS, a)
			}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv == nil {
		if err := l.startRA(p); err != nil {
			// Without RAs the LAN cannot use the prefix: undo, and let
			// the caller retry the whole set-up.
			if rerr := l.rt.Remove(); rerr != nil {
				l.log.Error("LAN tear-down", "err", rerr)
			}
			return err
		}
	} else if err := l.srv.Update(p); err != nil {
		return err
	}
	l.params = p
	return nil
}

// lifetimes bounds the advertised lifetimes by the offer's lifetime.
func lifetimes(p netip.Prefix, granted time.Duration) radv.Prefix {
	x := radv.Prefix{Prefix: p, Valid: radv.DefaultValidLifetime, Preferred: radv.DefaultPreferredLifetime}
	if granted > 0 {
		x.Valid = min(x.Valid, granted)
		x.Preferred = min(x.Preferred, granted)
	}
	return x
}

// startRA opens the socket and runs a server that advertises p (l.mu held).
func (l *lan) startRA(p radv.Params) error {
	conn, hw, err := radv.Listen(l.cfg.IfPrefix)
	if err != nil {
		return err
	}
	// radvd's timing (radv defaults); only the link-layer address is ours.
	srv, err := radv.New(radv.Config{LinkAddr: hw})
	if err == nil {
		err = srv.Update(p) // before Serve: its first RA says it all
	}
	if err != nil {
		_ = conn.Close()
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		err := srv.Serve(ctx, conn)
		_ = conn.Close()
		if err != nil {
			l.log.Error("router advertisements stopped", "err", err)
		}
		done <- err
	}()
	l.srv, l.stop, l.done = srv, cancel, done
	l.log.Info("sending router advertisements")
	return nil
}

func (l *lan) Down() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.srv == nil {
		return
	}
	p := l.params
	p.Up = false
	if err := l.srv.Update(p); err != nil {
		l.log.Error("router advertisements", "err", err)
	}
}

func (l *lan) Close() error {
	l.mu.Lock()
	srv, stop, done := l.srv, l.stop, l.done
	l.srv, l.stop, l.done = nil, nil, nil
	l.mu.Unlock()
	var errs []error
	if stop != nil {
		stop() // Serve sends the final RA before it returns
		errs = append(errs, <-done)
		st := srv.Stats()
		l.log.Info("router advertisements stopped", "wakeups", st.Wakeups, "multicast", st.Multicast,
			"unicast", st.Unicast, "solicitations", st.Solicits, "dropped", st.Dropped, "write_errors", st.WriteErrors)
	}
	errs = append(errs, l.rt.Remove())
	l.h.Close()
	return errors.Join(errs...)
}
