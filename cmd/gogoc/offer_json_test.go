package main

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/jsonw"
	"github.com/jsklein/gogoc/tsp"
)

// offerRef is the offer as encoding/json wrote it when tsp.Offer carried
// json tags and a MarshalJSON adding the seconds: the fields in Offer's
// order, then lifetime_s and keepalive_interval_s. The differential tests
// hold writeOfferJSON to it; TestNegotiationGolden pins the bytes.
type offerRef struct {
	Type              tsp.TunnelType `json:"type"`
	MTU               int            `json:"mtu,omitempty"`
	ServerV4          netip.Addr     `json:"server_ipv4"`
	ServerV6          netip.Addr     `json:"server_ipv6"`
	ClientV4          netip.Addr     `json:"client_ipv4"`
	ClientV6          netip.Addr     `json:"client_ipv6"`
	ClientDNSName     string         `json:"client_dns_name,omitempty"`
	DNSServers        []netip.Addr   `json:"dns_servers,omitempty"`
	Prefix            netip.Prefix   `json:"prefix"`
	KeepaliveAddr     netip.Addr     `json:"keepalive_address"`
	Lifetime          int64          `json:"lifetime_s"`
	KeepaliveInterval int64          `json:"keepalive_interval_s"`
}

func refOf(o *tsp.Offer) offerRef {
	return offerRef{o.Type, o.MTU, o.ServerV4, o.ServerV6, o.ClientV4, o.ClientV6, o.ClientDNSName, o.DNSServers,
		o.Prefix, o.KeepaliveAddr, int64(o.Lifetime / time.Second), int64(o.KeepaliveInterval / time.Second)}
}

func checkOfferJSON(t *testing.T, name string, o tsp.Offer) {
	t.Helper()
	want, err := json.Marshal(refOf(&o))
	if err != nil {
		t.Fatalf("%s: reference: %v", name, err)
	}
	w := jsonw.NewWriter("")
	writeOfferJSON(w, &o)
	got, err := w.Bytes()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", name, got, want)
	}
	// Embedded in an indented document, as gogoc negotiate prints it.
	type wrap struct {
		Offer offerRef `json:"offer"`
		After int      `json:"after"`
	}
	want, err = json.MarshalIndent(wrap{refOf(&o), 1}, "", "  ")
	if err != nil {
		t.Fatalf("%s: encoding/json refuses the output: %v", name, err)
	}
	w = jsonw.NewWriter("  ")
	w.BeginObject()
	w.Key("offer")
	writeOfferJSON(w, &o)
	w.Key("after")
	w.Int(1)
	w.EndObject()
	got, err = w.Bytes()
	if err != nil {
		t.Fatalf("%s: embedded: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s embedded:\n got %s\nwant %s", name, got, want)
	}
}

func TestOfferJSONMatchesEncodingJSON(t *testing.T) {
	a := netip.MustParseAddr
	for name, o := range map[string]tsp.Offer{
		"empty": {},
		"v6v4 router": {Type: tsp.V6V4, Lifetime: 7 * 24 * time.Hour, MTU: 1280, ServerV4: a("198.51.100.1"), ServerV6: a("2001:db8::1"),
			ClientV4: a("192.0.2.10"), ClientV6: a("2001:db8::2"), ClientDNSName: "alice.broker.example.net",
			DNSServers: []netip.Addr{a("2001:db8::53"), a("192.0.2.53")}, Prefix: netip.MustParsePrefix("2001:db8:1200::/56"),
			KeepaliveInterval: 30 * time.Second, KeepaliveAddr: a("2001:db8::1")},
		"v4v6":                  {Type: tsp.V4V6, ServerV4: a("10.0.0.1"), ClientV4: a("10.0.0.2"), ServerV6: a("2001:db8::1"), ClientV6: a("2001:db8::2")},
		"fractional durations":  {Type: tsp.V6UDPV4, Lifetime: 1500 * time.Millisecond, KeepaliveInterval: -2500 * time.Millisecond},
		"empty dns list":        {Type: tsp.V6UDPV4, DNSServers: []netip.Addr{}},
		"zero addr in dns list": {Type: tsp.V6UDPV4, DNSServers: []netip.Addr{{}}},
		"zone and mapped":       {Type: tsp.V6V4, ClientV6: a("fe80::1%eth0"), ServerV6: a("::ffff:192.0.2.1")},
		"invalid prefix":        {Type: tsp.V6V4, Prefix: netip.PrefixFrom(a("2001:db8::"), 200)},
		"odd strings":           {Type: "<t&\"\\>", ClientDNSName: "\xff\u2028x\x01"},
	} {
		checkOfferJSON(t, name, o)
	}
}

