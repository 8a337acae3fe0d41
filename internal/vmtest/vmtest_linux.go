// Package vmtest holds test helpers for kernel data-plane tests: network
// namespaces, veth pairs and traffic driven from Go alone, so that they run
// in the VM lane's initramfs (busybox, no iproute2) as well as on a host.
package vmtest

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
)

// Environment variables set by the VM lane's init (scripts/vm/init).
const (
	EnvVM    = "GOGOC_VM"       // "1" inside the VM
	EnvBench = "GOGOC_VM_BENCH" // "1": run the throughput comparison
	EnvIdle  = "GOGOC_VM_IDLE"  // "1": count the idle daemon's wake-ups over a whole keepalive period
	EnvBreak = "GOGOC_VM_BREAK" // a deliberate fault to show it is caught
)

// InVM reports whether the test runs inside the VM lane.
func InVM() bool { return os.Getenv(EnvVM) == "1" }

// Break returns the deliberate fault asked for (e.g. "fouport"), or "".
func Break() string { return os.Getenv(EnvBreak) }

// RequireRoot skips t unless it may create namespaces and devices.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, tunnel devices)")
	}
}

// Feature is a kernel capability a test needs.
type Feature string

// Features the kernel data plane uses.
const (
	Sit    Feature = "sit"    // rtnetlink link kind "sit"
	Ip6tnl Feature = "ip6tnl" // rtnetlink link kind "ip6tnl"
	Fou    Feature = "fou"    // generic netlink family "fou"
	Tun    Feature = "tun"    // /dev/net/tun
)

// RequireKernel skips t with the reason when the running kernel lacks one
// of fs (no module, as on the CI host: those tests run in the VM lane). In
// the VM a missing feature fails instead: the lane must test it.
func RequireKernel(t testing.TB, fs ...Feature) {
	t.Helper()
	RequireRoot(t)
	for _, f := range fs {
		if err := Probe(f); err != nil {
			if InVM() {
				t.Fatalf("kernel feature %s missing inside the VM: %v", f, err)
			}
			t.Skipf("kernel has no %s (%v): runs in the VM lane, scripts/vm-test.sh", f, err)
		}
	}
}

// Probe checks one feature in a throwaway namespace, so that nothing is
// left behind in the caller's.
func Probe(f Feature) error {
	switch f {
	case Tun:
		_, err := os.Stat("/dev/net/tun")
		return err
	case Fou:
		_, err := netlink.GenlFamilyGet("fou")
		return err
	case Sit, Ip6tnl:
	default:
		return fmt.Errorf("unknown feature %q", f)
	}
	ns, err := newNetNS()
	if err != nil {
		return err
	}
	defer ns.Close()
	h, err := netlink.NewHandleAt(ns, unix.NETLINK_ROUTE)
	if err != nil {
		return err
	}
	defer h.Close()
	var l netlink.Link
	if f == Sit {
		l = &netlink.Sittun{LinkAttrs: netlink.LinkAttrs{Name: "gvaprobe"}, Remote: net.IPv4(192, 0, 2, 1), Ttl: 64, PMtuDisc: 1}
	} else {
		l = &netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: "gvaprobe"}, Remote: net.ParseIP("2001:db8::1"), Proto: unix.IPPROTO_IPIP}
	}
	return h.LinkAdd(l) // the namespace takes the device with it
}

// NS is an unnamed network namespace of a test, gone when its handles are
// closed at cleanup.
type NS struct {
	Name string // for messages only
	H    netns.NsHandle
	NL   *netlink.Handle // route and generic netlink inside the namespace
	// RT is gogoc's own rtnetlink handle inside the namespace, what the
	// code under test is given; NL is the independent reference.
	RT *rtlink.Handle
}

// newNetNS creates a namespace without switching the caller's thread.
func newNetNS() (netns.NsHandle, error) {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	ns, err := netns.New() // unshares this thread into the new namespace
	if err != nil {
		runtime.UnlockOSThread()
		return -1, fmt.Errorf("new netns: %w", err)
	}
	if err := netns.Set(orig); err != nil {
		// Keep the thread locked: the runtime retires it with the goroutine.
		ns.Close()
		return -1, fmt.Errorf("restore netns: %w", err)
	}
	runtime.UnlockOSThread()
	return ns, nil
}

// NewNS creates a namespace with loopback up and duplicate address
// detection off (a tentative address delays a test by seconds).
func NewNS(t testing.TB, name string) *NS {
	t.Helper()
	h, err := newNetNS()
	if err != nil {
		t.Fatal(err)
	}
	ns := &NS{Name: name, H: h}
	t.Cleanup(func() {
		if ns.NL != nil {
			ns.NL.Close()
		}
		if ns.RT != nil {
			ns.RT.Close()
		}
		ns.H.Close()
	})
	if ns.NL, err = netlink.NewHandleAt(h, unix.NETLINK_ROUTE, unix.NETLINK_GENERIC); err != nil {
		t.Fatalf("netlink in %s: %v", name, err)
	}
	if ns.RT, err = rtlink.NewHandleAt(h); err != nil {
		t.Fatalf("rtlink in %s: %v", name, err)
	}
	lo, err := ns.NL.LinkByName("lo")
	if err != nil {
		t.Fatalf("lo in %s: %v", name, err)
	}
	if err := ns.NL.LinkSetUp(lo); err != nil {
		t.Fatalf("lo up in %s: %v", name, err)
	}
	ns.Sysctl(t, "net/ipv6/conf/all/accept_dad", "0")
	ns.Sysctl(t, "net/ipv6/conf/default/accept_dad", "0")
	return ns
}

