package lan

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/radv"
	"github.com/jsklein/gogoc/router"
	"github.com/jsklein/gogoc/tunnel"
)

// lab is a router namespace whose LAN device is a bridge with one veth
// port, and a host namespace at the other end of that veth, as an
// OpenWrt br-lan with one LAN host. A veth stands for the tunnel device.
//
//	host (hostIf) ──veth── (portIf) bridge (brIf) router, tunnel device tunIf
type lab struct {
	rNS, hNS                string
	r, hh                   netns.NsHandle
	rt                      *rtlink.Handle
	brIf, portIf, hostIf    string
	tunIf                   string
	delegated, lanPfx, addr netip.Prefix
}

func newLab(t *testing.T, tag string) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	id := fmt.Sprint(os.Getpid() % 100000)
	l := &lab{rNS: "grl-" + tag + "r-" + id, hNS: "grl-" + tag + "h-" + id,
		brIf: "grl" + id + "b", portIf: "grl" + id + "p", hostIf: "grl" + id + "h", tunIf: "grl" + id + "t",
		delegated: netip.MustParsePrefix("2001:db8:8000::/56"), lanPfx: netip.MustParsePrefix("2001:db8:8000::/64"),
		addr: netip.MustParsePrefix("2001:db8:8000::1/64")}
	for _, ns := range []string{l.rNS, l.hNS} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		// Duplicate address detection would hold a new device's
		// link-local address back for a second or two.
		sh(t, "ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
	}
	// The host solicits nothing: every RA it sees is one the router chose
	// to send.
	sh(t, "ip", "netns", "exec", l.hNS, "sysctl", "-qw", "net.ipv6.conf.default.router_solicitations=0", "net.ipv6.conf.all.router_solicitations=0")
	sh(t, "ip", "-n", l.rNS, "link", "add", l.tunIf, "type", "veth", "peer", "name", l.tunIf+"x")
	sh(t, "ip", "-n", l.rNS, "link", "set", l.tunIf, "up")
	sh(t, "ip", "link", "add", l.portIf, "netns", l.rNS, "type", "veth", "peer", "name", l.hostIf, "netns", l.hNS)
	sh(t, "ip", "-n", l.hNS, "link", "set", l.hostIf, "up")
	l.makeBridge(t)
	var err error
	if l.r, err = netns.GetFromName(l.rNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.r.Close() })
	if l.hh, err = netns.GetFromName(l.hNS); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.hh.Close() })
	if l.rt, err = rtlink.NewHandleAt(l.r); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.rt.Close)
	return l
}

// makeBridge creates the bridge with the veth as its port, as netifd
// does on a network restart.
func (l *lab) makeBridge(t *testing.T) {
	t.Helper()
	sh(t, "ip", "-n", l.rNS, "link", "add", l.brIf, "type", "bridge")
	sh(t, "ip", "-n", l.rNS, "link", "set", l.portIf, "master", l.brIf, "up")
	sh(t, "ip", "-n", l.rNS, "link", "set", l.brIf, "up")
}

func sh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// nsSysctl is router.ProcSysctl inside a namespace.
type nsSysctl struct{ ns netns.NsHandle }

func (s nsSysctl) Get(key string) (v string, err error) {
	err = tunnel.InNetNS(s.ns, func() (e error) { v, e = router.ProcSysctl{}.Get(key); return })
	return
}

func (s nsSysctl) Set(key, value string) error {
	return tunnel.InNetNS(s.ns, func() error { return router.ProcSysctl{}.Set(key, value) })
}

func (s nsSysctl) Interfaces() (n []string, err error) {
	err = tunnel.InNetNS(s.ns, func() (e error) { n, e = router.ProcSysctl{}.Interfaces(); return })
	return
}

// system points the LAN side into the router namespace; watch replaces
// the link watch when not nil.
func (l *lab) system(watch func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error)) System {
	if watch == nil {
		watch = func(done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
			return rtlink.WatchLinksAt(l.r, done, onErr)
		}
	}
	return System{
		Netlink: l.rt,
		Sysctl:  nsSysctl{l.r},
		Listen: func(name string) (c Conn, hw net.HardwareAddr, err error) {
			err = tunnel.InNetNS(l.r, func() error {
				ic, h, err := radv.Listen(name)
				if err == nil {
					c, hw = ic, h
				}
				return err
			})
			return c, hw, err
		},
		Watch: watch,
	}
}

