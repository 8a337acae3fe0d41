package radv

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netns"
	"golang.org/x/net/ipv6"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/tunnel"
)

// BenchmarkRSReply measures, on a veth link between two namespaces, the
// time from sending a Router Solicitation to receiving the Server's RA
// (solicitations spaced so that each gets a direct reply),
// against an ICMPv6 echo round trip to the router's link-local address on
// the same link (answered by the kernel) and a UDP echo by a Go process
// as baselines, each paced the same way. It reports the medians and their
// ratios; -benchtime 50x gives a steadier median than the default.
func BenchmarkRSReply(b *testing.B) {
	l := newDRLink(b, "grt")
	hB, ifB, llA, llB := l.hB, l.ifB, l.llA, l.llB
	udpPort := startRAHelper(b, l).udpPort
	ifiB, err := interfaceIn(hB, ifB)
	if err != nil {
		b.Fatal(err)
	}
	rs, err := ndp.MarshalMessage(&ndp.RouterSolicitation{Options: []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ifiB.HardwareAddr}}})
	if err != nil {
		b.Fatal(err)
	}
	var medRA, medEcho time.Duration
	b.Run("rs-to-ra", func(b *testing.B) {
		c := openICMP(b, hB, ifB, llB, ipv6.ICMPTypeRouterAdvertisement)
		c.drain() // the unsolicited RA sent at start
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			// One solicitation per token refill, so each gets a direct
			// reply: the latency a host sees, not the rate limit. The
			// figure is the median; ns/op is mostly this pause, which
			// the baselines make too (a process woken from idle answers
			// more slowly than one kept busy).
			time.Sleep(DefaultSolicitedInterval)
			start := time.Now()
			c.send(b, rs, netip.MustParseAddr("ff02::2"))
			c.await(b, 134)
			lat = append(lat, time.Since(start))
		}
		medRA = median(lat)
		b.ReportMetric(float64(medRA.Microseconds()), "median-µs")
	})
	b.Run("echo-baseline", func(b *testing.B) {
		c := openICMP(b, hB, ifB, llB, ipv6.ICMPTypeEchoReply)
		lat := make([]time.Duration, 0, b.N)
		echo := []byte{128, 0, 0, 0, 0x12, 0x34, 0, 1, 'g', 'o', 'g', 'o', 'c'}
		for b.Loop() {
			time.Sleep(DefaultSolicitedInterval)
			start := time.Now()
			c.send(b, echo, llA)
			c.await(b, 129)
			lat = append(lat, time.Since(start))
		}
		medEcho = median(lat)
		b.ReportMetric(float64(medEcho.Microseconds()), "median-µs")
	})
	// A second baseline with a Go process answering on the router side, as
	// the RA server does: a UDP echo.
	var medUDP time.Duration
	b.Run("udp-echo-baseline", func(b *testing.B) {
		var cliU *net.UDPConn
		err := tunnel.InNetNS(hB, func() (err error) {
			cliU, err = net.DialUDP("udp6", nil, &net.UDPAddr{IP: llA.AsSlice(), Zone: ifB, Port: udpPort})
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
		defer cliU.Close()
		buf := make([]byte, 1500)
		lat := make([]time.Duration, 0, b.N)
		for b.Loop() {
			time.Sleep(DefaultSolicitedInterval)
			start := time.Now()
			if _, err := cliU.Write([]byte("gogoc")); err != nil {
				b.Fatal(err)
			}
			_ = cliU.SetReadDeadline(time.Now().Add(time.Second))
			if _, err := cliU.Read(buf); err != nil {
				b.Fatalf("no UDP echo: %v", err)
			}
			lat = append(lat, time.Since(start))
		}
		medUDP = median(lat)
		b.ReportMetric(float64(medUDP.Microseconds()), "median-µs")
	})
	if medRA > 0 && medEcho > 0 && medUDP > 0 {
		b.Logf("RS→RA median %v; same link: kernel ICMPv6 echo %v (ratio %.1f), Go UDP echo %v (ratio %.1f); target RS→RA ≤ 5 ms",
			medRA, medEcho, float64(medRA)/float64(medEcho), medUDP, float64(medRA)/float64(medUDP))
	}
}

// raHelper is a Server in its own process inside the router namespace,
// as gogoc runs: the interface zone caches of the net packages are per
// process, and a process spread over two namespaces would reload them on
// every packet. Tests talk to it over plain raw sockets for the same
// reason.
type raHelper struct {
	udpPort int // its UDP echo on the router's link-local address
	stdin   io.Closer
	out     *bufio.Scanner
	cmd     *exec.Cmd
	stats   string // its last line: the Server's Stats
	cpu     time.Duration
}

// startRAHelper runs TestRAServerHelper in l's router namespace; env
// adds variables (GOGOC_RADV_BENCH_BASELINE=1: the Server answers every
// solicitation at once, as before the rate limit). It is stopped at
// cleanup if the caller did not stop it.
func startRAHelper(tb testing.TB, l *drLink, env ...string) *raHelper {
	tb.Helper()
	cmd := exec.Command("ip", "netns", "exec", l.nsA, os.Args[0], "-test.run=^TestRAServerHelper$", "-test.count=1")
	cmd.Env = append(append(os.Environ(), "GOGOC_RADV_BENCH_IF="+l.ifA), env...)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	h := &raHelper{stdin: stdin, out: bufio.NewScanner(stdout), cmd: cmd}
	tb.Cleanup(func() { h.stop() })
	for h.out.Scan() {
		if _, err := fmt.Sscanf(h.out.Text(), "ready udp %d", &h.udpPort); err == nil {
			break
		}
	}
	if h.udpPort == 0 {
		tb.Fatal("RA server helper did not start")
	}
	return h
}

// stop ends the helper (the Server sends its final RA) and returns the
// Server's Stats as it printed them and the CPU time the process used.
func (h *raHelper) stop() (string, time.Duration) {
	if h.cmd == nil {
		return h.stats, h.cpu
	}
	h.stdin.Close()
	for h.out.Scan() {
		if line := h.out.Text(); strings.HasPrefix(line, "stats ") {
			h.stats = line
		}
	}
	_ = h.cmd.Wait()
	// ip netns exec runs the command in its own place, so this is the
	// helper's own usage.
	if ps := h.cmd.ProcessState; ps != nil {
		h.cpu = ps.UserTime() + ps.SystemTime()
	}
	h.cmd = nil
	return h.stats, h.cpu
}

// TestRAServerHelper is the router of startRAHelper: a Server on the
// interface named by GOGOC_RADV_BENCH_IF and a UDP echo on its link-local
// address, until stdin closes. Without the variable there is nothing to do.
func TestRAServerHelper(t *testing.T) {
	ifName := os.Getenv("GOGOC_RADV_BENCH_IF")
	if ifName == "" {
		t.Skip("the RA server process of the on-link benchmarks and flood tests")
	}
	conn, hw, err := Listen(ifName)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cfg := Config{MinInterval: time.Hour, MaxInterval: time.Hour, InitialInterval: time.Hour, LinkAddr: hw}
	if os.Getenv("GOGOC_RADV_BENCH_BASELINE") == "1" {
		// As before the rate limit: every solicitation answered at once.
		cfg.SolicitedBurst, cfg.SolicitedInterval = 1<<30, time.Nanosecond
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}, Routes: []netip.Prefix{deleg}, DNS: []netip.Addr{dns1}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, conn) }()
	ifi, err := net.InterfaceByName(ifName)
	if err != nil {
		t.Fatal(err)
	}
	addrs, _ := ifi.Addrs()
	var udp *net.UDPConn
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && n.IP.IsLinkLocalUnicast() {
			udp, err = net.ListenUDP("udp6", &net.UDPAddr{IP: n.IP, Zone: ifName})
		}
	}
	if udp == nil || err != nil {
		t.Fatalf("UDP echo: %v", err)
	}
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := udp.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = udp.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	fmt.Printf("ready udp %d\n", udp.LocalAddr().(*net.UDPAddr).Port)
	_, _ = io.Copy(io.Discard, os.Stdin)
	udp.Close()
	cancel()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	st := srv.Stats()
	fmt.Printf("stats solicitations %d unicast %d multicast %d dropped %d write_errors %d\n",
		st.Solicits, st.Unicast, st.Multicast, st.Dropped, st.WriteErrors)
}

