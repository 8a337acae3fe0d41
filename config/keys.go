package config

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/jsklein/gogoc/internal/hostname"
	"github.com/jsklein/gogoc/internal/secret"
)

// keyDef describes one configuration key. Its set function is the only
// place that knows what the key accepts: files go through it, and Validate
// sends a Config's own values back through it, so a value that a file could
// not hold is never valid in code either.
type keyDef struct {
	name string
	// set parses a non-empty value into c, checking everything that does
	// not depend on another key. For list keys it appends one item.
	// Errors never repeat a secret value.
	set func(c *Config, v string) error
	// get gives the value as a file holds it (the items of a list key).
	get func(c *Config) []string

	list    bool   // one item per set call; UCI may use `list`
	seps    string // what separates items inside one value of a list key
	join    string // how check prints a list on one line
	boolean bool   // written 1/0 in UCI
	secret  bool
	// whole checks a list key's value before it is split into items.
	whole func(v string) error
}

// keys in the order of the spec's table (§11.2), enabled first and the
// new client's keys last; `gogoc check` prints them in this order.
var keys = []keyDef{
	boolKey("enabled", func(c *Config) *bool { return &c.Enabled }),

	stringKey("userid", func(c *Config) *string { return &c.UserID }, checkUserID),
	{
		name:   "passwd",
		secret: true,
		set: func(c *Config, v string) error {
			if err := checkPrintable(v, 128); err != nil {
				return err
			}
			c.Password = secret.String(v)
			return nil
		},
		get: func(c *Config) []string { return []string{c.Password.Reveal()} },
	},
	stringKey("server", func(c *Config) *string { return &c.Server }, func(v string) error {
		_, _, err := SplitServer(v)
		return err
	}),
	enumKey("auth_method", func(c *Config) *AuthMethod { return &c.AuthMethod },
		AuthAnonymous, AuthAny, AuthPlain, AuthDigestMD5, AuthPassDSS),
	enumKey("host_type", func(c *Config) *HostType { return &c.HostType },
		HostTypeHost, HostTypeRouter),
	intKey("prefixlen", 1, 128, func(c *Config) *int { return &c.PrefixLen }),
	stringKey("if_prefix", func(c *Config) *string { return &c.IfPrefix }, func(v string) error {
		return checkIfname(v, "-_.")
	}),
	{
		name: "dns_server",
		list: true, seps: ": \t,", join: ":",
		whole: func(v string) error {
			// ':' separates names, so an address would split into
			// names that look valid; say what is wrong instead.
			if _, err := netip.ParseAddr(v); err == nil {
				return fmt.Errorf("%s is an address; dns_server takes the name servers' host names", v)
			}
			return nil
		},
		set: func(c *Config, v string) error {
			if err := checkCharset(v, "-."); err != nil {
				return err
			}
			if err := hostname.Check(v); err != nil {
				return fmt.Errorf("%q: %w", v, err)
			}
			if n := len(strings.Join(c.DNSServers, ":")) + 1 + len(v); n > 1025 {
				return errors.New("the list is longer than 1025 characters")
			}
			c.DNSServers = append(c.DNSServers, v)
			return nil
		},
		get: func(c *Config) []string { return c.DNSServers },
	},
	stringKey("gogoc_dir", func(c *Config) *string { return &c.GogocDir }, checkPath),
	boolKey("auto_retry_connect", func(c *Config) *bool { return &c.AutoRetryConnect }),
	durationKey("retry_delay", time.Second, 0, 3600, func(c *Config) *time.Duration { return &c.RetryDelay }),
	durationKey("retry_delay_max", time.Second, 0, 3600, func(c *Config) *time.Duration { return &c.RetryDelayMax }),
	boolKey("keepalive", func(c *Config) *bool { return &c.Keepalive }),
	durationKey("keepalive_interval", time.Second, 0, 86400, func(c *Config) *time.Duration { return &c.KeepaliveInterval }),
	{
		name: "tunnel_mode",
		set: func(c *Config, v string) error {
			switch m := TunnelMode(v); m {
			case TunnelV6AnyV4, TunnelV6V4, TunnelV6UDPV4, TunnelV4V6:
				c.TunnelMode = m
				return nil
			case tunnelDSLite:
				return errors.New("dslite is not supported: the old client never had DS-Lite on Linux either; use " + modesSupported)
			}
			return fmt.Errorf("%q is not one of %s%s", v, modesSupported,
				caseHint(v, string(TunnelV6AnyV4), string(TunnelV6V4), string(TunnelV6UDPV4), string(TunnelV4V6)))
		},
		get: func(c *Config) []string { return []string{string(c.TunnelMode)} },
	},
	stringKey("if_tunnel_v6v4", func(c *Config) *string { return &c.IfTunnelV6V4 }, checkTunnelName),
	stringKey("if_tunnel_v6udpv4", func(c *Config) *string { return &c.IfTunnelV6UDPV4 }, checkTunnelName),
	stringKey("if_tunnel_v4v6", func(c *Config) *string { return &c.IfTunnelV4V6 }, checkTunnelName),
	autoAddrKey("client_v4", func(c *Config) *netip.Addr { return &c.ClientV4 }, parseIPv4),
	autoAddrKey("client_v6", func(c *Config) *netip.Addr { return &c.ClientV6 }, parseIPv6),
	boolKey("proxy_client", func(c *Config) *bool { return &c.ProxyClient }),
	stringKey("broker_list", func(c *Config) *string { return &c.BrokerList }, checkFilename),
	stringKey("last_server", func(c *Config) *string { return &c.LastServer }, checkFilename),
	boolKey("always_use_same_server", func(c *Config) *bool { return &c.AlwaysUseSameServer }),
	levelKey("log_console", func(c *Config) *LogLevel { return &c.LogConsole }),
	levelKey("log_stderr", func(c *Config) *LogLevel { return &c.LogStderr }),
	levelKey("log_file", func(c *Config) *LogLevel { return &c.LogFile }),
	levelKey("log_syslog", func(c *Config) *LogLevel { return &c.LogSyslog }),
	stringKey("log_filename", func(c *Config) *string { return &c.LogFilename }, checkFilename),
	boolKey("log_rotation", func(c *Config) *bool { return &c.LogRotation }),
	{
		name: "log_rotation_size",
		set: func(c *Config, v string) error {
			switch v {
			case "16", "32", "128", "1024":
				c.LogRotationSize, _ = strconv.Atoi(v)
				return nil
			}
			return fmt.Errorf("%q is not one of 16, 32, 128, 1024 (KiB)", v)
		},
		get: func(c *Config) []string { return []string{strconv.Itoa(c.LogRotationSize)} },
	},
	boolKey("log_rotation_delete", func(c *Config) *bool { return &c.LogRotationDelete }),
	enumKey("syslog_facility", func(c *Config) *SyslogFacility { return &c.SyslogFacility },
		"USER", "LOCAL0", "LOCAL1", "LOCAL2", "LOCAL3", "LOCAL4", "LOCAL5", "LOCAL6", "LOCAL7"),
	boolKey("haccess_proxy_enabled", func(c *Config) *bool { return &c.HaccessProxyEnabled }),
	boolKey("haccess_web_enabled", func(c *Config) *bool { return &c.HaccessWebEnabled }),
	stringKey("haccess_document_root", func(c *Config) *string { return &c.HaccessDocumentRoot }, checkPath),
	addr4Key("dslite_server", func(c *Config) *netip.Addr { return &c.DSLiteServer }),
	addr4Key("dslite_client", func(c *Config) *netip.Addr { return &c.DSLiteClient }),

	stringKey("wan_interface", func(c *Config) *string { return &c.WANInterface }, func(v string) error {
		if len(v) > 64 {
			return fmt.Errorf("longer than 64 characters")
		}
		return checkCharset(v, "-_.")
	}),
	enumKey("ra", func(c *Config) *RAMode { return &c.RA }, RABuiltin, RANone),
	enumKey("data_plane", func(c *Config) *DataPlane { return &c.DataPlane },
		DataPlaneAuto, DataPlaneKernel, DataPlaneUserspace),
	stringKey("status_file", func(c *Config) *string { return &c.StatusFile }, checkStatusFile),
	enumKey("server_key_policy", func(c *Config) *KeyPolicy { return &c.ServerKeyPolicy },
		KeyPolicyStrict, KeyPolicyTOFU, KeyPolicyAccept),
	stringKey("known_keys", func(c *Config) *string { return &c.KnownKeys }, checkFilename),
	intKey("keepalive_misses", 1, 100, func(c *Config) *int { return &c.KeepaliveMisses }),
	durationKey("keepalive_timeout", time.Second, 1, 60, func(c *Config) *time.Duration { return &c.KeepaliveTimeout }),
	intKey("route_metric", 0, 1<<31-1, func(c *Config) *int { return &c.RouteMetric }),
	{
		name: "subnet_id",
		set: func(c *Config, v string) error {
			h := strings.TrimPrefix(strings.TrimPrefix(v, "0x"), "0X")
			n, err := strconv.ParseUint(h, 16, 64)
			if err != nil || h == "" || h[0] == '+' {
				return fmt.Errorf("%q is not a hexadecimal number below 2^64", v)
			}
			c.SubnetID = n
			return nil
		},
		get: func(c *Config) []string { return []string{strconv.FormatUint(c.SubnetID, 16)} },
	},
	{
		name: "dns_servers_ra",
		list: true, seps: ", \t", join: ",",
		set: func(c *Config, v string) error {
			a, err := parseIPv6(v)
			if err != nil {
				return err
			}
			// Global (ULA included) or link-local: what a LAN host can reach.
			if !(a.IsGlobalUnicast() || a.IsLinkLocalUnicast()) || a.Is4In6() {
				return fmt.Errorf("%s is not a unicast IPv6 address", v)
			}
			c.DNSServersRA = append(c.DNSServersRA, a)
			return nil
		},
		get: func(c *Config) []string {
			s := make([]string, len(c.DNSServersRA))
			for i, a := range c.DNSServersRA {
				s[i] = a.String()
			}
			return s
		},
	},
	{
		name: "ra_flags",
		list: true, seps: ", \t", join: " ",
		set: func(c *Config, v string) error {
			switch f := RAFlag(v); f {
			case RAFlagManaged, RAFlagOther, RAFlagHomeAgent, RAFlagNone:
				c.RAFlags = append(c.RAFlags, f)
				return nil
			}
			return fmt.Errorf("%q is not one of managed-config, other-config, home-agent, none", v)
		},
		get: func(c *Config) []string {
			s := make([]string, len(c.RAFlags))
			for i, f := range c.RAFlags {
				s[i] = string(f)
			}
			return s
		},
	},
	durationKey("tcp_fallback_delay", time.Millisecond, 0, 60000, func(c *Config) *time.Duration { return &c.TCPFallbackDelay }),
	// 0 would mean log_rotation_delete, which says it already.
	intKey("log_rotation_keep", 1, 100, func(c *Config) *int { return &c.LogRotationKeep }),
}

