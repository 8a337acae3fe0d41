package daemon

import (
	"net/netip"
	"testing"
	"time"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/secret"
)

// TestTunnelRelevant: what a reload renegotiates for. Log, retry and
// status settings take effect on the running tunnel; anything that
// shapes the tunnel, the broker or the credentials (the password too,
// never shown) needs a new one.
func TestTunnelRelevant(t *testing.T) {
	base := config.Defaults(config.FormatUCI)
	base.Server = "broker.example.net"
	live := map[string]func(*config.Config){
		"retry_delay":         func(c *config.Config) { c.RetryDelay = time.Minute },
		"auto_retry_connect":  func(c *config.Config) { c.AutoRetryConnect = !c.AutoRetryConnect },
		"log_file":            func(c *config.Config) { c.LogFile = 3 },
		"log_rotation_delete": func(c *config.Config) { c.LogRotationDelete = true },
		"log_rotation_keep":   func(c *config.Config) { c.LogRotationKeep++ },
		"status_file":         func(c *config.Config) { c.StatusFile = "/tmp/x.json" },
		"wan_interface":       func(c *config.Config) { c.WANInterface = "wan6" },
		"tcp_fallback_delay":  func(c *config.Config) { c.TCPFallbackDelay = time.Second },
		"enabled":             func(c *config.Config) { c.Enabled = !c.Enabled },
	}
	tunnel := map[string]func(*config.Config){
		"server":            func(c *config.Config) { c.Server = "other.example.net" },
		"passwd":            func(c *config.Config) { c.Password = secret.String("changed") },
		"tunnel_mode":       func(c *config.Config) { c.TunnelMode = config.TunnelV6UDPV4 },
		"client_v4":         func(c *config.Config) { c.ClientV4 = netip.MustParseAddr("192.0.2.9") },
		"dns_servers_ra":    func(c *config.Config) { c.DNSServersRA = []netip.Addr{netip.MustParseAddr("2001:db8::53")} },
		"ra_flags":          func(c *config.Config) { c.RAFlags = []config.RAFlag{config.RAFlagManaged} },
		"keepalive_timeout": func(c *config.Config) { c.KeepaliveTimeout = time.Second },
	}
	for want, cases := range map[bool]map[string]func(*config.Config){false: live, true: tunnel} {
		for name, change := range cases {
			b := base
			change(&b)
			if got := tunnelRelevant(&base, &b); got != want {
				t.Errorf("%s changed: renegotiate %v, want %v", name, got, want)
			}
		}
	}
	b := base
	for _, change := range live {
		change(&b)
	}
	if tunnelRelevant(&base, &b) {
		t.Error("every live setting changed at once: renegotiates")
	}
}
