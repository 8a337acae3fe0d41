package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"

	"github.com/jsklein/gogoc/internal/vmtest"
	"github.com/jsklein/gogoc/tunnel"
)

// The end-to-end tests below run the built gogoc and tspbroker -dataplane
// in network namespaces, like TestRunNetns, with topologies of their own.
// The client always reaches the broker at 192.0.2.1 (startClient's -server).

const (
	e2eBrokerV4 = "192.0.2.1"
	e2eServerV6 = "2001:db8:ab::1" // the broker's tunnel address
	e2eInetV6   = "2001:db8:ffff::1"
)

// e2eClientPool is the broker's default client pool: every client tunnel
// address comes from it.
var e2eClientPool = netip.MustParsePrefix("2001:db8:ab::/64")

// e2eRequire skips unless the test can create namespaces and TUN devices
// and has the tools it needs.
func e2eRequire(t *testing.T, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, TUN devices, nftables")
	}
	if testing.Short() {
		t.Skip("builds binaries and creates namespaces; skipped with -short")
	}
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		t.Skipf("needs /dev/net/tun: %v", err)
	}
	for _, tool := range append([]string{"ip", "ping"}, tools...) {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("needs %s: %v", tool, err)
		}
	}
}

// e2eBuild builds gogoc and tspbroker into dir. Inside the VM lane, which
// has no Go toolchain, it takes the lane's builds of both instead.
func e2eBuild(t *testing.T, dir string) (gogoc, broker string) {
	t.Helper()
	if vmtest.InVM() {
		gogoc, broker = os.Getenv(vmtest.EnvGogoc), os.Getenv(vmtest.EnvBroker)
		if gogoc == "" || broker == "" {
			t.Fatalf("%s or %s not set inside the VM: scripts/vm-test.sh puts both into the guest", vmtest.EnvGogoc, vmtest.EnvBroker)
		}
		return gogoc, broker
	}
	for _, pkg := range []string{".", "../tspbroker"} {
		out, err := exec.Command("go", "build", "-o", dir+"/", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go build %s: %v\n%s", pkg, err, out)
		}
	}
	return filepath.Join(dir, "gogoc"), filepath.Join(dir, "tspbroker")
}

// e2eSh runs a command and fails the test if it fails.
func e2eSh(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command(args[0], args[1:]...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// e2eNamespaces creates fresh namespaces (removed in t.Cleanup, also on
// failure) with lo up and no duplicate address detection.
func e2eNamespaces(t *testing.T, names ...string) {
	t.Helper()
	for _, ns := range names {
		_ = exec.Command("ip", "netns", "del", ns).Run()
		e2eSh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", ns).Run() })
		e2eSh(t, "ip", "netns", "exec", ns, "sysctl", "-qw",
			"net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0")
		e2eSh(t, "ip", "-n", ns, "link", "set", "lo", "up")
	}
}

// e2eVeth links namespace a (device an, address aa) with b (bn, ba).
// Addresses may be empty; IPv6 ones are added with nodad.
func e2eVeth(t *testing.T, a, an, aa, b, bn, ba string) {
	t.Helper()
	e2eSh(t, "ip", "link", "add", an, "netns", a, "type", "veth", "peer", "name", bn, "netns", b)
	for _, end := range [][3]string{{a, an, aa}, {b, bn, ba}} {
		if end[2] != "" {
			args := []string{"ip", "-n", end[0], "addr", "add", end[2], "dev", end[1]}
			if strings.Contains(end[2], ":") {
				args = append(args, "nodad")
			}
			e2eSh(t, args...)
		}
		e2eSh(t, "ip", "-n", end[0], "link", "set", end[1], "up")
	}
}

// e2eWireLike makes dev in ns hand out packets with finished checksums, as
// a wire does (vmtest.NS.WireLike). A veth otherwise passes a forwarded
// packet's unfinished checksum on through a kernel tunnel, and the
// userspace broker at the other end drops it as corrupt: a fault of the
// test bed, not of the router.
func e2eWireLike(t *testing.T, ns, dev string) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	defer h.Close()
	(&vmtest.NS{Name: ns, H: h}).WireLike(t, dev)
}

// e2eBroker starts tspbroker -dataplane in ns on 192.0.2.1:3653 (UDP only)
// and returns the path of its log; it is stopped in t.Cleanup.
func e2eBroker(t *testing.T, ns, dir, broker string) string {
	t.Helper()
	logPath := filepath.Join(dir, "broker-"+ns+".log")
	lf, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, broker, "-dataplane", "-udp", e2eBrokerV4+":3653", "-tcp", "",
		"-server-v4", e2eBrokerV4, "-server-v6", e2eServerV6, "-auth", "ANONYMOUS")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start tspbroker: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(3 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			raw, _ := os.ReadFile(logPath)
			t.Logf("tspbroker log:\n%s", raw)
		}
	})
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if !strings.HasPrefix(line, "listening udp") {
		raw, _ := os.ReadFile(logPath)
		t.Fatalf("tspbroker did not start (%q, %v):\n%s", line, err, raw)
	}
	go func() { _, _ = io.Copy(io.Discard, rd) }() // keep the pipe drained
	return logPath
}

