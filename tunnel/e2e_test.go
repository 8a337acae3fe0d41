package tunnel

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/vmtest"
)

// Addresses of the namespace lab. IPv4 only exists inside the namespaces.
var (
	labServerV6 = netip.MustParseAddr("2001:db8:ab::1")
	labClientV6 = netip.MustParseAddr("2001:db8:ab::2")
	labPool     = netip.MustParsePrefix("2001:db8:ab::/64")
	labInetV6   = netip.MustParseAddr("2001:db8:1::2") // a host behind the broker
)

// lab is client ⇄ (nat ⇄) broker ⇄ internet, with the broker's Forwarder as
// the tunnel peer of the client.
type lab struct {
	client, broker, inet, nat *labNS
	brokerV4, clientV4        netip.Addr
	brokerSock                net.PacketConn
	fwd                       *Forwarder
	peers                     chan netip.AddrPort // endpoints that said hello
	clientConn                *net.UDPConn        // v6udpv4: the "TSP session" socket
	mode                      Type
	brokerPlain               bool // broker without offloads, like a TSP broker that is not us
}

// newLab builds the namespaces. withNAT puts a masquerading router between
// client and broker (v6udpv4 only).
func newLab(t *testing.T, mode Type, withNAT bool) *lab {
	return newLabWith(t, mode, withNAT, false)
}

func newLabWith(t *testing.T, mode Type, withNAT, brokerPlain bool) *lab {
	t.Helper()
	requireLab(t)
	l := &lab{mode: mode, peers: make(chan netip.AddrPort, 4), brokerPlain: brokerPlain}
	l.client = newLabNS(t, "c")
	l.broker = newLabNS(t, "b")
	l.inet = newLabNS(t, "i")

	if withNAT {
		l.nat = newLabNS(t, "n")
		veth(t, l.client, "c0", l.nat, "n0")
		veth(t, l.nat, "n1", l.broker, "b0")
		l.client.ip(t, "addr", "add", "10.98.1.2/24", "dev", "c0")
		l.client.ip(t, "route", "add", "default", "via", "10.98.1.1")
		l.nat.ip(t, "addr", "add", "10.98.1.1/24", "dev", "n0")
		l.nat.ip(t, "addr", "add", "10.98.2.1/24", "dev", "n1")
		l.broker.ip(t, "addr", "add", "10.98.2.2/24", "dev", "b0")
		l.nat.sysctl(t, "net.ipv4.ip_forward", "1")
		// "random" remaps the source port, so the test proves that the
		// broker answers the mapping it saw, not the client's own port.
		rules := `table ip nat {
	chain post {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "n1" masquerade random
	}
}`
		f, err := os.CreateTemp(t.TempDir(), "nat*.nft")
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(rules)
		f.Close()
		if out, err := l.nat.exec("nft", "-f", f.Name()); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
		l.brokerV4 = netip.MustParseAddr("10.98.2.2")
		l.clientV4 = netip.MustParseAddr("10.98.1.2")
	} else {
		veth(t, l.client, "c0", l.broker, "b0")
		l.client.ip(t, "addr", "add", "10.97.0.2/24", "dev", "c0")
		l.broker.ip(t, "addr", "add", "10.97.0.1/24", "dev", "b0")
		l.brokerV4 = netip.MustParseAddr("10.97.0.1")
		l.clientV4 = netip.MustParseAddr("10.97.0.2")
	}

	// The internet host sits behind the broker, which forwards for it.
	veth(t, l.broker, "b1", l.inet, "i0")
	l.broker.ip(t, "-6", "addr", "add", "2001:db8:1::1/64", "dev", "b1", "nodad")
	l.inet.ip(t, "-6", "addr", "add", labInetV6.String()+"/64", "dev", "i0", "nodad")
	l.inet.ip(t, "-6", "route", "add", "default", "via", "2001:db8:1::1")
	l.broker.sysctl(t, "net.ipv6.conf.all.forwarding", "1")

	switch mode {
	case V6UDPV4:
		l.brokerSock = listenUDP(t, l.broker, netip.AddrPortFrom(l.brokerV4, 3653).String())
	case V6V4:
		c, err := ListenProto41(l.broker.h, l.brokerV4)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		l.brokerSock = c
	}
	l.startBroker(t)
	return l
}

