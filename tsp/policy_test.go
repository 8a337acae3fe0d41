package tsp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"testing"
	"time"
)

// The address policy's cases for TestHostileReplies: offers and redirects
// that parse, but whose values would let the broker reach beyond its
// tunnel (blackhole IPv6, point the tunnel or the LAN's DNS at the router
// itself, at link-local or multicast groups, or at addresses nobody owns).

const (
	kaServer = "  <keepalive interval=\"30\">\r\n   <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0001</address>"
	server6  = "2001:0db8:0000:0001:0000:0000:0000:0001"
	client6  = "2001:0db8:0000:0001:0000:0000:0000:0002"
)

// offerSwap is the default v6udpv4 offer with one value replaced (its
// first occurrence: the server's, for the IPv6 address the keepalive
// element repeats).
func offerSwap(old, new string) string {
	return strings.Replace(offerXML(V6UDPV4, ""), old, new, 1)
}

// offerV4V6 is a v4v6 offer (outer endpoints IPv6, inner and keepalive
// IPv4) with the server's outer address and the keepalive address given.
func offerV4V6(outer, keepalive string) string {
	return "<tunnel action=\"info\" type=\"v4v6\" lifetime=\"604800\">\r\n" +
		" <server>\r\n  <address type=\"ipv4\">198.18.0.1</address>\r\n  <address type=\"ipv6\">" + outer + "</address>\r\n </server>\r\n" +
		" <client>\r\n  <address type=\"ipv4\">198.18.0.2</address>\r\n  <address type=\"ipv6\">2001:db8:5::2</address>\r\n" +
		"  <keepalive interval=\"30\"><address type=\"ipv4\">" + keepalive + "</address></keepalive>\r\n" +
		" </client>\r\n</tunnel>\r\n"
}

func prefixOffer(addr string, length int) string {
	return offerXML(V6UDPV4, fmt.Sprintf("  <router><prefix length=\"%d\">%s</prefix></router>\r\n", length, addr))
}

func dnsOffer(typ, addr string) string {
	return offerXML(V6UDPV4, "  <dns_server><address type=\""+typ+"\">"+addr+"</address></dns_server>\r\n")
}

// redirectTunnel is a tunnel-phase redirect (inside Content-length) to one broker.
func redirectTunnel(typ, addr string) string {
	body := "1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"" + typ + "\">" + addr + "</address></broker></tunnel>\r\n"
	return fmt.Sprintf("Content-length: %d\r\n%s", len(body), body)
}

