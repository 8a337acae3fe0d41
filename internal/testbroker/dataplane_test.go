package testbroker

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// recDP records data-plane calls.
type recDP struct {
	mu     sync.Mutex
	est    []*Session
	closed []*Session
	pkts   chan []byte
}

func newRecDP() *recDP { return &recDP{pkts: make(chan []byte, 16)} }

func (d *recDP) Established(s *Session) { d.mu.Lock(); d.est = append(d.est, s); d.mu.Unlock() }
func (d *recDP) Closed(s *Session)      { d.mu.Lock(); d.closed = append(d.closed, s); d.mu.Unlock() }
func (d *recDP) FromClient(s *Session, pkt []byte) {
	select {
	case d.pkts <- bytes.Clone(pkt):
	default:
	}
}

func (d *recDP) estAt(i int) *Session    { d.mu.Lock(); defer d.mu.Unlock(); return d.est[i] }
func (d *recDP) closedAt(i int) *Session { d.mu.Lock(); defer d.mu.Unlock(); return d.closed[i] }

func (d *recDP) counts() (est, closed int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.est), len(d.closed)
}

// echoRequest builds an ICMPv6 echo request, checksum computed here.
func echoRequest(src, dst netip.Addr, id, seq uint16, payload []byte) []byte {
	icmp := make([]byte, 8+len(payload))
	icmp[0] = 128
	binary.BigEndian.PutUint16(icmp[4:], id)
	binary.BigEndian.PutUint16(icmp[6:], seq)
	copy(icmp[8:], payload)
	pkt := make([]byte, 40, 40+len(icmp))
	pkt[0] = 0x60
	binary.BigEndian.PutUint16(pkt[4:], uint16(len(icmp)))
	pkt[6], pkt[7] = 58, 64
	s, d := src.As16(), dst.As16()
	copy(pkt[8:], s[:])
	copy(pkt[24:], d[:])
	binary.BigEndian.PutUint16(icmp[2:], ^checksumSum(pkt[8:24], pkt[24:40], icmp))
	return append(pkt, icmp...)
}

// checksumSum is the folded one's-complement sum over the ICMPv6
// pseudo-header and message; a valid message (checksum included) sums to
// 0xFFFF.
func checksumSum(src, dst, msg []byte) uint16 {
	buf := append(append(append([]byte{}, src...), dst...), 0, 0, byte(len(msg)>>8), byte(len(msg)), 0, 0, 0, 58)
	buf = append(buf, msg...)
	if len(buf)%2 == 1 {
		buf = append(buf, 0)
	}
	var sum uint32
	for i := 0; i < len(buf); i += 2 {
		sum += uint32(buf[i])<<8 | uint32(buf[i+1])
	}
	for sum > 0xFFFF {
		sum = sum>>16 + sum&0xFFFF
	}
	return uint16(sum)
}

func establishUDP(t *testing.T, c *udpClient, typ, user string) {
	t.Helper()
	c.x(msgVersion)
	if user == "" {
		c.x(msgAnonymous)
	} else {
		c.x(msgPlain)
		if got := c.x(plainCreds(user, testConfig().Users[user])); got != okLine {
			t.Fatalf("auth %q", got)
		}
	}
	mustFramed(t, c.x(createMsg(typ, "192.0.2.10", 30, -1)))
	c.x(msgAccept)
}

