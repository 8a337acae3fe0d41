package tunnel

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/jsklein/gogoc/internal/vmtest"
)

// The kernel v4v6 lab: client ⇄ broker over a veth carrying only IPv6,
// both tunnel ends ip6tnl devices in ipip6 mode. Driven from Go alone
// (internal/vmtest), so that it runs in the VM lane's busybox initramfs:
// this host has no ip6_tunnel and skips.
const (
	k46If       = "gv4t"  // the client tunnel under test
	k46BrokerIf = "gv4bt" // the broker's kernel tunnel
)

type kernelV4V6Lab struct {
	client, broker *vmtest.NS
}

func newKernelV4V6Lab(t *testing.T) *kernelV4V6Lab {
	t.Helper()
	vmtest.RequireKernel(t, vmtest.Ip6tnl)
	l := &kernelV4V6Lab{client: vmtest.NewNS(t, "gv4-client"), broker: vmtest.NewNS(t, "gv4-broker")}
	vmtest.Veth(t, l.client, "gv4c0", netip.PrefixFrom(v46ClientOuter, 64), l.broker, "gv4b0", netip.PrefixFrom(v46BrokerOuter, 64))
	var undo undoStack
	t.Cleanup(func() { _ = undo.run() })
	if err := addIP6Tnl(l.broker.RT, k46BrokerIf, DefaultMTU, v46BrokerOuter, v46ClientOuter, &undo); err != nil {
		t.Fatalf("broker ip6tnl: %v", err)
	}
	plan := linkPlan{
		MTU:    DefaultMTU,
		Addrs:  []netip.Prefix{netip.PrefixFrom(v46ServerV4, 32)},
		Routes: []plannedRoute{{Dst: netip.PrefixFrom(v46ClientV4, 32)}},
	}
	if err := configureLink(l.broker.RT, k46BrokerIf, plan, &undo); err != nil {
		t.Fatalf("broker ip6tnl: %v", err)
	}
	return l
}

func (l *kernelV4V6Lab) up(t *testing.T, cfg Config) Tunnel {
	t.Helper()
	cfg = withAddrs(cfg, v4v6Addrs())
	cfg.IfName, cfg.NetNS, cfg.DataPlane = k46If, l.client.H, PlaneKernel
	cfg.Log = testLogger(t, "client")
	tun, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	if PlaneOf(tun) != PlaneKernel {
		t.Fatalf("plane %q, want kernel", PlaneOf(tun))
	}
	return tun
}

// ping pings the broker's inner address from the client through
// the tunnel with a socket of its own (not the prober's).
func (l *kernelV4V6Lab) ping(t *testing.T, count int) int {
	t.Helper()
	p, err := NewPingConn4(l.client.H, "", v46ClientV4, v46ServerV4)
	if err != nil {
		t.Fatalf("ping socket: %v", err)
	}
	return vmtest.Ping(p, count, 2*time.Second)
}