// startBroker runs the broker's Forwarder. For v6udpv4 a client registers
// by sending a control datagram, as a TSP session would; the broker acks it
// and routes the client address to the endpoint it saw (through the NAT).
func (l *lab) startBroker(t *testing.T) {
	t.Helper()
	cfg := ForwarderConfig{
		Conn:           l.brokerSock,
		IfName:         "tsps0",
		Addrs:          []netip.Prefix{netip.PrefixFrom(labServerV6, 128)},
		Routes:         []netip.Prefix{labPool},
		NetNS:          l.broker.h,
		Netlink:        l.broker.rt,
		Log:            testLogger(t, "broker"),
		DisableOffload: l.brokerPlain,
		Control: func(fwd *Forwarder, from netip.AddrPort, msg []byte) {
			if err := fwd.AddPeer(from, netip.PrefixFrom(labClientV6, 128)); err != nil {
				t.Errorf("add peer: %v", err)
			}
			if err := fwd.WriteControl(from, msg[:8]); err != nil {
				t.Logf("ack: %v", err) // the forwarder may be closing
			}
			select {
			case l.peers <- from:
			default:
			}
		},
	}
	fwd, err := NewForwarder(context.Background(), cfg)
	if err != nil {
		t.Fatalf("forwarder: %v", err)
	}
	l.fwd = fwd
	t.Cleanup(func() { fwd.Close() })
	if l.mode == V6V4 {
		if err := fwd.AddPeer(netip.AddrPortFrom(l.clientV4, 0), netip.PrefixFrom(labClientV6, 128)); err != nil {
			t.Fatal(err)
		}
	}
}

// hello registers the client with the broker over its UDP socket and
// returns the endpoint the broker saw.
func (l *lab) hello(t *testing.T) netip.AddrPort {
	t.Helper()
	if l.clientConn == nil {
		l.clientConn = dialUDP(t, l.client, netip.AddrPortFrom(l.brokerV4, 3653).String())
	}
	msg := []byte("\xf0\x00\x00\xf0\x00\x00\x00\x2ahello")
	buf := make([]byte, 64)
	for try := 0; try < 3; try++ {
		if _, err := l.clientConn.Write(msg); err != nil {
			t.Fatalf("hello: %v", err)
		}
		l.clientConn.SetReadDeadline(time.Now().Add(2 * time.Second))
		n, err := l.clientConn.Read(buf)
		l.clientConn.SetReadDeadline(time.Time{})
		if err == nil && bytes.Equal(buf[:n], msg[:8]) {
			return <-l.peers
		}
	}
	t.Fatal("broker did not answer the hello")
	return netip.AddrPort{}
}

// addrs is the lab's tunnel: what a broker would offer, as plain values.
func (l *lab) addrs() Config {
	return Config{
		Type:           l.mode,
		Local:          netip.PrefixFrom(labClientV6, 128),
		Remote:         labServerV6,
		LocalEndpoint:  l.clientV4,
		RemoteEndpoint: l.brokerV4,
		Keepalive:      KeepaliveConfig{Target: labServerV6},
	}
}

// withAddrs fills cfg's addresses from base when cfg has no type, and the
// keepalive target when cfg has none.
func withAddrs(cfg, base Config) Config {
	if cfg.Type == 0 {
		cfg.Type, cfg.Local, cfg.Remote = base.Type, base.Local, base.Remote
		cfg.LocalEndpoint, cfg.RemoteEndpoint = base.LocalEndpoint, base.RemoteEndpoint
	}
	if !cfg.Keepalive.Target.IsValid() {
		cfg.Keepalive.Target = base.Keepalive.Target
	}
	return cfg
}

// up brings the client tunnel up with cfg's zero fields filled for the lab.
func (l *lab) up(t *testing.T, cfg Config) Tunnel {
	t.Helper()
	cfg = withAddrs(cfg, l.addrs())
	if cfg.IfName == "" {
		cfg.IfName = "tun6"
	}
	cfg.NetNS = l.client.h
	if cfg.Log == nil {
		cfg.Log = testLogger(t, "client")
	}
	if l.mode == V6UDPV4 && cfg.Conn == nil {
		l.hello(t)
		cfg.Conn = l.clientConn
	}
	tun, err := NewUserspace(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewUserspace: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	return tun
}

func testLogger(t testing.TB, side string) *logx.Logger {
	if !testing.Verbose() {
		return logx.Discard()
	}
	return logx.Writer(tWriter{t}, logx.LevelDebug).With("side", side)
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// ping6 pings from ns with the system ping, which checks the path
// independently of our prober.
func ping6(t *testing.T, ns *labNS, dst netip.Addr) {
	t.Helper()
	out, err := ns.exec("ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", dst.String())
	if err != nil {
		t.Fatalf("ping %v from %s: %v\n%s", dst, ns.name, err, out)
	}
}

// transfer sends size random bytes over TCP from one namespace to a
// listener on addr in another and checks they arrive intact.
func transfer(t *testing.T, from, to *labNS, addr netip.Addr, size int) {
	t.Helper()
	vmtest.Transfer(t, from.vm(), to.vm(), addr, size)
}

// waitEvent returns the first event of kind within d, failing otherwise.
func waitEvent(t *testing.T, tun Tunnel, kind EventKind, d time.Duration) Event {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case ev, ok := <-tun.Events():
			if !ok {
				t.Fatalf("events closed while waiting for %v", kind)
			}
			t.Logf("event: %v", ev)
			if ev.Kind == kind {
				return ev
			}
		case <-deadline:
			t.Fatalf("no %v event within %v (stats %+v)", kind, d, tun.Stats())
		}
	}
}

