package rtlink

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/jsklein/gogoc/internal/caps"
)

// Handle is a route-netlink connection in one network namespace. Its
// methods are safe for concurrent use (the socket is locked per request).
type Handle struct {
	socks sockets
}

// NewHandle opens a Handle in the caller's network namespace.
func NewHandle() (*Handle, error) { return NewHandleAt(netns.None()) }

// NewHandleAt opens a Handle in ns; a handle <= 0 means the caller's
// namespace.
func NewHandleAt(ns netns.NsHandle) (*Handle, error) {
	s, err := openAt(ns, unix.NETLINK_ROUTE, "rtnetlink")
	if err != nil {
		return nil, err
	}
	return &Handle{socks: s}, nil
}

// Close releases the socket. The Handle is not usable afterwards.
func (h *Handle) Close() { h.socks.close() }

func (h *Handle) request(typ, flags int) *nl.NetlinkRequest { return h.socks.request(typ, flags) }

// sockets is one netlink socket, of one protocol in one namespace, as
// the nl layer's requests take it.
type sockets map[int]*nl.SocketHandle

// openAt opens a socket of proto in ns; a handle <= 0 means the caller's
// namespace.
func openAt(ns netns.NsHandle, proto int, what string) (sockets, error) {
	if ns <= 0 {
		ns = netns.None()
	}
	s, err := nl.GetNetlinkSocketAt(ns, netns.None(), proto)
	if err != nil {
		return nil, fmt.Errorf("%s socket: %w", what, err)
	}
	return sockets{proto: {Socket: s}}, nil
}

func (s sockets) close() {
	for _, h := range s {
		h.Close()
	}
}

func (s sockets) request(typ, flags int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(typ, flags)
	req.Sockets = s
	return req
}

// LinkNotFoundError says that no device has the name or index asked for.
// It matches unix.ENODEV with errors.Is as well.
type LinkNotFoundError struct {
	Name  string // the name looked up, or ""
	Index int    // the index looked up, or 0
}

func (e LinkNotFoundError) Error() string {
	if e.Name != "" {
		return "link " + e.Name + " not found"
	}
	return fmt.Sprintf("link #%d not found", e.Index)
}

// Unwrap lets errors.Is(err, unix.ENODEV) hold, the errno the kernel gave.
func (e LinkNotFoundError) Unwrap() error { return unix.ENODEV }

// IsNotFound reports whether err says the device does not exist.
func IsNotFound(err error) bool {
	var nf LinkNotFoundError
	return errors.As(err, &nf)
}

// Link is what gogoc reads of a network device.
type Link struct {
	Index int
	Name  string
	// Kind is IFLA_INFO_KIND ("sit", "ip6tnl", "tun", "veth", ...); ""
	// for a device that has none (loopback, most hardware).
	Kind  string
	MTU   int
	Flags uint32 // IFF_* of the ifinfomsg
	// Stats are the 64-bit counters; nil when the kernel sent none.
	Stats *Stats
}

// Stats are the first counters of struct rtnl_link_stats64.
type Stats struct {
	RxPackets, TxPackets uint64
	RxBytes, TxBytes     uint64
	RxErrors, TxErrors   uint64
	RxDropped, TxDropped uint64
}

