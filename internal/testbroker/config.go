package testbroker

import (
	"cmp"
	//lint:ignore SA1019 PASSDSS-3DES-1 mandates DSA (spec §3.5).
	"crypto/dsa"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
	"github.com/jsklein/gogoc/internal/secret"
)

// Capability names as written in the CAPABILITY line.
const (
	TunnelV6V4    = "V6V4"
	TunnelV6UDPV4 = "V6UDPV4"
	TunnelV4V6    = "V4V6"

	AuthAnonymous = "ANONYMOUS"
	AuthPlain     = "PLAIN"
	AuthDigestMD5 = "DIGEST-MD5"
	// AuthPassDSS needs Config.DSAKey.
	AuthPassDSS = "PASSDSS-3DES-1"
)

// Phases name the points at which the server replies; Faults and
// Config.Redirect refer to them.
const (
	// PhaseVersion is the reply to VERSION= (the CAPABILITY line).
	PhaseVersion = "version"
	// PhaseEcho is the reply to an ECHO REQUEST distance probe.
	PhaseEcho = "echo"
	// PhaseAuth is the reply to the AUTHENTICATE command: the ANONYMOUS
	// status, the PLAIN empty ack or the DIGEST-MD5 challenge.
	PhaseAuth = "auth"
	// PhaseAuthStep is the reply to the client's next SASL message: the PLAIN
	// status, or the DIGEST-MD5 rspauth line.
	PhaseAuthStep = "auth-step"
	// PhaseAuthFinal is the DIGEST-MD5 status after rspauth (the reply to the
	// client's poll over UDP; written right after rspauth over TCP).
	PhaseAuthFinal = "auth-final"
	// PhaseTunnel is the reply to the tunnel request (the offer).
	PhaseTunnel = "tunnel"
	// PhaseAccept is the reply to the accept message (an empty ack over UDP,
	// nothing over TCP).
	PhaseAccept = "accept"
)

var allPhases = []string{PhaseVersion, PhaseEcho, PhaseAuth, PhaseAuthStep, PhaseAuthFinal, PhaseTunnel, PhaseAccept}

// Redirects can only be understood by the client where it checks for a
// status > 1000 (spec §5.5).
var redirectPhases = []string{PhaseVersion, PhaseAuth, PhaseAuthStep, PhaseAuthFinal, PhaseTunnel}

// DefaultVersions are the protocol versions accepted when Config.Versions is
// empty. 1.0.1 is only ever accepted over TCP.
var defaultVersions = []string{"2.0.2", "2.0.1", "2.0.0", "1.0.1"}

// Config describes one broker. The zero value is usable: anonymous, PLAIN and
// DIGEST-MD5 offered (the latter two need Users), tunnels V6V4 and V6UDPV4.
type Config struct {
	// Tunnels lists the capability tunnel types in the order they are
	// announced (default V6V4, V6UDPV4).
	Tunnels []string
	// Auth lists the mechanisms announced, in order (default ANONYMOUS,
	// PLAIN, DIGEST-MD5).
	Auth []string
	// Users maps userid to password for PLAIN and DIGEST-MD5.
	Users map[string]string
	// Realm is the DIGEST-MD5 realm (default "cdpatsps", as tsps).
	Realm string
	// DSAKey is the broker's PASSDSS-3DES-1 key, required when Auth lists
	// that mechanism; GenerateDSAKey makes one.
	DSAKey *dsa.PrivateKey
	// Versions lists the accepted VERSION values (default 2.0.2, 2.0.1,
	// 2.0.0, 1.0.1); any other gets 302 so that version fallback can be
	// tested. 1.0.1 is refused over UDP whatever this says.
	Versions []string

	// ServerV4 is the server's IPv4 tunnel endpoint in v6v4/v6udpv4 offers.
	// Default: the address the client reached (the listener's address, or
	// the local address of the TCP connection).
	ServerV4 netip.Addr
	// ServerV6 is the server's tunnel IPv6 address in v6 offers, also the
	// keepalive destination (default: ClientPool's first host, ::1).
	ServerV6 netip.Addr
	// ClientPool is the prefix client tunnel IPv6 addresses come from
	// (default 2001:db8:ab::/64). Authenticated users get a stable address
	// counted up from ::2; anonymous clients get tsps's derived address
	// (bits up to /80 set, then IPv4 source and port) when the pool is /80
	// or shorter and the source is IPv4.
	ClientPool netip.Prefix
	// ClientPool4 is the v4v6 pool (default 198.18.0.0/24): its first host
	// is the server's inner IPv4 and keepalive address; clients get the
	// following ones.
	ClientPool4 netip.Prefix
	// PrefixPool is the delegation pool (default 2001:db8:8000::/33).
	// Router requests get a /48../64 from it, stable per user and length.
	PrefixPool netip.Prefix

	// KeepaliveInterval: 0 echoes the client's suggestion (at least 5 s) and
	// sends none when the client asked for none; > 0 always sends this
	// value; < 0 never sends a keepalive element.
	KeepaliveInterval int
	// Lifetime is the offer's lifetime attribute in seconds (default
	// 604800). Established sessions whose transport carries no tunnel data
	// are forgotten when it runs out.
	Lifetime int
	// MTU, when > 0, is sent as the offer's mtu attribute.
	MTU int
	// DNSServers are sent as the client's dns_server list.
	DNSServers []netip.Addr
	// ClientDomain, when set, gives authenticated clients an
	// <address type="dn">user.ClientDomain</address>.
	ClientDomain string

	// Redirect, when non-empty, makes the server answer 1200 with this
	// broker list at Faults.RedirectPhase (default PhaseVersion).
	Redirect []Broker

	// StrictRUDP makes the control/data test read the header word as tsps
	// does on a little-endian host: only datagrams whose 4th byte has the
	// top nibble 0xF are TSP control. A client that breaks gogoc's numbering
	// (0xF00000F0 upwards, at most 16 exchanges) then gets the 310 status
	// error, as it would from tsps.
	StrictRUDP bool

	// Faults is the initial fault set; see SetFaults.
	Faults Faults
	// Limits bounds the resources a client can make the server hold.
	Limits Limits

	// DataPlane, if set, is told about established sessions and gets the
	// packets v6udpv4 clients send. Without one, the server answers ICMPv6
	// echo requests sent to ServerV6 through a v6udpv4 tunnel, so that
	// client keepalives work.
	DataPlane DataPlane

	// Log receives the server's log (default: discarded). Passwords and
	// DIGEST-MD5 responses are never logged.
	Log *logx.Logger
}