// assertGone checks that nothing of the client tunnel is left in ns: no
// device, no address, no route through it, nor to its destinations.
func assertGone(t *testing.T, ns *labNS, ifName string) {
	t.Helper()
	assertNoTunnel(t, ns.nl, ifName)
}

// assertNoTunnel checks, through h, that nothing of a tunnel named ifName
// is left: no device, no client address, no route of ours.
func assertNoTunnel(t *testing.T, h *netlink.Handle, ifName string) {
	t.Helper()
	if l, err := h.LinkByName(ifName); err == nil {
		t.Errorf("device %s (%s) still exists", ifName, l.Type())
	}
	addrs, err := h.AddrList(nil, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.Equal(net.IP(labClientV6.AsSlice())) {
			t.Errorf("address %v still assigned", a.IPNet)
		}
	}
	routes, err := h.RouteList(nil, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		// Ours are static-protocol routes; the lab's own are not.
		if r.Protocol == unix.RTPROT_STATIC || r.Dst != nil && r.Dst.IP.Equal(net.IP(labServerV6.AsSlice())) {
			t.Errorf("route %v (dev index %d) still present", r.Dst, r.LinkIndex)
		}
	}
}

func TestUserspaceV6UDPV4(t *testing.T) {
	for _, tc := range []struct {
		name                     string
		clientPlain, brokerPlain bool
	}{
		{"offload", false, false},
		{"offload client, plain broker", false, true},
		{"plain client, offload broker", true, false},
		{"plain", true, true},
	} {
		t.Run(tc.name, func(t *testing.T) { testV6UDPV4(t, tc.clientPlain, tc.brokerPlain) })
	}
}

func testV6UDPV4(t *testing.T, clientPlain, brokerPlain bool) {
	l := newLabWith(t, V6UDPV4, false, brokerPlain)
	tun := l.up(t, Config{DefaultRoute: true, DisableOffload: clientPlain, Keepalive: KeepaliveConfig{Interval: 200 * time.Millisecond}})

	t.Run("ping broker", func(t *testing.T) { ping6(t, l.client, labServerV6) })
	t.Run("ping behind broker", func(t *testing.T) { ping6(t, l.client, labInetV6) })
	t.Run("tcp 10MB", func(t *testing.T) { transfer(t, l.client, l.inet, labInetV6, 10<<20) })
	t.Run("tcp 10MB inbound", func(t *testing.T) { transfer(t, l.inet, l.client, labClientV6, 10<<20) })
	t.Run("keepalive", func(t *testing.T) {
		deadline := time.Now().Add(10 * time.Second)
		for tun.Stats().Keepalive.Received < 2 && time.Now().Before(deadline) {
			time.Sleep(50 * time.Millisecond)
		}
		ka := tun.Stats().Keepalive
		if ka.Received < 2 || ka.LastRTT <= 0 || ka.Lost || ka.Misses != 0 {
			t.Fatalf("keepalive stats %+v: want replies with an RTT", ka)
		}
	})
	t.Run("broker 310", func(t *testing.T) {
		peer := netip.AddrPortFrom(l.clientV4, uint16(l.clientConn.LocalAddr().(*net.UDPAddr).Port))
		msg := []byte("\xff\xff\xff\xff\x00\x00\x00\x01310 TSP status error\r\n")
		if err := l.fwd.WriteControl(peer, msg); err != nil {
			t.Fatal(err)
		}
		ev := waitEvent(t, tun, BrokerControl, 10*time.Second)
		if ev.Code != 310 || ev.Text != "310 TSP status error" {
			t.Fatalf("event %+v, want code 310 and the status text", ev)
		}
	})

	s, bs := tun.Stats(), l.fwd.Stats()
	t.Logf("client stats %+v", s)
	t.Logf("broker stats %+v", bs)
	// 10 MB each way is at least 8500 MTU-sized packets; every packet on
	// the wire is counted, whatever the offloads merged or split.
	if s.TxPackets < 8500 || s.RxPackets < 8500 || s.Control != 1 || s.TxErrors != 0 || s.RxErrors != 0 {
		t.Errorf("client stats %+v: want ≥ 8500 packets each way, one control datagram, no errors", s)
	}
	// The kernels' own link-local multicast (MLD reports, router
	// solicitations) has no peer or a source the peer may not use: the
	// broker drops it, and nothing else.
	if bs.RxErrors != 0 || bs.Dropped > 20 {
		t.Errorf("broker stats %+v: want no errors and only a few drops", bs)
	}
	if err := tun.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, ok := <-tun.Events(); ok {
		t.Error("events channel still open after Close")
	}
	assertGone(t, l.client, "tun6")
	// The session socket is the caller's: still open and usable.
	if _, err := l.clientConn.Write([]byte("\xf0\x00\x00\xf1\x00\x00\x00\x00")); err != nil {
		t.Errorf("session socket unusable after Close: %v", err)
	}
}