// LinkByName looks a device up by name; a missing one gives a
// LinkNotFoundError.
func (h *Handle) LinkByName(name string) (Link, error) {
	req := h.request(unix.RTM_GETLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	attr := unix.IFLA_IFNAME
	if len(name) >= unix.IFNAMSIZ {
		attr = unix.IFLA_ALT_IFNAME // only an alternative name can be longer
	}
	req.AddData(nl.NewRtAttr(attr, nl.ZeroTerminated(name)))
	return h.getLink(req, LinkNotFoundError{Name: name})
}

// LinkByIndex looks a device up by index; a missing one gives a
// LinkNotFoundError.
func (h *Handle) LinkByIndex(index int) (Link, error) {
	req := h.request(unix.RTM_GETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	return h.getLink(req, LinkNotFoundError{Index: index})
}

func (h *Handle) getLink(req *nl.NetlinkRequest, notFound LinkNotFoundError) (Link, error) {
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if errors.Is(err, unix.ENODEV) {
		return Link{}, notFound
	}
	if err != nil {
		return Link{}, err
	}
	switch len(msgs) {
	case 0:
		return Link{}, notFound
	case 1:
		return parseLink(msgs[0])
	default:
		return Link{}, fmt.Errorf("%d links answer one lookup", len(msgs))
	}
}

// attr is one route attribute: its type, without the NLA_F_NESTED and
// NLA_F_NET_BYTEORDER flags, and its value.
type attr struct {
	typ uint16
	val []byte
}

// parseAttrs splits b into attributes, checking every length (the
// library's parser trusts them and panics on a short one). The type's two
// flag bits are masked off: a kernel may mark a nest NLA_F_NESTED (newer
// ones do for nests they add), and the attribute is the same one.
func parseAttrs(b []byte) ([]attr, error) {
	var out []attr
	for len(b) >= unix.SizeofRtAttr {
		n := int(binary.NativeEndian.Uint16(b))
		if n < unix.SizeofRtAttr || n > len(b) {
			return nil, fmt.Errorf("attribute length %d with %d bytes left", n, len(b))
		}
		out = append(out, attr{typ: binary.NativeEndian.Uint16(b[2:]) &^ (unix.NLA_F_NESTED | unix.NLA_F_NET_BYTEORDER), val: b[unix.SizeofRtAttr:n]})
		b = b[min(len(b), (n+unix.RTA_ALIGNTO-1)&^(unix.RTA_ALIGNTO-1)):]
	}
	return out, nil
}

// parseLink decodes an RTM_NEWLINK message (ifinfomsg and attributes).
func parseLink(m []byte) (Link, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return Link{}, fmt.Errorf("link message of %d bytes is too short", len(m))
	}
	msg := nl.DeserializeIfInfomsg(m)
	l := Link{Index: int(msg.Index), Flags: msg.Flags}
	attrs, err := parseAttrs(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return Link{}, fmt.Errorf("link #%d attributes: %w", l.Index, err)
	}
	ne := binary.NativeEndian
	for _, a := range attrs {
		switch a.typ {
		case unix.IFLA_IFNAME:
			l.Name = unix.ByteSliceToString(a.val)
		case unix.IFLA_MTU:
			if len(a.val) >= 4 {
				l.MTU = int(ne.Uint32(a.val))
			}
		case unix.IFLA_LINKINFO:
			l.Kind = linkKind(a.val)
		case unix.IFLA_STATS64:
			if len(a.val) >= 8*8 {
				l.Stats = &Stats{
					RxPackets: ne.Uint64(a.val[0:]), TxPackets: ne.Uint64(a.val[8:]),
					RxBytes: ne.Uint64(a.val[16:]), TxBytes: ne.Uint64(a.val[24:]),
					RxErrors: ne.Uint64(a.val[32:]), TxErrors: ne.Uint64(a.val[40:]),
					RxDropped: ne.Uint64(a.val[48:]), TxDropped: ne.Uint64(a.val[56:]),
				}
			}
		}
	}
	return l, nil
}

// linkKind finds IFLA_INFO_KIND in the nested IFLA_LINKINFO.
func linkKind(info []byte) string {
	attrs, err := parseAttrs(info)
	if err != nil {
		return ""
	}
	for _, a := range attrs {
		if a.typ == nl.IFLA_INFO_KIND {
			return unix.ByteSliceToString(a.val)
		}
	}
	return ""
}

// LinkSpec is a device LinkAdd can create: Sit or Ip6tnl.
type LinkSpec interface {
	// Kind is the rtnetlink link kind, as in Link.Kind.
	Kind() string
	// LinkName is the name of the device to create.
	LinkName() string
	mtu() int
	// data fills IFLA_INFO_DATA.
	data(d *nl.RtAttr) error
}

// Sit is a sit (IPv6 in IPv4) tunnel, optionally encapsulated in UDP
// (fou) when EncapType is TUNNEL_ENCAP_FOU.
type Sit struct {
	Name string
	MTU  int // 0: the kernel's default
	// Local may be invalid: the route to Remote picks the source.
	Local, Remote netip.Addr // IPv4
	TTL           uint8      // 0: inherit
	PMTUDisc      bool
	EncapType     uint16 // TUNNEL_ENCAP_*
	EncapFlags    uint16 // TUNNEL_ENCAP_FLAG_*
	EncapSport    uint16
	EncapDport    uint16
}

// Kind implements LinkSpec.
func (Sit) Kind() string { return "sit" }

// LinkName implements LinkSpec.
func (s Sit) LinkName() string { return s.Name }

func (s Sit) mtu() int { return s.MTU }

func (s Sit) data(d *nl.RtAttr) error {
	if s.Local.IsValid() {
		if !s.Local.Unmap().Is4() {
			return fmt.Errorf("sit local %v is not IPv4", s.Local)
		}
		d.AddRtAttr(nl.IFLA_IPTUN_LOCAL, s.Local.Unmap().AsSlice())
	}
	if !s.Remote.Unmap().Is4() {
		return fmt.Errorf("sit remote %v is not IPv4", s.Remote)
	}
	d.AddRtAttr(nl.IFLA_IPTUN_REMOTE, s.Remote.Unmap().AsSlice())
	if s.TTL > 0 {
		d.AddRtAttr(nl.IFLA_IPTUN_TTL, nl.Uint8Attr(s.TTL))
	}
	// Proto 0 accepts any payload sit knows, as iproute2's default does.
	d.AddRtAttr(nl.IFLA_IPTUN_PROTO, nl.Uint8Attr(0))
	d.AddRtAttr(nl.IFLA_IPTUN_TOS, nl.Uint8Attr(0))
	d.AddRtAttr(nl.IFLA_IPTUN_PMTUDISC, nl.Uint8Attr(boolByte(s.PMTUDisc)))
	d.AddRtAttr(nl.IFLA_IPTUN_ENCAP_LIMIT, nl.Uint8Attr(0))
	addEncap(d, s.EncapType, s.EncapFlags, s.EncapSport, s.EncapDport)
	return nil
}

// Ip6tnl is an ip6tnl (IPv4 or IPv6 in IPv6) tunnel.
type Ip6tnl struct {
	Name string
	MTU  int // 0: the kernel's default
	// Local may be invalid: the route to Remote picks the source.
	Local, Remote netip.Addr // IPv6
	TTL           uint8      // hop limit; 0: inherit
	Proto         uint8      // IPPROTO_IPIP (ipip6), IPPROTO_IPV6 or 0 (any)
	Flags         uint32     // IP6_TNL_F_*
}

// Kind implements LinkSpec.
func (Ip6tnl) Kind() string { return "ip6tnl" }

// LinkName implements LinkSpec.
func (t Ip6tnl) LinkName() string { return t.Name }

func (t Ip6tnl) mtu() int { return t.MTU }

func (t Ip6tnl) data(d *nl.RtAttr) error {
	if t.Local.IsValid() {
		if !t.Local.Is6() || t.Local.Is4In6() {
			return fmt.Errorf("ip6tnl local %v is not IPv6", t.Local)
		}
		d.AddRtAttr(nl.IFLA_IPTUN_LOCAL, t.Local.AsSlice())
	}
	if !t.Remote.Is6() || t.Remote.Is4In6() {
		return fmt.Errorf("ip6tnl remote %v is not IPv6", t.Remote)
	}
	d.AddRtAttr(nl.IFLA_IPTUN_REMOTE, t.Remote.AsSlice())
	d.AddRtAttr(nl.IFLA_IPTUN_TTL, nl.Uint8Attr(t.TTL))
	d.AddRtAttr(nl.IFLA_IPTUN_TOS, nl.Uint8Attr(0))
	d.AddRtAttr(nl.IFLA_IPTUN_FLAGS, nl.Uint32Attr(t.Flags))
	d.AddRtAttr(nl.IFLA_IPTUN_PROTO, nl.Uint8Attr(t.Proto))
	d.AddRtAttr(nl.IFLA_IPTUN_FLOWINFO, nl.Uint32Attr(0))
	d.AddRtAttr(nl.IFLA_IPTUN_ENCAP_LIMIT, nl.Uint8Attr(0))
	addEncap(d, 0, 0, 0, 0)
	return nil
}

// addEncap adds the four encapsulation attributes; zero values say none.
// The ports travel in network byte order, the rest in host order.
func addEncap(d *nl.RtAttr, typ, flags, sport, dport uint16) {
	d.AddRtAttr(nl.IFLA_IPTUN_ENCAP_TYPE, nl.Uint16Attr(typ))
	d.AddRtAttr(nl.IFLA_IPTUN_ENCAP_FLAGS, nl.Uint16Attr(flags))
	d.AddRtAttr(nl.IFLA_IPTUN_ENCAP_SPORT, binary.BigEndian.AppendUint16(nil, sport))
	d.AddRtAttr(nl.IFLA_IPTUN_ENCAP_DPORT, binary.BigEndian.AppendUint16(nil, dport))
}

func boolByte(b bool) uint8 {
	if b {
		return 1
	}
	return 0
}

// LinkAdd creates the device s (failing if the name is taken) and returns
// it as read back. A kernel without the kind's module answers EOPNOTSUPP.
func (h *Handle) LinkAdd(s LinkSpec) (Link, error) {
	name, mtu := s.LinkName(), s.mtu()
	if name == "" || len(name) >= unix.IFNAMSIZ {
		return Link{}, fmt.Errorf("%s device name %q: must have 1 to %d bytes", s.Kind(), name, unix.IFNAMSIZ-1)
	}
	req := h.request(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	if mtu > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	}
	// An explicit queue length of 0, as gogoc's devices always had: a
	// tunnel hands packets on to the underlying device's queue.
	req.AddData(nl.NewRtAttr(unix.IFLA_TXQLEN, nl.Uint32Attr(0)))
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, []byte(s.Kind()))
	if err := s.data(info.AddRtAttr(nl.IFLA_INFO_DATA, nil)); err != nil {
		return Link{}, err
	}
	req.AddData(info)
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return Link{}, change(err)
	}
	l, err := h.LinkByName(name)
	if err != nil {
		// Not knowing the index, the caller could not remove it.
		derr := h.linkDelByName(name)
		return Link{}, fmt.Errorf("read back the new %s device %s: %w", s.Kind(), name, errors.Join(err, derr))
	}
	return l, nil
}

