// Package lan is router mode's LAN side: it gives the LAN device its
// address from the delegated prefix (package router) and, unless another
// daemon advertises, runs the Router Advertisement server there (package
// radv) from the first tunnel to the end.
//
// It takes plain values: the caller maps a broker's offer onto an Uplink
// and the configuration onto a Config. It knows nothing of the protocol or
// of the configuration file.
package lan

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/radv"
	"github.com/jsklein/gogoc/router"
)

// Uplink is what the tunnel brings for the LAN.
type Uplink struct {
	// Delegated is the prefix the broker delegated; the LAN gets its /64
	// number Config.SubnetID.
	Delegated netip.Prefix
	// Lifetime bounds the advertised prefix lifetimes; 0: no bound.
	Lifetime time.Duration
	// MTU of the tunnel, advertised on the LAN; outside 1280..65535 the
	// IPv6 minimum (1280) is advertised.
	MTU int
	// DNS servers the broker offered; IPv6 ones are advertised (RDNSS)
	// unless Config.DNS replaces them.
	DNS []netip.Addr
}

// Config is the LAN side's fixed part.
type Config struct {
	// Interface is the LAN device (if_prefix), e.g. br-lan.
	Interface string
	// SubnetID numbers the LAN's /64 inside the delegated prefix.
	SubnetID uint64
	// Advertise runs the RA server (ra builtin); without it another daemon
	// advertises and only the address, forwarding and routes are set.
	Advertise bool
	// DNS, when set, is advertised instead of the uplink's servers.
	DNS []netip.Addr
	// RA tunes the RA server (intervals, lifetimes); zero: radvd's
	// defaults. LinkAddr is filled in from the device.
	RA  radv.Config
	Log *logx.Logger
	// System is the machine the LAN side changes; zero fields work on the
	// caller's network namespace.
	System System
}

// System is how the LAN side reaches the kernel. Tests point it into a
// network namespace.
type System struct {
	// Netlink for links, addresses and routes; nil opens one in the
	// caller's namespace (closed by Close).
	Netlink *rtlink.Handle
	// Sysctl for forwarding; nil is /proc/sys.
	Sysctl router.Sysctl
	// Listen opens the RA socket on a device and returns its hardware
	// address; nil is radv.Listen.
	Listen func(ifName string) (Conn, net.HardwareAddr, error)
}

// Conn is an open RA socket.
type Conn interface {
	radv.Conn
	Close() error
}

// LAN implements the daemon's LAN side. Its methods are safe for
// concurrent use.
type LAN struct {
	cfg   Config
	log   *logx.Logger
	h     *rtlink.Handle
	ownsH bool
	rt    *router.Router

	mu     sync.Mutex
	srv    *radv.Server
	params radv.Params
	stop   context.CancelFunc
	done   chan error
}

// New checks cfg; nothing changes on the system before the first Up.
func New(cfg Config) (*LAN, error) {
	if cfg.Interface == "" {
		return nil, errors.New("lan: no LAN device given")
	}
	if cfg.Log == nil {
		cfg.Log = logx.Discard()
	}
	if cfg.System.Listen == nil {
		cfg.System.Listen = func(name string) (Conn, net.HardwareAddr, error) {
			c, hw, err := radv.Listen(name)
			if err != nil {
				return nil, nil, err
			}
			return c, hw, nil
		}
	}
	l := &LAN{cfg: cfg, log: cfg.Log.With("lan", cfg.Interface), h: cfg.System.Netlink}
	if l.h == nil {
		h, err := rtlink.NewHandle()
		if err != nil {
			return nil, fmt.Errorf("lan: netlink: %w", err)
		}
		l.h, l.ownsH = h, true
	}
	l.rt = router.New(l.h, cfg.System.Sysctl, l.log)
	return l, nil
}

// Up applies the uplink's prefix (a different previous one is advertised
// deprecated) and advertises a default router.
func (l *LAN) Up(ctx context.Context, u Uplink, tunIf string) error {
	if !u.Delegated.IsValid() {
		return errors.New("router mode: the broker delegated no prefix")
	}
	// The configuration checked subnet_id against the requested length;
	// the broker may have delegated a longer prefix.
	lanPfx, err := router.LANPrefix(u.Delegated, l.cfg.SubnetID)
	if err != nil {
		return fmt.Errorf("router mode: %w", err)
	}
	if err := l.rt.Apply(router.Plan{LANIf: l.cfg.Interface, TunIf: tunIf, Delegated: u.Delegated, LAN: lanPfx}); err != nil {
		return err
	}
	if !l.cfg.Advertise {
		return nil
	}
	p := l.paramsFor(u, lanPfx)
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

// paramsFor is what the RAs say for an uplink that is up.
func (l *LAN) paramsFor(u Uplink, lanPfx netip.Prefix) radv.Params {
	p := radv.Params{Up: true, Prefixes: []radv.Prefix{lifetimes(lanPfx, u.Lifetime)}, MTU: radv.DefaultMTU}
	if u.MTU >= 1280 && u.MTU <= 65535 {
		p.MTU = u.MTU
	}
	if u.Delegated.Bits() < 64 {
		p.Routes = []netip.Prefix{u.Delegated.Masked()}
	}
	p.DNS = l.cfg.DNS
	if len(p.DNS) == 0 {
		for _, a := range u.DNS {
			if a.Is6() && !a.Is4In6() {
				p.DNS = append(p.DNS, a)
			}
		}
	}
	return p
}

// lifetimes bounds the advertised lifetimes by the uplink's lifetime.
func lifetimes(p netip.Prefix, granted time.Duration) radv.Prefix {
	x := radv.Prefix{Prefix: p, Valid: radv.DefaultValidLifetime, Preferred: radv.DefaultPreferredLifetime}
	if granted > 0 {
		x.Valid = min(x.Valid, granted)
		x.Preferred = min(x.Preferred, granted)
	}
	return x
}

// startRA opens the socket and runs a server that advertises p (l.mu held).
func (l *LAN) startRA(p radv.Params) error {
	conn, hw, err := l.cfg.System.Listen(l.cfg.Interface)
	if err != nil {
		return err
	}
	rc := l.cfg.RA
	rc.LinkAddr = hw
	srv, err := radv.New(rc)
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

// Down says the tunnel is lost: RAs carry router lifetime 0, the prefix
// stays.
func (l *LAN) Down() {
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

// Close sends the final RA (router lifetime 0, the prefix deprecated) and
// removes what Up configured.
func (l *LAN) Close() error {
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
			"unicast", st.Unicast, "solicitations", st.Solicits, "deferred", st.Deferred, "dropped", st.Dropped, "write_errors", st.WriteErrors)
	}
	errs = append(errs, l.rt.Remove())
	if l.ownsH {
		l.h.Close()
	}
	return errors.Join(errs...)
}
