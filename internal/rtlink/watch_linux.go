package rtlink

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"
)

// DefaultWatchBuffer is the receive buffer a watch asks for. The kernel
// drops notifications that do not fit and says so with ENOBUFS; a larger
// buffer makes that rarer (a DHCP renewal, a bridge coming up) without
// costing memory until a burst fills it. A full routing table loaded at
// once still overflows it, which the watch absorbs (see Watch).
const DefaultWatchBuffer = 1 << 20

// Watch is a subscription, in one network namespace, to the kernel's link,
// IPv4 and IPv6 address and route notifications.
type Watch struct {
	// C receives a token after each batch of changes. It holds one: a
	// pending token stands for any number of changes, since a watcher
	// looks the current state up anyway. It is closed once done is closed
	// or receiving fails.
	C <-chan struct{}
	// Buffer is the receive buffer the kernel granted, in bytes as
	// SO_RCVBUF reports it (twice what was set, for its bookkeeping).
	Buffer int

	overruns atomic.Uint64
}

// Overruns counts the times the kernel dropped notifications because the
// buffer was full (ENOBUFS). Each one also left a token on C.
func (w *Watch) Overruns() uint64 { return w.overruns.Load() }

// WatchChanges subscribes in the caller's network namespace and asks for a
// receive buffer of rcvBuf bytes: with SO_RCVBUFFORCE when the process may
// (CAP_NET_ADMIN), else with SO_RCVBUF, which the kernel caps at
// net.core.rmem_max. A failure goes to onErr (if not nil) before C closes.
//
// A full buffer (ENOBUFS) does not end the watch: the notifications lost
// are unknown, so it means "something changed, look again", as routing
// daemons treat it. (NETLINK_NO_ENOBUFS would hide the loss, and with it
// a change the watcher must see.)
//
// It replaces the library's route subscription, which decodes every route
// and so links the link-type code (through the SEG6 encapsulation's
// String, which looks devices up).
func WatchChanges(done <-chan struct{}, rcvBuf int, onErr func(error)) (*Watch, error) {
	s, err := nl.Subscribe(unix.NETLINK_ROUTE, unix.RTNLGRP_LINK,
		unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE)
	if err != nil {
		return nil, fmt.Errorf("subscribe to link, address and route changes: %w", err)
	}
	ch := make(chan struct{}, 1)
	w := &Watch{C: ch, Buffer: setRcvBuf(s.GetFd(), rcvBuf)}
	go func() {
		<-done
		s.Close() // ends the Receive below
	}()
	go func() {
		defer close(ch)
		for {
			msgs, from, err := s.Receive()
			switch {
			case errors.Is(err, unix.ENOBUFS):
				w.overruns.Add(1)
			case errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN):
				continue
			case err != nil:
				select {
				case <-done:
				default:
					if onErr != nil {
						onErr(fmt.Errorf("link, address and route changes: %w", err))
					}
				}
				return
			case from.Pid != nl.PidKernel || !hasChange(msgs):
				continue
			}
			select {
			case ch <- struct{}{}:
			default:
			}
		}
	}()
	return w, nil
}

// setRcvBuf asks for size bytes of receive buffer, forced if permitted,
// and returns what the kernel granted (0 if it cannot say).
func setRcvBuf(fd, size int) int {
	if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) != nil {
		// Without CAP_NET_ADMIN: the unprivileged option, capped at
		// rmem_max; the default buffer stays if even that fails.
		_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	}
	got, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUF)
	if err != nil {
		return 0
	}
	return got
}

// hasChange tells whether a batch carries a link, address or route
// message (not only a bare done or acknowledgement).
func hasChange(msgs []syscall.NetlinkMessage) bool {
	for _, m := range msgs {
		switch m.Header.Type {
		case unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_NEWROUTE, unix.RTM_DELROUTE:
			return true
		}
	}
	return false
}
