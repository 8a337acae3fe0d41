package tsp

import (
	"io"
	"net/netip"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/tsp/knownkeys"
)

// TunnelType is a TSP tunnel type as written on the wire.
type TunnelType string

// Tunnel types (spec §4.1). V6AnyV4 is only a request; offers are concrete.
const (
	V6V4    TunnelType = "v6v4"
	V6UDPV4 TunnelType = "v6udpv4"
	V6AnyV4 TunnelType = "v6anyv4"
	V4V6    TunnelType = "v4v6"
)

// AuthMethod is the configured auth_method.
type AuthMethod string

// Authentication methods (spec §3.1).
const (
	AuthAny       AuthMethod = "any"
	AuthAnonymous AuthMethod = "anonymous"
	AuthPlain     AuthMethod = "plain"
	AuthDigestMD5 AuthMethod = "digest-md5"
	AuthPassDSS   AuthMethod = "passdss-3des-1"
)

// Credentials authenticate one session.
type Credentials struct {
	Method   AuthMethod
	UserID   string
	Password secret.String
	// Server is the broker string as configured or redirected; DIGEST-MD5
	// puts it in digest-uri ("tsp/" + Server) exactly as given, and
	// PASSDSS-3DES-1 looks its key up under it.
	Server string

	// PASSDSS-3DES-1 only (spec §3.6).
	// KnownKeys is the known server keys file (config known_keys).
	KnownKeys string
	// KeyPolicy is server_key_policy; empty means KeyStrict.
	KeyPolicy KeyPolicy
	// KeyPrompt, when set, asks about an unknown key under KeyStrict. Set
	// it only when a person can answer (cmd/gogoc: stdin is a terminal).
	KeyPrompt knownkeys.Prompt

	// dhRand, when set, replaces crypto/rand for the PASSDSS DH private
	// value, so that tests can recompute the session keys they look for.
	dhRand io.Reader
}

// KeyPolicy is what PASSDSS-3DES-1 does with a broker key the known keys
// file does not vouch for.
type KeyPolicy = knownkeys.Policy

// Key policies (config server_key_policy).
const (
	KeyStrict = knownkeys.Strict // unknown or changed key: refuse (an operator at a terminal may accept an unknown one)
	KeyTOFU   = knownkeys.TOFU   // unknown key: store it; changed key: refuse
	KeyAccept = knownkeys.Accept // any key, nothing stored
)

// Request is what the client asks for (spec §4.1).
type Request struct {
	Type TunnelType
	// ClientV4 is the declared IPv4 endpoint; the zero value means "auto":
	// the transport's local address is used.
	ClientV4 netip.Addr
	// ClientV6 likewise for v4v6.
	ClientV6          netip.Addr
	Proxy             bool
	Keepalive         bool
	KeepaliveInterval int // seconds, the client's suggestion
	Router            bool
	PrefixLen         int      // requested delegation length (router only)
	DNSServers        []string // reverse-delegation name servers (router only)
}

// Offer is a validated tunnel offer (the broker's "info" reply). Every field
// has been checked for family and range, and against the address policy
// (policy.go), before a caller sees it. How it is shown (gogoc negotiate's
// JSON) is the command's business.
type Offer struct {
	Type     TunnelType
	Lifetime time.Duration // 0 when the broker gave none
	MTU      int

	ServerV4 netip.Addr
	ServerV6 netip.Addr
	ClientV4 netip.Addr
	ClientV6 netip.Addr

	ClientDNSName string
	DNSServers    []netip.Addr

	// Prefix is the delegated prefix, masked to its length; invalid when none.
	Prefix netip.Prefix

	// KeepaliveInterval is authoritative (spec §6); 0 disables keepalive.
	KeepaliveInterval time.Duration
	KeepaliveAddr     netip.Addr
}

// Broker is one entry of a redirect or broker list.
type Broker struct {
	Kind    string // "ipv4", "ipv6" or "dn"
	Address string
}

// ServerString renders the entry as a server string: IPv6 literals in
// brackets so that a port can follow (spec §14).
func (b Broker) ServerString() string {
	if b.Kind == "ipv6" {
		return "[" + b.Address + "]"
	}
	return b.Address
}
