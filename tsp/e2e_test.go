package tsp_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/internal/testbroker"
	"github.com/jsklein/gogoc/tsp"
)

// These tests run the client against the project's TSP broker over real
// loopback sockets: the proof that the two ends agree on the wire.

const (
	testUser = "alice"
	testPass = "s3cr3t-Pa55"
)

// fastRUDP keeps retransmission tests in milliseconds.
var fastRUDP = tsp.RUDPConfig{InitialRTO: 40 * time.Millisecond, MinRTO: 40 * time.Millisecond, MaxRTO: 200 * time.Millisecond}

type broker struct {
	srv      *testbroker.Server
	udp, tcp netip.AddrPort
}

func startBroker(t testing.TB, host string, mut func(*testbroker.Config)) *broker {
	t.Helper()
	cfg := testbroker.Config{
		Tunnels:    []string{testbroker.TunnelV6V4, testbroker.TunnelV6UDPV4, testbroker.TunnelV4V6},
		Auth:       []string{testbroker.AuthAnonymous, testbroker.AuthPlain, testbroker.AuthDigestMD5, testbroker.AuthPassDSS},
		DSAKey:     mustKey(t, brokerKey),
		Users:      map[string]string{testUser: testPass},
		ServerV4:   netip.MustParseAddr("127.0.0.1"),
		ServerV6:   netip.MustParseAddr("2001:db8:ab::1"),
		PrefixPool: netip.MustParsePrefix("2001:db8:8000::/33"),
		Limits:     testbroker.Limits{MaxSessions: 1 << 16, MaxPerSource: 1 << 16},
	}
	if host == "::1" {
		cfg.ServerV4 = netip.Addr{}
		cfg.ServerV6 = netip.MustParseAddr("::1")
	}
	if mut != nil {
		mut(&cfg)
	}
	srv, err := testbroker.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	hp := net.JoinHostPort(host, "0")
	udp, tcp, err := srv.Start(hp, hp)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", host, err)
	}
	t.Cleanup(func() { srv.Close() })
	return &broker{srv: srv, udp: udp, tcp: tcp}
}

// dial connects to this broker whatever server string the client uses; the
// UDP and TCP listeners have different ephemeral ports.
func (b *broker) dial(networks ...tsp.Network) tsp.DialFunc {
	return func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
		allowed := len(networks) == 0
		for _, n := range networks {
			allowed = allowed || n == network
		}
		if !allowed {
			return nil, fmt.Errorf("%s blocked by the test", network)
		}
		addr := b.udp
		if network == tsp.TCP {
			addr = b.tcp
		}
		d := &tsp.NetDialer{IPv6: addr.Addr().Is6(), RUDP: fastRUDP, TCP: tsp.TCPConfig{ReadTimeout: 2 * time.Second}}
		return d.Dial(ctx, addr.String(), network)
	}
}

func ctxT(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
	t.Cleanup(cancel)
	return ctx
}

