package config

import (
	"fmt"
	"strings"
	"testing"
)

func TestReadLegacy(t *testing.T) {
	// want: one "line key=value" per entry, "line key (no =)" for a line
	// without '='.
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"empty file", "", ""},
		{"comments and blank lines", "# gogoc.conf\n\n   # indented\n\t\n", ""},
		{"one key", "server=broker.example.net\n", "1 server=broker.example.net"},
		{"spaces around name and value", "  server  =  broker.example.net  \n", "1 server=broker.example.net"},
		{"tabs around name and value", "\tuserid\t=\talice\t\n", "1 userid=alice"},
		{"inner spaces stay", "passwd= my secret words \n", "1 passwd=my secret words"},
		{"split at the first =", "passwd=a=b==\n", "1 passwd=a=b=="},
		{"empty value", "server=\n", "1 server="},
		{"no =", "server\n", "1 server (no =)"},
		{"no key", "=value\n", "1 =value"},
		{"CRLF line ends", "server=b\r\nuserid=u\r\n", "1 server=b\n2 userid=u"},
		{"CR inside a value stays", "passwd=a\rb\n", "1 passwd=a\rb"},
		{"byte order mark", "\uFEFFserver=b\n", "1 server=b"},
		{"no inline comments", "server=b # my broker\n", "1 server=b # my broker"},
		{"hash after =", "passwd=#secret\n", "1 passwd=#secret"},
		{"no quoting", "passwd=\"quoted\"\nuserid='x'\n", "1 passwd=\"quoted\"\n2 userid='x'"},
		{"every occurrence is kept", "retry_delay=1\nretry_delay=2\n", "1 retry_delay=1\n2 retry_delay=2"},
		{"line numbers count comments", "# c\n\nserver=b\n# c\nuserid=u\n", "3 server=b\n5 userid=u"},
		{"no newline at the end", "server=b", "1 server=b"},
		{"spaces inside a name stay", "log file = x\n", "1 log file=x"},
		{"unicode", "userid=jürgen\n", "1 userid=jürgen"},
		{"hash later in the line is text", "  server = b#c\n", "1 server=b#c"},
		{"only spaces after =", "server=   \t\n", "1 server="},
		{"CRLF blank lines", "\r\n\r\nserver=b\r\n", "3 server=b"},
	}
	if len(tests) < 20 {
		t.Fatalf("only %d cases", len(tests))
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, l := range readLegacy(tt.in) {
				if l.noEquals {
					got = append(got, fmt.Sprintf("%d %s (no =)", l.line, l.key))
				} else {
					got = append(got, fmt.Sprintf("%d %s=%s", l.line, l.key, l.value))
				}
			}
			if s := strings.Join(got, "\n"); s != tt.want {
				t.Errorf("got\n%q\nwant\n%q", s, tt.want)
			}
		})
	}
}

