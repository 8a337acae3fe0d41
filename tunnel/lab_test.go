package tunnel

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/internal/vmtest"
)

// requireLab skips tests that need root, TUN and iproute2, saying which is
// missing.
func requireLab(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root (network namespaces, TUN devices)")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("needs iproute2 (ip) to build the namespace lab")
	}
}

// labNS is one network namespace of a test, removed at cleanup.
type labNS struct {
	name string
	h    netns.NsHandle
	nl   *netlink.Handle
	rt   *rtlink.Handle // what the code under test gets; nl is the reference
}

// vm is the namespace as the shared test helpers take it.
func (n *labNS) vm() *vmtest.NS { return &vmtest.NS{Name: n.name, H: n.h, NL: n.nl} }

// newLabNS creates a namespace with a unique name (tests of other packages
// may run at the same time) and loopback up.
func newLabNS(t testing.TB, role string) *labNS {
	t.Helper()
	var rnd [4]byte
	_, _ = rand.Read(rnd[:])
	name := "gogoc-" + role + "-" + hex.EncodeToString(rnd[:])
	run(t, "ip", "netns", "add", name)
	ns := &labNS{name: name}
	t.Cleanup(func() {
		if ns.nl != nil {
			ns.nl.Close()
		}
		if ns.rt != nil {
			ns.rt.Close()
		}
		if ns.h > 0 {
			ns.h.Close()
		}
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	h, err := netns.GetFromName(name)
	if err != nil {
		t.Fatalf("open netns %s: %v", name, err)
	}
	ns.h = h
	if ns.nl, err = netlink.NewHandleAt(h, unix.NETLINK_ROUTE); err != nil {
		t.Fatalf("netlink in %s: %v", name, err)
	}
	if ns.rt, err = rtlink.NewHandleAt(h); err != nil {
		t.Fatalf("rtlink in %s: %v", name, err)
	}
	ns.ip(t, "link", "set", "lo", "up")
	// No duplicate address detection on the lab's links: a tentative
	// link-local address delays neighbour discovery by seconds.
	ns.sysctl(t, "net.ipv6.conf.default.accept_dad", "0")
	ns.sysctl(t, "net.ipv6.conf.all.accept_dad", "0")
	return ns
}

// ip runs "ip -n <ns> args...", failing the test on error.
func (ns *labNS) ip(t testing.TB, args ...string) string {
	t.Helper()
	return run(t, "ip", append([]string{"-n", ns.name}, args...)...)
}

// exec runs a command inside the namespace and returns its combined output.
func (ns *labNS) exec(args ...string) (string, error) {
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	return string(out), err
}

func (ns *labNS) sysctl(t testing.TB, key, value string) {
	t.Helper()
	if out, err := ns.exec("sysctl", "-qw", key+"="+value); err != nil {
		t.Fatalf("sysctl %s in %s: %v: %s", key, ns.name, err, out)
	}
}

// veth joins a and b with a veth pair, created directly in the namespaces.
func veth(t testing.TB, a *labNS, ifA string, b *labNS, ifB string) {
	t.Helper()
	a.ip(t, "link", "add", ifA, "type", "veth", "peer", "name", ifB, "netns", b.name)
	a.ip(t, "link", "set", ifA, "up")
	b.ip(t, "link", "set", ifB, "up")
}

func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

// listenUDP opens a UDP socket inside ns.
func listenUDP(t testing.TB, ns *labNS, addr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := InNetNS(ns.h, func() error {
		a, err := net.ResolveUDPAddr("udp4", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp4", a)
		return err
	})
	if err != nil {
		t.Fatalf("listen udp %s in %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// dialUDP opens a connected UDP socket inside ns, like the TSP session's.
func dialUDP(t testing.TB, ns *labNS, raddr string) *net.UDPConn {
	t.Helper()
	var c *net.UDPConn
	err := InNetNS(ns.h, func() error {
		a, err := net.ResolveUDPAddr("udp4", raddr)
		if err != nil {
			return err
		}
		c, err = net.DialUDP("udp4", nil, a)
		return err
	})
	if err != nil {
		t.Fatalf("dial udp %s in %s: %v", raddr, ns.name, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func listenTCP(t testing.TB, ns *labNS, addr string) net.Listener {
	t.Helper()
	var l net.Listener
	err := InNetNS(ns.h, func() (err error) {
		l, err = net.Listen("tcp", addr) // IPv6 or IPv4 (v4v6) by the address
		return err
	})
	if err != nil {
		t.Fatalf("listen tcp %s in %s: %v", addr, ns.name, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

func dialTCP(ns *labNS, addr string) (net.Conn, error) {
	var c net.Conn
	err := InNetNS(ns.h, func() (err error) {
		c, err = net.Dial("tcp", addr)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("dial %s from %s: %w", addr, ns.name, err)
	}
	return c, nil
}
