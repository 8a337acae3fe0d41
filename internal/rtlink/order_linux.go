//go:build !gogoc_break_byteorder

package rtlink

import "github.com/vishvananda/netlink/nl"

// oifAttr is a route's output interface (RTA_OIF): a u32 in host byte
// order, like every integer rtnetlink carries except ports and addresses.
func oifAttr(index int) []byte { return nl.Uint32Attr(uint32(index)) }