// Do runs fn on a thread inside the namespace: sockets it opens stay there.
func (ns *NS) Do(fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("current netns: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(ns.H); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter %s: %w", ns.Name, err)
	}
	fnErr := fn()
	if err := netns.Set(orig); err != nil {
		// Leave the thread locked: the runtime retires it with the goroutine.
		return fmt.Errorf("leave %s: %w (after %v)", ns.Name, err, fnErr)
	}
	runtime.UnlockOSThread()
	return fnErr
}

// Sysctl writes /proc/sys/<key> as seen from inside the namespace.
func (ns *NS) Sysctl(t testing.TB, key, value string) {
	t.Helper()
	err := ns.Do(func() error {
		return os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644)
	})
	if err != nil {
		t.Fatalf("sysctl %s=%s in %s: %v", key, value, ns.Name, err)
	}
}

// Veth joins a and b with a veth pair, up, with the IPv4 addresses given.
func Veth(t testing.TB, a *NS, ifA string, addrA netip.Prefix, b *NS, ifB string, addrB netip.Prefix) {
	t.Helper()
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: ifA},
		PeerName:      ifB,
		PeerNamespace: netlink.NsFd(b.H),
	}
	if err := a.NL.LinkAdd(v); err != nil {
		t.Fatalf("veth %s/%s: %v", ifA, ifB, err)
	}
	a.AddrUp(t, ifA, addrA)
	b.AddrUp(t, ifB, addrB)
}

// AddrUp assigns p (without DAD) to dev and brings it up.
func (ns *NS) AddrUp(t testing.TB, dev string, p netip.Prefix) {
	t.Helper()
	l := ns.Link(t, dev)
	a := &netlink.Addr{IPNet: IPNet(p), Flags: unix.IFA_F_NODAD}
	if err := ns.NL.AddrAdd(l, a); err != nil {
		t.Fatalf("address %v on %s in %s: %v", p, dev, ns.Name, err)
	}
	if err := ns.NL.LinkSetUp(l); err != nil {
		t.Fatalf("%s up in %s: %v", dev, ns.Name, err)
	}
}

// Route adds a route to dst through dev.
func (ns *NS) Route(t testing.TB, dev string, dst netip.Prefix) {
	t.Helper()
	l := ns.Link(t, dev)
	if err := ns.NL.RouteAdd(&netlink.Route{LinkIndex: l.Attrs().Index, Dst: IPNet(dst)}); err != nil {
		t.Fatalf("route %v dev %s in %s: %v", dst, dev, ns.Name, err)
	}
}

// Link looks a device up, failing the test when it is missing.
func (ns *NS) Link(t testing.TB, name string) netlink.Link {
	t.Helper()
	l, err := ns.NL.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s in %s: %v", name, ns.Name, err)
	}
	return l
}

// IPNet converts a prefix for netlink.
func IPNet(p netip.Prefix) *net.IPNet {
	a := p.Addr()
	return &net.IPNet{IP: net.IP(a.AsSlice()), Mask: net.CIDRMask(p.Bits(), a.BitLen())}
}

