package router

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/tunnel"
)

func TestLANPrefix(t *testing.T) {
	tests := []struct {
		deleg  string
		subnet uint64
		want   string // "" means an error
	}{
		{"2001:db8:8000::/56", 0, "2001:db8:8000::/64"},
		{"2001:db8:8000::/56", 0xff, "2001:db8:8000:ff::/64"},
		{"2001:db8:8000::/56", 0x100, ""},
		{"2001:db8:8000::/48", 0xabcd, "2001:db8:8000:abcd::/64"},
		{"2001:db8:8000::/48", 0x10000, ""},
		{"2001:db8:8000:5::/64", 0, "2001:db8:8000:5::/64"},
		{"2001:db8:8000:5::/64", 1, ""},
		{"2001:db8:8000::/72", 0, ""},
		{"192.0.2.0/24", 0, ""},
		{"::/0", 0x1234, "0:0:0:1234::/64"},
	}
	for _, tt := range tests {
		got, err := LANPrefix(netip.MustParsePrefix(tt.deleg), tt.subnet)
		switch {
		case tt.want == "" && err == nil:
			t.Errorf("LANPrefix(%s, %x) = %v, want an error", tt.deleg, tt.subnet, got)
		case tt.want != "" && (err != nil || got != netip.MustParsePrefix(tt.want)):
			t.Errorf("LANPrefix(%s, %x) = %v, %v; want %s", tt.deleg, tt.subnet, got, err, tt.want)
		}
	}
}

// nsSysctl runs ProcSysctl inside a namespace.
type nsSysctl struct{ ns netns.NsHandle }

func (s nsSysctl) Get(key string) (v string, err error) {
	err = tunnel.InNetNS(s.ns, func() (e error) { v, e = ProcSysctl{}.Get(key); return })
	return
}

func (s nsSysctl) Set(key, value string) error {
	return tunnel.InNetNS(s.ns, func() error { return ProcSysctl{}.Set(key, value) })
}

func (s nsSysctl) Interfaces() (n []string, err error) {
	err = tunnel.InNetNS(s.ns, func() (e error) { n, e = ProcSysctl{}.Interfaces(); return })
	return
}

// lab is a namespace with a LAN veth, a "tunnel" veth and a "wan" veth.
type lab struct {
	name          string
	ns            netns.NsHandle
	h             *netlink.Handle
	rt            *rtlink.Handle // what the Router gets; h is the reference
	sys           nsSysctl
	lan, tun, wan string
}

func newLab(t *testing.T) *lab {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces")
	}
	id := os.Getpid() % 100000
	l := &lab{name: fmt.Sprintf("grt-rt-%d", id), lan: fmt.Sprintf("grt%dl", id), tun: fmt.Sprintf("grt%dt", id), wan: fmt.Sprintf("grt%dw", id)}
	sh := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	_ = exec.Command("ip", "netns", "del", l.name).Run()
	sh("netns", "add", l.name)
	t.Cleanup(func() { _ = exec.Command("ip", "netns", "del", l.name).Run() })
	for _, d := range []string{l.lan, l.tun, l.wan} {
		sh("-n", l.name, "link", "add", d, "type", "veth", "peer", "name", d+"p")
		sh("-n", l.name, "link", "set", d, "up")
	}
	var err error
	if l.ns, err = netns.GetFromName(l.name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.ns.Close() })
	if l.h, err = netlink.NewHandleAt(l.ns, unix.NETLINK_ROUTE); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.h.Close)
	if l.rt, err = rtlink.NewHandleAt(l.ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.rt.Close)
	l.sys = nsSysctl{l.ns}
	return l
}

func (l *lab) get(t *testing.T, key string) string {
	t.Helper()
	v, err := l.sys.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// state is what Apply touches, as text for comparisons.
func (l *lab) state(t *testing.T) string {
	t.Helper()
	var b strings.Builder
	link, err := l.h.LinkByName(l.lan)
	if err != nil {
		t.Fatal(err)
	}
	addrs, err := l.h.AddrList(link, netlink.FAMILY_V6)
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if a.IP.IsGlobalUnicast() {
			fmt.Fprintf(&b, "addr %s\n", a.IPNet)
		}
	}
	routes, err := l.h.RouteListFiltered(netlink.FAMILY_V6, &netlink.Route{Type: unix.RTN_UNREACHABLE}, netlink.RT_FILTER_TYPE)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range routes {
		fmt.Fprintf(&b, "unreachable %s metric %d\n", r.Dst, r.Priority)
	}
	for _, n := range []string{"all", l.lan, l.tun, l.wan} {
		fmt.Fprintf(&b, "forwarding %s=%s\n", n, l.get(t, "conf/"+n+"/forwarding"))
	}
	return b.String()
}

