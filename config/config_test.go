package config

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jsklein/gogoc/internal/logx"
)

// uciFile builds /etc/config/gogoc text from option lines.
func uciFile(lines ...string) string {
	return "config gogoc 'main'\n" + strings.Join(lines, "\n") + "\n"
}

func parseUCI(t *testing.T, text string) (*Config, Issues, error) {
	t.Helper()
	return Parse("/etc/config/gogoc", []byte(text), FormatUCI)
}

func TestSamplesParse(t *testing.T) {
	c, warns, err := Load("../openwrt/gogoc/files/gogoc.config", FormatUCI)
	if err != nil || len(warns) != 0 {
		t.Fatalf("OpenWrt default: %v, warnings %v", err, warns)
	}
	if c.Enabled || c.Server == "" || c.AuthMethod != AuthAnonymous {
		t.Errorf("OpenWrt default: enabled %v, server %q, auth %s", c.Enabled, c.Server, c.AuthMethod)
	}

	c, warns, err = Load("gogoc.conf.example", FormatLegacy)
	if err != nil {
		t.Fatalf("example: %v", err)
	}
	if len(warns) != 1 || warns[0].Key != "template" {
		t.Errorf("example: warnings %v, want only template", warns)
	}
	if !c.Enabled || c.HostType != HostTypeRouter || c.PrefixLen != 56 || c.SubnetID != 1 ||
		c.Password.Reveal() != "correct horse battery staple" || len(c.DNSServersRA) != 2 {
		t.Errorf("example read wrongly: %+v", c)
	}
}

func TestLoadErrors(t *testing.T) {
	if _, _, err := Load("/nonexistent/gogoc", FormatUCI); err == nil || !strings.Contains(err.Error(), "/nonexistent/gogoc") {
		t.Errorf("missing file: %v", err)
	}
	if _, _, err := Parse("x", nil, Format(0)); err == nil {
		t.Error("unknown format accepted")
	}
}

func TestDefaults(t *testing.T) {
	u, l := Defaults(FormatUCI), Defaults(FormatLegacy)
	if u.Enabled || !l.Enabled {
		t.Errorf("enabled: uci %v legacy %v", u.Enabled, l.Enabled)
	}
	u.Enabled = true
	if !reflect.DeepEqual(u, l) {
		t.Error("defaults differ in more than enabled")
	}
	for _, n := range []string{u.IfTunnelV6V4, u.IfTunnelV6UDPV4, u.IfTunnelV4V6} {
		if err := checkTunnelName(n); err != nil {
			t.Errorf("default tunnel name %q: %v", n, err)
		}
	}
	// An empty file differs from the defaults only by what it must set.
	c, _, err := parseUCI(t, uciFile("option server 'b.example.net'", "option auth_method 'anonymous'"))
	if err != nil {
		t.Fatal(err)
	}
	d := Defaults(FormatUCI)
	d.Server, d.AuthMethod = "b.example.net", AuthAnonymous
	if !reflect.DeepEqual(*c, d) {
		t.Errorf("got %+v\nwant %+v", *c, d)
	}
}