// Broker is one entry of a redirect list.
type Broker struct {
	Kind    string // "ipv4", "ipv6" or "dn"
	Address string
}

// Faults scripts misbehaviour. Counts are per session and 1-based; phase
// names are the Phase* constants. Drop counts apply to UDP only.
type Faults struct {
	// DropInbound drops the Nth UDP datagram received in a session, unseen.
	DropInbound []int
	// DropReply processes the Nth reply of a session but does not send it
	// (the client's retransmission then gets the cached copy).
	DropReply []int
	// Delay holds back every reply by this long.
	Delay time.Duration
	// StatusAt answers "<code> <text>" instead of the normal reply at a
	// phase, then ends the session (framed with Content-length in the
	// tunnel phase).
	StatusAt map[string]int
	// RawAt sends these exact bytes instead of the normal reply at a phase
	// (after the echoed header over UDP). The state machine moves on as if
	// the normal reply had been sent.
	RawAt map[string][]byte
	// CloseAt sends nothing at this phase: TCP connections are closed and
	// UDP sessions go silent until they expire.
	CloseAt string
	// RedirectPhase is where Config.Redirect is answered (default version).
	RedirectPhase string
	// Chunk, when > 0, cuts tunnel-phase replies into pieces of this many
	// bytes: over UDP the first answers the request and each further one
	// answers one of the client's header-only polls; over TCP each is a
	// separate write.
	Chunk int
	// FixedNonce replaces the random DIGEST-MD5 nonce (for test vectors).
	FixedNonce string
	// BadSignature makes PASSDSS msg2 carry a valid DSA signature over the
	// wrong hash, as a forged or replayed msg2 would.
	BadSignature bool
}

// Limits bounds what clients can make the server hold. Zero fields take the
// defaults shown.
type Limits struct {
	// MaxSessions caps live sessions over all transports (default 4096).
	// Beyond it, VERSION is answered with 530 and nothing is kept.
	MaxSessions int
	// MaxPerSource caps sessions per client IP address (default 1024).
	MaxPerSource int
	// IdleTimeout ends a session that is still negotiating (or has failed
	// and only answers retransmissions) after this much silence (default
	// 2 min, above gogoc's 66 s worst case for one RUDP exchange).
	IdleTimeout time.Duration
}

// Defaults for Config fields.
var (
	defaultClientPool  = netip.MustParsePrefix("2001:db8:ab::/64")
	defaultClientPool4 = netip.MustParsePrefix("198.18.0.0/24")
	defaultPrefixPool  = netip.MustParsePrefix("2001:db8:8000::/33")
)

const (
	defaultRealm        = "cdpatsps"
	defaultLifetime     = 604800
	defaultMaxSessions  = 4096
	defaultMaxPerSource = 1024
	defaultIdleTimeout  = 2 * time.Minute

	// maxMessage bounds one client message (the client's own frame limit).
	maxMessage = 4096
	// maxRedirect bounds what Config.Redirect can put in one reply.
	maxRedirect = 200
)

