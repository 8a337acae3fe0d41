package tsp

import (
	"context"
	"encoding/base64"
	"net/netip"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/secret"
)

// Spec §4.3: exact bytes of the three example requests.
func TestRequestGolden(t *testing.T) {
	client := netip.MustParseAddr("192.0.2.10")
	crlf := func(lines ...string) string { return strings.Join(lines, "\r\n") + "\r\n" }
	tests := []struct {
		name string
		req  Request
		want string
	}{
		{"host v6anyv4", Request{Type: V6AnyV4, Keepalive: true, KeepaliveInterval: 30}, crlf(
			"Content-length: 215",
			`<tunnel action="create" type="v6anyv4" proxy="no">`,
			` <client>`,
			`  <address type="ipv4">192.0.2.10</address>`,
			`  <keepalive interval="30">`,
			`    <address type="ipv6">::</address>`,
			`  </keepalive>`,
			` </client>`,
			`</tunnel>`)},
		{"router /56 with dns", Request{Type: V6AnyV4, Keepalive: true, KeepaliveInterval: 30, Router: true, PrefixLen: 56,
			DNSServers: []string{"ns1.example.net", "ns2.example.net"}}, crlf(
			"Content-length: 403",
			`<tunnel action="create" type="v6anyv4" proxy="no">`,
			` <client>`,
			`  <address type="ipv4">192.0.2.10</address>`,
			`  <keepalive interval="30">`,
			`    <address type="ipv6">::</address>`,
			`  </keepalive>`,
			`  <router>`,
			`   <prefix length="56"/>`,
			`   <dns_server>`,
			`     <address type="dn">ns1.example.net</address>`,
			`     <address type="dn">ns2.example.net</address>`,
			`   </dns_server>`,
			`  </router>`,
			` </client>`,
			`</tunnel>`)},
		{"v6v4 no keepalive", Request{Type: V6V4}, crlf(
			"Content-length: 128",
			`<tunnel action="create" type="v6v4" proxy="no">`,
			` <client>`,
			`  <address type="ipv4">192.0.2.10</address>`,
			` </client>`,
			`</tunnel>`)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := MarshalRequest(tt.req, client)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tt.want {
				t.Errorf("got\n%q\nwant\n%q", got, tt.want)
			}
		})
	}
}

