package tunnel

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/vmtest"
)

// The v4v6 lab: client ⇄ broker over a link that carries IPv6 only, and an
// IPv4 host behind the broker. IPv4 exists on the client only inside the
// tunnel.
var (
	v46ClientOuter = netip.MustParseAddr("2001:db8:46::2")
	v46BrokerOuter = netip.MustParseAddr("2001:db8:46::1")
	v46Pool4       = netip.MustParsePrefix("198.18.0.0/24") // testbroker's default v4v6 pool
	v46ServerV4    = netip.MustParseAddr("198.18.0.1")      // its first host: the broker's inner IPv4
	v46ClientV4    = netip.MustParseAddr("198.18.0.2")
	v46InetV4      = netip.MustParseAddr("10.46.1.2")
)

type v4v6Lab struct {
	client, broker, inet *labNS
}

// newV4V6Lab builds the three namespaces. The names carry "gv4" so that a
// leftover can be told from other tests' labs.
func newV4V6Lab(t testing.TB) *v4v6Lab {
	t.Helper()
	requireLab(t)
	l := &v4v6Lab{client: newLabNS(t, "gv4c"), broker: newLabNS(t, "gv4b"), inet: newLabNS(t, "gv4i")}
	veth(t, l.client, "c0", l.broker, "b0")
	l.client.ip(t, "-6", "addr", "add", v46ClientOuter.String()+"/64", "dev", "c0", "nodad")
	l.broker.ip(t, "-6", "addr", "add", v46BrokerOuter.String()+"/64", "dev", "b0", "nodad")
	veth(t, l.broker, "b1", l.inet, "i0")
	l.broker.ip(t, "addr", "add", "10.46.1.1/24", "dev", "b1")
	l.inet.ip(t, "addr", "add", v46InetV4.String()+"/24", "dev", "i0")
	l.inet.ip(t, "route", "add", "default", "via", "10.46.1.1")
	l.broker.sysctl(t, "net.ipv4.ip_forward", "1")
	return l
}

// assertIPv6OnlyPath fails unless the client has no IPv4 address outside
// the tunnel: whatever IPv4 works, works through it.
func (l *v4v6Lab) assertIPv6OnlyPath(t testing.TB, tunName string) {
	t.Helper()
	addrs, err := l.client.nl.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		link, err := l.client.nl.LinkByIndex(a.LinkIndex)
		if err != nil {
			t.Fatal(err)
		}
		if name := link.Attrs().Name; name != "lo" && name != tunName {
			t.Fatalf("client has IPv4 %v on %s: the path to the broker must be IPv6 only", a.IPNet, name)
		}
	}
}

// v4v6Addrs is the tunnel the test broker offers in the lab, as plain
// values.
func v4v6Addrs() Config {
	return Config{
		Type:           V4V6,
		Local:          netip.PrefixFrom(v46ClientV4, 32),
		Remote:         v46ServerV4,
		LocalEndpoint:  v46ClientOuter,
		RemoteEndpoint: v46BrokerOuter,
		Keepalive:      KeepaliveConfig{Target: v46ServerV4},
	}
}

// ping4 pings from ns with the system ping.
func ping4(t *testing.T, ns *labNS, dst netip.Addr) {
	t.Helper()
	out, err := ns.exec("ping", "-4", "-n", "-c", "3", "-i", "0.2", "-W", "2", dst.String())
	if err != nil {
		t.Fatalf("ping %v from %s: %v\n%s", dst, ns.name, err, out)
	}
}

// assertV4V6Gone checks that nothing of the client tunnel is left: no
// device, no inner address, no IPv4 route we added (ours are the only
// static-protocol ones).
func assertV4V6Gone(t *testing.T, h *netlink.Handle, ifName string) {
	t.Helper()
	if l, err := h.LinkByName(ifName); err == nil {
		t.Errorf("device %s still exists (index %d)", ifName, l.Attrs().Index)
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.Equal(net.IP(v46ClientV4.AsSlice())) {
			t.Errorf("address %v still assigned", a.IPNet)
		}
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		if r.Protocol == unix.RTPROT_STATIC {
			t.Errorf("route %v (dev index %d) still present", r.Dst, r.LinkIndex)
		}
	}
}

func waitKeepaliveReplies(t *testing.T, tun Tunnel, n uint64, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for tun.Stats().Keepalive.Received < n && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if ka := tun.Stats().Keepalive; ka.Received < n || ka.LastRTT <= 0 || ka.Lost {
		t.Fatalf("keepalive stats %+v: want ≥ %d replies with an RTT", ka, n)
	}
}