// quiet is an RA server that sends its first RA and then, for an hour,
// nothing unsolicited: every later RA a test sees is one it caused.
var quiet = radv.Config{MinInterval: time.Hour, MaxInterval: time.Hour, InitialInterval: time.Hour}

// hostRA reads RAs on the host's side of the link with a plain raw
// socket: what the kernel of a LAN host receives.
type hostRA struct {
	fd int
}

func (l *lab) listenHost(t *testing.T) *hostRA {
	t.Helper()
	var fd int
	err := tunnel.InNetNS(l.hh, func() (err error) {
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err != nil {
			return err
		}
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = 0xffffffff
		}
		ra := int(ipv6.ICMPTypeRouterAdvertisement)
		f.Data[ra>>5] &^= 1 << (uint(ra) & 31)
		if err := unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f); err != nil {
			return err
		}
		return unix.BindToDevice(fd, l.hostIf)
	})
	if err != nil {
		t.Fatalf("host socket: %v", err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return &hostRA{fd: fd}
}

// drain discards the RAs the host has received so far.
func (h *hostRA) drain(t *testing.T) {
	t.Helper()
	b := make([]byte, 1500)
	for {
		_, _, err := unix.Recvfrom(h.fd, b, unix.MSG_DONTWAIT)
		if err == unix.EAGAIN || err == unix.EWOULDBLOCK {
			return
		}
		if err != nil && err != unix.EINTR {
			t.Fatalf("host read: %v", err)
		}
	}
}

// next returns the next RA within d, or nil.
func (h *hostRA) next(t *testing.T, d time.Duration) *ndp.RouterAdvertisement {
	t.Helper()
	deadline := time.Now().Add(d)
	b := make([]byte, 1500)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return nil
		}
		tv := unix.NsecToTimeval(left.Nanoseconds())
		_ = unix.SetsockoptTimeval(h.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
		n, _, err := unix.Recvfrom(h.fd, b, 0)
		if err == unix.EINTR || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			t.Fatalf("host read: %v", err)
		}
		m, err := ndp.ParseMessage(b[:n])
		if err != nil {
			t.Fatalf("RA on the wire: %v", err)
		}
		if ra, ok := m.(*ndp.RouterAdvertisement); ok {
			return ra
		}
	}
}

// pio returns the RA's prefix information for p, if any.
func pio(ra *ndp.RouterAdvertisement, p netip.Prefix) *ndp.PrefixInformation {
	for _, o := range ra.Options {
		if pi, ok := o.(*ndp.PrefixInformation); ok && pi.Prefix == p.Addr() && int(pi.PrefixLength) == p.Bits() {
			return pi
		}
	}
	return nil
}

// routerState is the LAN address (if any) and the forwarding value of the
// bridge in the router namespace.
func (l *lab) routerState(t *testing.T) (bool, string) {
	t.Helper()
	out := sh(t, "ip", "-n", l.rNS, "-6", "addr", "show", "dev", l.brIf)
	fwd := strings.TrimSpace(sh(t, "ip", "netns", "exec", l.rNS, "sysctl", "-n", "net.ipv6.conf."+l.brIf+".forwarding"))
	return strings.Contains(out, l.addr.String()), fwd
}

// recorder keeps what the LAN side logs, for tests that look at it.
type recorder struct {
	mu sync.Mutex
	b  strings.Builder
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.Write(p)
}

func (r *recorder) String() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.b.String()
}

func logTo(t *testing.T, w *recorder) *logx.Logger {
	lg, err := logx.New(logx.Options{Stderr: w, StderrLevel: 3})
	if err != nil {
		t.Fatal(err)
	}
	return lg
}

