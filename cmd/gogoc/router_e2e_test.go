package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netns"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv6"

	"github.com/jsklein/gogoc/tunnel"
)

// Router mode end to end: the built gogoc in router mode in its own
// namespace, between tspbroker -dataplane and a LAN host that configures
// itself from gogoc's Router Advertisements only.
//
//	grt-l (LAN host, SLAAC) ──veth── grt-r (gogoc, host_type=router) ──veth── grt-b (tspbroker) ──veth── grt-i (2001:db8:ffff::1)

// routerLab is the topology and its processes.
type routerLab struct {
	id                 string
	lanNS, rtNS        string
	brNS, inetNS       string
	lanHost, lanRouter string // the LAN link's two ends
	dir                string
	gogoc, broker      string
	runArgs            []string // more arguments of gogoc run
}

func newRouterLab(t *testing.T) *routerLab {
	t.Helper()
	e2eRequire(t, "rdisc6")
	id := e2eSuffix()
	l := &routerLab{
		id: id, lanNS: "grt-l-" + id, rtNS: "grt-r-" + id, brNS: "grt-b-" + id, inetNS: "grt-i-" + id,
		lanHost: "grt" + id + "h", lanRouter: "grt" + id + "r", dir: t.TempDir(),
	}
	l.gogoc, l.broker = e2eBuild(t, l.dir)
	e2eNamespaces(t, l.rtNS, l.brNS, l.inetNS, l.lanNS)
	e2eVeth(t, l.rtNS, "grt"+id+"w", "192.0.2.2/24", l.brNS, "grt"+id+"b", e2eBrokerV4+"/24")
	e2eWireLike(t, l.rtNS, "grt"+id+"w")
	e2eWireLike(t, l.brNS, "grt"+id+"b")
	e2eVeth(t, l.brNS, "grt"+id+"i", "2001:db8:ffff::2/64", l.inetNS, "grt"+id+"j", e2eInetV6+"/64")
	e2eSh(t, "ip", "-n", l.inetNS, "-6", "route", "add", "default", "via", "2001:db8:ffff::2")
	e2eSh(t, "ip", "netns", "exec", l.brNS, "sysctl", "-qw", "net.ipv6.conf.all.forwarding=1")
	// The LAN host is an ordinary host: it takes RAs and forms addresses.
	e2eSh(t, "ip", "netns", "exec", l.lanNS, "sysctl", "-qw",
		"net.ipv6.conf.default.accept_ra=1", "net.ipv6.conf.default.autoconf=1")
	e2eVeth(t, l.lanNS, l.lanHost, "", l.rtNS, l.lanRouter, "")
	e2eSh(t, "ip", "netns", "exec", l.lanNS, "sysctl", "-qw",
		"net.ipv6.conf."+l.lanHost+".accept_ra=1", "net.ipv6.conf."+l.lanHost+".autoconf=1",
		"net.ipv6.conf."+l.lanHost+".accept_dad=0")
	return l
}

// brokerProc is a running tspbroker.
type brokerProc struct {
	cmd  *exec.Cmd
	done chan struct{}
	log  string
}

// startBroker runs tspbroker -dataplane with a user (router requests must
// authenticate) delegating from pool.
func (l *routerLab) startBroker(t *testing.T, pool string) *brokerProc {
	t.Helper()
	b := &brokerProc{done: make(chan struct{}), log: filepath.Join(l.dir, "broker-"+strings.NewReplacer(":", "_", "/", "_").Replace(pool)+".log")}
	lf, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command("ip", "netns", "exec", l.brNS, l.broker, "-dataplane", "-udp", e2eBrokerV4+":3653", "-tcp", "",
		"-server-v4", e2eBrokerV4, "-server-v6", e2eServerV6, "-auth", "DIGEST-MD5", "-user", "alice:secret",
		"-prefix-pool", pool, "-dns", "2001:db8:ffff::53")
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stderr = lf
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start tspbroker: %v", err)
	}
	go func() { _ = b.cmd.Wait(); close(b.done) }()
	t.Cleanup(func() {
		b.stop()
		if t.Failed() {
			raw, _ := os.ReadFile(b.log)
			t.Logf("tspbroker (%s) log:\n%s", pool, raw)
		}
	})
	rd := bufio.NewReader(out)
	if line, err := rd.ReadString('\n'); !strings.HasPrefix(line, "listening udp") {
		raw, _ := os.ReadFile(b.log)
		t.Fatalf("tspbroker did not start (%q, %v):\n%s", line, err, raw)
	}
	go func() { _, _ = rd.WriteTo(devNull{}) }()
	return b
}

