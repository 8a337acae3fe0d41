// Package lan is router mode's LAN side: it gives the LAN device its
// address from the delegated prefix (package router) and, unless another
// daemon advertises, runs the Router Advertisement server there (package
// radv) from the first tunnel to the end.
//
// It takes plain values: the caller maps a broker's offer onto an Uplink
// and the configuration onto a Config. It knows nothing of the protocol or
// of the configuration file.
//
// The RAs carry, besides the delegated /64, the other prefixes of the LAN
// device's own addresses (the ULA netifd gives br-lan, a prefix from
// another uplink), so that the LAN keeps what odhcpd advertised before
// gogoc took the RAs over; see linkPrefixes for which. They are kept
// current as the device's addresses change, and the final RA leaves them
// as they are: only the delegated prefix is gogoc's to withdraw.
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
	"golang.org/x/sys/unix"
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
	// Managed, Other and HomeAgent are the RAs' M, O and H flags (the
	// OpenWrt dhcp section's ra_flags).
	Managed, Other, HomeAgent bool
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
	// Watch leaves a token on its channel whenever links or IPv6
	// addresses change, and closes it when it fails; nil is
	// rtlink.WatchLinksAt in the caller's namespace.
	Watch func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error)
}

// Conn is an open RA socket.
type Conn interface {
	radv.Conn
	Close() error
}

// Timing of the keeper (see keep).
const (
	// pollEvery looks at the device when the link watch is not working.
	pollEvery = 5 * time.Second
	// Failed attempts are retried after retryMin, doubling up to
	// socketRetryMax for the RA socket and retryMax for the address.
	retryMin       = 100 * time.Millisecond
	socketRetryMax = 500 * time.Millisecond
	retryMax       = 30 * time.Second
	// A server that ran this long counts as a success: the next failure
	// starts the back-off again at retryMin.
	servedLong = 10 * time.Second
	// lookSoon and soonLooks: how often and how many times a missing or
	// down device is looked at before the looks space out.
	lookSoon  = 250 * time.Millisecond
	soonLooks = 8
	// startGrace: after Start, RAs wait this long for the first tunnel,
	// so that its RA is the first and says everything at once (multicast
	// RAs are at least 3 s apart). Without a tunnel by then, the RAs go
	// out with the link's own prefixes and router lifetime 0.
	startGrace = 2 * time.Second
)

// LAN implements the daemon's LAN side. Its methods are safe for
// concurrent use.
//
// From the first Up to Close a keeper goroutine owns the RA socket and
// follows the LAN device: when the device goes away (a network restart
// deletes and re-creates the bridge, which gets a new index) or goes down,
// the socket is dropped; when it is back, the LAN address and forwarding
// are restored and a new socket starts with an RA at once. It learns of
// changes from link notifications and from writes that fail because the
// link is gone; while the device is missing it looks for it every few
// seconds at most, which costs next to nothing.
type LAN struct {
	cfg   Config
	log   *logx.Logger
	h     *rtlink.Handle
	ownsH bool
	rt    *router.Router
	srv   *radv.Server // nil without Advertise

	// upMu keeps Up and the keeper's reading of the device's prefixes
	// apart: which addresses are gogoc's own depends on the plan.
	upMu sync.Mutex

	mu      sync.Mutex
	plan    *router.Plan  // what the last Up asked for
	uplink  radv.Params   // what the RAs say for the uplink
	link    []radv.Prefix // the device's other prefixes (linkPrefixes)
	started time.Time     // Start; zero before
	kick    chan struct{}
	stop    context.CancelFunc
	done    chan struct{}
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
	if cfg.System.Watch == nil {
		cfg.System.Watch = func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
			return rtlink.WatchLinksAt(0, done, onErr)
		}
	}
	l := &LAN{cfg: cfg, log: cfg.Log.With("lan", cfg.Interface), h: cfg.System.Netlink, kick: make(chan struct{}, 1)}
	if cfg.Advertise {
		srv, err := radv.New(cfg.RA)
		if err != nil {
			return nil, fmt.Errorf("lan: %w", err)
		}
		l.srv = srv
	}
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
// deprecated) and advertises a default router. A LAN device that does not
// exist yet is not an error: the address and the RAs follow when it
// appears.
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
	plan := router.Plan{LANIf: l.cfg.Interface, TunIf: tunIf, Delegated: u.Delegated, LAN: lanPfx}
	l.upMu.Lock()
	defer l.upMu.Unlock()
	if err := l.rt.Apply(plan); err != nil {
		if !rtlink.IsNotFound(err) {
			return err
		}
		l.log.Warn("LAN device missing; its address and advertisements follow when it appears", "err", err)
	}
	p := l.paramsFor(u, lanPfx)
	// The first RA with the prefix should carry the link's prefixes too.
	link, lerr := l.readLink(u.Delegated)
	l.mu.Lock()
	prev := l.uplink
	l.uplink = p
	if lerr == nil {
		l.link = link
	}
	err = l.publish()
	if err != nil {
		l.uplink = prev
	} else {
		l.plan = &plan
	}
	l.mu.Unlock()
	if err != nil {
		if rerr := l.rt.Remove(); rerr != nil {
			l.log.Error("LAN tear-down", "err", rerr)
		}
		return err
	}
	l.Start()
	l.poke()
	return nil
}