// up starts a LAN side on the lab and waits for its first RA.
func (l *lab) up(t *testing.T, host *hostRA, cfg Config) *LAN {
	t.Helper()
	cfg.Interface, cfg.Advertise = l.brIf, true
	side, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = side.Close()
		}
	})
	if err := side.Up(context.Background(), Uplink{Delegated: l.delegated, MTU: 1400}, l.tunIf); err != nil {
		t.Fatal(err)
	}
	ra := host.next(t, 5*time.Second)
	if ra == nil || pio(ra, l.lanPfx) == nil || ra.RouterLifetime == 0 {
		t.Fatalf("first RA: %+v", ra)
	}
	return side
}

// TestRecreatedBridge: the LAN bridge is deleted and created again under
// a running LAN side (OpenWrt's network restart). The host gets a fresh
// RA within 2 s of the new bridge coming up, and the router's LAN address
// and forwarding are back on the new device; stopping sends the final RA
// on it.
func TestRecreatedBridge(t *testing.T) {
	l := newLab(t, "rc")
	host := l.listenHost(t)
	var logs recorder
	side := l.up(t, host, Config{RA: quiet, Log: logTo(t, &logs), System: l.system(nil)})
	if ok, fwd := l.routerState(t); !ok || fwd != "1" {
		t.Fatalf("before: LAN address %v, forwarding %q", ok, fwd)
	}
	if ra := host.next(t, 300*time.Millisecond); ra != nil {
		t.Fatalf("an RA nobody asked for: %+v", ra)
	}

	gone := time.Now()
	sh(t, "ip", "-n", l.rNS, "link", "del", l.brIf)
	l.makeBridge(t)
	back := time.Now()
	ra := host.next(t, 2*time.Second)
	if ra == nil {
		t.Fatalf("no RA within 2 s of the re-created bridge; log:\n%s", logs.String())
	}
	t.Logf("fresh RA %v after the bridge was deleted (re-creating it took %v)",
		time.Since(gone).Round(time.Millisecond), back.Sub(gone).Round(time.Millisecond))
	if pio(ra, l.lanPfx) == nil || ra.RouterLifetime == 0 {
		t.Fatalf("fresh RA: %+v", ra)
	}
	if _, ok := waitFor(2*time.Second, func() bool { ok, fwd := l.routerState(t); return ok && fwd == "1" }); !ok {
		ok, fwd := l.routerState(t)
		t.Fatalf("after the re-creation: LAN address %v, forwarding %q; log:\n%s", ok, fwd, logs.String())
	}

	if err := side.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	final := host.next(t, 2*time.Second)
	if final == nil || final.RouterLifetime != 0 {
		t.Fatalf("final RA on the new bridge: %+v", final)
	}
	if ok, fwd := l.routerState(t); ok || fwd != "0" {
		t.Fatalf("after Close: LAN address %v, forwarding %q", ok, fwd)
	}
}

