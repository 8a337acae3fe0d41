package daemon

import (
	"context"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tsp"
)

// The redirect rules (issue 15.2, 15.3): a broker named by a redirect is
// whoever the redirecting broker, or the path to it, chose. It must pass
// the address policy before anything is sent to it, probes included, and
// never gets a PLAIN password; and it stays a redirect target when it is
// remembered (the broker list, the last server, the broker in use).

// fakeResolver maps names to addresses: a redirect may name anything, and
// the name may lead anywhere.
type fakeResolver map[string][]netip.Addr

func (r fakeResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
	var out []netip.Addr
	for _, a := range r[host] {
		if network == "ip" || (network == "ip4") == a.Is4() {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return out, nil
}

// farTransport makes a broker on loopback look like one on another host,
// so that the policy treats its redirects as a far broker's.
type farTransport struct{ tsp.Transport }

func (farTransport) RemoteAddr() netip.AddrPort { return netip.MustParseAddrPort("198.51.100.1:3653") }

// sink listens on UDP and TCP at one address and, afterwards, tells what
// reached it.
type sink struct {
	pc net.PacketConn
	ln *net.TCPListener
}

func listenSink(t *testing.T, at netip.AddrPort) *sink {
	t.Helper()
	pc, err := net.ListenPacket("udp", at.String())
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(at))
	if err != nil {
		pc.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close(); ln.Close() })
	return &sink{pc, ln}
}

// reached reports what is queued: the kernel queued it when it was sent,
// so the short deadlines only bound the wait for nothing.
func (s *sink) reached() (datagrams, conns int) {
	buf := make([]byte, 2048)
	for {
		_ = s.pc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if _, _, err := s.pc.ReadFrom(buf); err != nil {
			break
		}
		datagrams++
	}
	for {
		_ = s.ln.SetDeadline(time.Now().Add(50 * time.Millisecond))
		c, err := s.ln.Accept()
		if err != nil {
			break
		}
		c.Close()
		conns++
	}
	return datagrams, conns
}

// waitSettled waits until the daemon is up or backing off and returns the
// state.
func waitSettled(t *testing.T, d *Daemon, within time.Duration) State {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		switch s := d.Status().State; s {
		case StateUp, StateBackoff:
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("state %s after %v, want up or backoff", d.Status().State, within)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestRedirectNameToThisHost: a far broker redirects to a name that leads
// to this host. The distance probe and both transports must refuse it
// before a datagram or a TCP SYN goes there.
func TestRedirectNameToThisHost(t *testing.T) {
	inside := netip.MustParseAddr(loopbackBase() + "20")
	s := listenSink(t, netip.AddrPortFrom(inside, 3653))
	b, err := testbroker.New(testbroker.Config{Redirect: []testbroker.Broker{{Kind: "dn", Address: "inside.test"}}, Log: logx.Discard()})
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp, err := b.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	names := fakeResolver{"inside.test": {inside}}
	sock := SocketDialer{RUDP: DefaultRUDP(), Resolver: names}
	dial := dialFunc(func(ctx context.Context, server string, n tsp.Network) (tsp.Transport, error) {
		if server != "far.test" {
			return sock.Dial(ctx, server, n, false)
		}
		at := udp
		if n == tsp.TCP {
			at = tcp
		}
		tr, err := sock.Dial(ctx, at.String(), n, false)
		if err != nil {
			return nil, err
		}
		return farTransport{tr}, nil
	})
	c := testConfig("far.test")
	c.TunnelMode = config.TunnelV6AnyV4
	c.TCPFallbackDelay = 0 // TCP beside UDP at once: each transport reaches for the target
	o := testOptions(t, c, newFakePlane())
	o.Log = testLog(t)
	br := dialBroker(dial, o.Log)
	br.Resolver = names
	o.Broker = br
	d, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	runDaemon(t, d)
	if st := waitSettled(t, d, 15*time.Second); st != StateBackoff {
		t.Fatalf("state %s, want backoff: the only broker named is refused", st)
	}
	if dg, conns := s.reached(); dg != 0 || conns != 0 {
		t.Errorf("the address inside.test led to got %d datagrams (distance probe or TSP) and %d TCP connections, want none", dg, conns)
	}
	if le := d.Status().LastError; !strings.Contains(le, "redirect") {
		t.Errorf("last error %q does not say the redirect was refused", le)
	}
}

// deadServer is a loopback UDP port nobody listens on: ECONNREFUSED at
// once, so the daemon turns to its broker list.
func deadServer(t *testing.T) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := pc.LocalAddr().String()
	pc.Close()
	return s
}

// TestRememberedRedirectTargets: brokers that came from a redirect and
// were written to the broker list or the last-server file (here as the
// previous release wrote them, with nothing to say where they came from)
// are held to the redirect rules when read back: no PLAIN password, and
// the address policy (a loopback broker is refused unless the redirect
// came from this host).
func TestRememberedRedirectTargets(t *testing.T) {
	const user, pass = "u", "pw-not-for-them"
	for _, tc := range []struct {
		name  string
		auth  config.AuthMethod
		write func(dir, listed string) error
		pin   bool
	}{
		{"broker list, plain", config.AuthPlain,
			func(dir, listed string) error {
				return os.WriteFile(filepath.Join(dir, "tsp-broker-list.txt"), []byte(listed+"\n"), 0o644)
			}, false},
		{"broker list, loopback entry", config.AuthAnonymous,
			func(dir, listed string) error {
				return os.WriteFile(filepath.Join(dir, "tsp-broker-list.txt"), []byte(listed+"\n"), 0o644)
			}, false},
		{"last server, plain", config.AuthPlain,
			func(dir, listed string) error {
				return os.WriteFile(filepath.Join(dir, "tsp-last-server.txt"), []byte(listed+"\n"), 0o644)
			}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			listed, listedS := startBroker(t, testbroker.Config{Users: map[string]string{user: pass}}, "127.0.0.1:0")
			dir := t.TempDir()
			if err := tc.write(dir, listedS); err != nil {
				t.Fatal(err)
			}
			c := testConfig(deadServer(t))
			c.AuthMethod, c.UserID, c.Password = tc.auth, user, pass
			c.AlwaysUseSameServer = tc.pin
			o := testOptions(t, c, newFakePlane())
			o.StateDir, o.Log, o.Timings = dir, testLog(t), fastAttempts()
			d, err := New(o)
			if err != nil {
				t.Fatal(err)
			}
			runDaemon(t, d)
			st := waitSettled(t, d, 10*time.Second)
			bs := listed.Stats()
			if st != StateBackoff || bs.Datagrams != 0 {
				t.Errorf("state %s; the remembered broker got %d datagrams (%d sessions, %d established), want backoff and nothing",
					st, bs.Datagrams, bs.Sessions, bs.Established)
			}
		})
	}
}
