package testbroker

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"
)

func TestOfferExactBytesAnonymous(t *testing.T) {
	s, udp, _ := startServer(t, testConfig())
	c := dialUDP(t, udp)
	// §4.3's first example, but declaring the address the server sees.
	req := createMsg("v6anyv4", "127.0.0.1", 30, -1)
	if !strings.HasPrefix(req, "Content-length: 214\r\n") { // 215 with 192.0.2.10
		t.Fatalf("request framing %q", req[:24])
	}
	port := c.local().Port()
	body := "200 Success\r\n" +
		"<tunnel action=\"info\" type=\"v6v4\" lifetime=\"604800\">\r\n" +
		" <server>\r\n" +
		"  <address type=\"ipv4\">127.0.0.1</address>\r\n" +
		"  <address type=\"ipv6\">2001:0db8:00ab:0000:0000:0000:0000:0001</address>\r\n" +
		" </server>\r\n" +
		" <client>\r\n" +
		"  <address type=\"ipv4\">127.0.0.1</address>\r\n" +
		fmt.Sprintf("  <address type=\"ipv6\">2001:0db8:00ab:0000:ffff:7f00:0001:%04x</address>\r\n", port) +
		"  <keepalive interval=\"30\">\r\n" +
		"   <address type=\"ipv6\">2001:0db8:00ab:0000:0000:0000:0000:0001</address>\r\n" +
		"  </keepalive>\r\n" +
		" </client>\r\n" +
		"</tunnel>\r\n"
	got := anonUDP(t, c, req)
	if got != body {
		t.Fatalf("offer:\n%q\nwant:\n%q", got, body)
	}
	if ack := c.x(msgAccept); ack != "" {
		t.Fatalf("accept ack %q", ack)
	}
	ss := s.Sessions()
	if len(ss) != 1 || ss[0].Type != "v6v4" || ss[0].Requested != "v6anyv4" || ss[0].NAT {
		t.Fatalf("sessions %+v", ss)
	}
}

func TestOfferExactBytesRouter(t *testing.T) {
	cfg := testConfig()
	cfg.ClientDomain = "broker.example.net"
	cfg.DNSServers = []netip.Addr{netip.MustParseAddr("2001:db8::53")}
	cfg.MTU = 1280
	cfg.ServerV4 = netip.MustParseAddr("198.51.100.1")
	_, _, tcp := startServer(t, cfg)
	c := dialTCP(t, tcp)
	c.x(msgVersion)
	c.write(msgPlain + plainCreds("alice", "secret"))
	c.line()
	c.write(createMsg("v6v4", "127.0.0.1", 30, 56))
	want := "200 Success\r\n" +
		"<tunnel action=\"info\" type=\"v6v4\" lifetime=\"604800\" mtu=\"1280\">\r\n" +
		" <server>\r\n" +
		"  <address type=\"ipv4\">198.51.100.1</address>\r\n" +
		"  <address type=\"ipv6\">2001:0db8:00ab:0000:0000:0000:0000:0001</address>\r\n" +
		" </server>\r\n" +
		" <client>\r\n" +
		"  <address type=\"ipv4\">127.0.0.1</address>\r\n" +
		"  <address type=\"ipv6\">2001:0db8:00ab:0000:0000:0000:0000:0002</address>\r\n" +
		"  <address type=\"dn\">alice.broker.example.net</address>\r\n" +
		"  <dns_server>\r\n" +
		"   <address type=\"ipv6\">2001:0db8:0000:0000:0000:0000:0000:0053</address>\r\n" +
		"  </dns_server>\r\n" +
		"  <router>\r\n" +
		"   <prefix length=\"56\">2001:0db8:8000:0000:0000:0000:0000:0000</prefix>\r\n" +
		"  </router>\r\n" +
		"  <keepalive interval=\"30\">\r\n" +
		"   <address type=\"ipv6\">2001:0db8:00ab:0000:0000:0000:0000:0001</address>\r\n" +
		"  </keepalive>\r\n" +
		" </client>\r\n" +
		"</tunnel>\r\n"
	if got := c.framed(); got != want {
		t.Fatalf("offer:\n%s\nwant:\n%s", got, want)
	}
}