func TestUCIMapping(t *testing.T) {
	const ok = "option server 'b.example.net'\n\toption auth_method 'anonymous'"
	tests := []struct {
		name     string
		in       string
		check    func(c *Config) string
		warnings string
		errs     string
	}{
		{
			name:  "named main section",
			in:    "config other 'x'\nconfig gogoc 'main'\n\t" + ok + "\n\toption enabled '1'\n",
			check: func(c *Config) string { return want(c.Enabled && c.Server == "b.example.net", "main read") },
		},
		{
			// The init script, the hotplug hook, LuCI and `uci set`
			// all use gogoc.main; an unnamed section is invisible to
			// them, so the daemon must not run on it either.
			name: "an unnamed gogoc section alone is refused",
			in:   "config gogoc\n\t" + ok + "\n\toption enabled '1'\n",
			errs: "/etc/config/gogoc:1: no config gogoc 'main' section: an unnamed config gogoc section is not read by " +
				"OpenWrt's scripts or LuCI, which use gogoc.main; name it 'main' (config gogoc 'main')",
		},
		{
			name:  "main wins over anonymous, others warned about",
			in:    "config gogoc\n\toption server 'other.example.net'\nconfig gogoc 'main'\n\t" + ok + "\nconfig gogoc 'spare'\n",
			check: func(c *Config) string { return want(c.Server == "b.example.net", "main read") },
			warnings: "/etc/config/gogoc:1: an unnamed config gogoc section ignored: only config gogoc 'main' is read\n" +
				`/etc/config/gogoc:6: config gogoc section "spare" ignored: only config gogoc 'main' is read`,
		},
		{
			name: "no gogoc section",
			in:   "config other 'x'\n\toption server 'x'\n",
			errs: "/etc/config/gogoc: no config gogoc 'main' section",
		},
		{
			name: "main of another type",
			in:   "config other 'main'\n\toption server 'x'\n",
			errs: `/etc/config/gogoc:1: section 'main' has type "other"; write config gogoc 'main'`,
		},
		{
			name: "a wrongly named section",
			in:   "\nconfig gogoc 'tunnel'\n\t" + ok + "\n",
			errs: `/etc/config/gogoc:2: no config gogoc 'main' section: a config gogoc section named "tunnel" is not read by ` +
				"OpenWrt's scripts or LuCI, which use gogoc.main; name it 'main' (config gogoc 'main')",
		},
		{
			// uci_set while parsing a file: an empty value is a no-op,
			// so `uci get gogoc.main.server` still gives the broker.
			name: "an empty option after a value keeps the value, as in libuci",
			in: "config gogoc 'main'\n\toption server 'b.example.net'\n\toption auth_method 'anonymous'\n" +
				"\toption server ''\n\toption server\n\toption auth_method \"\"\n",
			check: func(c *Config) string {
				return want(c.Server == "b.example.net" && c.AuthMethod == AuthAnonymous, "values kept")
			},
		},
		{
			// libuci lets a later `config gogoc 'cfg01...'` reopen the
			// first unnamed section; the options land in it, not in main.
			name: "libuci's generated name reopens the unnamed section",
			in: "config gogoc\n\toption server 'other.example.net'\nconfig gogoc 'main'\n\t" + ok +
				"\nconfig gogoc 'cfg017ef4'\n\toption enabled '1'\n",
			check:    func(c *Config) string { return want(c.Server == "b.example.net" && !c.Enabled, "main alone read") },
			warnings: "/etc/config/gogoc:1: an unnamed config gogoc section ignored: only config gogoc 'main' is read",
		},
		{
			name: "lists for dns_server and dns_servers_ra",
			in: uciFile(ok, "list dns_server 'ns1.example.net'", "list dns_server 'ns2.example.net'",
				"list dns_servers_ra '2001:db8::53'", "list dns_servers_ra ''", "list dns_servers_ra 'fe80::53'"),
			check: func(c *Config) string {
				return want(len(c.DNSServers) == 2 && len(c.DNSServersRA) == 2 && c.DNSServersRA[1] == netip.MustParseAddr("fe80::53"), "lists")
			},
		},
		{
			name: "a list key may be an option with separators",
			in:   uciFile(ok, "option dns_server 'ns1.example.net:ns2.example.net'", "option dns_servers_ra '2001:db8::53 2001:db8::54'"),
			check: func(c *Config) string {
				return want(len(c.DNSServers) == 2 && len(c.DNSServersRA) == 2, "split values")
			},
		},
		{
			name: "ra_flags as odhcpd reads dhcp.lan.ra_flags: a list, or an option split at spaces",
			in:   uciFile(ok, "list ra_flags 'managed-config'", "list ra_flags 'other-config'"),
			check: func(c *Config) string {
				return want(slices.Equal(c.RAFlags, []RAFlag{RAFlagManaged, RAFlagOther}), "two flags")
			},
		},
		{
			name: "ra_flags option with spaces",
			in:   uciFile(ok, "option ra_flags 'other-config none'"),
			check: func(c *Config) string {
				return want(slices.Equal(c.RAFlags, []RAFlag{RAFlagOther, RAFlagNone}), "split")
			},
		},
		{
			name: "ra_flags compared as odhcpd does (case and all)",
			in:   uciFile(ok, "list ra_flags 'Managed-Config'"),
			errs: `/etc/config/gogoc:4: list ra_flags: "Managed-Config" is not one of managed-config, other-config, home-agent, none`,
		},
		{
			name: "list for a single-value key",
			in:   uciFile(ok, "list retry_delay '1'"),
			errs: "/etc/config/gogoc:4: list retry_delay: only dns_server, dns_servers_ra and ra_flags may be lists; write option retry_delay",
		},
		{
			name: "UCI booleans",
			in: uciFile(ok, "option enabled 'on'", "option keepalive 'false'", "option proxy_client 'no'",
				"option auto_retry_connect 'disabled'", "option always_use_same_server 'enabled'", "option log_rotation '0'"),
			check: func(c *Config) string {
				return want(c.Enabled && !c.Keepalive && !c.ProxyClient && !c.AutoRetryConnect && c.AlwaysUseSameServer && !c.LogRotation, "booleans")
			},
		},
		{
			name: "unknown and obsolete options warn",
			in:   uciFile(ok, "option template 'openwrt'", "option colour 'blue'", "option Server 'x'"),
			warnings: "/etc/config/gogoc:4: option template: ignored: gogoc sets up the tunnel itself and runs no template script\n" +
				"/etc/config/gogoc:5: option colour: unknown option, ignored\n" +
				"/etc/config/gogoc:6: option Server: unknown option, ignored (did you mean server? names are lower case)",
		},
		{
			name: "empty option keeps the default",
			in:   uciFile(ok, "option retry_delay ''", "option if_tunnel_v6v4 ''"),
			check: func(c *Config) string {
				return want(c.RetryDelay == 30*time.Second && c.IfTunnelV6V4 == "gogoc6in4", "defaults")
			},
		},
		{
			name: "new keys",
			in: uciFile(ok, "option wan_interface 'wan6'", "option ra 'none'", "option data_plane 'userspace'",
				"option status_file '/var/run/gogoc/s.json'", "option server_key_policy 'tofu'", "option known_keys '/etc/k.pub'",
				"option keepalive_misses '5'", "option keepalive_timeout '2'", "option route_metric '0'",
				"option tcp_fallback_delay '250'"),
			check: func(c *Config) string {
				return want(c.WANInterface == "wan6" && c.RA == RANone && c.DataPlane == DataPlaneUserspace &&
					c.StatusFile == "/var/run/gogoc/s.json" && c.ServerKeyPolicy == KeyPolicyTOFU && c.KnownKeys == "/etc/k.pub" &&
					c.KeepaliveMisses == 5 && c.KeepaliveTimeout == 2*time.Second && c.RouteMetric == 0 &&
					c.TCPFallbackDelay == 250*time.Millisecond, "new keys")
			},
		},
		{
			name: "router with a /56 and a subnet",
			in: uciFile(ok, "option host_type 'router'", "option prefixlen '56'", "option if_prefix 'br-lan'",
				"option subnet_id '0xff'", "option client_v4 '192.0.2.7'"),
			check: func(c *Config) string {
				return want(c.HostType == HostTypeRouter && c.SubnetID == 0xff && c.ClientV4 == netip.MustParseAddr("192.0.2.7"), "router")
			},
		},
		{
			// get_bool in functions.sh matches these words exactly and
			// returns the default for anything else: 'YES' is "off" to
			// the init script. The daemon must not read it as "on".
			name: "booleans OpenWrt reads differently are refused",
			in:   uciFile(ok, "option enabled 'YES'", "option keepalive 'On'", "option log_rotation ' 1'", "option proxy_client 'y'"),
			errs: `/etc/config/gogoc:4: option enabled: "YES" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled); ` +
				"did you mean yes? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:5: option keepalive: "On" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled); ` +
				"did you mean on? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:6: option log_rotation: " 1" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled)` + "\n" +
				`/etc/config/gogoc:7: option proxy_client: "y" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled)`,
		},
		{
			// The init script and the helper compare host_type, ra and
			// the others with = in exact case.
			name: "enums are case-sensitive",
			in: uciFile("option server 'b.example.net'", "option auth_method 'ANONYMOUS'", "option host_type 'Router'",
				"option ra 'Builtin'", "option tunnel_mode 'V6V4'", "option syslog_facility 'local3'", "option client_v4 'AUTO'"),
			errs: `/etc/config/gogoc:3: option auth_method: "ANONYMOUS" is not one of anonymous, any, plain, digest-md5, passdss-3des-1; ` +
				"did you mean anonymous? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:4: option host_type: "Router" is not one of host, router; ` +
				"did you mean router? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:5: option ra: "Builtin" is not one of builtin, none; ` +
				"did you mean builtin? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:6: option tunnel_mode: "V6V4" is not one of v6anyv4, v6v4, v6udpv4, v4v6; ` +
				"did you mean v6v4? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:7: option syslog_facility: "local3" is not one of USER, LOCAL0, LOCAL1, LOCAL2, LOCAL3, LOCAL4, LOCAL5, LOCAL6, LOCAL7; ` +
				"did you mean LOCAL3? Values are case-sensitive, as OpenWrt's scripts and the old client read them\n" +
				`/etc/config/gogoc:8: option client_v4: "AUTO" is not a dotted-quad IPv4 address; ` +
				"did you mean auto? Values are case-sensitive, as OpenWrt's scripts and the old client read them",
		},
		{
			name: "enums in their own case",
			in:   uciFile("option server 'b.example.net'", "option auth_method 'anonymous'", "option tunnel_mode 'v6v4'", "option syslog_facility 'LOCAL3'"),
			check: func(c *Config) string {
				return want(c.TunnelMode == TunnelV6V4 && c.SyslogFacility == "LOCAL3", "enums")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warns, err := parseUCI(t, tt.in)
			if got := joinIssues(warns); got != tt.warnings {
				t.Errorf("warnings:\n%s\nwant:\n%s", got, tt.warnings)
			}
			gotErr := ""
			if err != nil {
				gotErr = err.Error()
			}
			if gotErr != tt.errs {
				t.Errorf("errors:\n%s\nwant:\n%s", gotErr, tt.errs)
			}
			if tt.check != nil && c != nil {
				if msg := tt.check(c); msg != "" {
					t.Errorf("%s: %+v", msg, *c)
				}
			}
		})
	}
}

