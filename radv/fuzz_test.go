package radv

import (
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
	"golang.org/x/net/ipv6"
)

// FuzzRSHandling feeds arbitrary ICMPv6 bytes, hop limits and sources to
// the solicitation check, and builds and marshals the reply for whatever
// it accepts. The rules of RFC 4861 §6.1.1 must hold for every input.
func FuzzRSHandling(f *testing.F) {
	ll := netip.MustParseAddr("fe80::2").As16()
	unspec := [16]byte{}
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00"), uint8(255), ll[:])
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00\x01\x01\x02\x00\x00\x00\x00\x01"), uint8(255), unspec[:])
	f.Add([]byte("\x85\x00\x00\x00\x00\x00\x00\x00"), uint8(64), ll[:])
	s, err := New(Config{LinkAddr: mac})
	if err != nil {
		f.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}, Routes: []netip.Prefix{deleg}, DNS: []netip.Addr{dns1}}); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte, hop uint8, srcb []byte) {
		m, err := ndp.ParseMessage(b)
		if err != nil {
			return // the conn drops what does not parse
		}
		src, _ := netip.AddrFromSlice(srcb)
		v := classify(m, &ipv6.ControlMessage{HopLimit: int(hop)}, src)
		if v == ignore {
			return
		}
		rs, ok := m.(*ndp.RouterSolicitation)
		if !ok || hop != 255 {
			t.Fatalf("accepted %T with hop limit %d", m, hop)
		}
		switch v {
		case replyUni:
			if src.IsUnspecified() || src.IsMulticast() || !src.Is6() {
				t.Fatalf("unicast reply to %v", src)
			}
		case replyMulti:
			if !src.IsUnspecified() {
				t.Fatalf("multicast reply for source %v", src)
			}
			for _, o := range rs.Options {
				if l, ok := o.(*ndp.LinkLayerAddress); ok && l.Direction == ndp.Source {
					t.Fatal("RS from :: with a source link-layer address accepted")
				}
			}
		}
		if _, err := ndp.MarshalMessage(s.advertisement(false)); err != nil {
			t.Fatalf("reply does not marshal: %v", err)
		}
		if classify(m, nil, src) != ignore {
			t.Fatal("accepted without a hop limit to check")
		}
	})
}
