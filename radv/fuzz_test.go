package radv

import (
	"net/netip"
	"testing"

	"github.com/mdlayher/ndp"
)

// FuzzRSHandling feeds arbitrary ICMPv6 bytes, hop limits and sources to
// the solicitation parser and check, as ICMPConn and Serve do, and builds
// and marshals the reply for whatever they accept. The rules of RFC 4861
// §6.1.1 must hold for every input, and the reply must read back in ndp.
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
		rs, err := parseRS(b)
		if err != nil {
			return // the conn drops what does not parse
		}
		src, _ := netip.AddrFromSlice(srcb)
		v := classify(rs, int(hop), src)
		if v == ignore {
			return
		}
		if b[0] != 133 || hop != 255 {
			t.Fatalf("accepted type %d with hop limit %d", b[0], hop)
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
			if rs.SourceLinkAddr() != nil {
				t.Fatal("RS from :: with a source link-layer address accepted")
			}
		}
		rb, err := marshalRA(s.advertisement(false))
		if err != nil {
			t.Fatalf("reply does not marshal: %v", err)
		}
		if _, err := ndp.ParseMessage(rb); err != nil {
			t.Fatalf("reply does not parse in ndp: %v", err)
		}
		if classify(rs, -1, src) != ignore {
			t.Fatal("accepted without a hop limit to check")
		}
	})
}