// ignoredKeys are accepted for old files and have no effect, with the
// reason given in a warning.
var ignoredKeys = map[string]string{
	"template": "ignored: gogoc sets up the tunnel itself and runs no template script",
}

func lookupKey(name string) *keyDef {
	for i := range keys {
		if keys[i].name == name {
			return &keys[i]
		}
	}
	return nil
}

func stringKey(name string, field func(*Config) *string, check func(string) error) keyDef {
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			if err := check(v); err != nil {
				return err
			}
			*field(c) = v
			return nil
		},
		get: func(c *Config) []string { return []string{*field(c)} },
	}
}

func boolKey(name string, field func(*Config) *bool) keyDef {
	return keyDef{
		name:    name,
		boolean: true,
		set: func(c *Config, v string) error {
			b, err := parseBool(v)
			if err != nil {
				return err
			}
			*field(c) = b
			return nil
		},
		get: func(c *Config) []string {
			if *field(c) {
				return []string{"yes"}
			}
			return []string{"no"}
		},
	}
}

// parseBool accepts exactly what OpenWrt's get_bool (functions.sh, behind
// config_get_bool) reads as true or false: any other spelling, 'YES' or
// ' 1' say, is its default there, so a script and the daemon would
// disagree. The old client's yes/no are among them.
func parseBool(v string) (bool, error) {
	switch v {
	case "1", "on", "true", "yes", "enabled":
		return true, nil
	case "0", "off", "false", "no", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled)%s", v,
		caseHint(v, "1", "on", "true", "yes", "enabled", "0", "off", "false", "no", "disabled"))
}

