// Package config is gogoc's configuration model: one Config with every key
// of the old gogoc.conf (spec §11.2) and the keys the new client adds, its
// defaults, and its validation. It reads both the OpenWrt UCI file
// (/etc/config/gogoc, one `config gogoc 'main'` section) and a legacy
// gogoc.conf, and reports every problem with the file, line and key, so a
// person can fix them all in one go. The password is a secret.String and
// never appears in a message.
package config

import (
	"net/netip"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
)

// Format says which kind of file a configuration came from; a few defaults
// depend on it.
type Format int

const (
	// FormatUCI is /etc/config/gogoc. The service starts disabled.
	FormatUCI Format = iota + 1
	// FormatLegacy is an old gogoc.conf. The old client had no switch, so
	// such a file is enabled unless it says otherwise.
	FormatLegacy
)

func (f Format) String() string {
	switch f {
	case FormatUCI:
		return "uci"
	case FormatLegacy:
		return "legacy"
	}
	return "unknown"
}

// AuthMethod is auth_method. The values are the protocol's names (the tsp
// package's AuthMethod), so a conversion maps one onto the other.
type AuthMethod string

const (
	AuthAnonymous AuthMethod = "anonymous"
	AuthAny       AuthMethod = "any" // strongest offered of PASSDSS, DIGEST-MD5; never PLAIN (tsp.chooseMechanism)
	AuthPlain     AuthMethod = "plain"
	AuthDigestMD5 AuthMethod = "digest-md5"
	AuthPassDSS   AuthMethod = "passdss-3des-1"
)

// HostType is host_type: a router also asks for a prefix for its LAN.
type HostType string

const (
	HostTypeHost   HostType = "host"
	HostTypeRouter HostType = "router"
)

// TunnelMode is tunnel_mode; the values are the tsp package's TunnelType.
type TunnelMode string

const (
	TunnelV6AnyV4  TunnelMode = "v6anyv4" // let the broker pick v6v4 or v6udpv4 (NAT)
	TunnelV6V4     TunnelMode = "v6v4"    // IPv6 in IPv4, protocol 41
	TunnelV6UDPV4  TunnelMode = "v6udpv4" // IPv6 in UDP over IPv4, through NAT
	TunnelV4V6     TunnelMode = "v4v6"    // IPv4 in IPv6
	tunnelDSLite   TunnelMode = "dslite"  // refused with an explanation
	modesSupported            = "v6anyv4, v6v4, v6udpv4, v4v6"
)

// RAMode is ra: who advertises the delegated prefix on the LAN.
type RAMode string

const (
	RABuiltin RAMode = "builtin" // gogoc sends Router Advertisements itself
	RANone    RAMode = "none"    // something else (odhcpd, radvd) does
)

// RAFlag is one item of ra_flags, a flag of the LAN's RAs, spelled as
// OpenWrt's dhcp section spells it for odhcpd (and compared as odhcpd
// does, case and all), so that the init script can pass that list on.
type RAFlag string

const (
	RAFlagManaged   RAFlag = "managed-config" // M: addresses from DHCPv6
	RAFlagOther     RAFlag = "other-config"   // O: other settings from DHCPv6
	RAFlagHomeAgent RAFlag = "home-agent"     // H: a Mobile IPv6 home agent
	RAFlagNone      RAFlag = "none"           // adds no flag
)

// DataPlane is data_plane: how the tunnel moves packets.
type DataPlane string

const (
	DataPlaneAuto      DataPlane = "auto"      // kernel tunnel when the kernel has it, else userspace
	DataPlaneKernel    DataPlane = "kernel"    // sit / fou / ip6tnl only
	DataPlaneUserspace DataPlane = "userspace" // TUN and sockets only
)

// KeyPolicy is server_key_policy: what PASSDSS does with a server key that
// is not in the known-keys file (spec §3.6).
type KeyPolicy string

const (
	KeyPolicyStrict KeyPolicy = "strict" // unknown key: fail
	KeyPolicyTOFU   KeyPolicy = "tofu"   // unknown key: remember it; a changed key still fails
	KeyPolicyAccept KeyPolicy = "accept" // accept any key, store nothing
)

// SyslogFacility is syslog_facility: USER or LOCAL0..LOCAL7.
type SyslogFacility string

// LogLevel is a log destination's level, 0 (off) to 3 (most detail).
type LogLevel int

// Defaults that the new client chooses where the old one left the value to
// a build or a script. Linux interface names are at most 15 bytes.
const (
	DefaultPort            = 3653
	DefaultIfTunnelV6V4    = "gogoc6in4" // sit, protocol 41
	DefaultIfTunnelV6UDPV4 = "gogoc"     // TUN for IPv6 in UDP
	DefaultIfTunnelV4V6    = "gogoc4in6" // ip6tnl ipip6
	DefaultWANInterface    = "wan"
	// StatusDir holds status_file: the one directory LuCI's ACL
	// (luci-app-gogoc.json) lets the status page read.
	StatusDir               = "/var/run/gogoc"
	DefaultStatusFile       = StatusDir + "/status.json"
	DefaultKnownKeys        = "/etc/gogoc/gogockeys.pub"
	DefaultKeepaliveMisses  = 3
	DefaultRouteMetric      = 1024
	DefaultTCPFallbackDelay = 1500 * time.Millisecond
	DefaultLogRotationKeep  = 3
)

