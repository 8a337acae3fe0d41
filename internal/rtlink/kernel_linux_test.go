package rtlink_test

// The tunnel kinds need the sit, fou and ip6_tunnel modules, which the CI
// host lacks: these run in the VM lane (scripts/vm-test.sh runs every
// TestKernel* in a Debian kernel) and skip elsewhere with the reason.

import (
	"errors"
	"net"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/rtlink"
	"github.com/jsklein/gogoc/internal/vmtest"
)

// sitView is what a sit device's attributes read as through the
// library, less what must differ between two devices (name, index,
// remote end).
type sitView struct {
	MTU, TxQLen                      int
	Local                            string
	Ttl, Tos, PMtuDisc, Proto, Limit uint8
	EncapType, EncapFlags            uint16
	EncapSport, EncapDport           uint16
}

func readSit(t *testing.T, ns *vmtest.NS, name string) (sitView, string) {
	t.Helper()
	l := ns.Link(t, name)
	s, ok := l.(*netlink.Sittun)
	if !ok {
		t.Fatalf("%s is a %s (%T), want sit", name, l.Type(), l)
	}
	return sitView{
		MTU: s.MTU, TxQLen: s.TxQLen, Local: s.Local.String(),
		Ttl: s.Ttl, Tos: s.Tos, PMtuDisc: s.PMtuDisc, Proto: s.Proto, Limit: s.EncapLimit,
		EncapType: s.EncapType, EncapFlags: s.EncapFlags, EncapSport: s.EncapSport, EncapDport: s.EncapDport,
	}, s.Remote.String()
}

// TestKernelSit creates sit devices, plain and with fou encapsulation,
// with rtlink and with the library from the same parameters (those gogoc
// used to give it), and requires the kernel to hold the same attributes
// for both.
func TestKernelSit(t *testing.T) {
	vmtest.RequireKernel(t, vmtest.Sit, vmtest.Fou)
	ns := vmtest.NewNS(t, "dn-sit")
	local := netip.MustParseAddr("10.98.0.1")
	cases := []struct {
		name string
		spec rtlink.Sit
	}{
		{"plain", rtlink.Sit{MTU: 1280, Local: local, TTL: 64, PMTUDisc: true}},
		{"fou", rtlink.Sit{MTU: 1280, Local: local, TTL: 64, PMTUDisc: true,
			EncapType: 1, EncapFlags: 1, EncapSport: 3653, EncapDport: 43210}}, // TUNNEL_ENCAP_FOU, _FLAG_CSUM
		{"nolocal", rtlink.Sit{MTU: 1400, TTL: 64, PMTUDisc: true}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			mine, theirs := "dnsit"+c.name[:2]+"r", "dnsit"+c.name[:2]+"l"
			spec := c.spec
			spec.Name = mine
			spec.Remote = netip.AddrFrom4([4]byte{192, 0, 2, byte(10 + 2*i)})
			l, err := ns.RT.LinkAdd(spec)
			if err != nil {
				t.Fatalf("LinkAdd: %v", err)
			}
			if l.Kind != "sit" || l.Name != mine || l.Index == 0 || l.MTU != spec.MTU {
				t.Errorf("LinkAdd returned %+v", l)
			}
			ref := &netlink.Sittun{
				LinkAttrs: netlink.LinkAttrs{Name: theirs, MTU: spec.MTU},
				Remote:    net.IPv4(192, 0, 2, byte(11+2*i)),
				Ttl:       spec.TTL, PMtuDisc: 1,
				EncapType: spec.EncapType, EncapFlags: spec.EncapFlags, EncapSport: spec.EncapSport, EncapDport: spec.EncapDport,
			}
			if spec.Local.IsValid() {
				ref.Local = net.IP(spec.Local.AsSlice())
			}
			if err := ns.NL.LinkAdd(ref); err != nil {
				t.Fatalf("library LinkAdd: %v", err)
			}
			got, remote := readSit(t, ns, mine)
			want, _ := readSit(t, ns, theirs)
			if got != want {
				t.Errorf("rtlink's sit  %+v\nlibrary's sit %+v", got, want)
			}
			if remote != spec.Remote.String() || got.Ttl != 64 || got.PMtuDisc != 1 || got.EncapSport != spec.EncapSport {
				t.Errorf("sit %+v remote %s, want remote %v from %+v", got, remote, spec.Remote, spec)
			}
			// The library's device as rtlink reads it.
			r, err := ns.RT.LinkByName(theirs)
			if err != nil || r.Kind != "sit" || r.MTU != spec.MTU {
				t.Errorf("rtlink reads the library's device as %+v, %v", r, err)
			}
			// The same name again: EEXIST, as gogoc's messages expect.
			spec.Remote = netip.MustParseAddr("192.0.2.99")
			if _, err := ns.RT.LinkAdd(spec); !errors.Is(err, unix.EEXIST) {
				t.Errorf("second LinkAdd: %v, want EEXIST", err)
			}
		})
	}
}

