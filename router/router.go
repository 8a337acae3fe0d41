// Package router configures the LAN side of a router that got a delegated
// prefix: the LAN address from the prefix, IPv6 forwarding on the tunnel
// and LAN interfaces, and an unreachable route for the parts of the prefix
// the LAN does not use. The default route through the tunnel is the
// tunnel's own (tunnel.Config.DefaultRoute); this package does not add one.
//
// Apply is idempotent and replaces a previous prefix cleanly; Remove takes
// away everything Apply added. Advertising the prefix is package radv's job.
package router

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// LANPrefix is the /64 number subnet of delegated. It fails when the
// subnet id does not fit the bits between the prefix length and /64.
func LANPrefix(delegated netip.Prefix, subnet uint64) (netip.Prefix, error) {
	if !delegated.IsValid() || !delegated.Addr().Is6() || delegated.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("delegated prefix %v is not IPv6", delegated)
	}
	bits := delegated.Bits()
	if bits > 64 {
		return netip.Prefix{}, fmt.Errorf("delegated prefix %v is longer than /64: no /64 for the LAN", delegated)
	}
	if span := 64 - bits; span < 64 && subnet>>span != 0 {
		return netip.Prefix{}, fmt.Errorf("subnet_id %x does not fit the delegated %v (0..%x)", subnet, delegated, uint64(1)<<span-1)
	}
	b := delegated.Masked().Addr().As16()
	hi := binary.BigEndian.Uint64(b[:8]) | subnet
	binary.BigEndian.PutUint64(b[:8], hi)
	clear(b[8:])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64), nil
}

// Plan is the LAN configuration for one delegation.
type Plan struct {
	LANIf     string       // if_prefix, e.g. br-lan
	TunIf     string       // the tunnel device
	Delegated netip.Prefix // what the broker delegated
	LAN       netip.Prefix // the /64 on LANIf (LANPrefix)
	// HostID is the LAN address's interface identifier; zero means ::1.
	HostID netip.Addr
	// Metric of the unreachable route; default 2048 (behind the tunnel's
	// routes, which never cover the prefix anyway).
	Metric int
}

// address is the router's own LAN address.
func (p Plan) address() netip.Prefix {
	host := p.HostID
	if !host.IsValid() || host.IsUnspecified() {
		host = netip.IPv6Loopback()
	}
	n, h := p.LAN.Addr().As16(), host.As16()
	copy(n[8:], h[8:])
	return netip.PrefixFrom(netip.AddrFrom16(n), 64)
}

// Sysctl reads and writes /proc/sys/net/ipv6 keys such as
// "conf/eth0/forwarding". Tests inject one that works in a namespace.
type Sysctl interface {
	Get(key string) (string, error)
	Set(key, value string) error
	// Interfaces lists the entries of conf/ (all, default and each device).
	Interfaces() ([]string, error)
}

// ProcSysctl is Sysctl on /proc/sys/net/ipv6 of the caller's namespace.
type ProcSysctl struct{}

const procRoot = "/proc/sys/net/ipv6"

// Get implements Sysctl.
func (ProcSysctl) Get(key string) (string, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, key))
	return strings.TrimSpace(string(b)), err
}

