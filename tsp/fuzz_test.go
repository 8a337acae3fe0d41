package tsp

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

func FuzzCapability(f *testing.F) {
	f.Add([]byte("CAPABILITY TUNNEL=V6V4 TUNNEL=V6UDPV4 AUTH=DIGEST-MD5 AUTH=ANONYMOUS\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := ParseCapability(b)
		if err == nil && !bytes.HasPrefix(b, capabilityPrefix) {
			t.Fatalf("accepted %q without CAPABILITY", b)
		}
		if err != nil && c != 0 {
			t.Fatalf("bits %v with error %v", c, err)
		}
	})
}

func FuzzStatusLine(f *testing.F) {
	f.Add([]byte("200 Success\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		code, text, rest, err := parseStatusLine("fuzz", b)
		if err != nil {
			return
		}
		if code < 0 || code > 9999 || len(text) > maxStatusText || len(rest) > len(b) || !printable([]byte(text)) {
			t.Fatalf("bad parse of %q: %d %q", b, code, text)
		}
		_ = checkStatus("fuzz", b) // redirect parsing must not panic either
	})
}

func FuzzOffer(f *testing.F) {
	f.Add([]byte(offerXML(V6UDPV4, "")))
	f.Add([]byte(prefixOffer("2000::", 3)))
	f.Add([]byte(offerSwap("198.51.100.1", "127.0.0.1")))
	f.Add([]byte(offerV4V6("::1", "198.18.0.1")))
	f.Add([]byte(dnsOffer("ipv6", "fe80::53")))
	brokers := []netip.Addr{offBroker, netip.MustParseAddr("127.0.0.1")}
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, req := range []Request{{Type: V6AnyV4}, {Type: V6AnyV4, Router: true, PrefixLen: 56}, {Type: V4V6}} {
			for _, broker := range brokers {
				o, err := ParseOffer(b, req, UDP, broker)
				var pe *PolicyError
				if errors.As(err, &pe) && oracleAccepts(t, pe, req, broker) {
					t.Fatalf("policy refused %s %s, the oracle accepts it (broker %s)", pe.Field, pe.Value, broker)
				}
				if err != nil {
					continue
				}
				// Whatever is accepted must be internally consistent.
				if !o.ServerV4.IsValid() || !o.ClientV6.IsValid() || o.KeepaliveInterval > 0 && !o.KeepaliveAddr.IsValid() {
					t.Fatalf("inconsistent offer %+v from %q", o, b)
				}
				if o.Prefix.IsValid() && o.Prefix != o.Prefix.Masked() {
					t.Fatalf("unmasked prefix %v", o.Prefix)
				}
				if req.Router && !o.Prefix.IsValid() {
					t.Fatal("router offer without prefix accepted")
				}
				if why := oracleRefuses(o, req, broker); why != "" {
					t.Fatalf("accepted %s from broker %s: %+v", why, broker, o)
				}
			}
		}
	})
}

// The address policy restated as tables, independently of policy.go, as
// the fuzzer's oracle.
var (
	refusedRanges = func() (out []netip.Prefix) {
		for _, s := range []string{
			"0.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "224.0.0.0/4", "240.0.0.0/4",
			"::/96", "::ffff:0:0/96", "fe80::/10", "fec0::/10", "ff00::/8",
		} {
			out = append(out, netip.MustParsePrefix(s))
		}
		return out
	}()
	loopbackRanges = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
)

func oracleAddrOK(a netip.Addr, loopbackOK bool) bool {
	for _, p := range loopbackRanges {
		if loopbackOK && p.Contains(a) {
			return true
		}
	}
	for _, p := range refusedRanges {
		if p.Contains(a) {
			return false
		}
	}
	return a.IsValid()
}

func oraclePrefixOK(p netip.Prefix, req Request) bool {
	want := 0
	if req.Router {
		want = req.PrefixLen
	}
	return netip.MustParsePrefix("2000::/3").Contains(p.Addr()) && p.Bits() >= 16 && p.Bits() <= 64 && p.Bits() >= want
}

// oracleRefuses names the first value of o the oracle refuses, "" if none.
func oracleRefuses(o *Offer, req Request, broker netip.Addr) string {
	local := broker.IsLoopback()
	outer4 := o.Type != V4V6
	for _, f := range []struct {
		name  string
		a     netip.Addr
		outer bool
	}{{"server v4", o.ServerV4, outer4}, {"client v4", o.ClientV4, outer4}, {"server v6", o.ServerV6, !outer4}, {"client v6", o.ClientV6, !outer4}} {
		if !oracleAddrOK(f.a, f.outer && local) {
			return f.name + " " + f.a.String()
		}
	}
	if o.KeepaliveAddr.IsValid() && !oracleAddrOK(o.KeepaliveAddr, false) {
		return "keepalive " + o.KeepaliveAddr.String()
	}
	for _, a := range o.DNSServers {
		if !oracleAddrOK(a, false) {
			return "dns " + a.String()
		}
	}
	if o.Prefix.IsValid() && !oraclePrefixOK(o.Prefix, req) {
		return "prefix " + o.Prefix.String()
	}
	return ""
}

// oracleAccepts: the oracle finds nothing wrong with the value pe names.
func oracleAccepts(t *testing.T, pe *PolicyError, req Request, broker netip.Addr) bool {
	if pe.Field == FieldPrefix {
		p, err := netip.ParsePrefix(pe.Value)
		if err != nil {
			t.Fatalf("policy error with prefix %q: %v", pe.Value, err)
		}
		return oraclePrefixOK(p, req)
	}
	a, err := netip.ParseAddr(pe.Value)
	if err != nil {
		t.Fatalf("policy error with address %q: %v", pe.Value, err)
	}
	outer := pe.Field == FieldServerV4 || pe.Field == FieldClientV4 || pe.Field == FieldServerV6 || pe.Field == FieldClientV6
	if outer && broker.IsLoopback() && !oracleAddrOK(a, false) && oracleAddrOK(a, true) {
		// Loopback is fine for the outer pair only; which pair is outer
		// depends on the offer's type, which the error does not carry.
		return false
	}
	return oracleAddrOK(a, false)
}