// TestKernelIp6tnl does the same for ip6tnl in ipip6 mode (v4v6).
func TestKernelIp6tnl(t *testing.T) {
	vmtest.RequireKernel(t, vmtest.Ip6tnl)
	ns := vmtest.NewNS(t, "dn-ip6tnl")
	for i, local := range []netip.Addr{netip.MustParseAddr("2001:db8:98::1"), {}} {
		mine, theirs := "dn6tnl"+string(rune('a'+i))+"r", "dn6tnl"+string(rune('a'+i))+"l"
		spec := rtlink.Ip6tnl{Name: mine, MTU: 1280, Local: local, Remote: netip.AddrFrom16([16]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0x98, 15: byte(10 + 2*i)}),
			TTL: 64, Proto: unix.IPPROTO_IPIP, Flags: 1} // IP6_TNL_F_IGN_ENCAP_LIMIT
		l, err := ns.RT.LinkAdd(spec)
		if err != nil {
			t.Fatalf("LinkAdd: %v", err)
		}
		if l.Kind != "ip6tnl" || l.MTU != 1280 {
			t.Errorf("LinkAdd returned %+v", l)
		}
		ref := &netlink.Ip6tnl{LinkAttrs: netlink.LinkAttrs{Name: theirs, MTU: 1280},
			Remote: net.IP(spec.Remote.Next().AsSlice()), Ttl: 64, Proto: unix.IPPROTO_IPIP, Flags: 1}
		if local.IsValid() {
			ref.Local = net.IP(local.AsSlice())
		}
		if err := ns.NL.LinkAdd(ref); err != nil {
			t.Fatalf("library LinkAdd: %v", err)
		}
		view := func(name string) (netlink.Ip6tnl, string) {
			x, ok := ns.Link(t, name).(*netlink.Ip6tnl)
			if !ok {
				t.Fatalf("%s is not an ip6tnl", name)
			}
			remote := x.Remote.String()
			v := *x
			v.LinkAttrs = netlink.LinkAttrs{MTU: x.MTU, TxQLen: x.TxQLen}
			v.Remote = nil
			return v, remote
		}
		got, remote := view(mine)
		want, _ := view(theirs)
		if got.MTU != want.MTU || got.TxQLen != want.TxQLen || !got.Local.Equal(want.Local) || got.Ttl != want.Ttl ||
			got.Tos != want.Tos || got.Flags != want.Flags || got.Proto != want.Proto || got.FlowInfo != want.FlowInfo ||
			got.EncapLimit != want.EncapLimit || got.EncapType != want.EncapType {
			t.Errorf("rtlink's ip6tnl  %+v\nlibrary's ip6tnl %+v", got, want)
		}
		if remote != spec.Remote.String() || got.Proto != unix.IPPROTO_IPIP || got.Flags&1 == 0 || got.Ttl != 64 {
			t.Errorf("ip6tnl %+v remote %s, want %+v", got, remote, spec)
		}
	}
}

// TestLinkAddRefusals: bad specs are refused before anything is created.
func TestLinkAddRefusals(t *testing.T) {
	vmtest.RequireRoot(t)
	ns := vmtest.NewNS(t, "dn-refuse")
	v6, v4 := netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("192.0.2.1")
	for _, s := range []rtlink.LinkSpec{
		rtlink.Sit{Name: "dnbad0", Remote: v6},
		rtlink.Sit{Name: "dnbad1", Local: v6, Remote: v4},
		rtlink.Ip6tnl{Name: "dnbad2", Remote: v4},
		rtlink.Ip6tnl{Name: "dnbad3", Local: v4, Remote: v6},
		rtlink.Sit{Name: "", Remote: v4},
		rtlink.Sit{Name: "dn-name-too-long", Remote: v4},
	} {
		if _, err := ns.RT.LinkAdd(s); err == nil {
			t.Errorf("LinkAdd(%+v) accepted", s)
		}
		if s.LinkName() != "" {
			if _, err := ns.RT.LinkByName(s.LinkName()); !rtlink.IsNotFound(err) {
				t.Errorf("%s exists after a refused LinkAdd (%v)", s.LinkName(), err)
			}
		}
	}
}
