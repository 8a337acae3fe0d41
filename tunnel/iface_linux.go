package tunnel

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// undoStack records how to revert each applied step, so that a failed
// set-up and a teardown both remove exactly what was added, newest first.
type undoStack struct {
	steps []undoStep
}

type undoStep struct {
	what string
	fn   func() error
}

func (u *undoStack) push(what string, fn func() error) {
	u.steps = append(u.steps, undoStep{what, fn})
}

// run reverts everything, going on past failures, and empties the stack.
// A thing already gone counts as reverted.
func (u *undoStack) run() error {
	var errs []error
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		if err := s.fn(); err != nil && !isGone(err) {
			errs = append(errs, fmt.Errorf("undo %s: %w", s.what, err))
		}
	}
	u.steps = nil
	return errors.Join(errs...)
}

// isGone: the object to remove does not exist (any more).
func isGone(err error) bool {
	return rtlink.IsNotFound(err) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL)
}

// tunnelKinds are the link kinds (IFLA_INFO_KIND) a gogoc run creates; a
// leftover of one of them under our name is ours to remove, anything else
// is not. A TUN device's kind is "tun".
var tunnelKinds = []string{"tun", "sit", "ip6tnl", "ipip"}

// removeLeftover deletes a device called name that an earlier, killed run
// left behind (a kernel tunnel, or a TUN another process still holds).
// Deleting the device takes its addresses and routes with it.
func removeLeftover(h *rtlink.Handle, name string, log *logx.Logger) error {
	l, err := h.LinkByName(name)
	if err != nil {
		if rtlink.IsNotFound(err) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if !slices.Contains(tunnelKinds, l.Kind) {
		kind := l.Kind
		if kind == "" {
			kind = "device" // no IFLA_INFO_KIND: loopback, hardware
		}
		return fmt.Errorf("%s (kind %s): %w", name, kind, ErrNotOurs)
	}
	log.Warn("removing leftover tunnel device", "if", name, "kind", l.Kind)
	if err := h.LinkDel(l.Index); err != nil && !isGone(err) {
		return fmt.Errorf("remove leftover %s: %w", name, err)
	}
	return nil
}

// linkPlan is what configureLink applies to a tunnel device.
type linkPlan struct {
	MTU    int
	Addrs  []netip.Prefix // assigned with IFA_F_NODAD: nobody else is on a tunnel
	Routes []plannedRoute
}

type plannedRoute struct {
	Dst    netip.Prefix
	Metric int // 0: the kernel default
}

// planFor lists the configuration for a client tunnel (spec §10.3, with
// host routes instead of the scripts' deletion of other default routes),
// in the tunnel's inner family (spec §1.7 for v4v6: TSP_TUNNEL_PREFIXLEN=32).
func planFor(cfg Config) linkPlan {
	bits, dflt := 128, netip.IPv6Unspecified()
	if !cfg.Type.inner6() {
		bits, dflt = 32, netip.IPv4Unspecified()
	}
	p := linkPlan{
		MTU:    cfg.MTU,
		Addrs:  []netip.Prefix{cfg.Local},
		Routes: []plannedRoute{{Dst: netip.PrefixFrom(cfg.Remote, bits)}},
	}
	if k := cfg.Keepalive.Target; cfg.Keepalive.enabled() && k != cfg.Remote && k != cfg.Local.Addr() {
		// The probes must go through the tunnel even without a default
		// route.
		p.Routes = append(p.Routes, plannedRoute{Dst: netip.PrefixFrom(k, bits)})
	}
	if cfg.DefaultRoute {
		p.Routes = append(p.Routes, plannedRoute{Dst: netip.PrefixFrom(dflt, 0), Metric: cfg.RouteMetric})
	}
	return p
}

// configureLink applies plan to the device, pushing an undo step for each
// thing added. The device is brought up before the routes, which need it.
func configureLink(h *rtlink.Handle, name string, plan linkPlan, undo *undoStack) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := h.LinkSetMTU(l.Index, plan.MTU); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", plan.MTU, name, err)
	}
	for _, a := range plan.Addrs {
		addr := rtlink.Addr{Prefix: a, Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(l.Index, addr); err != nil {
			return fmt.Errorf("add address %v to %s: %w", a, name, err)
		}
		undo.push("address "+a.String(), func() error { return h.AddrDel(l.Index, addr) })
	}
	if err := h.LinkSetUp(l.Index); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	for _, pr := range plan.Routes {
		r := rtlink.Route{Dst: pr.Dst, Index: l.Index, Metric: pr.Metric, Protocol: unix.RTPROT_STATIC}
		if err := h.RouteAdd(r); err != nil {
			if errors.Is(err, unix.EEXIST) {
				return fmt.Errorf("route %v metric %d via %s: %w", pr.Dst, pr.Metric, name, ErrRouteConflict)
			}
			return fmt.Errorf("add route %v via %s: %w", pr.Dst, name, err)
		}
		undo.push("route "+pr.Dst.String(), func() error { return h.RouteDel(r) })
	}
	return nil
}
