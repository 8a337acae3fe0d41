package tsp

import (
	"bytes"
	"encoding/json"
	"net/netip"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/jsonw"
)

// referenceOfferJSON is how Offer.MarshalJSON used to be written, with
// encoding/json; the new writer must give the same bytes.
func referenceOfferJSON(o Offer) ([]byte, error) {
	type plain Offer
	return json.Marshal(struct {
		plain
		Lifetime          int64 `json:"lifetime_s"`
		KeepaliveInterval int64 `json:"keepalive_interval_s"`
	}{plain(o), int64(o.Lifetime / time.Second), int64(o.KeepaliveInterval / time.Second)})
}

func checkOfferJSON(t *testing.T, name string, o Offer) {
	t.Helper()
	want, err := referenceOfferJSON(o)
	if err != nil {
		t.Fatalf("%s: reference: %v", name, err)
	}
	got, err := o.MarshalJSON()
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", name, got, want)
	}
	// Embedded in an indented document (as gogoc negotiate prints it),
	// WriteJSON must give what encoding/json gives for the offer as a
	// field: MarshalJSON's output re-indented at that depth.
	type wrap struct {
		Offer *Offer `json:"offer"`
		After int    `json:"after"`
	}
	want, err = json.MarshalIndent(wrap{&o, 1}, "", "  ")
	if err != nil {
		t.Fatalf("%s: encoding/json refuses the output: %v", name, err)
	}
	w := jsonw.NewWriter("  ")
	w.BeginObject()
	w.Key("offer")
	o.WriteJSON(w)
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
	for name, o := range map[string]Offer{
		"empty": {},
		"v6v4 router": {Type: V6V4, Lifetime: 7 * 24 * time.Hour, MTU: 1280, ServerV4: a("198.51.100.1"), ServerV6: a("2001:db8::1"),
			ClientV4: a("192.0.2.10"), ClientV6: a("2001:db8::2"), ClientDNSName: "alice.broker.example.net",
			DNSServers: []netip.Addr{a("2001:db8::53"), a("192.0.2.53")}, Prefix: netip.MustParsePrefix("2001:db8:1200::/56"),
			KeepaliveInterval: 30 * time.Second, KeepaliveAddr: a("2001:db8::1")},
		"v4v6":                  {Type: V4V6, ServerV4: a("10.0.0.1"), ClientV4: a("10.0.0.2"), ServerV6: a("2001:db8::1"), ClientV6: a("2001:db8::2")},
		"fractional durations":  {Type: V6UDPV4, Lifetime: 1500 * time.Millisecond, KeepaliveInterval: -2500 * time.Millisecond},
		"empty dns list":        {Type: V6UDPV4, DNSServers: []netip.Addr{}},
		"zero addr in dns list": {Type: V6UDPV4, DNSServers: []netip.Addr{{}}},
		"zone and mapped":       {Type: V6V4, ClientV6: a("fe80::1%eth0"), ServerV6: a("::ffff:192.0.2.1")},
		"invalid prefix":        {Type: V6V4, Prefix: netip.PrefixFrom(a("2001:db8::"), 200)},
		"odd strings":           {Type: "<t&\"\\>", ClientDNSName: "\xff\u2028x\x01"},
	} {
		checkOfferJSON(t, name, o)
	}
}

// FuzzJSONWriteOffer compares Offer.MarshalJSON with the encoding/json
// version on arbitrary field values.
func FuzzJSONWriteOffer(f *testing.F) {
	f.Add("v6v4", 1280, "name.example", []byte{192, 0, 2, 1}, []byte("0123456789abcdef"), 56, int64(time.Hour), int64(30*time.Second))
	f.Add("", 0, "", []byte{}, []byte{}, -1, int64(0), int64(-1))
	f.Fuzz(func(t *testing.T, typ string, mtu int, name string, v4, v6 []byte, bits int, life, ka int64) {
		o := Offer{Type: TunnelType(typ), MTU: mtu, ClientDNSName: name, Lifetime: time.Duration(life), KeepaliveInterval: time.Duration(ka)}
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
