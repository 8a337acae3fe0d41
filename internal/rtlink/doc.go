// Package rtlink does the rtnetlink requests gogoc needs, in one network
// namespace: create a sit or ip6tnl tunnel, look a device up, set it up,
// set its MTU, delete it; add, replace, delete and list addresses; add,
// replace and delete plain routes, look a route up; watch address and
// route changes. Over generic netlink (Genl), it adds and removes fou
// receive ports.
//
// It exists for the size of the binary: vishvananda/netlink's link calls
// (LinkAdd, LinkByName, and every call that fills in a missing index), its
// route lookup and its route subscription link its whole link-type
// machinery, some 160 KiB of mips text for dozens of link kinds gogoc
// never creates, and its route writes another 20 KiB for encapsulations
// and multipath; importing the library at all, for its fou calls, costs
// some 11 KB of the compressed binary more. The requests here are built
// with the library's low-level layer (package nl).
package rtlink