func TestE2EMatrix(t *testing.T) {
	b4 := startBroker(t, "127.0.0.1", nil)
	b6 := startBroker(t, "::1", nil)
	auths := []tsp.AuthMethod{tsp.AuthAnonymous, tsp.AuthPlain, tsp.AuthDigestMD5, tsp.AuthPassDSS, tsp.AuthAny}
	keys := knownKeys(t, "broker.test", mustKey(t, brokerKey))
	types := []tsp.TunnelType{tsp.V6V4, tsp.V6UDPV4, tsp.V6AnyV4, tsp.V4V6}
	for _, network := range []tsp.Network{tsp.UDP, tsp.TCP} {
		for _, typ := range types {
			for _, auth := range auths {
				if typ == tsp.V6UDPV4 && network == tsp.TCP {
					continue // v6udpv4 is UDP only by design; TestV6UDPV4NeverTCP covers it
				}
				name := fmt.Sprintf("%s/%s/%s", network, typ, auth)
				t.Run(name, func(t *testing.T) {
					b := b4
					req := tsp.Request{Type: typ, Keepalive: true, KeepaliveInterval: 30}
					if typ == tsp.V4V6 {
						b = b6
					}
					if typ == tsp.V6UDPV4 || typ == tsp.V6AnyV4 && network == tsp.UDP {
						// Declare an address other than the source: the broker sees NAT.
						req.ClientV4 = netip.MustParseAddr("192.0.2.10")
					}
					if auth != tsp.AuthAnonymous && typ != tsp.V4V6 {
						req.Router, req.PrefixLen = true, 56
					}
					n := &tsp.Negotiator{Dial: b.dial(network), Request: req,
						Creds: tsp.Credentials{Method: auth, UserID: testUser, Password: testPass, KnownKeys: keys}}
					res, err := n.Negotiate(ctxT(t), "broker.test")
					if err != nil {
						t.Fatal(err)
					}
					defer res.Session.T.Close()
					if err := res.Session.Accept(ctxT(t)); err != nil {
						t.Fatal(err)
					}
					want := typ
					if typ == tsp.V6AnyV4 {
						want = map[tsp.Network]tsp.TunnelType{tsp.UDP: tsp.V6UDPV4, tsp.TCP: tsp.V6V4}[network]
					}
					o := res.Offer
					if o.Type != want || res.Session.T.Network() != network {
						t.Fatalf("got %s over %s, want %s over %s", o.Type, res.Session.T.Network(), want, network)
					}
					wantMech := map[tsp.AuthMethod]string{tsp.AuthAnonymous: "ANONYMOUS", tsp.AuthPlain: "PLAIN", tsp.AuthDigestMD5: "DIGEST-MD5", tsp.AuthPassDSS: "PASSDSS-3DES-1", tsp.AuthAny: "PASSDSS-3DES-1"}[auth]
					if res.Session.Mechanism != wantMech {
						t.Errorf("mechanism %s, want %s", res.Session.Mechanism, wantMech)
					}
					if req.Router && (!o.Prefix.IsValid() || o.Prefix.Bits() != 56) {
						t.Errorf("router offer without /56: %v", o.Prefix)
					}
					// The broker must hold the same tunnel as established.
					var info *testbroker.SessionInfo
					deadline := time.Now().Add(10 * time.Second)
					for info == nil && time.Now().Before(deadline) {
						for _, s := range b.srv.Sessions() {
							if s.Client == res.Session.T.LocalAddr() {
								info = &s
							}
						}
						time.Sleep(5 * time.Millisecond)
					}
					if info == nil {
						t.Fatal("broker has no established session for this client")
					}
					if info.Type != string(o.Type) || info.ClientV6 != o.ClientV6 || info.Prefix != o.Prefix || info.Mechanism != wantMech {
						t.Errorf("broker %+v\nclient %+v", info, o)
					}
				})
			}
		}
	}
}

func TestDroppedDatagramsAreRetransmitted(t *testing.T) {
	for _, f := range []testbroker.Faults{{DropInbound: []int{1}}, {DropReply: []int{1}}, {DropInbound: []int{2}, DropReply: []int{3}}} {
		b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Faults = f })
		n := &tsp.Negotiator{Dial: b.dial(tsp.UDP), Request: tsp.Request{Type: tsp.V6UDPV4, Keepalive: true, KeepaliveInterval: 30},
			Creds: tsp.Credentials{Method: tsp.AuthDigestMD5, UserID: testUser, Password: testPass}}
		res, err := n.Negotiate(ctxT(t), "broker.test")
		if err != nil {
			t.Fatalf("%+v: %v", f, err)
		}
		if err := res.Session.Accept(ctxT(t)); err != nil {
			t.Fatal(err)
		}
		res.Session.T.Close()
		st := b.srv.Stats()
		if st.DroppedInbound != uint64(len(f.DropInbound)) || st.DroppedReplies != uint64(len(f.DropReply)) || st.Established != 1 {
			t.Errorf("%+v: broker stats %+v", f, st)
		}
		if len(f.DropReply) > 0 && st.Retransmits == 0 {
			t.Errorf("%+v: lost reply was not answered from the cache", f)
		}
	}
}

// A UDP socket that swallows everything: "UDP blocked" without an ICMP error.
func blackhole(t *testing.T) netip.AddrPort {
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	return netip.MustParseAddrPort(pc.LocalAddr().String())
}

