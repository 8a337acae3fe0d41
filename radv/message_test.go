package radv

import (
	"net"
	"net/netip"
	"reflect"
	"testing"
	"time"

	"github.com/mdlayher/ndp"
)

var (
	lan1  = netip.MustParsePrefix("2001:db8:8000::/64")
	lan2  = netip.MustParsePrefix("2001:db8:8000:100::/64")
	deleg = netip.MustParsePrefix("2001:db8:8000::/56")
	dns1  = netip.MustParseAddr("2001:db8::53")
	mac   = net.HardwareAddr{0x02, 0, 0, 0, 0, 1}
	// What netifd may give a LAN device besides the delegated prefix.
	ula      = netip.MustParsePrefix("fd12:3456:789a::/64")
	onlink80 = netip.MustParsePrefix("2001:db8:77:1:2::/80")
)

// roundTrip marshals ra to its wire form and parses it back with ndp, as
// a host would read it.
func roundTrip(t *testing.T, ra *RouterAdvertisement) *ndp.RouterAdvertisement {
	t.Helper()
	b, err := marshalRA(ra)
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	m, err := ndp.ParseMessage(b)
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	return m.(*ndp.RouterAdvertisement)
}

// ndpPIO is the prefix information option ndp reads for a prefix the
// Server advertises.
func ndpPIO(p netip.Prefix, valid, pref time.Duration, onLinkOnly bool) *ndp.PrefixInformation {
	return &ndp.PrefixInformation{PrefixLength: uint8(p.Bits()), OnLink: true, AutonomousAddressConfiguration: !onLinkOnly,
		ValidLifetime: valid, PreferredLifetime: pref, Prefix: p.Addr()}
}

func TestAdvertisementRoundTrip(t *testing.T) {
	mtu := func(n uint32) ndp.Option { return ndp.NewMTU(n) }
	slla := &ndp.LinkLayerAddress{Direction: ndp.Source, Addr: mac}
	tests := []struct {
		name   string
		cfg    Config
		params Params
		final  bool
		want   *ndp.RouterAdvertisement
	}{
		{
			name:   "nothing yet: router lifetime 0, MTU only",
			cfg:    Config{MaxInterval: 600 * time.Second},
			params: Params{},
			want:   &ndp.RouterAdvertisement{CurrentHopLimit: 64, Options: []ndp.Option{mtu(1280)}},
		},
		{
			name: "up, /56 delegated: PIO, RIO, RDNSS, MTU, SLLA",
			cfg:  Config{MaxInterval: 600 * time.Second, LinkAddr: mac},
			params: Params{Up: true, Prefixes: []Prefix{{Prefix: lan1, Valid: time.Hour, Preferred: 30 * time.Minute}},
				Routes: []netip.Prefix{deleg}, DNS: []netip.Addr{dns1}, MTU: 1480},
			want: &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 1800 * time.Second, Options: []ndp.Option{
				ndpPIO(lan1, time.Hour, 30*time.Minute, false),
				&ndp.RouteInformation{PrefixLength: 56, RouteLifetime: 1800 * time.Second, Prefix: deleg.Addr()},
				&ndp.RecursiveDNSServer{Lifetime: 1800 * time.Second, Servers: []netip.Addr{dns1}},
				mtu(1480), slla,
			}},
		},
		{
			name:   "defaults: lifetimes 1 d / 4 h, router lifetime clamped to 9000 s",
			cfg:    Config{MaxInterval: time.Hour, RouterLifetime: 5 * time.Hour},
			params: Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}},
			want: &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 9000 * time.Second, Options: []ndp.Option{
				ndpPIO(lan1, 24*time.Hour, 4*time.Hour, false), mtu(1280),
			}},
		},
		{
			name:   "preferred never above valid",
			cfg:    Config{},
			params: Params{Up: true, Prefixes: []Prefix{{Prefix: lan1, Valid: time.Minute, Preferred: time.Hour}}},
			want: &ndp.RouterAdvertisement{CurrentHopLimit: 64, RouterLifetime: 1800 * time.Second, Options: []ndp.Option{
				ndpPIO(lan1, time.Minute, time.Minute, false), mtu(1280),
			}},
		},
		{
			name:   "uplink down: router lifetime 0, RIO withdrawn, prefix kept",
			cfg:    Config{MaxInterval: 600 * time.Second},
			params: Params{Up: false, Prefixes: []Prefix{{Prefix: lan1}}, Routes: []netip.Prefix{deleg}},
			want: &ndp.RouterAdvertisement{CurrentHopLimit: 64, Options: []ndp.Option{
				ndpPIO(lan1, 24*time.Hour, 4*time.Hour, false),
				&ndp.RouteInformation{PrefixLength: 56, Prefix: deleg.Addr()},
				mtu(1280),
			}},
		},
		{
			name: "final: lifetime 0, preferred 0, valid at most 2 h, DNS lifetime 0",
			cfg:  Config{MaxInterval: 600 * time.Second},
			params: Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}, {Prefix: lan2, Valid: time.Hour}},
				DNS: []netip.Addr{dns1}},
			final: true,
			want: &ndp.RouterAdvertisement{CurrentHopLimit: 64, Options: []ndp.Option{
				ndpPIO(lan1, 2*time.Hour, 0, false), ndpPIO(lan2, time.Hour, 0, false),
				&ndp.RecursiveDNSServer{Servers: []netip.Addr{dns1}},
				mtu(1280),
			}},
		},
		{
			name: "flags, a ULA kept on stop, an on-link-only /80: final RA deprecates only the own prefix",
			cfg:  Config{MaxInterval: 600 * time.Second},
			params: Params{Up: true, Managed: true, Other: true, Prefixes: []Prefix{{Prefix: lan1},
				{Prefix: ula, Valid: time.Hour, Preferred: 30 * time.Minute, KeepOnStop: true},
				{Prefix: onlink80, Valid: time.Hour, Preferred: time.Hour, OnLinkOnly: true, KeepOnStop: true}}},
			final: true,
			want: &ndp.RouterAdvertisement{CurrentHopLimit: 64, ManagedConfiguration: true, OtherConfiguration: true, Options: []ndp.Option{
				ndpPIO(lan1, 2*time.Hour, 0, false), ndpPIO(ula, time.Hour, 30*time.Minute, false), ndpPIO(onlink80, time.Hour, time.Hour, true),
				mtu(1280),
			}},
		},
		{
			name:   "home agent flag",
			cfg:    Config{MaxInterval: 600 * time.Second},
			params: Params{Up: true, HomeAgent: true},
			want:   &ndp.RouterAdvertisement{CurrentHopLimit: 64, MobileIPv6HomeAgent: true, RouterLifetime: 1800 * time.Second, Options: []ndp.Option{mtu(1280)}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := New(tt.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Update(tt.params); err != nil {
				t.Fatal(err)
			}
			got := roundTrip(t, s.advertisement(tt.final))
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("RA after the wire:\n got %#v\nwant %#v", got, tt.want)
				for i := range max(len(got.Options), len(tt.want.Options)) {
					var g, w ndp.Option
					if i < len(got.Options) {
						g = got.Options[i]
					}
					if i < len(tt.want.Options) {
						w = tt.want.Options[i]
					}
					t.Logf("option %d: got %+v want %+v", i, g, w)
				}
			}
		})
	}
}