func TestApplyReplaceRemove(t *testing.T) {
	l := newLab(t)
	// The WAN keeps taking RAs: its forwarding must stay 0.
	if got := l.get(t, "conf/all/forwarding"); got != "0" {
		t.Fatalf("fresh namespace forwarding %s", got)
	}
	before := l.state(t)
	r := New(l.rt, l.sys, nil)
	d1 := netip.MustParsePrefix("2001:db8:8000::/56")
	lan1, _ := LANPrefix(d1, 0x12)
	p1 := Plan{LANIf: l.lan, TunIf: l.tun, Delegated: d1, LAN: lan1}
	if err := r.Apply(p1); err != nil {
		t.Fatal(err)
	}
	want1 := "addr 2001:db8:8000:12::1/64\nunreachable 2001:db8:8000::/56 metric 2048\n" +
		fmt.Sprintf("forwarding all=1\nforwarding %s=1\nforwarding %s=1\nforwarding %s=0\n", l.lan, l.tun, l.wan)
	if got := l.state(t); got != want1 {
		t.Fatalf("after Apply:\n%s\nwant:\n%s", got, want1)
	}
	if err := r.Apply(p1); err != nil {
		t.Fatalf("second Apply: %v", err)
	}
	if got := l.state(t); got != want1 {
		t.Fatalf("Apply is not idempotent:\n%s", got)
	}

	// A new prefix after a reconnect replaces the old one.
	d2 := netip.MustParsePrefix("2001:db8:9000:100::/56")
	lan2, _ := LANPrefix(d2, 0)
	if err := r.Apply(Plan{LANIf: l.lan, TunIf: l.tun, Delegated: d2, LAN: lan2}); err != nil {
		t.Fatal(err)
	}
	want2 := strings.NewReplacer("8000:12::1/64", "9000:100::1/64", "8000::/56", "9000:100::/56").Replace(want1)
	if got := l.state(t); got != want2 {
		t.Fatalf("after the new prefix:\n%s\nwant:\n%s", got, want2)
	}

	// A /64 delegation needs no unreachable route.
	d3 := netip.MustParsePrefix("2001:db8:9000:200::/64")
	if err := r.Apply(Plan{LANIf: l.lan, TunIf: l.tun, Delegated: d3, LAN: d3}); err != nil {
		t.Fatal(err)
	}
	if got := l.state(t); strings.Contains(got, "unreachable") || !strings.Contains(got, "addr 2001:db8:9000:200::1/64") {
		t.Fatalf("after a /64:\n%s", got)
	}

	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
	// Everything back, except conf/all/forwarding, which stays on.
	wantAfter := strings.Replace(before, "forwarding all=0", "forwarding all=1", 1)
	if got := l.state(t); got != wantAfter {
		t.Fatalf("after Remove:\n%s\nwant:\n%s", got, wantAfter)
	}
	if err := r.Remove(); err != nil {
		t.Fatalf("second Remove: %v", err)
	}
}

func TestApplyRefusesAndKeepsPrevious(t *testing.T) {
	l := newLab(t)
	r := New(l.rt, l.sys, nil)
	d := netip.MustParsePrefix("2001:db8:8000::/56")
	lan, _ := LANPrefix(d, 0)
	if err := r.Apply(Plan{LANIf: l.lan, TunIf: l.tun, Delegated: d, LAN: lan}); err != nil {
		t.Fatal(err)
	}
	good := l.state(t)
	bad := []Plan{
		{LANIf: "grt-missing", TunIf: l.tun, Delegated: d, LAN: lan},
		{LANIf: l.lan, TunIf: l.tun, Delegated: d, LAN: netip.MustParsePrefix("2001:db8:9000::/64")},
		{LANIf: l.lan, TunIf: "", Delegated: d, LAN: lan},
	}
	for _, p := range bad {
		if err := r.Apply(p); err == nil {
			t.Errorf("Apply(%+v) accepted", p)
		}
	}
	if got := l.state(t); got != good {
		t.Fatalf("a refused plan changed the system:\n%s\nwant:\n%s", got, good)
	}
	if p, ok := r.Applied(); !ok || p.LAN != lan {
		t.Fatalf("applied plan after refusals: %+v %v", p, ok)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
}

// TestEnsureRecreatedDevice: Ensure changes nothing while the plan holds
// (no netlink change, so no notification to react to), and brings the
// address and forwarding back on a LAN device that was deleted and
// created again.
func TestEnsureRecreatedDevice(t *testing.T) {
	l := newLab(t)
	r := New(l.rt, l.sys, nil)
	d := netip.MustParsePrefix("2001:db8:8000::/56")
	lan, _ := LANPrefix(d, 0)
	p := Plan{LANIf: l.lan, TunIf: l.tun, Delegated: d, LAN: lan}
	if err := r.Ensure(p); err != nil {
		t.Fatal(err)
	}
	want := l.state(t)

	// Nothing to do: no address notification. Duplicate address detection
	// ends with one, so wait for that first.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		out, err := exec.Command("ip", "-n", l.name, "-6", "addr", "show", "tentative").CombinedOutput()
		if err != nil {
			t.Fatalf("ip addr: %v\n%s", err, out)
		}
		if len(strings.TrimSpace(string(out))) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("addresses still tentative:\n%s", out)
		}
	}
	done := make(chan struct{})
	defer close(done)
	ch, err := rtlink.WatchLinksAt(l.ns, done, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The kernel reports operational state changes of the lab's devices
	// up to a second late (linkwatch): wait for a quiet second.
	for quiet := time.NewTimer(1200 * time.Millisecond); ; {
		select {
		case <-ch:
			quiet.Reset(1200 * time.Millisecond)
			continue
		case <-quiet.C:
		}
		break
	}
	if err := r.Ensure(p); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("Ensure of a plan in force changed a link or address")
	case <-time.After(200 * time.Millisecond):
	}

	for _, args := range [][]string{
		{"-n", l.name, "link", "del", l.lan},
		{"-n", l.name, "link", "add", l.lan, "type", "veth", "peer", "name", l.lan + "p"},
		{"-n", l.name, "link", "set", l.lan, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("ip %v: %v\n%s", args, err, out)
		}
	}
	if got := l.state(t); got == want {
		t.Fatal("the new device has the old state")
	}
	if err := r.Ensure(p); err != nil {
		t.Fatal(err)
	}
	if got := l.state(t); got != want {
		t.Fatalf("after Ensure on the new device:\n%s\nwant:\n%s", got, want)
	}
	if err := r.Remove(); err != nil {
		t.Fatal(err)
	}
}
