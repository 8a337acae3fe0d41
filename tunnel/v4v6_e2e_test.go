package tunnel

import (
	"bufio"
	"context"
	"io"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/tsp"
)

// brokerProc is a tspbroker -dataplane running in a lab namespace.
type brokerProc struct {
	cmd *exec.Cmd
	log string
}

// kill ends the broker with SIGKILL, as a crash would: its sockets and
// device go, its host stays and answers for them.
func (b *brokerProc) kill() error {
	if err := b.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		return err
	}
	_ = b.cmd.Wait() // sets ProcessState: stop has nothing left to do
	return nil
}

// buildBroker builds cmd/tspbroker into a temporary directory.
func buildBroker(t testing.TB) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skipf("needs the go tool to build tspbroker: %v", err)
	}
	dir := t.TempDir()
	out, err := exec.Command(goBin, "build", "-o", dir+"/", "github.com/jsklein/gogoc/cmd/tspbroker").CombinedOutput()
	if err != nil {
		t.Fatalf("go build tspbroker: %v\n%s", err, out)
	}
	return filepath.Join(dir, "tspbroker")
}

// startBrokerV4V6 runs the broker in ns offering only v4v6, on UDP and TCP
// at the lab's outer IPv6 address, with a 1 s keepalive and a 1 h lifetime.
func startBrokerV4V6(t *testing.T, ns *labNS, bin string) *brokerProc {
	t.Helper()
	listen := netip.AddrPortFrom(v46BrokerOuter, 3653).String()
	return startBrokerProc(t, ns, bin, "-dataplane", "-udp", listen, "-tcp", listen,
		"-tunnels", "V4V6", "-auth", "DIGEST-MD5", "-user", "alice:wonderland", "-keepalive", "1", "-lifetime", "3600", "-v")
}

// startBrokerProc runs tspbroker with args in ns (ip netns exec execs it,
// so signals reach the broker itself) and waits until it listens.
func startBrokerProc(t testing.TB, ns *labNS, bin string, args ...string) *brokerProc {
	t.Helper()
	b := &brokerProc{log: filepath.Join(t.TempDir(), "broker.log")}
	lf, err := os.Create(b.log)
	if err != nil {
		t.Fatal(err)
	}
	b.cmd = exec.Command("ip", append([]string{"netns", "exec", ns.name, bin}, args...)...)
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	b.cmd.Stderr = lf
	if err := b.cmd.Start(); err != nil {
		t.Fatalf("start tspbroker: %v", err)
	}
	t.Cleanup(func() {
		b.stop(t)
		lf.Close()
		if t.Failed() {
			raw, _ := os.ReadFile(b.log)
			t.Logf("tspbroker log:\n%s", raw)
		}
	})
	rd := bufio.NewReader(out)
	line, err := rd.ReadString('\n')
	if !strings.HasPrefix(line, "listening udp") {
		raw, _ := os.ReadFile(b.log)
		t.Fatalf("tspbroker did not start (%q, %v):\n%s", line, err, raw)
	}
	go func() { _, _ = io.Copy(io.Discard, rd) }()
	return b
}

// stop ends the broker with SIGTERM (its clean shutdown) and reports
// whether it exited by itself.
func (b *brokerProc) stop(t testing.TB) bool {
	if b.cmd.ProcessState != nil {
		return true
	}
	_ = b.cmd.Process.Signal(syscall.SIGCONT) // in case a test left it stopped
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- b.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("tspbroker exit: %v", err)
		}
		return true
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-done
		return false
	}
}