// LinkDel deletes the device with the given index.
func (h *Handle) LinkDel(index int) error {
	req := h.request(unix.RTM_DELLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return change(err)
}

func (h *Handle) linkDelByName(name string) error {
	req := h.request(unix.RTM_DELLINK, unix.NLM_F_ACK)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return change(err)
}

// LinkSetUp sets IFF_UP on the device.
func (h *Handle) LinkSetUp(index int) error {
	req := h.request(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return change(err)
}

// LinkSetMTU sets the device's MTU.
func (h *Handle) LinkSetMTU(index, mtu int) error {
	req := h.request(unix.RTM_SETLINK, unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(mtu))))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return change(err)
}

// Addr is an interface address.
type Addr struct {
	Prefix netip.Prefix // the address and its prefix length
	Index  int          // the device; filled in by AddrList
	Flags  uint32       // IFA_F_*
	Scope  uint8        // RT_SCOPE_*; 0 (universe) for what gogoc adds
	// Valid and Preferred are the lifetimes left, Forever for none; filled
	// in by AddrList (IFA_CACHEINFO), ignored when adding.
	Valid, Preferred time.Duration
	// Proto says who added the address (IFA_PROTO, Linux 6.1 and later):
	// ProtoKernelRA for one the kernel formed from a router
	// advertisement; 0 when the kernel does not say. Filled in by
	// AddrList.
	Proto uint8
}

