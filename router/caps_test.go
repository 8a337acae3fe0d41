package router

import (
	"fmt"
	"net/netip"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps/captest"
	"github.com/jsklein/gogoc/internal/rtlink"
)

// TestCapabilities: a non-root uid with CAP_NET_ADMIN writes the
// forwarding sysctls (root's files, mode 0644: the kernel lets a network
// administrator write them as root) and changes addresses; without it,
// both fail with an error naming CAP_NET_ADMIN.
func TestCapabilities(t *testing.T) {
	const name = "TestCapabilities"
	if captest.InHelper(name) {
		lan := os.Getenv("GOGOC_CAPTEST_LAN")
		err := ProcSysctl{}.Set("conf/"+lan+"/forwarding", "1")
		fmt.Printf("sysctl: %v\n", err)
		h, err := rtlink.NewHandle()
		if err == nil {
			var l rtlink.Link
			if l, err = h.LinkByName(lan); err == nil {
				err = h.AddrAdd(l.Index, rtlink.Addr{Prefix: netip.MustParsePrefix("2001:db8:1::1/64"), Flags: unix.IFA_F_NODAD})
			}
		}
		fmt.Printf("address: %v\n", err)
		os.Exit(0)
	}
	l := newLab(t)
	t.Setenv("GOGOC_CAPTEST_LAN", l.lan)
	for _, c := range []struct{ caps, sysctl, addr string }{
		{"+net_raw", "sysctl: open /proc/sys/net/ipv6/conf/" + l.lan + "/forwarding: permission denied (needs CAP_NET_ADMIN)",
			"address: operation not permitted (needs CAP_NET_ADMIN)"},
		{"+net_admin,+net_raw", "sysctl: <nil>", "address: <nil>"},
	} {
		out := captest.Run(t, name, c.caps, l.name)
		for _, w := range []string{c.sysctl, c.addr} {
			if !strings.Contains(out, w+"\n") {
				t.Errorf("with %s: no line %q in:\n%s", c.caps, w, out)
			}
		}
	}
	if got := l.get(t, "conf/"+l.lan+"/forwarding"); got != "1" {
		t.Errorf("forwarding on %s = %q after the unprivileged write, want 1", l.lan, got)
	}
}