// FuzzJSONWriteOffer compares writeOfferJSON with the encoding/json
// reference on arbitrary field values.
func FuzzJSONWriteOffer(f *testing.F) {
	f.Add("v6v4", 1280, "name.example", []byte{192, 0, 2, 1}, []byte("0123456789abcdef"), 56, int64(time.Hour), int64(30*time.Second))
	f.Add("", 0, "", []byte{}, []byte{}, -1, int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, typ string, mtu int, name string, v4, v6 []byte, bits int, life, ka int64) {
		o := tsp.Offer{Type: tsp.TunnelType(typ), MTU: mtu, ClientDNSName: name, Lifetime: time.Duration(life), KeepaliveInterval: time.Duration(ka)}
		if len(v4) >= 4 {
			o.ClientV4 = netip.AddrFrom4([4]byte(v4[:4]))
			o.DNSServers = append(o.DNSServers, o.ClientV4)
		}
		if len(v6) >= 16 {
			o.ServerV6 = netip.AddrFrom16([16]byte(v6[:16]))
			o.Prefix = netip.PrefixFrom(o.ServerV6, bits)
			o.DNSServers = append(o.DNSServers, o.ServerV6)
		}
		checkOfferJSON(t, "fuzz", o)
	})
}

// TestNegotiationGolden pins the bytes `gogoc negotiate` printed before the
// offer's JSON moved out of tsp (captured from that code).
func TestNegotiationGolden(t *testing.T) {
	a := netip.MustParseAddr
	full := &tsp.Offer{Type: tsp.V6UDPV4, Lifetime: 604800 * time.Second, MTU: 1280, ServerV4: a("198.51.100.1"),
		ServerV6: a("2001:db8:0:1::1"), ClientV4: a("203.0.113.7"), ClientV6: a("2001:db8:0:1::2"), ClientDNSName: "alice.broker.example.net",
		DNSServers: []netip.Addr{a("2001:db8::53"), a("192.0.2.53")}, Prefix: netip.MustParsePrefix("2001:db8:1234:5600::/56"),
		KeepaliveInterval: 30 * time.Second, KeepaliveAddr: a("2001:db8:0:1::1")}
	for _, tc := range []struct {
		n    negotiation
		want string
	}{
		{negotiation{Server: "broker.example.net", Transport: "udp", Version: "2.0.2", Mechanism: "DIGEST-MD5", Offer: full},
			"{\n  \"server\": \"broker.example.net\",\n  \"transport\": \"udp\",\n  \"version\": \"2.0.2\",\n  \"mechanism\": \"DIGEST-MD5\",\n  \"offer\": {\n    \"type\": \"v6udpv4\",\n    \"mtu\": 1280,\n    \"server_ipv4\": \"198.51.100.1\",\n    \"server_ipv6\": \"2001:db8:0:1::1\",\n    \"client_ipv4\": \"203.0.113.7\",\n    \"client_ipv6\": \"2001:db8:0:1::2\",\n    \"client_dns_name\": \"alice.broker.example.net\",\n    \"dns_servers\": [\n      \"2001:db8::53\",\n      \"192.0.2.53\"\n    ],\n    \"prefix\": \"2001:db8:1234:5600::/56\",\n    \"keepalive_address\": \"2001:db8:0:1::1\",\n    \"lifetime_s\": 604800,\n    \"keepalive_interval_s\": 30\n  }\n}\n"},
		{negotiation{Server: "[2001:db8::1]:3653", Transport: "tcp", Version: "2.0.0", Mechanism: "ANONYMOUS", Offer: &tsp.Offer{Type: tsp.V6V4}},
			"{\n  \"server\": \"[2001:db8::1]:3653\",\n  \"transport\": \"tcp\",\n  \"version\": \"2.0.0\",\n  \"mechanism\": \"ANONYMOUS\",\n  \"offer\": {\n    \"type\": \"v6v4\",\n    \"server_ipv4\": \"\",\n    \"server_ipv6\": \"\",\n    \"client_ipv4\": \"\",\n    \"client_ipv6\": \"\",\n    \"prefix\": \"\",\n    \"keepalive_address\": \"\",\n    \"lifetime_s\": 0,\n    \"keepalive_interval_s\": 0\n  }\n}\n"},
	} {
		got, err := tc.n.marshal()
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: %v\n got %q\nwant %q", tc.n.Server, err, got, tc.want)
		}
	}
}
