package rtlink_test

// Each request is checked against vishvananda/netlink, an independent
// implementation the shipped binary no longer links: what rtlink writes
// the library must read back, and what the library writes rtlink must
// read. The namespaces come from vmtest, so that the tunnel kinds run in
// the VM lane (TestKernel*) as well.

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/internal/vmtest"
)

// vethNS is a namespace with a veth pair dnv<pid>a/b, both down.
func vethNS(t *testing.T) (*vmtest.NS, string, string) {
	t.Helper()
	vmtest.RequireRoot(t)
	ns := vmtest.NewNS(t, "dn-rtlink")
	id := strconv.Itoa(os.Getpid() % 100000)
	a, b := "dnv"+id+"a", "dnv"+id+"b"
	v := &netlink.Veth{LinkAttrs: netlink.LinkAttrs{Name: a, TxQLen: -1}, PeerName: b}
	if err := ns.NL.LinkAdd(v); err != nil {
		t.Fatalf("veth: %v", err)
	}
	return ns, a, b
}

// TestLinkLookup: the library makes the devices, rtlink reads them.
func TestLinkLookup(t *testing.T) {
	ns, a, _ := vethNS(t)
	ref := ns.Link(t, a)
	if err := ns.NL.LinkSetMTU(ref, 1400); err != nil {
		t.Fatal(err)
	}
	if err := ns.NL.LinkSetUp(ref); err != nil {
		t.Fatal(err)
	}
	ref = ns.Link(t, a)

	byName, err := ns.RT.LinkByName(a)
	if err != nil {
		t.Fatalf("LinkByName(%s): %v", a, err)
	}
	byIndex, err := ns.RT.LinkByIndex(ref.Attrs().Index)
	if err != nil {
		t.Fatalf("LinkByIndex(%d): %v", ref.Attrs().Index, err)
	}
	for _, l := range []rtlink.Link{byName, byIndex} {
		if l.Index != ref.Attrs().Index || l.Name != a || l.Kind != "veth" || l.MTU != 1400 ||
			l.Flags != ref.Attrs().RawFlags {
			t.Errorf("read %+v, library reads index %d name %s type %s mtu %d flags %#x",
				l, ref.Attrs().Index, ref.Attrs().Name, ref.Type(), ref.Attrs().MTU, ref.Attrs().RawFlags)
		}
		if l.Flags&unix.IFF_UP == 0 {
			t.Errorf("%s: IFF_UP missing from %#x", a, l.Flags)
		}
		if l.Stats == nil {
			t.Errorf("%s: no counters", a)
		}
	}
	lo, err := ns.RT.LinkByName("lo")
	if err != nil || lo.Kind != "" || lo.Flags&unix.IFF_LOOPBACK == 0 {
		t.Errorf("lo: %+v, %v; want no kind and IFF_LOOPBACK", lo, err)
	}

	for _, err := range []error{
		func() error { _, err := ns.RT.LinkByName("dnnothere"); return err }(),
		func() error { _, err := ns.RT.LinkByIndex(1 << 30); return err }(),
	} {
		if !rtlink.IsNotFound(err) || !errors.Is(err, unix.ENODEV) {
			t.Errorf("missing device: err = %v, want LinkNotFoundError matching ENODEV", err)
		}
	}
}

