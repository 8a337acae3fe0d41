package vmtest

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// RouteStorm adds n host routes (first, first+1, ...) through the device
// with index ifIndex in ns, as one netlink batch: many requests per
// sendmsg and no acknowledgements, so the kernel announces them faster
// than any listener reads (a routing daemon loading a full table does
// this). The routes are in place when it returns; they go with ns.
func RouteStorm(ns netns.NsHandle, ifIndex int, first netip.Addr, n int) error {
	if !first.Is4() {
		return fmt.Errorf("route storm: %v is not IPv4", first)
	}
	errc := make(chan error, 1)
	go func() {
		// The thread never returns to the caller's namespace: the
		// runtime retires it when the goroutine ends locked.
		runtime.LockOSThread()
		if err := netns.Set(ns); err != nil {
			errc <- fmt.Errorf("route storm: enter namespace: %w", err)
			return
		}
		errc <- routeStorm(ifIndex, first, n)
	}()
	return <-errc
}

func routeStorm(ifIndex int, first netip.Addr, n int) error {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_RAW|unix.SOCK_CLOEXEC, unix.NETLINK_ROUTE)
	if err != nil {
		return fmt.Errorf("route storm: %w", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return fmt.Errorf("route storm: %w", err)
	}
	ne := binary.NativeEndian
	const msgLen = unix.SizeofNlMsghdr + unix.SizeofRtMsg + 2*(unix.SizeofRtAttr+4)
	buf := make([]byte, 0, 32<<10)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := unix.Sendto(fd, buf, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK})
		buf = buf[:0]
		return err
	}
	base := binary.BigEndian.Uint32(first.AsSlice())
	for i := range n {
		if len(buf)+msgLen > cap(buf) {
			if err := flush(); err != nil {
				return fmt.Errorf("route storm: send: %w", err)
			}
		}
		m := make([]byte, msgLen)
		ne.PutUint32(m[0:], msgLen)
		ne.PutUint16(m[4:], unix.RTM_NEWROUTE)
		ne.PutUint16(m[6:], unix.NLM_F_REQUEST|unix.NLM_F_CREATE|unix.NLM_F_EXCL)
		ne.PutUint32(m[8:], uint32(i+1)) // sequence
		r := m[unix.SizeofNlMsghdr:]
		r[0] = unix.AF_INET       // family
		r[1] = 32                 // dst_len
		r[4] = unix.RT_TABLE_MAIN // table
		r[5] = unix.RTPROT_BOOT   // protocol
		r[6] = unix.RT_SCOPE_LINK // scope
		r[7] = unix.RTN_UNICAST   // type
		a := r[unix.SizeofRtMsg:]
		ne.PutUint16(a[0:], unix.SizeofRtAttr+4)
		ne.PutUint16(a[2:], unix.RTA_DST)
		binary.BigEndian.PutUint32(a[4:], base+uint32(i))
		ne.PutUint16(a[8:], unix.SizeofRtAttr+4)
		ne.PutUint16(a[10:], unix.RTA_OIF)
		ne.PutUint32(a[12:], uint32(ifIndex))
		buf = append(buf, m...)
	}
	if err := flush(); err != nil {
		return fmt.Errorf("route storm: send: %w", err)
	}
	// Requests without NLM_F_ACK still answer a failure; the first one
	// says why the storm went wrong (a full queue of them is fine).
	rb := make([]byte, 1<<16)
	for {
		k, _, err := unix.Recvfrom(fd, rb, unix.MSG_DONTWAIT)
		if err != nil || k < unix.SizeofNlMsghdr+4 {
			return nil // nothing (more) to read: every request went through
		}
		if ne.Uint16(rb[4:]) == unix.NLMSG_ERROR {
			if e := int32(ne.Uint32(rb[unix.SizeofNlMsghdr:])); e != 0 {
				return fmt.Errorf("route storm: request %d: %w", ne.Uint32(rb[unix.SizeofNlMsghdr+12:])-1, unix.Errno(-e))
			}
		}
	}
}