func TestUDPBlockedFallsBackToTCP(t *testing.T) {
	b := startBroker(t, "127.0.0.1", nil)
	hole := blackhole(t)
	for _, typ := range []tsp.TunnelType{tsp.V6AnyV4, tsp.V6V4} {
		for _, udpTarget := range []string{hole.String(), "127.0.0.1:9"} { // silent, and refused
			var tried []tsp.Network
			dial := func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
				tried = append(tried, network)
				addr := b.tcp.String()
				if network == tsp.UDP {
					addr = udpTarget
				}
				d := &tsp.NetDialer{RUDP: fastRUDP}
				return d.Dial(ctx, addr, network)
			}
			n := &tsp.Negotiator{Dial: dial, Request: tsp.Request{Type: typ}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
			start := time.Now()
			res, err := n.Negotiate(ctxT(t), "broker.test")
			if err != nil {
				t.Fatalf("%s via %s: %v", typ, udpTarget, err)
			}
			res.Session.T.Close()
			if res.Session.T.Network() != tsp.TCP || res.Offer.Type != tsp.V6V4 || fmt.Sprint(tried) != "[udp tcp]" {
				t.Errorf("%s via %s: %s offer over %s after %v", typ, udpTarget, res.Offer.Type, res.Session.T.Network(), tried)
			}
			t.Logf("%s, UDP %s: TCP offer after %v", typ, udpTarget, time.Since(start).Round(time.Millisecond))
		}
	}
}

func TestV6UDPV4NeverTCP(t *testing.T) {
	b := startBroker(t, "127.0.0.1", nil)
	hole := blackhole(t)
	var tried []tsp.Network
	dial := func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
		tried = append(tried, network)
		addr := b.tcp.String()
		if network == tsp.UDP {
			addr = hole.String()
		}
		return (&tsp.NetDialer{RUDP: fastRUDP}).Dial(ctx, addr, network)
	}
	n := &tsp.Negotiator{Dial: dial, Request: tsp.Request{Type: tsp.V6UDPV4, Keepalive: true, KeepaliveInterval: 30}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
	_, err := n.Negotiate(ctxT(t), "broker.test")
	if !errors.Is(err, tsp.ErrNoReply) || fmt.Sprint(tried) != "[udp]" {
		t.Fatalf("err %v after %v; want ErrNoReply after UDP only", err, tried)
	}
}

// A broker that offers v6udpv4 on a TCP session is refused (and the offer rejected).
func TestV6UDPV4OfferOnTCPRefused(t *testing.T) {
	body := "200 Success\r\n<tunnel action=\"info\" type=\"v6udpv4\" lifetime=\"60\"><server><address type=\"ipv4\">127.0.0.1</address>" +
		"<address type=\"ipv6\">2001:db8:ab::1</address></server><client><address type=\"ipv4\">127.0.0.1</address>" +
		"<address type=\"ipv6\">2001:db8:ab::2</address></client></tunnel>\r\n"
	b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) {
		c.Faults.RawAt = map[string][]byte{testbroker.PhaseTunnel: fmt.Appendf(nil, "Content-length: %d\r\n%s", len(body), body)}
	})
	n := &tsp.Negotiator{Dial: b.dial(tsp.TCP), Request: tsp.Request{Type: tsp.V6AnyV4}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
	_, err := n.Negotiate(ctxT(t), "broker.test")
	if !errors.Is(err, tsp.ErrMalformed) || !strings.Contains(err.Error(), "TCP session") {
		t.Fatalf("got %v", err)
	}
}

func TestBrokerStatusesAreTyped(t *testing.T) {
	tests := []struct {
		phase string
		code  int
		want  error
	}{
		{testbroker.PhaseVersion, 530, tsp.ErrServerBusy},
		{testbroker.PhaseAuth, 300, tsp.ErrAuthFailed},
		{testbroker.PhaseTunnel, 301, tsp.ErrNoMoreTunnels},
		{testbroker.PhaseTunnel, 303, tsp.ErrUnsupportedTunnel},
		{testbroker.PhaseTunnel, 522, tsp.ErrPrefixUnavailable},
	}
	for _, tt := range tests {
		b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Faults.StatusAt = map[string]int{tt.phase: tt.code} })
		n := &tsp.Negotiator{Dial: b.dial(), Request: tsp.Request{Type: tsp.V6V4}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
		_, err := n.Negotiate(ctxT(t), "broker.test")
		var st *tsp.StatusError
		if !errors.Is(err, tt.want) || !errors.As(err, &st) || st.Code != tt.code {
			t.Errorf("%s %d: got %v", tt.phase, tt.code, err)
		}
	}
	b := startBroker(t, "127.0.0.1", nil)
	n := &tsp.Negotiator{Dial: b.dial(), Request: tsp.Request{Type: tsp.V6V4},
		Creds: tsp.Credentials{Method: tsp.AuthDigestMD5, UserID: testUser, Password: "wrong"}}
	if _, err := n.Negotiate(ctxT(t), "broker.test"); !errors.Is(err, tsp.ErrAuthFailed) {
		t.Errorf("wrong password: %v", err)
	}
}