// TestParseLegacy covers what the lines mean: last wins, empty is the
// default, and the warnings a migrating user gets.
func TestParseLegacy(t *testing.T) {
	const base = "server=broker.example.net\nauth_method=anonymous\n"
	tests := []struct {
		name     string
		in       string
		check    func(c *Config) string // "" when the config is as expected
		warnings string
		errs     string
	}{
		{
			name:  "minimal",
			in:    base,
			check: func(c *Config) string { return want(c.Server == "broker.example.net" && c.Enabled, "server/enabled") },
		},
		{
			name:     "last one wins",
			in:       base + "retry_delay=10\nretry_delay=20\n",
			check:    func(c *Config) string { return want(c.RetryDelay.Seconds() == 20, "retry_delay 20") },
			warnings: "g.conf:4: retry_delay: set again, this line replaces line 3",
		},
		{
			name: "empty means default",
			in:   base + "retry_delay=\nif_tunnel_v6v4=\nlog_stderr=\n",
			check: func(c *Config) string {
				return want(c.RetryDelay.Seconds() == 30 && c.IfTunnelV6V4 == "gogoc6in4" && c.LogStderr == 1, "defaults")
			},
		},
		{
			name: "CRLF file",
			in:   strings.ReplaceAll(base+"userid=alice\nkeepalive=no\n", "\n", "\r\n"),
			check: func(c *Config) string {
				return want(c.Server == "broker.example.net" && c.UserID == "alice" && !c.Keepalive, "values without CR")
			},
		},
		{
			name: "boolean spellings",
			in:   base + "keepalive=no\nauto_retry_connect=true\nalways_use_same_server=on\nlog_rotation=disabled\nproxy_client=0\n",
			check: func(c *Config) string {
				return want(!c.Keepalive && c.AutoRetryConnect && c.AlwaysUseSameServer && !c.LogRotation && !c.ProxyClient, "booleans")
			},
		},
		{
			// The old client validated exact lower-case yes/no.
			name: "booleans are case-sensitive",
			in:   base + "keepalive=No\n",
			errs: `g.conf:3: keepalive: "No" is not a boolean (use yes/no, 1/0, on/off, true/false or enabled/disabled); ` +
				"did you mean no? Values are case-sensitive, as OpenWrt's scripts and the old client read them",
		},
		{
			name:     "unknown keys are ignored with a warning",
			in:       base + "colour=blue\nServer=other\n",
			check:    func(c *Config) string { return want(c.Server == "broker.example.net", "server untouched") },
			warnings: "g.conf:3: colour: unknown key, ignored\ng.conf:4: Server: unknown key, ignored (did you mean server? names are lower case)",
		},
		{
			name:     "control characters in an unknown key are escaped",
			in:       base + "col\x1b[2Jour=blue\n",
			warnings: `g.conf:3: "col\x1b[2Jour": unknown key, ignored`,
		},
		{
			// A lone byte of a UTF-8 sequence (or a key cut inside
			// one) is shown escaped, not as a broken character.
			name:     "broken UTF-8 in an unknown key is escaped",
			in:       base + "col\xc3ur=blue\n" + strings.Repeat("k", 39) + "\u00e9xyz=1\n",
			warnings: `g.conf:3: "col\xc3ur": unknown key, ignored` + "\n" + `g.conf:4: "` + strings.Repeat("k", 39) + `\xc3...": unknown key, ignored`,
		},
		{
			name:     "template is accepted and ignored",
			in:       base + "template=linux\n",
			warnings: "g.conf:3: template: ignored: gogoc sets up the tunnel itself and runs no template script",
		},
		{
			name:     "line without = is not echoed",
			in:       base + "MyStrayWord\n",
			warnings: "g.conf:3: no '=' and not a key, line ignored",
		},
		{
			name:     "key without = keeps its default",
			in:       base + "keepalive\n",
			check:    func(c *Config) string { return want(c.Keepalive, "keepalive default") },
			warnings: "g.conf:3: keepalive: no '=' on the line, the key keeps its default",
		},
		{
			name:     "quotes are part of the value",
			in:       "server=\"broker.example.net\"\nauth_method=anonymous\n",
			warnings: "g.conf:1: server: the quotes are part of the value: gogoc.conf has no quoting",
			errs:     `g.conf:1: server: "\"broker.example.net\"" holds '"' at character 1; allowed are letters, digits and - . : [ ]`,
		},
		{
			name: "inline comment hint",
			in:   base + "retry_delay=30 # seconds\n",
			errs: `g.conf:3: retry_delay: "30 # seconds" is not a whole number (gogoc.conf has no inline comments)`,
		},
		{
			name: "dns_server is ':'-separated",
			in:   base + "host_type=router\nif_prefix=br-lan\ndns_server=ns1.example.net:ns2.example.net\n",
			check: func(c *Config) string {
				return want(strings.Join(c.DNSServers, " ") == "ns1.example.net ns2.example.net", "two servers")
			},
		},
		{
			name: "dns_servers_ra takes commas",
			in:   base + "dns_servers_ra=2001:db8::53, fe80::1\n",
			check: func(c *Config) string {
				return want(len(c.DNSServersRA) == 2 && c.DNSServersRA[1].String() == "fe80::1", "two RDNSS")
			},
		},
		{
			name:  "enabled may be switched off",
			in:    base + "enabled=no\n",
			check: func(c *Config) string { return want(!c.Enabled, "disabled") },
		},
		{
			name: "missing server has no line to show",
			in:   "auth_method=anonymous\n",
			errs: "g.conf: server: missing: set the broker as host, host:port or [IPv6]:port",
		},
		{
			name: "an empty line still locates the key",
			in:   "server=\nauth_method=anonymous\n",
			errs: "g.conf:1: server: missing: set the broker as host, host:port or [IPv6]:port",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, warns, err := Parse("g.conf", []byte(tt.in), FormatLegacy)
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
					t.Errorf("config: %s", msg)
				}
			}
			if (c == nil) != (tt.errs != "") {
				t.Errorf("config %v with errors %q", c != nil, tt.errs)
			}
		})
	}
}

func want(ok bool, what string) string {
	if ok {
		return ""
	}
	return "expected " + what
}

func joinIssues(l Issues) string {
	if len(l) == 0 {
		return ""
	}
	return l.Error()
}
