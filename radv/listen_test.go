package radv

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/tunnel"
)

// drLink is a veth pair between two fresh namespaces: the router side
// (a) and a host side (b).
type drLink struct {
	nsA      string
	hA, hB   netns.NsHandle
	ifA, ifB string
	llA, llB netip.Addr
}

// newDRLink builds the pair; tag keeps the names of different callers apart.
func newDRLink(tb testing.TB, tag string) *drLink {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: network namespaces")
	}
	id := os.Getpid() % 100000
	nsA, nsB := fmt.Sprintf("%s-rta-%d", tag, id), fmt.Sprintf("%s-rtb-%d", tag, id)
	l := &drLink{nsA: nsA, ifA: fmt.Sprintf("%s%da", tag, id), ifB: fmt.Sprintf("%s%db", tag, id)}
	sh := func(args ...string) {
		tb.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, ns := range []string{nsA, nsB} {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		sh("ip", "netns", "add", ns)
		tb.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		sh("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0")
	}
	sh("ip", "link", "add", l.ifA, "netns", nsA, "type", "veth", "peer", "name", l.ifB, "netns", nsB)
	sh("ip", "-n", nsA, "link", "set", l.ifA, "up")
	sh("ip", "-n", nsB, "link", "set", l.ifB, "up")
	var err error
	if l.hA, err = netns.GetFromName(nsA); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.hA.Close() })
	if l.hB, err = netns.GetFromName(nsB); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { l.hB.Close() })
	// Link-local addresses appear a moment after the link comes up.
	l.llA, l.llB = waitLinkLocal(tb, l.hA, l.ifA), waitLinkLocal(tb, l.hB, l.ifB)
	return l
}

