package rtlink

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// linkMsg builds an RTM_NEWLINK payload as the kernel sends it.
func linkMsg(index int32, flags uint32, name string, mtu uint32, kind string, stats []uint64) []byte {
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index, msg.Flags = index, flags
	b := msg.Serialize()
	b = append(b, nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)).Serialize()...)
	b = append(b, nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(mtu)).Serialize()...)
	if kind != "" {
		info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
		info.AddRtAttr(nl.IFLA_INFO_KIND, nl.ZeroTerminated(kind))
		b = append(b, info.Serialize()...)
	}
	if stats != nil {
		var v []byte
		for _, s := range stats {
			v = binary.NativeEndian.AppendUint64(v, s)
		}
		b = append(b, nl.NewRtAttr(unix.IFLA_STATS64, v).Serialize()...)
	}
	return b
}

// libType is the library's Type() for a kind rtlink reports, for the
// kinds whose mapping is plain.
func libType(kind string) (string, bool) {
	switch kind {
	case "":
		return "device", true
	case "tun":
		return "tuntap", true
	case "sit", "ip6tnl", "veth", "bridge", "dummy":
		return kind, true
	}
	return "", false
}

// FuzzParseLink decodes link messages with parseLink and with the
// library's LinkDeserialize; where both succeed they must agree.
func FuzzParseLink(f *testing.F) {
	stats := make([]uint64, 24) // rtnl_link_stats64 as the library reads it
	for i := range stats {
		stats[i] = uint64(i * 1000)
	}
	f.Add(linkMsg(7, unix.IFF_UP|unix.IFF_POINTOPOINT, "gogoc", 1280, "sit", stats))
	f.Add(linkMsg(1, unix.IFF_UP|unix.IFF_LOOPBACK, "lo", 65536, "", stats))
	f.Add(linkMsg(12, 0, "tun0", 1500, "tun", nil))
	f.Add(linkMsg(3, unix.IFF_UP, "br-lan", 1500, "bridge", stats[:8]))
	f.Add(flagged(f, linkMsg(7, unix.IFF_UP, "gogoc", 1280, "sit", stats), unix.SizeofIfInfomsg))
	f.Fuzz(func(t *testing.T, m []byte) {
		mine, err := parseLink(m)
		if err != nil {
			return
		}
		ref, refErr := func() (l netlink.Link, err error) {
			defer func() {
				if recover() != nil { // the library trusts the kernel's lengths
					l, err = nil, errSkip
				}
			}()
			// The library takes the flag bits for part of the type: it
			// gets the message without them.
			return netlink.LinkDeserialize(nil, unflag(m, unix.SizeofIfInfomsg))
		}()
		if refErr != nil {
			return
		}
		a := ref.Attrs()
		// The library reads 4 bytes of a shorter MTU attribute (from the
		// padding); only a well-formed one is compared.
		if v, ok := rawAttr(m, unix.IFLA_MTU); ok && len(v) < 4 {
			a.MTU = mine.MTU
		}
		if mine.Index != a.Index || mine.Flags != a.RawFlags || mine.MTU != a.MTU {
			t.Fatalf("index/flags/mtu %d %#x %d, library %d %#x %d", mine.Index, mine.Flags, mine.MTU, a.Index, a.RawFlags, a.MTU)
		}
		// The library cuts the last byte off a string attribute, which the
		// kernel always ends with NUL: compare strings made that way.
		if name, ok := kernelString(m, unix.IFLA_IFNAME, -1); ok && mine.Name != name {
			t.Fatalf("name %q, library %q", mine.Name, a.Name)
		}
		if _, ok := kernelString(m, unix.IFLA_LINKINFO, nl.IFLA_INFO_KIND); !ok {
			return
		}
		if typ, ok := libType(mine.Kind); ok {
			switch ref.(type) {
			case *netlink.GenericLink, *netlink.Device, *netlink.Sittun, *netlink.Ip6tnl, *netlink.Veth, *netlink.Tuntap, *netlink.Bridge, *netlink.Dummy:
				if ref.Type() != typ {
					t.Fatalf("kind %q, library type %q", mine.Kind, ref.Type())
				}
			}
		}
		if mine.Stats != nil && a.Statistics != nil {
			s, r := mine.Stats, a.Statistics
			if s.RxPackets != r.RxPackets || s.TxPackets != r.TxPackets || s.RxBytes != r.RxBytes || s.TxBytes != r.TxBytes ||
				s.RxErrors != r.RxErrors || s.TxErrors != r.TxErrors || s.RxDropped != r.RxDropped || s.TxDropped != r.TxDropped {
				t.Fatalf("counters %+v, library %+v", *s, *r)
			}
		}
	})
}