// settleKeepalive drops the events so far and waits until the prober is
// not in a loss, so that a following waitEvent sees only new events.
func settleKeepalive(t *testing.T, tun Tunnel) {
	t.Helper()
	for {
		select {
		case ev := <-tun.Events():
			t.Logf("earlier event: %v", ev)
			continue
		default:
		}
		break
	}
	if tun.Stats().Keepalive.Lost {
		waitEvent(t, tun, KeepaliveRestored, 10*time.Second)
	}
}

func TestV4V6Config(t *testing.T) {
	good := v4v6Addrs()
	good.Keepalive.Interval = 30 * time.Second
	cfg, err := good.withDefaults()
	if err != nil {
		t.Fatalf("valid v4v6 config refused: %v", err)
	}
	if cfg.Keepalive.Interval != 30*time.Second || cfg.MTU != DefaultMTU || cfg.Keepalive.Timeout != DefaultTimeout {
		t.Fatalf("defaults %+v", cfg)
	}
	for _, tc := range []struct {
		name   string
		change func(*Config)
		want   string
	}{
		{"no client IPv4", func(c *Config) { c.Local = netip.Prefix{} }, "without a local inner IPv4"},
		{"client IPv6 as inner", func(c *Config) { c.Local = netip.PrefixFrom(v46ClientOuter, 128) }, "without a local inner IPv4"},
		{"no server IPv4", func(c *Config) { c.Remote = netip.Addr{} }, "without a remote inner IPv4"},
		{"no outer server", func(c *Config) { c.RemoteEndpoint = netip.Addr{} }, "without a broker IPv6 endpoint"},
		{"outer server mapped IPv4", func(c *Config) { c.RemoteEndpoint = netip.MustParseAddr("::ffff:192.0.2.1") }, "without a broker IPv6 endpoint"},
		{"IPv6 keepalive address", func(c *Config) { c.Keepalive.Target = v46BrokerOuter }, "no IPv4 keepalive target"},
		{"no keepalive address", func(c *Config) { c.Keepalive.Target = netip.Addr{} }, "no IPv4 keepalive target"},
		{"negative keepalive", func(c *Config) { c.Keepalive.Interval = -time.Second }, "negative"},
		{"no type", func(c *Config) { c.Type = 0 }, "type(0)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.change(&c)
			_, err := c.withDefaults()
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one saying %q", err, tc.want)
			}
		})
	}
	// Keepalive off: no keepalive target needed.
	c := good
	c.Keepalive = KeepaliveConfig{}
	if _, err := c.withDefaults(); err != nil {
		t.Errorf("config without keepalive refused: %v", err)
	}
	// A v6 type insists on IPv6 inner addresses and keepalive target.
	c = good
	c.Type, c.RemoteEndpoint = V6V4, netip.MustParseAddr("192.0.2.1")
	if _, err := c.withDefaults(); err == nil {
		t.Error("v6v4 with IPv4 inner addresses accepted")
	}
	c.Local, c.Remote = netip.MustParsePrefix("2001:db8::2/128"), netip.MustParseAddr("2001:db8::1")
	if _, err := c.withDefaults(); err == nil || !strings.Contains(err.Error(), "no IPv6 keepalive target") {
		t.Errorf("v6v4 with an IPv4 keepalive target: err = %v", err)
	}
}

func TestPlanV4V6(t *testing.T) {
	c := v4v6Addrs()
	c.DefaultRoute, c.RouteMetric, c.Keepalive.Interval = true, 77, 30*time.Second
	cfg, err := c.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	p := planFor(cfg)
	if len(p.Addrs) != 1 || p.Addrs[0] != netip.MustParsePrefix("198.18.0.2/32") || p.MTU != 1280 {
		t.Fatalf("plan %+v: want 198.18.0.2/32, MTU 1280", p)
	}
	want := []plannedRoute{{Dst: netip.MustParsePrefix("198.18.0.1/32")}, {Dst: netip.MustParsePrefix("0.0.0.0/0"), Metric: 77}}
	if len(p.Routes) != len(want) || p.Routes[0] != want[0] || p.Routes[1] != want[1] {
		t.Fatalf("routes %+v, want %+v", p.Routes, want)
	}
	// A keepalive address other than the server gets its own host route.
	c = v4v6Addrs()
	c.Keepalive.Target, c.Keepalive.Interval = netip.MustParseAddr("198.18.0.254"), 30*time.Second
	cfg, _ = c.withDefaults()
	p = planFor(cfg)
	if len(p.Routes) != 2 || p.Routes[1].Dst != netip.MustParsePrefix("198.18.0.254/32") {
		t.Fatalf("routes %+v: want a host route to the keepalive address and no default", p.Routes)
	}
}

