package config

import (
	"fmt"
	"strings"
	"time"

	"github.com/jsklein/gogoc/internal/secret"
)

// reporter is where crossCheck files problems: a file (with lines) or a
// Config built in code.
type reporter interface {
	// report files msg about key; by is the key that makes it a problem,
	// whose line is used when key itself is not in the file.
	report(key, by, msg string)
	isSet(key string) bool
	// refused says the key's value was already reported as bad, so checks
	// that involve it would only repeat the news.
	refused(key string) bool
}

// crossCheck holds every rule that involves more than one key, or a key
// that must be present.
func crossCheck(c *Config, r reporter) {
	fine := func(keys ...string) bool {
		for _, k := range keys {
			if r.refused(k) {
				return false
			}
		}
		return true
	}

	if c.Server == "" && fine("server") {
		r.report("server", "", "missing: set the broker as host, host:port or [IPv6]:port")
	}

	if c.AuthMethod != AuthAnonymous && fine("auth_method") {
		why := "auth_method " + string(c.AuthMethod)
		if !r.isSet("auth_method") {
			why += " (the default)"
		}
		if c.UserID == "" && fine("userid") {
			r.report("userid", "auth_method", "missing: "+why+" needs a user name (auth_method anonymous needs none)")
		}
		if c.Password.IsZero() && fine("passwd") {
			r.report("passwd", "auth_method", "missing: "+why+" needs a password (auth_method anonymous needs none)")
		}
	}

	router := c.HostType == HostTypeRouter && fine("host_type")
	v6 := c.TunnelMode != TunnelV4V6 && fine("tunnel_mode")
	if router && c.IfPrefix == "" && fine("if_prefix") {
		r.report("if_prefix", "host_type", "missing: host_type router needs the LAN device for the prefix (e.g. br-lan)")
	}
	// Router mode advertises a delegated IPv6 prefix on the LAN; a v4v6
	// tunnel carries IPv4 and has none to give.
	if router && c.TunnelMode == TunnelV4V6 && fine("tunnel_mode") {
		r.report("tunnel_mode", "host_type", "v4v6 cannot be used with host_type router: it delegates no IPv6 prefix "+
			"(use v6anyv4, v6v4 or v6udpv4, or host_type host)")
	}
	if router && v6 && fine("prefixlen") {
		if c.PrefixLen > 64 {
			r.report("prefixlen", "host_type", fmt.Sprintf("%d leaves no /64 for the LAN; ask for 64 or shorter", c.PrefixLen))
		} else if max := uint64(1)<<(64-c.PrefixLen) - 1; c.SubnetID > max && fine("subnet_id") {
			r.report("subnet_id", "prefixlen", fmt.Sprintf("%x does not fit a /%d prefix (0..%x)", c.SubnetID, c.PrefixLen, max))
		}
	}

	if c.RetryDelay > c.RetryDelayMax && fine("retry_delay", "retry_delay_max") {
		r.report("retry_delay", "retry_delay_max", fmt.Sprintf("%d is greater than retry_delay_max %d",
			c.RetryDelay/time.Second, c.RetryDelayMax/time.Second))
	}

	if c.Keepalive && c.KeepaliveInterval == 0 && fine("keepalive", "keepalive_interval") {
		r.report("keepalive_interval", "keepalive", "must be 1 or more while keepalive is on (or set keepalive no)")
	}
	if c.TunnelMode == TunnelV6UDPV4 && !c.Keepalive && fine("keepalive", "tunnel_mode") {
		r.report("keepalive", "tunnel_mode", "tunnel_mode v6udpv4 needs keepalive on: without it the NAT mapping expires")
	}
	if c.ProxyClient && fine("proxy_client") {
		if c.TunnelMode == TunnelV6UDPV4 && fine("tunnel_mode") {
			r.report("proxy_client", "tunnel_mode", "cannot be used with tunnel_mode v6udpv4")
		}
		if c.Keepalive && fine("keepalive") {
			r.report("proxy_client", "keepalive", "needs keepalive no: the tunnel ends on another device")
		}
	}
}

// Validate checks a Config built or changed in code (after command-line
// overrides, say) by the same rules as a file: each value must be one a
// file could hold, and the rules between keys must hold. The error is an
// Issues without file positions.
func (c *Config) Validate() error {
	r := &plainReporter{}
	def := Defaults(FormatUCI)
	scratch := Defaults(FormatUCI)
	for i := range keys {
		k := &keys[i]
		vals := k.get(c)
		if k.list {
			scratch.DNSServers, scratch.DNSServersRA, scratch.RAFlags = nil, nil, nil
		} else if vals[0] == "" {
			if k.get(&def)[0] != "" {
				r.fail(k.name, "must not be empty")
			}
			continue
		}
		for _, v := range vals {
			if v == "" {
				r.fail(k.name, "empty list item")
				continue
			}
			if err := k.set(&scratch, v); err != nil {
				r.fail(k.name, err.Error())
			}
		}
	}
	crossCheck(c, r)
	if len(r.list) == 0 {
		return nil
	}
	if pw := c.Password.Reveal(); secret.Maskable(pw) {
		for _, i := range r.list {
			i.Msg = strings.ReplaceAll(i.Msg, pw, "********")
		}
	}
	return r.list
}

type plainReporter struct {
	list Issues
	bad  map[string]bool
}

func (r *plainReporter) fail(key, msg string) {
	if r.bad == nil {
		r.bad = make(map[string]bool)
	}
	r.bad[key] = true
	r.list = append(r.list, &Issue{Key: key, Msg: msg})
}

func (r *plainReporter) report(key, _, msg string) {
	r.list = append(r.list, &Issue{Key: key, Msg: msg})
}
func (r *plainReporter) isSet(string) bool       { return true }
func (r *plainReporter) refused(key string) bool { return r.bad[key] }