// rawAttr returns the value of the last top-level attribute typ.
func rawAttr(m []byte, typ uint16) ([]byte, bool) {
	if len(m) < unix.SizeofIfInfomsg {
		return nil, false
	}
	attrs, err := parseAttrs(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, false
	}
	var v []byte
	found := false
	for _, a := range attrs {
		if a.typ == typ {
			v, found = a.val, true
		}
	}
	return v, found
}

// kernelString finds attribute typ (inside nested attribute typ, child
// sub, when sub >= 0) and reports whether it ends with its only NUL.
func kernelString(m []byte, typ, sub int) (string, bool) {
	if len(m) < unix.SizeofIfInfomsg {
		return "", false
	}
	attrs, err := parseAttrs(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return "", false
	}
	var v []byte
	found := false
	for _, a := range attrs {
		if int(a.typ) == typ {
			v, found = a.val, true
		}
	}
	if found && sub >= 0 {
		inner, err := parseAttrs(v)
		if err != nil {
			return "", false
		}
		found = false
		for _, a := range inner {
			if int(a.typ) == sub {
				v, found = a.val, true
			}
		}
	}
	if !found || len(v) == 0 || bytes.IndexByte(v, 0) != len(v)-1 {
		return "", false
	}
	return string(v[:len(v)-1]), true
}

type skipError struct{}

func (skipError) Error() string { return "library panicked" }

var errSkip error = skipError{}

// TestParseLinkSeeds pins the decoded values of the seeds themselves.
func TestParseLinkSeeds(t *testing.T) {
	l, err := parseLink(linkMsg(7, unix.IFF_UP, "gogoc", 1280, "sit", []uint64{1, 2, 3, 4, 5, 6, 7, 8}))
	if err != nil {
		t.Fatal(err)
	}
	want := Stats{RxPackets: 1, TxPackets: 2, RxBytes: 3, TxBytes: 4, RxErrors: 5, TxErrors: 6, RxDropped: 7, TxDropped: 8}
	if l.Index != 7 || l.Name != "gogoc" || l.MTU != 1280 || l.Kind != "sit" || l.Flags != unix.IFF_UP || l.Stats == nil || *l.Stats != want {
		t.Errorf("parsed %+v (stats %+v)", l, l.Stats)
	}
	if _, err := parseLink(make([]byte, 8)); err == nil {
		t.Error("a short message parsed")
	}
	if l, err := parseLink(linkMsg(2, 0, "x", 1500, "", []uint64{1, 2})); err != nil || l.Stats != nil {
		t.Errorf("short counters: %+v %v, want none", l, err)
	}
}

// FuzzParseAddr: parseAddr never panics, and an address it accepts has
// the family and prefix length of the header.
func FuzzParseAddr(f *testing.F) {
	add := func(family int, bits uint8, attrs ...*nl.RtAttr) {
		msg := nl.NewIfAddrmsg(family)
		msg.Prefixlen, msg.Index = bits, 4
		b := msg.Serialize()
		for _, a := range attrs {
			b = append(b, a.Serialize()...)
		}
		f.Add(b)
	}
	v4, v6 := netip.MustParseAddr("10.0.0.1").AsSlice(), netip.MustParseAddr("2001:db8::1").AsSlice()
	add(unix.AF_INET, 24, nl.NewRtAttr(unix.IFA_LOCAL, v4), nl.NewRtAttr(unix.IFA_ADDRESS, v4))
	add(unix.AF_INET6, 64, nl.NewRtAttr(unix.IFA_ADDRESS, v6), nl.NewRtAttr(unix.IFA_FLAGS, binary.NativeEndian.AppendUint32(nil, unix.IFA_F_NODAD)))
	f.Fuzz(func(t *testing.T, m []byte) {
		a, fam, err := parseAddr(m)
		if err != nil {
			return
		}
		if len(m) < unix.SizeofIfAddrmsg || fam != int(m[0]) || !a.Prefix.IsValid() || a.Prefix.Bits() != int(m[1]) {
			t.Fatalf("parsed %+v family %d from header % x", a, fam, m[:min(len(m), 8)])
		}
	})
}