// The wire bytes of the fields the RFC fixes: type 134, hop limit, router
// lifetime in seconds.
func TestAdvertisementWireHeader(t *testing.T) {
	s, err := New(Config{MaxInterval: 600 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}); err != nil {
		t.Fatal(err)
	}
	b, err := marshalRA(s.advertisement(false))
	if err != nil {
		t.Fatal(err)
	}
	if b[0] != 134 || b[4] != 64 || b[5] != 0 || b[6] != 0x07 || b[7] != 0x08 { // 1800 = 0x0708
		t.Fatalf("header % x", b[:16])
	}
	// PIO right after the 16-byte header: type 3, length 4, /64, L and A.
	if b[16] != 3 || b[17] != 4 || b[18] != 64 || b[19] != 0xc0 {
		t.Fatalf("PIO % x", b[16:24])
	}
}

func TestDeprecatedPrefixCountsDown(t *testing.T) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s, err := New(Config{Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	pios := func() map[netip.Prefix]*ndp.PrefixInformation {
		out := map[netip.Prefix]*ndp.PrefixInformation{}
		for _, o := range roundTrip(t, s.advertisement(false)).Options {
			if p, ok := o.(*ndp.PrefixInformation); ok {
				out[netip.PrefixFrom(p.Prefix, int(p.PrefixLength))] = p
			}
		}
		return out
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1, Valid: 24 * time.Hour}}}))
	must(s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan2, Valid: 24 * time.Hour}}}))
	got := pios()
	if old := got[lan1]; old == nil || old.PreferredLifetime != 0 || old.ValidLifetime != 2*time.Hour {
		t.Fatalf("replaced prefix right after the change: %+v, want preferred 0 valid 2h", old)
	}
	if cur := got[lan2]; cur == nil || cur.PreferredLifetime != DefaultPreferredLifetime {
		t.Fatalf("new prefix: %+v", cur)
	}
	now = now.Add(90*time.Minute + 500*time.Millisecond)
	if old := pios()[lan1]; old == nil || old.ValidLifetime != 29*time.Minute+59*time.Second {
		t.Fatalf("90 min later: %+v, want valid 29m59s", old)
	}
	now = now.Add(30 * time.Minute)
	if old, ok := pios()[lan1]; ok {
		t.Fatalf("expired prefix still advertised: %+v", old)
	}

	// A short-lived prefix runs out on its own time, not 2 h.
	must(s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1, Valid: 10 * time.Minute}}}))
	must(s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan2}}}))
	if old := pios()[lan1]; old == nil || old.ValidLifetime != 10*time.Minute {
		t.Fatalf("short prefix deprecated: %+v, want valid 10m", old)
	}
	// Coming back undeprecates it.
	must(s.Update(Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}))
	got = pios()
	if len(got) != 2 || got[lan1].PreferredLifetime == 0 || got[lan2].PreferredLifetime != 0 {
		t.Fatalf("after the old prefix came back: %+v", got)
	}
}

