package radv

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"
)

// Protocol constants (RFC 4861 §6.2.1, §10; RFC 4862 §5.5.3).
const (
	// MaxRouterLifetime is the largest router lifetime RFC 4861 allows.
	MaxRouterLifetime = 9000 * time.Second
	// MaxInitialInterval caps the intervals between the first
	// InitialAdvertisements unsolicited RAs.
	MaxInitialInterval = 16 * time.Second
	// InitialAdvertisements is MAX_INITIAL_RTR_ADVERTISEMENTS.
	InitialAdvertisements = 3
	// MinDelayBetweenRAs is MIN_DELAY_BETWEEN_RAS: multicast RAs are never
	// closer together than this.
	MinDelayBetweenRAs = 3 * time.Second
	// MaxRADelayTime is MAX_RA_DELAY_TIME: a multicast reply to
	// solicitations waits a random time up to this.
	MaxRADelayTime = 500 * time.Millisecond
	// twoHours: hosts ignore a valid lifetime below 2 h for an address that
	// has more left (RFC 4862 §5.5.3 e), so a deprecated prefix needs no
	// more than this to run out.
	twoHours = 2 * time.Hour
)

// Defaults in line with radvd (MinRtrAdvInterval 198 s, MaxRtrAdvInterval
// 600 s, AdvDefaultLifetime 3 × max, AdvValidLifetime 1 d,
// AdvPreferredLifetime 4 h).
const (
	DefaultMinInterval       = 198 * time.Second
	DefaultMaxInterval       = 600 * time.Second
	DefaultValidLifetime     = 24 * time.Hour
	DefaultPreferredLifetime = 4 * time.Hour
	DefaultHopLimit          = 64
	DefaultMTU               = 1280
	// A LAN where every host boots at once gets its first replies
	// directly; a flood gets 10 a second (and the multicast reply).
	DefaultSolicitedBurst    = 10
	DefaultSolicitedInterval = 100 * time.Millisecond
)

// Config tunes a Server. Zero fields take the defaults above.
type Config struct {
	MinInterval, MaxInterval time.Duration
	// InitialInterval caps the first InitialCount intervals (default 16 s,
	// 3 RAs).
	InitialInterval time.Duration
	InitialCount    int
	// MinDelay spaces multicast RAs (default 3 s).
	MinDelay time.Duration
	// MaxRADelay bounds the random wait of a multicast reply to
	// solicitations (default 500 ms), counted from the first one it
	// answers.
	MaxRADelay time.Duration
	// SolicitedBurst and SolicitedInterval are the token bucket of RAs
	// sent straight to a solicitor: at most SolicitedBurst in a row, then
	// one per SolicitedInterval (defaults 10 and 100 ms). A solicitation
	// that finds the bucket empty is answered by the next multicast RA,
	// which MinDelay limits. Each direct reply can cost the router a
	// neighbour resolution, so a flood must not get one each.
	SolicitedBurst    int
	SolicitedInterval time.Duration
	// RouterLifetime while the uplink is up: default 3 × MaxInterval,
	// clamped to 9000 s.
	RouterLifetime time.Duration
	// DNSLifetime of RDNSS: default 3 × MaxInterval.
	DNSLifetime time.Duration
	HopLimit    uint8
	// LinkAddr is sent as the source link-layer address option (none when
	// empty, e.g. on a point-to-point link).
	LinkAddr net.HardwareAddr
	// Now replaces the clock used for lifetimes counting down (tests).
	Now func() time.Time
	// Rand, when set, replaces the random choice of an interval in
	// [min, max] and of a reply's delay (tests). It gets the span and
	// returns 0..span.
	Rand func(span time.Duration) time.Duration
}