// Start runs the keeper: from now on the LAN side follows the device, and
// after startGrace without a tunnel it advertises the link's own prefixes
// (router lifetime 0). Up starts it too; Close ends it.
func (l *LAN) Start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stop != nil {
		return
	}
	ctx, cancel := context.WithCancel(context.Background())
	l.stop, l.done, l.started = cancel, make(chan struct{}), time.Now()
	go l.keep(ctx)
}

// publish hands the RA server what it should say now (l.mu held).
func (l *LAN) publish() error {
	if l.srv == nil {
		return nil
	}
	p := l.uplink
	p.Prefixes = append(append([]radv.Prefix(nil), p.Prefixes...), l.link...)
	p.Managed, p.Other, p.HomeAgent = l.cfg.Managed, l.cfg.Other, l.cfg.HomeAgent
	return l.srv.Update(p)
}

// readLink lists the LAN device's addresses and returns its other
// prefixes (delegated is the uplink's, which they leave out).
func (l *LAN) readLink(delegated netip.Prefix) ([]radv.Prefix, error) {
	link, err := l.h.LinkByName(l.cfg.Interface)
	if err != nil {
		return nil, err
	}
	addrs, err := l.h.AddrList(link.Index, unix.AF_INET6)
	if err != nil {
		return nil, err
	}
	ps, dropped := linkPrefixes(addrs, delegated, time.Now())
	if dropped > 0 {
		l.log.Warn("LAN device has more prefixes than an RA carries; some are not advertised", "advertised", len(ps), "left_out", dropped)
	}
	return ps, nil
}

// refreshLink re-reads the device's prefixes and has the RAs follow when
// they changed.
func (l *LAN) refreshLink() error {
	l.upMu.Lock()
	defer l.upMu.Unlock()
	l.mu.Lock()
	var delegated netip.Prefix
	if l.plan != nil {
		delegated = l.plan.Delegated
	}
	l.mu.Unlock()
	link, err := l.readLink(delegated)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if sameLink(l.link, link) {
		return nil
	}
	l.link = link
	l.log.Info("LAN device prefixes changed", "prefixes", prefixList(link))
	return l.publish()
}

// poke has the keeper look at the device now.
func (l *LAN) poke() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
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

// Down says the tunnel is lost: RAs carry router lifetime 0, the prefix
// stays.
func (l *LAN) Down() {
	if l.srv == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.plan == nil {
		return
	}
	l.uplink.Up = false
	if err := l.publish(); err != nil {
		l.log.Error("router advertisements", "err", err)
	}
}