// negotiateV4V6 runs a TSP session for v4v6 from the client namespace, as
// gogoc does: RUDP over IPv6 first, then TCP over IPv6.
func negotiateV4V6(t *testing.T, ns *labNS) *tsp.Result {
	t.Helper()
	d := &tsp.NetDialer{IPv6: true, RUDP: tsp.RUDPConfig{InitialRTO: 500 * time.Millisecond}}
	n := &tsp.Negotiator{
		Dial: func(ctx context.Context, server string, network tsp.Network) (tr tsp.Transport, err error) {
			err = InNetNS(ns.h, func() error { tr, err = d.Dial(ctx, server, network); return err })
			return tr, err
		},
		Creds:   tsp.Credentials{Method: tsp.AuthAny, UserID: "alice", Password: secret.String("wonderland")},
		Request: tsp.Request{Type: tsp.V4V6, Keepalive: true, KeepaliveInterval: 30},
		Log:     testLogger(t, "tsp"),
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := n.Negotiate(ctx, "["+v46BrokerOuter.String()+"]")
	if err != nil {
		t.Fatalf("negotiate v4v6: %v", err)
	}
	t.Cleanup(func() { res.Session.T.Close() })
	if err := res.Session.Accept(ctx); err != nil {
		t.Fatalf("accept: %v", err)
	}
	return res
}

// configFromOffer maps a negotiated offer onto a tunnel Config as the
// daemon does (daemon.tunnelConfig; this package cannot import it): for
// v4v6 inner IPv4 and outer IPv6, else the other way round; the offer's
// keepalive.
func configFromOffer(o *tsp.Offer) Config {
	c := Config{Keepalive: KeepaliveConfig{Target: o.KeepaliveAddr, Interval: o.KeepaliveInterval}}
	switch o.Type {
	case tsp.V4V6:
		c.Type, c.Local, c.Remote = V4V6, netip.PrefixFrom(o.ClientV4, 32), o.ServerV4
		c.LocalEndpoint, c.RemoteEndpoint = o.ClientV6, o.ServerV6
	case tsp.V6V4, tsp.V6UDPV4:
		c.Type = V6V4
		if o.Type == tsp.V6UDPV4 {
			c.Type = V6UDPV4
		}
		c.Local, c.Remote = netip.PrefixFrom(o.ClientV6, 128), o.ServerV6
		c.LocalEndpoint, c.RemoteEndpoint = o.ClientV4, o.ServerV4
	}
	return c
}

// TestUserspaceV4V6EndToEnd: over a link that carries only IPv6, the
// client negotiates v4v6 with the real tspbroker (RUDP over IPv6), gets
// its IPv4 address, and IPv4 ping and TCP (SHA-256 checked) work through
// the userspace tunnel to a host behind the broker. The ICMPv4 keepalive
// gets replies, and notices when the broker's data plane stops and comes
// back. Teardown leaves nothing. Then, with UDP refused, the negotiation
// falls back to TCP over IPv6.
func TestUserspaceV4V6EndToEnd(t *testing.T) {
	requireLab(t)
	if testing.Short() {
		t.Skip("builds tspbroker and creates namespaces; skipped with -short")
	}
	bin := buildBroker(t)
	l := newV4V6Lab(t)
	broker := startBrokerV4V6(t, l.broker, bin)

	res := negotiateV4V6(t, l.client)
	o := res.Offer
	t.Logf("offer over %s: %+v", res.Session.T.Network(), *o)
	if res.Session.T.Network() != tsp.UDP || res.Session.T.RemoteAddr().Addr() != v46BrokerOuter {
		t.Fatalf("session over %s to %v, want RUDP over IPv6 to %v", res.Session.T.Network(), res.Session.T.RemoteAddr(), v46BrokerOuter)
	}
	if o.Type != tsp.V4V6 || o.ClientV4 != v46ClientV4 || o.ServerV4 != v46ServerV4 ||
		o.ClientV6 != v46ClientOuter || o.ServerV6 != v46BrokerOuter {
		t.Fatalf("offer %+v: want v4v6, inner %v ⇄ %v, outer %v ⇄ %v", *o, v46ClientV4, v46ServerV4, v46ClientOuter, v46BrokerOuter)
	}
	if o.Lifetime != time.Hour || o.KeepaliveInterval != time.Second || o.KeepaliveAddr != v46ServerV4 {
		t.Fatalf("offer lifetime %v, keepalive %v to %v; want 1h, 1s to %v", o.Lifetime, o.KeepaliveInterval, o.KeepaliveAddr, v46ServerV4)
	}

	const timeout, misses = 500 * time.Millisecond, 3
	cfg := configFromOffer(o)
	cfg.DataPlane, cfg.IfName, cfg.NetNS, cfg.DefaultRoute, cfg.Log = PlaneUserspace, "tun4", l.client.h, true, testLogger(t, "client")
	cfg.Keepalive.Timeout, cfg.Keepalive.Misses = timeout, misses
	tun, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("tunnel: %v", err)
	}
	t.Cleanup(func() { tun.Close() })
	if PlaneOf(tun) != PlaneUserspace {
		t.Fatalf("plane %q", PlaneOf(tun))
	}
	l.assertIPv6OnlyPath(t, "tun4")

	t.Run("ping broker", func(t *testing.T) { ping4(t, l.client, v46ServerV4) })
	t.Run("ping behind broker", func(t *testing.T) { ping4(t, l.client, v46InetV4) })
	t.Run("tcp 10MB", func(t *testing.T) { transfer(t, l.client, l.inet, v46InetV4, 10<<20) })
	t.Run("tcp 10MB inbound", func(t *testing.T) { transfer(t, l.inet, l.client, v46ClientV4, 10<<20) })
	t.Run("keepalive", func(t *testing.T) {
		// The offer's interval (1 s) is the one used.
		waitKeepaliveReplies(t, tun, 2, 10*time.Second)
	})
	t.Run("keepalive loss and restore", func(t *testing.T) {
		settleKeepalive(t, tun)
		// Freeze the broker: its data plane stops answering.
		if err := broker.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		stopped := time.Now()
		bound := misses*time.Second + timeout
		ev := waitEvent(t, tun, KeepaliveLost, bound+10*time.Second) // a hang guard: timing is the keepalive tests' (fake clock)
		t.Logf("lost %v after the broker stopped (bound %v)", ev.Time.Sub(stopped).Round(time.Millisecond), bound)
		if ev.Misses < misses || !tun.Stats().Keepalive.Lost {
			t.Errorf("event %+v, stats %+v: want %d misses and lost", ev, tun.Stats().Keepalive, misses)
		}
		if err := broker.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		ev = waitEvent(t, tun, KeepaliveRestored, 10*time.Second)
		if ka := tun.Stats().Keepalive; ka.Lost || ka.Misses != 0 || ev.RTT <= 0 {
			t.Errorf("after restore: stats %+v, event %+v", ka, ev)
		}
	})

	s := tun.Stats()
	t.Logf("client stats %+v", s)
	// 10 MB each way is at least 10 MiB / 1240 (MTU 1280 less headers)
	// segments on the wire, whatever the offloads merged or split.
	if minSegs := uint64((10<<20 + 1239) / 1240); s.TxPackets < minSegs || s.RxPackets < minSegs || s.TxErrors != 0 || s.RxErrors != 0 {
		t.Errorf("client stats %+v: want ≥ %d packets each way, no errors", s, minSegs)
	}
	if err := tun.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	assertV4V6Gone(t, l.client.nl, "tun4")

	t.Run("tcp fallback", func(t *testing.T) {
		if _, err := exec.LookPath("nft"); err != nil {
			t.Skip("needs nft to refuse UDP")
		}
		// UDP to the broker is refused (port unreachable), as behind a
		// firewall: the session moves to TCP over IPv6.
		rules := "table ip6 gv4 {\n\tchain in {\n\t\ttype filter hook input priority 0; policy accept;\n\t\tudp dport 3653 reject\n\t}\n}\n"
		f := filepath.Join(t.TempDir(), "reject.nft")
		if err := os.WriteFile(f, []byte(rules), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := l.broker.exec("nft", "-f", f); err != nil {
			t.Fatalf("nft: %v: %s", err, out)
		}
		res := negotiateV4V6(t, l.client)
		if res.Session.T.Network() != tsp.TCP || res.Offer.ClientV4 != v46ClientV4 {
			t.Fatalf("session over %s with client %v, want TCP and %v", res.Session.T.Network(), res.Offer.ClientV4, v46ClientV4)
		}
		cfg := configFromOffer(res.Offer)
		cfg.DataPlane, cfg.IfName, cfg.NetNS, cfg.DefaultRoute = PlaneUserspace, "tun4", l.client.h, true
		tun, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatalf("tunnel: %v", err)
		}
		ping4(t, l.client, v46InetV4)
		if err := tun.Close(); err != nil {
			t.Fatal(err)
		}
		assertV4V6Gone(t, l.client.nl, "tun4")
	})

	// The broker shuts down cleanly and removes its device.
	if !broker.stop(t) {
		t.Fatal("tspbroker did not stop on SIGTERM")
	}
	if _, err := l.broker.nl.LinkByName("tsps4"); err == nil {
		t.Error("broker device tsps4 left after the broker stopped")
	}
}