func TestV6AnyV4NATDetection(t *testing.T) {
	for _, tc := range []struct {
		name     string
		tunnels  []string
		tcp      bool
		declared string
		want     string // type, or a status line
	}{
		{"udp no NAT", nil, false, "127.0.0.1", "v6v4"},
		{"udp NAT", nil, false, "192.0.2.10", "v6udpv4"},
		{"tcp NAT", nil, true, "192.0.2.10", "v6v4"},
		{"udp NAT no v6udpv4", []string{"V6V4"}, false, "192.0.2.10", "v6v4"},
		{"udp no NAT only v6udpv4", []string{"V6UDPV4"}, false, "127.0.0.1", "v6udpv4"},
		{"tcp only v6udpv4", []string{"V6UDPV4"}, true, "127.0.0.1", "303 Unsupported tunnel type\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := testConfig()
			cfg.Tunnels = tc.tunnels
			s, udp, tcp := startServer(t, cfg)
			req := createMsg("v6anyv4", tc.declared, 30, -1)
			var offer string
			if tc.tcp {
				c := dialTCP(t, tcp)
				c.x(msgVersion)
				c.x(msgAnonymous)
				c.write(req)
				offer = c.framed()
			} else {
				offer = anonUDP(t, dialUDP(t, udp), req)
			}
			if strings.HasSuffix(tc.want, "\r\n") {
				if offer != tc.want {
					t.Fatalf("got %q want %q", offer, tc.want)
				}
				return
			}
			if !strings.Contains(offer, `type="`+tc.want+`"`) {
				t.Fatalf("want %s:\n%s", tc.want, offer)
			}
			// The offer's client IPv4 is what the server saw, not what was declared.
			if got := offerField(t, offer, "<client>", `<address type="ipv4">`); got != "127.0.0.1" {
				t.Fatalf("client ipv4 %s", got)
			}
			_ = s
		})
	}
}

func TestRequestRefusals(t *testing.T) {
	x := createXML("v6v4", "127.0.0.1", 30, -1)
	for _, tc := range []struct {
		name, req, want string
		plain           bool
	}{
		{"length too short", fmt.Sprintf("Content-length: %d\r\n%s", len(x)-1, x), "500", false},
		{"length too long", fmt.Sprintf("Content-length: %d\r\n%s", len(x)+1, x), "500", false},
		{"no header", x, "500", false},
		{"bad xml", "Content-length: 9\r\n<tunnel>\r\n", "500", false},
		{"trailing junk", frame(x + "<x/>"), "500", false},
		{"action", frame(strings.Replace(x, `"create"`, `"update"`, 1)), "500", false},
		{"type", frame(strings.Replace(x, `"v6v4"`, `"dslite"`, 1)), "303", false},
		{"bad ipv4", createMsg("v6v4", "192.0.2.300", 30, -1), "501", false},
		{"ipv6 as ipv4", createMsg("v6v4", "2001:db8::1", 30, -1), "501", false},
		{"proxy udp", frame(strings.Replace(createXML("v6udpv4", "127.0.0.1", -1, -1), `proxy="no"`, `proxy="yes"`, 1)), "310", false},
		{"v4v6 over ipv4", createMsg("v4v6", "2001:db8::2", 30, -1), "303", false},
		{"anonymous router", createMsg("v6v4", "127.0.0.1", 30, 56), "522", false},
		{"prefix too short", createMsg("v6v4", "127.0.0.1", 30, 40), "518", true},
		{"prefix too long", createMsg("v6v4", "127.0.0.1", 30, 65), "518", true},
		{"prefix not a number", frame(strings.Replace(createXML("v6v4", "127.0.0.1", 30, 56), `"56"`, `"x"`, 1)), "518", true},
		{"prefix without length", frame(strings.Replace(createXML("v6v4", "127.0.0.1", 30, 56), ` length="56"`, ``, 1)), "520", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig()
			cfg.Tunnels = []string{"V6V4", "V6UDPV4", "V4V6"}
			_, udp, _ := startServer(t, cfg)
			c := dialUDP(t, udp)
			c.x(msgVersion)
			if tc.plain {
				c.x(msgPlain)
				c.x(plainCreds("alice", "secret"))
			} else {
				c.x(msgAnonymous)
			}
			body := mustFramed(t, c.x(tc.req))
			if !strings.HasPrefix(body, tc.want+" ") || !strings.HasSuffix(body, "\r\n") || strings.Count(body, "\n") != 1 {
				t.Fatalf("got %q, want status %s", body, tc.want)
			}
			c.expectOver(msgAccept)
		})
	}
}

