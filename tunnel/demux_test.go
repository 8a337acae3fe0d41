package tunnel

import (
	"bytes"
	"net/netip"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestDemux(t *testing.T) {
	ip6 := tcpPacket(tSrc, tDst, 1, 2, 3, 4, tcpACK, nil, []byte("data"))
	for _, tc := range []struct {
		name string
		in   []byte
		want verdict
	}{
		{"empty", nil, drop},
		{"ipv6", ip6, toDevice},
		{"ipv6 with trailing bytes", append(bytes.Clone(ip6), 0, 0), toDevice},
		{"ipv6 header only", ip6[:40], drop}, // announces a payload it lacks
		{"ipv6 truncated payload", ip6[:len(ip6)-1], drop},
		{"short ipv6", ip6[:39], drop},
		{"ipv4", append([]byte{0x45}, ip6[1:]...), drop},
		{"control 310", []byte("\xff\xff\xff\xff\x00\x00\x00\x01310 TSP status error\r\n"), control},
		{"control header only", []byte("\xf0\x00\x00\xf2\x00\x00\x00\x2a"), control},
		{"short control", []byte("\xf0\x00\x00"), drop},
		{"other nibble", []byte("\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00"), drop},
	} {
		if got := demux(tc.in); got != tc.want {
			t.Errorf("%s: demux = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestControlMessage(t *testing.T) {
	hdr := "\xf0\x00\x00\xf3\x00\x00\x00\x2a"
	for _, tc := range []struct {
		in       string
		code     int
		text     string
		brokeErr bool
	}{
		{hdr + "310 TSP status error\r\n", 310, "310 TSP status error", true},
		{hdr + "200 Success\r\n", 200, "200 Success", false},
		{hdr + "1200 Redirection\r\n<xml/>", 1200, "1200 Redirection", true},
		{hdr + "302", 302, "302", true},
		{hdr, 0, "", false},
		{hdr + "31 short\r\n", 0, "31 short", false},
		{hdr + "31000 long\r\n", 0, "31000 long", false},
		{hdr + "310x\r\n", 0, "310x", false},
		{hdr + "500 bad\x00trailing", 500, "500 bad", true},
		{hdr + "300 a\x1b[31mb", 300, "300 a?[31mb", true},
		{hdr + "300 \xff\xfe", 300, "300 ??", true},
	} {
		code, text := controlMessage([]byte(tc.in))
		if code != tc.code || text != tc.text || isBrokerError(code) != tc.brokeErr {
			t.Errorf("%q: (%d, %q, err %v), want (%d, %q, %v)", tc.in, code, text, isBrokerError(code), tc.code, tc.text, tc.brokeErr)
		}
	}
	long := hdr + "310 " + strings.Repeat("x", 1000)
	if _, text := controlMessage([]byte(long)); len(text) != maxControlText {
		t.Errorf("long text cut to %d, want %d", len(text), maxControlText)
	}
}

func TestPeerTable(t *testing.T) {
	epA := netip.MustParseAddrPort("198.51.100.7:40000")
	epB := netip.MustParseAddrPort("198.51.100.8:40000")
	f := &Forwarder{}
	f.peers.Store(buildTable(nil))
	if err := f.AddPeer(epA, netip.MustParsePrefix("2001:db8:ab::2/128")); err != nil {
		t.Fatal(err)
	}
	if err := f.AddPeer(epB, netip.MustParsePrefix("2001:db8:ab::3/128"), netip.MustParsePrefix("2001:db8:100::/48")); err != nil {
		t.Fatal(err)
	}
	if err := f.AddPeer(epA, netip.MustParsePrefix("2001:db8:100:5::/64")); err != nil { // more specific than B's /48
		t.Fatal(err)
	}
	if err := f.AddPeer(epA, netip.MustParsePrefix("10.0.0.0/8")); err == nil {
		t.Error("IPv4 prefix accepted")
	}
	tab := f.peers.Load()
	pkt := func(src, dst string) []byte {
		return tcpPacket(netip.MustParseAddr(src), netip.MustParseAddr(dst), 1, 2, 3, 4, tcpACK, nil, nil)
	}
	for _, tc := range []struct {
		dst  string
		want netip.AddrPort
	}{
		{"2001:db8:ab::2", epA},
		{"2001:db8:ab::3", epB},
		{"2001:db8:100:1::1", epB},
		{"2001:db8:100:5::1", epA},
		{"2001:db8:ab::4", netip.AddrPort{}},
	} {
		got, ok := tab.route(pkt("2001:db8:1::1", tc.dst))
		if got != tc.want || ok != tc.want.IsValid() {
			t.Errorf("route to %s = %v %v, want %v", tc.dst, got, ok, tc.want)
		}
	}
	for _, tc := range []struct {
		src  string
		from netip.AddrPort
		want bool
	}{
		{"2001:db8:ab::2", epA, true},
		{"2001:db8:100:5::9", epA, true},
		{"2001:db8:ab::3", epA, false}, // B's address from A: spoofed
		{"2001:db8:100:1::1", epB, true},
		{"2001:db8:ab::2", netip.MustParseAddrPort("198.51.100.9:1"), false},
	} {
		if got := tab.accept(pkt(tc.src, "2001:db8:1::1"), tc.from); got != tc.want {
			t.Errorf("accept %s from %v = %v, want %v", tc.src, tc.from, got, tc.want)
		}
	}
	// Registering an address again moves it: the newest session wins.
	epC := netip.MustParseAddrPort("198.51.100.9:40001")
	if err := f.AddPeer(epC, netip.MustParsePrefix("2001:db8:ab::3/128")); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.peers.Load().route(pkt("2001:db8:1::1", "2001:db8:ab::3")); got != epC {
		t.Errorf("re-registered address routed to %v, want %v", got, epC)
	}
	if f.peers.Load().accept(pkt("2001:db8:ab::3", "2001:db8:1::1"), epB) {
		t.Error("old peer may still send from a moved address")
	}
	if got, _ := f.peers.Load().route(pkt("2001:db8:1::1", "2001:db8:100:1::1")); got != epB {
		t.Errorf("old peer lost its other prefix: %v", got)
	}
	f.RemovePeer(epA)
	if _, ok := f.peers.Load().route(pkt("2001:db8:1::1", "2001:db8:ab::2")); ok {
		t.Error("removed peer still routed")
	}
	if got, _ := f.peers.Load().route(pkt("2001:db8:1::1", "2001:db8:100:5::1")); got != epB {
		t.Errorf("after removal the /48 should catch %v", got)
	}
}

// splitDatagrams turns fuzz input into up to 8 datagrams: the first byte
// says how many equal parts the rest is cut into.
func splitDatagrams(data []byte) [][]byte {
	if len(data) == 0 {
		return [][]byte{nil}
	}
	k := int(data[0]%8) + 1
	rest := data[1:]
	size := (len(rest) + k - 1) / k
	var out [][]byte
	for len(rest) > 0 && size > 0 {
		n := min(size, len(rest))
		out = append(out, rest[:n])
		rest = rest[n:]
	}
	return append(out, data) // and the whole input as one datagram
}

// FuzzDemux feeds datagrams from the network through what the socket →
// device path does with them: demux, the control-message parser, the
// peer check and the coalescer. Nothing may panic, control text must stay
// printable and bounded, and every accepted packet must be written once.
func FuzzDemux(f *testing.F) {
	f.Add([]byte("\x00\xff\xff\xff\xff\x00\x00\x00\x01310 TSP status error\r\n"))
	f.Add(append([]byte{0}, tcpPacket(tSrc, tDst, 1, 2, 3, 4, tcpACK, nil, []byte("x"))...))
	seg := segments(40000, 1, bytes.Repeat([]byte("y"), 300), 100, tcpPSH)
	f.Add(append([]byte{2}, bytes.Join(seg, nil)...))

	tab := buildTable(map[netip.AddrPort][]netip.Prefix{
		{}: {netip.MustParsePrefix("2001:db8:ab::/64")},
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, vnet := range []bool{false, true} {
			c := newCoalescer(16, vnet)
			accepted := 0
			for _, d := range splitDatagrams(data) {
				switch demux(d) {
				case control:
					_, text := controlMessage(d)
					if len(text) > 3*maxControlText || !utf8.ValidString(text) {
						t.Fatalf("control text %q", text)
					}
					for _, r := range text {
						if r < 0x20 || r == 0x7f {
							t.Fatalf("control character in %q", text)
						}
					}
				case toDevice:
					tab.accept(d, netip.AddrPort{})
					tab.route(d)
					c.add(bytes.Clone(d))
					accepted++
				}
			}
			c.finish()
			n := 0
			for _, p := range c.pkts {
				n += p
			}
			if n != accepted || len(c.ends) > accepted {
				t.Fatalf("%d packets in %d writes for %d accepted", n, len(c.ends), accepted)
			}
			for i, end := range c.ends {
				start := 0
				if i > 0 {
					start = c.ends[i-1]
				}
				size := 0
				for _, p := range c.iovs[start:end] {
					size += len(p)
				}
				if size > vnetHdrLen+maxSuper {
					t.Fatalf("write of %d bytes", size)
				}
			}
		}
	})
}