func policyReplies() []hostileReply {
	router56 := &Request{Type: V6UDPV4, Router: true, PrefixLen: 56}
	v4v6 := &Request{Type: V4V6, ClientV6: netip.MustParseAddr("2001:db8:5::2"), Keepalive: true, KeepaliveInterval: 30}
	offer := func(name, xml string, req *Request, field, text string) hostileReply {
		return hostileReply{name: name, replies: []string{offerReply(xml)}, want: ErrUnsafeOffer, text: text, req: req, field: field, offer: true}
	}
	redirect := func(name, typ, addr, text string) hostileReply {
		return hostileReply{name: name, replies: []string{redirectTunnel(typ, addr)}, want: ErrUnsafeOffer, text: text, field: FieldRedirect}
	}
	return []hostileReply{
		// The delegated prefix: global unicast, /16../64, not shorter than asked.
		offer("prefix 2000::/3 blackholes all IPv6", prefixOffer("2000::", 3), router56, FieldPrefix, "length"),
		offer("prefix ::/1", prefixOffer("0000:0000:0000:0000:0000:0000:0000:0000", 1), router56, FieldPrefix, "2000::/3"),
		offer("prefix ::/64", prefixOffer("::", 64), router56, FieldPrefix, "2000::/3"),
		offer("prefix fd00::/128", prefixOffer("fd00::", 128), router56, FieldPrefix, "2000::/3"),
		offer("ULA prefix fd00::/48", prefixOffer("fd00::", 48), router56, FieldPrefix, "2000::/3"),
		offer("prefix 4000::/48 beyond global unicast", prefixOffer("4000::", 48), router56, FieldPrefix, "2000::/3"),
		offer("prefix /15", prefixOffer("2000::", 15), router56, FieldPrefix, "length"),
		offer("prefix /65", prefixOffer("2001:db8:1234:5600::", 65), router56, FieldPrefix, "length"),
		offer("prefix shorter than requested", prefixOffer("2001:db8::", 48), router56, FieldPrefix, "shorter than the /56"),
		offer("prefix in a host offer", prefixOffer("fd00::", 48), nil, FieldPrefix, "2000::/3"),
		// Outer tunnel endpoints (IPv4 for v6udpv4).
		offer("server ipv4 loopback", offerSwap("198.51.100.1", "127.0.0.1"), nil, FieldServerV4, "loopback"),
		offer("server ipv4 loopback 127/8", offerSwap("198.51.100.1", "127.1.2.3"), nil, FieldServerV4, "loopback"),
		offer("server ipv4 in 0.0.0.0/8", offerSwap("198.51.100.1", "0.1.2.3"), nil, FieldServerV4, "0.0.0.0/8"),
		offer("server ipv4 unspecified", offerSwap("198.51.100.1", "0.0.0.0"), nil, FieldServerV4, "unspecified"),
		offer("server ipv4 link-local", offerSwap("198.51.100.1", "169.254.1.1"), nil, FieldServerV4, "link-local"),
		offer("server ipv4 multicast", offerSwap("198.51.100.1", "224.0.0.1"), nil, FieldServerV4, "multicast"),
		offer("server ipv4 limited broadcast", offerSwap("198.51.100.1", "255.255.255.255"), nil, FieldServerV4, "240.0.0.0/4"),
		offer("server ipv4 reserved", offerSwap("198.51.100.1", "240.0.0.1"), nil, FieldServerV4, "240.0.0.0/4"),
		offer("client ipv4 loopback", offerSwap("203.0.113.7", "127.0.0.1"), nil, FieldClientV4, "loopback"),
		offer("client ipv4 unspecified", offerSwap("203.0.113.7", "0.0.0.0"), nil, FieldClientV4, "unspecified"),
		// Outer endpoints of v4v6 are IPv6.
		offer("v4v6 server ipv6 loopback", offerV4V6("::1", "198.18.0.1"), v4v6, FieldServerV6, "loopback"),
		offer("v4v6 server ipv6 link-local", offerV4V6("fe80::1", "198.18.0.1"), v4v6, FieldServerV6, "link-local"),
		offer("v4v6 server ipv6 multicast", offerV4V6("ff05::2", "198.18.0.1"), v4v6, FieldServerV6, "multicast"),
		offer("v4v6 server ipv6 IPv4-mapped loopback", offerV4V6("::ffff:127.0.0.1", "198.18.0.1"), v4v6, FieldServerV6, "IPv4-mapped"),
		offer("v4v6 keepalive ipv4 loopback", offerV4V6("2001:db8:5::1", "127.0.0.1"), v4v6, FieldKeepalive, "loopback"),
		// Inner (tunnel) addresses get host routes and the interface address.
		offer("server ipv6 loopback", offerSwap(server6, "::1"), nil, FieldServerV6, "loopback"),
		offer("server ipv6 unspecified", offerSwap(server6, "::"), nil, FieldServerV6, "unspecified"),
		offer("server ipv6 IPv4-mapped", offerSwap(server6, "::ffff:127.0.0.1"), nil, FieldServerV6, "IPv4-mapped"),
		offer("server ipv6 IPv4-compatible", offerSwap(server6, "::127.0.0.1"), nil, FieldServerV6, "IPv4-compatible"),
		offer("client ipv6 link-local", offerSwap(client6, "fe80::2"), nil, FieldClientV6, "link-local"),
		offer("client ipv6 site-local", offerSwap(client6, "fec0::2"), nil, FieldClientV6, "site-local"),
		offer("multicast client address", offerSwap(client6, "ff02::1"), nil, FieldClientV6, "multicast"),
		// The keepalive address gets a host route into the tunnel.
		offer("keepalive loopback", offerSwap(kaServer, strings.Replace(kaServer, server6, "::1", 1)), nil, FieldKeepalive, "loopback"),
		offer("keepalive link-local", offerSwap(kaServer, strings.Replace(kaServer, server6, "fe80::1", 1)), nil, FieldKeepalive, "link-local"),
		offer("keepalive multicast", offerSwap(kaServer, strings.Replace(kaServer, server6, "ff02::1", 1)), nil, FieldKeepalive, "multicast"),
		offer("keepalive unspecified", offerSwap(kaServer, strings.Replace(kaServer, server6, "::", 1)), nil, FieldKeepalive, "unspecified"),
		// DNS servers reach the LAN's hosts in RAs.
		offer("dns_server loopback", dnsOffer("ipv6", "::1"), nil, FieldDNSServer, "loopback"),
		offer("dns_server link-local", dnsOffer("ipv6", "fe80::53"), nil, FieldDNSServer, "link-local"),
		offer("dns_server multicast", dnsOffer("ipv6", "ff02::fb"), nil, FieldDNSServer, "multicast"),
		offer("dns_server ipv4 loopback", dnsOffer("ipv4", "127.0.0.53"), nil, FieldDNSServer, "loopback"),
		offer("dns_server ipv4 this network", dnsOffer("ipv4", "0.0.0.53"), nil, FieldDNSServer, "0.0.0.0/8"),
		// Redirect targets.
		redirect("redirect to loopback", "ipv4", "127.0.0.1", "loopback"),
		redirect("redirect to ipv6 loopback", "ipv6", "::1", "loopback"),
		redirect("redirect to link-local", "ipv6", "fe80::1", "link-local"),
		redirect("redirect to 0.0.0.0/8", "ipv4", "0.0.0.1", "0.0.0.0/8"),
		redirect("redirect to multicast", "ipv4", "239.1.1.1", "multicast"),
		redirect("redirect to IPv4-mapped", "ipv6", "::ffff:10.0.0.1", "IPv4-mapped"),
		redirect("redirect to broadcast", "ipv4", "255.255.255.255", "240.0.0.0/4"),
		{name: "redirect to loopback at version", auth: []string{"1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"ipv4\">127.0.0.2</address></broker></tunnel>\r\n"},
			want: ErrUnsafeOffer, text: "loopback", field: FieldRedirect},
	}
}