func TestUserspaceV6UDPV4ThroughNAT(t *testing.T) {
	l := newLab(t, V6UDPV4, true)
	tun := l.up(t, Config{DefaultRoute: true})
	seen := l.fwd.peers.Load()
	for ep := range seen.byPeer {
		if ep.Addr() != netip.MustParseAddr("10.98.2.1") {
			t.Fatalf("broker saw the client at %v, want the NAT's address 10.98.2.1", ep)
		}
		t.Logf("client socket %v is %v behind the NAT", l.clientConn.LocalAddr(), ep)
	}
	ping6(t, l.client, labServerV6)
	ping6(t, l.client, labInetV6)
	transfer(t, l.client, l.inet, labInetV6, 10<<20)
	transfer(t, l.inet, l.client, labClientV6, 10<<20)
	if s := tun.Stats(); s.TxErrors != 0 || s.Dropped != 0 {
		t.Errorf("stats %+v: want no errors or drops", s)
	}
}

func TestUserspaceV6V4(t *testing.T) {
	l := newLab(t, V6V4, false)
	tun := l.up(t, Config{DefaultRoute: true, Keepalive: KeepaliveConfig{Interval: 200 * time.Millisecond}})
	ping6(t, l.client, labServerV6)
	ping6(t, l.client, labInetV6)
	transfer(t, l.client, l.inet, labInetV6, 10<<20)
	transfer(t, l.inet, l.client, labClientV6, 10<<20)
	deadline := time.Now().Add(10 * time.Second)
	for tun.Stats().Keepalive.Received == 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if ka := tun.Stats().Keepalive; ka.Received == 0 {
		t.Errorf("no keepalive replies: %+v", ka)
	}
	if err := tun.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertGone(t, l.client, "tun6")
}

func TestKeepaliveLossAndRestore(t *testing.T) {
	l := newLab(t, V6UDPV4, false)
	const interval, timeout, misses = 200 * time.Millisecond, 300 * time.Millisecond, 3
	tun := l.up(t, Config{Keepalive: KeepaliveConfig{Interval: interval, Timeout: timeout, Misses: misses}})
	deadline := time.Now().Add(10 * time.Second)
	for tun.Stats().Keepalive.Received == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if tun.Stats().Keepalive.Received == 0 {
		t.Fatalf("no keepalive reply while the broker runs: %+v", tun.Stats().Keepalive)
	}

	// Stop the broker's side: probes now go unanswered.
	stopped := time.Now()
	if err := l.fwd.Close(); err != nil {
		t.Fatal(err)
	}
	// The last answered probe may have gone out just before the stop: the
	// loss shows at the latest misses intervals plus a timeout later (the
	// keepalive tests hold that on a fake clock; here a busy machine may
	// wake the prober late, so the wait is a hang guard).
	bound := misses*interval + timeout
	ev := waitEvent(t, tun, KeepaliveLost, bound+10*time.Second)
	t.Logf("lost after %v (bound %v), %d misses", ev.Time.Sub(stopped), bound, ev.Misses)
	if ev.Misses < misses {
		t.Errorf("lost after %d misses, want %d", ev.Misses, misses)
	}
	if ka := tun.Stats().Keepalive; !ka.Lost {
		t.Errorf("stats say not lost: %+v", ka)
	}

	// Bring the broker back on the same socket: replies resume.
	l.startBroker(t)
	if err := l.fwd.AddPeer(netip.AddrPortFrom(l.clientV4, uint16(l.clientConn.LocalAddr().(*net.UDPAddr).Port)),
		netip.PrefixFrom(labClientV6, 128)); err != nil {
		t.Fatal(err)
	}
	ev = waitEvent(t, tun, KeepaliveRestored, 10*time.Second)
	if ka := tun.Stats().Keepalive; ka.Lost || ka.Misses != 0 || ev.RTT <= 0 {
		t.Errorf("after restore: stats %+v, event %+v; want misses reset and an RTT", ka, ev)
	}
}