// Prefix is one prefix to advertise with the lifetimes granted for it:
// a /64 for stateless address autoconfiguration, or, OnLinkOnly, any
// length hosts only learn is on the link.
type Prefix struct {
	Prefix    netip.Prefix
	Valid     time.Duration // default DefaultValidLifetime
	Preferred time.Duration // default DefaultPreferredLifetime, at most Valid
	// ValidUntil and PreferredUntil, when set, bound the lifetimes by the
	// time left until then: the lifetimes of an address on the device,
	// which count down. A prefix past ValidUntil is not advertised.
	ValidUntil, PreferredUntil time.Time
	// OnLinkOnly clears the autonomous flag (RFC 4861 §4.6.2): hosts form
	// no address from the prefix, which may then be of any length.
	OnLinkOnly bool
	// KeepOnStop: the final RA advertises the prefix as before instead of
	// deprecating it. For a prefix that belongs to the link rather than to
	// this server (a ULA that netifd gave the LAN device): the daemon
	// that advertises after us carries it on, and hosts should not drop
	// their addresses in between.
	KeepOnStop bool
}

// lifetimes are the valid and preferred lifetimes to advertise at now;
// ok is false once the prefix is no longer valid.
func (x Prefix) lifetimes(now time.Time) (valid, pref time.Duration, ok bool) {
	valid, pref = x.Valid, x.Preferred
	if !x.ValidUntil.IsZero() {
		if valid = min(valid, x.ValidUntil.Sub(now).Truncate(time.Second)); valid <= 0 {
			return 0, 0, false
		}
	}
	if !x.PreferredUntil.IsZero() {
		pref = max(0, min(pref, x.PreferredUntil.Sub(now).Truncate(time.Second)))
	}
	return valid, min(pref, valid), true
}

// stale is a prefix no longer in Params, advertised deprecated until end.
type stale struct {
	end        time.Time
	onLinkOnly bool
}

// Params is what the RAs say; Update replaces it as a whole.
type Params struct {
	// Up: the uplink carries traffic, so hosts may use us as a default
	// router. When false the router lifetime is 0 and prefixes stay.
	Up bool
	// Prefixes are advertised on-link and autonomous (SLAAC).
	Prefixes []Prefix
	// Routes are sent as route information options (RFC 4191), e.g. the
	// whole delegated prefix when it is shorter than /64.
	Routes []netip.Prefix
	// DNS servers (RDNSS), at most 127. Search domains (DNSSL) are not
	// sent: nothing configures them.
	DNS []netip.Addr
	// MTU option; default 1280.
	MTU int
	// Managed and Other are the M and O flags (addresses, or other
	// settings, from DHCPv6); HomeAgent is the H flag (RFC 6275).
	Managed, Other, HomeAgent bool
}

// Stats counts what the Server did.
type Stats struct {
	// Wakeups counts every time the loop woke: timers, solicitations,
	// updates. Idle, only unsolicited RA timers wake it.
	Wakeups     uint64
	Multicast   uint64 // multicast RAs sent (unsolicited, rate-limited replies, final)
	Unicast     uint64 // RAs sent to a solicitor
	Solicits    uint64 // valid RSs received
	Deferred    uint64 // RSs left to the multicast reply: no token for a direct one
	Dropped     uint64 // messages ignored: not an RS, hop limit not 255, invalid
	WriteErrors uint64
}

// Server advertises Params on one link.
type Server struct {
	cfg Config

	mu         sync.Mutex
	params     Params
	deprecated map[netip.Prefix]stale // prefixes no longer in params
	stats      Stats
	changed    chan struct{} // capacity 1: "params changed, advertise soon"
	direct     bucket        // tokens for replies straight to a solicitor
}

// bucket is a token bucket: up to burst tokens, one more per every.
type bucket struct {
	burst  int
	every  time.Duration
	tokens int
	at     time.Time // when tokens was last topped up; zero: full
}

// take spends a token if there is one.
func (b *bucket) take(now time.Time) bool {
	if b.at.IsZero() {
		b.tokens, b.at = b.burst, now
	}
	if el := now.Sub(b.at); el >= b.every {
		// Counted in tokens before any conversion: a tiny every must not
		// overflow an int on 32-bit routers.
		if add := el / b.every; add >= time.Duration(b.burst-b.tokens) {
			b.tokens, b.at = b.burst, now
		} else {
			b.tokens += int(add)
			b.at = b.at.Add(add * b.every)
		}
	}
	if b.tokens == 0 {
		return false
	}
	b.tokens--
	return true
}