func frame(x string) string { return fmt.Sprintf("Content-length: %d\r\n%s", len(x), x) }

func TestPrefixDelegation(t *testing.T) {
	cfg := Config{Users: map[string]string{"alice": "a", "bob": "b", "carol": "c"}}
	s, udp, _ := startServer(t, cfg)
	get := func(user string, length int) netip.Prefix {
		t.Helper()
		c := dialUDP(t, udp)
		c.x(msgVersion)
		c.x(msgPlain)
		if got := c.x(plainCreds(user, cfg.Users[user])); got != okLine {
			t.Fatalf("auth %q", got)
		}
		offer := mustFramed(t, c.x(createMsg("v6anyv4", "127.0.0.1", 30, length)))
		if !strings.Contains(offer, fmt.Sprintf(`<prefix length="%d">`, length)) {
			t.Fatalf("offer:\n%s", offer)
		}
		text := offerField(t, offer, "<router>", fmt.Sprintf(`<prefix length="%d">`, length))
		if len(text) != 39 {
			t.Fatalf("prefix %q is not fully expanded", text)
		}
		c.x(msgAccept)
		p := netip.PrefixFrom(netip.MustParseAddr(text), length)
		if p != p.Masked() {
			t.Fatalf("prefix %s has host bits", p)
		}
		ss := s.Sessions()
		if ss[len(ss)-1].Prefix != p {
			t.Fatalf("session prefix %v, offer %v", ss[len(ss)-1].Prefix, p)
		}
		return p
	}
	pool := netip.MustParsePrefix("2001:db8:8000::/33")
	got := map[string]netip.Prefix{
		"alice/48": get("alice", 48),
		"bob/56":   get("bob", 56),
		"carol/64": get("carol", 64),
		"bob/64":   get("bob", 64),
		"alice/56": get("alice", 56),
	}
	for k1, p1 := range got {
		if !pool.Contains(p1.Addr()) || p1.Bits() < pool.Bits() {
			t.Errorf("%s %s outside the pool", k1, p1)
		}
		for k2, p2 := range got {
			if k1 != k2 && p1.Overlaps(p2) {
				t.Errorf("%s %s overlaps %s %s", k1, p1, k2, p2)
			}
		}
	}
	// Stable per user and length.
	if p := get("alice", 48); p != got["alice/48"] {
		t.Errorf("alice/48 again: %s, first %s", p, got["alice/48"])
	}
	if p := get("bob", 56); p != got["bob/56"] {
		t.Errorf("bob/56 again: %s, first %s", p, got["bob/56"])
	}
}

func TestClientAddresses(t *testing.T) {
	s, udp, _ := startServer(t, testConfig())
	v6 := func(c *udpClient, plain bool) string {
		c.x(msgVersion)
		if plain {
			c.x(msgPlain)
			c.x(plainCreds("alice", "secret"))
		} else {
			c.x(msgAnonymous)
		}
		return offerField(t, mustFramed(t, c.x(createMsg("v6v4", "127.0.0.1", 30, -1))), "<client>", `<address type="ipv6">`)
	}
	a1, a2 := v6(dialUDP(t, udp), true), v6(dialUDP(t, udp), true)
	if a1 != a2 || a1 != "2001:0db8:00ab:0000:0000:0000:0000:0002" {
		t.Errorf("alice: %s then %s, want the same stable address", a1, a2)
	}
	c3, c4 := dialUDP(t, udp), dialUDP(t, udp)
	n1, n2 := v6(c3, false), v6(c4, false)
	if n1 == n2 {
		t.Errorf("two anonymous clients share %s", n1)
	}
	// tsps's derivation: bits 64..79 set, then source IPv4 and port.
	want := fmt.Sprintf("2001:0db8:00ab:0000:ffff:7f00:0001:%04x", c3.local().Port())
	if n1 != want {
		t.Errorf("anonymous %s, want %s", n1, want)
	}
	_ = s
}

