package tsp

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func errorsIs(err, target error) bool { return errors.Is(err, target) }

// offBroker is a broker address off this host: the address policy applies
// in full.
var offBroker = netip.MustParseAddr("198.51.100.1")

// offerXML renders a gogo6-style offer (spec §5.1); extra is inserted in
// <client> before </client>.
func offerXML(typ TunnelType, extra string) string {
	return fmt.Sprintf("<tunnel action=\"info\" type=\"%s\" lifetime=\"604800\">\r\n"+
		" <server>\r\n  <address type=\"ipv4\">198.51.100.1</address>\r\n"+
		"  <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0001</address>\r\n </server>\r\n"+
		" <client>\r\n  <address type=\"ipv4\">203.0.113.7</address>\r\n"+
		"  <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0002</address>\r\n%s"+
		"  <keepalive interval=\"30\">\r\n   <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0001</address>\r\n  </keepalive>\r\n"+
		" </client>\r\n</tunnel>\r\n", typ, extra)
}

// offerReply frames a 200 reply body with Content-length counting the status line.
func offerReply(xml string) string {
	body := "200 Success\r\n" + xml
	return fmt.Sprintf("Content-length: %d\r\n%s", len(body), body)
}

func TestParseOfferRouter(t *testing.T) {
	x := offerXML(V6UDPV4, "  <address type=\"dn\">Alice.Broker.example.net</address>\r\n"+
		"  <dns_server><address type=\"ipv6\">2001:db8::53</address></dns_server>\r\n"+
		"  <router>\r\n   <prefix length=\"56\">2001:0db8:1234:5600:0000:0000:0000:0000</prefix>\r\n  </router>\r\n")
	o, err := ParseOffer([]byte(x), Request{Type: V6AnyV4, Router: true, PrefixLen: 56}, UDP, offBroker)
	if err != nil {
		t.Fatal(err)
	}
	want := Offer{
		Type: V6UDPV4, Lifetime: 604800 * time.Second,
		ServerV4: netip.MustParseAddr("198.51.100.1"), ServerV6: netip.MustParseAddr("2001:db8:0:1::1"),
		ClientV4: netip.MustParseAddr("203.0.113.7"), ClientV6: netip.MustParseAddr("2001:db8:0:1::2"),
		ClientDNSName: "alice.broker.example.net", DNSServers: []netip.Addr{netip.MustParseAddr("2001:db8::53")},
		Prefix:            netip.MustParsePrefix("2001:db8:1234:5600::/56"),
		KeepaliveInterval: 30 * time.Second, KeepaliveAddr: netip.MustParseAddr("2001:db8:0:1::1"),
	}
	if fmt.Sprint(*o) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", *o, want)
	}
}

func TestParseOfferNormalisesPrefix(t *testing.T) {
	x := offerXML(V6V4, "  <router><prefix length=\"48\">2001:0db8:1234:5678:0000:0000:0000:0001</prefix></router>\r\n")
	o, err := ParseOffer([]byte(x), Request{Type: V6V4, Router: true, PrefixLen: 48}, TCP, offBroker)
	if err != nil {
		t.Fatal(err)
	}
	if o.Prefix.String() != "2001:db8:1234::/48" {
		t.Fatalf("prefix %v", o.Prefix)
	}
}

func TestParseCapability(t *testing.T) {
	tests := []struct {
		in   string
		want Capability
	}{
		{"CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=DIGEST-MD5 AUTH=ANONYMOUS\r\n", CapV6V4 | CapV6UDPV4 | CapDigestMD5 | CapAnonymous},
		{"CAPABILITY TUNNEL=V6UDPV4 AUTH=PLAIN AUTH=DIGEST-MD5\r\n", CapV6UDPV4 | CapPlain | CapDigestMD5},
		{"CAPABILITY TUNNEL=V4V6 AUTH=passdss-3des-1\r\n", CapV4V6 | CapPassDSS},
		{"CAPABILITY TUNNEL=v6v4 AUTH=ANONYMOUS\r\n", CapAnonymous}, // tunnel values are case-sensitive
		{"CAPABILITY TUNNEL=V6V4 FOO=BAR AUTH=KERBEROS AUTH=ANONYMOUS", CapV6V4 | CapAnonymous},
		{"CAPABILITY \r\n", 0},
	}
	for _, tt := range tests {
		got, err := ParseCapability([]byte(tt.in))
		if err != nil || got != tt.want {
			t.Errorf("%q: got %v (%v), want %v", tt.in, got, err, tt.want)
		}
	}
	if _, err := ParseCapability([]byte("302 Unsupported client version\r\n")); !errors.Is(err, ErrUnsupportedVersion) {
		t.Errorf("302: %v", err)
	}
	if !(CapV6V4).Supports(V6AnyV4) || (CapV4V6).Supports(V6AnyV4) || !(CapV6UDPV4).Supports(V6UDPV4) {
		t.Error("Supports")
	}
}