// TestErrorMessages pins the exact text a person sees: file, line, key and
// what to do, for each kind of mistake, all of them in one report.
func TestErrorMessages(t *testing.T) {
	in := uciFile(
		"\toption enabled '1'",                        // 2
		"\toption server 'broker.example.net'",        // 3
		"\toption auth_method 'digest-md5'",           // 4
		"\toption userid 'alice'",                     // 5
		"\toption tunnel_mode 'v6foo'",                // 6
		"\toption retry_delay '5000'",                 // 7
		"\toption keepalive 'maybe'",                  // 8
		"\toption host_type 'router'",                 // 9
		"\tlist dns_servers_ra '192.0.2.1'",           // 10
		"\toption prefixlen 'sixty'",                  // 11
		"\toption client_v4 '010.1.2.3'",              // 12
		"\toption if_tunnel_v6v4 'gogoc_tunnel_name'", // 13
	)
	_, _, err := parseUCI(t, in)
	want := strings.Join([]string{
		"/etc/config/gogoc:4: option passwd: missing: auth_method digest-md5 needs a password (auth_method anonymous needs none)",
		`/etc/config/gogoc:6: option tunnel_mode: "v6foo" is not one of v6anyv4, v6v4, v6udpv4, v4v6`,
		"/etc/config/gogoc:7: option retry_delay: 5000 out of range 0..3600",
		`/etc/config/gogoc:8: option keepalive: "maybe" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled)`,
		"/etc/config/gogoc:9: option if_prefix: missing: host_type router needs the LAN device for the prefix (e.g. br-lan)",
		`/etc/config/gogoc:10: list dns_servers_ra: "192.0.2.1" is not an IPv6 address`,
		`/etc/config/gogoc:11: option prefixlen: "sixty" is not a whole number`,
		`/etc/config/gogoc:12: option client_v4: "010.1.2.3" is not a dotted-quad IPv4 address`,
		`/etc/config/gogoc:13: option if_tunnel_v6v4: "gogoc_tunnel_name" is longer than 15 characters, the Linux limit for interface names`,
	}, "\n")
	if err == nil || err.Error() != want {
		t.Fatalf("got:\n%v\nwant:\n%s", err, want)
	}
	// The parts are there for programs too.
	var is *Issue
	if !errors.As(err, &is) || is.File != "/etc/config/gogoc" || is.Line != 4 || is.Key != "passwd" || is.Stmt != "option" {
		t.Errorf("first issue: %+v", is)
	}

	legacy := "server=b.example.net\nauth_method=anonymous\nretry_delay=5000\ntunnel_mode=dslite\n"
	_, _, err = Parse("/etc/gogoc/gogoc.conf", []byte(legacy), FormatLegacy)
	want = "/etc/gogoc/gogoc.conf:3: retry_delay: 5000 out of range 0..3600\n" +
		"/etc/gogoc/gogoc.conf:4: tunnel_mode: dslite is not supported: the old client never had DS-Lite on Linux either; use v6anyv4, v6v4, v6udpv4, v4v6"
	if err == nil || err.Error() != want {
		t.Errorf("legacy got:\n%v\nwant:\n%s", err, want)
	}
}