func TestDataPlaneHooks(t *testing.T) {
	dp := newRecDP()
	cfg := testConfig()
	cfg.DataPlane = dp
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	udp, tcp, err := s.Start("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	c := dialUDP(t, udp)
	establishUDP(t, c, "v6udpv4", "alice")
	waitFor(t, "Established", func() bool { e, _ := dp.counts(); return e == 1 })
	sess := dp.estAt(0)
	if info := sess.Info(); info.Type != "v6udpv4" || info.User != "alice" || !info.NAT || info.Client != c.local() {
		t.Fatalf("info %+v", info)
	}

	pkt := echoRequest(netip.MustParseAddr("2001:db8:ab::2"), netip.MustParseAddr("2001:db8::99"), 1, 1, []byte("hi"))
	c.sendRaw(pkt)
	select {
	case got := <-dp.pkts:
		if !bytes.Equal(got, pkt) {
			t.Fatalf("FromClient got % x", got)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("FromClient not called")
	}
	if err := sess.WriteData([]byte{0x60, 1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	if b, err := c.recv(5 * time.Second); err != nil || !bytes.Equal(b, []byte{0x60, 1, 2, 3}) {
		t.Fatalf("client got % x %v", b, err)
	}

	// v6v4 over TCP: reported, but no data on the TSP socket.
	tc := dialTCP(t, tcp)
	tc.x(msgVersion)
	tc.x(msgAnonymous)
	tc.write(createMsg("v6v4", "127.0.0.1", 30, -1))
	tc.framed()
	tc.write(msgAccept)
	waitFor(t, "second Established", func() bool { e, _ := dp.counts(); return e == 2 })
	if err := dp.estAt(1).WriteData([]byte{0x60}); !errors.Is(err, ErrNotDataSession) {
		t.Fatalf("WriteData on v6v4/tcp: %v", err)
	}

	// The same user again replaces the first session.
	establishUDP(t, dialUDP(t, udp), "v6udpv4", "alice")
	waitFor(t, "Closed for the replaced session", func() bool { _, n := dp.counts(); return n == 1 })
	if dp.closedAt(0) != sess {
		t.Fatal("wrong session closed")
	}
	if err := sess.WriteData([]byte{0x60}); !errors.Is(err, ErrNotDataSession) {
		t.Fatalf("WriteData after replacement: %v", err)
	}
	if n := len(s.Sessions()); n != 2 {
		t.Fatalf("%d sessions", n)
	}

	// A client closing its TCP connection ends its session.
	tc.conn.Close()
	waitFor(t, "Closed for the TCP session", func() bool { _, n := dp.counts(); return n == 2 })

	s.Close()
	if e, n := dp.counts(); e != 3 || n != 3 {
		t.Fatalf("after Close: %d established, %d closed", e, n)
	}
}

func TestLifetimeExpiry(t *testing.T) {
	dp := newRecDP()
	cfg := testConfig()
	cfg.DataPlane = dp
	cfg.Lifetime = 1
	cfg.Limits.IdleTimeout = 200 * time.Millisecond // sweeps every 50 ms
	s, udp, _ := startServer(t, cfg)
	establishUDP(t, dialUDP(t, udp), "v6v4", "")
	if len(s.Sessions()) != 1 {
		t.Fatal("not established")
	}
	waitFor(t, "lease expiry", func() bool { return len(s.Sessions()) == 0 })
	if _, n := dp.counts(); n != 1 {
		t.Fatalf("%d Closed calls", n)
	}
}

func TestEchoResponder(t *testing.T) {
	s, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	establishUDP(t, c, "v6udpv4", "")
	info := s.Sessions()[0]
	payload := bytes.Repeat([]byte{0xCD}, 16)
	c.sendRaw(echoRequest(info.ClientV6, info.ServerV6, 0x1234, 7, payload))
	b, err := c.recv(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 40+8+16 || b[0]>>4 != 6 || b[40] != 129 || b[6] != 58 {
		t.Fatalf("reply % x", b)
	}
	if !bytes.Equal(b[8:24], info.ServerV6.AsSlice()) || !bytes.Equal(b[24:40], info.ClientV6.AsSlice()) {
		t.Fatalf("addresses not swapped: % x", b[8:40])
	}
	if binary.BigEndian.Uint16(b[44:]) != 0x1234 || binary.BigEndian.Uint16(b[46:]) != 7 || !bytes.Equal(b[48:], payload) {
		t.Fatalf("id/seq/payload changed: % x", b[40:])
	}
	if sum := checksumSum(b[8:24], b[24:40], b[40:]); sum != 0xFFFF {
		t.Fatalf("bad checksum (sum %04x)", sum)
	}
	// Pings to anyone else get nothing.
	c.sendRaw(echoRequest(info.ClientV6, netip.MustParseAddr("2001:db8::1"), 1, 1, nil))
	c.expectNone(shortWait)
}

func TestConfigValidation(t *testing.T) {
	for name, cfg := range map[string]Config{
		"passdss":          {Auth: []string{"PASSDSS-3DES-1"}},
		"unknown auth":     {Auth: []string{"KERBEROS"}},
		"unknown tunnel":   {Tunnels: []string{"DSLITE"}},
		"v4 client pool":   {ClientPool: netip.MustParsePrefix("10.0.0.0/8")},
		"unmasked pool":    {ClientPool: netip.MustParsePrefix("2001:db8::1/64")},
		"prefix pool /65":  {PrefixPool: netip.MustParsePrefix("2001:db8::/65")},
		"overlap":          {ClientPool: netip.MustParsePrefix("2001:db8:8000::/64")},
		"v6 server v4":     {ServerV4: netip.MustParseAddr("2001:db8::1")},
		"v4 server v6":     {ServerV6: netip.MustParseAddr("192.0.2.1")},
		"nul in password":  {Users: map[string]string{"a": "x\x00y"}},
		"bad status phase": {Faults: Faults{StatusAt: map[string]int{"later": 300}}},
		"bad nonce":        {Faults: Faults{FixedNonce: `a"b`}},
		"realm comma":      {Realm: "a,b"},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := New(Config{Tunnels: []string{"v6v4", " v4v6"}, Auth: []string{"plain"}}); err != nil {
		t.Errorf("lower-case names: %v", err)
	}
}

func TestServeAfterClose(t *testing.T) {
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := s.ServeUDP(nil); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("ServeUDP after Close: %v", err)
	}
	if _, _, err := s.Start("127.0.0.1:0", ""); !errors.Is(err, ErrServerClosed) {
		t.Fatalf("Start after Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}