func TestStatusErrors(t *testing.T) {
	for code, target := range map[int]error{
		300: ErrAuthFailed, 301: ErrNoMoreTunnels, 302: ErrUnsupportedVersion, 303: ErrUnsupportedTunnel,
		310: ErrServerError, 500: ErrInvalidRequest, 501: ErrInvalidAddress, 502: ErrInvalidAddress,
		506: ErrPrefixUnavailable, 507: ErrPrefixUnavailable, 518: ErrPrefixUnavailable, 520: ErrPrefixUnavailable,
		522: ErrPrefixUnavailable, 521: ErrServerBusy, 530: ErrServerBusy,
	} {
		err := checkStatus("test", []byte(fmt.Sprintf("%d Some text\r\n", code)))
		var st *StatusError
		if !errors.Is(err, target) || !errors.As(err, &st) || st.Code != code || !errors.Is(err, ErrStatus) {
			t.Errorf("%d: %v does not match %v", code, err, target)
		}
	}
	if err := checkStatus("test", []byte("200 Success\r\n")); err != nil {
		t.Error(err)
	}
	if err := checkStatus("test", []byte("599 What\r\n")); !errors.Is(err, ErrStatus) || errors.Is(err, ErrAuthFailed) {
		t.Errorf("unknown code: %v", err)
	}
}

func TestRedirectParse(t *testing.T) {
	msg := "1200 Redirect\r\n<tunnel action=\"info\">\r\n <broker>\r\n" +
		"  <address type=\"dn\">b1.example.net</address>\r\n" +
		"  <address type=\"ipv6\">2001:db8::20</address>\r\n" +
		"  <address type=\"ipv4\">198.51.100.20</address>\r\n" +
		"  <address type=\"ipv4\">198.51.100.21</address>\r\n </broker>\r\n</tunnel>\r\n"
	err := checkStatus("auth", []byte(msg))
	var rd *RedirectError
	if !errors.As(err, &rd) || !errors.Is(err, ErrRedirect) {
		t.Fatalf("got %v", err)
	}
	var got []string
	for _, b := range rd.Brokers {
		got = append(got, b.ServerString())
	}
	if strings.Join(got, " ") != "198.51.100.20 198.51.100.21 [2001:db8::20] b1.example.net" {
		t.Fatalf("order %v", got)
	}
}

