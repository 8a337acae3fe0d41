package main

import (
	"fmt"
	"path/filepath"
	"strings"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/caps"
	"github.com/jsklein/gogoc/internal/statedir"
)

// capNeed is a capability the configuration needs, and for what.
type capNeed struct {
	cap caps.Cap
	why string
}

// neededCaps lists what c needs for certain. The userspace v6v4 and v4v6
// planes need CAP_NET_RAW too (protocol 41 and 4 sockets); under
// data_plane auto, or with v6anyv4, whether one is used is known only
// when the kernel and the broker have answered: that operation's own
// error names the capability then.
func neededCaps(c *config.Config) []capNeed {
	n := []capNeed{{caps.NetAdmin, "the tunnel device, its addresses and routes"}}
	var raw []string
	if c.DataPlane == config.DataPlaneUserspace && (c.TunnelMode == config.TunnelV6V4 || c.TunnelMode == config.TunnelV4V6) {
		raw = append(raw, "the userspace "+string(c.TunnelMode)+" plane (raw IP socket)")
	}
	if c.Keepalive {
		raw = append(raw, "keepalive (raw ICMP socket)")
	}
	if c.HostType == config.HostTypeRouter && c.RA == config.RABuiltin {
		raw = append(raw, "router advertisements (raw ICMPv6 socket)")
	}
	if len(raw) > 0 {
		n = append(n, capNeed{caps.NetRaw, strings.Join(raw, " and ")})
	}
	return n
}

// checkPrivileges returns an error naming each capability c needs and s
// lacks: without it the daemon could only fail over and over.
func checkPrivileges(s caps.State, c *config.Config) error {
	var missing []string
	for _, n := range neededCaps(c) {
		if !s.Has(n.cap) {
			missing = append(missing, fmt.Sprintf("%v (for %s)", n.cap, n.why))
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return fmt.Errorf("missing %s; %s: run as root, or as a user with CAP_NET_ADMIN and CAP_NET_RAW (README: Privileges)",
		strings.Join(missing, " and "), s.Summary())
}

// ensureDirs makes the state directory the daemon's own and, under tofu,
// the known-keys file's directory too (a new key is stored there).
func ensureDirs(stateDir string, c *config.Config) error {
	if err := statedir.Ensure(stateDir); err != nil {
		return err
	}
	if c.ServerKeyPolicy == config.KeyPolicyTOFU && c.KnownKeys != "" {
		if err := statedir.Ensure(filepath.Dir(c.KnownKeys)); err != nil {
			return fmt.Errorf("server_key_policy tofu stores new keys in %s: %w", c.KnownKeys, err)
		}
	}
	return nil
}
