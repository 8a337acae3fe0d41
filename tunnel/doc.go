// Package tunnel is the data plane of an established TSP tunnel: it builds
// the tunnel interface over netlink, carries IPv6 packets between it and the
// broker, probes the tunnel with ICMPv6 echo and reports what the supervisor
// must act on as events.
//
// NewUserspace is the userspace implementation: a TUN device bridged to the
// TSP session's own UDP socket (v6udpv4, spec §1.6) or to a raw protocol-41
// socket (v6v4). Packets move in batches (recvmmsg/sendmmsg) through
// buffers allocated once. Where the kernel allows, the device runs with
// virtio-net headers and TCP/UDP segmentation offload and the socket with
// UDP GSO/GRO: the engine then cuts 64 KiB super-packets from the kernel
// into MTU-sized packets itself and merges received TCP segments back (see
// offload.go), so that a system call moves 64 KiB instead of one packet
// while the wire carries ordinary packets any broker understands.
//
// Forwarder is the same engine seen from the broker: one device, many peers
// on one socket, routed by IPv6 address, with TSP control datagrams handed
// to a callback.
//
// Kernel tunnels (sit, sit+fou, ip6tnl) implement the same Tunnel interface:
// they create their link over netlink instead of opening a TUN device and
// reuse the rest: removeLeftover, planFor/configureLink with its undo stack,
// and the prober on a NewPingConn bound to the device.
//
// v4v6 (IPv4 in IPv6, spec §1.7) swaps the families: an ip6tnl device in
// ipip6 mode, or a TUN carrying IPv4 bridged to a raw IPv6 protocol-4
// socket (with IPv4 TCP segmentation offload, v4v6_offload.go), the prober
// on an ICMPv4 NewPingConn4; ForwarderV4V6 is its broker side.
//
// The prober (keepalive.go) does not wait whole intervals for a dead
// broker: an ICMP error about our packets to it (reported by the userspace
// planes' sockets, or read by the kernel planes' ICMP watch, unreach_linux.go)
// or an overdue probe starts a confirmation, a few probes that any reply
// cancels.
//
// Everything a test must control is injectable: the network namespace, the
// netlink handle, the sockets, and the prober's clock and ICMPv6 socket.
package tunnel
