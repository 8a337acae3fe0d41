package main

import (
	"net/netip"
	"time"

	"github.com/jsklein/gogoc/internal/jsonw"
	"github.com/jsklein/gogoc/tsp"
)

// writeOfferJSON writes o as one object value into w, as `gogoc negotiate`
// prints it: type, mtu (when set), the four tunnel addresses, the client's
// DNS name and DNS servers (when set), prefix, keepalive address, then the
// durations as whole seconds (lifetime_s, keepalive_interval_s), as
// operators read them. Byte for byte what encoding/json wrote before the
// writer moved here from tsp (offer_json_test.go checks both).
func writeOfferJSON(w *jsonw.Writer, o *tsp.Offer) {
	// netip's MarshalText cannot fail; it gives "" for the zero value.
	addr := func(key string, a netip.Addr) {
		b, _ := a.MarshalText()
		w.Key(key)
		w.String(string(b))
	}
	w.BeginObject()
	w.Key("type")
	w.String(string(o.Type))
	if o.MTU != 0 {
		w.Key("mtu")
		w.Int(int64(o.MTU))
	}
	addr("server_ipv4", o.ServerV4)
	addr("server_ipv6", o.ServerV6)
	addr("client_ipv4", o.ClientV4)
	addr("client_ipv6", o.ClientV6)
	if o.ClientDNSName != "" {
		w.Key("client_dns_name")
		w.String(o.ClientDNSName)
	}
	if len(o.DNSServers) > 0 {
		w.Key("dns_servers")
		w.BeginArray()
		for _, a := range o.DNSServers {
			b, _ := a.MarshalText()
			w.String(string(b))
		}
		w.EndArray()
	}
	p, _ := o.Prefix.MarshalText()
	w.Key("prefix")
	w.String(string(p))
	addr("keepalive_address", o.KeepaliveAddr)
	w.Key("lifetime_s")
	w.Int(int64(o.Lifetime / time.Second))
	w.Key("keepalive_interval_s")
	w.Int(int64(o.KeepaliveInterval / time.Second))
	w.EndObject()
}