// caseHint names the allowed value v differs from only in case: OpenWrt's
// scripts compare values exactly, so the daemon does too.
func caseHint(v string, allowed ...string) string {
	for _, a := range allowed {
		if strings.EqualFold(v, a) {
			return fmt.Sprintf("; did you mean %s? Values are case-sensitive, as OpenWrt's scripts and the old client read them", a)
		}
	}
	return ""
}

// parseNumber accepts decimal digits only, as the old validator did (no
// sign, no spaces), within min..max.
func parseNumber(v string, min, max int) (int, error) {
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return 0, fmt.Errorf("%q is not a whole number", v)
		}
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < int64(min) || n > int64(max) {
		return 0, fmt.Errorf("%s out of range %d..%d", v, min, max)
	}
	return int(n), nil
}

func intKey(name string, min, max int, field func(*Config) *int) keyDef {
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			n, err := parseNumber(v, min, max)
			if err == nil {
				*field(c) = n
			}
			return err
		},
		get: func(c *Config) []string { return []string{strconv.Itoa(*field(c))} },
	}
}

func levelKey(name string, field func(*Config) *LogLevel) keyDef {
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			n, err := parseNumber(v, 0, 3)
			if err == nil {
				*field(c) = LogLevel(n)
			}
			return err
		},
		get: func(c *Config) []string { return []string{strconv.Itoa(int(*field(c)))} },
	}
}