// Close sends the final RA (router lifetime 0, the prefix deprecated) if
// the device is there, and removes what Up configured.
func (l *LAN) Close() error {
	l.mu.Lock()
	stop, done := l.stop, l.done
	l.mu.Unlock()
	if stop != nil {
		stop() // the keeper has the server send the final RA
		<-done
	}
	if l.srv != nil {
		st := l.srv.Stats()
		l.log.Info("router advertisements stopped", "wakeups", st.Wakeups, "multicast", st.Multicast,
			"unicast", st.Unicast, "solicitations", st.Solicits, "deferred", st.Deferred, "dropped", st.Dropped, "write_errors", st.WriteErrors)
	}
	err := l.rt.Remove()
	if l.ownsH {
		l.h.Close()
	}
	return err
}

// serving is one Serve on one socket.
type serving struct {
	conn   Conn
	index  int // the device the socket is bound to
	since  time.Time
	cancel context.CancelFunc
	done   chan error
}

// keep follows the LAN device until ctx ends, then has the server send
// its final RA.
func (l *LAN) keep(ctx context.Context) {
	defer close(l.done)
	k := keeper{l: l}
	defer func() {
		if k.cur != nil {
			k.cur.cancel() // Serve sends the final RA
			if err := <-k.cur.done; err != nil {
				l.log.Warn("final router advertisement", "err", err)
			}
		}
	}()
	changes := k.subscribe(ctx)
	// Without the watch, the device is looked at every pollEvery, and the
	// watch is tried again.
	ticker := time.NewTicker(pollEvery)
	defer ticker.Stop()
	var poll <-chan time.Time
	if changes == nil {
		poll = ticker.C
	} else {
		ticker.Stop()
	}
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	for {
		if wait := k.reconcile(); wait > 0 {
			retry.Reset(wait)
		}
		var served <-chan error
		if k.cur != nil {
			served = k.cur.done
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-changes:
			if !ok {
				l.log.Warn("link watch ended; the LAN device is looked at every " + pollEvery.String())
				changes = nil
				ticker.Reset(pollEvery)
				poll = ticker.C
			}
		case <-l.kick:
		case <-poll:
			if changes = k.subscribe(ctx); changes != nil {
				ticker.Stop()
				poll = nil
			}
		case <-retry.C:
		case err := <-served:
			k.ended(err)
		}
	}
}

// keeper is keep's state.
type keeper struct {
	l   *LAN
	cur *serving
	// Back-off for opening the RA socket (and for servers that end soon
	// after they started): failures in a row, no attempt before notBefore.
	fails     int
	notBefore time.Time
	// The same for restoring the LAN address.
	ensureFails int
	// Looks at a device that is missing, or there but not up and running.
	downLooks int
	lastErr   string // logged once until it changes
}

// subscribe starts the link watch; nil when it cannot.
func (k *keeper) subscribe(ctx context.Context) <-chan struct{} {
	ch, err := k.l.cfg.System.Watch(ctx.Done(), func(err error) { k.l.log.Warn("link watch", "err", err) })
	if err != nil {
		k.problem("link watch unavailable; the LAN device is looked at every "+pollEvery.String(), err)
		return nil
	}
	return ch
}

// problem logs a failure once until another one comes.
func (k *keeper) problem(msg string, err error) {
	if s := msg + ": " + err.Error(); s != k.lastErr {
		k.lastErr = s
		k.l.log.Warn(msg, "err", err)
	}
}

// backoff is the wait after n failures in a row.
func backoff(n int, most time.Duration) time.Duration {
	return min(retryMin<<min(n, 20), most)
}

// failed schedules the next socket attempt after a failure. The wait
// stays short (socketRetryMax): the usual cause is a new device whose
// link-local address is still tentative, and each attempt costs a lookup.
func (k *keeper) failed() time.Duration {
	wait := backoff(k.fails, socketRetryMax)
	k.fails++
	k.notBefore = time.Now().Add(wait)
	return wait
}