// e2eSuffix makes namespace and device names unique to this process.
func e2eSuffix() string { return fmt.Sprint(os.Getpid() % 100000) }

// TestRunThroughNAT puts a masquerading router between gogoc and the
// broker. gogoc asks for v6anyv4 with client_v4=auto, so it declares its
// private address; the broker sees the NAT's address instead and must
// offer v6udpv4. The tunnel then carries a ping to a host behind the
// broker and a 10 MB TCP transfer, checked by SHA-256.
//
//	client 10.77.0.2 ── 10.77.0.1 nat 192.0.2.254 ── 192.0.2.1 broker ── 2001:db8:ffff::1 inet
func TestRunThroughNAT(t *testing.T) {
	e2eRequire(t, "nft", "sysctl")
	dir := t.TempDir()
	gogoc, broker := e2eBuild(t, dir)

	s := e2eSuffix()
	cns, nns, bns, ins := "gogoc-nc-"+s, "gogoc-nn-"+s, "gogoc-nb-"+s, "gogoc-ni-"+s
	e2eNamespaces(t, cns, nns, bns, ins)
	lan, wan := "gn-l"+s, "gn-w"+s // the NAT's LAN and WAN sides
	e2eVeth(t, cns, "gn-c"+s, "10.77.0.2/24", nns, lan, "10.77.0.1/24")
	e2eVeth(t, nns, wan, "192.0.2.254/24", bns, "gn-b"+s, e2eBrokerV4+"/24")
	e2eVeth(t, bns, "gn-bi"+s, "2001:db8:ffff::2/64", ins, "gn-i"+s, e2eInetV6+"/64")
	e2eSh(t, "ip", "-n", cns, "route", "add", "default", "via", "10.77.0.1")
	e2eSh(t, "ip", "-n", ins, "-6", "route", "add", "default", "via", "2001:db8:ffff::2")
	e2eSh(t, "ip", "netns", "exec", nns, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	e2eSh(t, "ip", "netns", "exec", bns, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	// The broker has no route back to 10.77.0.0/24: only masqueraded
	// packets get an answer.
	nftRules := filepath.Join(dir, "nat.nft")
	rules := fmt.Sprintf("table ip nat {\n\tchain postrouting {\n\t\ttype nat hook postrouting priority 100; policy accept;\n\t\toifname %q masquerade\n\t}\n}\n", wan)
	if err := os.WriteFile(nftRules, []byte(rules), 0o600); err != nil {
		t.Fatal(err)
	}
	e2eSh(t, "ip", "netns", "exec", nns, "nft", "-f", nftRules)

	brokerLog := e2eBroker(t, bns, dir, broker)

	c := startClient(t, cns, dir, gogoc, "-mode", "v6anyv4", "-client-v4", "auto")
	c.waitUp(t, "v6udpv4 gogoc ")

	// The broker decided on NAT from the addresses, not from a declared
	// client_v4 that differs on purpose.
	deadline := time.Now().Add(2 * time.Second)
	for {
		raw, _ := os.ReadFile(brokerLog)
		if bytes.Contains(raw, []byte("nat=true")) && bytes.Contains(raw, []byte("client=192.0.2.254:")) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("broker log shows no NAT session from 192.0.2.254:\n%s", raw)
		}
		time.Sleep(50 * time.Millisecond)
	}

	if err := c.ping("2"); err != nil {
		t.Fatalf("ping the broker through the tunnel: %v", err)
	}
	if out, err := exec.Command("ip", "netns", "exec", cns, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", e2eInetV6).CombinedOutput(); err != nil {
		t.Fatalf("ping %s behind the broker: %v\n%s", e2eInetV6, err, out)
	}

	e2eTCPTransfer(t, cns, ins, 10<<20)

	c.stop(t, "gogoc")
	e2eAssertClean(t, cns, "gogoc")
}

// e2eTCPTransfer sends n random bytes over TCP from a socket in namespace
// from to a listener on e2eInetV6 in namespace to, and compares SHA-256
// digests of what was sent and what arrived.
func e2eTCPTransfer(t *testing.T, from, to string, n int) {
	t.Helper()
	handle := func(name string) netns.NsHandle {
		h, err := netns.GetFromName(name)
		if err != nil {
			t.Fatalf("netns %s: %v", name, err)
		}
		t.Cleanup(func() { _ = h.Close() })
		return h
	}
	fromNS, toNS := handle(from), handle(to)

	var ln net.Listener
	if err := tunnel.InNetNS(toNS, func() (err error) {
		ln, err = net.Listen("tcp6", "["+e2eInetV6+"]:0")
		return err
	}); err != nil {
		t.Fatalf("listen in %s: %v", to, err)
	}
	defer ln.Close()

	type result struct {
		sum [32]byte
		n   int64
		err error
	}
	got := make(chan result, 1)
	go func() {
		conn, err := ln.Accept()
		if err != nil {
			got <- result{err: err}
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
		h := sha256.New()
		nr, err := io.Copy(h, conn)
		var r result
		copy(r.sum[:], h.Sum(nil))
		r.n, r.err = nr, err
		got <- r
	}()

	payload := make([]byte, n)
	if _, err := rand.Read(payload); err != nil {
		t.Fatal(err)
	}
	want := sha256.Sum256(payload)

	start := time.Now()
	var conn net.Conn
	if err := tunnel.InNetNS(fromNS, func() (err error) {
		conn, err = net.DialTimeout("tcp6", ln.Addr().String(), 5*time.Second)
		return err
	}); err != nil {
		t.Fatalf("dial %v from %s: %v", ln.Addr(), from, err)
	}
	_ = conn.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := conn.Write(payload); err != nil {
		conn.Close()
		t.Fatalf("send: %v", err)
	}
	if err := conn.(*net.TCPConn).CloseWrite(); err != nil {
		conn.Close()
		t.Fatalf("close write: %v", err)
	}
	var r result
	select {
	case r = <-got:
	case <-time.After(25 * time.Second):
		conn.Close()
		t.Fatal("TCP transfer did not finish within 25 s")
	}
	conn.Close()
	if r.err != nil {
		t.Fatalf("receive: %v (after %d bytes)", r.err, r.n)
	}
	if r.n != int64(n) || r.sum != want {
		t.Fatalf("received %d bytes, sha256 %x; sent %d bytes, sha256 %x", r.n, r.sum, n, want)
	}
	el := time.Since(start)
	t.Logf("TCP %d bytes %s → %s intact (sha256 %x) in %v (%.1f Mbit/s)", n, from, to, want[:8],
		el.Round(time.Millisecond), float64(n)*8/el.Seconds()/1e6)
}

// e2eAssertClean checks that namespace ns keeps nothing of a tunnel called
// ifName: no such device, no address from the client pool on any device,
// no route through it in any table.
func e2eAssertClean(t *testing.T, ns, ifName string) {
	t.Helper()
	for _, l := range e2eLeftovers(t, ns, ifName) {
		t.Errorf("left behind in %s: %s", ns, l)
	}
}

// e2eLeftovers lists what ns still has of a tunnel called ifName: devices
// whose name starts with it, client pool addresses on any device, routes
// through it in any table.
func e2eLeftovers(t *testing.T, ns, ifName string) []string {
	t.Helper()
	var found []string
	links := e2eSh(t, "ip", "-n", ns, "-o", "link", "show")
	for _, l := range strings.Split(links, "\n") {
		f := strings.Fields(l)
		if len(f) >= 2 && strings.HasPrefix(strings.TrimSuffix(strings.SplitN(f[1], "@", 2)[0], ":"), ifName) {
			found = append(found, "device: "+l)
		}
	}
	addrs := e2eSh(t, "ip", "-n", ns, "-6", "-o", "addr", "show")
	for _, l := range strings.Split(addrs, "\n") {
		f := strings.Fields(l)
		if len(f) < 4 || f[2] != "inet6" {
			continue
		}
		if p, err := netip.ParsePrefix(f[3]); err == nil && e2eClientPool.Contains(p.Addr()) {
			found = append(found, "address: "+l)
		}
	}
	routes := e2eSh(t, "ip", "-n", ns, "-6", "route", "show", "table", "all")
	for _, l := range strings.Split(routes, "\n") {
		f := strings.Fields(l)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "dev" && f[i+1] == ifName {
				found = append(found, "route: "+l)
				break
			}
		}
	}
	return found
}

// e2eLinkExists reports whether ns has a device called name.
func e2eLinkExists(ns, name string) bool {
	return exec.Command("ip", "-n", ns, "link", "show", "dev", name).Run() == nil
}

// TestRunSIGKILLLeftovers kills gogoc with SIGKILL, so that it cannot tear
// its tunnel down, and starts it again with the same configuration: the
// new run must deal with what the old one left and come up, and a SIGTERM
// then must leave nothing behind.
func TestRunSIGKILLLeftovers(t *testing.T) {
	e2eRequire(t)
	dir := t.TempDir()
	gogoc, broker := e2eBuild(t, dir)

	s := e2eSuffix()
	bns, cns := "gogoc-kb-"+s, "gogoc-kc-"+s
	e2eNamespaces(t, bns, cns)
	e2eVeth(t, cns, "gk-c"+s, "192.0.2.2/24", bns, "gk-b"+s, e2eBrokerV4+"/24")
	e2eBroker(t, bns, dir, broker)

	args := []string{"-mode", "v6udpv4", "-client-v4", "auto"}
	c := startClient(t, cns, dir, gogoc, args...)
	c.waitUp(t, "v6udpv4 gogoc ")
	if err := c.ping("2"); err != nil {
		t.Fatalf("ping through the tunnel: %v", err)
	}

	if err := c.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	select {
	case <-c.exited:
	case <-time.After(2 * time.Second):
		t.Fatal("gogoc still running 2 s after SIGKILL")
	}
	if e2eLinkExists(cns, "gogoc") {
		t.Log("after SIGKILL: device gogoc is still there (the leftover)")
	} else {
		// A TUN device that is not persistent goes away with the last
		// file descriptor, so SIGKILL does not leave it. Leave the kind
		// of debris a crash can leave instead (a kernel-held device under
		// our name with a pool address and the default route on it), and
		// check that the next run clears it.
		t.Log("after SIGKILL: the kernel removed the non-persistent TUN device; planting a persistent leftover")
		e2eAssertClean(t, cns, "gogoc") // its addresses and routes went with it
		e2eSh(t, "ip", "-n", cns, "tuntap", "add", "dev", "gogoc", "mode", "tun")
		t.Cleanup(func() { _ = exec.Command("ip", "-n", cns, "link", "del", "gogoc").Run() })
		e2eSh(t, "ip", "-n", cns, "-6", "addr", "add", "2001:db8:ab::dead/128", "dev", "gogoc", "nodad")
		e2eSh(t, "ip", "-n", cns, "link", "set", "gogoc", "up")
		e2eSh(t, "ip", "-n", cns, "-6", "route", "add", "::/0", "dev", "gogoc")
	}
	// The checker used at the end must see this debris: device, pool
	// address, and routes through the device.
	left := e2eLeftovers(t, cns, "gogoc")
	kinds := map[string]bool{}
	for _, l := range left {
		kinds[strings.SplitN(l, ":", 2)[0]] = true
	}
	if !kinds["device"] || !kinds["address"] || !kinds["route"] {
		t.Fatalf("leftover check sees %q; want a device, a pool address and a route", left)
	}
	t.Logf("leftovers before the restart:\n\t%s", strings.Join(left, "\n\t"))

	c = startClient(t, cns, dir, gogoc, args...)
	c.waitUp(t, "v6udpv4 gogoc ")
	if err := c.ping("2"); err != nil {
		t.Fatalf("ping through the tunnel after the restart: %v", err)
	}
	c.stop(t, "gogoc")
	e2eAssertClean(t, cns, "gogoc")
}