// settings is the validated, defaulted, private copy of a Config.
type settings struct {
	tunnels      []string
	auth         []string
	users        map[string]secret.String
	realm        string
	dsaKey       *dsa.PrivateKey
	versions     []string
	serverV4     netip.Addr
	serverV6     netip.Addr
	clientPool   netip.Prefix
	clientPool4  netip.Prefix
	prefixPool   netip.Prefix
	keepalive    int
	lifetime     int
	mtu          int
	dnsServers   []netip.Addr
	clientDomain string
	redirect     []Broker
	strictRUDP   bool
	limits       Limits
	dp           DataPlane
	log          *logx.Logger
}

func (cfg *Config) settings() (*settings, error) {
	st := &settings{
		tunnels:      upperList(cfg.Tunnels, []string{TunnelV6V4, TunnelV6UDPV4}),
		auth:         upperList(cfg.Auth, []string{AuthAnonymous, AuthPlain, AuthDigestMD5}),
		users:        make(map[string]secret.String, len(cfg.Users)),
		realm:        cmp.Or(cfg.Realm, defaultRealm),
		dsaKey:       cfg.DSAKey,
		versions:     slices.Clone(cfg.Versions),
		serverV4:     cfg.ServerV4.Unmap(),
		serverV6:     cfg.ServerV6,
		clientPool:   cfg.ClientPool,
		clientPool4:  cfg.ClientPool4,
		prefixPool:   cfg.PrefixPool,
		keepalive:    cfg.KeepaliveInterval,
		lifetime:     cmp.Or(cfg.Lifetime, defaultLifetime),
		mtu:          cfg.MTU,
		dnsServers:   slices.Clone(cfg.DNSServers),
		clientDomain: cfg.ClientDomain,
		redirect:     slices.Clone(cfg.Redirect),
		strictRUDP:   cfg.StrictRUDP,
		limits:       cfg.Limits,
		dp:           cfg.DataPlane,
		log:          cfg.Log,
	}
	for u, p := range cfg.Users {
		if u == "" || strings.ContainsAny(u, "\x00\r\n") || strings.ContainsAny(p, "\x00\r\n") {
			return nil, fmt.Errorf("testbroker: user %q: empty name, or NUL/CR/LF in name or password", u)
		}
		st.users[u] = secret.String(p)
	}
	for _, t := range st.tunnels {
		if !slices.Contains([]string{TunnelV6V4, TunnelV6UDPV4, TunnelV4V6}, t) {
			return nil, fmt.Errorf("testbroker: unknown tunnel type %q", t)
		}
	}
	for _, a := range st.auth {
		switch a {
		case AuthAnonymous, AuthPlain, AuthDigestMD5:
		case AuthPassDSS:
			if err := checkDSAKey(cfg.DSAKey); err != nil {
				return nil, fmt.Errorf("testbroker: %s: %w", a, err)
			}
		default:
			return nil, fmt.Errorf("testbroker: unknown auth mechanism %q", a)
		}
	}
	if len(st.versions) == 0 {
		st.versions = slices.Clone(defaultVersions)
	}
	if strings.ContainsAny(st.realm, "\"\\\r\n,") {
		return nil, fmt.Errorf("testbroker: realm %q must not contain quotes, backslashes, commas or line breaks", st.realm)
	}

	if !st.clientPool.IsValid() {
		st.clientPool = defaultClientPool
	}
	if !st.clientPool4.IsValid() {
		st.clientPool4 = defaultClientPool4
	}
	if !st.prefixPool.IsValid() {
		st.prefixPool = defaultPrefixPool
	}
	if p := st.clientPool; !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() < 16 || p.Bits() > 126 || p != p.Masked() {
		return nil, fmt.Errorf("testbroker: ClientPool %s: want a masked IPv6 prefix of /16../126", p)
	}
	if p := st.clientPool4; !p.Addr().Is4() || p.Bits() > 30 || p != p.Masked() {
		return nil, fmt.Errorf("testbroker: ClientPool4 %s: want a masked IPv4 prefix of /30 or shorter", p)
	}
	if p := st.prefixPool; !p.Addr().Is6() || p.Addr().Is4In6() || p.Bits() < 16 || p.Bits() > 64 || p != p.Masked() {
		return nil, fmt.Errorf("testbroker: PrefixPool %s: want a masked IPv6 prefix of /16../64", p)
	}
	if st.clientPool.Overlaps(st.prefixPool) {
		return nil, fmt.Errorf("testbroker: ClientPool %s overlaps PrefixPool %s", st.clientPool, st.prefixPool)
	}
	if !st.serverV6.IsValid() {
		st.serverV6 = st.clientPool.Addr().Next()
	}
	if !st.serverV6.Is6() || st.serverV6.Is4In6() {
		return nil, fmt.Errorf("testbroker: ServerV6 %s is not an IPv6 address", st.serverV6)
	}
	if st.serverV4.IsValid() && !st.serverV4.Is4() {
		return nil, fmt.Errorf("testbroker: ServerV4 %s is not an IPv4 address", st.serverV4)
	}
	for _, a := range st.dnsServers {
		if !a.IsValid() {
			return nil, fmt.Errorf("testbroker: invalid DNS server address")
		}
	}
	if st.lifetime < 1 {
		return nil, fmt.Errorf("testbroker: Lifetime %d: want seconds > 0", st.lifetime)
	}
	if st.mtu < 0 {
		return nil, fmt.Errorf("testbroker: MTU %d is negative", st.mtu)
	}
	if len(st.redirect) > maxRedirect {
		return nil, fmt.Errorf("testbroker: %d redirect entries, at most %d", len(st.redirect), maxRedirect)
	}
	for _, b := range st.redirect {
		if b.Kind != "ipv4" && b.Kind != "ipv6" && b.Kind != "dn" {
			return nil, fmt.Errorf("testbroker: redirect entry %q: kind %q is not ipv4, ipv6 or dn", b.Address, b.Kind)
		}
	}

	if st.limits.MaxSessions <= 0 {
		st.limits.MaxSessions = defaultMaxSessions
	}
	if st.limits.MaxPerSource <= 0 {
		st.limits.MaxPerSource = defaultMaxPerSource
	}
	if st.limits.IdleTimeout <= 0 {
		st.limits.IdleTimeout = defaultIdleTimeout
	}
	if st.log == nil {
		st.log = logx.Discard()
	}
	return st, nil
}

