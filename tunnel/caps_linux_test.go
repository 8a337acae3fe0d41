package tunnel

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/jsklein/gogoc/internal/caps/captest"
)

// TestCapabilities runs the tunnel's privileged operations as an
// unprivileged uid in a namespace of its own: with CAP_NET_ADMIN and
// CAP_NET_RAW they work; without one, each fails with an error that names
// the operation and the capability it lacks.
func TestCapabilities(t *testing.T) {
	const name = "TestCapabilities"
	if captest.InHelper(name) {
		capOps()
		os.Exit(0)
	}
	requireLab(t)
	ns := newLabNS(t, "cap")
	run(t, "ip", "-n", ns.name, "link", "add", "capa", "type", "veth", "peer", "name", "capb")
	run(t, "ip", "-n", ns.name, "addr", "add", "192.0.2.2/24", "dev", "capa")
	run(t, "ip", "-n", ns.name, "addr", "add", "2001:db8::2/64", "dev", "capa", "nodad")
	run(t, "ip", "-n", ns.name, "link", "set", "capa", "up")
	run(t, "ip", "-n", ns.name, "link", "set", "capb", "up")

	for _, c := range []struct {
		caps string
		want []string
	}{
		{"+net_admin,+net_raw", []string{
			"tun: ok gogoccap",
			"keepalive: ok",
			"proto41: ok",
		}},
		{"+net_raw", []string{
			"tun: create tun device gogoccap: operation not permitted (needs CAP_NET_ADMIN)",
			"keepalive: ok",
			"proto41: ok",
		}},
		{"+net_admin", []string{
			"tun: ok gogoccap",
			"keepalive: keepalive socket: operation not permitted (needs CAP_NET_RAW)",
			"proto41: protocol-41 socket on 192.0.2.2: listen ip4:41 192.0.2.2: socket: operation not permitted (needs CAP_NET_RAW)",
		}},
	} {
		out := captest.Run(t, name, c.caps, ns.name)
		for _, w := range c.want {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("with %s: no line %q in:\n%s", c.caps, w, out)
			}
		}
		if exec.Command("ip", "-n", ns.name, "link", "show", "dev", "gogoccap").Run() == nil {
			t.Errorf("with %s: device gogoccap left behind", c.caps)
		}
	}
}

// capOps is the helper's side: each operation once, its result printed.
func capOps() {
	report := func(what string, err error, ok string) {
		if err != nil {
			fmt.Printf("%s: %v\n", what, err)
			return
		}
		fmt.Printf("%s: ok%s\n", what, ok)
	}
	tun, err := openTUN("gogoccap", false)
	name := ""
	if err == nil {
		name = " " + tun.name
		_ = tun.Close()
	}
	report("tun", err, name)
	p, err := NewPingConn(0, "capa", netip.Addr{}, netip.MustParseAddr("2001:db8::1"))
	if err == nil {
		_ = p.Close()
	}
	report("keepalive", err, "")
	c, err := ListenProto41(0, netip.MustParseAddr("192.0.2.2"))
	if err == nil {
		_ = c.Close()
	}
	report("proto41", err, "")
}