// Forever is the lifetime of an address that does not expire.
const Forever = time.Duration(1<<63 - 1)

// Values of Addr.Proto (IFAPROT_*).
const (
	ProtoKernelLo = 1 // loopback
	ProtoKernelRA = 2 // formed from a router advertisement
	ProtoKernelLL = 3 // the kernel's link-local address
)

// ifaProto is IFA_PROTO, which x/sys/unix does not name yet.
const ifaProto = 11

// lifetime turns IFA_CACHEINFO seconds into a Duration.
func lifetime(s uint32) time.Duration {
	if s == 0xffffffff {
		return Forever
	}
	return time.Duration(s) * time.Second
}

// AddrAdd adds a to the device (EEXIST when it is there already).
func (h *Handle) AddrAdd(index int, a Addr) error {
	return h.addr(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK, index, a)
}

// AddrReplace adds a to the device or updates its flags if it is there.
func (h *Handle) AddrReplace(index int, a Addr) error {
	return h.addr(unix.RTM_NEWADDR, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK, index, a)
}

// AddrDel removes a from the device (EADDRNOTAVAIL when it is not there).
func (h *Handle) AddrDel(index int, a Addr) error {
	return h.addr(unix.RTM_DELADDR, unix.NLM_F_ACK, index, a)
}