// Set implements Sysctl. The files are root's, mode 0644; the kernel lets
// a process with CAP_NET_ADMIN in the namespace's owning user namespace
// write them as root would (net_ctl_permissions), whatever its uid.
func (ProcSysctl) Set(key, value string) error {
	f, err := os.OpenFile(filepath.Join(procRoot, key), os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		return caps.Annotate(err, caps.NetAdmin)
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// Interfaces implements Sysctl.
func (ProcSysctl) Interfaces() ([]string, error) {
	// Readdirnames, not os.ReadDir: the order does not matter here, and
	// ReadDir's sort links a generic sort instantiation (~15 KB on mips).
	d, err := os.Open(filepath.Join(procRoot, "conf"))
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return d.Readdirnames(-1)
}

// Router applies Plans. Its methods are safe for concurrent use.
type Router struct {
	h   *rtlink.Handle
	sys Sysctl
	log *logx.Logger

	mu      sync.Mutex
	applied *Plan
	// fwdWas holds each interface's forwarding value before we set it, to
	// put back on Remove.
	fwdWas map[string]string
}

// New returns a Router using h for netlink and sys for sysctls.
func New(h *rtlink.Handle, sys Sysctl, log *logx.Logger) *Router {
	if log == nil {
		log = logx.Discard()
	}
	if sys == nil {
		sys = ProcSysctl{}
	}
	return &Router{h: h, sys: sys, log: log, fwdWas: map[string]string{}}
}

// Applied returns the plan in force, if any.
func (r *Router) Applied() (Plan, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied == nil {
		return Plan{}, false
	}
	return *r.applied, true
}

// Apply makes the system match p: forwarding on, the LAN address, the
// unreachable route. Applying the same plan again changes nothing; a plan
// with another prefix removes the old address and route. On error what
// this call added is taken away again and the previous plan stays.
func (r *Router) Apply(p Plan) error {
	if p.LANIf == "" || p.TunIf == "" {
		return errors.New("router: plan needs the LAN and tunnel interfaces")
	}
	if p.LAN.Bits() != 64 || !p.Delegated.Contains(p.LAN.Addr()) {
		return fmt.Errorf("router: LAN prefix %v is not a /64 of %v", p.LAN, p.Delegated)
	}
	if p.Metric == 0 {
		p.Metric = 2048
	}
	r.mu.Lock()
	defer r.mu.Unlock()

	lan, err := r.h.LinkByName(p.LANIf)
	if err != nil {
		return fmt.Errorf("router: LAN interface %s: %w", p.LANIf, err)
	}
	if err := r.forwarding(p.TunIf, p.LANIf); err != nil {
		return err
	}
	addr := rtlink.Addr{Prefix: p.address(), Flags: unix.IFA_F_NODAD}
	if err := r.h.AddrReplace(lan.Index, addr); err != nil {
		return fmt.Errorf("router: address %v on %s: %w", p.address(), p.LANIf, err)
	}
	var unreach rtlink.Route
	if p.Delegated.Bits() < 64 {
		unreach = unreachable(p.Delegated, p.Metric)
		if err := r.h.RouteReplace(unreach); err != nil {
			if old := r.applied; old == nil || old.address() != p.address() || old.LANIf != p.LANIf {
				_ = r.h.AddrDel(lan.Index, addr)
			}
			return fmt.Errorf("router: unreachable route %v: %w", p.Delegated, err)
		}
	}
	if old := r.applied; old != nil {
		r.removeStale(*old, p)
	}
	r.applied = &p
	r.log.Info("LAN configured", "if", p.LANIf, "address", p.address(), "delegated", p.Delegated, "tunnel", p.TunIf)
	return nil
}

// Ensure applies p unless it is in force already with the LAN address on
// the device: a LAN device that was re-created (a bridge rebuilt by a
// network restart) comes back without the address, and the new device
// without forwarding. Unlike Apply, it makes no change when none is
// needed, so calling it on every link or address notification does not
// cause more of them.
func (r *Router) Ensure(p Plan) error {
	if p.Metric == 0 {
		p.Metric = 2048
	}
	r.mu.Lock()
	same := r.applied != nil && *r.applied == p
	r.mu.Unlock()
	if same {
		if ok, err := r.hasAddress(p); err != nil || ok {
			return err
		}
		r.log.Info("LAN address missing (device re-created?); applying the plan again", "if", p.LANIf)
	}
	return r.Apply(p)
}

// hasAddress tells whether p's LAN address is on its device.
func (r *Router) hasAddress(p Plan) (bool, error) {
	lan, err := r.h.LinkByName(p.LANIf)
	if err != nil {
		return false, fmt.Errorf("router: LAN interface %s: %w", p.LANIf, err)
	}
	addrs, err := r.h.AddrList(lan.Index, unix.AF_INET6)
	if err != nil {
		return false, fmt.Errorf("router: addresses of %s: %w", p.LANIf, err)
	}
	for _, a := range addrs {
		if a.Prefix == p.address() {
			return true, nil
		}
	}
	return false, nil
}

// removeStale takes away what old had and p has not.
func (r *Router) removeStale(old, p Plan) {
	if old.address() != p.address() || old.LANIf != p.LANIf {
		r.delAddr(old)
	}
	if old.Delegated.Bits() < 64 && (old.Delegated != p.Delegated || old.Metric != p.Metric) {
		r.delRoute(old)
	}
	if old.TunIf != p.TunIf {
		r.restoreForwarding(old.TunIf)
	}
	if old.LANIf != p.LANIf {
		r.restoreForwarding(old.LANIf)
	}
}

// Remove undoes the applied plan: address, route, the interfaces'
// forwarding values. It leaves conf/all/forwarding on: turning it off
// would stop any other forwarding the system does.
func (r *Router) Remove() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.applied == nil {
		return nil
	}
	old := *r.applied
	var errs []error
	errs = append(errs, r.delAddr(old), r.delRoute(old))
	for _, name := range []string{old.TunIf, old.LANIf} {
		errs = append(errs, r.restoreForwarding(name))
	}
	r.applied = nil
	return errors.Join(errs...)
}

func (r *Router) delAddr(p Plan) error {
	lan, err := r.h.LinkByName(p.LANIf)
	if err != nil {
		return nil // the device is gone, and its address with it
	}
	if err := r.h.AddrDel(lan.Index, rtlink.Addr{Prefix: p.address()}); err != nil && !gone(err) {
		return fmt.Errorf("router: remove address %v: %w", p.address(), err)
	}
	return nil
}

func (r *Router) delRoute(p Plan) error {
	if p.Delegated.Bits() >= 64 {
		return nil
	}
	if err := r.h.RouteDel(unreachable(p.Delegated, p.Metric)); err != nil && !gone(err) {
		return fmt.Errorf("router: remove unreachable route %v: %w", p.Delegated, err)
	}
	return nil
}

// forwarding turns IPv6 forwarding on for the given interfaces only. The
// kernel forwards only when conf/all/forwarding is 1, and writing that
// sets every interface's value (a WAN interface would then stop taking
// RAs), so the others get their own values back right after.
func (r *Router) forwarding(ifs ...string) error {
	all, err := r.sys.Get("conf/all/forwarding")
	if err != nil {
		return fmt.Errorf("router: read forwarding: %w", err)
	}
	if all != "1" {
		names, err := r.sys.Interfaces()
		if err != nil {
			return fmt.Errorf("router: list interfaces: %w", err)
		}
		before := map[string]string{}
		for _, n := range names {
			if n == "all" {
				continue
			}
			if v, err := r.sys.Get("conf/" + n + "/forwarding"); err == nil {
				before[n] = v
			}
		}
		if err := r.sys.Set("conf/all/forwarding", "1"); err != nil {
			return fmt.Errorf("router: enable forwarding: %w", err)
		}
		r.log.Info("IPv6 forwarding enabled (conf/all/forwarding=1)")
		for n, v := range before {
			if err := r.sys.Set("conf/"+n+"/forwarding", v); err != nil {
				r.log.Warn("restore forwarding", "if", n, "err", err)
			}
		}
	}
	for _, n := range ifs {
		key := "conf/" + n + "/forwarding"
		v, err := r.sys.Get(key)
		if err != nil {
			return fmt.Errorf("router: forwarding on %s: %w", n, err)
		}
		if _, seen := r.fwdWas[n]; !seen {
			r.fwdWas[n] = v
		}
		if v != "1" {
			if err := r.sys.Set(key, "1"); err != nil {
				return fmt.Errorf("router: forwarding on %s: %w", n, err)
			}
		}
	}
	return nil
}

// restoreForwarding puts back an interface's value from before Apply. A
// device that is gone (the tunnel, usually) needs nothing.
func (r *Router) restoreForwarding(name string) error {
	was, ok := r.fwdWas[name]
	delete(r.fwdWas, name)
	if !ok || was == "1" {
		return nil
	}
	key := "conf/" + name + "/forwarding"
	if _, err := r.sys.Get(key); err != nil {
		return nil
	}
	if err := r.sys.Set(key, was); err != nil {
		return fmt.Errorf("router: restore forwarding on %s: %w", name, err)
	}
	return nil
}

func unreachable(p netip.Prefix, metric int) rtlink.Route {
	return rtlink.Route{
		Dst:      p.Masked(),
		Type:     unix.RTN_UNREACHABLE,
		Metric:   metric,
		Protocol: unix.RTPROT_STATIC,
	}
}

func gone(err error) bool {
	return errors.Is(err, unix.ESRCH) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.EADDRNOTAVAIL) ||
		errors.Is(err, unix.ENODEV)
}