// Listen opens a listener inside the namespace.
func (ns *NS) Listen(t testing.TB, network, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	if err := ns.Do(func() (err error) { l, err = net.Listen(network, addr); return err }); err != nil {
		t.Fatalf("listen %s %s in %s: %v", network, addr, ns.Name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// Dial connects from inside the namespace.
func (ns *NS) Dial(network, addr string) (net.Conn, error) {
	var c net.Conn
	err := ns.Do(func() (err error) {
		d := net.Dialer{Timeout: 5 * time.Second}
		c, err = d.Dial(network, addr)
		return err
	})
	return c, err
}

// Transfer sends size random bytes over TCP from one namespace to a
// listener on addr (IPv6 or IPv4) in the other, fails t unless they arrive
// intact (same length and SHA-256), and returns the goodput in bit/s.
func Transfer(t testing.TB, from, to *NS, addr netip.Addr, size int) float64 {
	t.Helper()
	hostPort := netip.AddrPortFrom(addr, 5001).String()
	ln := to.Listen(t, "tcp", hostPort) // IPv6, or IPv4 (v4v6), by addr
	data := make([]byte, size)
	_, _ = rand.Read(data)
	want := sha256.Sum256(data)

	type result struct {
		n   int64
		sum [32]byte
		err error
	}
	res := make(chan result, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close() // one connection; the port is free for the next call
		if err != nil {
			res <- result{err: err}
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(60 * time.Second))
		h := sha256.New()
		n, err := io.Copy(h, c)
		r := result{n: n, err: err}
		copy(r.sum[:], h.Sum(nil))
		res <- r
	}()

	start := time.Now()
	c, err := from.Dial("tcp", hostPort)
	if err != nil {
		ln.Close()
		t.Fatalf("dial %s from %s: %v", hostPort, from.Name, err)
	}
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	_, werr := c.Write(data)
	c.Close()
	if werr != nil {
		ln.Close()
		t.Fatalf("send to %s: %v", hostPort, werr)
	}
	r := <-res
	if r.err != nil {
		t.Fatalf("receive: %v", r.err)
	}
	if r.n != int64(size) || r.sum != want {
		t.Fatalf("received %d bytes with sha256 %x, want %d bytes with %x", r.n, r.sum, size, want)
	}
	d := time.Since(start)
	bps := float64(size) * 8 / d.Seconds()
	t.Logf("%s → %s: %d KiB over TCP in %v (%.1f Mbit/s), sha256 matches", from.Name, to.Name, size>>10, d.Round(time.Millisecond), bps/1e6)
	return bps
}

// Stream sends as much as it can over TCP from one namespace to addr in the
// other for d and returns the goodput in bit/s counted by the receiver.
func Stream(t testing.TB, from, to *NS, addr netip.Addr, d time.Duration) float64 {
	t.Helper()
	hostPort := netip.AddrPortFrom(addr, 5002).String()
	ln := to.Listen(t, "tcp6", hostPort)
	got := make(chan int64, 1)
	go func() {
		c, err := ln.Accept()
		ln.Close() // one connection; the port is free for the next call
		if err != nil {
			got <- 0
			return
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(d + 30*time.Second))
		n, _ := io.Copy(io.Discard, c)
		got <- n
	}()
	c, err := from.Dial("tcp6", hostPort)
	if err != nil {
		ln.Close()
		t.Fatalf("dial %s from %s: %v", hostPort, from.Name, err)
	}
	buf := make([]byte, 64<<10)
	start := time.Now()
	_ = c.SetWriteDeadline(start.Add(d))
	for time.Since(start) < d {
		if _, err := c.Write(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				break
			}
			c.Close()
			t.Fatalf("stream to %s: %v", hostPort, err)
		}
	}
	c.Close()
	n := <-got
	el := time.Since(start)
	return float64(n) * 8 / el.Seconds()
}

// Pinger is the ICMPv6 echo socket a test pings with (the tunnel's own
// keepalive socket type, opened separately from the tunnel's prober).
type Pinger interface {
	WriteEcho(seq uint16) error
	ReadEcho() (uint16, error)
	Close() error
}

// Ping sends count echo requests over p and returns how many were
// answered, waiting up to wait for each.
func Ping(p Pinger, count int, wait time.Duration) int {
	replies := make(chan uint16, count)
	go func() {
		for {
			seq, err := p.ReadEcho()
			if err != nil {
				close(replies)
				return
			}
			replies <- seq
		}
	}()
	answered := 0
	for seq := uint16(1); int(seq) <= count; seq++ {
		if err := p.WriteEcho(seq); err != nil {
			continue
		}
		timer := time.NewTimer(wait)
	wait:
		for {
			select {
			case got, ok := <-replies:
				if !ok {
					timer.Stop()
					return answered
				}
				if got == seq {
					answered++
					break wait
				}
			case <-timer.C:
				break wait
			}
		}
		timer.Stop()
	}
	p.Close() // ends the reader
	for range replies {
	}
	return answered
}

// Describe lists the devices of a namespace, for failure messages.
func (ns *NS) Describe() string {
	links, err := ns.NL.LinkList()
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for _, l := range links {
		fmt.Fprintf(&b, "%s(%s) ", l.Attrs().Name, l.Type())
	}
	return b.String()
}

// Ethtool commands (linux/ethtool.h).
const (
	siocEthtool    = 0x8946
	ethtoolSTxCsum = 0x17 // ETHTOOL_STXCSUM
)

// WireLike turns transmit checksum offload (and with it TSO) off on dev,
// so that it hands the peer complete, MTU-sized packets with checksums
// filled in, as a real wire does. Without it a veth passes 64 KiB GSO
// packets with unfinished inner checksums, which a real path never sees
// and which a userspace tunnel end receives as corrupt.
func (ns *NS) WireLike(t testing.TB, dev string) {
	t.Helper()
	err := ns.Do(func() error {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return err
		}
		defer unix.Close(fd)
		val := struct{ cmd, data uint32 }{cmd: ethtoolSTxCsum}
		var ifr struct {
			name [unix.IFNAMSIZ]byte
			data unsafe.Pointer
			_    [24]byte
		}
		copy(ifr.name[:], dev)
		ifr.data = unsafe.Pointer(&val)
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), siocEthtool, uintptr(unsafe.Pointer(&ifr)))
		runtime.KeepAlive(&val)
		if errno != 0 {
			return errno
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tx checksum offload off on %s in %s: %v", dev, ns.Name, err)
	}
}
