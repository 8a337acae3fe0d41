package tsp

import (
	"net/netip"
	"strings"
	"testing"
)

// Host names follow one rule wherever they come from (internal/hostname):
// the server string, the reverse-delegation name servers of the request,
// a redirect's dn entries and the client's DNS name in an offer. The
// configuration applies the same rule, so a name accepted there is never
// refused here and the other way round.
func TestHostnameRuleEverywhere(t *testing.T) {
	bad := []string{"-a.b", "a-.b", "a.-b", strings.Repeat("a", 64) + ".net", "a..b", "a_b.net", "999.1.1.1"}
	good := []string{"broker.example.net", "broker.example.net.", "a-b.example", "localhost", "xn--bcher-kva.example", "192.0.2.1"}
	for _, name := range bad {
		if _, _, err := ParseServer(name); err == nil {
			t.Errorf("server %q accepted", name)
		}
		if strings.Trim(name, "0123456789.") == "" {
			continue // a mistyped IPv4 address: a server-string rule only
		}
		req := Request{Type: V6V4, Router: true, PrefixLen: 56, DNSServers: []string{name}}
		if _, err := MarshalRequest(req, netip.MustParseAddr("192.0.2.10")); err == nil {
			t.Errorf("dns_server %q accepted in a request", name)
		}
		redirect := "1200 Redirect\r\n<tunnel action=\"info\"><broker><address type=\"dn\">" + name + "</address></broker></tunnel>\r\n"
		if err := checkStatus("test", []byte(redirect)); !errorsIs(err, ErrMalformed) {
			t.Errorf("redirect to %q: %v", name, err)
		}
		x := offerXML(V6UDPV4, "  <address type=\"dn\">"+name+"</address>\r\n")
		if _, err := ParseOffer([]byte(x), Request{Type: V6UDPV4}, UDP, offBroker); err == nil {
			t.Errorf("client DNS name %q accepted", name)
		}
	}
	for _, name := range good {
		if _, _, err := ParseServer(name); err != nil {
			t.Errorf("server %q: %v", name, err)
		}
	}
}
