package tunnel

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"testing"

	"golang.org/x/sys/unix"
)

// ICMP errors a crashed broker's host sent back, captured in the VM lane
// (Debian's 6.1 kernel) after the broker end was removed: for a sit packet
// (protocol 41), for a fou datagram (UDP 43213 → 3653), for an ip6tnl
// packet (ICMPv6, next header 4; the raw ICMPv6 socket delivers no IPv6
// header), and the ICMPv4 "host unreachable" that ip6_tunnel made of the
// latter for the inner packet.
const (
	capturedSit    = "45c00068f3fd0000400171150a6000010a60000203034116000000004500004cea1a400040293bac0a6000020a600001600b21d500103a4020010db800ab0000000000000000000220010db800ab000000000000000000018000362f424200006578706c6f726521"
	capturedFou    = "45c00070ef7f00004001758b0a6000010a600002030312110000000045000054685d40004011bd790a6000020a600001a8cd0e45004077b2600b21d500103a4020010db800ab0000000000000000000220010db800ab000000000000000000018000362f424200006578706c6f726521"
	capturedIP6tnl = "01041500000000006003cd030024044020010db800460000000000000000000220010db80046000000000000000000014500002486bb4000400127f6c6120002c612000108000b45424200006578706c6f726521"
	capturedInner4 = "45c000401dd500004001cfffc6120002c61200020301fcfe000000004500002486bb4000400127f6c6120002c612000108000b45424200006578706c6f726521"
)