// TestKernelV4V6 runs the kernel plane: the client's ip6tnl carries IPv4
// ping and TCP to the broker's, the ICMPv4 keepalive gets replies, notices
// the broker's end going down and coming back, and Close leaves nothing.
func TestKernelV4V6(t *testing.T) {
	l := newKernelV4V6Lab(t)
	// A generous timeout: under qemu's TCG a 2 MiB transfer starves the
	// prober for a while.
	const interval, timeout = 200 * time.Millisecond, time.Second
	tun := l.up(t, Config{DefaultRoute: true, Keepalive: KeepaliveConfig{Interval: interval, Timeout: timeout}})
	lk := l.client.Link(t, k46If)
	ip6, ok := lk.(*netlink.Ip6tnl)
	if !ok || ip6.Proto != protoIPIP || !ip6.Remote.Equal(net.IP(v46BrokerOuter.AsSlice())) || !ip6.Local.Equal(net.IP(v46ClientOuter.AsSlice())) {
		t.Fatalf("device %s is %#v, want ip6tnl proto 4 %v → %v", k46If, lk, v46ClientOuter, v46BrokerOuter)
	}
	if got := l.ping(t, 3); got != 3 {
		t.Fatalf("%d of 3 pings answered through the tunnel\n%s", got, l.client.Describe())
	}
	vmtest.Transfer(t, l.client, l.broker, v46ServerV4, 2<<20)
	vmtest.Transfer(t, l.broker, l.client, v46ClientV4, 2<<20)
	deadline := time.Now().Add(5 * time.Second)
	for tun.Stats().Keepalive.Received < 2 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	s := tun.Stats()
	if s.Keepalive.Received < 2 || s.Keepalive.LastRTT <= 0 {
		t.Fatalf("keepalive %+v: want replies", s.Keepalive)
	}
	// The device's own counters (in super-packets with GSO, so bytes).
	if s.TxBytes < 2<<20 || s.RxBytes < 2<<20 {
		t.Errorf("device counters %+v: want ≥ 2 MiB each way", s)
	}

	// The broker's end goes down: the ICMPv4 keepalive notices.
	settleKeepalive(t, tun)
	b := l.broker.Link(t, k46BrokerIf)
	if err := l.broker.NL.LinkSetDown(b); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, tun, KeepaliveLost, 3*interval+timeout+5*time.Second)
	if err := l.broker.NL.LinkSetUp(b); err != nil {
		t.Fatal(err)
	}
	// Taking the device down flushed its IPv4 route.
	rt := &netlink.Route{LinkIndex: b.Attrs().Index, Dst: vmtest.IPNet(netip.PrefixFrom(v46ClientV4, 32))}
	if err := l.broker.NL.RouteReplace(rt); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, tun, KeepaliveRestored, 5*time.Second)

	if err := tun.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertV4V6Gone(t, l.client.NL, k46If)
}

// TestKernelV4V6LeftoverAndRollback: an ip6tnl a killed run left under our
// name is replaced, and a set-up that fails at its last step (the default
// route exists with our metric) leaves nothing: neither the leftover nor
// the new device, nor an address or route.
func TestKernelV4V6LeftoverAndRollback(t *testing.T) {
	l := newKernelV4V6Lab(t)
	var undo undoStack
	if err := addIP6Tnl(l.client.RT, k46If, DefaultMTU, v46ClientOuter, netip.MustParseAddr("2001:db8:46::99"), &undo); err != nil {
		t.Fatal(err)
	}
	old := l.client.Link(t, k46If).Attrs().Index

	// A working run replaces the leftover.
	tun := l.up(t, Config{})
	if idx := l.client.Link(t, k46If).Attrs().Index; idx == old {
		t.Fatalf("device index %d unchanged: the leftover was not replaced", idx)
	}
	if got := l.ping(t, 2); got != 2 {
		t.Fatalf("%d of 2 pings answered", got)
	}
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	assertV4V6Gone(t, l.client.NL, k46If)

	lo := l.client.Link(t, "lo")
	conflict := &netlink.Route{LinkIndex: lo.Attrs().Index, Dst: vmtest.IPNet(netip.MustParsePrefix("0.0.0.0/0")), Priority: DefaultRouteMetric}
	if err := l.client.NL.RouteAdd(conflict); err != nil {
		t.Fatal(err)
	}
	_, err := New(context.Background(), withAddrs(Config{DataPlane: PlaneKernel, IfName: k46If, NetNS: l.client.H, DefaultRoute: true}, v4v6Addrs()))
	if !errors.Is(err, ErrRouteConflict) {
		t.Fatalf("err = %v, want ErrRouteConflict", err)
	}
	t.Logf("set-up failed as expected: %v", err)
	if err := l.client.NL.RouteDel(conflict); err != nil {
		t.Fatalf("the existing default route was touched: %v", err)
	}
	assertV4V6Gone(t, l.client.NL, k46If)
}

// TestKernelV4V6AutoPicksKernel: "auto" takes ip6tnl where the kernel has
// it; on this host without ip6_tunnel it falls back to userspace, which
// TestUserspaceV4V6EndToEnd covers.
func TestKernelV4V6AutoPicksKernel(t *testing.T) {
	l := newKernelV4V6Lab(t)
	tun, err := New(context.Background(), withAddrs(Config{IfName: k46If, NetNS: l.client.H}, v4v6Addrs()))
	if err != nil {
		t.Fatal(err)
	}
	defer tun.Close()
	if PlaneOf(tun) != PlaneKernel {
		t.Fatalf("auto chose %q with ip6tnl available", PlaneOf(tun))
	}
}