func TestParseServer(t *testing.T) {
	good := map[string]string{
		"broker.example.net": "broker.example.net 3653", "1.2.3.4:3654": "1.2.3.4 3654",
		"[2001:db8::1]": "2001:db8::1 3653", "[2001:db8::1]:99": "2001:db8::1 99", "b:1": "b 1",
	}
	for in, want := range good {
		h, p, err := ParseServer(in)
		if err != nil || fmt.Sprintf("%s %d", h, p) != want {
			t.Errorf("%s: %s %d %v", in, h, p, err)
		}
	}
	for _, in := range []string{"", "2001:db8::1", "host:0", "host:65536", "host:x", "[::1", "[1.2.3.4]", "[::1]x", "a b", "host:"} {
		if _, _, err := ParseServer(in); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
	if _, _, err := ParseServer("2001:db8::1"); err == nil || !strings.Contains(err.Error(), "brackets") {
		t.Errorf("unbracketed v6 error lacks the hint: %v", err)
	}
}

const capUDP = "CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 TUNNEL=V4V6 AUTH=ANONYMOUS AUTH=DIGEST-MD5\r\n"

// hostileReply is one case of TestHostileReplies.
type hostileReply struct {
	name    string
	replies []string // after CAPABILITY and the 200 to ANONYMOUS unless auth is set
	auth    []string
	want    error
	text    string
	req     *Request // default: v6udpv4 with keepalive
	field   string   // the offer field the error must name
	offer   bool     // an offer that must be rejected on the wire
}

// hostile replies: each must give a specific error, never a panic or a hang.
func TestHostileReplies(t *testing.T) {
	ok := "200 Success\r\n"
	swap := func(old, new string) string { return strings.Replace(offerXML(V6UDPV4, ""), old, new, 1) }
	bigList := "1200 Redirect\r\n<tunnel action=\"info\"><broker>" +
		strings.Repeat("<address type=\"ipv4\">198.51.100.20</address>", 1000) + "</broker></tunnel>\r\n"
	base := []struct {
		name    string
		replies []string
		auth    []string
		want    error
		text    string
	}{
		{"oversized content-length", []string{"Content-length: 99999999\r\n200 Success\r\n"}, nil, ErrMalformed, "Content-length"},
		{"negative content-length", []string{"Content-length: -5\r\n200 Success\r\n"}, nil, ErrMalformed, "Content-length"},
		{"zero content-length", []string{"Content-length: 0\r\n"}, nil, ErrMalformed, "Content-length"},
		{"body longer than declared", []string{"Content-length: 5\r\n200 Success\r\n"}, nil, ErrMalformed, "exceeds"},
		{"no content-length", []string{"<tunnel/>"}, nil, ErrMalformed, "expected Content-length"},
		{"truncated XML", []string{offerReply(offerXML(V6UDPV4, "")[:200])}, nil, ErrMalformed, "XML"},
		{"wrong family server ipv4", []string{offerReply(swap("198.51.100.1", "2001:db8::9"))}, nil, ErrMalformed, "not of type ipv4"},
		{"ipv4 as client ipv6", []string{offerReply(swap("2001:0db8:0000:0001:0000:0000:0000:0002", "10.0.0.1"))}, nil, ErrMalformed, "not of type ipv6"},
		{"prefix length 129", []string{offerReply(offerXML(V6UDPV4, "<router><prefix length=\"129\">2001:db8::</prefix></router>"))}, nil, ErrMalformed, "out of range"},
		{"ipv4 prefix in v6 tunnel", []string{offerReply(offerXML(V6UDPV4, "<router><prefix length=\"24\">10.0.0.0</prefix></router>"))}, nil, ErrMalformed, "prefix"},
		{"interval without keepalive address", []string{offerReply(swap("   <address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0001</address>\r\n  </keepalive>", "</keepalive>"))}, nil, ErrMalformed, "without a keepalive address"},
		{"NUL in XML", []string{offerReply(swap("203.0.113.7", "203.0.\x00113.7"))}, nil, ErrMalformed, "NUL"},
		{"invalid UTF-8", []string{offerReply(swap("<client>", "<client>\xff\xfe"))}, nil, ErrMalformed, "UTF-8"},
		{"address with zone", []string{offerReply(swap("2001:0db8:0000:0001:0000:0000:0000:0002", "fe80::1%eth0"))}, nil, ErrMalformed, "zone"},
		{"missing client ipv6", []string{offerReply(swap("<address type=\"ipv6\">2001:0db8:0000:0001:0000:0000:0000:0002</address>", ""))}, nil, ErrMalformed, "no ipv6"},
		{"duplicate server ipv4", []string{offerReply(swap("<address type=\"ipv4\">198.51.100.1</address>", "<address type=\"ipv4\">198.51.100.1</address><address type=\"ipv4\">198.51.100.2</address>"))}, nil, ErrMalformed, "more than one"},
		{"unknown tunnel type", []string{offerReply(offerXML("v6gre", ""))}, nil, ErrMalformed, "unknown tunnel type"},
		{"action not info", []string{offerReply(strings.Replace(offerXML(V6UDPV4, ""), `"info"`, `"create"`, 1))}, nil, ErrMalformed, "action"},
		{"lifetime overflow", []string{offerReply(strings.Replace(offerXML(V6UDPV4, ""), "604800", "99999999999999999999", 1))}, nil, ErrMalformed, "lifetime"},
		{"negative lifetime", []string{offerReply(strings.Replace(offerXML(V6UDPV4, ""), "604800", "-1", 1))}, nil, ErrMalformed, "lifetime"},
		{"huge keepalive interval", []string{offerReply(strings.Replace(offerXML(V6UDPV4, ""), `interval="30"`, `interval="1000000"`, 1))}, nil, ErrMalformed, "interval"},
		{"deep nesting", []string{offerReply(offerXML(V6UDPV4, strings.Repeat("<a>", 50)+strings.Repeat("</a>", 50)))}, nil, ErrMalformed, "nested"},
		{"trailing garbage", []string{offerReply(offerXML(V6UDPV4, "") + "<tunnel/>")}, nil, ErrMalformed, "after </tunnel>"},
		{"garbage status", []string{"Content-length: 6\r\nhello\n"}, nil, ErrMalformed, "status line"},
		{"1000-entry broker list", []string{"Content-length: " + fmt.Sprint(len(bigList)) + "\r\n" + bigList}, nil, ErrMalformed, "more than 50"},
		{"empty redirect", []string{"Content-length: 15\r\n1200 Redirect\r\n"}, nil, ErrMalformed, "without a broker list"},
		{"unframed 310", []string{"310 Unsupported client tunnel\r\n"}, nil, ErrServerError, "310"},
		{"server busy at version", nil, []string{"530 Server too busy\r\n"}, ErrServerBusy, "530"},
		{"no common auth", nil, []string{"CAPABILITY TUNNEL=V6UDPV4 AUTH=PLAIN\r\n"}, ErrNoCommonAuth, "PLAIN"},
		{"tunnel type not offered", nil, []string{"CAPABILITY TUNNEL=V4V6 AUTH=ANONYMOUS\r\n"}, ErrTunnelModeUnavailable, "v6udpv4"},
		{"garbage capability", nil, []string{"HELLO\r\n"}, ErrMalformed, "status line"},
		{"auth failed", nil, []string{capUDP, "300 Authentication failed\r\n"}, ErrAuthFailed, "300"},
		{"status code too long", nil, []string{capUDP, "2000000 x\r\n"}, ErrMalformed, "out of range"},
		{"control chars in status", nil, []string{capUDP, "300 bad\x1b[2J\r\n"}, ErrMalformed, "printable"},
		{"offer on silent broker", []string{}, nil, ErrNoReply, "tunnel request"},
		{"continuation never comes", []string{"Content-length: 500\r\n200 Success\r\n"}, nil, ErrNoReply, "of 500 bytes"},
	}
	var tests []hostileReply
	for _, b := range base {
		tests = append(tests, hostileReply{name: b.name, replies: b.replies, auth: b.auth, want: b.want, text: b.text})
	}
	tests = append(tests, policyReplies()...)
	if len(tests) < 20 {
		t.Fatal("table too small")
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			replies := tt.auth
			if replies == nil {
				replies = append([]string{capUDP, ok}, tt.replies...)
			}
			tr := newScripted(UDP, replies...)
			req := Request{Type: V6UDPV4, Keepalive: true, KeepaliveInterval: 30}
			if tt.req != nil {
				req = *tt.req
			}
			s := &Session{T: tr, Creds: Credentials{Method: AuthAnonymous}, Request: req}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard
			defer cancel()
			o, err := s.Negotiate(ctx)
			if err == nil {
				t.Fatalf("accepted: %+v", o)
			}
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("got %v; want %v containing %q", err, tt.want, tt.text)
			}
			var pe *PolicyError
			if tt.field != "" && (!errors.As(err, &pe) || pe.Field != tt.field || !errors.Is(err, ErrUnsafeOffer) || !strings.Contains(err.Error(), tt.field)) {
				t.Fatalf("got %v; want a *PolicyError naming the field %q", err, tt.field)
			}
			if tt.offer {
				// A broken offer is declined on the wire (spec §5.4's
				// reject), so that the broker frees what it allocated.
				if last := tr.sent[len(tr.sent)-1]; string(last) != string(rejectMsg) {
					t.Fatalf("last message %q, want the reject", last)
				}
			}
		})
	}
}

