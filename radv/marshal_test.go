package radv

import (
	"bytes"
	"encoding/binary"
	"math"
	"net/netip"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

// asNDPRA is ra as an ndp message: the same fields, the options in the
// order marshalRA writes them.
func asNDPRA(ra *RouterAdvertisement) *ndp.RouterAdvertisement {
	m := &ndp.RouterAdvertisement{CurrentHopLimit: ra.HopLimit, ManagedConfiguration: ra.Managed,
		OtherConfiguration: ra.Other, MobileIPv6HomeAgent: ra.HomeAgent, RouterLifetime: ra.RouterLifetime}
	for _, p := range ra.Prefixes {
		m.Options = append(m.Options, &ndp.PrefixInformation{PrefixLength: uint8(p.Prefix.Bits()), OnLink: p.OnLink,
			AutonomousAddressConfiguration: p.Autonomous, ValidLifetime: p.Valid, PreferredLifetime: p.Preferred,
			Prefix: p.Prefix.Addr()})
	}
	for _, r := range ra.Routes {
		m.Options = append(m.Options, &ndp.RouteInformation{PrefixLength: uint8(r.Prefix.Bits()), Preference: ndp.Medium,
			RouteLifetime: r.Lifetime, Prefix: r.Prefix.Addr()})
	}
	if len(ra.DNSServers) > 0 {
		m.Options = append(m.Options, &ndp.RecursiveDNSServer{Lifetime: ra.DNSLifetime, Servers: ra.DNSServers})
	}
	if ra.MTU != 0 {
		m.Options = append(m.Options, ndp.NewMTU(ra.MTU))
	}
	if len(ra.SourceLinkAddr) > 0 {
		m.Options = append(m.Options, &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: ra.SourceLinkAddr})
	}
	return m
}

// sameAsNDP fails t unless marshalRA gives ra the bytes ndp gives it.
func sameAsNDP(t *testing.T, ra *RouterAdvertisement) {
	t.Helper()
	want, err := ndp.MarshalMessage(asNDPRA(ra))
	if err != nil {
		t.Fatalf("ndp: %v (%+v)", err, ra)
	}
	got, err := marshalRA(ra)
	if err != nil {
		t.Fatalf("marshalRA: %v (%+v)", err, ra)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%+v\nmarshalRA % x\nndp       % x", ra, got, want)
	}
}

const infinity = math.MaxUint32 * time.Second

// ndpMaxRDNSS is the most DNS servers ndp encodes: its option length
// check multiplies in a uint8, so it refuses options of 32 units (256
// bytes) or more.
const ndpMaxRDNSS = 15

// dnsServers returns n documentation addresses.
func dnsServers(n int) []netip.Addr {
	a := make([]netip.Addr, n)
	for i := range a {
		a[i] = netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 15: byte(i)})
	}
	return a
}

