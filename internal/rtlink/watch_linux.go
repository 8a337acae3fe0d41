package rtlink

import (
	"errors"
	"fmt"
	"sync/atomic"
	"syscall"

	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// DefaultWatchBuffer is the receive buffer a watch asks for. The kernel
// drops notifications that do not fit and says so with ENOBUFS; a larger
// buffer makes that rarer (a DHCP renewal, a bridge re-created with its
// ports and addresses) without costing memory until a burst fills it. A
// full routing table loaded at once still overflows it, which the watch
// absorbs (see WatchChanges).
const DefaultWatchBuffer = 1 << 20

// Watch is a subscription to some of the kernel's rtnetlink
// notifications, in one network namespace.
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

// WatchChanges subscribes, in the caller's network namespace, to link,
// IPv4 and IPv6 address and route notifications, and asks for a receive
// buffer of rcvBuf bytes: with SO_RCVBUFFORCE when the process may
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
	return watch(netns.None(), rcvBuf, done, onErr, "link, address and route changes",
		[]uint{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV4_IFADDR, unix.RTNLGRP_IPV6_IFADDR, unix.RTNLGRP_IPV4_ROUTE, unix.RTNLGRP_IPV6_ROUTE},
		unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR, unix.RTM_NEWROUTE, unix.RTM_DELROUTE)
}

// WatchLinksAt subscribes, in ns (<= 0: the caller's namespace), to the
// kernel's link and IPv6 address notifications: devices appearing,
// vanishing, going up or down, addresses added or removed. It is
// WatchChanges for these (DefaultWatchBuffer, overruns leave a token) and
// returns the token channel.
func WatchLinksAt(ns netns.NsHandle, done <-chan struct{}, onErr func(error)) (<-chan struct{}, error) {
	if ns <= 0 {
		ns = netns.None()
	}
	w, err := watch(ns, DefaultWatchBuffer, done, onErr, "link and address changes",
		[]uint{unix.RTNLGRP_LINK, unix.RTNLGRP_IPV6_IFADDR},
		unix.RTM_NEWLINK, unix.RTM_DELLINK, unix.RTM_NEWADDR, unix.RTM_DELADDR)
	if err != nil {
		return nil, err
	}
	return w.C, nil
}

// watch subscribes to groups in ns and leaves a token for each batch
// that carries a message of one of types, and for each overrun.
func watch(ns netns.NsHandle, rcvBuf int, done <-chan struct{}, onErr func(error), what string, groups []uint, types ...uint16) (*Watch, error) {
	s, err := nl.SubscribeAt(ns, netns.None(), unix.NETLINK_ROUTE, groups...)
	if err != nil {
		return nil, fmt.Errorf("subscribe to %s: %w", what, err)
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
						onErr(fmt.Errorf("%s: %w", what, err))
					}
				}
				return
			case from.Pid != nl.PidKernel || !carries(msgs, types):
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

// carries tells whether a batch holds a message of one of types (not
// only a bare done or acknowledgement).
func carries(msgs []syscall.NetlinkMessage, types []uint16) bool {
	for _, m := range msgs {
		for _, t := range types {
			if m.Header.Type == t {
				return true
			}
		}
	}
	return false
}