func TestLeftoverDeviceIsReplaced(t *testing.T) {
	l := newLab(t, V6UDPV4, false)
	// A "killed" run: its device stays (the fd is still open) and is never
	// closed by the run itself.
	old := l.up(t, Config{DefaultRoute: true})
	oldIndex := mustLink(t, l.client, "tun6").Attrs().Index

	// A new run on a fresh session socket with the same interface name.
	l.clientConn = nil
	tun := l.up(t, Config{DefaultRoute: true})
	idx := mustLink(t, l.client, "tun6").Attrs().Index
	if idx == oldIndex {
		t.Fatalf("device index %d unchanged: the leftover was not replaced", idx)
	}
	ping6(t, l.client, labServerV6)

	// The old run's remains going away must not touch the new tunnel.
	old.Close()
	if got := mustLink(t, l.client, "tun6").Attrs().Index; got != idx {
		t.Fatalf("new device gone or replaced after closing the old run (index %d, want %d)", got, idx)
	}
	routes, err := l.client.nl.RouteList(mustLink(t, l.client, "tun6"), netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	if len(routes) < 2 {
		t.Fatalf("routes of the new tunnel removed by the old one's Close: %v", routes)
	}
	ping6(t, l.client, labServerV6)
	if err := tun.Close(); err != nil {
		t.Fatal(err)
	}
	assertGone(t, l.client, "tun6")
}

func TestNotOurDeviceIsLeftAlone(t *testing.T) {
	l := newLab(t, V6UDPV4, false)
	l.client.ip(t, "link", "set", "c0", "name", "tun6") // someone else's device under our name
	_, err := NewUserspace(context.Background(), withAddrs(Config{
		Conn: dialUDP(t, l.client, "10.97.0.1:3653"), IfName: "tun6", NetNS: l.client.h,
	}, l.addrs()))
	if !errors.Is(err, ErrNotOurs) {
		t.Fatalf("err = %v, want ErrNotOurs", err)
	}
	if lk := mustLink(t, l.client, "tun6"); lk.Type() != "veth" {
		t.Fatalf("device replaced by a %s", lk.Type())
	}
}

func TestSetupRollsBack(t *testing.T) {
	l := newLab(t, V6UDPV4, false)
	// A default route with our metric exists already: the last step fails.
	l.client.ip(t, "-6", "route", "add", "::/0", "dev", "c0", "metric", "1024")
	l.hello(t)
	_, err := NewUserspace(context.Background(), withAddrs(Config{
		Conn: l.clientConn, IfName: "tun6", NetNS: l.client.h, DefaultRoute: true,
	}, l.addrs()))
	if !errors.Is(err, ErrRouteConflict) {
		t.Fatalf("err = %v, want ErrRouteConflict", err)
	}
	t.Logf("set-up failed as expected: %v", err)
	if _, err := l.client.nl.LinkByName("tun6"); err == nil {
		t.Error("device left behind after a failed set-up")
	}
	out := l.client.ip(t, "-6", "route", "show", "default")
	if !strings.Contains(out, "dev c0 metric 1024") {
		t.Errorf("the existing default route was touched: %q", out)
	}
	addrs, _ := l.client.nl.AddrList(nil, netlink.FAMILY_V6)
	for _, a := range addrs {
		if a.IP.Equal(net.IP(labClientV6.AsSlice())) {
			t.Errorf("address %v left behind", a.IPNet)
		}
	}
	// And the same socket still works for a tunnel on another metric.
	tun := l.up(t, Config{Conn: l.clientConn, DefaultRoute: true, RouteMetric: 512})
	ping6(t, l.client, labInetV6)
	tun.Close()
	assertGone(t, l.client, "tun6")
}

func mustLink(t *testing.T, ns *labNS, name string) netlink.Link {
	t.Helper()
	lk, err := ns.nl.LinkByName(name)
	if err != nil {
		t.Fatalf("link %s in %s: %v", name, ns.name, err)
	}
	return lk
}