func (h *Handle) addr(typ, flags, index int, a Addr) error {
	ip := a.Prefix.Addr()
	if !a.Prefix.IsValid() || ip.Is4In6() {
		return fmt.Errorf("address %v: not an IP prefix", a.Prefix)
	}
	family := unix.AF_INET6
	if ip.Is4() {
		family = unix.AF_INET
	}
	req := h.request(typ, flags)
	msg := nl.NewIfAddrmsg(family)
	msg.Index = uint32(index)
	msg.Prefixlen = uint8(a.Prefix.Bits())
	msg.Scope = a.Scope
	// The header has 8 bits of flags; IFA_FLAGS carries the rest.
	if a.Flags <= 0xff {
		msg.IfAddrmsg.Flags = uint8(a.Flags)
	}
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFA_LOCAL, ip.AsSlice()))
	req.AddData(nl.NewRtAttr(unix.IFA_ADDRESS, ip.AsSlice()))
	if a.Flags > 0xff {
		req.AddData(nl.NewRtAttr(unix.IFA_FLAGS, nl.Uint32Attr(a.Flags)))
	}
	if ip.Is4() && a.Prefix.Bits() < 31 {
		// What ip(8) calls "brd +": hosts of a /30 or shorter expect one.
		b := ip.As4()
		bits := binary.BigEndian.Uint32(b[:]) | ^uint32(0)>>a.Prefix.Bits()
		req.AddData(nl.NewRtAttr(unix.IFA_BROADCAST, binary.BigEndian.AppendUint32(nil, bits)))
	}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return change(err)
}

// AddrList lists the addresses of one device (index > 0) or of all, of
// family unix.AF_INET, unix.AF_INET6 or unix.AF_UNSPEC (both).
func (h *Handle) AddrList(index, family int) ([]Addr, error) {
	var msgs [][]byte
	var err error
	// A dump that changed under way is incomplete; the next one is not,
	// unless addresses keep changing.
	for range 3 {
		req := h.request(unix.RTM_GETADDR, unix.NLM_F_DUMP)
		req.AddData(nl.NewIfAddrmsg(family))
		if msgs, err = req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWADDR); !errors.Is(err, nl.ErrDumpInterrupted) {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list addresses: %w", err)
	}
	var out []Addr
	for _, m := range msgs {
		a, fam, err := parseAddr(m)
		if err != nil {
			return nil, err
		}
		if index > 0 && a.Index != index || family != unix.AF_UNSPEC && fam != family {
			continue
		}
		out = append(out, a)
	}
	return out, nil
}

// parseAddr decodes an RTM_NEWADDR message. IPv4 sends the address as
// IFA_LOCAL (IFA_ADDRESS is the peer on a point-to-point link); IPv6 sends
// IFA_ADDRESS and adds IFA_LOCAL only with a peer.
func parseAddr(m []byte) (Addr, int, error) {
	if len(m) < unix.SizeofIfAddrmsg {
		return Addr{}, 0, fmt.Errorf("address message of %d bytes is too short", len(m))
	}
	msg := nl.DeserializeIfAddrmsg(m)
	attrs, err := parseAttrs(m[unix.SizeofIfAddrmsg:])
	if err != nil {
		return Addr{}, 0, fmt.Errorf("address attributes: %w", err)
	}
	a := Addr{Index: int(msg.Index), Flags: uint32(msg.Flags), Scope: msg.Scope}
	var local, address netip.Addr
	for _, at := range attrs {
		switch at.typ {
		case unix.IFA_LOCAL:
			local, _ = netip.AddrFromSlice(at.val)
		case unix.IFA_ADDRESS:
			address, _ = netip.AddrFromSlice(at.val)
		case unix.IFA_FLAGS:
			if len(at.val) >= 4 {
				a.Flags = binary.NativeEndian.Uint32(at.val)
			}
		case unix.IFA_CACHEINFO:
			// struct ifa_cacheinfo: preferred, valid, then timestamps.
			if len(at.val) >= 8 {
				a.Preferred = lifetime(binary.NativeEndian.Uint32(at.val))
				a.Valid = lifetime(binary.NativeEndian.Uint32(at.val[4:]))
			}
		case ifaProto:
			if len(at.val) >= 1 {
				a.Proto = at.val[0]
			}
		}
	}
	ip := address
	if local.IsValid() {
		ip = local
	}
	if !ip.IsValid() {
		return Addr{}, 0, fmt.Errorf("address message for #%d without an address", a.Index)
	}
	if a.Prefix = netip.PrefixFrom(ip, int(msg.Prefixlen)); !a.Prefix.IsValid() {
		return Addr{}, 0, fmt.Errorf("address %v/%d of #%d is not a prefix", ip, msg.Prefixlen, a.Index)
	}
	return a, int(msg.Family), nil
}

// Path is what the kernel would use to reach an address.
type Path struct {
	Src   netip.Addr // preferred source; invalid if the route names none
	Gw    netip.Addr // next hop; invalid on a directly connected route
	Index int        // outgoing device
}