// durationKey is a whole number of unit in min..max.
func durationKey(name string, unit time.Duration, min, max int, field func(*Config) *time.Duration) keyDef {
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			n, err := parseNumber(v, min, max)
			if err == nil {
				*field(c) = time.Duration(n) * unit
			}
			return err
		},
		get: func(c *Config) []string {
			d := *field(c)
			if d%unit != 0 {
				// Not a whole number of units: set will refuse it.
				return []string{d.String()}
			}
			return []string{strconv.FormatInt(int64(d/unit), 10)}
		},
	}
}

// enumKey accepts exactly one of allowed, in its case, as the init script
// and LuCI compare them.
func enumKey[T ~string](name string, field func(*Config) *T, allowed ...T) keyDef {
	names := make([]string, len(allowed))
	for i, a := range allowed {
		names[i] = string(a)
	}
	list := strings.Join(names, ", ")
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			for _, a := range allowed {
				if T(v) == a {
					*field(c) = a
					return nil
				}
			}
			return fmt.Errorf("%q is not one of %s%s", v, list, caseHint(v, names...))
		},
		get: func(c *Config) []string { return []string{string(*field(c))} },
	}
}

func addr4Key(name string, field func(*Config) *netip.Addr) keyDef {
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			a, err := parseIPv4(v)
			if err == nil {
				*field(c) = a
			}
			return err
		},
		get: func(c *Config) []string { return []string{autoAddr(*field(c))} },
	}
}

// autoAddrKey is an address key where "auto" means the zero Addr: let the
// socket pick.
func autoAddrKey(name string, field func(*Config) *netip.Addr, parse func(string) (netip.Addr, error)) keyDef {
	return keyDef{
		name: name,
		set: func(c *Config, v string) error {
			if v == "auto" {
				*field(c) = netip.Addr{}
				return nil
			}
			a, err := parse(v)
			if err != nil {
				return fmt.Errorf("%w%s", err, caseHint(v, "auto"))
			}
			*field(c) = a
			return nil
		},
		get: func(c *Config) []string { return []string{autoAddr(*field(c))} },
	}
}