// TestLinkCounters: the counters rtlink reads are the library's.
func TestLinkCounters(t *testing.T) {
	vmtest.RequireRoot(t)
	ns, peer := vmtest.NewNS(t, "dn-count-a"), vmtest.NewNS(t, "dn-count-b")
	a := "dnc" + strconv.Itoa(os.Getpid()%100000)
	vmtest.Veth(t, ns, a, netip.MustParsePrefix("10.97.0.1/24"), peer, "dnpeer", netip.MustParsePrefix("10.97.0.2/24"))
	// Some datagrams over the pair, then both read the counters.
	c, err := ns.Dial("udp4", "10.97.0.2:9")
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		// The peer's port unreachable comes back as ECONNREFUSED on a
		// later write; the datagram is sent all the same.
		if _, err := c.Write([]byte("dn counters")); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
			t.Fatal(err)
		}
	}
	c.Close()
	// The datagrams leave once ARP has resolved; the counters only grow,
	// so rtlink's reading must lie between two of the library's.
	deadline := time.Now().Add(3 * time.Second)
	for {
		before := ns.Link(t, a).Attrs().Statistics
		l, err := ns.RT.LinkByName(a)
		if err != nil {
			t.Fatal(err)
		}
		after := ns.Link(t, a).Attrs().Statistics
		if l.Stats == nil || before == nil || after == nil {
			t.Fatalf("counters: rtlink %v, library %v", l.Stats, before)
		}
		s := *l.Stats
		if s.TxPackets < before.TxPackets || s.TxPackets > after.TxPackets || s.TxBytes < before.TxBytes || s.TxBytes > after.TxBytes ||
			s.RxPackets < before.RxPackets || s.RxPackets > after.RxPackets || s.RxBytes < before.RxBytes || s.RxBytes > after.RxBytes {
			t.Fatalf("counters %+v outside the library's %+v .. %+v", s, *before, *after)
		}
		if s.TxPackets >= 5 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("counters %+v: the 5 datagrams never counted", s)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestLinkSetAndDel: rtlink changes the device, the library sees it.
func TestLinkSetAndDel(t *testing.T) {
	ns, a, b := vethNS(t)
	l, err := ns.RT.LinkByName(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.RT.LinkSetMTU(l.Index, 1280); err != nil {
		t.Fatalf("LinkSetMTU: %v", err)
	}
	if err := ns.RT.LinkSetUp(l.Index); err != nil {
		t.Fatalf("LinkSetUp: %v", err)
	}
	ref := ns.Link(t, a)
	if ref.Attrs().MTU != 1280 || ref.Attrs().RawFlags&unix.IFF_UP == 0 {
		t.Errorf("library reads mtu %d flags %#x, want 1280 and IFF_UP", ref.Attrs().MTU, ref.Attrs().RawFlags)
	}
	if err := ns.RT.LinkSetMTU(l.Index, 1<<20); err == nil {
		t.Error("MTU of 1 MiB accepted")
	}
	if err := ns.RT.LinkDel(l.Index); err != nil {
		t.Fatalf("LinkDel: %v", err)
	}
	for _, name := range []string{a, b} { // a veth goes with its peer
		if _, err := ns.NL.LinkByName(name); !errors.As(err, &netlink.LinkNotFoundError{}) {
			t.Errorf("%s after LinkDel: %v, want not found", name, err)
		}
	}
	if err := ns.RT.LinkDel(l.Index); !errors.Is(err, unix.ENODEV) {
		t.Errorf("second LinkDel: %v, want ENODEV", err)
	}
}

// TestAddrs: addresses rtlink adds are the library's, and back.
func TestAddrs(t *testing.T) {
	ns, a, _ := vethNS(t)
	l, err := ns.RT.LinkByName(a)
	if err != nil {
		t.Fatal(err)
	}
	v6 := rtlink.Addr{Prefix: netip.MustParsePrefix("2001:db8:97::1/128"), Flags: unix.IFA_F_NODAD}
	v4 := rtlink.Addr{Prefix: netip.MustParsePrefix("10.97.1.1/24")}
	p2p := rtlink.Addr{Prefix: netip.MustParsePrefix("10.97.2.1/31")}
	for _, ad := range []rtlink.Addr{v6, v4, p2p} {
		if err := ns.RT.AddrAdd(l.Index, ad); err != nil {
			t.Fatalf("AddrAdd %v: %v", ad.Prefix, err)
		}
	}
	if err := ns.RT.AddrAdd(l.Index, v6); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second AddrAdd: %v, want EEXIST", err)
	}
	ref, err := ns.NL.AddrList(ns.Link(t, a), netlink.FAMILY_ALL)
	if err != nil {
		t.Fatal(err)
	}
	find := func(p netip.Prefix) *netlink.Addr {
		for i := range ref {
			if ref[i].IPNet.String() == p.String() {
				return &ref[i]
			}
		}
		t.Errorf("library does not list %v (lists %v)", p, ref)
		return nil
	}
	if r := find(v6.Prefix); r != nil && r.Flags&unix.IFA_F_NODAD == 0 {
		t.Errorf("%v: flags %#x, want IFA_F_NODAD", v6.Prefix, r.Flags)
	}
	if r := find(v4.Prefix); r != nil && !r.Broadcast.Equal(net.IPv4(10, 97, 1, 255)) {
		t.Errorf("%v: broadcast %v, want 10.97.1.255 as the library sets", v4.Prefix, r.Broadcast)
	}
	if r := find(p2p.Prefix); r != nil && r.Broadcast != nil {
		t.Errorf("%v: broadcast %v on a /31", p2p.Prefix, r.Broadcast)
	}

	// The other way: the library adds, rtlink lists, per device and family.
	libAddr := &netlink.Addr{IPNet: vmtest.IPNet(netip.MustParsePrefix("2001:db8:97::2/64")), Flags: unix.IFA_F_NODAD}
	if err := ns.NL.AddrAdd(ns.Link(t, a), libAddr); err != nil {
		t.Fatal(err)
	}
	timed := &netlink.Addr{IPNet: vmtest.IPNet(netip.MustParsePrefix("fd00:97::1/60")), Flags: unix.IFA_F_NODAD, ValidLft: 3600, PreferedLft: 1800}
	if err := ns.NL.AddrAdd(ns.Link(t, a), timed); err != nil {
		t.Fatal(err)
	}
	got, err := ns.RT.AddrList(l.Index, unix.AF_INET6)
	if err != nil {
		t.Fatal(err)
	}
	var prefixes []string
	for _, ad := range got {
		if ad.Index != l.Index {
			t.Errorf("AddrList(%d) returned %+v of another device", l.Index, ad)
		}
		switch ad.Prefix.String() {
		case "fd00:97::1/60":
			if ad.Valid > time.Hour || ad.Valid < 59*time.Minute || ad.Preferred > 30*time.Minute || ad.Preferred < 29*time.Minute {
				t.Errorf("%v: lifetimes valid %v preferred %v, want 1 h and 30 min (counting down)", ad.Prefix, ad.Valid, ad.Preferred)
			}
		case "2001:db8:97::2/64":
			if ad.Valid != rtlink.Forever || ad.Preferred != rtlink.Forever {
				t.Errorf("%v: lifetimes valid %v preferred %v, want forever", ad.Prefix, ad.Valid, ad.Preferred)
			}
		}
		if !ad.Prefix.Addr().IsLinkLocalUnicast() {
			prefixes = append(prefixes, ad.Prefix.String())
		}
	}
	slices.Sort(prefixes)
	if want := []string{"2001:db8:97::1/128", "2001:db8:97::2/64", "fd00:97::1/60"}; !slices.Equal(prefixes, want) {
		t.Errorf("AddrList IPv6 = %v, want %v", prefixes, want)
	}
	all, err := ns.RT.AddrList(0, unix.AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	var v4s []string
	for _, ad := range all {
		v4s = append(v4s, ad.Prefix.String())
	}
	slices.Sort(v4s)
	if want := []string{"10.97.1.1/24", "10.97.2.1/31", "127.0.0.1/8"}; !slices.Equal(v4s, want) {
		t.Errorf("AddrList(all, IPv4) = %v, want %v", v4s, want)
	}

	// Replace keeps one address and changes its flags; Del removes it.
	if err := ns.RT.AddrReplace(l.Index, rtlink.Addr{Prefix: v6.Prefix}); err != nil {
		t.Fatalf("AddrReplace: %v", err)
	}
	if err := ns.RT.AddrDel(l.Index, v6); err != nil {
		t.Fatalf("AddrDel: %v", err)
	}
	if err := ns.RT.AddrDel(l.Index, v6); !errors.Is(err, unix.EADDRNOTAVAIL) {
		t.Errorf("second AddrDel: %v, want EADDRNOTAVAIL", err)
	}
	ref, _ = ns.NL.AddrList(ns.Link(t, a), netlink.FAMILY_V6)
	for _, r := range ref {
		if r.IP.Equal(net.ParseIP("2001:db8:97::1")) {
			t.Errorf("library still lists %v after AddrDel", r.IPNet)
		}
	}
	if err := ns.RT.AddrAdd(l.Index, rtlink.Addr{Prefix: netip.MustParsePrefix("::ffff:10.0.0.1/120")}); err == nil {
		t.Error("an IPv4-mapped address was accepted")
	}
}

// TestRoutes: routes rtlink writes are the library's, and RouteGet
// answers as the library's does.
func TestRoutes(t *testing.T) {
	ns, a, _ := vethNS(t)
	vmtest.Veth(t, ns, "dnr0", netip.MustParsePrefix("10.97.3.1/24"), ns, "dnr1", netip.MustParsePrefix("10.97.4.1/24"))
	ns.AddrUp(t, "dnr0", netip.MustParsePrefix("2001:db8:97:3::1/64"))
	l, err := ns.RT.LinkByName("dnr0")
	if err != nil {
		t.Fatal(err)
	}
	_ = a
	host := rtlink.Route{Dst: netip.MustParsePrefix("2001:db8:97:9::1/128"), Index: l.Index, Metric: 77, Protocol: unix.RTPROT_STATIC}
	v4 := rtlink.Route{Dst: netip.MustParsePrefix("10.97.9.0/24"), Index: l.Index}
	unreach := rtlink.Route{Dst: netip.MustParsePrefix("2001:db8:97:a00::/56"), Type: unix.RTN_UNREACHABLE, Metric: 2048, Protocol: unix.RTPROT_STATIC}
	for _, r := range []rtlink.Route{host, v4, unreach} {
		if err := ns.RT.RouteAdd(r); err != nil {
			t.Fatalf("RouteAdd %v: %v", r.Dst, err)
		}
	}
	if err := ns.RT.RouteAdd(host); !errors.Is(err, unix.EEXIST) {
		t.Errorf("second RouteAdd: %v, want EEXIST", err)
	}
	if err := ns.RT.RouteReplace(unreach); err != nil {
		t.Errorf("RouteReplace of the same route: %v", err)
	}
	ref, err := ns.NL.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	if err != nil {
		t.Fatal(err)
	}
	// The library lists other types than unicast only when asked to.
	unr, err := ns.NL.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Type: unix.RTN_UNREACHABLE}, netlink.RT_FILTER_TYPE)
	if err != nil {
		t.Fatal(err)
	}
	ref = append(ref, unr...)
	check := func(r rtlink.Route, wantDev, wantType, wantProto int) {
		t.Helper()
		for _, x := range ref {
			if x.Dst != nil && x.Dst.String() == r.Dst.String() {
				if x.LinkIndex != wantDev || x.Priority != r.Metric || x.Type != wantType || int(x.Protocol) != wantProto {
					t.Errorf("%v: library reads dev %d metric %d type %d proto %d; want %d %d %d %d",
						r.Dst, x.LinkIndex, x.Priority, x.Type, x.Protocol, wantDev, r.Metric, wantType, wantProto)
				}
				return
			}
		}
		t.Errorf("library does not list the route to %v", r.Dst)
	}
	check(host, l.Index, unix.RTN_UNICAST, unix.RTPROT_STATIC)
	check(v4, l.Index, unix.RTN_UNICAST, unix.RTPROT_BOOT)
	check(unreach, 1, unix.RTN_UNREACHABLE, unix.RTPROT_STATIC) // IPv6 hangs it on lo

	for _, dst := range []string{"2001:db8:97:9::1", "10.97.9.7", "10.97.4.1", "2001:db8:97:3::5"} {
		d := netip.MustParseAddr(dst)
		got, err := ns.RT.RouteGet(d)
		if err != nil {
			t.Errorf("RouteGet(%v): %v", d, err)
			continue
		}
		want, err := ns.NL.RouteGet(net.IP(d.AsSlice()))
		if err != nil || len(want) != 1 {
			t.Fatalf("library RouteGet(%v): %v %v", d, want, err)
		}
		src, _ := netip.AddrFromSlice(want[0].Src)
		gw, _ := netip.AddrFromSlice(want[0].Gw)
		if got.Index != want[0].LinkIndex || got.Src != src || got.Gw != gw || got.Index == 0 {
			t.Errorf("RouteGet(%v) = %+v; library: dev %d src %v gw %v", d, got, want[0].LinkIndex, src, gw)
		}
	}
	for _, dst := range []string{"2001:db8:97:a00::1", "192.0.2.1"} {
		// Into the unreachable route, and nowhere (no default route): the
		// library and rtlink fail alike.
		_, err := ns.RT.RouteGet(netip.MustParseAddr(dst))
		_, refErr := ns.NL.RouteGet(net.ParseIP(dst))
		if (err == nil) != (refErr == nil) || err != nil && !errors.Is(err, refErr) {
			t.Errorf("RouteGet(%s): %v, library: %v", dst, err, refErr)
		}
	}

	for _, r := range []rtlink.Route{host, v4, unreach} {
		if err := ns.RT.RouteDel(r); err != nil {
			t.Errorf("RouteDel %v: %v", r.Dst, err)
		}
	}
	if err := ns.RT.RouteDel(host); !errors.Is(err, unix.ESRCH) {
		t.Errorf("second RouteDel: %v, want ESRCH", err)
	}
	left, _ := ns.NL.RouteListFiltered(netlink.FAMILY_ALL, &netlink.Route{Table: unix.RT_TABLE_MAIN}, netlink.RT_FILTER_TABLE)
	unr, _ = ns.NL.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Type: unix.RTN_UNREACHABLE}, netlink.RT_FILTER_TYPE)
	left = append(left, unr...)
	for _, x := range left {
		if x.Dst != nil && (x.Dst.String() == host.Dst.String() || x.Dst.String() == v4.Dst.String() || x.Dst.String() == unreach.Dst.String()) {
			t.Errorf("route %v left after RouteDel", x.Dst)
		}
	}
}