// ended notes that Serve returned: the link went away under it (a write
// said so) or its socket failed.
func (k *keeper) ended(err error) {
	cur := k.cur
	k.cur = nil
	k.l.log.Warn("router advertisements interrupted; looking at the LAN device", "err", err)
	// At once after a server that ran a while; otherwise after a back-off,
	// so that a device that takes sockets but fails writes cannot make a
	// busy loop.
	if time.Since(cur.since) >= servedLong {
		k.fails = 0
	} else {
		k.failed()
	}
}

// lookLater says when to look at a device that is missing or not up
// again. Its return is announced, but a notification may be missed (and
// a bridge gets its ports a moment after it appears): every lookSoon for
// the first couple of seconds, when a re-created device usually comes
// back, then less often up to every pollEvery. A look costs two netlink
// requests.
func (k *keeper) lookLater() time.Duration {
	k.downLooks++
	if k.downLooks <= soonLooks {
		return lookSoon
	}
	return max(lookSoon, backoff(k.downLooks-soonLooks, pollEvery))
}

// drop ends the current Serve without a final RA: its link is gone.
func (k *keeper) drop() {
	if k.cur == nil {
		return
	}
	_ = k.cur.conn.Close() // Serve's read fails, and it returns
	<-k.cur.done
	k.cur = nil
}

// reconcile makes the system match what Up asked for on the device as it
// is now, and says when to look again (0: on the next event).
func (k *keeper) reconcile() time.Duration {
	l := k.l
	link, err := l.h.LinkByName(l.cfg.Interface)
	if rtlink.IsNotFound(err) {
		if k.cur != nil {
			l.log.Warn("LAN device gone; waiting for it to come back")
			k.drop()
		}
		return k.lookLater()
	}
	if err != nil {
		k.problem("LAN device", err)
		return k.failed()
	}
	var wait time.Duration
	l.mu.Lock()
	plan := l.plan
	l.mu.Unlock()
	if plan != nil {
		if err := l.rt.Ensure(*plan); err != nil {
			// The advertisements go on: they do not need the address.
			// (While the tunnel is down its device is gone, and this
			// waits for the next Up.)
			k.problem("LAN address not restored", err)
			wait = backoff(k.ensureFails, retryMax)
			k.ensureFails++
		} else {
			k.ensureFails = 0
		}
	}
	if l.srv == nil {
		return wait
	}
	if err := l.refreshLink(); err != nil {
		k.problem("LAN device prefixes", err)
	}
	l.mu.Lock()
	early := l.plan == nil && time.Since(l.started) < startGrace
	grace := startGrace - time.Since(l.started)
	l.mu.Unlock()
	if early {
		return minWait(wait, grace)
	}
	usable := link.Flags&unix.IFF_UP != 0 && link.Flags&unix.IFF_RUNNING != 0
	if k.cur != nil && (k.cur.index != link.Index || !usable) {
		if k.cur.index != link.Index {
			l.log.Info("LAN device re-created", "index", link.Index, "was", k.cur.index)
		} else {
			l.log.Info("LAN device down")
		}
		k.drop()
	}
	if !usable {
		return minWait(wait, k.lookLater())
	}
	k.downLooks = 0
	if k.cur != nil {
		return wait
	}
	if d := time.Until(k.notBefore); d > 0 {
		return minWait(wait, d)
	}
	conn, hw, err := l.cfg.System.Listen(l.cfg.Interface)
	if err != nil {
		// Often the new device's link-local address is still tentative
		// (duplicate address detection): soon again.
		k.problem("router advertisements: socket", err)
		return minWait(wait, k.failed())
	}
	l.srv.SetLinkAddr(hw)
	ctx, cancel := context.WithCancel(context.Background())
	cur := &serving{conn: conn, index: link.Index, since: time.Now(), cancel: cancel, done: make(chan error, 1)}
	go func() {
		err := l.srv.Serve(ctx, conn)
		_ = conn.Close()
		cur.done <- err
	}()
	k.cur, k.lastErr = cur, ""
	l.log.Info("sending router advertisements", "index", link.Index)
	return wait
}

// minWait is the sooner of two waits, 0 meaning none.
func minWait(a, b time.Duration) time.Duration {
	if a == 0 || b > 0 && b < a {
		return b
	}
	return a
}