func TestAllocatorFallbacks(t *testing.T) {
	a := newAllocator(netip.MustParsePrefix("2001:db8::/96"), netip.MustParsePrefix("10.0.0.0/30"), netip.MustParsePrefix("2001:db8:1::/48"))
	src := netip.MustParseAddrPort("[2001:db8:ff::1]:1000")
	x, err1 := a.clientV6("", src, TransportUDP)
	y, err2 := a.clientV6("", netip.MustParseAddrPort("192.0.2.1:1000"), TransportUDP)
	if err1 != nil || err2 != nil || x == y || !a.pool6.Contains(x) || !a.pool6.Contains(y) {
		t.Fatalf("fallback addresses %s %s %v %v", x, y, err1, err2)
	}
	// A /30 holds exactly one client after network, server and broadcast.
	if v, err := a.clientV4("u", src); err != nil || v != netip.MustParseAddr("10.0.0.2") {
		t.Fatalf("first v4 %s %v", v, err)
	}
	if _, err := a.clientV4("v", src); err == nil {
		t.Fatal("second v4 from a /30 allowed")
	}
	if p, err := a.delegate("u", 48); err != nil || p != netip.MustParsePrefix("2001:db8:1::/48") {
		t.Fatalf("whole pool %s %v", p, err)
	}
	if _, err := a.delegate("v", 64); err == nil {
		t.Fatal("allocation from an exhausted pool")
	}
}

func TestKeepaliveModes(t *testing.T) {
	for _, tc := range []struct {
		force, asked int
		want         string // interval attribute, or "" for none
	}{
		{0, 30, "30"}, {0, 2, "5"}, {0, -1, ""}, {10, -1, "10"}, {10, 30, "10"}, {-1, 30, ""},
	} {
		t.Run(fmt.Sprintf("force=%d asked=%d", tc.force, tc.asked), func(t *testing.T) {
			cfg := testConfig()
			cfg.KeepaliveInterval = tc.force
			_, udp, _ := startServer(t, cfg)
			offer := anonUDP(t, dialUDP(t, udp), createMsg("v6v4", "127.0.0.1", tc.asked, -1))
			has := strings.Contains(offer, "<keepalive")
			if tc.want == "" && has || tc.want != "" && !strings.Contains(offer, `<keepalive interval="`+tc.want+`">`) {
				t.Fatalf("offer:\n%s", offer)
			}
		})
	}
}