func TestOfferMustFitRequest(t *testing.T) {
	tests := []struct {
		name    string
		req     Request
		offer   TunnelType
		network Network
		text    string
	}{
		{"v6udpv4 offer over TCP", Request{Type: V6AnyV4}, V6UDPV4, TCP, "TCP session"},
		{"v6v4 for v6udpv4", Request{Type: V6UDPV4}, V6V4, UDP, "offered v6v4"},
		{"router without prefix", Request{Type: V6AnyV4, Router: true, PrefixLen: 56}, V6V4, UDP, "no prefix"},
	}
	for _, tt := range tests {
		if _, err := ParseOffer([]byte(offerXML(tt.offer, "")), tt.req, tt.network, offBroker); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), tt.text) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// A refused offer is rejected on the wire so the broker frees it.
func TestRefusedOfferIsRejected(t *testing.T) {
	tr := newScripted(TCP, "CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=ANONYMOUS\r\n", "200 Success\r\n", offerReply(offerXML(V6UDPV4, "")))
	s := &Session{T: tr, Creds: Credentials{Method: AuthAnonymous}, Request: Request{Type: V6AnyV4}}
	if _, err := s.Negotiate(context.Background()); err == nil {
		t.Fatal("v6udpv4 over TCP accepted")
	}
	if last := tr.sent[len(tr.sent)-1]; string(last) != string(rejectMsg) {
		t.Fatalf("last message %q, want reject", last)
	}
}