func TestVersionFallbackAgainstBroker(t *testing.T) {
	b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Versions = []string{"2.0.0"} })
	n := &tsp.Negotiator{Dial: b.dial(), Request: tsp.Request{Type: tsp.V6UDPV4, Keepalive: true, KeepaliveInterval: 30}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
	res, err := n.Negotiate(ctxT(t), "broker.test")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Session.T.Close()
	if res.Session.Version != "2.0.0" {
		t.Fatalf("version %s", res.Session.Version)
	}
}

func TestRedirectAgainstBrokers(t *testing.T) {
	second := startBroker(t, "127.0.0.1", nil)
	first := startBroker(t, "127.0.0.1", func(c *testbroker.Config) {
		c.Redirect = []testbroker.Broker{{Kind: "dn", Address: "second.test"}}
	})
	dial := func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
		if server == "second.test" {
			return second.dial()(ctx, server, network)
		}
		return first.dial()(ctx, server, network)
	}
	n := &tsp.Negotiator{Dial: dial, Request: tsp.Request{Type: tsp.V6UDPV4, Keepalive: true, KeepaliveInterval: 30}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
	res, err := n.Negotiate(ctxT(t), "first.test")
	if err != nil {
		t.Fatal(err)
	}
	res.Session.T.Close()
	if res.Server != "second.test" {
		t.Fatalf("offer from %s", res.Server)
	}
	// Two brokers redirecting to each other: a loop, reported, not followed.
	loopA := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Redirect = []testbroker.Broker{{Kind: "dn", Address: "b.test"}} })
	loopB := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Redirect = []testbroker.Broker{{Kind: "dn", Address: "a.test"}} })
	dial = func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
		if server == "b.test" {
			return loopB.dial()(ctx, server, network)
		}
		return loopA.dial()(ctx, server, network)
	}
	n.Dial = dial
	if _, err := n.Negotiate(ctxT(t), "a.test"); !errors.Is(err, tsp.ErrRedirectLoop) {
		t.Fatalf("loop: %v", err)
	}
}

func TestChunkedOfferOverUDP(t *testing.T) {
	b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Faults.Chunk = 100 })
	n := &tsp.Negotiator{Dial: b.dial(tsp.UDP), Request: tsp.Request{Type: tsp.V6UDPV4, Keepalive: true, KeepaliveInterval: 30}, Creds: tsp.Credentials{Method: tsp.AuthAnonymous}}
	res, err := n.Negotiate(ctxT(t), "broker.test")
	if err != nil {
		t.Fatal(err)
	}
	res.Session.T.Close()
	if !res.Offer.ClientV6.IsValid() {
		t.Fatal("no client address")
	}
}

// lockedBuffer collects log output from concurrent goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func TestNoSecretsInLogs(t *testing.T) {
	var logs lockedBuffer
	log := logx.Writer(&logs, logx.LevelDebug-8)
	b := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Log = log })
	for _, auth := range []tsp.AuthMethod{tsp.AuthPlain, tsp.AuthDigestMD5} {
		for _, pass := range []string{testPass, "wrong-" + testPass} {
			n := &tsp.Negotiator{Dial: b.dial(), Log: log, Request: tsp.Request{Type: tsp.V6V4},
				Creds: tsp.Credentials{Method: auth, UserID: testUser, Password: secret.String(pass)}}
			res, err := n.Negotiate(ctxT(t), "broker.test")
			if err == nil {
				res.Session.T.Close()
			}
		}
	}
	logs.mu.Lock() // broker goroutines may still be logging
	out := logs.b.String()
	logs.mu.Unlock()
	if !strings.Contains(out, "authenticated") {
		t.Fatalf("debug log is missing, the check would be vacuous:\n%s", out)
	}
	for _, s := range []string{testPass, "response=", "rspauth="} {
		if strings.Contains(out, s) {
			t.Errorf("log contains %q:\n%s", s, out)
		}
	}
}