// Past ndp's 15, an RDNSS option still carries every server, up to the
// 127 its length byte can count (RFC 8106 §5.1: length 1 + 2 × servers).
func TestMarshalRAManyDNSServers(t *testing.T) {
	for _, n := range []int{ndpMaxRDNSS + 1, maxRDNSS} {
		servers := dnsServers(n)
		b, err := marshalRA(&RouterAdvertisement{DNSServers: servers, DNSLifetime: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		o := b[raHeaderLen:]
		if len(o) != 8+16*n || o[0] != optRDNSS || int(o[1]) != 1+2*n || binary.BigEndian.Uint32(o[4:]) != 3600 {
			t.Fatalf("%d servers: option % x", n, o[:8])
		}
		for i, a := range servers {
			if got := netip.AddrFrom16([16]byte(o[8+16*i:])); got != a {
				t.Fatalf("%d servers: server %d is %v, want %v", n, i, got, a)
			}
		}
	}
}

// TestMarshalRAMatchesNDP: every option radv sends, flags, and lifetimes
// at their bounds and with fractions of a second, encoded byte for byte
// as ndp.MarshalMessage, which radv's encoder replaced.
func TestMarshalRAMatchesNDP(t *testing.T) {
	p64 := netip.MustParsePrefix("2001:db8:1:2::/64")
	cases := map[string]*RouterAdvertisement{
		"empty":         {},
		"header":        {HopLimit: 64, RouterLifetime: 1800 * time.Second},
		"every flag":    {HopLimit: 255, Managed: true, Other: true, HomeAgent: true, RouterLifetime: MaxRouterLifetime},
		"M only":        {Managed: true},
		"O only":        {Other: true},
		"H only":        {HomeAgent: true},
		"lifetime 1 s":  {RouterLifetime: time.Second},
		"lifetime 1.9s": {RouterLifetime: 1900 * time.Millisecond},
		"lifetime max":  {RouterLifetime: math.MaxUint16 * time.Second},
		"lifetime 0.5s": {RouterLifetime: 500 * time.Millisecond},
		"PIO SLAAC": {Prefixes: []PrefixInformation{
			{Prefix: p64, OnLink: true, Autonomous: true, Valid: DefaultValidLifetime, Preferred: DefaultPreferredLifetime}}},
		"PIO lifetimes at bounds": {Prefixes: []PrefixInformation{
			{Prefix: p64, OnLink: true, Autonomous: true},
			{Prefix: p64, OnLink: true, Valid: infinity, Preferred: infinity},
			{Prefix: p64, Autonomous: true, Valid: infinity - time.Second, Preferred: time.Second},
			{Prefix: p64, Valid: 2*time.Hour + 999*time.Millisecond, Preferred: 999 * time.Millisecond}}},
		"PIO lengths": {Prefixes: []PrefixInformation{
			{Prefix: netip.MustParsePrefix("::/0"), OnLink: true},
			{Prefix: netip.MustParsePrefix("fd00::/8"), OnLink: true},
			{Prefix: netip.MustParsePrefix("2001:db8:77:1:2::/80"), OnLink: true, Valid: time.Hour},
			{Prefix: netip.MustParsePrefix("2001:db8::1/128"), OnLink: true}}},
		"RIO lengths": {Routes: []RouteInformation{
			{Prefix: netip.MustParsePrefix("::/0"), Lifetime: 1800 * time.Second},
			{Prefix: netip.MustParsePrefix("2000::/3")},
			{Prefix: netip.MustParsePrefix("2001:db8:8000::/56"), Lifetime: infinity},
			{Prefix: netip.MustParsePrefix("2001:db8:8000:1::/64"), Lifetime: time.Second},
			{Prefix: netip.MustParsePrefix("2001:db8:8000:1:8000::/65"), Lifetime: infinity - time.Second},
			{Prefix: netip.MustParsePrefix("2001:db8::1/128"), Lifetime: 1500 * time.Millisecond}}},
		"RDNSS one":     {DNSServers: []netip.Addr{dns1}, DNSLifetime: 1800 * time.Second},
		"RDNSS three":   {DNSServers: []netip.Addr{dns1, netip.MustParseAddr("fe80::1"), netip.MustParseAddr("::1")}, DNSLifetime: infinity},
		"RDNSS 15":      {DNSServers: dnsServers(ndpMaxRDNSS), DNSLifetime: time.Second},
		"RDNSS final":   {DNSServers: []netip.Addr{dns1}},
		"MTU 1280":      {MTU: 1280},
		"MTU max":       {MTU: math.MaxUint32},
		"SLLA":          {SourceLinkAddr: mac},
		"SLLA all ones": {SourceLinkAddr: []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}},
		"all options": {HopLimit: 64, Managed: true, RouterLifetime: 1800 * time.Second,
			Prefixes: []PrefixInformation{{Prefix: p64, OnLink: true, Autonomous: true, Valid: time.Hour, Preferred: time.Minute},
				{Prefix: ula, OnLink: true, Autonomous: true, Valid: 2 * time.Hour}},
			Routes:     []RouteInformation{{Prefix: deleg, Lifetime: 1800 * time.Second}},
			DNSServers: []netip.Addr{dns1}, DNSLifetime: 1800 * time.Second, MTU: 1480, SourceLinkAddr: mac},
	}
	for name, ra := range cases {
		t.Run(name, func(t *testing.T) { sameAsNDP(t, ra) })
	}

	// What the Server builds, as it goes out: up, down, final, with a
	// deprecated prefix, ULA and on-link-only prefixes, every option.
	now := time.Unix(1_000_000, 0)
	s, err := New(Config{MaxInterval: 600 * time.Second, LinkAddr: mac, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	steps := []Params{
		{},
		{Up: true, Prefixes: []Prefix{{Prefix: lan1}}, Routes: []netip.Prefix{deleg}, DNS: []netip.Addr{dns1}, MTU: 1480},
		{Up: false, Prefixes: []Prefix{{Prefix: lan1}}, Routes: []netip.Prefix{deleg}},
		{Up: true, Managed: true, Other: true, HomeAgent: true, Prefixes: []Prefix{{Prefix: lan2},
			{Prefix: ula, ValidUntil: now.Add(90 * time.Minute), PreferredUntil: now.Add(30 * time.Minute), KeepOnStop: true},
			{Prefix: onlink80, Valid: time.Hour, OnLinkOnly: true}}, DNS: []netip.Addr{dns1, dns1}},
	}
	for i, p := range steps {
		if err := s.Update(p); err != nil {
			t.Fatal(err)
		}
		now = now.Add(1500 * time.Millisecond)
		for _, final := range []bool{false, true} {
			ra := s.advertisement(final)
			if i == len(steps)-1 && len(ra.Prefixes) != 4 {
				t.Fatalf("step %d: %d prefixes, want the deprecated one too", i, len(ra.Prefixes))
			}
			sameAsNDP(t, ra)
		}
	}
}

// Lifetimes beyond what a field holds are sent as its largest value
// (infinity for the 32-bit ones), negative ones as 0; ndp leaves these to
// the float conversion.
func TestMarshalRALifetimeClamps(t *testing.T) {
	ra := &RouterAdvertisement{RouterLifetime: 20 * time.Hour,
		Prefixes: []PrefixInformation{{Prefix: lan1, Valid: 200 * 365 * 24 * time.Hour, Preferred: -time.Second}},
		Routes:   []RouteInformation{{Prefix: deleg, Lifetime: infinity + time.Second}}}
	b, err := marshalRA(ra)
	if err != nil {
		t.Fatal(err)
	}
	if rl := binary.BigEndian.Uint16(b[6:]); rl != math.MaxUint16 {
		t.Errorf("router lifetime %d, want 65535", rl)
	}
	pi := b[raHeaderLen:]
	if v, p := binary.BigEndian.Uint32(pi[4:]), binary.BigEndian.Uint32(pi[8:]); v != math.MaxUint32 || p != 0 {
		t.Errorf("PIO lifetimes %d/%d, want infinity/0", v, p)
	}
	if rl := binary.BigEndian.Uint32(pi[32+4:]); rl != math.MaxUint32 {
		t.Errorf("RIO lifetime %d, want infinity", rl)
	}
}

func TestMarshalRARefuses(t *testing.T) {
	for name, ra := range map[string]*RouterAdvertisement{
		"link address of 4 bytes": {SourceLinkAddr: mac[:4]},
		"link address of 8 bytes": {SourceLinkAddr: append(mac, 0, 0)},
		"IPv4 prefix":             {Prefixes: []PrefixInformation{{Prefix: netip.MustParsePrefix("192.0.2.0/24")}}},
		"IPv4-mapped route":       {Routes: []RouteInformation{{Prefix: netip.MustParsePrefix("::ffff:192.0.2.0/120")}}},
		"no route prefix":         {Routes: []RouteInformation{{}}},
		"prefix length 129":       {Prefixes: []PrefixInformation{{Prefix: netip.PrefixFrom(netip.MustParseAddr("2001:db8::"), 129)}}},
		"route length 129":        {Routes: []RouteInformation{{Prefix: netip.PrefixFrom(netip.MustParseAddr("2001:db8::"), 129)}}},
		"IPv4 DNS server":         {DNSServers: []netip.Addr{netip.MustParseAddr("192.0.2.53")}},
		"128 DNS servers":         {DNSServers: make([]netip.Addr, maxRDNSS+1)},
	} {
		if b, err := marshalRA(ra); err == nil {
			t.Errorf("%s: marshalled % x", name, b)
		}
	}
}

// FuzzMarshalRA builds RAs from arbitrary bytes, within what radv sends
// and ndp encodes (masked IPv6 prefixes, whole-second lifetimes up to
// infinity, at most 15 DNS servers, Ethernet addresses), and requires
// ndp's bytes.
func FuzzMarshalRA(f *testing.F) {
	f.Add(uint8(64), uint8(0xe0), uint16(1800), []byte("\x00\x40\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0e\x10\x00\x00\x07\x08\xc0"))
	f.Add(uint8(0), uint8(0), uint16(0), []byte("\x01\x38\x20\x01\x0d\xb8\x80\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"))
	f.Add(uint8(255), uint8(0x40), uint16(65535), []byte("\x02\x00\x20\x01\x0d\xb8\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x53\xff\xff\xff\xff\x03\x00\x00\x05\xdc\x04\x02\x00\x00\x00\x00\x01"))
	f.Fuzz(func(t *testing.T, hop, flags uint8, life uint16, b []byte) {
		ra := &RouterAdvertisement{HopLimit: hop, Managed: flags&0x80 != 0, Other: flags&0x40 != 0,
			HomeAgent: flags&0x20 != 0, RouterLifetime: time.Duration(life) * time.Second}
		take := func(n int) []byte {
			if len(b) < n {
				b = append(b, make([]byte, n-len(b))...)
			}
			v := b[:n]
			b = b[n:]
			return v
		}
		prefix := func() netip.Prefix {
			bits := int(take(1)[0]) % 129
			return netip.PrefixFrom(netip.AddrFrom16([16]byte(take(16))), bits).Masked()
		}
		lifetime := func() time.Duration { return time.Duration(binary.BigEndian.Uint32(take(4))) * time.Second }
		for n := 0; len(b) > 0 && n < 64; n++ {
			switch take(1)[0] % 5 {
			case 0:
				p, fl := prefix(), take(1)[0]
				ra.Prefixes = append(ra.Prefixes, PrefixInformation{Prefix: p, OnLink: fl&1 != 0, Autonomous: fl&2 != 0,
					Valid: lifetime(), Preferred: lifetime()})
			case 1:
				ra.Routes = append(ra.Routes, RouteInformation{Prefix: prefix(), Lifetime: lifetime()})
			case 2:
				if len(ra.DNSServers) < ndpMaxRDNSS {
					ra.DNSServers = append(ra.DNSServers, netip.AddrFrom16([16]byte(take(16))).Unmap())
					if !is6(ra.DNSServers[len(ra.DNSServers)-1]) {
						ra.DNSServers = ra.DNSServers[:len(ra.DNSServers)-1]
					}
				}
				ra.DNSLifetime = lifetime()
			case 3:
				ra.MTU = binary.BigEndian.Uint32(take(4))
			case 4:
				ra.SourceLinkAddr = bytes.Clone(take(ethAddrLen))
			}
		}
		for i := range ra.Prefixes {
			if !is6(ra.Prefixes[i].Prefix.Addr()) {
				ra.Prefixes[i].Prefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		for i := range ra.Routes {
			if !is6(ra.Routes[i].Prefix.Addr()) {
				ra.Routes[i].Prefix = netip.PrefixFrom(netip.IPv6Unspecified(), 0)
			}
		}
		sameAsNDP(t, ra)
	})
}