// checkDSAKey wants a complete key whose public value matches the private.
func checkDSAKey(k *dsa.PrivateKey) error {
	if k == nil || k.P == nil || k.Q == nil || k.G == nil || k.Y == nil || k.X == nil {
		return errors.New("Config.DSAKey is missing or incomplete")
	}
	if k.Y.Cmp(new(big.Int).Exp(k.G, k.X, k.P)) != 0 {
		return errors.New("Config.DSAKey: public value does not match the private one")
	}
	return nil
}

// check validates a fault set.
func (f *Faults) check() error {
	for p := range f.StatusAt {
		if !slices.Contains(allPhases, p) {
			return fmt.Errorf("testbroker: Faults.StatusAt: unknown phase %q", p)
		}
	}
	for p := range f.RawAt {
		if !slices.Contains(allPhases, p) {
			return fmt.Errorf("testbroker: Faults.RawAt: unknown phase %q", p)
		}
	}
	if f.CloseAt != "" && !slices.Contains(allPhases, f.CloseAt) {
		return fmt.Errorf("testbroker: Faults.CloseAt: unknown phase %q", f.CloseAt)
	}
	if f.RedirectPhase != "" && !slices.Contains(redirectPhases, f.RedirectPhase) {
		return fmt.Errorf("testbroker: Faults.RedirectPhase: %q is not one of %v", f.RedirectPhase, redirectPhases)
	}
	if f.Delay < 0 || f.Chunk < 0 {
		return fmt.Errorf("testbroker: Faults: negative Delay or Chunk")
	}
	if f.FixedNonce != "" && strings.ContainsAny(f.FixedNonce, "\",\\\r\n") {
		return fmt.Errorf("testbroker: Faults.FixedNonce %q must not contain quotes, commas, backslashes or line breaks", f.FixedNonce)
	}
	return nil
}

// clone deep-copies a fault set, so that sessions holding a snapshot never
// see a caller's later changes to the maps or slices.
func (f Faults) clone() Faults {
	f.DropInbound = slices.Clone(f.DropInbound)
	f.DropReply = slices.Clone(f.DropReply)
	f.StatusAt = maps.Clone(f.StatusAt)
	if f.RawAt != nil {
		raw := make(map[string][]byte, len(f.RawAt))
		for k, v := range f.RawAt {
			raw[k] = slices.Clone(v)
		}
		f.RawAt = raw
	}
	if f.RedirectPhase == "" {
		f.RedirectPhase = PhaseVersion
	}
	return f
}

func upperList(in, def []string) []string {
	if len(in) == 0 {
		return slices.Clone(def)
	}
	out := make([]string, len(in))
	for i, s := range in {
		out[i] = strings.ToUpper(strings.TrimSpace(s))
	}
	return out
}