func mustHex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestICMPMatch(t *testing.T) {
	a := netip.MustParseAddr
	sit := outerFlow{proto: protoIPv6InIPv4, local: a("10.96.0.2"), remote: a("10.96.0.1")}
	fou := outerFlow{proto: unix.IPPROTO_UDP, local: a("10.96.0.2"), remote: a("10.96.0.1"), sport: 43213, dport: 3653}
	tnl := outerFlow{v6: true, proto: protoIPIP, local: a("2001:db8:46::2"), remote: a("2001:db8:46::1")}
	broker6 := a("2001:db8:46::1")
	match := func(f outerFlow, pkt []byte) *UnreachableError {
		if f.v6 {
			return f.match6(pkt, broker6)
		}
		return f.match4(pkt)
	}
	with := func(f outerFlow, change func(*outerFlow)) outerFlow { change(&f); return f }
	for _, tc := range []struct {
		name string
		flow outerFlow
		pkt  string
		want bool
	}{
		{"sit", sit, capturedSit, true},
		{"sit without a local address", with(sit, func(f *outerFlow) { f.local = netip.Addr{} }), capturedSit, true},
		{"sit, another local address", with(sit, func(f *outerFlow) { f.local = a("10.96.0.3") }), capturedSit, false},
		{"sit, another broker", with(sit, func(f *outerFlow) { f.remote = a("10.96.0.9") }), capturedSit, false},
		{"sit flow, fou packet", sit, capturedFou, false},
		{"fou", fou, capturedFou, true},
		{"fou, another port", with(fou, func(f *outerFlow) { f.sport = 43214 }), capturedFou, false},
		{"fou, another broker port", with(fou, func(f *outerFlow) { f.dport = 3654 }), capturedFou, false},
		{"fou flow, sit packet", fou, capturedSit, false},
		{"ip6tnl", tnl, capturedIP6tnl, true},
		{"ip6tnl, another broker", with(tnl, func(f *outerFlow) { f.remote = a("2001:db8:46::9") }), capturedIP6tnl, false},
		{"ip6tnl, another local", with(tnl, func(f *outerFlow) { f.local = a("2001:db8:46::9") }), capturedIP6tnl, false},
		{"the inner ICMPv4 error is not about the outer flow", sit, capturedInner4, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ue := match(tc.flow, mustHex(t, tc.pkt))
			if (ue != nil) != tc.want {
				t.Fatalf("match = %v, want %v", ue, tc.want)
			}
			if ue == nil {
				return
			}
			if !errors.Is(ue, unix.ECONNREFUSED) || ue.From != tc.flow.remote || ue.Code != map[bool]uint8{false: 3, true: 4}[tc.flow.v6] {
				t.Errorf("error %v (from %v, code %d): want port unreachable from the broker", ue, ue.From, ue.Code)
			}
		})
	}

	// Path MTU messages are not about a dead broker.
	frag := mustHex(t, capturedSit)
	frag[21] = icmpv4FragNeeded
	if ue := sit.match4(frag); ue != nil {
		t.Errorf("fragmentation needed taken for %v", ue)
	}
	// Other codes map to what a connected socket would report.
	for code, want := range map[uint8]error{0: unix.ENETUNREACH, 1: unix.EHOSTUNREACH, 2: unix.ENOPROTOOPT, 13: unix.EHOSTUNREACH} {
		pkt := mustHex(t, capturedSit)
		pkt[21] = code
		if ue := sit.match4(pkt); !errors.Is(ue, want) {
			t.Errorf("code %d: %v, want %v", code, ue, want)
		}
	}
	for tc, want := range map[[2]uint8]error{{1, 0}: unix.ENETUNREACH, {1, 1}: unix.EACCES, {1, 3}: unix.EHOSTUNREACH, {4, 1}: unix.EPROTO} {
		pkt := mustHex(t, capturedIP6tnl)
		pkt[0], pkt[1] = tc[0], tc[1]
		if ue := tnl.match6(pkt, broker6); !errors.Is(ue, want) {
			t.Errorf("ICMPv6 %d/%d: %v, want %v", tc[0], tc[1], ue, want)
		}
	}
	for _, tc := range [][2]uint8{{2, 0}, {3, 0}, {4, 0}, {4, 2}, {128, 0}} {
		pkt := mustHex(t, capturedIP6tnl)
		pkt[0], pkt[1] = tc[0], tc[1]
		if ue := tnl.match6(pkt, broker6); ue != nil {
			t.Errorf("ICMPv6 %d/%d taken for %v", tc[0], tc[1], ue)
		}
	}
	// Truncations: an IPv4 packet shorter than its total length is refused
	// whole; an ICMPv6 message needs its header and the quoted IPv6 header.
	for _, c := range []struct {
		f        outerFlow
		pkt      string
		shortest int
	}{{sit, capturedSit, 104}, {fou, capturedFou, 112}, {tnl, capturedIP6tnl, 8 + ipv6HdrLen}} {
		full := mustHex(t, c.pkt)
		shortest := -1
		for n := range len(full) + 1 {
			if match(c.f, full[:n]) != nil {
				shortest = n
				break
			}
		}
		if shortest != c.shortest {
			t.Errorf("%d-byte capture: shortest prefix matched %d, want %d", len(full), shortest, c.shortest)
		}
	}
}

// FuzzICMPMatch: the parsers read what anyone may send; they must never
// panic, and a match must really quote the flow.
func FuzzICMPMatch(f *testing.F) {
	for _, s := range []string{capturedSit, capturedFou, capturedIP6tnl, capturedInner4} {
		f.Add(mustHex(f, s))
	}
	a := netip.MustParseAddr
	flows := []outerFlow{
		{proto: protoIPv6InIPv4, local: a("10.96.0.2"), remote: a("10.96.0.1")},
		{proto: unix.IPPROTO_UDP, local: a("10.96.0.2"), remote: a("10.96.0.1"), sport: 43213, dport: 3653},
		{proto: unix.IPPROTO_UDP, remote: a("10.96.0.1"), sport: 43213, dport: 3653},
		{v6: true, proto: protoIPIP, local: a("2001:db8:46::2"), remote: a("2001:db8:46::1")},
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for _, fl := range flows {
			var ue *UnreachableError
			if fl.v6 {
				ue = fl.match6(pkt, fl.remote)
			} else {
				ue = fl.match4(pkt)
			}
			if ue == nil {
				continue
			}
			if ue.Errno == 0 || !unreachErrno(ue.Errno) && ue.Errno != unix.EACCES {
				t.Fatalf("match with errno %v", ue.Errno)
			}
		}
	})
}