// Ordinary offers pass: private and CGNAT endpoints, ULA tunnel addresses,
// a longer prefix than asked for, the edges of the prefix range.
func TestPolicyAcceptsOrdinaryOffers(t *testing.T) {
	router56 := Request{Type: V6UDPV4, Router: true, PrefixLen: 56}
	for name, x := range map[string]string{
		"private server ipv4":  offerSwap("198.51.100.1", "10.1.2.3"),
		"CGNAT client ipv4":    offerSwap("203.0.113.7", "100.64.0.7"),
		"ULA inner addresses":  strings.NewReplacer(server6, "fd00::1", client6, "fd00::2").Replace(offerXML(V6UDPV4, "")),
		"prefix /64 for a /56": prefixOffer("2001:db8:1234:5600::", 64),
		"prefix /56":           prefixOffer("2001:db8:1234:5600::", 56),
		"ipv4 dns server":      dnsOffer("ipv4", "192.0.2.53"),
		"global dns server":    dnsOffer("ipv6", "2001:db8::53"),
		"prefix in 3fff::/20":  prefixOffer("3fff:0fff:ff00::", 56),
	} {
		req := Request{Type: V6UDPV4}
		if strings.Contains(name, "prefix") {
			req = router56
		}
		if _, err := ParseOffer([]byte(x), req, UDP, offBroker); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, bits := range []int{16, 64} {
		req := Request{Type: V6UDPV4, Router: true, PrefixLen: bits}
		if _, err := ParseOffer([]byte(prefixOffer("2001::", bits)), req, UDP, offBroker); err != nil {
			t.Errorf("/%d: %v", bits, err)
		}
	}
}

// A broker reached at a loopback address runs on this host: its tunnel
// endpoints and redirect targets may be loopback addresses (the test
// broker on 127.0.0.1 depends on it), nothing else it sends may.
func TestPolicySameHostBroker(t *testing.T) {
	local := netip.MustParseAddr("127.0.0.1")
	for _, b := range []netip.Addr{local, netip.MustParseAddr("::1"), netip.MustParseAddr("::ffff:127.0.0.1")} {
		x := strings.NewReplacer("198.51.100.1", "127.0.0.1", "203.0.113.7", "127.0.0.1").Replace(offerXML(V6UDPV4, ""))
		if _, err := ParseOffer([]byte(x), Request{Type: V6UDPV4}, UDP, b); err != nil {
			t.Errorf("broker %s: loopback endpoints refused: %v", b, err)
		}
		if _, err := ParseOffer([]byte(offerV4V6("::1", "198.18.0.1")), Request{Type: V4V6}, UDP, b); err != nil {
			t.Errorf("broker %s: v4v6 loopback endpoint refused: %v", b, err)
		}
	}
	for name, tc := range map[string]struct{ xml, field string }{
		"inner ::1":          {offerSwap(server6, "::1"), FieldServerV6},
		"keepalive ::1":      {offerSwap(kaServer, strings.Replace(kaServer, server6, "::1", 1)), FieldKeepalive},
		"dns ::1":            {dnsOffer("ipv6", "::1"), FieldDNSServer},
		"v4v6 inner 127/8":   {strings.Replace(offerV4V6("::1", "198.18.0.1"), "198.18.0.2", "127.0.0.2", 1), FieldClientV4},
		"v4v6 keepalive 127": {offerV4V6("::1", "127.0.0.1"), FieldKeepalive},
		"mapped endpoint":    {offerSwap("198.51.100.1", "::ffff:127.0.0.1"), ""},
	} {
		req := Request{Type: V6UDPV4}
		if strings.HasPrefix(name, "v4v6") {
			req = Request{Type: V4V6}
		}
		_, err := ParseOffer([]byte(tc.xml), req, UDP, local)
		var pe *PolicyError
		switch {
		case err == nil:
			t.Errorf("%s accepted from a local broker", name)
		case tc.field != "" && (!errors.As(err, &pe) || pe.Field != tc.field):
			t.Errorf("%s: %v, want a policy error for %s", name, err, tc.field)
		}
	}

	// Redirects: a local broker may send the client to another local one.
	redir := "1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"ipv4\">127.0.0.2</address></broker></tunnel>\r\n"
	tr := newScripted(UDP, redir)
	tr.remote = netip.MustParseAddrPort("127.0.0.1:3653")
	s := &Session{T: tr, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6UDPV4}}
	var rd *RedirectError
	if _, err := s.Negotiate(context.Background()); !errors.As(err, &rd) || rd.Brokers[0].Address != "127.0.0.2" {
		t.Fatalf("local broker's redirect to 127.0.0.2: %v", err)
	}
}