func TestConfigAndParamsRejected(t *testing.T) {
	if _, err := New(Config{MinInterval: time.Minute, MaxInterval: time.Second}); err == nil {
		t.Error("min > max accepted")
	}
	s, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	bad := []Params{
		{Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("2001:db8::/48")}}},
		{Prefixes: []Prefix{{Prefix: netip.MustParsePrefix("10.0.0.0/24")}}},
		{DNS: []netip.Addr{netip.MustParseAddr("192.0.2.53")}},
		{MTU: 1000},
		{Routes: []netip.Prefix{{}}},
	}
	good := Params{Up: true, Prefixes: []Prefix{{Prefix: lan1}}}
	if err := s.Update(good); err != nil {
		t.Fatal(err)
	}
	for _, p := range bad {
		if err := s.Update(p); err == nil {
			t.Errorf("Update(%+v) accepted", p)
		}
	}
	// A refused update loses nothing.
	if ra := s.advertisement(false); ra.RouterLifetime == 0 || len(ra.Prefixes) != 1 || ra.MTU != 1280 {
		t.Fatalf("after refused updates: %+v", ra)
	}
}

func TestIntervals(t *testing.T) {
	for _, r := range []time.Duration{0, time.Hour, -time.Hour} {
		s, err := New(Config{MinInterval: 200 * time.Second, MaxInterval: 600 * time.Second,
			Rand: func(time.Duration) time.Duration { return r }})
		if err != nil {
			t.Fatal(err)
		}
		want := min(max(200*time.Second+r, 200*time.Second), 600*time.Second)
		for n := range 5 {
			got := s.interval(n)
			w := want
			if n < InitialAdvertisements {
				w = min(w, MaxInitialInterval)
			}
			if got != w {
				t.Errorf("rand %v, RA %d: interval %v, want %v", r, n, got, w)
			}
		}
	}
	s, _ := New(Config{})
	for range 1000 {
		if d := s.interval(10); d < DefaultMinInterval || d > DefaultMaxInterval {
			t.Fatalf("interval %v outside radvd's defaults", d)
		}
	}
}

// TestPrefixCountsDown: lifetimes read from an address count down with
// the clock; the prefix leaves the RAs when it is no longer valid, and
// when it leaves Params before that it is deprecated for what it has
// left, not for 2 h.
func TestPrefixCountsDown(t *testing.T) {
	now := time.Unix(1_000_000, 0)
	s, err := New(Config{MaxInterval: 600 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	p := Prefix{Prefix: ula, Valid: DefaultValidLifetime, Preferred: DefaultPreferredLifetime,
		ValidUntil: now.Add(90 * time.Minute), PreferredUntil: now.Add(30 * time.Minute)}
	if err := s.Update(Params{Up: true, Prefixes: []Prefix{p}}); err != nil {
		t.Fatal(err)
	}
	check := func(want ...*ndp.PrefixInformation) {
		t.Helper()
		var got []*ndp.PrefixInformation
		for _, o := range roundTrip(t, s.advertisement(false)).Options {
			if pi, ok := o.(*ndp.PrefixInformation); ok {
				got = append(got, pi)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("at +%v: PIOs %+v, want %+v", now.Sub(time.Unix(1_000_000, 0)), got, want)
		}
	}
	check(ndpPIO(ula, 90*time.Minute, 30*time.Minute, false))
	now = now.Add(40 * time.Minute)
	check(ndpPIO(ula, 50*time.Minute, 0, false))
	now = now.Add(50 * time.Minute)
	check()
	now = now.Add(-80 * time.Minute) // 10 minutes in: 80 min valid left
	if err := s.Update(Params{Up: true}); err != nil {
		t.Fatal(err)
	}
	check(ndpPIO(ula, 80*time.Minute, 0, false))
}