// waitLinkLocal waits up to 2 s for ifName's link-local address in ns.
func waitLinkLocal(t testing.TB, ns netns.NsHandle, ifName string) netip.Addr {
	t.Helper()
	for range 100 {
		var ll netip.Addr
		err := tunnel.InNetNS(ns, func() error {
			ifi, err := net.InterfaceByName(ifName)
			if err != nil {
				return err
			}
			ll, err = linkLocalOf(ifi)
			if err != nil {
				ll = netip.Addr{}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if ll.IsValid() {
			return ll
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no link-local address on %s", ifName)
	return netip.Addr{}
}

// hostSock is the host side: a plain raw ICMPv6 socket (no code of the
// package under test) that reports the hop limit of what it receives.
type hostSock struct {
	fd    int
	index int
}

func openHost(t *testing.T, l *drLink, hop int) *hostSock {
	t.Helper()
	recvHop := func(fd int) error { return unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_RECVHOPLIMIT, 1) }
	fd, index := rawICMPv6(t, l.hB, l.ifB, l.llB, ipv6.ICMPTypeRouterAdvertisement, hop, 2, recvHop)
	return &hostSock{fd: fd, index: index}
}

func (h *hostSock) send(t *testing.T, b []byte, dst netip.Addr) {
	t.Helper()
	sa := &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: uint32(h.index)}
	err := unix.Sendto(h.fd, b, 0, sa)
	for err == unix.EINTR {
		err = unix.Sendto(h.fd, b, 0, sa)
	}
	if err != nil {
		t.Fatalf("send: %v", err)
	}
}

// recv returns the next ICMPv6 message, its source and its hop limit.
func (h *hostSock) recv(t *testing.T) ([]byte, netip.Addr, int) {
	t.Helper()
	b, oob := make([]byte, 1500), make([]byte, 128)
	for {
		n, oobn, _, from, err := unix.Recvmsg(h.fd, b, oob, 0)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("no RA: %v", err)
		}
		msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			t.Fatal(err)
		}
		hop := -1
		for _, m := range msgs {
			if m.Header.Level == unix.IPPROTO_IPV6 && m.Header.Type == unix.IPV6_HOPLIMIT && len(m.Data) >= 4 {
				// An int in the host's byte order (the mips lane is big-endian).
				hop = int(int32(binary.NativeEndian.Uint32(m.Data)))
			}
		}
		sa, _ := from.(*unix.SockaddrInet6)
		if sa == nil {
			t.Fatalf("source %v", from)
		}
		return b[:n], netip.AddrFrom16(sa.Addr), hop
	}
}

// TestListenOnLink runs the socket Listen opens on a real link: what a
// host sends must come back parsed with its hop limit and source, only
// solicitations get through, malformed ones are reported as such, and
// what it writes leaves from the link-local address with hop limit 255.
func TestListenOnLink(t *testing.T) {
	l := newDRLink(t, "dr")
	host := openHost(t, l, 255)
	forwarded := openHost(t, l, 64)
	var hostMAC net.HardwareAddr
	if err := tunnel.InNetNS(l.hB, func() error {
		ifi, err := net.InterfaceByName(l.ifB)
		if err == nil {
			hostMAC = ifi.HardwareAddr
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	allRoutersAddr := netip.MustParseAddr("ff02::2")

	// Everything on the router side runs on one thread inside its
	// namespace, as gogoc does in its own: the interface name in
	// addresses resolves there.
	err := tunnel.InNetNS(l.hA, func() error {
		if _, _, err := Listen("lo"); err == nil || !strings.Contains(err.Error(), "no IPv6 link-local") {
			t.Errorf("Listen on lo (no link-local address): %v", err)
		}
		if _, _, err := Listen("dr-nonexistent"); err == nil {
			t.Error("Listen on a missing interface worked")
		}
		c, hw, err := Listen(l.ifA)
		if err != nil {
			return err
		}
		defer c.Close()
		ifi, err := net.InterfaceByName(l.ifA)
		if err != nil {
			return err
		}
		if !bytes.Equal(hw, ifi.HardwareAddr) || len(hw) != 6 {
			t.Errorf("hardware address %v, want %v", hw, ifi.HardwareAddr)
		}
		read := func() (*RouterSolicitation, int, netip.Addr, error) {
			t.Helper()
			if err := c.SetReadDeadline(time.Now().Add(2 * time.Second)); err != nil {
				t.Fatal(err)
			}
			return c.ReadFrom()
		}
		wantSrc := l.llB.WithZone(l.ifA)

		// An echo request to the router is answered by the kernel and
		// must not reach the socket; the solicitation after it must.
		host.send(t, []byte("\x80\x00\x00\x00\x12\x34\x00\x01"), l.llA)
		rs := append([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x01"), hostMAC...)
		host.send(t, rs, allRoutersAddr)
		m, hop, src, err := read()
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		if m == nil || hop != 255 || src != wantSrc {
			t.Fatalf("read %#v hop %d from %v; want the RS, 255, %v", m, hop, src, wantSrc)
		}
		if lla := m.SourceLinkAddr(); !bytes.Equal(lla, hostMAC) {
			t.Fatalf("source link-layer address %v, want %v", lla, hostMAC)
		}
		if v := classify(m, hop, src); v != replyUni {
			t.Fatalf("classify: %v, want a unicast reply", v)
		}

		// A forwarded one: the hop limit is reported as sent.
		forwarded.send(t, rsRdisc6, allRoutersAddr)
		if m, hop, _, err := read(); err != nil || hop != 64 {
			t.Fatalf("forwarded RS: %T hop %d err %v; want hop 64", m, hop, err)
		}

		// A malformed one: ErrMalformed, with its source.
		host.send(t, []byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00"), allRoutersAddr)
		if m, hop, src, err := read(); !errors.Is(err, ErrMalformed) || m != nil || src != wantSrc || hop != 255 {
			t.Fatalf("malformed RS: %v hop %d from %v, err %v; want ErrMalformed from %v", m, hop, src, err, wantSrc)
		}

		// Writes: unicast to the host and multicast to all nodes.
		ra := &RouterAdvertisement{HopLimit: 64, RouterLifetime: 1800 * time.Second, MTU: 1280, SourceLinkAddr: hw}
		for _, dst := range []netip.Addr{l.llB, allNodes} {
			if err := c.WriteTo(ra, dst); err != nil {
				t.Fatalf("write to %v: %v", dst, err)
			}
			b, from, hop := host.recv(t)
			if from != l.llA || hop != 255 {
				t.Fatalf("RA to %v came from %v with hop limit %d; want %v, 255", dst, from, hop, l.llA)
			}
			back, err := ndp.ParseMessage(b)
			if err != nil {
				t.Fatalf("RA on the wire: %v", err)
			}
			if bra, ok := back.(*ndp.RouterAdvertisement); !ok || bra.RouterLifetime != ra.RouterLifetime || len(bra.Options) != 2 {
				t.Fatalf("RA on the wire %#v, sent %#v", back, ra)
			}
		}
		if err := c.WriteTo(&RouterAdvertisement{SourceLinkAddr: hw[:4]}, allNodes); err == nil {
			t.Error("an RA that does not marshal was sent")
		}

		// The deadline unblocks a read, as Serve needs when it stops.
		if err := c.SetReadDeadline(time.Unix(1, 0)); err != nil {
			t.Fatal(err)
		}
		if _, _, _, err := c.ReadFrom(); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("read past the deadline: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestServeOnLink runs a Server on Listen's socket: a host's solicitation
// is answered with an RA to it, malformed ones are counted as dropped
// without stopping the Server, and stopping sends the final RA.
func TestServeOnLink(t *testing.T) {
	l := newDRLink(t, "dr")
	host := openHost(t, l, 255)
	err := tunnel.InNetNS(l.hA, func() error {
		c, hw, err := Listen(l.ifA)
		if err != nil {
			return err
		}
		defer c.Close()
		s, err := New(Config{MinInterval: time.Hour, MaxInterval: time.Hour, InitialInterval: time.Hour, LinkAddr: hw})
		if err != nil {
			return err
		}
		if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}); err != nil {
			return err
		}
		// Serve's goroutines run on threads outside the namespace; the
		// interface index in Listen's control message still picks the
		// link.
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		served := make(chan error, 1)
		go func() { served <- s.Serve(ctx, c) }()
		if _, from, _ := host.recv(t); from != l.llA { // the first, unsolicited
			t.Fatalf("first RA from %v", from)
		}
		for range 3 { // a zero-length option
			host.send(t, []byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x00"), allRouters)
		}
		host.send(t, rsRdisc6, allRouters)
		b, _, hop := host.recv(t)
		m, err := ndp.ParseMessage(b)
		if err != nil || hop != 255 {
			t.Fatalf("reply: %v hop %d", err, hop)
		}
		if ra, ok := m.(*ndp.RouterAdvertisement); !ok || ra.RouterLifetime == 0 {
			t.Fatalf("reply %#v", m)
		}
		// The counter follows the write the host has just seen.
		st := s.Stats()
		for deadline := time.Now().Add(10 * time.Second); st.Unicast == 0 && time.Now().Before(deadline); st = s.Stats() {
			time.Sleep(5 * time.Millisecond)
		}
		if st.Dropped != 3 || st.Solicits != 1 || st.Unicast != 1 {
			t.Fatalf("stats %+v, want 3 dropped, 1 solicitation, 1 unicast RA", st)
		}
		cancel()
		select {
		case err := <-served:
			if err != nil {
				t.Fatalf("Serve: %v", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Serve did not stop")
		}
		b, _, _ = host.recv(t)
		if m, err := ndp.ParseMessage(b); err != nil || m.(*ndp.RouterAdvertisement).RouterLifetime != 0 {
			t.Fatalf("final RA %#v, %v; want router lifetime 0", m, err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
