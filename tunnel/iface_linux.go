package tunnel

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
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
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf) || errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENODEV) ||
		errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL)
}

// tunnelKinds are the link kinds a gogoc run creates; a leftover of one of
// them under our name is ours to remove, anything else is not.
var tunnelKinds = []string{"tuntap", "sit", "ip6tnl", "ipip"}

// removeLeftover deletes a device called name that an earlier, killed run
// left behind (a kernel tunnel, or a TUN another process still holds).
// Deleting the device takes its addresses and routes with it.
func removeLeftover(h *netlink.Handle, name string, log *slog.Logger) error {
	l, err := h.LinkByName(name)
	if err != nil {
		var nf netlink.LinkNotFoundError
		if errors.As(err, &nf) {
			return nil
		}
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if !slices.Contains(tunnelKinds, l.Type()) {
		return fmt.Errorf("%s (kind %s): %w", name, l.Type(), ErrNotOurs)
	}
	log.Warn("removing leftover tunnel device", "if", name, "kind", l.Type())
	if err := h.LinkDel(l); err != nil && !isGone(err) {
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
// host routes instead of the scripts' deletion of other default routes).
func planFor(cfg Config) linkPlan {
	o := cfg.Offer
	p := linkPlan{
		MTU:   cfg.MTU,
		Addrs: []netip.Prefix{netip.PrefixFrom(o.ClientV6, 128)},
	}
	p.Routes = append(p.Routes, plannedRoute{Dst: netip.PrefixFrom(o.ServerV6, 128)})
	if cfg.Keepalive.enabled() && o.KeepaliveAddr != o.ServerV6 && o.KeepaliveAddr != o.ClientV6 {
		// The probes must go through the tunnel even without ::/0.
		p.Routes = append(p.Routes, plannedRoute{Dst: netip.PrefixFrom(o.KeepaliveAddr, 128)})
	}
	if cfg.DefaultRoute {
		p.Routes = append(p.Routes, plannedRoute{Dst: netip.PrefixFrom(netip.IPv6Unspecified(), 0), Metric: cfg.RouteMetric})
	}
	return p
}

// configureLink applies plan to the device, pushing an undo step for each
// thing added. The device is brought up before the routes, which need it.
func configureLink(h *netlink.Handle, name string, plan linkPlan, undo *undoStack) error {
	l, err := h.LinkByName(name)
	if err != nil {
		return fmt.Errorf("look up %s: %w", name, err)
	}
	if err := h.LinkSetMTU(l, plan.MTU); err != nil {
		return fmt.Errorf("set MTU %d on %s: %w", plan.MTU, name, err)
	}
	for _, a := range plan.Addrs {
		addr := &netlink.Addr{IPNet: ipNet(a), Flags: unix.IFA_F_NODAD}
		if err := h.AddrAdd(l, addr); err != nil {
			return fmt.Errorf("add address %v to %s: %w", a, name, err)
		}
		undo.push("address "+a.String(), func() error { return h.AddrDel(l, addr) })
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("set %s up: %w", name, err)
	}
	for _, pr := range plan.Routes {
		r := &netlink.Route{
			LinkIndex: l.Attrs().Index,
			Dst:       ipNet(pr.Dst),
			Priority:  pr.Metric,
			Protocol:  unix.RTPROT_STATIC,
			Family:    netlink.FAMILY_V6,
		}
		if pr.Dst.Addr().Is4() {
			r.Family = netlink.FAMILY_V4
		}
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

func ipNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}