// A redirect target given by name is checked once resolved: the name of a
// far broker's redirect must not lead to this host.
func TestRedirectNameResolvingToLoopback(t *testing.T) {
	redirect := func(string) []string {
		return []string{"1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"dn\">sneaky.example</address></broker></tunnel>\r\n"}
	}
	for _, tc := range []struct {
		name       string
		from       string // the redirecting broker's address
		wantRefuse bool
	}{
		{"far broker", "198.51.100.1:3653", true},
		{"local broker", "127.0.0.1:3653", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var target *scripted
			dial := func(_ context.Context, server string, network Network) (Transport, error) {
				if server == "b" {
					tr := newScripted(network, redirect("")...)
					tr.remote = netip.MustParseAddrPort(tc.from)
					return tr, nil
				}
				// sneaky.example resolves to this host.
				target = newScripted(network, anonCap, "200 Success\r\n", offerReply(strings.NewReplacer("198.51.100.1", "127.0.0.1").Replace(offerXML(V6UDPV4, ""))))
				target.remote = netip.MustParseAddrPort("127.0.0.1:3653")
				return target, nil
			}
			n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6UDPV4}}
			res, err := n.Negotiate(context.Background(), "b")
			if !tc.wantRefuse {
				if err != nil {
					t.Fatal(err)
				}
				res.Session.T.Close()
				return
			}
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Field != FieldRedirect || !strings.Contains(err.Error(), "sneaky.example") || !strings.Contains(err.Error(), "loopback") {
				t.Fatalf("got %v, want the redirect target refused as loopback", err)
			}
			if target == nil || !target.closed || len(target.sent) != 0 {
				t.Fatalf("the refused target was sent %d messages (closed %v)", len(target.sent), target != nil && target.closed)
			}
		})
	}
}

// nameResolver maps names to addresses, so a test's redirect target can
// lead anywhere without a DNS server.
type nameResolver map[string][]netip.Addr

func (r nameResolver) LookupNetIP(_ context.Context, network, host string) ([]netip.Addr, error) {
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

// uniqueLoopback is a loopback address of this process's own, so that a
// listener on the fixed TSP port collides with no other test process.
func uniqueLoopback() netip.Addr {
	p := os.Getpid()
	return netip.AddrFrom4([4]byte{127, byte(50 + p%50), byte(p / 50 % 250), 9})
}

// A redirect target given by name is resolved and checked before any
// socket connects: a far broker's redirect to a name that leads to this
// host must not even open a TCP connection there (a SYN to an internal
// service is already a probe of it).
func TestRedirectNameCheckedBeforeConnect(t *testing.T) {
	inside := uniqueLoopback()
	ln, err := net.Listen("tcp", netip.AddrPortFrom(inside, defaultPort).String())
	if err != nil {
		t.Skipf("cannot listen on %v: %v", inside, err)
	}
	defer ln.Close()
	pc, err := net.ListenPacket("udp", netip.AddrPortFrom(inside, defaultPort).String())
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()

	redirect := "1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"dn\">inside.example</address></broker></tunnel>\r\n"
	nd := &NetDialer{Resolver: nameResolver{"inside.example": {inside}}, Timeout: 2 * time.Second}
	dial := func(ctx context.Context, server string, network Network) (Transport, error) {
		if server == "far.example" { // a broker on another host (198.51.100.1)
			return newScripted(network, redirect), nil
		}
		return nd.Dial(ctx, server, network)
	}
	n := &Negotiator{Dial: dial, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6V4}, TCPAtOnce: true}
	_, err = n.Negotiate(context.Background(), "far.example")
	var pe *PolicyError
	if !errors.As(err, &pe) || pe.Field != FieldRedirect || !strings.Contains(err.Error(), "inside.example") {
		t.Errorf("got %v, want the redirect target refused by the policy", err)
	}
	// Whatever reached the listeners is queued there by now.
	_ = ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("a TCP connection reached the internal address the redirect's name led to")
	}
	_ = pc.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if n, _, err := pc.ReadFrom(make([]byte, 512)); err == nil {
		t.Errorf("a %d-byte datagram reached the internal address the redirect's name led to", n)
	}
}