// RouteGet asks the kernel for the route it would use to reach dst, as
// ip route get does. (The library's RouteGet can look devices up by name
// and so links the link-type code.)
func (h *Handle) RouteGet(dst netip.Addr) (Path, error) {
	dst = dst.Unmap()
	if !dst.IsValid() {
		return Path{}, errors.New("route lookup: no destination address")
	}
	family := unix.AF_INET6
	if dst.Is4() {
		family = unix.AF_INET
	}
	req := h.request(unix.RTM_GETROUTE, 0)
	msg := &nl.RtMsg{}
	msg.Family = uint8(family)
	msg.Dst_len = uint8(dst.BitLen())
	msg.Flags = unix.RTM_F_LOOKUP_TABLE
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, dst.AsSlice()))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWROUTE)
	if err != nil {
		return Path{}, err
	}
	if len(msgs) != 1 {
		return Path{}, fmt.Errorf("route lookup of %v: %d answers", dst, len(msgs))
	}
	return parsePath(msgs[0])
}

func parsePath(m []byte) (Path, error) {
	if len(m) < unix.SizeofRtMsg {
		return Path{}, fmt.Errorf("route message of %d bytes is too short", len(m))
	}
	attrs, err := parseAttrs(m[unix.SizeofRtMsg:])
	if err != nil {
		return Path{}, fmt.Errorf("route attributes: %w", err)
	}
	var p Path
	for _, a := range attrs {
		switch a.typ {
		case unix.RTA_PREFSRC:
			p.Src, _ = netip.AddrFromSlice(a.val)
		case unix.RTA_GATEWAY:
			p.Gw, _ = netip.AddrFromSlice(a.val)
		case unix.RTA_OIF:
			if len(a.val) >= 4 {
				p.Index = int(binary.NativeEndian.Uint32(a.val))
			}
		}
	}
	return p, nil
}

// Route is a route in the main table.
type Route struct {
	Dst      netip.Prefix
	Index    int   // outgoing device (RTA_OIF); 0 for none (unreachable)
	Metric   int   // RTA_PRIORITY; 0: the kernel's default
	Protocol uint8 // RTPROT_*; 0: RTPROT_BOOT when adding
	Type     uint8 // RTN_*; 0: RTN_UNICAST when adding
}

// RouteAdd adds r (EEXIST when the same route is there).
func (h *Handle) RouteAdd(r Route) error {
	return h.route(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK, r)
}

// RouteReplace adds r or replaces the route with its destination and
// metric.
func (h *Handle) RouteReplace(r Route) error {
	return h.route(unix.RTM_NEWROUTE, unix.NLM_F_CREATE|unix.NLM_F_REPLACE|unix.NLM_F_ACK, r)
}

// RouteDel deletes r (ESRCH when there is none); zero Protocol and Type
// match any.
func (h *Handle) RouteDel(r Route) error {
	return h.route(unix.RTM_DELROUTE, unix.NLM_F_ACK, r)
}

func (h *Handle) route(typ, flags int, r Route) error {
	dst := r.Dst.Addr()
	if !r.Dst.IsValid() || dst.Is4In6() {
		return fmt.Errorf("route to %v: not an IP prefix", r.Dst)
	}
	msg := &nl.RtMsg{}
	msg.Family = unix.AF_INET6
	if dst.Is4() {
		msg.Family = unix.AF_INET
	}
	msg.Dst_len = uint8(r.Dst.Bits())
	msg.Table = unix.RT_TABLE_MAIN
	msg.Scope = unix.RT_SCOPE_UNIVERSE
	msg.Protocol, msg.Type = r.Protocol, r.Type
	if typ == unix.RTM_NEWROUTE {
		if msg.Protocol == 0 {
			msg.Protocol = unix.RTPROT_BOOT
		}
		if msg.Type == 0 {
			msg.Type = unix.RTN_UNICAST
		}
	}
	req := h.request(typ, flags)
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.RTA_DST, r.Dst.Masked().Addr().AsSlice()))
	if r.Metric > 0 {
		req.AddData(nl.NewRtAttr(unix.RTA_PRIORITY, nl.Uint32Attr(uint32(r.Metric))))
	}
	req.AddData(nl.NewRtAttr(unix.RTA_OIF, oifAttr(r.Index)))
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return change(err)
}

// change names CAP_NET_ADMIN in the error of a request that changes the
// system (links, addresses, routes) when the process lacks it: the kernel
// answers those with a bare EPERM.
func change(err error) error { return caps.Annotate(err, caps.NetAdmin) }