// flagged sets NLA_F_NESTED on a nest and NLA_F_NET_BYTEORDER on a value
// attribute, as newer kernels and other senders may, in a copy of b's
// top-level attributes (from offset hdr) and those nested in IFLA_LINKINFO.
func flagged(t testing.TB, b []byte, hdr int) []byte {
	t.Helper()
	out := bytes.Clone(b)
	var mark func(off, end int, top bool)
	mark = func(off, end int, top bool) {
		for off+unix.SizeofRtAttr <= end {
			n := int(binary.NativeEndian.Uint16(out[off:]))
			typ := binary.NativeEndian.Uint16(out[off+2:])
			switch {
			case top && typ == unix.IFLA_LINKINFO:
				binary.NativeEndian.PutUint16(out[off+2:], typ|unix.NLA_F_NESTED)
				mark(off+unix.SizeofRtAttr, off+n, false)
			default:
				binary.NativeEndian.PutUint16(out[off+2:], typ|unix.NLA_F_NET_BYTEORDER)
			}
			off += (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		}
	}
	mark(hdr, len(out), true)
	return out
}

// unflag clears the NLA_F_NESTED and NLA_F_NET_BYTEORDER bits of the
// attributes of a copy of b (from offset hdr) and of those nested in
// IFLA_LINKINFO, as far as their lengths hold.
func unflag(b []byte, hdr int) []byte {
	out := bytes.Clone(b)
	var walk func(off, end int, top bool)
	walk = func(off, end int, top bool) {
		for off+unix.SizeofRtAttr <= end {
			n := int(binary.NativeEndian.Uint16(out[off:]))
			if n < unix.SizeofRtAttr || off+n > end {
				return
			}
			typ := binary.NativeEndian.Uint16(out[off+2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER)
			binary.NativeEndian.PutUint16(out[off+2:], typ)
			if top && typ == unix.IFLA_LINKINFO {
				walk(off+unix.SizeofRtAttr, off+n, false)
			}
			off += (n + unix.RTA_ALIGNTO - 1) &^ (unix.RTA_ALIGNTO - 1)
		}
	}
	if len(out) >= hdr {
		walk(hdr, len(out), true)
	}
	return out
}

// TestParseFlaggedAttrs: the NLA_F_NESTED and NLA_F_NET_BYTEORDER bits of
// an attribute's type are flags, not part of the type (netlink(7),
// NLA_TYPE_MASK): messages carrying them decode as those without.
func TestParseFlaggedAttrs(t *testing.T) {
	plain := linkMsg(7, unix.IFF_UP, "gogoc", 1280, "sit", []uint64{1, 2, 3, 4, 5, 6, 7, 8})
	want, err := parseLink(plain)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseLink(flagged(t, plain, unix.SizeofIfInfomsg))
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != want.Name || got.MTU != want.MTU || got.Kind != want.Kind || got.Stats == nil || *got.Stats != *want.Stats {
		t.Errorf("link with flagged attributes: %+v, want %+v", got, want)
	}

	msg := nl.NewIfAddrmsg(unix.AF_INET6)
	msg.Prefixlen, msg.Index = 64, 4
	a := msg.Serialize()
	a = append(a, nl.NewRtAttr(unix.IFA_ADDRESS, netip.MustParseAddr("2001:db8::1").AsSlice()).Serialize()...)
	a = append(a, nl.NewRtAttr(unix.IFA_FLAGS, binary.NativeEndian.AppendUint32(nil, unix.IFA_F_NODAD)).Serialize()...)
	addr, _, err := parseAddr(flagged(t, a, unix.SizeofIfAddrmsg))
	if err != nil || addr.Prefix != netip.MustParsePrefix("2001:db8::1/64") || addr.Flags != unix.IFA_F_NODAD {
		t.Errorf("address with flagged attributes: %+v, %v", addr, err)
	}

	r := (&nl.RtMsg{}).Serialize()
	r = append(r, nl.NewRtAttr(unix.RTA_PREFSRC, netip.MustParseAddr("10.0.0.2").AsSlice()).Serialize()...)
	r = append(r, nl.NewRtAttr(unix.RTA_GATEWAY, netip.MustParseAddr("10.0.0.1").AsSlice()).Serialize()...)
	r = append(r, nl.NewRtAttr(unix.RTA_OIF, nl.Uint32Attr(3)).Serialize()...)
	p, err := parsePath(flagged(t, r, unix.SizeofRtMsg))
	if err != nil || p.Src != netip.MustParseAddr("10.0.0.2") || p.Gw != netip.MustParseAddr("10.0.0.1") || p.Index != 3 {
		t.Errorf("route with flagged attributes: %+v, %v", p, err)
	}
}
