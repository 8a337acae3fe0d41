package rtlink

import (
	"encoding/binary"
	"fmt"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Genl is a generic-netlink connection in one network namespace, for the
// kernel's fou ports (the `ip fou` commands). Its methods are safe for
// concurrent use. It is here rather than vishvananda/netlink's Handle,
// whose package initialisation costs bytes of its own in the binary.
type Genl struct {
	socks sockets
}

// NewGenlAt opens a Genl in ns; a handle <= 0 means the caller's
// namespace.
func NewGenlAt(ns netns.NsHandle) (*Genl, error) {
	s, err := openAt(ns, unix.NETLINK_GENERIC, "generic netlink")
	if err != nil {
		return nil, err
	}
	return &Genl{socks: s}, nil
}

// Close releases the socket. The Genl is not usable afterwards.
func (g *Genl) Close() { g.socks.close() }

// The fou family's commands and attributes (linux/fou.h), which
// x/sys/unix does not carry.
const (
	fouGenlVersion = 1 // FOU_GENL_VERSION
	fouCmdAdd      = 1 // FOU_CMD_ADD
	fouCmdDel      = 2 // FOU_CMD_DEL
	fouAttrPort    = 1 // FOU_ATTR_PORT: u16, network order
	fouAttrAF      = 2 // FOU_ATTR_AF: u8
	fouAttrIPProto = 3 // FOU_ATTR_IPPROTO: u8
	fouAttrType    = 4 // FOU_ATTR_TYPE: u8
	fouEncapDirect = 1 // FOU_ENCAP_DIRECT
)

// genlHeader is a genlmsghdr: command, version, two reserved bytes. (The
// library's nl.Genlmsg is two bytes long and serialises four, reading past
// its end.)
type genlHeader [unix.GENL_HDRLEN]byte

func (h *genlHeader) Len() int          { return len(h) }
func (h *genlHeader) Serialize() []byte { return h[:] }

// request is a generic-netlink request to family: the netlink header, then
// the genlmsghdr, then what the caller adds.
func (g *Genl) request(family uint16, flags int, cmd, version uint8) *nl.NetlinkRequest {
	req := g.socks.request(int(family), flags)
	req.AddData(&genlHeader{cmd, version})
	return req
}

// FamilyID looks a generic-netlink family up by name (CTRL_CMD_GETFAMILY).
// A family the kernel does not know, its module missing or not loadable,
// is an error matching unix.ENOENT. The kernel tries to load the module
// first (request_module "net-pf-16-proto-16-family-<name>").
func (g *Genl) FamilyID(name string) (uint16, error) {
	req := g.request(unix.GENL_ID_CTRL, 0, unix.CTRL_CMD_GETFAMILY, nl.GENL_CTRL_VERSION)
	req.AddData(nl.NewRtAttr(unix.CTRL_ATTR_FAMILY_NAME, nl.ZeroTerminated(name)))
	msgs, err := req.Execute(unix.NETLINK_GENERIC, 0)
	if err != nil {
		return 0, fmt.Errorf("generic netlink family %s: %w", name, err)
	}
	if len(msgs) != 1 || len(msgs[0]) < unix.GENL_HDRLEN {
		return 0, fmt.Errorf("generic netlink family %s: %d answers", name, len(msgs))
	}
	attrs, err := parseAttrs(msgs[0][unix.GENL_HDRLEN:])
	if err != nil {
		return 0, fmt.Errorf("generic netlink family %s: %w", name, err)
	}
	for _, a := range attrs {
		if a.typ == unix.CTRL_ATTR_FAMILY_ID && len(a.val) >= 2 {
			return binary.NativeEndian.Uint16(a.val), nil
		}
	}
	return 0, fmt.Errorf("generic netlink family %s: no id in the answer", name)
}

// FouPort is a fou receive port: UDP datagrams to Port (of address family
// Family, unix.AF_INET or AF_INET6) carry packets of IP protocol Protocol
// right after the UDP header (FOU_ENCAP_DIRECT), as `ip fou add port
// <Port> ipproto <Protocol>` sets up.
type FouPort struct {
	Family   int
	Port     uint16
	Protocol uint8
}

// attrs are the attributes that name p to the kernel: the port (network
// order) and the family, and with them for FOU_CMD_ADD the encapsulation
// and the protocol.
func (p FouPort) attrs(req *nl.NetlinkRequest, add bool) {
	req.AddData(nl.NewRtAttr(fouAttrPort, binary.BigEndian.AppendUint16(nil, p.Port)))
	req.AddData(nl.NewRtAttr(fouAttrAF, []byte{byte(p.Family)}))
	if add {
		req.AddData(nl.NewRtAttr(fouAttrType, []byte{fouEncapDirect}))
		req.AddData(nl.NewRtAttr(fouAttrIPProto, []byte{p.Protocol}))
	}
}

// FouAdd adds the receive port p (FOU_CMD_ADD). The kernel binds it
// like any UDP socket: a port in use is refused.
func (g *Genl) FouAdd(p FouPort) error {
	return g.fou(fouCmdAdd, p)
}

// FouDel removes the receive port p (FOU_CMD_DEL; port and family say
// which).
func (g *Genl) FouDel(p FouPort) error {
	return g.fou(fouCmdDel, p)
}

func (g *Genl) fou(cmd uint8, p FouPort) error {
	id, err := g.FamilyID("fou")
	if err != nil {
		return err
	}
	req := g.request(id, unix.NLM_F_ACK, cmd, fouGenlVersion)
	p.attrs(req, cmd == fouCmdAdd)
	_, err = req.Execute(unix.NETLINK_GENERIC, 0)
	return change(err)
}