type devNull struct{}

func (devNull) Write(p []byte) (int, error) { return len(p), nil }

func (b *brokerProc) stop() {
	select {
	case <-b.done:
		return
	default:
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(3 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}

// startGogoc runs the built gogoc in router mode with a legacy config.
func (l *routerLab) startGogoc(t *testing.T, extra ...string) *clientProc {
	t.Helper()
	conf := filepath.Join(l.dir, "gogoc.conf")
	text := strings.Join([]string{
		"server=" + e2eBrokerV4,
		"auth_method=digest-md5", "userid=alice", "passwd=secret",
		"host_type=router", "prefixlen=56", "if_prefix=" + l.lanRouter,
		// Declared NAT: the broker offers v6udpv4, as in make demo.
		"tunnel_mode=v6anyv4", "client_v4=198.51.100.7",
		"keepalive=yes", "keepalive_interval=5",
	}, "\n") + "\n" + strings.Join(extra, "\n") + "\n"
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	c := &clientProc{ns: l.rtNS, ups: make(chan string, 4)}
	// Its own status file: the system's /var/run/gogoc is root's.
	c.cmd, c.exited, _ = startGogocProc(t, l.rtNS, l.dir, l.gogoc, func(line string) { c.ups <- line },
		append([]string{"run", "-f", conf, "-status-file", filepath.Join(l.dir, "status.json")}, l.runArgs...)...)
	return c
}

// ipAddr is one address of `ip -j addr`.
type ipAddr struct {
	Local     string `json:"local"`
	Prefixlen int    `json:"prefixlen"`
	Scope     string `json:"scope"`
	Deprec    bool   `json:"deprecated"`
	Preferred any    `json:"preferred_life_time"` // a number, or "forever"
	Valid     any    `json:"valid_life_time"`
}

func (a ipAddr) addr() netip.Addr { return netip.MustParseAddr(a.Local) }

// addrs lists the IPv6 addresses of dev in ns.
func addrs(t *testing.T, ns, dev string) []ipAddr {
	t.Helper()
	out := e2eSh(t, "ip", "-n", ns, "-6", "-j", "addr", "show", "dev", dev)
	var links []struct {
		AddrInfo []ipAddr `json:"addr_info"`
	}
	if err := json.Unmarshal([]byte(out), &links); err != nil {
		t.Fatalf("ip -j addr: %v\n%s", err, out)
	}
	if len(links) != 1 {
		t.Fatalf("ip -j addr for %s: %s", dev, out)
	}
	return links[0].AddrInfo
}

// inPrefix returns the address of dev in p, if any.
func inPrefix(t *testing.T, ns, dev string, p netip.Prefix) (ipAddr, bool) {
	for _, a := range addrs(t, ns, dev) {
		if p.Contains(a.addr()) {
			return a, true
		}
	}
	return ipAddr{}, false
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

// defaultRoute is the LAN host's default route, "" when none.
func (l *routerLab) defaultRoute(t *testing.T) string {
	return strings.TrimSpace(e2eSh(t, "ip", "-n", l.lanNS, "-6", "route", "show", "default"))
}

func (l *routerLab) routerLinkLocal(t *testing.T) string {
	for _, a := range addrs(t, l.rtNS, l.lanRouter) {
		if a.Scope == "link" {
			return a.Local
		}
	}
	t.Fatalf("router has no link-local address on %s", l.lanRouter)
	return ""
}

var (
	lanULA    = netip.MustParsePrefix("fd12:3456:789a:10::/64")  // netifd's ULA on the LAN device
	firstLAN  = netip.MustParsePrefix("2001:db8:8000::/64")      // first /56 of the default pool
	secondLAN = netip.MustParsePrefix("2001:db8:9000::/64")      // after the broker's pool changes
	firstDel  = netip.MustParsePrefix("2001:db8:8000::/56")      // what the broker delegates first
	rdiscVary = regexp.MustCompile(`(?m)(from|address:)\s+\S+$`) // link-local and MAC
)

// TestRouterNamespaceE2E is the whole router-mode story: SLAAC on the LAN
// from gogoc's RAs, traffic from the LAN through the tunnel, rdisc6's view
// of the RA, a reconnect that brings another prefix, and SIGTERM. The LAN
// device has a ULA as netifd gives br-lan, and the RA flags come as the
// OpenWrt init script passes dhcp.lan.ra_flags: the LAN keeps both.
func TestRouterNamespaceE2E(t *testing.T) {
	l := newRouterLab(t)
	e2eSh(t, "ip", "-n", l.rtNS, "addr", "add", "fd12:3456:789a:10::1/60", "dev", l.lanRouter, "nodad")
	l.runArgs = []string{"-ra-flags", "managed-config,other-config"}
	b1 := l.startBroker(t, "2001:db8:8000::/33")
	c := l.startGogoc(t)
	c.waitUp(t, "v6udpv4")
	upAt := time.Now()

	// 1. SLAAC address in the advertised /64, default route via the
	// router's link-local.
	var host ipAddr
	took, ok := waitFor(hangGuard, func() bool {
		a, ok := inPrefix(t, l.lanNS, l.lanHost, firstLAN)
		host = a
		return ok && a.Scope == "global" && !a.Deprec
	})
	if !ok {
		t.Fatalf("LAN host has no address in %v after %v: %+v", firstLAN, took, addrs(t, l.lanNS, l.lanHost))
	}
	t.Logf("figure: tunnel up → LAN host global address %s in %v", host.Local, time.Since(upAt).Round(time.Millisecond))
	if _, ok := waitFor(hangGuard, func() bool { _, ok := inPrefix(t, l.lanNS, l.lanHost, lanULA); return ok }); !ok {
		t.Fatalf("LAN host has no address in the LAN device's ULA %v: %+v", lanULA, addrs(t, l.lanNS, l.lanHost))
	}
	ll := l.routerLinkLocal(t)
	if _, ok := waitFor(hangGuard, func() bool { return strings.Contains(l.defaultRoute(t), "via "+ll+" ") }); !ok {
		t.Fatalf("LAN default route %q, want via %s", l.defaultRoute(t), ll)
	}
	rt := e2eSh(t, "ip", "-n", l.rtNS, "-6", "route", "show", "type", "unreachable")
	if !strings.Contains(rt, firstDel.String()) {
		t.Fatalf("router: no unreachable route for %v:\n%s", firstDel, rt)
	}

	// 2. Through the tunnel to the host behind the broker, and back.
	e2eSh(t, "ip", "netns", "exec", l.lanNS, "ping", "-6", "-c", "3", "-i", "0.2", "-W", "2", e2eInetV6)
	e2eTCPTransfer(t, l.lanNS, l.inetNS, 1<<20)

	// 3. rdisc6 sees the flags and options we mean to send.
	out := e2eSh(t, "ip", "netns", "exec", l.lanNS, "rdisc6", "-1", "-w", "1000", "-r", "3", l.lanHost)
	got := strings.ReplaceAll(rdiscVary.ReplaceAllString(out, "$1 X"), l.lanHost, "LANIF")
	goldenCompare(t, filepath.Join("testdata", "rdisc6.golden"), got)

	// 4. Another prefix after a reconnect: the broker restarts with another
	// pool; the next tunnel packet meets the new broker, which answers
	// with a status error, and gogoc renegotiates. The userspace plane
	// reads that error at once; the kernel plane (the VM lane) never sees
	// it, the kernel drops control datagrams at the fou port
	// (TestKernelControlDatagramDropped), and notices by its keepalive:
	// three 5 s intervals unanswered, plus room for an emulated CPU.
	b1.stop()
	l.startBroker(t, "2001:db8:9000::/36")
	_ = exec.Command("ip", "netns", "exec", l.lanNS, "ping", "-6", "-c", "1", "-W", "1", e2eInetV6).Run()
	select {
	case line := <-c.ups:
		t.Logf("reconnected: %s", line)
	case <-time.After(45 * time.Second):
		t.Fatal("no second 'tunnel up' within 45 s of the broker restart")
	}
	var newHost ipAddr
	if _, ok := waitFor(hangGuard, func() bool {
		a, ok := inPrefix(t, l.lanNS, l.lanHost, secondLAN)
		newHost = a
		old, oldOK := inPrefix(t, l.lanNS, l.lanHost, firstLAN)
		return ok && !a.Deprec && oldOK && old.Deprec
	}); !ok {
		t.Fatalf("after the reconnect, want a new address in %v and the old one deprecated: %+v", secondLAN, addrs(t, l.lanNS, l.lanHost))
	}
	// Deprecated, and running out within 2 h (RFC 4862 §5.5.3 e).
	if old, _ := inPrefix(t, l.lanNS, l.lanHost, firstLAN); fmt.Sprint(old.Preferred) != "0" || lifetime(old.Valid) > 7200 {
		t.Fatalf("old address after the reconnect: preferred %v valid %v, want 0 and at most 7200", old.Preferred, old.Valid)
	}
	t.Logf("new address %s; old %s deprecated", newHost.Local, host.Local)
	if _, ok := waitFor(hangGuard, func() bool { return strings.Contains(l.defaultRoute(t), "via "+ll+" ") }); !ok {
		t.Fatalf("LAN default route after the reconnect: %q", l.defaultRoute(t))
	}
	e2eSh(t, "ip", "netns", "exec", l.lanNS, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", e2eInetV6)

	// 5. SIGTERM: the final RA takes the default route away and deprecates
	// the prefix at once (the time is printed), and leaves the ULA alone (odhcpd advertises
	// it next); the router keeps nothing of router mode.
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	stopAt := time.Now()
	if took, ok := waitFor(hangGuard, func() bool {
		a, ok := inPrefix(t, l.lanNS, l.lanHost, secondLAN)
		return l.defaultRoute(t) == "" && ok && a.Deprec && fmt.Sprint(a.Preferred) == "0"
	}); !ok {
		t.Fatalf("%v after SIGTERM: default route %q, addresses %+v", took, l.defaultRoute(t), addrs(t, l.lanNS, l.lanHost))
	}
	t.Logf("default route gone and prefix deprecated %v after SIGTERM", time.Since(stopAt).Round(time.Millisecond))
	if a, ok := inPrefix(t, l.lanNS, l.lanHost, lanULA); !ok || a.Deprec {
		t.Fatalf("after the final RA the ULA address is %+v (present %v), want it kept and preferred", a, ok)
	}
	waitExit(t, c.exited, hangGuard, "SIGTERM")
	for _, a := range addrs(t, l.rtNS, l.lanRouter) {
		if a.Scope == "global" && !lanULA.Contains(a.addr()) {
			t.Errorf("router keeps LAN address %s after exit", a.Local)
		}
	}
	if rt := e2eSh(t, "ip", "-n", l.rtNS, "-6", "route", "show", "type", "unreachable"); strings.TrimSpace(rt) != "" {
		t.Errorf("router keeps unreachable routes after exit:\n%s", rt)
	}
	fwd := e2eSh(t, "ip", "netns", "exec", l.rtNS, "sysctl", "-n", "net.ipv6.conf."+l.lanRouter+".forwarding", "net.ipv6.conf.grt"+l.id+"w.forwarding")
	if strings.Fields(fwd)[0] != "0" || strings.Fields(fwd)[1] != "0" {
		t.Errorf("forwarding on LAN / WAN after exit: %q, want both back to 0", fwd)
	}
}

// TestRouterRANoneE2E: with ra none another daemon advertises, so gogoc
// sends no RA, yet the LAN address, forwarding and routes are in place: a
// statically configured LAN host reaches the far side.
func TestRouterRANoneE2E(t *testing.T) {
	l := newRouterLab(t)
	l.startBroker(t, "2001:db8:8000::/33")
	c := l.startGogoc(t, "ra=none")
	c.waitUp(t, "v6udpv4")
	if _, ok := waitFor(hangGuard, func() bool {
		_, ok := inPrefix(t, l.rtNS, l.lanRouter, firstLAN)
		return ok
	}); !ok {
		t.Fatalf("router has no LAN address in %v: %+v", firstLAN, addrs(t, l.rtNS, l.lanRouter))
	}
	// rdisc6 gets no answer (exit status 2 when nothing came).
	out, err := exec.Command("ip", "netns", "exec", l.lanNS, "rdisc6", "-1", "-w", "300", "-r", "2", l.lanHost).CombinedOutput()
	if err == nil || strings.Contains(string(out), "Prefix") {
		t.Fatalf("rdisc6 with ra none: %v\n%s", err, out)
	}
	if _, ok := inPrefix(t, l.lanNS, l.lanHost, firstLAN); ok {
		t.Fatal("LAN host formed an address although gogoc sends no RAs")
	}
	e2eSh(t, "ip", "-n", l.lanNS, "addr", "add", "2001:db8:8000::2/64", "dev", l.lanHost, "nodad")
	e2eSh(t, "ip", "-n", l.lanNS, "-6", "route", "add", "default", "via", "2001:db8:8000::1")
	e2eSh(t, "ip", "netns", "exec", l.lanNS, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", e2eInetV6)
	// The unused rest of the /56 is unreachable at the router, not sent up
	// the tunnel (where the broker would route it back).
	if from, err := echoUnreachable(t, l.lanNS, netip.MustParseAddr("2001:db8:8000:ff::1")); err != nil || from != netip.MustParseAddr("2001:db8:8000::1") {
		t.Fatalf("echo into the unused part of the prefix: destination unreachable from %v, %v; want from the router, 2001:db8:8000::1", from, err)
	}
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c.exited, hangGuard, "SIGTERM")
	if _, ok := inPrefix(t, l.rtNS, l.lanRouter, firstLAN); ok {
		t.Fatal("router keeps its LAN address after exit")
	}
}

// lifetime reads a lifetime from ip -j: seconds; "forever" is more than any.
func lifetime(v any) float64 {
	if f, ok := v.(float64); ok {
		return f
	}
	return 1 << 32
}

// goldenCompare compares got with a file; GOGOC_UPDATE_GOLDEN=1 rewrites it.
func goldenCompare(t *testing.T, path, got string) {
	t.Helper()
	if os.Getenv("GOGOC_UPDATE_GOLDEN") == "1" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (GOGOC_UPDATE_GOLDEN=1 writes it)", err)
	}
	if got != string(want) {
		t.Fatalf("rdisc6 output differs from %s:\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// TestRouterLANRecreatedE2E: the LAN device is deleted and created again
// while gogoc runs (OpenWrt's network restart rebuilds br-lan with a new
// index). The LAN host, a fresh interface at the other end, configures
// itself again from gogoc's RAs (sent at once; the time is printed,
// against minutes for the next unsolicited RA), the router's LAN address and
// forwarding are back, and traffic flows through the tunnel again.
func TestRouterLANRecreatedE2E(t *testing.T) {
	l := newRouterLab(t)
	l.startBroker(t, "2001:db8:8000::/33")
	c := l.startGogoc(t)
	c.waitUp(t, "v6udpv4")
	if _, ok := waitFor(hangGuard, func() bool { _, ok := inPrefix(t, l.lanNS, l.lanHost, firstLAN); return ok }); !ok {
		t.Fatalf("LAN host has no address in %v: %+v", firstLAN, addrs(t, l.lanNS, l.lanHost))
	}

	e2eSh(t, "ip", "-n", l.rtNS, "link", "del", l.lanRouter) // takes the host's end with it
	e2eVeth(t, l.lanNS, l.lanHost, "", l.rtNS, l.lanRouter, "")
	back := time.Now()
	took, ok := waitFor(hangGuard, func() bool {
		_, ok := inPrefix(t, l.lanNS, l.lanHost, firstLAN)
		return ok
	})
	if !ok {
		t.Fatalf("no address in %v on the new LAN link %v after it came up: %+v", firstLAN, took, addrs(t, l.lanNS, l.lanHost))
	}
	t.Logf("LAN host configured again %v after the LAN device was re-created", took.Round(time.Millisecond))
	if _, ok := waitFor(hangGuard, func() bool {
		a, ok := inPrefix(t, l.rtNS, l.lanRouter, firstLAN)
		return ok && a.Local == "2001:db8:8000::1"
	}); !ok {
		t.Fatalf("router's LAN address not restored: %+v", addrs(t, l.rtNS, l.lanRouter))
	}
	if fwd := strings.TrimSpace(e2eSh(t, "ip", "netns", "exec", l.rtNS, "sysctl", "-n", "net.ipv6.conf."+l.lanRouter+".forwarding")); fwd != "1" {
		t.Fatalf("forwarding on the new LAN device: %s", fwd)
	}
	ll := l.routerLinkLocal(t)
	if _, ok := waitFor(hangGuard, func() bool { return strings.Contains(l.defaultRoute(t), "via "+ll+" ") }); !ok {
		t.Fatalf("LAN default route %q, want via %s", l.defaultRoute(t), ll)
	}
	e2eSh(t, "ip", "netns", "exec", l.lanNS, "ping", "-6", "-c", "2", "-i", "0.2", "-W", "2", e2eInetV6)
	t.Logf("traffic through the tunnel again %v after the re-creation", time.Since(back).Round(time.Millisecond))
	if err := c.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitExit(t, c.exited, hangGuard, "SIGTERM")
}

// echoUnreachable sends an ICMPv6 echo request to dst from namespace ns
// and returns the source of the Destination Unreachable that answers it.
// It reads the reply itself, so it does not depend on which ping the
// machine has (busybox's prints no ICMP errors).
func echoUnreachable(t *testing.T, ns string, dst netip.Addr) (netip.Addr, error) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatalf("namespace %s: %v", ns, err)
	}
	defer h.Close()
	var c *icmp.PacketConn
	if err := tunnel.InNetNS(h, func() error {
		c, err = icmp.ListenPacket("ip6:ipv6-icmp", "::")
		return err
	}); err != nil {
		t.Fatalf("ICMPv6 socket in %s: %v", ns, err)
	}
	defer c.Close()
	echo := icmp.Message{Type: ipv6.ICMPTypeEchoRequest, Body: &icmp.Echo{ID: 0x6367, Seq: 1, Data: []byte("gogoc")}}
	b, err := echo.Marshal(nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.WriteTo(b, &net.IPAddr{IP: dst.AsSlice()}); err != nil {
		return netip.Addr{}, fmt.Errorf("send: %w", err)
	}
	deadline := time.Now().Add(hangGuard)
	buf := make([]byte, 1500)
	for {
		if err := c.SetReadDeadline(deadline); err != nil {
			return netip.Addr{}, err
		}
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return netip.Addr{}, fmt.Errorf("no destination unreachable: %w", err)
		}
		m, err := icmp.ParseMessage(58, buf[:n])
		if err != nil || m.Type != ipv6.ICMPTypeDestinationUnreachable {
			continue // neighbour discovery and the like
		}
		if du, ok := m.Body.(*icmp.DstUnreach); !ok || !bytes.Contains(du.Data, []byte("gogoc")) {
			continue // about another packet
		}
		src, _ := netip.AddrFromSlice(from.(*net.IPAddr).IP)
		return src, nil
	}
}