func TestV4V6(t *testing.T) {
	probe, err := net.ListenPacket("udp", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	probe.Close()
	cfg := testConfig()
	cfg.Tunnels = []string{"V4V6"}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	udp, tcp, err := s.Start("[::1]:0", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	c := dialUDP(t, udp)
	offer := anonUDP(t, c, createMsg("v4v6", "::1", 30, -1))
	for _, want := range []string{
		`type="v4v6"`,
		" <server>\r\n  <address type=\"ipv4\">198.18.0.1</address>\r\n  <address type=\"ipv6\">0000:0000:0000:0000:0000:0000:0000:0001</address>",
		" <client>\r\n  <address type=\"ipv4\">198.18.0.2</address>\r\n  <address type=\"ipv6\">0000:0000:0000:0000:0000:0000:0000:0001</address>",
		"<keepalive interval=\"30\">\r\n   <address type=\"ipv4\">198.18.0.1</address>",
	} {
		if !strings.Contains(offer, want) {
			t.Fatalf("offer lacks %q:\n%s", want, offer)
		}
	}
	// A router request for v4v6 is refused; so is v6v4 when not offered.
	tc := dialTCP(t, tcp)
	tc.x(msgVersion)
	tc.x(msgAnonymous)
	tc.write(createMsg("v6v4", "127.0.0.1", 30, -1))
	if got := tc.framed(); got != "303 Unsupported tunnel type\r\n" {
		t.Fatalf("v6v4: %q", got)
	}
}

func TestVersions(t *testing.T) {
	cfg := testConfig()
	cfg.Versions = []string{"2.0.0", "1.0.1"}
	s, udp, tcp := startServer(t, cfg)
	for v, want := range map[string]string{
		"2.0.2": "302 Unsupported client version\r\n",
		"2.0.1": "302 Unsupported client version\r\n",
		"1.0.1": "302 Unsupported client version\r\n", // TCP only
		"2.0.0": "CAPABILITY ",
	} {
		if got := dialUDP(t, udp).x("VERSION=" + v + "\r\n"); !strings.HasPrefix(got, want) {
			t.Errorf("udp %s: %q", v, got)
		}
	}
	for _, bad := range []string{"VERSION=2.0.0", "HELLO\r\n", "version=2.0.0\r\n\r\n"} {
		if got := dialUDP(t, udp).x(bad); got != "500 Invalid request\r\n" {
			t.Errorf("%q: %q", bad, got)
		}
	}
	// 1.0.1 over TCP: no accept; the session is up once the offer is out.
	c := dialTCP(t, tcp)
	if got := c.x("VERSION=1.0.1\r\n"); !strings.HasPrefix(got, "CAPABILITY ") {
		t.Fatalf("tcp 1.0.1: %q", got)
	}
	c.x(msgAnonymous)
	c.write(createMsg("v6v4", "127.0.0.1", 30, -1))
	c.framed()
	waitFor(t, "1.0.1 session", func() bool { return len(s.Sessions()) == 1 })
	if ss := s.Sessions(); ss[0].Version != "1.0.1" {
		t.Fatalf("sessions %+v", ss)
	}
}

func TestAcceptReject(t *testing.T) {
	s, udp, tcp := startServer(t, testConfig())
	c := dialUDP(t, udp)
	anonUDP(t, c, createMsg("v6v4", "127.0.0.1", 30, -1))
	reject := frame(`<tunnel action="reject"></tunnel>` + "\r\n")
	if got := c.x(reject); got != "" {
		t.Fatalf("reject ack %q", got)
	}
	c.expectOver(msgAccept)

	tc := dialTCP(t, tcp)
	tc.x(msgVersion)
	tc.x(msgAnonymous)
	tc.write(createMsg("v6v4", "127.0.0.1", 30, -1))
	tc.framed()
	tc.write(reject)
	tc.expectEOF()
	if n := len(s.Sessions()); n != 0 {
		t.Fatalf("%d sessions after rejects", n)
	}
	if st := s.Stats(); st.Established != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestAllocatorSamePortBothTransports: a UDP and a TCP client on the same
// IPv4 and port number would derive the same anonymous address; the second
// gets another one, and each keeps its own across reconnects.
func TestAllocatorSamePortBothTransports(t *testing.T) {
	a := newAllocator(netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("10.0.0.0/24"), netip.MustParsePrefix("2001:db8:1::/40"))
	src := netip.MustParseAddrPort("192.0.2.7:4000")
	u, err1 := a.clientV6("", src, TransportUDP)
	tc, err2 := a.clientV6("", src, TransportTCP)
	if err1 != nil || err2 != nil || u == tc {
		t.Fatalf("udp %s tcp %s (%v %v): want two different addresses", u, tc, err1, err2)
	}
	if want, _ := deriveAnon(a.pool6, src); u != want {
		t.Errorf("udp got %s, want the derived %s", u, want)
	}
	u2, _ := a.clientV6("", src, TransportUDP)
	tc2, _ := a.clientV6("", src, TransportTCP)
	if u2 != u || tc2 != tc {
		t.Errorf("second round udp %s tcp %s, want %s %s", u2, tc2, u, tc)
	}
}