// New checks cfg and fills its defaults.
func New(cfg Config) (*Server, error) {
	if cfg.MaxInterval == 0 {
		cfg.MaxInterval = DefaultMaxInterval
	}
	if cfg.MinInterval == 0 {
		cfg.MinInterval = min(DefaultMinInterval, cfg.MaxInterval*3/4)
	}
	if cfg.MinInterval <= 0 || cfg.MinInterval > cfg.MaxInterval {
		return nil, fmt.Errorf("radv: intervals min %v max %v: want 0 < min <= max", cfg.MinInterval, cfg.MaxInterval)
	}
	if cfg.InitialInterval == 0 {
		cfg.InitialInterval = MaxInitialInterval
	}
	if cfg.InitialCount == 0 {
		cfg.InitialCount = InitialAdvertisements
	}
	if cfg.MinDelay == 0 {
		cfg.MinDelay = MinDelayBetweenRAs
	}
	if cfg.MaxRADelay == 0 {
		cfg.MaxRADelay = MaxRADelayTime
	}
	if cfg.SolicitedBurst == 0 {
		cfg.SolicitedBurst = DefaultSolicitedBurst
	}
	if cfg.SolicitedInterval == 0 {
		cfg.SolicitedInterval = DefaultSolicitedInterval
	}
	if cfg.MaxRADelay < 0 || cfg.SolicitedBurst < 0 || cfg.SolicitedInterval < 0 {
		return nil, errors.New("radv: negative solicitation limits")
	}
	if cfg.RouterLifetime == 0 {
		cfg.RouterLifetime = 3 * cfg.MaxInterval
	}
	// ndp encodes whatever it is given in 16 bits; RFC 4861 allows 9000 s.
	cfg.RouterLifetime = min(cfg.RouterLifetime, MaxRouterLifetime)
	if cfg.RouterLifetime < 0 {
		return nil, errors.New("radv: negative router lifetime")
	}
	if cfg.DNSLifetime == 0 {
		cfg.DNSLifetime = 3 * cfg.MaxInterval
	}
	if cfg.HopLimit == 0 {
		cfg.HopLimit = DefaultHopLimit
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Server{cfg: cfg, deprecated: map[netip.Prefix]stale{}, changed: make(chan struct{}, 1),
		direct: bucket{burst: cfg.SolicitedBurst, every: cfg.SolicitedInterval}}, nil
}

// Update replaces what is advertised and has it sent soon (within the
// multicast rate limit). A prefix that was advertised and is not in p any
// more is advertised deprecated until its valid lifetime, at most 2 h, is
// over; one that comes back is advertised normally again.
func (s *Server) Update(p Params) error {
	p, err := normalise(p)
	if err != nil {
		return err
	}
	now := s.cfg.Now()
	s.mu.Lock()
	for _, old := range s.params.Prefixes {
		if slices.ContainsFunc(p.Prefixes, func(n Prefix) bool { return n.Prefix == old.Prefix }) {
			continue
		}
		if valid, _, ok := old.lifetimes(now); ok {
			s.deprecated[old.Prefix] = stale{end: now.Add(min(valid, twoHours)), onLinkOnly: old.OnLinkOnly}
		}
	}
	for _, n := range p.Prefixes {
		delete(s.deprecated, n.Prefix)
	}
	s.params = p
	s.mu.Unlock()
	select {
	case s.changed <- struct{}{}:
	default:
	}
	return nil
}

// SetLinkAddr replaces the source link-layer address option (a device
// re-created with another hardware address).
func (s *Server) SetLinkAddr(hw net.HardwareAddr) {
	s.mu.Lock()
	s.cfg.LinkAddr = slices.Clone(hw)
	s.mu.Unlock()
}

// Stats returns a snapshot of the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

func (s *Server) count(f func(*Stats)) {
	s.mu.Lock()
	f(&s.stats)
	s.mu.Unlock()
}

// normalise fills defaults and refuses what cannot be advertised.
func normalise(p Params) (Params, error) {
	p.Prefixes = slices.Clone(p.Prefixes)
	for i := range p.Prefixes {
		x := &p.Prefixes[i]
		if !x.Prefix.IsValid() || !x.Prefix.Addr().Is6() || x.Prefix.Addr().Is4In6() {
			return p, fmt.Errorf("radv: prefix %v: not an IPv6 prefix", x.Prefix)
		}
		if x.Prefix.Bits() != 64 && !x.OnLinkOnly {
			return p, fmt.Errorf("radv: prefix %v: SLAAC needs an IPv6 /64", x.Prefix)
		}
		x.Prefix = x.Prefix.Masked()
		if x.Valid == 0 {
			x.Valid = DefaultValidLifetime
		}
		if x.Preferred == 0 {
			x.Preferred = DefaultPreferredLifetime
		}
		x.Preferred = min(x.Preferred, x.Valid)
		if x.Valid < 0 {
			return p, fmt.Errorf("radv: prefix %v: negative lifetime", x.Prefix)
		}
	}
	for _, r := range p.Routes {
		if !r.IsValid() || !r.Addr().Is6() || r.Addr().Is4In6() {
			return p, fmt.Errorf("radv: route %v: not an IPv6 prefix", r)
		}
	}
	for _, a := range p.DNS {
		if !is6(a) {
			return p, fmt.Errorf("radv: DNS server %v: RDNSS carries IPv6 addresses only", a)
		}
	}
	if len(p.DNS) > maxRDNSS {
		return p, fmt.Errorf("radv: %d DNS servers: one RDNSS option holds %d", len(p.DNS), maxRDNSS)
	}
	if p.MTU == 0 {
		p.MTU = DefaultMTU
	}
	if p.MTU < 1280 || p.MTU > 65535 {
		return p, fmt.Errorf("radv: MTU %d outside 1280..65535", p.MTU)
	}
	return p, nil
}

// advertisement builds the RA for this moment. final is the last RA before
// stopping: router lifetime 0, every prefix deprecated (but those to keep
// on stop), DNS withdrawn.
func (s *Server) advertisement(final bool) *RouterAdvertisement {
	now := s.cfg.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.params
	ra := &RouterAdvertisement{HopLimit: s.cfg.HopLimit, Managed: p.Managed, Other: p.Other, HomeAgent: p.HomeAgent,
		MTU: uint32(p.MTU)}
	if p.Up && !final {
		ra.RouterLifetime = s.cfg.RouterLifetime
	}
	for _, x := range p.Prefixes {
		valid, pref, ok := x.lifetimes(now)
		if !ok {
			continue
		}
		if final && !x.KeepOnStop {
			valid, pref = min(valid, twoHours), 0
		}
		ra.Prefixes = append(ra.Prefixes, pio(x.Prefix, valid, pref, x.OnLinkOnly))
	}
	// Deprecated prefixes in a stable order, so successive RAs compare equal.
	old := make([]netip.Prefix, 0, len(s.deprecated))
	for q, st := range s.deprecated {
		if !now.Before(st.end) {
			delete(s.deprecated, q)
			continue
		}
		old = append(old, q)
	}
	// Sorted through an index: []int's sort is linked anyway, a
	// []netip.Prefix one would add ~15 KB to the mips binary.
	order := make([]int, len(old))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(i, j int) int { return old[i].Addr().Compare(old[j].Addr()) })
	for _, i := range order {
		q := old[i]
		st := s.deprecated[q]
		ra.Prefixes = append(ra.Prefixes, pio(q, st.end.Sub(now).Truncate(time.Second), 0, st.onLinkOnly))
	}
	for _, r := range p.Routes {
		ra.Routes = append(ra.Routes, RouteInformation{Prefix: r.Masked(), Lifetime: ra.RouterLifetime})
	}
	if len(p.DNS) > 0 {
		ra.DNSServers = slices.Clone(p.DNS)
		if !final {
			ra.DNSLifetime = s.cfg.DNSLifetime
		}
	}
	// Only an Ethernet address has a source link-layer address option
	// radv can encode; without one, hosts resolve the router's address
	// by neighbour solicitation (RFC 4861 §4.2 lets the option out).
	if len(s.cfg.LinkAddr) == ethAddrLen {
		ra.SourceLinkAddr = slices.Clone(s.cfg.LinkAddr)
	}
	return ra
}

func pio(p netip.Prefix, valid, pref time.Duration, onLinkOnly bool) PrefixInformation {
	return PrefixInformation{Prefix: p, OnLink: true, Autonomous: !onLinkOnly, Valid: valid, Preferred: pref}
}
