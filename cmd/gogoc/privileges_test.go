package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/config"
	"github.com/jsklein/gogoc/internal/caps"
	"github.com/jsklein/gogoc/internal/caps/captest"
)

// TestConfigUnreadable: gogoc run as a user that cannot read the
// configuration (root's, 0600, as /etc/config/gogoc after uci commit) says
// so and where to look, instead of a bare "permission denied".
func TestConfigUnreadable(t *testing.T) {
	const name = "TestConfigUnreadable"
	if captest.InHelper(name) {
		var out, errb strings.Builder
		code := cmdRun([]string{"-uci", os.Getenv("GOGOC_CAPTEST_CONF")}, &out, &errb)
		os.Stdout.WriteString(errb.String())
		os.Exit(code)
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a helper as another user")
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "gogoc")
	if err := os.WriteFile(conf, []byte("config gogoc 'main'\n\toption enabled '1'\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	giveDir(t, dir)
	if err := os.Chown(conf, 0, 0); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOGOC_CAPTEST_CONF", conf)
	out, code := captest.RunStatus(t, name, "", "")
	if code != 2 {
		t.Errorf("exit status %d, want 2 (a configuration that does not load)", code)
	}
	want := "gogoc run: permission denied reading " + conf + " (uid 4242): run as a user that can read it, see openwrt/README.md\n"
	if out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

func TestNeededCaps(t *testing.T) {
	c := config.Defaults(config.FormatUCI)
	c.Keepalive = false
	c.HostType = config.HostTypeHost
	admin := caps.State{Effective: 1 << caps.NetAdmin, EUID: 99, EGID: 99}
	if err := checkPrivileges(admin, &c); err != nil {
		t.Errorf("host mode without keepalive needs only CAP_NET_ADMIN: %v", err)
	}
	c.HostType, c.RA = config.HostTypeRouter, config.RANone
	if err := checkPrivileges(admin, &c); err != nil {
		t.Errorf("router mode with ra none: %v", err)
	}
	c.RA = config.RABuiltin
	err := checkPrivileges(admin, &c)
	if err == nil || !strings.Contains(err.Error(), "missing CAP_NET_RAW (for router advertisements (raw ICMPv6 socket))") {
		t.Errorf("router mode with RAs: %v", err)
	}
	c.Keepalive = true
	err = checkPrivileges(caps.State{EUID: 99}, &c)
	want := "missing CAP_NET_ADMIN (for the tunnel device, its addresses and routes) and CAP_NET_RAW (for keepalive (raw ICMP socket) and router advertisements (raw ICMPv6 socket))"
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("nothing held: %v", err)
	}
	both := caps.State{Effective: 1<<caps.NetAdmin | 1<<caps.NetRaw, EUID: 99}
	if err := checkPrivileges(both, &c); err != nil {
		t.Errorf("both held: %v", err)
	}

	// The userspace v6v4 and v4v6 planes open raw IP sockets; v6udpv4's
	// is UDP, and under auto or v6anyv4 only the kernel and the broker
	// can tell.
	c = config.Defaults(config.FormatUCI)
	c.Keepalive, c.HostType = false, config.HostTypeHost
	for _, tc := range []struct {
		mode  config.TunnelMode
		plane config.DataPlane
		raw   bool
	}{
		{config.TunnelV6V4, config.DataPlaneUserspace, true},
		{config.TunnelV4V6, config.DataPlaneUserspace, true},
		{config.TunnelV6UDPV4, config.DataPlaneUserspace, false},
		{config.TunnelV6AnyV4, config.DataPlaneUserspace, false},
		{config.TunnelV6V4, config.DataPlaneAuto, false},
	} {
		c.TunnelMode, c.DataPlane = tc.mode, tc.plane
		err := checkPrivileges(admin, &c)
		want := "missing CAP_NET_RAW (for the userspace " + string(tc.mode) + " plane (raw IP socket))"
		if tc.raw && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("%s %s: %v, want %q", tc.mode, tc.plane, err, want)
		}
		if !tc.raw && err != nil {
			t.Errorf("%s %s: %v", tc.mode, tc.plane, err)
		}
	}
}

func TestEnsureDirsTOFU(t *testing.T) {
	dir := t.TempDir()
	c := config.Defaults(config.FormatUCI)
	c.ServerKeyPolicy = config.KeyPolicyTOFU
	c.KnownKeys = filepath.Join(dir, "keys", "gogockeys.pub")
	if err := ensureDirs(filepath.Join(dir, "state"), &c); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"state", "keys"} {
		if fi, err := os.Stat(filepath.Join(dir, d)); err != nil || fi.Mode().Perm() != 0o750 {
			t.Errorf("%s: %v %v, want a directory 0750", d, fi, err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "keys"), 0o777); err != nil {
		t.Fatal(err)
	}
	err := ensureDirs(filepath.Join(dir, "state"), &c)
	if err == nil || !strings.Contains(err.Error(), "server_key_policy tofu stores new keys in "+c.KnownKeys) {
		t.Errorf("a keys directory writable by all: %v", err)
	}
	c.ServerKeyPolicy = config.KeyPolicyStrict // only read: not checked
	if err := ensureDirs(filepath.Join(dir, "state"), &c); err != nil {
		t.Errorf("strict: %v", err)
	}
}