// Config is one validated configuration. Zero addresses mean "auto".
type Config struct {
	// Enabled says whether the service runs (UCI enabled; default false
	// for UCI, true for a legacy file).
	Enabled bool

	// Server is the broker as written: host, host:port, A.B.C.D:port,
	// [v6] or [v6]:port (spec §1.1). DIGEST-MD5 uses it verbatim, so it is
	// kept as text; ServerHostPort splits it.
	Server     string
	AuthMethod AuthMethod
	UserID     string
	Password   secret.String
	HostType   HostType
	PrefixLen  int    // requested delegated prefix length
	IfPrefix   string // LAN device that gets the prefix and the RAs (router)
	// DNSServers are the reverse-delegation name servers sent to the broker
	// (dns_server, ':'-separated in gogoc.conf).
	DNSServers []string
	// GogocDir held the old client's templates. Kept for old files; the
	// new client does not read anything from it.
	GogocDir string

	AutoRetryConnect bool
	RetryDelay       time.Duration // first back-off, whole seconds
	RetryDelayMax    time.Duration // back-off cap, whole seconds

	Keepalive         bool
	KeepaliveInterval time.Duration // suggested to the broker, whole seconds
	KeepaliveMisses   int           // lost echoes in a row that mean the tunnel is down
	KeepaliveTimeout  time.Duration // wait for one echo reply, whole seconds

	TunnelMode      TunnelMode
	IfTunnelV6V4    string
	IfTunnelV6UDPV4 string
	IfTunnelV4V6    string
	ClientV4        netip.Addr // declared IPv4 endpoint; zero: the socket's address
	ClientV6        netip.Addr // the same for v4v6
	ProxyClient     bool

	BrokerList          string
	LastServer          string
	AlwaysUseSameServer bool

	LogConsole        LogLevel
	LogStderr         LogLevel
	LogFile           LogLevel
	LogSyslog         LogLevel
	LogFilename       string
	LogRotation       bool
	LogRotationSize   int // KiB: 16, 32, 128 or 1024
	LogRotationDelete bool
	// LogRotationKeep is how many rotated log files are kept (the old
	// client kept all of them, in a router's RAM).
	LogRotationKeep int
	SyslogFacility  SyslogFacility

	// HACCESS and DS-Lite were never part of the Linux client; their keys
	// are checked as the old client did and otherwise unused.
	HaccessProxyEnabled bool
	HaccessWebEnabled   bool
	HaccessDocumentRoot string
	DSLiteServer        netip.Addr
	DSLiteClient        netip.Addr

	// WANInterface is the netifd interface whose changes trigger a
	// reconnect (OpenWrt's logical name, e.g. wan).
	WANInterface    string
	RA              RAMode
	DataPlane       DataPlane
	StatusFile      string
	ServerKeyPolicy KeyPolicy
	KnownKeys       string
	RouteMetric     int
	// SubnetID picks the /64 of the delegated prefix that goes on the LAN
	// (0 is the first one).
	SubnetID uint64
	// DNSServersRA are advertised as RDNSS in the LAN's RAs.
	DNSServersRA []netip.Addr
	// RAFlags are the flags of the LAN's RAs; none by default.
	RAFlags []RAFlag
	// TCPFallbackDelay is how long UDP gets before TCP is tried.
	TCPFallbackDelay time.Duration
}

// Defaults returns the configuration of an empty file of format f.
func Defaults(f Format) Config {
	return Config{
		Enabled:           f == FormatLegacy,
		AuthMethod:        AuthAny,
		HostType:          HostTypeHost,
		PrefixLen:         64,
		AutoRetryConnect:  true,
		RetryDelay:        30 * time.Second,
		RetryDelayMax:     300 * time.Second,
		Keepalive:         true,
		KeepaliveInterval: 30 * time.Second,
		KeepaliveMisses:   DefaultKeepaliveMisses,
		KeepaliveTimeout:  5 * time.Second,
		TunnelMode:        TunnelV6AnyV4,
		IfTunnelV6V4:      DefaultIfTunnelV6V4,
		IfTunnelV6UDPV4:   DefaultIfTunnelV6UDPV4,
		IfTunnelV4V6:      DefaultIfTunnelV4V6,
		BrokerList:        "tsp-broker-list.txt",
		LastServer:        "tsp-last-server.txt",
		LogStderr:         1,
		LogFilename:       "gogoc.log",
		LogRotation:       true,
		LogRotationSize:   32,
		LogRotationKeep:   DefaultLogRotationKeep,
		SyslogFacility:    "USER",
		DSLiteServer:      netip.AddrFrom4([4]byte{192, 0, 0, 1}),
		DSLiteClient:      netip.AddrFrom4([4]byte{192, 0, 0, 2}),
		WANInterface:      DefaultWANInterface,
		RA:                RABuiltin,
		DataPlane:         DataPlaneAuto,
		StatusFile:        DefaultStatusFile,
		ServerKeyPolicy:   KeyPolicyStrict,
		KnownKeys:         DefaultKnownKeys,
		RouteMetric:       DefaultRouteMetric,
		TCPFallbackDelay:  DefaultTCPFallbackDelay,
	}
}

// ServerHostPort splits Server into the host (without brackets) and the
// port (DefaultPort when none is given).
func (c *Config) ServerHostPort() (host string, port int, err error) {
	return SplitServer(c.Server)
}

// TunnelInterface returns the interface name configured for a concrete
// tunnel mode (v6v4, v6udpv4 or v4v6).
func (c *Config) TunnelInterface(m TunnelMode) string {
	switch m {
	case TunnelV6V4:
		return c.IfTunnelV6V4
	case TunnelV6UDPV4:
		return c.IfTunnelV6UDPV4
	case TunnelV4V6:
		return c.IfTunnelV4V6
	}
	return ""
}