func interfaceIn(ns netns.NsHandle, name string) (ifi *net.Interface, err error) {
	err = tunnel.InNetNS(ns, func() (err error) {
		ifi, err = net.InterfaceByName(name)
		return err
	})
	return ifi, err
}

// icmpSock is a raw ICMPv6 socket bound to a link-local address.
type icmpSock struct {
	fd    int
	index uint32
	buf   []byte
}

func openICMP(b *testing.B, ns netns.NsHandle, ifName string, ll netip.Addr, accept ipv6.ICMPType) *icmpSock {
	b.Helper()
	fd, index := rawICMPv6(b, ns, ifName, ll, accept, 255, 1, nil)
	return &icmpSock{fd: fd, index: uint32(index), buf: make([]byte, 1500)}
}

// rawICMPv6 opens a raw ICMPv6 socket in ns on ifName, bound to ll, that
// receives only the accept type, sends with hop limit hop and times reads
// out after timeoutSec; extra options go in too. It is closed at cleanup.
func rawICMPv6(tb testing.TB, ns netns.NsHandle, ifName string, ll netip.Addr, accept ipv6.ICMPType, hop int, timeoutSec int64, extra func(fd int) error) (fd, index int) {
	tb.Helper()
	err := tunnel.InNetNS(ns, func() error {
		ifi, err := net.InterfaceByName(ifName)
		if err != nil {
			return err
		}
		index = ifi.Index
		if fd, err = unix.Socket(unix.AF_INET6, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMPV6); err != nil {
			return err
		}
		var f unix.ICMPv6Filter
		for i := range f.Data {
			f.Data[i] = 0xffffffff // block all
		}
		f.Data[int(accept)>>5] &^= 1 << (uint(accept) & 31)
		// Timeval's fields are 32 bits wide on 32-bit architectures.
		tv := unix.NsecToTimeval(timeoutSec * int64(time.Second))
		for _, err := range []error{
			unix.SetsockoptICMPv6Filter(fd, unix.SOL_ICMPV6, unix.ICMPV6_FILTER, &f),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_MULTICAST_HOPS, hop),
			unix.SetsockoptInt(fd, unix.IPPROTO_IPV6, unix.IPV6_UNICAST_HOPS, hop),
			unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv),
			unix.Bind(fd, &unix.SockaddrInet6{Addr: ll.As16(), ZoneId: uint32(index)}),
		} {
			if err != nil {
				return err
			}
		}
		if extra != nil {
			return extra(fd)
		}
		return nil
	})
	if err != nil {
		tb.Fatalf("raw ICMPv6 socket: %v", err)
	}
	tb.Cleanup(func() { unix.Close(fd) })
	return fd, index
}

func (c *icmpSock) send(b *testing.B, msg []byte, dst netip.Addr) {
	err := unix.Sendto(c.fd, msg, 0, &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: c.index})
	for err == unix.EINTR {
		err = unix.Sendto(c.fd, msg, 0, &unix.SockaddrInet6{Addr: dst.As16(), ZoneId: c.index})
	}
	if err != nil {
		b.Fatalf("send: %v", err)
	}
}

// await reads until an ICMPv6 message of type typ arrives.
func (c *icmpSock) await(b *testing.B, typ byte) {
	for {
		n, _, err := unix.Recvfrom(c.fd, c.buf, 0)
		if err == unix.EINTR {
			continue // the Go runtime's preemption signal
		}
		if err != nil {
			b.Fatalf("waiting for ICMPv6 type %d: %v", typ, err)
		}
		if n > 0 && c.buf[0] == typ {
			return
		}
	}
}

// drain reads what is queued, waiting at most 300 ms for it.
func (c *icmpSock) drain() {
	_ = unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 300000})
	for {
		if _, _, err := unix.Recvfrom(c.fd, c.buf, 0); err != nil && err != unix.EINTR {
			break
		}
	}
	_ = unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Sec: 1})
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