// BenchmarkNegotiate measures one full negotiation (dial, VERSION, auth,
// request, offer, reject) over loopback. The baseline sub-benchmark is a
// bare RUDP ECHO exchange on a fresh socket: the floor for any session.
func BenchmarkNegotiate(b *testing.B) {
	br := startBroker(b, "127.0.0.1", nil)
	b.Run("baseline-echo", func(b *testing.B) {
		for b.Loop() {
			conn, err := net.Dial("udp4", br.udp.String())
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := tsp.NewRUDP(conn, tsp.RUDPConfig{}).Echo(context.Background(), 1, time.Second); err != nil {
				b.Fatal(err)
			}
			conn.Close()
		}
	})
	for _, network := range []tsp.Network{tsp.UDP, tsp.TCP} {
		for _, auth := range []tsp.AuthMethod{tsp.AuthAnonymous, tsp.AuthDigestMD5} {
			b.Run(fmt.Sprintf("%s-%s", network, auth), func(b *testing.B) {
				n := &tsp.Negotiator{Dial: br.dial(network), Request: tsp.Request{Type: tsp.V6V4},
					Creds: tsp.Credentials{Method: auth, UserID: testUser, Password: testPass}}
				for b.Loop() {
					res, err := n.Negotiate(context.Background(), "broker.test")
					if err != nil {
						b.Fatal(err)
					}
					_ = res.Session.Reject(context.Background())
					res.Session.T.Close()
				}
			})
		}
	}
}

// auth_method any against a broker that offers only PLAIN: refused before
// AUTHENTICATE, so the broker never sees the password. auth_method plain
// and a redirect: not followed, the second broker never hears from us.
func TestPlainOnlyWhenConfiguredAgainstBrokers(t *testing.T) {
	plainOnly := startBroker(t, "127.0.0.1", func(c *testbroker.Config) { c.Auth = []string{testbroker.AuthPlain} })
	n := &tsp.Negotiator{Dial: plainOnly.dial(tsp.UDP), Request: tsp.Request{Type: tsp.V6UDPV4},
		Creds: tsp.Credentials{Method: tsp.AuthAny, UserID: testUser, Password: testPass}}
	if _, err := n.Negotiate(ctxT(t), "broker.test"); !errors.Is(err, tsp.ErrNoCommonAuth) || !strings.Contains(err.Error(), "auth_method plain") {
		t.Fatalf("any against a PLAIN-only broker: %v", err)
	}
	if st := plainOnly.srv.Stats(); st.Established != 0 || st.AuthFailures != 0 {
		t.Fatalf("the broker saw an authentication: %+v", st)
	}
	n.Creds.Method = tsp.AuthPlain
	res, err := n.Negotiate(ctxT(t), "broker.test")
	if err != nil {
		t.Fatalf("plain as configured: %v", err)
	}
	res.Session.T.Close()

	second := startBroker(t, "127.0.0.1", nil)
	first := startBroker(t, "127.0.0.1", func(c *testbroker.Config) {
		c.Redirect = []testbroker.Broker{{Kind: "dn", Address: "second.test"}}
	})
	n.Dial = func(ctx context.Context, server string, network tsp.Network) (tsp.Transport, error) {
		if server == "second.test" {
			return second.dial()(ctx, server, network)
		}
		return first.dial()(ctx, server, network)
	}
	_, err = n.Negotiate(ctxT(t), "first.test")
	var rd *tsp.RedirectError
	if !errors.Is(err, tsp.ErrPlainRedirect) || !errors.As(err, &rd) || rd.Brokers[0].Address != "second.test" {
		t.Fatalf("plain and a redirect: %v", err)
	}
	if st := second.srv.Stats(); st.Sessions != 0 {
		t.Fatalf("the redirect was followed: %+v", st)
	}
}
