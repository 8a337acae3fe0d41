package main

import (
	"flag"
	"fmt"
	"io"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/daemon"
	"github.com/jsklein/gogoc/internal/secret"
	"github.com/jsklein/gogoc/tsp"
)

// brokerFlags are the settings shared by negotiate and run: a configuration
// file, and flags that override single keys of it for a quick try.
type brokerFlags struct {
	legacy, uci                        *string
	server, mode, auth, user, passFile *string
	clientV4                           *string
	router                             *bool
	prefixLen, keepalive               *int
	// needLAN: the command builds the LAN side (run), so -router without
	// if_prefix must be refused rather than pointed at "lo".
	needLAN bool
	// raFlags is run's -ra-flags (nil for other commands).
	raFlags *string
}

func addBrokerFlags(fs *flag.FlagSet) *brokerFlags {
	return &brokerFlags{
		legacy:    fs.String("f", "", "legacy `gogoc.conf` to read"),
		uci:       fs.String("uci", "", "UCI `file` to read (e.g. /etc/config/gogoc)"),
		server:    fs.String("server", "", "broker `host[:port]` or [v6][:port] (overrides server)"),
		mode:      fs.String("mode", "", "tunnel_mode: v6anyv4, v6v4, v6udpv4, v4v6"),
		auth:      fs.String("auth", "", "auth_method: anonymous, any, plain, digest-md5"),
		user:      fs.String("user", "", "userid"),
		passFile:  fs.String("passwd-file", "", "read the password from this `file` ($GOGOC_PASSWD also works)"),
		clientV4:  fs.String("client-v4", "", "client_v4: auto or an IPv4 address"),
		router:    fs.Bool("router", false, "host_type=router: ask for a delegated prefix"),
		prefixLen: fs.Int("prefixlen", 0, "requested prefix length (router)"),
		keepalive: fs.Int("keepalive", -1, "keepalive_interval in seconds, 0 turns keepalive off"),
	}
}

// config builds the effective configuration: the file (or the defaults)
// with explicitly given flags on top, validated as a whole.
func (b *brokerFlags) config(fs *flag.FlagSet, cmd string, stderr io.Writer) (*config.Config, bool) {
	var c *config.Config
	switch {
	case *b.legacy != "" && *b.uci != "":
		fmt.Fprintf(stderr, "%s: give -f or --uci, not both\n", cmd)
		return nil, false
	case *b.legacy != "" || *b.uci != "":
		path, format := *b.legacy, config.FormatLegacy
		if *b.uci != "" {
			path, format = *b.uci, config.FormatUCI
		}
		var ok bool
		if c, ok = load(path, format, cmd, stderr); !ok {
			return nil, false
		}
	default:
		d := config.Defaults(config.FormatLegacy)
		d.AuthMethod = config.AuthAnonymous // no file: an anonymous try
		c = &d
	}
	var errs []string
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "server":
			c.Server = *b.server
		case "mode":
			c.TunnelMode = config.TunnelMode(*b.mode)
		case "auth":
			c.AuthMethod = config.AuthMethod(*b.auth)
		case "user":
			c.UserID = *b.user
		case "client-v4":
			c.ClientV4 = netip.Addr{}
			if *b.clientV4 != "auto" {
				a, err := netip.ParseAddr(*b.clientV4)
				if err != nil || !a.Is4() {
					errs = append(errs, "-client-v4: want auto or an IPv4 address")
				}
				c.ClientV4 = a
			}
		case "router":
			c.HostType = config.HostTypeHost
			if *b.router {
				c.HostType = config.HostTypeRouter
				if c.IfPrefix == "" && !b.needLAN {
					c.IfPrefix = "lo" // negotiation only needs it to be set
				}
			}
		case "prefixlen":
			c.PrefixLen = *b.prefixLen
		case "ra-flags":
			// Empty keeps the file's list: the OpenWrt init script passes
			// dhcp.<lan>.ra_flags, which may be unset.
			if *b.raFlags != "" {
				c.RAFlags = nil
				for _, f := range strings.FieldsFunc(*b.raFlags, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' }) {
					c.RAFlags = append(c.RAFlags, config.RAFlag(f))
				}
			}
		case "keepalive":
			c.Keepalive = *b.keepalive > 0
			if *b.keepalive > 0 {
				c.KeepaliveInterval = time.Duration(*b.keepalive) * time.Second
			}
		}
	})
	if p := os.Getenv("GOGOC_PASSWD"); p != "" {
		c.Password = secret.String(p)
	}
	if *b.passFile != "" {
		raw, err := os.ReadFile(*b.passFile)
		if err != nil {
			errs = append(errs, err.Error())
		}
		c.Password = secret.String(strings.TrimRight(string(raw), "\r\n"))
	}
	if len(errs) == 0 {
		if err := c.Validate(); err != nil {
			errs = append(errs, err.Error())
		}
	}
	for _, e := range errs {
		fmt.Fprintf(stderr, "%s: %s\n", cmd, e)
	}
	return c, len(errs) == 0
}

// tspParams maps the configuration onto what the protocol layer needs:
// the daemon's mapping, with a terminal prompt for an unknown server key.
func tspParams(c *config.Config) (tsp.Request, tsp.Credentials) {
	req, creds := daemon.Params(c)
	creds.KeyPrompt = terminalPrompt(os.Stdin, os.Stderr)
	return req, creds
}