func autoAddr(a netip.Addr) string {
	if !a.IsValid() {
		return "auto"
	}
	return a.String()
}

// parseIPv4 wants the canonical dotted quad, which is what survived the old
// client's inet_addr/inet_ntoa round trip.
func parseIPv4(v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is4() || a.String() != v {
		return netip.Addr{}, fmt.Errorf("%q is not a dotted-quad IPv4 address", v)
	}
	return a, nil
}

// parseIPv6 takes what inet_pton(AF_INET6) takes: no brackets, no zone.
func parseIPv6(v string) (netip.Addr, error) {
	if strings.HasPrefix(v, "[") {
		return netip.Addr{}, fmt.Errorf("%q: write the IPv6 address without brackets", v)
	}
	a, err := netip.ParseAddr(v)
	if err != nil || !a.Is6() || a.Zone() != "" {
		return netip.Addr{}, fmt.Errorf("%q is not an IPv6 address", v)
	}
	return a, nil
}

func checkUserID(v string) error { return checkPrintable(v, 253) }

// checkPrintable is the old validator's rule for userid and passwd. It
// quotes nothing, as the value may be the password.
func checkPrintable(v string, max int) error {
	if len(v) > max {
		return fmt.Errorf("longer than %d characters", max)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] > 0x7e {
			return fmt.Errorf("character %d is not printable ASCII", i+1)
		}
	}
	return nil
}

// checkCharset allows ASCII letters, digits and the given punctuation.
func checkCharset(v, punct string) error {
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte(punct, c) >= 0 {
			continue
		}
		// Name the byte, not a rune: %q of a byte such as 0xc3 (the
		// first half of a UTF-8 'é') would print 'Ã'.
		what := fmt.Sprintf("byte \\x%02x", c)
		if c >= 0x20 && c < 0x7f {
			what = fmt.Sprintf("%q", rune(c))
		}
		return fmt.Errorf("%q holds %s at character %d; allowed are letters, digits and %s", v, what, i+1, spaced(punct))
	}
	return nil
}

func spaced(punct string) string {
	s := make([]string, len(punct))
	for i := range punct {
		s[i] = punct[i : i+1]
	}
	return strings.Join(s, " ")
}

// checkIfname is a Linux interface name: at most 15 bytes, not . or ..,
// from the spec's charset.
func checkIfname(v, punct string) error {
	if len(v) > 15 {
		return fmt.Errorf("%q is longer than 15 characters, the Linux limit for interface names", v)
	}
	if v == "." || v == ".." {
		return fmt.Errorf("%q is not an interface name", v)
	}
	return checkCharset(v, punct)
}

// checkTunnelName keeps the old charset for tunnel names (no '_').
func checkTunnelName(v string) error { return checkIfname(v, "-.") }

// checkFilename is the old client's rule for file keys.
func checkFilename(v string) error {
	if len(v) > 256 {
		return fmt.Errorf("longer than 256 characters")
	}
	return checkCharset(v, `-_./\`)
}

// checkStatusFile allows only a file directly in StatusDir: LuCI's
// status page may read nothing else, and a relative name would depend on
// the daemon's working directory. Tests and tools that want another
// place use `gogoc run -status-file`.
func checkStatusFile(v string) error {
	name, ok := strings.CutPrefix(v, StatusDir+"/")
	if !ok || name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return fmt.Errorf("%q is not a file in %s/, the only directory LuCI may read (default %s)", v, StatusDir, DefaultStatusFile)
	}
	if len(v) > 256 {
		return fmt.Errorf("longer than 256 characters")
	}
	return checkCharset(name, "-_.")
}

// checkPath is for directory keys the new client does not use: any text
// that can be a path.
func checkPath(v string) error {
	if len(v) > 4096 {
		return fmt.Errorf("longer than 4096 characters")
	}
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Errorf("character %d is a control character", i+1)
		}
	}
	return nil
}