func TestSyntaxErrorsStopChecking(t *testing.T) {
	in := uciFile("\toption server 'b.example.net'", "\toption passwd 'it's'", "\toption retry_delay '5000'")
	_, _, err := parseUCI(t, in)
	want := "/etc/config/gogoc:3: option passwd: unterminated ' quote"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
	_, _, err = parseUCI(t, "config gogoc 'main'\n\toption x y z\nconfig\n")
	want = "/etc/config/gogoc:2: option x: too many arguments (quote a value that contains spaces)\n" +
		"/etc/config/gogoc:3: config: missing section type"
	if err == nil || err.Error() != want {
		t.Errorf("got:\n%v\nwant:\n%s", err, want)
	}
}

// TestCrossChecks: each rule between keys, and the line it blames.
func TestCrossChecks(t *testing.T) {
	const srv = "option server 'b.example.net'"
	const anon = "option auth_method 'anonymous'"
	tests := []struct {
		name  string
		lines []string
		want  string // "" for a valid file
	}{
		{"server missing", []string{anon}, "1: option server: missing: set the broker as host, host:port or [IPv6]:port"},
		{"default auth needs an account", []string{srv},
			"1: option userid: missing: auth_method any (the default) needs a user name (auth_method anonymous needs none)\n" +
				"/etc/config/gogoc:1: option passwd: missing: auth_method any (the default) needs a password (auth_method anonymous needs none)"},
		{"plain with both", []string{srv, "option auth_method 'plain'", "option userid 'u'", "option passwd 'p'"}, ""},
		{"passdss without userid", []string{srv, "option auth_method 'passdss-3des-1'", "option passwd 'p'"},
			"3: option userid: missing: auth_method passdss-3des-1 needs a user name (auth_method anonymous needs none)"},
		{"router without if_prefix", []string{srv, anon, "option host_type 'router'"},
			"4: option if_prefix: missing: host_type router needs the LAN device for the prefix (e.g. br-lan)"},
		{"router prefix too long", []string{srv, anon, "option host_type 'router'", "option if_prefix 'br-lan'", "option prefixlen '72'"},
			"6: option prefixlen: 72 leaves no /64 for the LAN; ask for 64 or shorter"},
		{"v4v6 router refused, its prefix length unchecked", []string{srv, anon, "option host_type 'router'", "option if_prefix 'br-lan'", "option prefixlen '72'", "option tunnel_mode 'v4v6'"},
			"7: option tunnel_mode: v4v6 cannot be used with host_type router: it delegates no IPv6 prefix (use v6anyv4, v6v4 or v6udpv4, or host_type host)"},
		{"v4v6 router blamed on host_type when the mode comes first", []string{srv, anon, "option tunnel_mode 'v4v6'", "option if_prefix 'br-lan'", "option host_type 'router'"},
			"4: option tunnel_mode: v4v6 cannot be used with host_type router: it delegates no IPv6 prefix (use v6anyv4, v6v4 or v6udpv4, or host_type host)"},
		{"v4v6 host", []string{srv, anon, "option tunnel_mode 'v4v6'", "option prefixlen '72'"}, ""},
		{"subnet outside the prefix", []string{srv, anon, "option host_type 'router'", "option if_prefix 'br-lan'", "option prefixlen '56'", "option subnet_id '100'"},
			"7: option subnet_id: 100 does not fit a /56 prefix (0..ff)"},
		{"subnet inside the prefix", []string{srv, anon, "option host_type 'router'", "option if_prefix 'br-lan'", "option prefixlen '48'", "option subnet_id 'ffff'"}, ""},
		{"subnet on a /64", []string{srv, anon, "option host_type 'router'", "option if_prefix 'br-lan'", "option subnet_id '1'"},
			"6: option subnet_id: 1 does not fit a /64 prefix (0..0)"},
		{"subnet ignored for a host", []string{srv, anon, "option subnet_id '1'"}, ""},
		{"retry_delay above max", []string{srv, anon, "option retry_delay '400'"},
			"4: option retry_delay: 400 is greater than retry_delay_max 300"},
		{"max below the default delay", []string{srv, anon, "option retry_delay_max '10'"},
			"4: option retry_delay: 30 is greater than retry_delay_max 10"},
		{"keepalive without interval", []string{srv, anon, "option keepalive_interval '0'"},
			"4: option keepalive_interval: must be 1 or more while keepalive is on (or set keepalive no)"},
		{"no keepalive, no interval", []string{srv, anon, "option keepalive '0'", "option keepalive_interval '0'"}, ""},
		{"v6udpv4 needs keepalive", []string{srv, anon, "option tunnel_mode 'v6udpv4'", "option keepalive '0'"},
			"5: option keepalive: tunnel_mode v6udpv4 needs keepalive on: without it the NAT mapping expires"},
		{"proxy with v6udpv4", []string{srv, anon, "option proxy_client '1'", "option keepalive '0'", "option tunnel_mode 'v6udpv4'"},
			"4: option proxy_client: cannot be used with tunnel_mode v6udpv4\n" +
				"/etc/config/gogoc:5: option keepalive: tunnel_mode v6udpv4 needs keepalive on: without it the NAT mapping expires"},
		{"proxy with keepalive", []string{srv, anon, "option proxy_client '1'"},
			"4: option proxy_client: needs keepalive no: the tunnel ends on another device"},
		{"proxy done right", []string{srv, anon, "option proxy_client '1'", "option keepalive '0'", "option tunnel_mode 'v6v4'"}, ""},
		{"a refused value is not checked again", []string{srv, anon, "option retry_delay 'x'", "option retry_delay_max '10'"},
			`4: option retry_delay: "x" is not a whole number`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := parseUCI(t, uciFile(tt.lines...))
			got := ""
			if err != nil {
				got = strings.TrimPrefix(err.Error(), "/etc/config/gogoc:")
			}
			if got != tt.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

func TestValueChecks(t *testing.T) {
	tests := []struct {
		line string
		want string // error message, "" when accepted
	}{
		{"option userid 'with space ok'", ""},
		{"option userid '" + strings.Repeat("u", 254) + "'", "longer than 253 characters"},
		{"option userid 'tab\there'", "character 4 is not printable ASCII"},
		{"option passwd '" + strings.Repeat("p", 129) + "'", "longer than 128 characters"},
		{"option prefixlen '0'", "0 out of range 1..128"},
		{"option prefixlen '+5'", `"+5" is not a whole number`},
		{"option prefixlen '99999999999999999999999'", "99999999999999999999999 out of range 1..128"},
		{"option if_prefix 'br-lan'", ""},
		{"option if_prefix 'br/lan'", `"br/lan" holds '/' at character 3; allowed are letters, digits and - _ .`},
		// A non-ASCII byte is named as a byte at its place, not as the
		// rune a lone byte would be mistaken for ('\xc3' is not 'Ã').
		{"option if_prefix 'brü'", `"brü" holds byte \xc3 at character 3; allowed are letters, digits and - _ .`},
		{"option wan_interface 'w\xe4n'", `"w\xe4n" holds byte \xe4 at character 2; allowed are letters`},
		{"option if_prefix '..'", `".." is not an interface name`},
		{"option if_tunnel_v6udpv4 'tun_0'", `"tun_0" holds '_' at character 4; allowed are letters, digits and - .`},
		{"option dns_server 'ns1.example.net'", ""},
		{"option dns_server '2001:db8::1'", "2001:db8::1 is an address; dns_server takes the name servers' host names"},
		{"list dns_server '192.0.2.53'", "192.0.2.53 is an address"},
		// The host-name rule of the server key and of tsp (internal/hostname).
		{"option dns_server '-ns1.example.net'", "starts or ends with '-'"},
		{"option dns_server 'ns1..example.net'", "empty label"},
		{"option client_v4 'auto'", ""},
		{"option client_v4 '1.2.3'", `"1.2.3" is not a dotted-quad IPv4 address`},
		{"option client_v6 '2001:db8::2'", ""},
		{"option client_v6 '[2001:db8::2]'", `"[2001:db8::2]": write the IPv6 address without brackets`},
		{"option client_v6 'fe80::1%eth0'", `"fe80::1%eth0" is not an IPv6 address`},
		{"option log_console '4'", "4 out of range 0..3"},
		{"option log_rotation_size '64'", `"64" is not one of 16, 32, 128, 1024 (KiB)`},
		{"option syslog_facility 'LOCAL8'", `"LOCAL8" is not one of USER, LOCAL0`},
		{"option broker_list 'a b'", `"a b" holds ' '`},
		{"option log_filename '" + strings.Repeat("f", 257) + "'", "longer than 256 characters"},
		// status_file: only where LuCI's ACL lets the status page read.
		{"option status_file '/var/run/gogoc/gogoc-2.json'", ""},
		{"option status_file '/tmp/gogoc.json'", `"/tmp/gogoc.json" is not a file in /var/run/gogoc/`},
		{"option status_file 'status.json'", `"status.json" is not a file in /var/run/gogoc/`},
		{"option status_file '/var/run/gogoc/../shadow'", "is not a file in /var/run/gogoc/"},
		{"option status_file '/var/run/gogoc/sub/s.json'", "is not a file in /var/run/gogoc/"},
		{"option status_file '/var/run/gogoc/a b'", `"a b" holds ' '`},
		{"option dslite_server '192.0.0.1'", ""},
		{"option dslite_server 'auto'", `"auto" is not a dotted-quad IPv4 address`},
		{"option ra 'radvd'", `"radvd" is not one of builtin, none`},
		{"option data_plane 'dpdk'", `"dpdk" is not one of auto, kernel, userspace`},
		{"option server_key_policy 'yes'", `"yes" is not one of strict, tofu, accept`},
		{"option keepalive_misses '0'", "0 out of range 1..100"},
		{"option keepalive_timeout '61'", "61 out of range 1..60"},
		{"option route_metric '2147483648'", "2147483648 out of range 0..2147483647"},
		{"option subnet_id 'g'", `"g" is not a hexadecimal number below 2^64`},
		{"option subnet_id '10000000000000000'", `"10000000000000000" is not a hexadecimal number below 2^64`},
		{"option dns_servers_ra 'ff02::1'", "ff02::1 is not a unicast IPv6 address"},
		{"option dns_servers_ra '::ffff:192.0.2.1'", "::ffff:192.0.2.1 is not a unicast IPv6 address"},
		{"option tcp_fallback_delay '60001'", "60001 out of range 0..60000"},
		{"option log_rotation_keep '0'", "0 out of range 1..100"},
		{"option log_rotation_keep '10'", ""},
		{"option wan_interface 'wan 2'", `"wan 2" holds ' '`},
		{"option gogoc_dir '/usr/share/gogoc'", ""},
		{"option haccess_document_root 'a\tb'", "character 2 is a control character"},
	}
	for _, tt := range tests {
		_, _, err := parseUCI(t, uciFile("option server 'b.example.net'", "option auth_method 'anonymous'", tt.line))
		got := ""
		if err != nil {
			got = err.Error()
		}
		if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
			t.Errorf("%s: got %q, want %q", tt.line, got, tt.want)
		}
		if tt.want != "" && !strings.HasPrefix(got, "/etc/config/gogoc:4: option ") && !strings.HasPrefix(got, "/etc/config/gogoc:4: list ") {
			t.Errorf("%s: not located: %q", tt.line, got)
		}
	}
}

func TestSplitServer(t *testing.T) {
	tests := []struct {
		in   string
		host string
		port int
		err  string
	}{
		{"broker.example.net", "broker.example.net", 3653, ""},
		{"broker.example.net.", "broker.example.net.", 3653, ""},
		{"broker.example.net:443", "broker.example.net", 443, ""},
		{"192.0.2.1", "192.0.2.1", 3653, ""},
		{"192.0.2.1:3653", "192.0.2.1", 3653, ""},
		{"[2001:db8::1]", "2001:db8::1", 3653, ""},
		{"[2001:db8::1]:65535", "2001:db8::1", 65535, ""},
		{"localhost", "localhost", 3653, ""},
		{"2001:db8::1", "", 0, `"2001:db8::1" looks like an IPv6 address: put it in brackets, as in [2001:db8::1] or [2001:db8::1]:3653`},
		{"b.example.net:0", "", 0, "port must be a number in 1..65535"},
		{"b.example.net:65536", "", 0, "port must be a number in 1..65535"},
		{"b.example.net:", "", 0, "port must be a number in 1..65535"},
		{":3653", "", 0, "no host before the port"},
		{"[2001:db8::1]:", "", 0, "port must be a number in 1..65535"},
		{"[2001:db8::1", "", 0, "has no closing ]"},
		{"[192.0.2.1]", "", 0, "brackets must hold an IPv6 address"},
		{"[2001:db8::1]x", "", 0, "only :port may follow ]"},
		{"b[1]", "", 0, "brackets go around an IPv6 address"},
		{"192.0.2.256", "", 0, "not a valid IPv4 address"},
		{"-bad.example", "", 0, "starts or ends with '-'"},
		{"a..b", "", 0, "empty label"},
		{strings.Repeat("a", 64) + ".net", "", 0, "label longer than 63"},
		{"b_x.net", "", 0, `holds '_'`},
		{"", "", 0, "empty"},
		{strings.Repeat("a.", 513), "", 0, "longer than 1025 characters"},
	}
	for _, tt := range tests {
		host, port, err := SplitServer(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("%q: got %v, want error %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || host != tt.host || port != tt.port {
			t.Errorf("%q: got %q %d %v, want %q %d", tt.in, host, port, err, tt.host, tt.port)
		}
	}
	c := Config{Server: "[2001:db8::1]:443"}
	if h, p, err := c.ServerHostPort(); h != "2001:db8::1" || p != 443 || err != nil {
		t.Errorf("ServerHostPort: %q %d %v", h, p, err)
	}
}

func TestEntries(t *testing.T) {
	c := Defaults(FormatUCI)
	c.Password = "s3cr3t-value"
	c.DNSServers = []string{"a.example", "b.example"}
	c.DNSServersRA = []netip.Addr{netip.MustParseAddr("2001:db8::53"), netip.MustParseAddr("2001:db8::54")}
	c.SubnetID = 0xab
	c.RAFlags = []RAFlag{RAFlagManaged, RAFlagOther}
	got := map[string]string{}
	var order []string
	for _, e := range c.Entries() {
		if _, dup := got[e.Key]; dup {
			t.Errorf("%s listed twice", e.Key)
		}
		got[e.Key] = e.Value
		order = append(order, e.Key)
	}
	if len(got) != len(keys) || order[0] != "enabled" || order[1] != "userid" || order[len(order)-1] != "log_rotation_keep" {
		t.Errorf("order: %v", order)
	}
	for k, v := range map[string]string{
		"enabled": "no", "passwd": "********", "retry_delay": "30", "tcp_fallback_delay": "1500",
		"client_v4": "auto", "dns_server": "a.example:b.example", "dns_servers_ra": "2001:db8::53,2001:db8::54",
		"subnet_id": "ab", "keepalive_timeout": "5", "syslog_facility": "USER", "log_rotation_keep": "3", "ra_flags": "managed-config other-config",
	} {
		if got[k] != v {
			t.Errorf("%s=%q, want %q", k, got[k], v)
		}
	}
	c.Password = ""
	for _, e := range c.Entries() {
		if e.Key == "passwd" && e.Value != "" {
			t.Errorf("empty password shown as %q", e.Value)
		}
	}
}

func TestValidate(t *testing.T) {
	good := Defaults(FormatUCI)
	good.Server = "broker.example.net"
	good.AuthMethod = AuthAnonymous
	if err := good.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	tests := []struct {
		name string
		mod  func(c *Config)
		want string
	}{
		{"range", func(c *Config) { c.RetryDelay = 5000 * time.Second }, "retry_delay: 5000 out of range 0..3600"},
		{"not whole seconds", func(c *Config) { c.KeepaliveTimeout = 1500 * time.Millisecond }, `keepalive_timeout: "1.5s" is not a whole number`},
		{"enum", func(c *Config) { c.TunnelMode = "gre" }, `tunnel_mode: "gre" is not one of`},
		{"empty with a default", func(c *Config) { c.IfTunnelV6V4 = "" }, "if_tunnel_v6v4: must not be empty"},
		{"address family", func(c *Config) { c.ClientV4 = netip.MustParseAddr("2001:db8::1") }, `client_v4: "2001:db8::1" is not a dotted-quad`},
		{"list item", func(c *Config) { c.DNSServers = []string{"ok.example", "bad:name"} }, `dns_server: "bad:name" holds ':'`},
		{"empty list item", func(c *Config) { c.DNSServers = []string{""} }, "dns_server: empty list item"},
		{"ra flag", func(c *Config) { c.RAFlags = []RAFlag{RAFlagOther, "stateless"} }, `ra_flags: "stateless" is not one of`},
		{"cross rule", func(c *Config) { c.HostType = HostTypeRouter }, "if_prefix: missing: host_type router"},
		{"router over v4v6", func(c *Config) { c.HostType, c.IfPrefix, c.TunnelMode = HostTypeRouter, "br-lan", TunnelV4V6 },
			"tunnel_mode: v4v6 cannot be used with host_type router"},
		{"server", func(c *Config) { c.Server = "2001:db8::1" }, "server: \"2001:db8::1\" looks like an IPv6 address"},
		{"secret not quoted", func(c *Config) { c.Password = "tab\tsecret-pw" }, "passwd: character 4 is not printable ASCII"},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: got %v, want %q", tt.name, err, tt.want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("%s: password in %v", tt.name, err)
		}
	}
}

// TestPasswordNeverShown puts a distinctive password in files with and
// without mistakes and looks for it in everything a person or a log sees.
func TestPasswordNeverShown(t *testing.T) {
	const pw = "Zebra-7731-Qx"
	files := []struct {
		name   string
		format Format
		text   string
	}{
		// The first one is valid and must read the password back.
		{"valid uci", FormatUCI, uciFile("option server 'b.example.net'", "option auth_method 'plain'", "option userid 'u'", "option passwd '"+pw+"'")},
		{"uci with errors", FormatUCI, uciFile("option server 'b example'", "option userid '"+pw+"'", "option passwd '"+pw+"'", "option retry_delay 'x"+pw+"'", "option prefixlen '"+pw+"'")},
		{"uci passwd too long", FormatUCI, uciFile("option server 'b.example.net'", "option userid 'u'", "option passwd '"+strings.Repeat(pw, 10)+"'")},
		{"uci unterminated", FormatUCI, uciFile("option server 'b.example.net'", "option passwd '"+pw, "option userid 'u'")},
		{"uci spaces", FormatUCI, uciFile("option server 'b.example.net'", "option passwd "+pw+" and more")},
		{"uci stray line", FormatUCI, uciFile("option server 'b.example.net'", pw)},
		{"legacy with errors", FormatLegacy, "server=b.example.net\nuserid=" + pw + "\npasswd=" + pw + "\nretry_delay=" + pw + "\n"},
		{"legacy non-printable", FormatLegacy, "server=b.example.net\nuserid=u\npasswd=" + pw + "\x01\n"},
		{"legacy stray line", FormatLegacy, "server=b.example.net\nuserid=u\npasswd=p\n" + pw + "\n"},
		{"legacy quoted", FormatLegacy, "server=b.example.net\nuserid=u\npasswd='" + pw + "'\n"},
	}
	var logs strings.Builder
	logger := logx.Writer(&logs, logx.LevelInfo)
	for _, f := range files {
		c, warns, err := Parse("conf", []byte(f.text), f.format)
		if f.name == "valid uci" && err != nil {
			t.Fatalf("valid file refused: %v", err)
		}
		var seen strings.Builder
		fmt.Fprintln(&seen, joinIssues(warns))
		if err != nil {
			fmt.Fprintln(&seen, err.Error())
		}
		if c != nil {
			fmt.Fprintf(&seen, "%v %+v %#v %s\n", c, c, c, c.Password)
			j, _ := json.Marshal(c)
			seen.Write(j)
			for _, e := range c.Entries() {
				fmt.Fprintln(&seen, e.Key, e.Value)
			}
			logger.Info("config", "cfg", c, "password", c.Password)
			if f.name == "valid uci" && c.Password.Reveal() != pw {
				t.Errorf("%s: password read as something else", f.name)
			}
		}
		if strings.Contains(seen.String(), pw) {
			t.Errorf("%s: password shown:\n%s", f.name, seen.String())
		}
	}
	if strings.Contains(logs.String(), pw) {
		t.Errorf("password logged:\n%s", logs.String())
	}
}

// TestChangedSeesEveryField: a change to any field of Config shows in
// Changed, so a comparison through it (the daemon's reload) misses
// nothing, also when a field is added.
func TestChangedSeesEveryField(t *testing.T) {
	base := Defaults(FormatUCI)
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		c := base
		f := reflect.ValueOf(&c).Elem().Field(i)
		switch f.Kind() {
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 7)
		case reflect.Uint64:
			f.SetUint(f.Uint() + 7)
		case reflect.Slice:
			f.Set(reflect.Append(f, reflect.Zero(f.Type().Elem())))
		default:
			if f.Type() != reflect.TypeOf(netip.Addr{}) {
				t.Fatalf("field %s: a %v, which this test does not change", typ.Field(i).Name, f.Type())
			}
			f.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.7")))
		}
		if got := Changed(&base, &c); len(got) != 1 {
			t.Errorf("field %s changed: keys %v, want one", typ.Field(i).Name, got)
		}
	}
	if got := Changed(&base, &base); got != nil {
		t.Errorf("nothing changed: %v", got)
	}
}