func TestRequestV4V6(t *testing.T) {
	got, err := MarshalRequest(Request{Type: V4V6, Keepalive: true, KeepaliveInterval: 30}, netip.MustParseAddr("2001:db8::10"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`type="v4v6"`, `<address type="ipv6">2001:db8::10</address>`, `<address type="ipv4">127.0.0.1</address>`} {
		if !strings.Contains(string(got), want) {
			t.Errorf("v4v6 request lacks %s:\n%s", want, got)
		}
	}
}

func TestRequestRefusals(t *testing.T) {
	v4 := netip.MustParseAddr("192.0.2.10")
	for name, tc := range map[string]struct {
		r Request
		c netip.Addr
	}{
		"v6 endpoint for v6v4": {Request{Type: V6V4}, netip.MustParseAddr("2001:db8::1")},
		"v4 endpoint for v4v6": {Request{Type: V4V6}, v4},
		"unknown type":         {Request{Type: "dslite"}, v4},
		"prefix 129":           {Request{Type: V6V4, Router: true, PrefixLen: 129}, v4},
		// No offer could pass the address policy for these (tsp/policy.go).
		"prefix 65":              {Request{Type: V6V4, Router: true, PrefixLen: 65}, v4},
		"router over v4v6":       {Request{Type: V4V6, Router: true, PrefixLen: 24}, netip.MustParseAddr("2001:db8::10")},
		"zero interval":          {Request{Type: V6V4, Keepalive: true}, v4},
		"proxy with v6udpv4":     {Request{Type: V6UDPV4, Proxy: true}, v4},
		"dns name with xml":      {Request{Type: V6V4, Router: true, PrefixLen: 56, DNSServers: []string{"<x>"}}, v4},
		"frame larger than 4096": {Request{Type: V6V4, Router: true, PrefixLen: 56, DNSServers: manyNames(40)}, v4},
	} {
		if _, err := MarshalRequest(tc.r, tc.c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func manyNames(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = strings.Repeat("a", 100) + ".example.net"
	}
	return out
}

func TestAcceptMessage(t *testing.T) {
	const want = "Content-length: 35\r\n<tunnel action=\"accept\"></tunnel>\r\n"
	if string(acceptMsg) != want {
		t.Fatalf("accept = %q", acceptMsg)
	}
	if body := strings.SplitN(want, "\n", 2)[1]; len(body) != 35 {
		t.Fatalf("accept body is %d bytes", len(body))
	}
	if len(rejectMsg) != len(acceptMsg) || !strings.Contains(string(rejectMsg), `action="reject"`) {
		t.Fatalf("reject = %q", rejectMsg)
	}
}

func TestAuthCommands(t *testing.T) {
	for mech, n := range map[string]int{mechAnonymous: 25, mechPlain: 21, mechDigestMD5: 26, mechPassDSS: 30} {
		c := authCommand(mech)
		if len(c) != n || c[len(c)-1] != 0 {
			t.Errorf("%s: %q is %d bytes, want %d ending in NUL", mech, c, len(c), n)
		}
	}
}

// Spec §3.4 test vector.
const (
	vecChallengeB64 = "cmVhbG09ImNkcGF0c3BzIixub25jZT0iMUEyQjNDNEQiLHFvcD1hdXRoLGFsZ29yaXRobT1tZDUtc2VzcyxjaGFyc2V0PXV0Zjg="
	vecClientLine   = `charset=utf8,username="alice",realm="cdpatsps",nonce="1A2B3C4D",nc=00000001,cnonce="1700000000",digest-uri="tsp/tsps.example.net",response=66736c4ae25c72216cf0d3491a99c99e,qop=auth`
	vecProofB64     = "cnNwYXV0aD0yNjE5Y2Q4ZGU3ZWRmZGJkNjRlNWM1MDAxODFhZTZkNA=="
)

func TestDigestVector(t *testing.T) {
	ch := digestChallenge{realm: "cdpatsps", nonce: "1A2B3C4D", qop: "auth", charset: "utf8"}
	line, rspauth := digestResponse("alice", "secret", "tsp/tsps.example.net", "1700000000", ch, false)
	if string(line) != vecClientLine {
		t.Errorf("client line\n got %s\nwant %s", line, vecClientLine)
	}
	if rspauth != "2619cd8de7edfdbd64e5c500181ae6d4" {
		t.Errorf("rspauth %s", rspauth)
	}
}

// The same vector through a whole session: the bytes that leave the client.
func TestDigestSessionBytes(t *testing.T) {
	for _, network := range []Network{UDP, TCP} {
		tr := newScripted(network,
			"CAPABILITY TUNNEL=V6UDPV4 AUTH=DIGEST-MD5\r\n",
			vecChallengeB64+"\r\n",
			vecProofB64+"\r\n",
			"200 Success\r\n",
			offerReply(offerXML(V6UDPV4, "")),
		)
		s := &Session{T: tr, Creds: Credentials{Method: AuthAny, UserID: "alice", Password: secret.String("secret"), Server: "tsps.example.net"},
			Request: Request{Type: V6UDPV4, Keepalive: true, KeepaliveInterval: 30}, CNonce: func() string { return "1700000000" }}
		if network == TCP {
			s.Request.Type = V6AnyV4
			tr.replies[4] = []byte(offerReply(offerXML(V6V4, "")))
		}
		if _, err := s.Negotiate(context.Background()); err != nil {
			t.Fatalf("%s: %v", network, err)
		}
		if got := string(tr.sent[0]); got != "VERSION=2.0.2\r\n" {
			t.Errorf("%s: version line %q", network, got)
		}
		if got := string(tr.sent[1]); got != "AUTHENTICATE DIGEST-MD5\r\n\x00" {
			t.Errorf("%s: auth line %q", network, got)
		}
		want := base64.StdEncoding.EncodeToString([]byte(vecClientLine)) + "\r\n"
		if got := string(tr.sent[2]); got != want {
			t.Errorf("%s: response %q want %q", network, got, want)
		}
		if network == UDP && tr.sent[3] != nil {
			t.Errorf("UDP: final status not fetched with an empty poll: %q", tr.sent[3])
		}
		if s.Mechanism != mechDigestMD5 {
			t.Errorf("mechanism %s", s.Mechanism)
		}
	}
}

func TestDigestBadProof(t *testing.T) {
	bad := base64.StdEncoding.EncodeToString([]byte("rspauth=00000000000000000000000000000000"))
	tr := newScripted(UDP, "CAPABILITY TUNNEL=V6UDPV4 AUTH=DIGEST-MD5\r\n", vecChallengeB64+"\r\n", bad+"\r\n", "200 Success\r\n")
	s := &Session{T: tr, Creds: Credentials{Method: AuthDigestMD5, UserID: "alice", Password: "secret", Server: "tsps.example.net"},
		Request: Request{Type: V6UDPV4, Keepalive: true, KeepaliveInterval: 30}}
	_, err := s.Negotiate(context.Background())
	if !errorsIs(err, ErrBadServerProof) {
		t.Fatalf("got %v, want ErrBadServerProof", err)
	}
}

func TestPlainBytes(t *testing.T) {
	tr := newScripted(UDP, "CAPABILITY TUNNEL=V6V4 AUTH=PLAIN\r\n", "", "200 Success\r\n", offerReply(offerXML(V6V4, "")), "")
	s := &Session{T: tr, Creds: Credentials{Method: AuthPlain, UserID: "alice", Password: "secret"}, Request: Request{Type: V6V4}}
	if _, err := s.Negotiate(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := s.Accept(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := []string{"VERSION=2.0.2\r\n", "AUTHENTICATE PLAIN\r\n\x00", "\x00alice\x00secret\r\n"}
	for i, w := range want {
		if string(tr.sent[i]) != w {
			t.Errorf("message %d = %q, want %q", i, tr.sent[i], w)
		}
	}
	if string(tr.sent[4]) != string(acceptMsg) {
		t.Errorf("accept = %q", tr.sent[4])
	}
}

func TestVersion101SkipsAccept(t *testing.T) {
	tr := newScripted(TCP)
	s := &Session{T: tr, Version: "1.0.1"}
	if err := s.Accept(context.Background()); err != nil || len(tr.sent) != 0 {
		t.Fatalf("1.0.1 accept sent %q, err %v", tr.sent, err)
	}
}