// TestWatchChanges: a link, address or route change in the namespace
// wakes the watcher; closing done closes the channel.
func TestWatchChanges(t *testing.T) {
	ns, a, _ := vethNS(t)
	done := make(chan struct{})
	var ch <-chan struct{}
	errs := make(chan error, 4)
	if err := ns.Do(func() error {
		w, err := rtlink.WatchChanges(done, rtlink.DefaultWatchBuffer, func(err error) { errs <- err })
		if err == nil {
			ch = w.C
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	l, _ := ns.RT.LinkByName(a)
	select {
	case <-ch:
		t.Fatal("token before any change")
	case <-time.After(100 * time.Millisecond):
	}
	steps := []func() error{
		func() error {
			return ns.RT.AddrAdd(l.Index, rtlink.Addr{Prefix: netip.MustParsePrefix("10.97.5.1/24")})
		},
		func() error {
			return ns.RT.RouteAdd(rtlink.Route{Dst: netip.MustParsePrefix("10.97.6.0/24"), Type: unix.RTN_UNREACHABLE})
		},
		func() error { // a link notification alone
			return ns.NL.LinkSetTxQLen(ns.Link(t, a), 123)
		},
	}
	for i, step := range steps {
		if err := step(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatalf("change %d: no token", i)
		}
		// Drain what the same change may have queued (e.g. the route an
		// address brings along).
		time.Sleep(50 * time.Millisecond)
		select {
		case <-ch:
		default:
		}
	}
	close(done)
	select {
	case _, ok := <-ch:
		if ok {
			t.Error("a token after done, not a closed channel")
		}
	case <-time.After(2 * time.Second):
		t.Fatal("channel not closed after done")
	}
	select {
	case err := <-errs:
		t.Errorf("error reported on a normal stop: %v", err)
	default:
	}
}

// TestWatchLinks: a device going up, an IPv6 address and the device's
// deletion each wake the watcher, which subscribes inside the namespace
// it is given; closing done closes the channel without an error.
func TestWatchLinks(t *testing.T) {
	ns, a, _ := vethNS(t)
	done := make(chan struct{})
	errs := make(chan error, 4)
	ch, err := rtlink.WatchLinksAt(ns.H, done, func(err error) { errs <- err })
	if err != nil {
		t.Fatal(err)
	}
	l, _ := ns.RT.LinkByName(a)
	steps := []func() error{
		func() error { return ns.RT.LinkSetUp(l.Index) },
		func() error {
			return ns.RT.AddrAdd(l.Index, rtlink.Addr{Prefix: netip.MustParsePrefix("2001:db8:97::1/64"), Flags: unix.IFA_F_NODAD})
		},
		func() error { return ns.RT.LinkDel(l.Index) },
	}
	for i, step := range steps {
		time.Sleep(50 * time.Millisecond)
		select { // what the step before may have queued
		case <-ch:
		default:
		}
		if err := step(); err != nil {
			t.Fatal(err)
		}
		select {
		case <-ch:
		case <-time.After(2 * time.Second):
			t.Fatalf("change %d: no token", i)
		}
	}
	close(done)
	for {
		select {
		case _, ok := <-ch:
			if ok {
				continue // late tokens of the deletion
			}
		case <-time.After(2 * time.Second):
			t.Fatal("channel not closed after done")
		}
		break
	}
	select {
	case err := <-errs:
		t.Errorf("error reported on a normal stop: %v", err)
	default:
	}
}