func TestIPv4Packet(t *testing.T) {
	pkt := make([]byte, 40)
	pkt[0] = 0x45
	pkt[3] = 28 // total length 28: the rest is link padding
	got, ok := ipv4Packet(pkt)
	if !ok || len(got) != 28 {
		t.Fatalf("ipv4Packet = %d bytes, %v; want 28, true", len(got), ok)
	}
	for name, p := range map[string][]byte{
		"nil":            nil,
		"short":          pkt[:19],
		"IPv6":           append([]byte{0x60}, pkt[1:]...),
		"header len 16":  append([]byte{0x44}, pkt[1:]...),
		"length > data":  {0x45, 0, 0, 50, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"length < hdr":   {0x46, 0, 0, 20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"TSP control 0F": append([]byte{0xf0}, pkt[1:]...),
	} {
		if _, ok := ipv4Packet(p); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestEcho4(t *testing.T) {
	p := &pingConn4{id: 0x1234}
	copy(p.cookie[:], "cookie42")
	req := marshalEcho4(make([]byte, 16), p.id, 7, p.cookie[:])
	// The RFC 1071 checksum, computed here the slow way.
	var s uint32
	for i := 0; i < len(req); i += 2 {
		s += uint32(req[i])<<8 | uint32(req[i+1])
	}
	for s>>16 != 0 {
		s = s&0xffff + s>>16
	}
	if s != 0xffff || req[0] != icmpv4EchoRequest {
		t.Fatalf("echo request % x: type %d, checksum sum %#x, want type 8 and 0xffff", req, req[0], s)
	}
	// A reply as the raw socket delivers it: IPv4 header, then ICMP.
	reply := func(mut func(icmp []byte)) []byte {
		icmp := bytes.Clone(req)
		icmp[0] = icmpv4EchoReply
		icmp[2], icmp[3] = 0, 0
		mut(icmp)
		icmp[2], icmp[3] = 0, 0
		c := ^fold(sum(icmp, 0))
		icmp[2], icmp[3] = byte(c>>8), byte(c)
		hdr := []byte{0x45, 0, 0, byte(20 + len(icmp)), 0, 0, 0, 0, 64, 1, 0, 0, 198, 18, 0, 1, 198, 18, 0, 2}
		return append(hdr, icmp...)
	}
	if seq, ok := p.parseReply(reply(func([]byte) {})); !ok || seq != 7 {
		t.Fatalf("reply: seq %d %v, want 7 true", seq, ok)
	}
	for name, pkt := range map[string][]byte{
		"other id":     reply(func(b []byte) { b[4] ^= 1 }),
		"other cookie": reply(func(b []byte) { b[15] ^= 1 }),
		"request":      reply(func(b []byte) { b[0] = icmpv4EchoRequest }),
		"bad checksum": func() []byte { b := reply(func([]byte) {}); b[len(b)-1] ^= 0xff; return b }(),
		"no IP header": req,
	} {
		if _, ok := p.parseReply(pkt); ok {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestPeer4Table(t *testing.T) {
	a, b := netip.MustParseAddr("2001:db8::a"), netip.MustParseAddr("2001:db8::b")
	tb := buildTable4(map[netip.Addr][]netip.Prefix{
		a: {netip.MustParsePrefix("198.18.0.2/32")},
		b: {netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("10.1.0.0/16")},
	})
	for dst, want := range map[string]netip.Addr{"198.18.0.2": a, "10.1.2.3": b, "10.9.9.9": b, "198.18.0.3": {}} {
		got, ok := tb.route(netip.MustParseAddr(dst))
		if got != want || ok != want.IsValid() {
			t.Errorf("route %s = %v %v, want %v", dst, got, ok, want)
		}
	}
	if !tb.accept(netip.MustParseAddr("198.18.0.2"), a) || tb.accept(netip.MustParseAddr("198.18.0.2"), b) ||
		tb.accept(netip.MustParseAddr("10.1.1.1"), a) || tb.accept(netip.MustParseAddr("198.18.0.2"), netip.MustParseAddr("2001:db8::c")) {
		t.Error("accept lets a client use a source that is not its own")
	}
}

// TestUserspaceV4V6Forwarder runs the userspace plane on both ends (client
// tunnel and the broker's ForwarderV4V6) without TSP: ping, TCP both ways,
// keepalive, a foreign inner source refused, teardown.
func TestUserspaceV4V6Forwarder(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		clientPlain, brokerPlain bool
	}{
		{"offload", false, false},
		{"plain client, offload broker", true, false},
		{"offload client, plain broker", false, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testUserspaceV4V6Forwarder(t, tc.clientPlain, tc.brokerPlain) })
	}
}

func testUserspaceV4V6Forwarder(t *testing.T, clientPlain, brokerPlain bool) {
	l := newV4V6Lab(t)
	fwd := startForwarderV4V6(t, l, brokerPlain)
	tun, err := New(context.Background(), withAddrs(Config{
		DataPlane: PlaneUserspace, IfName: "tun4", NetNS: l.client.h, DefaultRoute: true,
		Log: testLogger(t, "client"), Keepalive: KeepaliveConfig{Interval: 200 * time.Millisecond}, DisableOffload: clientPlain,
	}, v4v6Addrs()))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	if PlaneOf(tun) != PlaneUserspace {
		t.Fatalf("plane %q", PlaneOf(tun))
	}
	l.assertIPv6OnlyPath(t, "tun4")
	ping4(t, l.client, v46ServerV4)
	ping4(t, l.client, v46InetV4)
	transfer(t, l.client, l.inet, v46InetV4, 4<<20)
	transfer(t, l.inet, l.client, v46ClientV4, 4<<20)
	waitKeepaliveReplies(t, tun, 2, 10*time.Second)

	// A packet from the client's outer address with an inner source that
	// is not its own must not reach the broker's device.
	before := fwd.Stats().Dropped
	spoof, err := dialProto4(l.client.h, v46ClientOuter, v46BrokerOuter)
	if err != nil {
		t.Fatal(err)
	}
	pkt := []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 253, 0, 0, 198, 18, 0, 99, 10, 46, 1, 2}
	if _, err := spoof.Write(pkt); err != nil {
		t.Fatal(err)
	}
	spoof.Close()
	deadline := time.Now().Add(10 * time.Second)
	for fwd.Stats().Dropped == before && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if fwd.Stats().Dropped == before {
		t.Error("broker did not drop a packet with a foreign inner source")
	}

	s := tun.Stats()
	t.Logf("client %+v", s)
	t.Logf("broker %+v", fwd.Stats())
	if minSegs := uint64((4<<20 + 1239) / 1240); s.TxPackets < minSegs || s.RxPackets < minSegs || s.TxErrors != 0 || s.RxErrors != 0 {
		t.Errorf("client stats %+v: want ≥ %d packets each way (4 MB), no errors", s, minSegs)
	}
	if err := tun.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, ok := <-tun.Events(); ok {
		t.Error("events channel open after Close")
	}
	assertV4V6Gone(t, l.client.nl, "tun4")
}

// startForwarderV4V6 runs the broker's userspace plane in the lab with the
// client as its only peer.
func startForwarderV4V6(t testing.TB, l *v4v6Lab, plain bool) *ForwarderV4V6 {
	t.Helper()
	conn, err := ListenProto4(l.broker.h, v46BrokerOuter)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	fwd, err := NewForwarderV4V6(context.Background(), ForwarderV4V6Config{
		Conn: conn, IfName: "tsps4", NetNS: l.broker.h, Netlink: l.broker.rt, Log: testLogger(t, "broker"),
		Addrs: []netip.Prefix{netip.PrefixFrom(v46ServerV4, 32)}, Routes: []netip.Prefix{v46Pool4}, DisableOffload: plain,
	})
	if err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	t.Cleanup(func() { fwd.Close() })
	if err := fwd.AddPeer(v46ClientOuter, netip.PrefixFrom(v46ClientV4, 32)); err != nil {
		t.Fatal(err)
	}
	if err := fwd.AddPeer(v46ClientOuter, netip.MustParsePrefix("2001:db8::/64")); err == nil {
		t.Error("AddPeer took an IPv6 inner prefix")
	}
	return fwd
}

// TestV4V6AutoFallsBack: without ip6_tunnel, "auto" builds the userspace
// plane instead of failing (TestKernelV4V6AutoPicksKernel is the VM side).
func TestV4V6AutoFallsBack(t *testing.T) {
	if err := vmtest.Probe(vmtest.Ip6tnl); err == nil {
		t.Skip("this kernel has ip6tnl: auto picks it (TestKernelV4V6AutoPicksKernel)")
	}
	l := newV4V6Lab(t)
	tun, err := New(context.Background(), withAddrs(Config{IfName: "tun4", NetNS: l.client.h}, v4v6Addrs()))
	if err != nil {
		t.Fatalf("auto: %v", err)
	}
	if PlaneOf(tun) != PlaneUserspace {
		t.Errorf("auto chose %q without ip6tnl", PlaneOf(tun))
	}
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	assertV4V6Gone(t, l.client.nl, "tun4")
	// Asking for the kernel explicitly says why it cannot.
	_, err = New(context.Background(), withAddrs(Config{DataPlane: PlaneKernel, IfName: "tun4", NetNS: l.client.h}, v4v6Addrs()))
	if !errors.Is(err, ErrNoKernelSupport) || !errors.Is(err, unix.EOPNOTSUPP) {
		t.Errorf("kernel plane without ip6tnl: err = %v, want ErrNoKernelSupport wrapping EOPNOTSUPP", err)
	}
	assertV4V6Gone(t, l.client.nl, "tun4")
}