// waitFor polls cond every 20 ms until it holds or d passes.
func waitFor(d time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > d {
			return time.Since(start), false
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// cpuOver is the CPU time the test process uses over the next d.
func cpuOver(d time.Duration) time.Duration {
	var before, after unix.Rusage
	_ = unix.Getrusage(unix.RUSAGE_SELF, &before)
	time.Sleep(d)
	_ = unix.Getrusage(unix.RUSAGE_SELF, &after)
	return time.Duration(after.Utime.Nano() + after.Stime.Nano() - before.Utime.Nano() - before.Stime.Nano())
}

// TestRecreatedBridgeWriteError: without link notifications (a watch that
// never fires) the LAN side still notices the re-created bridge, from the
// next RA's failed write, and the host gets RAs again.
func TestRecreatedBridgeWriteError(t *testing.T) {
	l := newLab(t, "we")
	host := l.listenHost(t)
	var logs recorder
	never := func(done <-chan struct{}, _ func(error)) (<-chan struct{}, error) { return make(chan struct{}), nil }
	// An unsolicited RA every 3 s. The bridge is re-created right after
	// one, so the next write is the first on the gone device and the new
	// one is there by then: the write error is what finds it. (Were the
	// write to fail while no bridge existed, the keeper's looking again
	// with back-off would find it instead.)
	const every = 3 * time.Second
	timed := radv.Config{MinInterval: every, MaxInterval: every, InitialInterval: every, MinDelay: time.Millisecond,
		RouterLifetime: 30 * time.Minute}
	l.up(t, host, Config{RA: timed, Log: logTo(t, &logs), System: l.system(never)})
	if ra := host.next(t, 5*every); ra == nil {
		t.Fatalf("no unsolicited RA; log:\n%s", logs.String())
	}
	sh(t, "ip", "-n", l.rNS, "link", "del", l.brIf)
	l.makeBridge(t)
	back := time.Now()
	// What the host got before now came from the old bridge.
	host.drain(t)
	ra := host.next(t, 5*every)
	if ra == nil {
		t.Fatalf("no RA on the re-created bridge; log:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "router advertisements interrupted") {
		t.Fatalf("the re-creation was not noticed by a failed write; log:\n%s", logs.String())
	}
	t.Logf("RA on the new bridge %v after it was made (the next timed RA was due within %v); log:\n%s",
		time.Since(back).Round(time.Millisecond), every, logs.String())
}

// TestDeviceGoneForGood: the bridge is deleted and never comes back. The
// LAN side waits without burning CPU, and Close returns without a final
// RA and without error. When the bridge does come back later, it is
// served again.
//
// The CPU the waiting costs is compared with the same process's CPU
// while the bridge was there, measured in the same run: on an emulated
// guest the runtime's own timers and the test's RA listener cost a good
// share of a slow CPU; a loop of looks with no pause cost over half of
// one here.
func TestDeviceGoneForGood(t *testing.T) {
	l := newLab(t, "gn")
	host := l.listenHost(t)
	var logs recorder
	side := l.up(t, host, Config{RA: quiet, Log: logTo(t, &logs), System: l.system(nil)})
	time.Sleep(500 * time.Millisecond)
	const window = 2 * time.Second
	base := cpuOver(window)
	sh(t, "ip", "-n", l.rNS, "link", "del", l.brIf)
	// The deletion's notifications and the dropped server are done by
	// then; what is left is the waiting.
	time.Sleep(time.Second)
	gone := cpuOver(window)
	t.Logf("CPU over %v: %v with the bridge there, %v with it gone", window, base, gone)
	if gone-base > window*2/5 {
		t.Fatalf("%v of CPU in %v while waiting for a device that is gone (%v while it was there); log:\n%s",
			gone, window, base, logs.String())
	}
	if !strings.Contains(logs.String(), "LAN device gone") {
		t.Fatalf("log:\n%s", logs.String())
	}
	l.makeBridge(t)
	if ra := host.next(t, 2*time.Second); ra == nil || pio(ra, l.lanPfx) == nil {
		t.Fatalf("no RA on the bridge that came back: %+v; log:\n%s", ra, logs.String())
	}
	sh(t, "ip", "-n", l.rNS, "link", "del", l.brIf)
	time.Sleep(100 * time.Millisecond)
	done := make(chan error, 1)
	go func() { done <- side.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Close with the device gone: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Close hangs with the device gone")
	}
	if ra := host.next(t, 300*time.Millisecond); ra != nil {
		t.Fatalf("an RA with the device gone: %+v", ra)
	}
}

// TestLinkPrefixesOnLink: the LAN device's own prefixes (netifd's ULA, a prefix
// from another uplink) are advertised beside the delegated one, with the
// M and O flags asked for, and follow the device's addresses as they come
// and go. A prefix a LAN host announced (which the router's kernel may
// turn into an address of its own) is not relayed. The final RA
// deprecates the delegated prefix only.
func TestLinkPrefixesOnLink(t *testing.T) {
	l := newLab(t, "lp")
	ula := netip.MustParsePrefix("fd12:3456:789a:10::/64")
	other := netip.MustParsePrefix("2001:db8:77::/64")
	sh(t, "ip", "-n", l.rNS, "addr", "add", "fd12:3456:789a:10::1/60", "dev", l.brIf, "nodad")
	host := l.listenHost(t)
	var logs recorder
	soon := quiet
	soon.MinDelay = 200 * time.Millisecond
	side := l.up(t, host, Config{RA: soon, Managed: true, Other: true, Log: logTo(t, &logs), System: l.system(nil)})
	// up read the first RA; ask for one to look at.
	ra := l.solicit(t, host)
	if !ra.ManagedConfiguration || !ra.OtherConfiguration || ra.MobileIPv6HomeAgent {
		t.Fatalf("flags M %v O %v H %v, want M and O", ra.ManagedConfiguration, ra.OtherConfiguration, ra.MobileIPv6HomeAgent)
	}
	if p := pio(ra, ula); p == nil || !p.AutonomousAddressConfiguration || p.PreferredLifetime != radv.DefaultPreferredLifetime {
		t.Fatalf("ULA PIO %+v in %+v", p, ra.Options)
	}
	if pio(ra, l.lanPfx) == nil {
		t.Fatalf("no delegated /64 beside the ULA: %+v", ra.Options)
	}

	// Another prefix with lifetimes of its own arrives.
	sh(t, "ip", "-n", l.rNS, "addr", "add", "2001:db8:77::1/64", "dev", l.brIf, "nodad", "valid_lft", "3600", "preferred_lft", "1800")
	ra = host.next(t, 3*time.Second)
	if ra == nil {
		t.Fatalf("no RA after an address was added; log:\n%s", logs.String())
	}
	if p := pio(ra, other); p == nil || p.ValidLifetime > time.Hour || p.ValidLifetime < 50*time.Minute || p.PreferredLifetime > 30*time.Minute {
		t.Fatalf("new prefix's PIO %+v, want the address's lifetimes", p)
	}

	// The ULA goes: deprecated, for at most 2 h.
	sh(t, "ip", "-n", l.rNS, "addr", "del", "fd12:3456:789a:10::1/60", "dev", l.brIf)
	ra = host.next(t, 3*time.Second)
	if p := pio(ra, ula); ra == nil || p == nil || p.PreferredLifetime != 0 || p.ValidLifetime > 2*time.Hour {
		t.Fatalf("after the ULA went: %+v", ra)
	}

	// A LAN host announces a prefix; with accept_ra 2 the router's kernel
	// forms an address from it. That address is not the LAN's to relay.
	sh(t, "ip", "netns", "exec", l.rNS, "sysctl", "-qw", "net.ipv6.conf."+l.brIf+".accept_ra=2")
	rogue := netip.MustParsePrefix("2001:db8:66::/64")
	l.hostRA(t, rogue)
	if _, ok := waitFor(3*time.Second, func() bool {
		return strings.Contains(sh(t, "ip", "-n", l.rNS, "-6", "addr", "show", "dev", l.brIf), "2001:db8:66:")
	}); !ok {
		t.Fatalf("the router formed no address from the host's RA:\n%s", sh(t, "ip", "-n", l.rNS, "-6", "addr", "show", "dev", l.brIf))
	}
	if !l.fromRA(t, rogue) {
		t.Log("the kernel does not say which addresses came from RAs (IFA_PROTO, Linux < 6.1): not checked")
	} else if ra := l.solicit(t, host); pio(ra, rogue) != nil {
		t.Fatalf("the LAN host's prefix is relayed: %+v", ra.Options)
	}

	if err := side.Close(); err != nil {
		t.Fatal(err)
	}
	var final *ndp.RouterAdvertisement
	for ra := host.next(t, 2*time.Second); ra != nil; ra = host.next(t, 300*time.Millisecond) {
		final = ra
	}
	if final == nil || final.RouterLifetime != 0 {
		t.Fatalf("final RA: %+v", final)
	}
	own, kept := pio(final, l.lanPfx), pio(final, other)
	if own == nil || own.PreferredLifetime != 0 || kept == nil || kept.PreferredLifetime == 0 || kept.ValidLifetime < 50*time.Minute {
		t.Fatalf("final RA: delegated %+v, other prefix %+v; want only the delegated one deprecated", own, kept)
	}
}

// solicit sends a Router Solicitation from the host and returns the
// reply.
func (l *lab) solicit(t *testing.T, host *hostRA) *ndp.RouterAdvertisement {
	t.Helper()
	l.hostSend(t, []byte{133, 0, 0, 0, 0, 0, 0, 0}, "ff02::2")
	ra := host.next(t, 2*time.Second)
	if ra == nil {
		t.Fatal("no reply to a solicitation")
	}
	return ra
}

// hostRA has the LAN host send a Router Advertisement for p with router
// lifetime 0, as a rogue host might.
func (l *lab) hostRA(t *testing.T, p netip.Prefix) {
	t.Helper()
	b, err := ndp.MarshalMessage(&ndp.RouterAdvertisement{CurrentHopLimit: 64, Options: []ndp.Option{
		&ndp.PrefixInformation{PrefixLength: 64, OnLink: true, AutonomousAddressConfiguration: true,
			ValidLifetime: time.Hour, PreferredLifetime: time.Hour, Prefix: p.Addr()},
	}})
	if err != nil {
		t.Fatal(err)
	}
	l.hostSend(t, b, "ff02::1")
}

// hostSend sends an ICMPv6 message from the host's link-local address
// with hop limit 255.
func (l *lab) hostSend(t *testing.T, b []byte, dst string) {
	t.Helper()
	err := tunnel.InNetNS(l.hh, func() error {
		fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		ifi, err := net.InterfaceByName(l.hostIf)
		if err != nil {
			return err
		}
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, 255); err != nil {
			return err
		}
		// Not back to the host's own reader.
		if err := unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_LOOP, 0); err != nil {
			return err
		}
		return unix.Sendto(fd, b, 0, &unix.SockaddrInet6{Addr: netip.MustParseAddr(dst).As16(), ZoneId: uint32(ifi.Index)})
	})
	if err != nil {
		t.Fatalf("host send: %v", err)
	}
}

// fromRA tells whether the router's kernel marks its address in p as
// formed from an RA.
func (l *lab) fromRA(t *testing.T, p netip.Prefix) bool {
	t.Helper()
	link, err := l.rt.LinkByName(l.brIf)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := l.rt.AddrList(link.Index, unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if p.Contains(a.Prefix.Addr()) {
			return a.Proto == rtlink.ProtoKernelRA
		}
	}
	return false
}

// TestStartBeforeTunnel: from Start, the LAN keeps its own prefixes and
// flags while no tunnel is up, after a grace that lets a quick first
// tunnel have the first RA; router lifetime 0 until the tunnel is up.
func TestStartBeforeTunnel(t *testing.T) {
	l := newLab(t, "st")
	ula := netip.MustParsePrefix("fd12:3456:789a:10::/64")
	sh(t, "ip", "-n", l.rNS, "addr", "add", "fd12:3456:789a:10::1/64", "dev", l.brIf, "nodad")
	host := l.listenHost(t)
	soon := quiet
	soon.MinDelay = 100 * time.Millisecond
	side, err := New(Config{Interface: l.brIf, Advertise: true, Other: true, RA: soon, System: l.system(nil)})
	if err != nil {
		t.Fatal(err)
	}
	defer side.Close()
	start := time.Now()
	side.Start()
	ra := host.next(t, startGrace+3*time.Second)
	if ra == nil {
		t.Fatal("no RA without a tunnel")
	}
	if took := time.Since(start); took < startGrace-100*time.Millisecond {
		t.Fatalf("first RA %v after Start, before the %v grace", took, startGrace)
	}
	if ra.RouterLifetime != 0 || !ra.OtherConfiguration || pio(ra, ula) == nil || pio(ra, l.lanPfx) != nil {
		t.Fatalf("RA without a tunnel: lifetime %v O %v options %+v", ra.RouterLifetime, ra.OtherConfiguration, ra.Options)
	}
	if err := side.Up(context.Background(), Uplink{Delegated: l.delegated}, l.tunIf); err != nil {
		t.Fatal(err)
	}
	ra = host.next(t, 3*time.Second)
	if ra == nil || ra.RouterLifetime == 0 || pio(ra, ula) == nil || pio(ra, l.lanPfx) == nil {
		t.Fatalf("RA after Up: %+v", ra)
	}
}
